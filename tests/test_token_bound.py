"""tokens(t) <= utf8_bytes(t) + slack (token_bound.py), checked on many random Unicode strings for SentencePiece-style
byte-fallback BPE (LLaMA's two tokenizer.json forms) and byte-level BPE, and refused where it does not hold."""

from __future__ import annotations

import json
import random

import pytest

from flan_mini.token_bound import byte_slack, utf8_lengths

tokenizers = pytest.importorskip("tokenizers")

SPECIALS = ["<unk>", "<s>", "</s>"]
CORPUS = ["the cat sat on the mat", "def f(x):\n    return x * 2", "Tokens are counted in bytes first.",
          "naïve café 東京 😀 — “quoted”"] * 20
# Pieces random strings are made of: what stresses a byte bound (4-byte emoji, combining marks, CJK, the "▁"
# LLaMA writes spaces as, runs of spaces, special tokens glued to text, lone astral characters).
PIECES = [" ", "  ", "\n", "\t", "▁", "▁▁", "a", "the", " cat", "x", "1", "?", "é", "e\u0301", "東京", "😀", "👩‍💻",
          "\u200b", "ß", "ﷺ", "Ω", *SPECIALS, " </s>", "</s> ", "<s>▁"]


def random_strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 25)):
            if rng.random() < 0.25:  # any code point outside the surrogates
                code = rng.choice([rng.randint(0x20, 0x7F), rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xD7FF),
                                   rng.randint(0xE000, 0xFFFF), rng.randint(0x10000, 0x10FFFF)])
                parts.append(chr(code))
            else:
                parts.append(rng.choice(PIECES))
        out.append("".join(parts))
    return out


def excess(tokenizer, texts: list[str]) -> int:
    """max over texts of tokens - utf8 bytes (special tokens not added, as lengths.py counts)."""
    counts = [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    return max(c - b for c, b in zip(counts, utf8_lengths(texts)))


LEGACY_LLAMA = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
MODERN_LLAMA = {"type": "Sequence", "normalizers": [{"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
                                                    {"type": "Replace", "pattern": {"Regex": "\\A▁"}, "content": "▁▁"}]}
MODERN_PRE = {"type": "Sequence", "pretokenizers": [{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                                                      "split": False}]}


def sentencepiece_bpe(normalizer: dict, pre_tokenizer: dict | None, *, pieces_within_words: bool = False):
    """A small LLaMA-shaped tokenizer: BPE over "▁"-joined text with byte fallback (<0x00>..<0xFF>). With
    `pieces_within_words`, trained on words (as SentencePiece is), so no piece spans a "▁"."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    if pieces_within_words:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    tokenizer.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=200, special_tokens=SPECIALS, initial_alphabet=["▁"]))
    spec = json.loads(tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    spec["model"]["byte_fallback"], spec["model"]["fuse_unk"] = True, True
    spec["normalizer"], spec["pre_tokenizer"] = normalizer, pre_tokenizer
    return Tokenizer.from_str(json.dumps(spec))


def byte_level_bpe(add_prefix_space: bool):
    """benchmarks/sharegpt.py's kind: byte-level BPE with LLaMA's special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tokenizer.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tokenizer


@pytest.mark.parametrize("kind, expected_slack", [("legacy", 1), ("modern", 2), ("bytes", 0), ("bytes_prefix", 1)])
def test_bound_holds_on_random_unicode(kind, expected_slack):
    tokenizer = {"legacy": lambda: sentencepiece_bpe(LEGACY_LLAMA, None), "modern": lambda: sentencepiece_bpe(MODERN_LLAMA, MODERN_PRE),
                 "bytes": lambda: byte_level_bpe(False), "bytes_prefix": lambda: byte_level_bpe(True)}[kind]()
    slack = byte_slack(tokenizer)
    assert slack == expected_slack
    texts = random_strings(3000, seed=len(kind))
    worst = excess(tokenizer, texts)
    assert worst <= slack
    from flan_mini.lengths import count_tokens  # the fast path counts exactly what encode_batch does

    assert count_tokens(tokenizer, texts) == [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    if kind != "modern":  # tight: an unknown character right after the dummy prefix costs every byte plus the prefix
        assert worst == slack


def test_no_bound_where_the_text_can_grow():
    """NFKC turns the 3-byte "ﷺ" into an 18-character phrase: no byte bound, so every text is tokenised."""
    from tokenizers import normalizers

    tokenizer = sentencepiece_bpe(LEGACY_LLAMA, None)
    assert excess(tokenizer, ["ﷺ"]) <= 1
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    assert byte_slack(tokenizer) is None
    assert excess(tokenizer, ["ﷺ"]) > 1
    tokenizer.normalizer = normalizers.Replace(" ", "▁▁")  # one byte becomes two known pieces at worst
    assert byte_slack(tokenizer) is None
    spec = json.loads(byte_level_bpe(False).to_str())
    spec["padding"] = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None, "pad_id": 0,
                       "pad_type_id": 0, "pad_token": "<unk>"}
    assert byte_slack(tokenizers.Tokenizer.from_str(json.dumps(spec))) is None  # counts would include padding


# -- the shortcut in use: same output as counting every text, fewer texts tokenised ------------------------------


class CountingMeasure:
    """A TokenMeasure that counts the texts it tokenises; `exact=True` is the old way (every text tokenised)."""

    def __new__(cls, tokenizer, exact: bool):
        from flan_mini.lengths import TokenMeasure

        class Counting(TokenMeasure):
            tokenised = 0

            def lengths(self, texts):
                self.tokenised += len(texts)
                return super().lengths(texts)

        measure = Counting(tokenizer, "bpe")
        if exact:
            measure._slack = None
        return measure


def words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(["cat", "東京", "naïve", "x*2", "return", "😀", "the"]) for _ in range(rng.randint(low, high)))


def test_few_shot_rows_are_the_same_with_fewer_texts_tokenised(tmp_path):
    import pyarrow as pa

    from flan_mini.compose import RenderSpec, render_rows
    from flan_mini.sources.base import FewShotConfig

    from .test_fewshot import keys_of, toy_family

    rng = random.Random(3)
    n = 400
    table = pa.table({"question": [f"{i} {words(rng, 1, 30 if i % 4 else 120)}?" for i in range(n)],
                      "answer": [words(rng, 1, 20) for _ in range(n)], "task": ["ask"] * n,
                      "language": [rng.choice(["en", "fr"]) for _ in range(n)], "item": [f"item{i}" for i in range(n)]})
    tokenizer = byte_level_bpe(False)
    family = toy_family(tmp_path)
    outputs, counts = [], []
    for exact in (True, False):
        for style in ("inline", "turns"):
            measure = CountingMeasure(tokenizer, exact)
            spec = RenderSpec(family, [family.templates["plain"]], [family.patterns["qa"]],
                              FewShotConfig(share=0.6, shots=[1, 2, 3], style=style, max_length=400), measure,
                              task_field="task", exemplar_match=("language",), item_field="item")
            rendered = render_rows(table, spec, keys_of(table), 0, "toy")
            outputs.append((rendered.conversations.to_pylist(), rendered.template_id.to_pylist(),
                            rendered.num_shots.to_pylist(), rendered.stats))
            counts.append(measure.tokenised)
    assert outputs[:2] == outputs[2:]  # identical rows and stats, inline and turns
    assert 0 < counts[2] < counts[0] and 0 < counts[3] < counts[1]  # some rows needed exact counts, not all
    assert 0 < outputs[0][1].count("toy/qa") < n  # a mix of few-shot and zero-shot rows


def test_sharegpt_pieces_are_the_same_with_fewer_conversations_tokenised(tmp_path):
    from flan_mini.sources.sharegpt_clean import split_points
    from flan_mini.sources.sharegpt_split import SplitConfig, Splitter

    byte_level_bpe(False).save(str(tmp_path / "tokenizer.json"))
    rng = random.Random(5)
    conversations = [[(role, words(rng, 1, 30 if rng.random() < 0.95 else 400)) for _ in range(rng.randint(1, 5))
                      for role in ("human", "gpt")] for _ in range(300)]
    config = SplitConfig(max_length=700, unit="tokens", tokenizer="tokenizer.json", chat_format="vicuna_v1.1", turn_overhead=1)
    splitter = Splitter(config, tmp_path)
    budget = splitter.budget()
    calls = []
    measured = splitter.lengths
    splitter.lengths = lambda texts: calls.append(len(texts)) or measured(texts)
    shortcut = [splitter.pieces(turns) for turns in conversations]
    tokenised = len(calls)  # one batch per conversation that might not fit
    expected = []
    for turns in conversations:
        lengths = splitter.pair_lengths(turns)
        expected.append([(s, e, e - s == 1 and lengths[s] > budget) for s, e in split_points(lengths, budget)])
    assert shortcut == expected
    assert 0 < tokenised < len(conversations) * 0.8
    assert any(len(p) > 1 for p in shortcut) and any(over for p in shortcut for _, _, over in p)
