"""An upper bound on a text's token count from its UTF-8 length, proved per tokenizer from its tokenizer.json.

Why: budgets in tokens (few-shot examples, ShareGPT pieces) only need the exact count of a text that might not
fit. If tokens(t) <= utf8_bytes(t) + slack, a text whose bound fits the budget fits; only the others are
tokenised (benchmarks/sharegpt.py --tokens measures the difference).

The proof. `tokenizers` encodes a text (special tokens not added) as: split out the added tokens (each one
token); per remaining segment, normalise, pre-tokenise (split into words, maybe add a prefix), then the model
turns each word into tokens. Every model here starts from one symbol per character, or per byte for a
byte-level pre-tokeniser, and only ever joins symbols: a BPE merge, a Unigram or WordPiece piece, a WordLevel
word each cover one or more symbols. An unknown character becomes one <unk> or, with byte fallback, one token
per UTF-8 byte. So a segment costs at most the sum over its final characters of w(c), where w(c) = 1 if the
model knows c (or has no byte fallback) and utf8_bytes(c) otherwise; byte-level: one per byte.

Give each original character a budget of its UTF-8 length (>= 1, >= its w). The steps accepted below keep
"every character's w is covered by its budget", adding at most `slack` per segment:
- Replace(String a -> c) with w(c) <= len(a): the replaced characters' budgets (>= 1 each) cover c.
  LLaMA: " " -> "▁", one known piece, w = 1.
- Prepend(p): + w(p). Metaspace: " " -> replacement (w <= 1 required), + w(replacement) when it prepends.
  Replace(Regex "\\A" + x -> c): at most once per segment, + max(0, w(c) - len(x)) (LLaMA's "\\A▁" -> "▁▁": + 1).
- ByteLevel pre-tokeniser (only with no normaliser): one symbol per byte, + 1 with add_prefix_space.
- Strip, StripAccents, and pre-tokenisers that only split (Whitespace, Split, Digits, ...): characters only go.
So tokens(segment) <= utf8_bytes(segment) + slack. Over a text with k added tokens of UTF-8 lengths L_i:
tokens <= utf8_bytes(text) - sum(L_i) + (k + 1) slack + k, which is <= utf8_bytes(text) + slack when every
added token has L_i >= slack + 1 (LLaMA: "<s>", "</s>", "<unk>" against slack 1 or 2). Anything else (NFKC and
the other Unicode normalisers, which can lengthen text; lowercasing; unknown components; padding) gets no bound:
every text is tokenised. tests/test_token_bound.py checks the bound on LLaMA's and byte-level BPE tokenizers
over random Unicode strings.
"""

from __future__ import annotations

import json
import re

# Pre-tokenisers that only cut text into words (and may drop whitespace): they never add a character.
_SPLITTERS = {"Whitespace", "WhitespaceSplit", "Punctuation", "Digits", "Split", "UnicodeScripts", "CharDelimiterSplit",
              "BertPreTokenizer"}
_MODELS = {"BPE", "Unigram", "WordPiece", "WordLevel"}


class _Unbounded(Exception):
    """A component the proof does not cover."""


def byte_slack(tokenizer) -> int | None:
    """The `slack` of tokens(t) <= utf8_bytes(t) + slack for this `tokenizers.Tokenizer`, or None when unproved."""
    try:
        return _slack(json.loads(tokenizer.to_str()))
    except (_Unbounded, KeyError, TypeError, ValueError):
        return None


def utf8_lengths(texts: list[str]) -> list[int]:
    """UTF-8 byte length of each text (a lone surrogate counted as its 3 bytes)."""
    return [len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass")) for t in texts]


def _slack(spec: dict) -> int:
    model = spec["model"]
    if model.get("type") not in _MODELS or spec.get("padding"):
        raise _Unbounded
    vocab = model.get("vocab") or {}
    known = {piece for piece, _ in vocab} if isinstance(vocab, list) else set(vocab)  # Unigram: [piece, score] pairs
    fallback = bool(model.get("byte_fallback"))
    affixed = bool(model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"))

    def w(text: str) -> int:
        return sum(1 if not fallback or (c in known and not affixed) else len(c.encode("utf-8")) for c in text)

    slack = 0
    normalizers = _flatten(spec.get("normalizer"), "normalizers")
    for step in normalizers:
        kind = step["type"]
        if kind == "Prepend":
            slack += w(step["prepend"])
        elif kind == "Replace" and "String" in step["pattern"]:
            if w(step["content"]) > len(step["pattern"]["String"]) or not step["pattern"]["String"]:
                raise _Unbounded
        elif kind == "Replace" and (literal := _anchored_literal(step["pattern"].get("Regex", ""))) is not None:
            slack += max(0, w(step["content"]) - len(literal))
        elif kind not in ("Strip", "StripAccents"):
            raise _Unbounded
    for step in _flatten(spec.get("pre_tokenizer"), "pretokenizers"):
        kind = step["type"]
        if kind == "ByteLevel":
            changes = [s for s in normalizers if s["type"] not in ("Strip", "StripAccents")]
            if changes or fallback:
                raise _Unbounded  # bytes of a normalised text, or byte-level symbols that fall back to their own bytes
            slack += 1 if step.get("add_prefix_space") else 0
        elif kind == "Metaspace":
            replacement = step.get("replacement", "▁")
            if w(replacement) > 1:
                raise _Unbounded
            prepends = step.get("prepend_scheme", "always" if step.get("add_prefix_space", True) else "never") != "never"
            slack += w(replacement) if prepends else 0
        elif kind not in _SPLITTERS:
            raise _Unbounded
    shortest = min((len(t["content"].encode("utf-8")) for t in spec.get("added_tokens") or []), default=None)
    if shortest is not None and slack and shortest < slack + 1:
        raise _Unbounded
    return slack


def _flatten(step: dict | None, key: str) -> list[dict]:
    if step is None:
        return []
    if step["type"] == "Sequence":
        return [leaf for inner in step[key] for leaf in _flatten(inner, key)]
    return [step]


def _anchored_literal(pattern: str) -> str | None:
    """x when the regex is exactly "\\A" followed by the literal text x (matches once, at the start), else None."""
    if not pattern.startswith("\\A"):
        return None
    rest = pattern[2:]
    return rest if rest and not re.search(r"[.^$*+?{}\[\]\\|()]", rest) else None
