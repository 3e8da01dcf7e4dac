"""Decontamination scans on an executor: the index shipped once, batches as tasks, the same matches bytes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flan_mini.decontam.stage import text_spec

from ..dedup.executors import PicklingExecutor, ray_executor
from .test_decontam_index import engine_for, random_corpus, rows_table


def corpus():
    rng = np.random.default_rng(21)
    segments, texts = random_corpus(rng, rows=120)
    table = rows_table(texts)
    # Two sources and a null one, so the per-source counts are exercised too.
    sources = pa.array([("a", "b", None)[i % 3] for i in range(table.num_rows)], pa.string())
    return segments, table.set_column(table.schema.get_field_index("recipe_source"), "recipe_source", sources)


def matches_bytes(result, path) -> bytes:
    pq.write_table(result.matches, path)
    return path.read_bytes()


def test_scan_on_a_cluster_executor_gives_the_local_matches(tmp_path):
    segments, table = corpus()
    engine = engine_for(segments, 8, 5, 0.5, batch_rows=7)
    local = engine.scan_table(table, workers=2)
    executor = PicklingExecutor(2)
    spread = engine.scan_table(table, executor=executor)
    assert local.matches.num_rows >= 10
    assert matches_bytes(local, tmp_path / "a.parquet") == matches_bytes(spread, tmp_path / "b.parquet")
    assert (local.checked, local.rows) == (spread.checked, spread.rows)
    assert executor.shared == 1  # the index went out once...
    assert executor.calls["scan_batch"] == -(-table.num_rows // 7)  # ...and every batch was a task
    # Each task got IPC bytes of its own rows' columns only, not the parent table's buffers.
    sizes = [len(job[1]) for job in executor.arguments["scan_batch"]]
    assert max(sizes) < table.nbytes / 4


def test_streamed_batches_without_ids_number_rows_across_batches(tmp_path):
    segments, table = corpus()
    engine = engine_for(segments, 8, 5, 0.5)
    stream = table.select(["conversations"]).to_batches(max_chunksize=11)
    local = engine.scan(iter(stream), text_spec(engine.config))
    spread = engine.scan(iter(stream), text_spec(engine.config), executor=PicklingExecutor(2))
    assert local.matches.column("id").to_pylist() == spread.matches.column("id").to_pylist()
    assert any(int(i.split("-")[1]) > 11 for i in spread.matches.column("id").to_pylist())
    assert matches_bytes(local, tmp_path / "a.parquet") == matches_bytes(spread, tmp_path / "b.parquet")


def test_on_ray(request, tmp_path):
    executor = ray_executor(request)
    segments, table = corpus()
    engine = engine_for(segments, 8, 5, 0.5, batch_rows=16)
    local, spread = engine.scan_table(table), engine.scan_table(table, executor=executor)
    assert matches_bytes(local, tmp_path / "a.parquet") == matches_bytes(spread, tmp_path / "b.parquet")
