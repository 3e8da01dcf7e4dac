"""Text past 2 GiB in a column: the large_string path (bigtext.py), run on small data with a lowered threshold.

The real 2 GiB case needs ~10 GB of memory and minutes: `python benchmarks/big_text.py` runs it by hand.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from flan_mini import bigtext
from flan_mini.shards import OUTPUT_SCHEMA, read_shards, shard_paths

from .conftest import SAMPLE_DATA, run_cli, write_recipe


def _build(tmp_path, name, fmt="conversations"):
    recipe = write_recipe(tmp_path, f"""
        name: wide
        seed: 7
        output: {{format: {fmt}, shard_size: 20KB}}
        sources:
          - {{name: alpaca, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 30}}
          - {{name: flan, adapter: flan, path: {SAMPLE_DATA}/flan/flan2021_submix_original, n: 20, task_sources: [Flan2021]}}
          - {{name: chat, adapter: sharegpt, path: {SAMPLE_DATA}/sharegpt, n: 10, max_reject_rate: 0.5}}
    """, name=f"{name}.yaml")
    out = tmp_path / name
    # one worker: the threshold the tests lower lives in this process, not in render's worker processes
    result = run_cli("build", recipe, "--out", out, "-q", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    return out


def test_wide_text_writes_the_declared_schema_and_the_same_rows(tmp_path, monkeypatch):
    normal = _build(tmp_path, "normal")
    monkeypatch.setattr(bigtext, "LARGE_TEXT_BYTES", 6000)  # every joined column past 6 kB goes large_string
    wide = _build(tmp_path, "wide")
    expected = read_shards(normal)
    got = read_shards(wide)
    assert got.schema.remove_metadata().equals(OUTPUT_SCHEMA)
    for path in shard_paths(wide):
        assert pq.read_schema(path).remove_metadata().equals(OUTPUT_SCHEMA)
        assert pq.ParquetFile(path).num_row_groups >= 1
    assert got.to_pylist() == expected.to_pylist()
    assert sum(pq.ParquetFile(p).num_row_groups for p in shard_paths(wide)) > len(shard_paths(wide))  # split to fit


def test_wide_text_in_the_messages_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(bigtext, "LARGE_TEXT_BYTES", 6000)
    out = _build(tmp_path, "messages", fmt="messages")
    table = read_shards(out)
    assert table.schema.field("messages").type == pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def test_a_single_row_too_big_for_a_string_is_named(tmp_path, monkeypatch):
    table = pa.table({"text": pa.array(["x" * 50, "y" * 500], pa.large_string())})
    monkeypatch.setattr(bigtext, "LARGE_TEXT_BYTES", 100)
    groups = bigtext.narrow_groups(table, 10)
    first, schema = next(groups)
    assert first.num_rows == 1 and schema.field("text").type == pa.string()
    try:
        next(groups)
    except Exception as exc:  # noqa: BLE001
        assert "row 1 of a shard holds 500 bytes of text" in str(exc)
    else:
        raise AssertionError("expected an error")
