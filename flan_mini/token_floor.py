"""A lower bound on a text's token count: its words (runs between separators), proved per tokenizer from its vocabulary.

Why: few-shot pruning (fewshot_prune.py) tokenises a text only when its bounds cannot decide. The upper bound
(token_bound.py) settles texts that surely fit; this one settles texts that surely do not (a long exemplar beside
a long query), which otherwise are all tokenised just to be skipped.

The proof. A BPE model turns the normalised, pre-tokenised text into tokens that are vocabulary entries, each
covering consecutive symbols; every symbol is covered (all byte symbols are known, or there is an <unk> or byte
fallback), and added tokens (split out first) are one token each. Call some symbols separators (Σ). If no
vocabulary entry or added token holds a non-separator, then separators, then a non-separator (the regex
`[^Σ]Σ+[^Σ]`), no token covers symbols of two different runs of non-separators: so tokens >= such runs. In the
text, a run between separator characters (T) maps to at least one run of non-separator symbols, as long as
exactly the characters of T map to separator symbols only:
- byte-level BPE (no normaliser; pre-tokenisers that never drop characters): a byte's symbol is its byte-level
  character, T = {" "} (symbol "Ġ") plus any of "\\n", "\\t", "\\r" and ASCII punctuation the vocabulary allows;
- LLaMA's forms (Prepend "▁" / Replace " " -> "▁" / "\\A▁" -> "▁▁", or a Metaspace pre-tokeniser with "▁"): T = {" ", "▁"} (symbol
  "▁"), plus any of "\\n", "\\t", "\\r" and ASCII punctuation (their own symbols, or byte fallback) the vocabulary
  allows.
Anything else gets no bound (0 per text, as before). tests/test_token_floor.py checks it on random Unicode.
"""

from __future__ import annotations

import json
import re
import string

import numpy as np

from .token_bound import _flatten

_EXTRA = "\n\t\r" + string.punctuation  # separators beyond the space, each kept when the vocabulary allows
_KEEPS_CHARACTERS = {"ByteLevel", "Digits"}  # pre-tokenisers that split but never drop a character
_CHUNK = 4 << 20  # characters counted at a time (bounded memory)


def separators(tokenizer) -> str | None:
    """The text separators T for which tokens(t) >= words(t, T) holds for this `tokenizers.Tokenizer`, or None."""
    try:
        return _separators(json.loads(tokenizer.to_str()))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _byte_symbols() -> dict[int, str]:
    """GPT-2's byte -> character map (the ByteLevel pre-tokeniser's)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return symbols


def _separators(spec: dict) -> str | None:
    model = spec["model"]
    if model.get("type") != "BPE" or spec.get("truncation") or model.get("continuing_subword_prefix") \
            or model.get("end_of_word_suffix") or model.get("dropout"):
        return None
    vocab = list(model["vocab"])
    added = [t["content"] for t in spec.get("added_tokens") or []]
    normalizers = _flatten(spec.get("normalizer"), "normalizers")
    pre = _flatten(spec.get("pre_tokenizer"), "pretokenizers")
    kinds = [step["type"] for step in pre]
    if "ByteLevel" in kinds:
        if normalizers or model.get("byte_fallback") or any(
                k not in _KEEPS_CHARACTERS and not (k == "Split" and pre[i].get("behavior") != "Removed")
                for i, k in enumerate(kinds)):
            return None
        symbols = _byte_symbols()
        known = set(vocab)
        if not all(s in known for s in symbols.values()):
            return None  # an unknown byte would vanish, or fuse with its neighbours into one <unk>
        base, text_base, symbol_of = symbols[ord(" ")], " ", {c: symbols[ord(c)] for c in _EXTRA}
    elif _llama_form(normalizers, pre):
        if not (model.get("byte_fallback") or (model.get("unk_token") and not model.get("fuse_unk"))):
            return None  # an unknown character would vanish, or fuse with its neighbours into one <unk>
        base, text_base, symbol_of = "▁", " ▁", {c: c for c in _EXTRA}
    else:
        return None
    chosen = ""
    for extra in ["", *_EXTRA]:  # the space alone first, then each extra the vocabulary allows
        trial = chosen + (symbol_of[extra] if extra else "")
        sigma = re.escape(base + trial)
        crossing = re.compile(f"[^{sigma}][{sigma}]+[^{sigma}]")
        text_sigma = re.escape(text_base + "".join(c for c in _EXTRA if symbol_of[c] in trial))
        added_crossing = re.compile(f"[^{text_sigma}][{text_sigma}]+[^{text_sigma}]")
        if any(crossing.search(piece) for piece in vocab) or any(added_crossing.search(t) for t in added):
            if not extra:
                return None
            continue
        chosen = trial
    return text_base + "".join(c for c in _EXTRA if symbol_of[c] in chosen)


def _llama_form(normalizers: list[dict], pre: list[dict]) -> bool:
    """Spaces become "▁" (and a "▁" may be prepended), nothing else changes and no character is dropped."""
    for step in normalizers:
        if step["type"] == "Prepend" and step["prepend"] == "▁":
            continue
        if step["type"] == "Replace" and step["pattern"].get("String") == " " and step["content"] == "▁":
            continue
        if step["type"] == "Replace" and step["pattern"].get("Regex") == "\\A▁" and set(step["content"]) == {"▁"}:
            continue  # LLaMA's newer form: one more "▁" at the start
        return False
    for step in pre:
        if step["type"] != "Metaspace" or step.get("replacement", "▁") != "▁":
            return False
    return bool(normalizers) or bool(pre)


def words(texts: list[str], seps: str) -> list[int]:
    """Per text, the runs of characters other than `seps` (which must include the space); columnar over UTF-8
    bytes, texts holding a multi-byte separator (such as "▁") counted one by one."""
    single = "".join(c for c in seps if ord(c) < 128)
    wide = "".join(c for c in seps if ord(c) >= 128)
    table = np.zeros(256, bool)
    table[[ord(c) for c in single]] = True
    out = np.zeros(len(texts), np.int64)
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (size < _CHUNK or end == start):
            size += len(texts[end]) + 1
            end += 1
        _count(texts[start:end], table, out[start:end])
        start = end
    if wide:
        splitter = re.compile(f"[{re.escape(seps)}]")
        for i, text in enumerate(texts):
            if any(c in text for c in wide):
                out[i] = sum(1 for part in splitter.split(text) if part)
    return out.tolist()


def _count(texts: list[str], is_sep: np.ndarray, out: np.ndarray) -> None:
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    data = np.frombuffer(b" ".join([*encoded, b""]), np.uint8)  # a space after each text: runs end with it
    sep = is_sep[data]
    starts = ~sep
    starts[1:] &= sep[:-1]
    # runs before each text's end, by binary search over the run starts (not a running total over every byte)
    ends = np.cumsum(np.fromiter((len(e) + 1 for e in encoded), np.int64, len(encoded)))
    before = np.searchsorted(np.flatnonzero(starts), ends)
    out[:] = np.diff(before, prepend=0)
