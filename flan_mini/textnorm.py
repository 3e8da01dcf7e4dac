"""Text normalisation for comparing documents (dedup now, decontamination later), vectorised over Arrow arrays."""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Unicode punctuation (P*) and symbols (S*): everything `string.punctuation` covers, plus “ ” — … « » etc.
_PUNCT = r"[\p{P}\p{S}]"
# Code comments, removed before anything else in code mode (a heuristic, not a lexer: see `TextNorm.code`).
_BLOCK_COMMENT = r"(?s)/\*.*?\*/"
_DOCSTRING = r"(?s)\"\"\".*?\"\"\"|'''.*?'''"
_LINE_COMMENT = r"(?m)(?:#|//)[^\n]*$"


@dataclass(frozen=True)
class TextNorm:
    """How text is normalised before it is compared.

    nfkc: Unicode NFKC (full-width letters, ligatures and compatibility spaces become plain ones).
    lowercase: Unicode lower case.
    punctuation: "strip" turns every punctuation/symbol character into a space (prose: "Hello, world!" and
        "hello world" compare equal); "split" keeps each one as its own token (code: `a+b` -> `a + b`, so
        operators count but spacing does not); "keep" leaves them attached to words.
    code: remove comments first: `/* ... */`, Python triple-quoted strings (docstrings), and `#` or `//` to the
        end of the line. A heuristic (a `#` or `//` inside a string literal is cut too), which is what near-dup
        detection wants: boilerplate and comments should not make two solutions look different or alike.
    Whitespace is always collapsed: the normalised text is its tokens joined by single spaces.
    """

    nfkc: bool = True
    lowercase: bool = True
    punctuation: str = "strip"  # strip | split | keep
    code: bool = False

    def __post_init__(self):
        if self.punctuation not in ("strip", "split", "keep"):
            raise ValueError(f"punctuation must be strip, split or keep, got {self.punctuation!r}")


def repair_utf8(texts: pa.Array) -> tuple[pa.StringArray, np.ndarray]:
    """Return ``texts`` as valid UTF-8 (bad bytes become U+FFFD) and a bool mask of the rows that were not.

    Arrow does not validate string data read from Parquet, and every Unicode kernel fails on the first bad
    byte ("Invalid UTF8 sequence in input"). The check is one C++ pass; the per-row Python repair runs only
    when the array actually holds bad bytes (e.g. CESU-8 encoded surrogates such as b"\\xed\\xa0\\x80").
    """
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = texts.cast(pa.string())
    invalid = np.zeros(len(texts), dtype=bool)
    try:
        texts.validate(full=True)
        return texts, invalid
    except pa.ArrowInvalid:
        pass
    fixed = []
    for index, raw in enumerate(texts.cast(pa.large_binary()).to_pylist()):
        if raw is None:
            fixed.append(None)
            continue
        try:
            fixed.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            invalid[index] = True
            fixed.append(raw.decode("utf-8", errors="replace"))
    return pa.array(fixed, type=texts.type), invalid


def tokenize(texts: pa.Array, norm: TextNorm) -> pa.ListArray:
    """Normalise valid UTF-8 ``texts`` and split them into tokens (a list of strings per row; nulls -> []).

    Example (defaults): "Hello,  WORLD!\\n" -> ["hello", "world"]; with punctuation="split":
    "x = f(a+b)" -> ["x", "=", "f", "(", "a", "+", "b", ")"].
    """
    texts = pc.fill_null(texts, "")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = _fold(texts, norm)
    # Splitting on Unicode whitespace both tokenises and collapses runs of spaces, tabs and newlines. Arrow
    # yields "" tokens for leading/trailing whitespace and for an empty text, hence the trim and the filter.
    tokens = _split(texts)
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks()
    flat = pc.list_flatten(tokens)
    nonempty = pc.greater(pc.binary_length(flat), 0)
    if pc.all(nonempty).as_py() is False:
        kept = nonempty.to_numpy(zero_copy_only=False)
        before = np.zeros(len(kept) + 1, dtype=np.int64)
        np.cumsum(kept, out=before[1:])
        offsets = before[list_offsets(tokens)]
        tokens = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pc.filter(flat, nonempty))
    return tokens


def _split(texts: pa.Array) -> pa.Array:
    """utf8_split_whitespace after a trim. On pure-ASCII text the ASCII kernels give the same tokens about twice
    as fast, unless it holds \x1c-\x1f (information separators: whitespace to Unicode, not to ASCII)."""
    if len(texts) and pc.all(pc.string_is_ascii(texts)).as_py():
        _, _, data = texts.buffers()
        raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        if not ((raw - np.uint8(0x1C)) < 4).any():  # uint8 wraps: true exactly for 0x1c..0x1f
            return pc.ascii_split_whitespace(pc.ascii_trim_whitespace(texts))
    return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(texts))


def _fold(texts: pa.Array, norm: TextNorm) -> pa.Array:
    """Comments, NFKC, case and punctuation, before splitting on whitespace.

    Most instruction data is plain ASCII, where NFKC changes nothing and lower case and punctuation are
    byte-for-byte maps; those rows go through one 256-entry lookup table over the bytes (numpy) instead of
    three Unicode kernels and a regex, with the same result. Other rows take the Unicode path.
    """
    if norm.code or norm.punctuation == "split" or len(texts) == 0:
        return _fold_unicode(texts, norm)
    ascii_rows = pc.string_is_ascii(texts)
    if pc.all(ascii_rows).as_py():
        return _fold_ascii(texts, norm)
    if not pc.any(ascii_rows).as_py():
        return _fold_unicode(texts, norm)
    other = pc.invert(ascii_rows)
    return pc.replace_with_mask(_fold_ascii(texts, norm), other, _fold_unicode(pc.filter(texts, other), norm))


def _fold_unicode(texts: pa.Array, norm: TextNorm) -> pa.Array:
    if norm.code:
        for pattern in (_BLOCK_COMMENT, _DOCSTRING, _LINE_COMMENT):
            texts = pc.replace_substring_regex(texts, pattern, " ")
    if norm.nfkc:
        texts = pc.utf8_normalize(texts, "NFKC")
    if norm.lowercase:
        texts = pc.utf8_lower(texts)
    if norm.punctuation == "strip":
        texts = pc.replace_substring_regex(texts, _PUNCT, " ")
    elif norm.punctuation == "split":
        texts = pc.replace_substring_regex(texts, f"({_PUNCT})", r" \1 ")
    return texts


def _ascii_table(norm: TextNorm) -> np.ndarray:
    table = np.arange(256, dtype=np.uint8)
    if norm.lowercase:
        table[ord("A") : ord("Z") + 1] += 32
    if norm.punctuation == "strip":
        # ASCII's share of Unicode's punctuation (P*) and symbol (S*) categories is exactly string.punctuation.
        table[np.frombuffer(string.punctuation.encode(), dtype=np.uint8)] = ord(" ")
    return table


def _fold_ascii(texts: pa.Array, norm: TextNorm) -> pa.Array:
    """Apply the byte map to every byte of ``texts`` (a string array without nulls); rows keep their offsets."""
    large = pa.types.is_large_string(texts.type)
    _, offset_buffer, data = texts.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64 if large else np.int32)
    offsets = offsets[texts.offset : texts.offset + len(texts) + 1]
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]] if data is not None else np.zeros(0, np.uint8)
    # bytes.translate is a plain C loop over the bytes: 2.5x faster than numpy's gather through the table.
    mapped = np.frombuffer(raw.tobytes().translate(_ascii_table(norm).tobytes()), dtype=np.uint8)
    return pa.Array.from_buffers(texts.type, len(texts), [None, pa.py_buffer(offsets - offsets[0]), pa.py_buffer(mapped)])


def normalize(texts: pa.Array, norm: TextNorm) -> pa.StringArray:
    """The normalised texts: tokens joined by single spaces. ``normalize`` of a normalised text is itself."""
    return pc.binary_join(tokenize(texts, norm), " ")


def normalize_text(text: str, norm: TextNorm) -> str:
    """Normalise one Python string (same kernels as the vectorised path, so always the same answer)."""
    return normalize(pa.array([text], type=pa.string()), norm)[0].as_py()


def list_offsets(lists: pa.Array) -> np.ndarray:
    """int64 offsets (n + 1 values, starting at 0) of a list array into ``pc.list_flatten(lists)``."""
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets
