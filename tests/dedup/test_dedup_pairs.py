"""Candidate pairs decided block by block (pairs.py): every pair once, blocks in bounds, same results."""

from __future__ import annotations

import numpy as np
import pytest

from flan_mini.dedup.config import DedupConfig
from flan_mini.dedup.pairs import pair_blocks
from flan_mini.dedup.stage import dedup_table


def check_blocks(a, b, row_bytes, max_rows, max_bytes):
    blocks = pair_blocks(a, b, row_bytes, max_rows, max_bytes)
    seen = np.concatenate([pairs for pairs, *_ in blocks]) if blocks else np.zeros(0, np.int64)
    assert sorted(seen.tolist()) == list(range(len(a)))  # every pair in exactly one block
    for pairs, rows, left, right in blocks:
        assert np.all(np.diff(rows) > 0)  # distinct rows, ascending (what the workers' take expects)
        assert np.array_equal(rows[left], a[pairs]) and np.array_equal(rows[right], b[pairs])
        if len(pairs) > 1:  # a block of one pair may exceed the bounds: it cannot be cut further
            assert len(rows) <= max_rows and row_bytes[rows].sum() <= max_bytes
    return blocks


def test_components_stay_whole_and_rows_are_sketched_once():
    a, b = np.array([1, 7, 2, 9]), np.array([2, 8, 3, 1])
    blocks = check_blocks(a, b, np.ones(10, np.int64), max_rows=4, max_bytes=100)
    assert [rows.tolist() for _, rows, *_ in blocks] == [[1, 2, 3, 9], [7, 8]]


def test_an_oversized_component_is_cut_by_pairs():
    # A chain 0-1-2-...-20: one component of 21 rows, blocks of at most 5 rows or 40 bytes.
    a = np.arange(20)
    b = a + 1
    sizes = np.random.default_rng(0).integers(1, 15, 21)
    blocks = check_blocks(a, b, sizes, max_rows=5, max_bytes=40)
    assert len(blocks) > 4


def test_random_pairs_in_any_bounds():
    rng = np.random.default_rng(1)
    for max_rows, max_bytes in [(1, 1), (3, 50), (50, 10_000)]:
        a, b = rng.integers(0, 60, 80), rng.integers(0, 60, 80)
        check_blocks(a, b, rng.integers(1, 30, 60), max_rows, max_bytes)
    assert pair_blocks(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 5, 5) == []


@pytest.mark.parametrize("mode", ["exact", "datasketch"])
def test_tiny_blocks_on_workers_decide_as_one_block(planted, mode):
    table, _ = planted
    config = DedupConfig(threshold=0.8, mode=mode)
    reference = dedup_table(table, config, workers=1)
    for result in (
        dedup_table(table, config.model_copy(update={"batch_rows": 2}), workers=2),
        dedup_table(table, config, workers=2, batch_bytes=300),
    ):
        assert result.keep.equals(reference.keep)
        assert result.clusters.equals(reference.clusters)
        assert result.stats == reference.stats
    assert reference.stats["near"] > 0


def test_workers_read_their_inherited_table_and_get_any_other_as_ipc(planted, monkeypatch):
    import flan_mini.dedup.sketch as sketch
    from flan_mini.dedup.pairs import pair_similarity
    from flan_mini.dedup.sketch import SketchPlan, Workers, batch_bounds
    from flan_mini.dedup.texts import TextSpec, text_bytes

    table, _ = planted
    config = DedupConfig()
    bands, rows = config.lsh_params()
    plan = SketchPlan(TextSpec(), config.normalize.text_norm(), config.shingle.kind, config.shingle.size,
                      config.num_perm, config.seed, bands, rows, config.max_chars)
    sizes = text_bytes(table, plan.spec)
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, table.num_rows, 60), rng.integers(0, table.num_rows, 60)
    with Workers(1) as one:
        reference = pair_similarity(table, plan, a, b, sizes, 5, 1 << 20, one)
    shipped_blocks = []
    to_ipc = sketch._to_ipc
    monkeypatch.setattr(sketch, "_to_ipc", lambda t: shipped_blocks.append(t.num_rows) or to_ipc(t))
    with Workers(2) as pool:
        list(pool.map("sketch", table, plan, batch_bounds(sizes, 50, 1 << 20)))  # forks with `table`
        inherited = pair_similarity(table, plan, a, b, sizes, 5, 1 << 20, pool)
        assert shipped_blocks == []  # the workers read the rows themselves
        other = table.slice(0)  # same rows, another table object: its rows travel as IPC
        shipped = pair_similarity(other, plan, a, b, sizes, 5, 1 << 20, pool)
        assert len(shipped_blocks) > 1
    assert np.array_equal(inherited, reference) and np.array_equal(shipped, reference)
    assert 0 < (reference > 0).sum() < len(a)  # both zero and non-zero similarities are compared
