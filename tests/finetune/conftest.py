"""Shared fixtures for the finetune tests: built-dataset folders (shards + manifest.json), a tiny tokenizer, a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from flan_mini.shards import OUTPUT_SCHEMA, write_shards

CAPITALS = [
    ("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Egypt", "Cairo"),
    ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Norway", "Oslo"), ("Cuba", "Havana"),
]


def conversations(rows: int) -> list[list[dict]]:
    """Deterministic, learnable conversations: single-turn facts and sums, and some two-round chats."""
    out = []
    for i in range(rows):
        country, capital = CAPITALS[i % len(CAPITALS)]
        a, b = i % 7, (3 * i) % 11
        if i % 4 == 3:
            turns = [
                ("human", f"What is the capital of {country}?"), ("gpt", f"The capital of {country} is {capital}."),
                ("human", f"And what is {a} plus {b}?"), ("gpt", f"{a} plus {b} is {a + b}."),
            ]
        elif i % 2:
            turns = [("human", f"Add {a} and {b}."), ("gpt", f"{a} + {b} = {a + b}.")]
        else:
            turns = [("human", f"Name the capital of {country}."), ("gpt", f"It is {capital}.")]
        out.append([{"from": who, "value": text} for who, text in turns])
    return out


def write_built_folder(folder: Path, rows: int = 120, convs: list[list[dict]] | None = None) -> Path:
    """Write ``data/train-*.parquet`` with OUTPUT_SCHEMA and a minimal manifest.json, as `flan-mini build` does."""
    convs = convs if convs is not None else conversations(rows)
    table = pa.table(
        {
            "id": [f"row-{i}" for i in range(len(convs))],
            "source": ["fixture"] * len(convs),
            "conversations": convs,
            "recipe_source": ["fixture"] * len(convs),
            "template_id": [None] * len(convs),
            "template_type": [None] * len(convs),
            "num_shots": [None] * len(convs),
            "source_id": [None] * len(convs),
        },
        schema=OUTPUT_SCHEMA,
    )
    # Two shards, so readers are exercised on more than one file.
    shards = write_shards(table, folder, target_shard_bytes=table.nbytes // 2 + 1)
    manifest = {
        "format_version": 1,
        "name": "fixture",
        "seed": 0,
        "output": {
            "format": "conversations", "split": "train", "rows": table.num_rows,
            "bytes": sum(s.bytes for s in shards), "shards": [s.to_dict() for s in shards],
        },
        "sources": [],
    }
    (Path(folder) / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return Path(folder)


# --- fixtures ------------------------------------------------------------------------------------------------------

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "finetune" / "configs" / "tiny-cpu.yaml"
FLACUNA_CONFIG = REPO / "finetune" / "configs" / "flacuna-13b.yaml"


@pytest.fixture(scope="session")
def make_built():
    """A factory: ``make_built(folder, rows=120, convs=None)`` writes a built dataset folder."""
    return write_built_folder


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    return write_built_folder(tmp_path_factory.mktemp("built") / "sample", rows=120)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE tokenizer trained on the fixture conversations, LLaMA-like special tokens."""
    from finetune.conversation import VICUNA_V1_1
    from finetune.tiny import train_tokenizer

    texts = []
    for conv in conversations(200):
        turns = [("user" if t["from"] == "human" else "assistant", t["value"]) for t in conv]
        texts.append(VICUNA_V1_1.render(turns)[0].replace("</s>", "\n"))
    return train_tokenizer(texts, 400)


def tiny_overrides(tmp: Path, built: Path, **extra) -> dict:
    """Point the shipped tiny config at test folders (and keep datasets' cache inside the test's tmp dir)."""
    return {
        "dataset.path": str(built),
        "dataset.cache_dir": str(tmp / "hf-cache"),
        "base_model.path": str(tmp / "base"),
        "output.dir": str(tmp / "run"),
        "training.max_length": 64,
        **extra,
    }


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, built):
    """One training run of the shipped tiny config on the fixture build, shared by the tests that inspect it."""
    from finetune.train import run

    tmp = tmp_path_factory.mktemp("tiny-run")
    logs = []
    result = run(TINY_CONFIG, tiny_overrides(tmp, built), log=logs.append)
    result.logs = logs
    result.tmp = tmp
    return result


# --- the genuine LLaMA tokenizer (made by tests/finetune/llama_tokenizer.py before pytest) -------------------------

SETUP_HINT = "run `python tests/finetune/llama_tokenizer.py` first (it rebuilds LLaMA's tokenizer.model offline)"


@pytest.fixture(scope="session")
def llama_dir() -> Path:
    """The rebuilt genuine LLaMA ``tokenizer.model`` and llama.cpp's reference encodings. Required in CI."""
    import os

    from .llama_tokenizer import llama_dir as folder

    path = folder()
    if not (path / "tokenizer.model").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path / 'tokenizer.model'} is missing: {SETUP_HINT}")
        pytest.skip(f"no LLaMA tokenizer.model at {path}: {SETUP_HINT}")
    return path


@pytest.fixture(scope="session")
def llama_model_only(tmp_path_factory, llama_dir) -> Path:
    """A tokenizer folder holding only LLaMA's ``tokenizer.model`` (as many LLaMA-family repos ship)."""
    import shutil

    folder = tmp_path_factory.mktemp("llama-model-only")
    shutil.copyfile(llama_dir / "tokenizer.model", folder / "tokenizer.model")
    return folder


@pytest.fixture(scope="session")
def llama_json_only(tmp_path_factory, llama_model_only) -> Path:
    """A tokenizer folder holding only ``tokenizer.json`` (and its config), converted by transformers."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("llama-json-only")
    AutoTokenizer.from_pretrained(str(llama_model_only)).save_pretrained(folder)
    assert not (folder / "tokenizer.model").exists() and (folder / "tokenizer.json").is_file()
    return folder


@pytest.fixture(scope="session")
def llama_both(tmp_path_factory, llama_model_only, llama_json_only) -> Path:
    import shutil

    folder = tmp_path_factory.mktemp("llama-both")
    for source in (llama_model_only, llama_json_only):
        for path in source.iterdir():
            shutil.copyfile(path, folder / path.name)
    return folder


@pytest.fixture(scope="session")
def legacy_llama(llama_dir):
    """transformers' own legacy sentencepiece LLaMA tokenizer (what FastChat got from transformers 4.28): the oracle."""
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    return SentencePieceBackend(
        vocab_file=str(llama_dir / "tokenizer.model"), legacy=True, bos_token="<s>", eos_token="</s>",
        unk_token="<unk>", special_tokens_pattern="bos",
    )
