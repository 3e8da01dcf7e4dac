"""The keep order sorted by tasks (keep_rank.py): the same ranks as clusters.keep_order, the same dedup result."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from executors import PicklingExecutor, ray_executor
from test_dedup_partition import CONFIGS, same, varied_table

from flan_mini.dedup.clusters import keep_order
from flan_mini.dedup.config import DedupConfig
from flan_mini.dedup.keep_rank import ArrayKeys, KeepRanks, batch_ranks
from flan_mini.dedup.partition import ParquetBatches
from flan_mini.dedup.stage import dedup_table, deduplicate
from flan_mini.dedup.texts import TextSpec


def tied_keys(n: int, seed: int):
    """Few distinct priorities, orders and ids (most keys tie up to the row), some null ids, non-ASCII ids
    whose UTF-8 bytes sort differently from their first code unit in UTF-16, two chunks."""
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 3, n).astype(np.uint8)
    order = rng.integers(-2, 3, n).astype(np.int64)
    names = rng.choice(np.array(["a", "b", "ab", "é", "\uffff", "z", ""], dtype=object), n)
    names = [None if k % 17 == 0 else name for k, name in enumerate(names)]
    cut = n // 3
    ids = pa.chunked_array([pa.array(names[:cut], pa.string()), pa.array(names[cut:], pa.string())])
    return code, order, ids


def all_ranks(ranked: KeepRanks, bounds) -> np.ndarray:
    return np.concatenate([batch_ranks(start, stop, ranked.offsets, ranked.by_row) for start, stop in bounds])


@pytest.mark.parametrize("ranges", [1, 2, 7, 500])
@pytest.mark.parametrize("priority", [True, False])
def test_ranks_equal_keep_order_with_ties_and_null_ids(ranges, priority):
    n = 3000
    code, order, ids = tied_keys(n, seed=ranges)
    source_rank = np.array([2, 0, 1], np.int64)
    bounds = [(start, min(start + 130, n)) for start in range(0, n, 130)]
    ranked = KeepRanks(ArrayKeys(ids, order), bounds, code, source_rank if priority else None,
                       PicklingExecutor(2), ranges)
    perm = keep_order(source_rank[code] if priority else None, order, ids).astype(np.int64)
    expected = np.empty(n, np.int64)
    expected[perm] = np.arange(n)
    assert (all_ranks(ranked, bounds) == expected).all()
    assert len(ranked.offsets) - 1 == min(ranges, n) or ranges == 500
    rows, found_order, found_ids = ranked.lookup(np.array([0, 5, n - 1]))
    assert rows.tolist() == perm[[0, 5, n - 1]].tolist()
    assert found_order.tolist() == order[rows].tolist()
    assert found_ids.to_pylist() == [ids[int(r)].as_py() for r in rows]


def test_no_rows_and_one_row():
    executor = PicklingExecutor(2)
    empty = KeepRanks(ArrayKeys(pa.array([], pa.string()), np.zeros(0, np.int64)), [], np.zeros(0, np.uint8), None,
                      executor)
    assert empty.offsets.tolist() == [0, 0] and len(empty.lookup(np.zeros(0, np.int64))[0]) == 0
    one = KeepRanks(ArrayKeys(pa.array(["x"]), np.zeros(1, np.int64)), [(0, 1)], np.zeros(1, np.uint8), None,
                    executor, 4)
    assert all_ranks(one, [(0, 1)]).tolist() == [0]


def tied_table() -> pa.Table:
    """varied_table with every _order tied in pairs and the ids of some rows repeated (exact and near copies
    decided by the id, then by the row)."""
    table = varied_table()
    order = table.column("_order").to_numpy() // 2
    ids = table.column("id").to_pylist()
    ids = [ids[k - 1] if k % 5 == 0 and k else name for k, name in enumerate(ids)]
    table = table.set_column(table.schema.get_field_index("_order"), "_order", pa.array(order, pa.int64()))
    return table.set_column(table.schema.get_field_index("id"), "id", pa.array(ids, pa.string()))


@pytest.mark.parametrize("name", ["exact", "datasketch", "scope-source"])
@pytest.mark.parametrize("ranges", [1, 5])
def test_ties_and_repeated_ids_give_the_local_result_for_any_ranges(name, ranges, tmp_path):
    table = tied_table()
    config = CONFIGS[name]
    spec = TextSpec(compare=config.compare)
    options = {"sources": table.column("recipe_source"), "order": table.column("_order").to_numpy(),
               "ids": table.column("id"), "priority": ["gamma", "alpha"]}
    local = deduplicate(table, spec, config, **options)
    assert local.stats["exact"] > 0 and local.stats["near"] > 0
    spread = deduplicate(table, spec, config, executor=PicklingExecutor(2), partitions=3, ranges=ranges,
                         batch_bytes=4000, **options)
    same(local, spread, tmp_path)


def write_files(table: pa.Table, folder, rows_per_file: int = 150, row_group: int = 40) -> list[str]:
    folder.mkdir()
    paths = []
    for number, start in enumerate(range(0, table.num_rows, rows_per_file)):
        paths.append(str(folder / f"part-{number}.parquet"))
        pq.write_table(table.slice(start, rows_per_file), paths[-1], row_group_size=row_group)
    return paths


@pytest.mark.parametrize("order_column", ["_order", None])
def test_files_whose_tasks_read_ids_and_order_give_the_local_result(order_column, tmp_path):
    table = tied_table()
    paths = write_files(table, tmp_path / "shards")
    config = DedupConfig(keep=["beta"])
    spec = TextSpec(compare=config.compare)
    order = table.column("_order").to_numpy() if order_column else np.arange(table.num_rows)
    local = deduplicate(table, spec, config, sources=table.column("recipe_source"), order=order,
                        ids=table.column("id"))
    files = ParquetBatches(paths, ("conversations",), id_column="id", order_column=order_column)
    spread = deduplicate(files, spec, config, sources=table.column("recipe_source"), order=None, ids=None,
                         executor=PicklingExecutor(2), ranges=3)
    same(local, spread, tmp_path)


def test_files_without_an_id_column_are_refused_by_name(tmp_path):
    from flan_mini.errors import FlanMiniError

    paths = write_files(varied_table(), tmp_path / "shards")
    spec = TextSpec()
    with pytest.raises(FlanMiniError, match="no column 'key'"):
        deduplicate(ParquetBatches(paths, ("conversations",), id_column="key"), spec, DedupConfig(), sources=None,
                    order=None, ids=None, executor=PicklingExecutor(2))
    with pytest.raises(FlanMiniError, match="id_column"):
        deduplicate(ParquetBatches(paths, ("conversations",)), spec, DedupConfig(), sources=None, order=None,
                    ids=None, executor=PicklingExecutor(2))


def test_on_ray_from_files_and_from_a_table(request, tmp_path):
    executor = ray_executor(request)
    table = tied_table()
    config = CONFIGS["scope-source"]
    spec = TextSpec(compare=config.compare)
    options = {"sources": table.column("recipe_source"), "priority": ["gamma", "alpha"]}
    local = deduplicate(table, spec, config, order=table.column("_order").to_numpy(), ids=table.column("id"),
                        **options)
    files = ParquetBatches(write_files(table, tmp_path / "shards"), ("conversations",), id_column="id",
                           order_column="_order")
    same(local, deduplicate(files, spec, config, order=None, ids=None, executor=executor, ranges=3, **options),
         tmp_path / "files")
    same(dedup_table(table, CONFIGS["datasketch"]), dedup_table(table, CONFIGS["datasketch"], executor=executor),
         tmp_path / "table")
