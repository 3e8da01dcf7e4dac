"""Shards are written as `datasets` writes them for the Hub: content-defined pages, a page index, same bytes."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from flan_mini.shards import CDC_OPTIONS, OUTPUT_SCHEMA, write_shards


def _table(rows: int) -> pa.Table:
    return pa.Table.from_pylist([
        {"id": f"r{i}", "source": "s", "conversations": [{"from": "human", "value": f"question {i} " * 20},
                                                          {"from": "gpt", "value": f"answer {i} " * 30}],
         "recipe_source": "s", "template_id": None, "template_type": None, "num_shots": None}
        for i in range(rows)
    ], schema=OUTPUT_SCHEMA)


def test_shards_have_content_defined_pages_a_page_index_and_stable_bytes(tmp_path):
    import datasets

    table = _table(3000)
    one = write_shards(table, tmp_path / "one", target_shard_bytes=1 << 30)
    two = write_shards(table, tmp_path / "two", target_shard_bytes=1 << 30)
    assert [s.sha256 for s in one] == [s.sha256 for s in two]
    handle = pq.ParquetFile(tmp_path / "one" / one[0].path)
    assert json.loads(handle.metadata.metadata[b"content_defined_chunking"]) == CDC_OPTIONS
    column = handle.metadata.row_group(0).column(2)
    assert column.has_offset_index and column.has_column_index
    # `datasets` reads the marker the same way it reads its own shards.
    assert datasets.config.DEFAULT_CDC_OPTIONS == CDC_OPTIONS
    assert pq.read_table(tmp_path / "one" / one[0].path).equals(table)
