"""The `chat` adapter: messages and from/value sets in their published forms, drops by reason, kept columns, read-backs."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flan_mini.errors import RecipeError, SourceError
from flan_mini.recipe import load_recipe
from flan_mini.shards import OUTPUT_SCHEMA, read_shards, to_messages
from flan_mini.sources.chat import ChatAdapter, ChatConfig
from flan_mini.sources.files import resolve_local

from .conftest import run_cli, write_recipe
from .fixtures.chat_data import messages, write_slimorca_json, write_tulu_jsonl, write_ultrachat_parquet

MIXED_RECIPE = """
    name: chat-mix
    seed: 7
    sources:
      - name: ultrachat
        adapter: chat
        path: ultra
        split: train_sft
        id_column: prompt_id
        n: {n_ultra}
        license: mit
      - name: tulu
        adapter: chat
        path: tulu/sft.jsonl
        keep_columns: [source]
        n: {n_tulu}
        max_reject_rate: 0.1
      - name: slimorca
        adapter: chat
        path: slim/slim.json
        format: conversations
        system_turns: drop
        n: {n_slim}
        max_reject_rate: 0.2
"""


def adapter(path, **options) -> ChatAdapter:
    return ChatAdapter(ChatConfig(name="chat", adapter="chat", path=str(path), n=1, **options))


def read_all(source: ChatAdapter, path, split: str = "train") -> pa.Table:
    inputs = resolve_local(str(path), None, split, path if path.is_dir() else path.parent, source.extensions)
    return pa.Table.from_batches([b for f in inputs.files for b in source.read(f)])


def kept_and_dropped(expected: list) -> tuple[int, Counter]:
    return sum(reason is None for reason in expected), Counter(reason for reason in expected if reason)


def test_three_published_layouts_build_with_exact_counts_and_every_drop_counted(tmp_path):
    expected = {
        "ultrachat": write_ultrachat_parquet(tmp_path / "ultra"),
        "tulu": write_tulu_jsonl(tmp_path / "tulu" / "sft.jsonl"),
        "slimorca": write_slimorca_json(tmp_path / "slim" / "slim.json"),
    }
    counts = {name: kept_and_dropped(reasons) for name, reasons in expected.items()}
    recipe = write_recipe(tmp_path, MIXED_RECIPE.format(
        n_ultra=counts["ultrachat"][0], n_tulu=counts["tulu"][0], n_slim=counts["slimorca"][0]))
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output

    table = read_shards(tmp_path / "out")
    assert table.schema.names == OUTPUT_SCHEMA.names
    written = Counter(table.column("recipe_source").to_pylist())
    assert written == {name: kept for name, (kept, _) in counts.items()}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for entry in manifest["sources"]:
        assert entry["rejected"] == dict(counts[entry["name"]][1]), entry["name"]
    rows = table.to_pylist()
    for row in rows:
        turns = row["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2) and all(t["value"].strip() for t in turns)
    by_source = {name: [r for r in rows if r["recipe_source"] == name] for name in counts}
    # system turns: prepended to the first human turn (default), dropped where the recipe says so
    assert all(r["conversations"][0]["value"].startswith("Be concise.\n\n") for r in by_source["tulu"] if r["source"] != "tulu")
    assert not any("You are" in t["value"] for r in by_source["slimorca"] for t in r["conversations"])
    # kept `source` values; the other sources are labelled with their name
    assert Counter(r["source"] for r in by_source["tulu"]) == {"ai2-adapt-dev/oasst1": 8, "tulu": 1}  # null: the label
    assert {r["source"] for r in by_source["ultrachat"]} == {"ultrachat"}
    # the trailing user turn is gone, content parts are joined, mapped roles are exchanges
    assert any(r["conversations"] == [{"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": "Blue."}]
               for r in by_source["ultrachat"])
    assert any(r["conversations"][0]["value"] == "Add 2 and 2.\nAnswer briefly." for r in by_source["tulu"])
    assert any([t["value"] for t in r["conversations"]] == ["Q", "A", "Q2", "A2"] for r in by_source["slimorca"])
    # test_sft is another split: none of its rows are read
    assert not any(r["conversations"][0]["value"] == "Test question?" for r in rows)

    again = run_cli("build", recipe, "--out", tmp_path / "again", "--quiet")
    assert again.exit_code == 0
    assert [p.read_bytes() for p in sorted((tmp_path / "out" / "data").glob("*"))] == \
        [p.read_bytes() for p in sorted((tmp_path / "again" / "data").glob("*"))]


def test_a_build_read_back_keeps_its_rows_and_columns_in_both_output_formats(tmp_path, sample_build):
    original = read_shards(sample_build)
    messages_build = tmp_path / "messages_build" / "data"
    messages_build.mkdir(parents=True)
    pq.write_table(to_messages(original), messages_build / "train-00000-of-00001.parquet")
    kept = [name for name in OUTPUT_SCHEMA.names if name not in ("id", "conversations", "recipe_source")]
    for path in (sample_build, messages_build.parent):
        recipe = write_recipe(tmp_path, f"""
            name: again
            sources:
              - name: back
                adapter: chat
                path: {path}
                keep_columns: {json.dumps(kept)}
                n: {original.num_rows}
        """)
        out = tmp_path / f"out-{path.name}"
        result = run_cli("build", recipe, "--out", out, "--quiet")
        assert result.exit_code == 0, result.output
        back = read_shards(out)
        key = lambda row: json.dumps([row["conversations"], *(row[name] for name in kept)])  # noqa: E731
        assert sorted(map(key, back.to_pylist())) == sorted(map(key, original.to_pylist()))
        assert set(back.column("recipe_source").to_pylist()) == {"back"}


def test_the_turns_column_is_found_or_the_error_says_what_is_there(tmp_path):
    both = tmp_path / "both.jsonl"
    both.write_text(json.dumps({"messages": messages("a", "b"), "conversations": []}) + "\n")
    with pytest.raises(SourceError, match="has both `messages` and `conversations`"):
        read_all(adapter(both), both)
    assert read_all(adapter(both, format="messages"), both).column("_reject").null_count == 1

    neither = tmp_path / "neither.jsonl"
    neither.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    with pytest.raises(SourceError, match=r"no `messages` \(role/content\) or `conversations` \(from/value\) column \(found: instruction, output\)"):
        read_all(adapter(neither), neither)

    named = tmp_path / "lmsys.jsonl"  # lmsys-chat-1m's `conversation` column
    named.write_text(json.dumps({"conversation_id": "c1", "conversation": messages("hi", "hello")}) + "\n")
    table = read_all(adapter(named, column="conversation", id_column="conversation_id"), named)
    assert table.column("id").to_pylist() == ["c1"] and table.column("conversations")[0].as_py()[1]["value"] == "hello"

    with pytest.raises(SourceError, match="keep_columns names 'source', which the records do not have"):
        read_all(adapter(named, column="conversation", keep_columns=["source"]), named)


def test_kept_values_of_the_wrong_type_reject_their_row(tmp_path):
    path = tmp_path / "shots.jsonl"
    rows = [{"messages": messages("q", "a"), "num_shots": 2}, {"messages": messages("q2", "a2"), "num_shots": "two"},
            {"messages": messages("q3", "a3"), "num_shots": 1 << 40}, {"messages": messages("q4", "a4"), "num_shots": None}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = read_all(adapter(path, keep_columns=["num_shots"]), path)
    assert table.column("_reject").to_pylist() == [None, "wrong_type:num_shots", "wrong_type:num_shots", None]
    assert table.column("num_shots").to_pylist() == [2, None, None, None]


def test_recipe_options_are_validated(tmp_path):
    path = write_recipe(tmp_path, """
        name: chat
        sources:
          - name: c
            adapter: chat
            path: data.jsonl
            n: 3
            format: openai
            keep_columns: [source, model]
    """)
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    text = str(error.value)
    assert "sources[0].format: Input should be 'auto', 'messages' or 'conversations'" in text
    assert "sources[0].keep_columns: 'model' is not an output column that can be kept; expected any of: source" in text


def test_mapped_kept_columns_and_the_dry_run_say_what_is_read(tmp_path):
    write_ultrachat_parquet(tmp_path / "ultra")
    recipe = write_recipe(tmp_path, """
        name: chat
        sources:
          - name: ultra
            adapter: chat
            path: ultra
            split: train_sft
            keep_columns: {prompt: template_id}
            n: 3
    """)
    result = run_cli("build", recipe, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "format: auto" in result.output and "keep_columns: prompt -> template_id" in result.output
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    table = read_shards(tmp_path / "out")
    for row in table.to_pylist():
        assert row["template_id"] == row["conversations"][0]["value"] or row["template_id"].startswith("quirk")
    missing = write_recipe(tmp_path, """
        name: chat
        sources:
          - name: ultra
            adapter: chat
            path: ultra
            split: train
            n: 3
    """, name="missing.yaml")
    result = run_cli("validate", missing)
    assert result.exit_code != 0
    assert "data/train-NNNNN-of-NNNNN shards (the shards' splits: test_sft, train_sft)" in result.output


def test_a_hub_chat_dataset_is_read_through_the_hub_client_from_its_cache(tmp_path, monkeypatch):
    """A Hub id goes through huggingface_hub's snapshot_download (offline here: the cached snapshot of `main`)."""
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "datasets--HuggingFaceH4--ultrachat_mini"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    expected = write_ultrachat_parquet(repo / "snapshots" / commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    kept, dropped = kept_and_dropped(expected)
    recipe = write_recipe(tmp_path, f"""
        name: hub-chat
        sources:
          - {{name: ultra, adapter: chat, path: HuggingFaceH4/ultrachat_mini, split: train_sft, n: {kept}}}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = manifest["sources"][0]
    assert entry["rejected"] == dict(dropped) and read_shards(tmp_path / "out").num_rows == kept
    assert commit in json.dumps(entry)  # the snapshot's commit is recorded


def test_hub_shard_names_name_their_splits_as_datasets_does(tmp_path):
    from flan_mini.sources.files import match_local

    data = tmp_path / "data"
    data.mkdir()
    for name in ("train_sft-00000-of-00002", "train_sft-00001-of-00002", "train_gen-00000-of-00001",
                 "valid-00000-of-00001", "test_sft-00000-of-00001"):
        (data / f"{name}.parquet").write_bytes(b"")
    (tmp_path / "dedup_clusters.parquet").write_bytes(b"")  # beside the shards: not a split's file
    names = lambda split: [p.name for p in match_local(tmp_path, None, split, (".parquet",))[0]]  # noqa: E731
    assert names("train_sft") == ["train_sft-00000-of-00002.parquet", "train_sft-00001-of-00002.parquet"]
    assert names("validation") == ["valid-00000-of-00001.parquet"]  # `valid` is a keyword of validation
    files, unmatched = match_local(tmp_path, None, "train", (".parquet",))
    assert files == [] and "the shards' splits: test_sft, train_gen, train_sft, valid" in unmatched[0]


def test_parquet_turns_read_column_wise_equal_the_row_by_row_records(tmp_path):
    from flan_mini.sources.chat import _parquet_records
    from flan_mini.sources.sharegpt_read import iter_parquet

    write_ultrachat_parquet(tmp_path)
    path = tmp_path / "data" / "train_sft-00000-of-00001.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist() + [{"prompt": "null turns", "prompt_id": "n", "messages": None},
                                {"prompt": "null turn", "prompt_id": "t", "messages": [None, {"role": "user", "content": None}]}]
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path, row_group_size=4)
    names = ["prompt_id", "messages", "plugins"]
    assert list(_parquet_records(path, names, "messages")) == list(iter_parquet(path, names))


def test_system_turns_prepended_dropped_or_rejecting_and_roles_mapped(tmp_path):
    path = tmp_path / "sys.jsonl"
    records = [
        {"conversations": [{"from": "system", "value": "Sys two"}, {"from": "user", "value": "Q2"},
                           {"from": "chatgpt", "value": "A2"}, {"from": "Human", "value": "Q3"}, {"from": "BING", "value": "A3"}]},
        {"messages": messages("Q1", "A1", system="Sys one")},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    # the first record shows the turns column; a record without it is rejected by name
    table = read_all(adapter(path), path)
    assert table.column("_reject").to_pylist() == [None, "missing:conversations"]
    assert [t["value"] for t in table.column("conversations")[0].as_py()] == ["Sys two\n\nQ2", "A2", "Q3", "A3"]
    table = read_all(adapter(path, system_turns="drop"), path)
    assert [t["value"] for t in table.column("conversations")[0].as_py()] == ["Q2", "A2", "Q3", "A3"]
    table = read_all(adapter(path, system_turns="reject"), path)
    assert table.column("_reject").to_pylist() == ["policy:system_turn", "missing:conversations"]
    with pytest.raises(SourceError, match="no `messages` column holding the turns"):
        read_all(adapter(path, format="messages"), path)
