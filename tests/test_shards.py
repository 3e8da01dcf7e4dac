"""Shards: the Hub's naming, no empty shard, contiguous slices, byte-identical for equal tables."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from flan_mini.shards import read_shards, write_shards


def table(rows: int) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(rows)], "text": ["x" * 100] * rows})


def test_no_empty_shard_and_names_count_the_real_total(tmp_path):
    for rows, target in [(4, 300), (10, 1), (1, 1), (7, 10**9)]:
        folder = tmp_path / f"{rows}-{target}"
        shards = write_shards(table(rows), folder, target_shard_bytes=target)
        assert all(s.rows > 0 for s in shards) and sum(s.rows for s in shards) == rows
        assert [s.path for s in shards] == [f"data/train-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))]
        assert read_shards(folder).column("id").to_pylist() == [f"r{i}" for i in range(rows)]
        assert all(pq.ParquetFile(folder / s.path).metadata.num_rows == s.rows for s in shards)


def test_equal_tables_give_equal_bytes(tmp_path):
    a = write_shards(table(50), tmp_path / "a", target_shard_bytes=2000)
    b = write_shards(table(50), tmp_path / "b", target_shard_bytes=2000)
    assert [s.sha256 for s in a] == [s.sha256 for s in b]


def test_empty_table_gives_one_empty_shard(tmp_path):
    (shard,) = write_shards(table(0), tmp_path, target_shard_bytes=100)
    assert shard.rows == 0 and shard.path == "data/train-00000-of-00001.parquet"


def test_rows_are_gathered_per_shard_in_the_given_order(tmp_path):
    import numpy as np

    source = table(30)
    order = np.array([29, 3, 17, 0, 5, 8, 11, 2], np.int64)
    shards = write_shards(source, tmp_path / "a", target_shard_bytes=300, rows=order)
    assert len(shards) > 1
    assert read_shards(tmp_path / "a").column("id").to_pylist() == [f"r{i}" for i in order]
    same = write_shards(source.take(pa.array(order)), tmp_path / "b", target_shard_bytes=300)
    assert [s.sha256 for s in shards] == [s.sha256 for s in same]


def test_gather_across_chunks_matches_take_and_writes_the_same_bytes(tmp_path):
    import numpy as np

    from flan_mini.shards import TURN, gather

    rng = np.random.default_rng(7)
    chunks = []
    for size in (5, 0, 12, 1, 9):  # chunked by source, one empty, as the pipeline's candidates are
        chunks.append(pa.table({
            "id": pa.array([f"s{size}-{i}" if i % 4 else None for i in range(size)], pa.string()),
            "conversations": pa.array([[{"from": "human", "value": f"q{size}.{i}"}, {"from": "gpt", "value": "a" * i}]
                                       for i in range(size)], pa.list_(TURN)),
        }))
    chunked = pa.concat_tables(chunks)
    assert chunked.column("conversations").num_chunks > 1
    rows = rng.permutation(chunked.num_rows)[:20]
    assert gather(chunked, rows).equals(chunked.take(pa.array(rows)))
    assert gather(chunked, rows[:0]).num_rows == 0
    joined = chunked.combine_chunks()
    a = write_shards(chunked, tmp_path / "a", target_shard_bytes=300, rows=rows)
    b = write_shards(joined, tmp_path / "b", target_shard_bytes=300, rows=rows)
    assert len(a) > 1 and [s.sha256 for s in a] == [s.sha256 for s in b]


def test_shards_gathered_a_row_group_at_a_time_keep_the_bytes_of_a_whole_shard_write(tmp_path, monkeypatch):
    import numpy as np

    from flan_mini import shards
    from flan_mini.shards import OUTPUT_SCHEMA, gather, to_messages, write_parquet

    monkeypatch.setattr(shards, "ROW_GROUP_ROWS", 7)  # 40 rows a shard: groups of 7 and a last one of 5
    rows = [{"id": f"r{i}", "source": "s", "conversations": [{"from": "human", "value": f"q{i}" * (i % 5)},
             {"from": "gpt", "value": f"a{i}"}], "recipe_source": "src" if i % 3 else "other", "template_id": None,
             "template_type": "zs", "num_shots": i % 4, "source_id": None} for i in range(80)]
    half = OUTPUT_SCHEMA.empty_table().cast(OUTPUT_SCHEMA)
    source = pa.concat_tables([pa.Table.from_pylist(rows[:50], schema=OUTPUT_SCHEMA),
                               pa.Table.from_pylist(rows[50:], schema=OUTPUT_SCHEMA), half])
    order = np.random.default_rng(3).permutation(80)
    for transform in (None, to_messages):
        out = tmp_path / str(transform is None)
        written = write_shards(source, out, target_shard_bytes=source.nbytes // 2, rows=order, transform=transform)
        assert [s.rows for s in written] == [40, 40]
        for index, shard in enumerate(written):
            whole = gather(source, order[40 * index: 40 * (index + 1)])
            reference = tmp_path / f"ref-{transform is None}-{index}.parquet"
            write_parquet(whole if transform is None else transform(whole), reference)
            assert (out / shard.path).read_bytes() == reference.read_bytes()
            assert pq.ParquetFile(out / shard.path).num_row_groups == 6
