"""Builds go into the training tools with no glue beyond the README's: TRL's SFTTrainer, apply_chat_template, FastChat.

Both output formats are built through the CLI from chat fixtures, read with `datasets` as users do, and
fed through the README's own snippets (read from README.md, so the documented glue is the tested glue).
The chat template is the one `flan-mini finetune` trains with: TRL must label exactly its tokens, and
FastChat's own preprocess must produce exactly its token ids.
"""

from __future__ import annotations

import json
import math
import re

import datasets
import pytest

from finetune.conversation import VICUNA_V1_1
from finetune.encode import IGNORE, encode_batch

from .conftest import REPO, run_cli, write_recipe
from .fixtures.chat_data import write_tulu_jsonl, write_ultrachat_parquet

FORMATS = ("conversations", "messages")


def readme_snippet(marker: str) -> str:
    """The README's Python block holding `marker`."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"README.md has {len(found)} python blocks with {marker!r}"
    return found[0]


def as_messages(ds):
    """A build read with `datasets`, in `messages` form: as is, or through the README's role map."""
    if "messages" in ds.column_names:
        return ds
    scope = {"ds": ds}
    exec(readme_snippet('ROLES = {"human": "user", "gpt": "assistant"}'), scope)
    return scope["ds"]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The same chat sources built in both output formats, read back with `datasets`."""
    tmp = tmp_path_factory.mktemp("consumers")
    write_ultrachat_parquet(tmp / "ultra")
    write_tulu_jsonl(tmp / "tulu.jsonl")
    out = {}
    for fmt in FORMATS:
        recipe = write_recipe(tmp, f"""
            name: consumers
            seed: 3
            output: {{format: {fmt}}}
            sources:
              - {{name: ultra, adapter: chat, path: ultra, split: train_sft, n: 11}}
              - {{name: tulu, adapter: chat, path: tulu.jsonl, n: 9, max_reject_rate: 0.2}}
        """, name=f"{fmt}.yaml")
        result = run_cli("build", recipe, "--out", tmp / fmt, "--quiet")
        assert result.exit_code == 0, result.output
        out[fmt] = datasets.load_dataset(str(tmp / fmt), split="train")
    return out


@pytest.fixture(scope="module")
def tokenizer(builds):
    """A tiny byte-level BPE tokenizer (LLaMA's special tokens) carrying the trainer's chat template."""
    from finetune.tiny import train_tokenizer

    texts = [m["content"] for row in builds["messages"]["messages"] for m in row]
    tok = train_tokenizer(texts, vocab_size=300)
    tok.chat_template = VICUNA_V1_1.chat_template()
    return tok


def trainer_labels(rows, tok) -> list[list[int]]:
    encoded = encode_batch(rows, tok, VICUNA_V1_1, max_length=100_000)
    assert set(encoded["status"]) == {"ok"}
    return [labels.tolist() for labels in encoded["labels"]], [ids.tolist() for ids in encoded["input_ids"]]


def test_the_role_map_gives_the_messages_build(builds):
    assert as_messages(builds["conversations"])["messages"] == builds["messages"]["messages"]
    roles = {m["role"] for row in builds["messages"]["messages"] for m in row}
    assert roles == {"user", "assistant"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_apply_chat_template_gives_the_trainers_ids_and_mask(builds, tokenizer, fmt):
    ds = as_messages(builds[fmt])
    labels, ids = trainer_labels(ds["messages"], tokenizer)
    for row, row_labels, row_ids in zip(ds["messages"], labels, ids):
        out = tokenizer.apply_chat_template(row, return_dict=True, return_assistant_tokens_mask=True)
        assert out["input_ids"] == row_ids
        assert out["assistant_masks"] == [int(label != IGNORE) for label in row_labels]
        prompt = tokenizer.apply_chat_template(row[:-1], tokenize=False, add_generation_prompt=True)
        turns = [(m["role"], m["content"]) for m in row[:-1]]
        assert prompt == tokenizer.bos_token + VICUNA_V1_1.render_prompt(turns)


@pytest.mark.parametrize("fmt", FORMATS)
def test_trl_sft_trainer_trains_two_steps_on_assistant_tokens_only(builds, tokenizer, fmt, tmp_path, capsys):
    from trl import SFTConfig, SFTTrainer

    from finetune.config import TinyBase
    from finetune.tiny import tiny_model

    ds = as_messages(builds[fmt])
    model = tiny_model(TinyBase(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, seed=0), len(tokenizer))
    args = SFTConfig(
        output_dir=str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3,
        assistant_only_loss=True, max_length=4096, logging_steps=1, save_strategy="no", report_to="none",
        use_cpu=True, disable_tqdm=True, seed=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    # TRL's labels are exactly those flan-mini's own trainer computes.
    processed = trainer.train_dataset
    labels, ids = trainer_labels(ds["messages"], tokenizer)
    assert processed["input_ids"] == ids and processed["labels"] == labels
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) and loss > 0 for loss in losses)
    with capsys.disabled():
        print(f"\nTRL SFTTrainer on a `{fmt}` build: losses {[round(loss, 4) for loss in losses]}")


def test_fastchat_train_reads_the_export_as_the_trainers_token_ids(builds, tokenizer, tmp_path, monkeypatch):
    """The README's export, read as FastChat's train.py reads --data_path, tokenised by its own preprocess."""
    import copy

    from fastchat.train import train
    monkeypatch.chdir(tmp_path)
    exec(readme_snippet('json.dump(ds.select_columns(["id", "conversations"])'), {"ds": builds["conversations"]})
    records = json.load(open(tmp_path / "flan_mini.json"))  # as make_supervised_data_module reads it
    assert len(records) == builds["conversations"].num_rows and all(set(r) == {"id", "conversations"} for r in records)
    sources = [record["conversations"] for record in records]
    fastchat_tokenizer = copy.deepcopy(tokenizer)
    fastchat_tokenizer.pad_token = fastchat_tokenizer.unk_token  # as train.py sets it
    fastchat_tokenizer.model_max_length = 4096
    fastchat_tokenizer.legacy = False  # LlamaTokenizer's flag, read by FastChat's label masking only (not compared here)
    out = train.preprocess(sources, fastchat_tokenizer)
    _, ids = trainer_labels(sources, tokenizer)
    for row_ids, mask, ours in zip(out["input_ids"], out["attention_mask"], ids):
        assert row_ids[mask].tolist() == ours  # FastChat's vicuna_v1.1 prompt = the trainer's, token for token


def test_without_the_role_map_trl_refuses_a_conversations_build(builds, tokenizer, tmp_path):
    """Why the README's glue exists: from/value rows with human/gpt roles are not conversational to TRL."""
    from trl import SFTConfig, SFTTrainer

    from finetune.config import TinyBase
    from finetune.tiny import tiny_model

    model = tiny_model(TinyBase(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2), len(tokenizer))
    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, assistant_only_loss=True, max_length=4096,
                     report_to="none", use_cpu=True, disable_tqdm=True)
    with pytest.raises(ValueError, match="not conversational"):
        SFTTrainer(model=model, args=args, train_dataset=builds["conversations"], processing_class=tokenizer)
