"""The FastChat JSON export: one JSON array of {id, conversations}, read back as FastChat's train.py reads it."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from flan_mini.errors import FlanMiniError, RecipeError
from flan_mini.export_fastchat import write_fastchat_json
from flan_mini.hub import publish_files
from flan_mini.manifest import check_folder
from flan_mini.recipe import load_recipe
from flan_mini.shards import OUTPUT_SCHEMA, read_shards, shard_paths, to_messages, write_shards

from .conftest import SAMPLE_DATA, run_cli, write_recipe

RECIPE = f"""
    name: export
    seed: 3
    output: {{fastchat_json: {{name}}, format: {{format}}, shard_size: 2KB}}
    sources:
      - name: code_alpaca
        adapter: alpaca
        path: {SAMPLE_DATA / "code_alpaca" / "code_alpaca_20k.json"}
        n: 8
      - name: sharegpt
        adapter: sharegpt
        path: {SAMPLE_DATA / "sharegpt" / "ShareGPT_V3_unfiltered_cleaned_split.json"}
        n: 6
        max_reject_rate: 0.9
"""


def load_as_fastchat(path) -> list[dict]:
    """What FastChat's make_supervised_data_module does with --data_path, and the checks its preprocess makes."""
    raw_data = json.load(open(path, "r"))
    roles = {"human": "USER", "gpt": "ASSISTANT"}
    for example in raw_data:
        source = example["conversations"]
        assert roles[source[0]["from"]] == "USER"
        for j, sentence in enumerate(source):
            assert roles[sentence["from"]] == ("USER", "ASSISTANT")[j % 2] and isinstance(sentence["value"], str)
    return raw_data


@pytest.mark.parametrize("layout", ["conversations", "messages"])
def test_build_writes_the_json_beside_the_shards_and_lists_it(tmp_path, layout):
    recipe = write_recipe(tmp_path, RECIPE.replace("{name}", "true").replace("{format}", layout))
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert len(shard_paths(out)) > 1  # rows come from every shard, in order
    records = load_as_fastchat(out / "flan_mini.json")
    table = read_shards(out)
    if layout == "messages":
        assert [[(m["role"], m["content"]) for m in r] for r in table.column("messages").to_pylist()] == [
            [({"human": "user", "gpt": "assistant"}[t["from"]], t["value"]) for t in r["conversations"]] for r in records]
    else:
        assert records == table.select(["id", "conversations"]).to_pylist()
    assert [r["id"] for r in records] == table.column("id").to_pylist() and len(records) == 14
    assert all(list(r) == ["id", "conversations"] for r in records)

    manifest, _ = check_folder(out)
    listed = manifest["exports"]["fastchat_json"]
    assert listed["path"] == "flan_mini.json" and listed["rows"] == 14
    assert listed["bytes"] == (out / "flan_mini.json").stat().st_size
    assert "flan_mini.json" in publish_files(out, manifest)  # push uploads it
    (out / "flan_mini.json").write_text("[]")
    with pytest.raises(FlanMiniError, match="flan_mini.json: sha256 differs"):
        check_folder(out)


def test_a_named_export_and_no_export(tmp_path):
    recipe = write_recipe(tmp_path, RECIPE.replace("{name}", "chat_v1.json").replace("{format}", "conversations"))
    assert run_cli("build", recipe, "--out", tmp_path / "named", "--quiet").exit_code == 0
    assert (tmp_path / "named" / "chat_v1.json").is_file() and not (tmp_path / "named" / "flan_mini.json").exists()
    recipe = write_recipe(tmp_path, RECIPE.replace("{name}", "false").replace("{format}", "conversations"))
    assert run_cli("build", recipe, "--out", tmp_path / "none", "--quiet").exit_code == 0
    assert not list((tmp_path / "none").glob("*.json*")) or [p.name for p in (tmp_path / "none").glob("*.json")] == ["manifest.json"]
    assert "exports" not in json.loads((tmp_path / "none" / "manifest.json").read_text())


@pytest.mark.parametrize("name, message", [
    ("data.txt", "String should match pattern"),
    ("'../up.json'", "String should match pattern"),
    ("manifest.json", "is the build's own file"),
])
def test_bad_export_names_are_refused(tmp_path, name, message):
    recipe = write_recipe(tmp_path, RECIPE.replace("{name}", name).replace("{format}", "conversations"))
    with pytest.raises(RecipeError, match=message):
        load_recipe(recipe)


def test_awkward_text_survives_the_round_trip(tmp_path):
    values = ['quotes " and \\ backslash', "new\nline\ttab\r", "unicode é ü 漢字 🎉", "\u2028\u2029 separators", "\x00\x01\x1f controls",
              "</script>", ""]
    conversations = [[{"from": "human", "value": v}, {"from": "gpt", "value": v[::-1]}] for v in values]
    n = len(values)
    table = pa.Table.from_pydict({
        "id": [f"x-{i}" for i in range(n)], "source": ["s"] * n, "conversations": conversations, "recipe_source": ["s"] * n,
        "template_id": [None] * n, "template_type": [None] * n, "num_shots": [None] * n, "source_id": [None] * n,
    }, schema=OUTPUT_SCHEMA)
    for layout, transform in (("c", None), ("m", to_messages)):
        shards = write_shards(table, tmp_path / layout, target_shard_bytes=200, transform=transform)
        entry = write_fastchat_json(tmp_path / layout, [tmp_path / layout / s.path for s in shards])
        assert len(shards) > 1 and entry["rows"] == n
        assert json.loads((tmp_path / layout / "flan_mini.json").read_text(encoding="utf-8")) == [
            {"id": f"x-{i}", "conversations": c} for i, c in enumerate(conversations)]


def test_an_empty_release_is_an_empty_array(tmp_path):
    table = OUTPUT_SCHEMA.empty_table()
    shards = write_shards(table, tmp_path, target_shard_bytes=1000)
    entry = write_fastchat_json(tmp_path, [tmp_path / s.path for s in shards])
    assert json.loads((tmp_path / "flan_mini.json").read_text()) == [] and entry["rows"] == 0


def test_the_plan_says_the_json_is_written(tmp_path):
    recipe = write_recipe(tmp_path, RECIPE.replace("{name}", "true").replace("{format}", "conversations"))
    result = run_cli("validate", recipe)
    assert result.exit_code == 0, result.output
    assert "and flan_mini.json for FastChat)" in result.output
