"""tokens(t) >= words(t) (token_floor.py), checked on random Unicode strings for byte-level BPE and LLaMA-shaped
BPE, refused where a token may span two words; and few-shot pruning with the floor keeps the same exemplars."""

from __future__ import annotations

import json
import random
import re

import pytest

from flan_mini.fewshot_prune import prune
from flan_mini.token_floor import separators, words

from .test_fewshot_prune import WordMeasure, exact_prune, text
from .test_token_bound import CORPUS, LEGACY_LLAMA, MODERN_LLAMA, MODERN_PRE, byte_level_bpe, random_strings, sentencepiece_bpe

tokenizers = pytest.importorskip("tokenizers")


def counts(tokenizer, texts):
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


@pytest.mark.parametrize("kind", ["bytes", "bytes_prefix", "legacy", "modern"])
def test_floor_holds_on_random_unicode(kind):
    tokenizer = {"bytes": lambda: byte_level_bpe(False), "bytes_prefix": lambda: byte_level_bpe(True),
                 "legacy": lambda: sentencepiece_bpe(LEGACY_LLAMA, None, pieces_within_words=True), "modern": lambda: sentencepiece_bpe(MODERN_LLAMA, MODERN_PRE, pieces_within_words=True)}[kind]()
    seps = separators(tokenizer)
    assert seps is not None and " " in seps and ("▁" in seps) == (kind in ("legacy", "modern"))
    texts = random_strings(3000, seed=7 + len(kind)) + ["", " ", "a", "a b", "▁", " ▁ ", "x\ny\tz", "f(x)=a.b;c[d]",
                                                         "a<s>b", "x</s>y", "<s>", "a.b.c", "e▁c", "return x * 2", "naïve,café"]
    floors, exact = words(texts, seps), counts(tokenizer, texts)
    assert all(f <= e for f, e in zip(floors, exact))
    prose = CORPUS[:4]
    assert sum(words(prose, seps)) * 2 > sum(counts(tokenizer, prose))  # on words, a bound worth having
    assert words(["a  b", " a\tb\nc ", "", "▁x▁"], " ") == [2, 1, 0, 1]


def test_words_counts_the_runs_a_split_finds():
    # the columnar count (one buffer, runs located by binary search) against a plain split, on batches with empty
    # texts, texts of separators only, multi-byte characters and lone surrogates
    rng = random.Random(7)
    seps, alphabet = " \n\t.,", " \n\t.,abé中\ud800▁"
    splitter = re.compile(f"[{re.escape(seps)}]")
    for _ in range(500):
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(9))) for _ in range(rng.randrange(7))]
        assert words(texts, seps) == [sum(1 for part in splitter.split(t) if part) for t in texts]


def test_no_floor_where_a_token_spans_two_words():
    """Trained without a pre-tokeniser, BPE learns pieces across "▁" ("e▁c"): a word count could pass the tokens."""
    from .test_token_bound import sentencepiece_bpe

    tokenizer = sentencepiece_bpe(LEGACY_LLAMA, None)
    vocab = json.loads(tokenizer.to_str())["model"]["vocab"]
    assert any("▁" in piece.strip("▁") for piece in vocab)
    assert separators(tokenizer) is None
    from tokenizers import normalizers

    lowered = byte_level_bpe(False)
    lowered.normalizer = normalizers.Lowercase()
    assert separators(lowered) is None  # a normaliser on byte-level text: not covered


class FloorMeasure(WordMeasure):
    """WordMeasure with a lower bound: each text's words, halved (any bound <= the count must give the same rows)."""

    def floors(self, texts):
        return [len(t.split()) // 2 for t in texts]


def test_prune_with_floors_matches_exact_counting_and_counts_less():
    rng = random.Random(11)
    plans = [([[text(rng)] if rng.random() < 0.5 else [text(rng), text(rng)] for _ in range(rng.randint(0, 7))],
              [text(rng) for _ in range(rng.randint(1, 3))], rng.randint(1, 4)) for _ in range(400)]
    for budget in (10, 40, 120, 400):
        floored, plain = FloorMeasure(), WordMeasure()
        assert prune(plans, floored, budget) == prune(plans, plain, budget) == exact_prune(plans, WordMeasure(), budget)
        assert len(floored.counted) < len(plain.counted)
        known: dict = {}  # counts shared across calls: the second call counts nothing new
        again = FloorMeasure()
        assert prune(plans, again, budget, known) == prune(plans, again, budget, known)
        assert len(again.counted) == len(set(again.counted))


def test_prune_measures_in_batches_with_the_same_result(monkeypatch):
    import flan_mini.fewshot_prune as fewshot_prune

    rng = random.Random(12)
    plans = [([[text(rng)] for _ in range(rng.randint(0, 5))], [text(rng)], 2) for _ in range(200)]
    whole = prune(plans, WordMeasure(), 60)
    longest = max(len(t) for blocks, fixed, _ in plans for t in [*fixed, *(x for b in blocks for x in b)])
    monkeypatch.setattr(fewshot_prune, "BATCH_CHARS", 50)
    calls = []

    class Batches(WordMeasure):
        def lengths(self, texts):
            calls.append(sum(map(len, texts)))
            return super().lengths(texts)

    assert prune(plans, Batches(), 60) == whole
    assert len(calls) > 1 and all(size < 50 + longest for size in calls)
