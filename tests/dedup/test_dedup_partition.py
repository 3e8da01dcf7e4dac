"""Dedup on an executor (partition.py): the same clusters file bytes, removed rows and stats as the local path."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dedup_helpers import build_table, planted_corpus, random_text, substitute
from executors import PicklingExecutor, ray_executor
from test_dedup_exact import near_threshold_corpus

from flan_mini.dedup.config import DedupConfig
from flan_mini.dedup.partition import ParquetBatches, band_partition, partition_count
from flan_mini.dedup.report import write_clusters
from flan_mini.dedup.stage import dedup_table, deduplicate
from flan_mini.dedup.texts import TextSpec
from flan_mini.executor import LocalExecutor


def varied_table() -> pa.Table:
    """Planted exact, near and merely similar copies in two sources, pairs straddling 0.8, exact copies of
    near duplicates, empty texts, and a bucket of 40 copies (over a bucket_cap of 4)."""
    planted, _ = planted_corpus()
    rows, _ = near_threshold_corpus()
    rng = np.random.default_rng(3)
    base = random_text(rng, 150)
    near = substitute(rng, base, 2)
    rows += [{"id": "n0", "recipe_source": "beta", "prompt": "q", "response": base},
             {"id": "n1", "recipe_source": "alpha", "prompt": "q", "response": near},
             {"id": "n2", "recipe_source": "alpha", "prompt": "Q", "response": near.upper() + " !"},
             {"id": "e0", "recipe_source": "beta", "prompt": "", "response": ""},
             {"id": "e1", "recipe_source": "alpha", "prompt": " ", "response": "..."}]
    body = random_text(rng, 120)
    rows += [{"id": f"b{i:02d}", "recipe_source": "gamma", "prompt": body, "response": f"answer {i}", "_order": i % 7}
             for i in range(40)]
    table = pa.concat_tables([planted, build_table(rows).cast(planted.schema)])
    return table.take(pa.array(np.random.default_rng(11).permutation(table.num_rows)))  # keep order != row order


@pytest.fixture(scope="module")
def table():
    return varied_table()


def same(a, b, tmp_path) -> None:
    """Identical results: keep mask, stats and the clusters file's bytes."""
    assert a.keep.equals(b.keep)
    assert a.stats == b.stats
    first, second = write_clusters(a.clusters, tmp_path / "a"), write_clusters(b.clusters, tmp_path / "b")
    assert first["sha256"] == second["sha256"]


CONFIGS = {
    "exact": DedupConfig(bucket_cap=4),
    "datasketch": DedupConfig(mode="datasketch", bucket_cap=4),
    "scope-source": DedupConfig(scope="source", keep=["gamma", "beta"]),
    "response-chars-0.7": DedupConfig(compare="response", threshold=0.7, shingle={"kind": "char", "size": 7}),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("partitions", [1, 3, 16])
def test_partitioned_path_gives_the_local_result(table, name, partitions, tmp_path):
    config = CONFIGS[name]
    local = dedup_table(table, config, workers=1)
    assert local.stats["near"] > 0 and local.stats["exact"] > 0
    spread = dedup_table(table, config, executor=LocalExecutor(2), partitions=partitions, batch_bytes=3000)
    same(local, spread, tmp_path)


def test_a_cluster_executor_takes_the_partitioned_path_with_picklable_tasks(table, tmp_path):
    config = CONFIGS["exact"]
    executor = PicklingExecutor(2)
    result = dedup_table(table, config, executor=executor, batch_bytes=5000)
    same(dedup_table(table, config), result, tmp_path)
    parts = partition_count(table.num_rows, 16, 2)
    assert executor.calls["sketch_ranked"] > 5  # one task per batch
    assert executor.calls["exact_partition"] == executor.calls["band_partition"] == parts
    assert executor.calls["detail_rows"] >= 1
    # The batches' pieces go to the partition tasks as submit's handles, not through the driver and share():
    # only the few exact copies' ranks are shared.
    assert executor.shared == 1
    # Each partition task got only its buckets: band records (key, band|rank) with key % P == its number.
    held = []
    for number, (_, size, bands, _, *pieces) in enumerate(executor.arguments["band_partition"]):
        pieces = [band for _, band in pieces]  # sketch_scatter's (exact, band) records, handed on whole
        records = np.concatenate(pieces)
        assert size == table.num_rows and bands == 16 and (records[:, 0] % np.uint64(parts) == number).all()
        for piece in pieces:  # sorted by band, so the task can take one band at a time
            assert (np.diff((piece[:, 1] >> np.uint64(48)).astype(np.int64)) >= 0).all()
        held.append(len(records))
    assert sum(held) == 16 * (table.num_rows - 2) and max(held) < sum(held) / 2


def test_partition_pairs_members_in_keep_order_and_skips_exact_copies():
    # Band 0: ranks 5, 2, 9 share key 7 (rank 9 is an exact copy: out); band 1: ranks 2 and 5 share key 8.
    records = np.array([[7, 5], [7, 2], [7, 9], [3, 4], [8, (1 << 48) | 2], [8, (1 << 48) | 5]], dtype=np.uint64)
    codes, oversized, largest = band_partition(10, 100, 2, np.array([9]), records[:3], records[3:])
    assert codes.tolist() == [2 * 100 + 5] and (oversized, largest) == (0, 2)


def test_files_read_by_the_tasks_give_the_table_result(table, tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    paths = []
    for number, start in enumerate(range(0, table.num_rows, 150)):
        paths.append(str(folder / f"part-{number}.parquet"))
        pq.write_table(table.slice(start, 150), paths[-1], row_group_size=40)
    config = CONFIGS["datasketch"]
    spec = TextSpec(compare=config.compare)
    options = {"sources": table.column("recipe_source"), "order": table.column("_order").to_numpy(),
               "ids": table.column("id")}
    local = deduplicate(table, spec, config, **options)
    from_files = deduplicate(ParquetBatches(paths, ("conversations",)), spec, config, executor=PicklingExecutor(2),
                             **options)
    same(local, from_files, tmp_path)


def test_empty_and_all_empty_tables(table, tmp_path):
    config = DedupConfig()
    for rows in (table.slice(0, 0), table.filter(pa.array(np.isin(table.column("id").to_numpy(zero_copy_only=False),
                                                                   ["e0", "e1"])))):
        same(dedup_table(rows, config), dedup_table(rows, config, executor=PicklingExecutor(2)), tmp_path)


def test_on_ray(request, table, tmp_path):
    executor = ray_executor(request)
    for config in (CONFIGS["exact"], CONFIGS["scope-source"]):
        same(dedup_table(table, config), dedup_table(table, config, executor=executor, batch_bytes=20000), tmp_path)


def test_dedup_folder_on_an_executor_writes_the_same_files(tmp_path, planted):
    from flan_mini.dedup.folder import dedup_folder
    from flan_mini.shards import write_shards

    table, _ = planted
    folder = tmp_path / "built"
    write_shards(table.drop_columns(["_order"]), folder, target_shard_bytes=table.nbytes // 3)
    local = dedup_folder(folder, tmp_path / "a", DedupConfig())
    spread = dedup_folder(folder, tmp_path / "b", DedupConfig(), executor=PicklingExecutor(2))
    assert local["clusters"]["sha256"] == spread["clusters"]["sha256"] and local["clusters"]["rows"] > 0
    shards = [[s["sha256"] for s in r["splits"]["train"]["shards"]] for r in (local, spread)]
    assert shards[0] == shards[1]


class DriverBytes(PicklingExecutor):
    """Counts the pickled bytes the driver receives (results of ``map`` and values it ``fetch``es; results of
    ``submit`` stay on the executor, Ray's object store, until a task or ``fetch`` takes them) and sends (task
    arguments other than the handles ``submit`` and ``share`` gave)."""

    def __init__(self, workers: int = 2):
        super().__init__(workers)
        self.received = self.sent = 0
        self._submitting = False
        self._handles: list = []  # kept alive, so that their ids name them

    def map(self, fn, jobs, *, inflight=None):
        def counted():
            handles = {id(h) for h in self._handles}
            for job in jobs:
                self.sent += sum(len(pickle.dumps(arg)) for arg in job if id(arg) not in handles)
                yield job

        for result in super().map(fn, counted(), inflight=inflight):
            if not self._submitting:
                self.received += len(pickle.dumps(result))
            yield result

    def submit(self, fn, jobs, *, returns=1, inflight=None):
        self._submitting = True
        try:
            for handles in super().submit(fn, jobs, returns=returns, inflight=inflight):
                self._handles.extend(handles if returns > 1 else [handles])
                yield handles
        finally:
            self._submitting = False

    def share(self, value):
        handle = super().share(value)
        self._handles.append(handle)
        return handle

    def fetch(self, handle):
        self.received += len(pickle.dumps(handle))
        return handle


def grown_corpus(rng, extra: int) -> pa.Table:
    """The planted corpus and ``extra`` distinct rows."""
    planted, _ = planted_corpus()
    planted = planted.select(["id", "recipe_source", "conversations", "_order"])
    rows = [{"id": f"x{i:05d}", "recipe_source": "alpha", "prompt": "q", "response": random_text(rng, 40),
             "_order": i} for i in range(extra)]
    return pa.concat_tables([planted, build_table(rows).select(planted.column_names).cast(planted.schema)])


def test_the_driver_receives_nothing_per_row(tmp_path, monkeypatch):
    """Growing a corpus by distinct rows adds nothing to what the tasks send the driver: no per-row counts,
    ranks or keys (the driver used to receive each row's shingle count and flags: 6 bytes a row)."""
    import flan_mini.dedup.keep_rank as keep_rank

    monkeypatch.setattr(keep_rank, "SAMPLE_KEYS", 64)  # the keep order's samples: a constant, not per row
    rng = np.random.default_rng(5)
    received = []
    for extra in (0, 4000):
        table = grown_corpus(rng, extra)
        executor = DriverBytes(2)
        result = dedup_table(table, DedupConfig(), executor=executor, partitions=4, batch_bytes=64 << 20)
        same(dedup_table(table, DedupConfig()), result, tmp_path / str(extra))
        received.append(executor.received)
    assert received[1] - received[0] < 4000 * 0.5, received


@pytest.mark.parametrize("scope", ["global", "source"])
def test_from_files_the_driver_sends_and_receives_nothing_per_row(tmp_path, monkeypatch, scope):
    """With ids and _order read by the tasks from the files, the driver sends no per-row rank, key or id and
    receives none: the keep order is sorted by tasks (keep_rank.py). (It held and shipped every row's rank, 4
    bytes a row, and took ids and _order arrays from the caller.) Scope source ships the rows' source codes,
    one byte a row."""
    import flan_mini.dedup.keep_rank as keep_rank

    monkeypatch.setattr(keep_rank, "SAMPLE_KEYS", 64)
    rng = np.random.default_rng(5)
    config = DedupConfig(scope=scope)
    spec = TextSpec(compare=config.compare)
    figures = []
    for extra in (0, 4000):
        table = grown_corpus(rng, extra)
        path = tmp_path / f"rows-{extra}.parquet"
        pq.write_table(table, path, row_group_size=-(-table.num_rows // 4))  # 4 batches: per-batch costs cancel
        sources = table.column("recipe_source") if scope == "source" else None
        local = deduplicate(table, spec, config, sources=sources, order=table.column("_order").to_numpy(),
                            ids=table.column("id"))
        executor = DriverBytes(2)
        files = ParquetBatches([str(path)], ("conversations",), id_column="id", order_column="_order")
        result = deduplicate(files, spec, config, sources=sources, order=None, ids=None, executor=executor,
                             partitions=4)
        same(local, result, tmp_path / str(extra))
        assert local.stats["exact"] > 0 and local.stats["near"] > 0
        figures.append((executor.sent, executor.received))
    per_row = 1 if scope == "source" else 0
    assert figures[1][0] - figures[0][0] < 4000 * (per_row + 0.5), figures
    assert figures[1][1] - figures[0][1] < 4000 * 0.5, figures


@pytest.mark.parametrize("partitions", [1, 5])
def test_one_source_without_source_column_gives_the_local_result(table, partitions, tmp_path):
    config = CONFIGS["exact"]
    spec = TextSpec(compare=config.compare)
    options = {"sources": None, "order": table.column("_order").to_numpy(), "ids": table.column("id")}
    local = deduplicate(table, spec, config, **options)
    assert local.stats["near"] > 0
    same(local, deduplicate(table, spec, config, executor=PicklingExecutor(2), partitions=partitions, **options),
         tmp_path)


def test_keep_order_sorts_by_priority_order_id_then_input_position_with_full_ties():
    from flan_mini.dedup.clusters import keep_order

    rng = np.random.default_rng(2)
    n = 5000  # few distinct (priority, order, id): input position breaks most ties
    priority, order = rng.integers(0, 3, n), rng.integers(0, 4, n)
    ids = pa.chunked_array([pa.array(rng.choice(["a", "b", "c"], 2000)), pa.array(rng.choice(["a", "b"], 3000))])
    names = ids.to_pylist()
    expected = sorted(range(n), key=lambda row: (priority[row], order[row], names[row], row))
    assert (keep_order(priority, order, ids) == expected).all()
    assert (keep_order(None, order, ids) == sorted(range(n), key=lambda row: (order[row], names[row], row))).all()


def test_part_blocks_bound_pairs_and_parts():
    from flan_mini.dedup.partitioned import part_blocks

    a, b = np.array([0, 0, 2, 2, 2, 2, 2]), np.array([0, 1, 3, 3, 3, 3, 3])
    assert part_blocks(a, b, 100, 2) == [(0, 2), (2, 7)]
    assert part_blocks(a, b, 2, 4) == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert part_blocks(a, b, 3, 4) == [(0, 2), (2, 5), (5, 7)]
    assert part_blocks(a[:0], b[:0], 3, 4) == []
    rng = np.random.default_rng(0)  # any input: blocks tile the pairs, each within both bounds
    a, b = np.sort(rng.integers(0, 30, 2000)), rng.integers(0, 30, 2000)
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    blocks = part_blocks(a, b, 50, 6)
    assert blocks[0][0] == 0 and blocks[-1][1] == 2000 and all(x[1] == y[0] for x, y in zip(blocks, blocks[1:]))
    for lo, hi in blocks:
        assert hi - lo <= 50 and len(set(a[lo:hi]) | set(b[lo:hi])) <= 6


@pytest.mark.parametrize("name", ["exact", "datasketch"])
def test_small_verify_blocks_give_the_local_result(table, name, tmp_path, monkeypatch):
    import flan_mini.dedup.partitioned as partitioned

    monkeypatch.setattr(partitioned, "VERIFY_PAIRS", 3)
    monkeypatch.setattr(partitioned, "VERIFY_PARTS", 2)
    executor = PicklingExecutor(2)
    spread = dedup_table(table, CONFIGS[name], executor=executor, batch_bytes=3000)
    assert executor.calls["verify_block"] > 10
    same(dedup_table(table, CONFIGS[name]), spread, tmp_path)
