"""A pushed build reads back by repo id with `datasets`, through the loopback Hub, equal to the local rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flan_mini.card import write_card
from flan_mini.hub import push_folder
from flan_mini.shards import shard_paths

from ..conftest import SAMPLE_DATA, run_cli, write_recipe
from .built import make_built_folder

REPO = "flan-mini/messages-mix"
ROLE_WORDS = ('"from"', '"value"', "`from`", "`value`", "`human`", "`gpt`", '"human"', '"gpt"', "from/value",
              "`conversations`", "name: from", "name: value")


@pytest.fixture
def messages_build(tmp_path):
    folder = make_built_folder(tmp_path / "work" / "out" / "build", target_shard_bytes=40_000, fmt="messages")
    write_card(folder)  # a local card first: the push must re-render it for the repo
    return folder


def test_a_messages_card_describes_messages_only(messages_build):
    import datasets
    from huggingface_hub import DatasetCard

    text = (messages_build / "README.md").read_text()
    for word in ROLE_WORDS:
        assert word not in text, word
    assert '`{"role": "user" | "assistant", "content": str}`' in text
    header = DatasetCard.load(messages_build / "README.md").data.to_dict()
    features = datasets.Features._from_yaml_list(header["dataset_info"]["features"])
    assert features == datasets.Features.from_arrow_schema(pq.read_schema(shard_paths(messages_build)[0]))
    assert "messages" in features and "conversations" not in features


def test_a_real_messages_build_has_a_messages_card(tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    recipe = write_recipe(tmp_path, f"""
        name: msgs
        output: {{format: messages}}
        sources:
          - {{name: alpaca, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 20}}
          - name: chat
            adapter: sharegpt
            path: {SAMPLE_DATA}/sharegpt/ShareGPT_V3_unfiltered_cleaned_split.json
            n: 6
            max_reject_rate: 0.9
    """)
    out = tmp_path / "out"
    assert run_cli("build", recipe, "--out", out, "-q").exit_code == 0
    text = (out / "README.md").read_text()
    for word in ROLE_WORDS:
        assert word not in text, word
    header = DatasetCard.load(out / "README.md").data.to_dict()
    assert datasets.Features._from_yaml_list(header["dataset_info"]["features"]) == \
        datasets.Features.from_arrow_schema(pq.read_schema(shard_paths(out)[0]))
    assert "Prompts are `user` turns and responses `assistant` turns" in text


def _load_by_repo_id(repo_id: str, endpoint: str, home) -> list[dict]:
    """`datasets.load_dataset(repo_id)` in a fresh process whose only Hub is the loopback one (HF_ENDPOINT), as a
    user's would be: huggingface_hub reads the endpoint at import time."""
    code = ("import json, sys, datasets\n"
            f"ds = datasets.load_dataset({repo_id!r}, split='train')\n"
            "sys.stdout.write(json.dumps(ds.to_list()))\n")
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.pop("HF_TOKEN", None)  # reading a public repo needs no token
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_pushed_build_loads_back_by_repo_id(messages_build, hub, tmp_path):
    result = push_folder(messages_build, REPO)
    assert result.changed
    loaded = _load_by_repo_id(REPO, hub.url, tmp_path / "reader_home")
    local = pa.concat_tables(pq.read_table(p) for p in shard_paths(messages_build))
    assert loaded == local.to_pylist()
    card = hub.files(REPO)["README.md"].decode()
    assert f'load_dataset("{REPO}", split="train")' in card
    published = card + hub.files(REPO)["manifest.json"].decode()
    for local_path in {str(tmp_path), str(messages_build), "/work/", "/tmp/"}:
        assert local_path not in published
    # The stage reports are published beside the data, never inside what the config reads.
    assert "reports/dedup_clusters.parquet" in hub.files(REPO)
    assert "path: data/train-*" in card
