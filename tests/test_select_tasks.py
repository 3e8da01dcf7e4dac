"""Selection as per-file tasks: the same selection whatever the executor, its width or the file order; counts merge."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest

from flan_mini.bottomk import BottomK, sort_order
from flan_mini.executor import LocalExecutor
from flan_mini.rejects import MAX_EXAMPLES_PER_REASON
from flan_mini.sample import select_source
from flan_mini.select_counts import SourceCounts
from flan_mini.select_tasks import Capacities, scan_file
from flan_mini.sources.files import resolve_local
from flan_mini.sources.flan import FlanAdapter, FlanConfig

from .fixtures.formats import write_openorca_flan, write_sirneural_flan


def flan_rows(count: int, tasks: int, start: int = 0, source: str = "P3", ttype: str = "zs_opt") -> list[dict]:
    return [{"inputs": f"q{i}", "targets": f"a{i}" if i % 17 else "", "task_name": f"{source}_task_{i % tasks}",
             "task_source": source, "template_type": ttype} for i in range(start, start + count)]


SUBMIXES = [("t0_zsopt_data", "P3", "zs_opt"), ("t0_fsopt_data", "P3", "fs_opt"), ("niv2_zsopt_data", "NIv2", "zs_opt"),
            ("dialog_zsopt_data", "Dialog", "zs_opt")]


def flan_source(tmp_path, **options):
    for part, (folder, source, ttype) in enumerate(SUBMIXES):
        write_openorca_flan(tmp_path, folder, flan_rows(90, 5, part * 90, source, ttype))
    write_sirneural_flan(tmp_path, "cot_zs_opt_train.jsonl.gz", flan_rows(60, 3, 1000, "CoT"), raw_lines={7: "{broken"})
    adapter = FlanAdapter(FlanConfig(name="src", adapter="flan", path=".", n=40, max_reject_rate=0.5, **options))
    return adapter, resolve_local(str(tmp_path), ["*_data/*.parquet", "*.jsonl.gz"], "train", tmp_path, adapter.extensions).files


def comparable(selection):
    counts = selection.counts
    return (selection.table.to_pylist(), selection.quotas, selection.shortfall, counts.rows_read, counts.rows_filtered,
            counts.rows_examined, counts.rejected, counts.reject_examples, counts.matched_by_group, counts.tallied)


@pytest.mark.parametrize("options", [{}, {"task_caps": 30}, {"task_caps": {"P3": 20, "CoT": 5, "NIv2": 9, "Dialog": 9}}, {"task_caps": "flan2022"}])
def test_the_selection_is_the_same_on_any_executor_width_and_file_order(tmp_path, options):
    adapter, files = flan_source(tmp_path, **options)
    reference = comparable(select_source(adapter, files, seed=3))
    with LocalExecutor(3) as executor:
        assert comparable(select_source(adapter, files, seed=3, executor=executor)) == reference
        reordered = select_source(adapter, files[::-1], seed=3, executor=executor)
    # Reversed files: the same rows, counts and examples up to the order of the files they come from.
    assert sorted(map(str, reordered.table.to_pylist())) == sorted(map(str, reference[0]))
    assert reordered.quotas == reference[1] and reordered.counts.rejected == reference[6]
    assert reference[6], "the fixture has malformed rows"


def test_per_file_scans_merge_to_the_scan_of_all_rows(tmp_path):
    adapter, files = flan_source(tmp_path, task_caps=10)
    adapter = adapter.prepare(files)
    capacities = Capacities(target=40, spare=0.1)
    scans = [scan_file(adapter, file, 3, capacities) for file in files]
    scans = [pickle.loads(pickle.dumps(scan)) for scan in scans]  # results travel from other processes
    total = sum((scan.counts for scan in scans), SourceCounts())
    assert total.rows_read == sum(s.counts.rows_read for s in scans) == 4 * 90 + 61
    assert total.rows_read == sum(total.scan_rejected.values()) + total.rows_filtered + total.matched
    # Each task keeps at most its groups' capacity; the driver's merge keeps each group's k smallest of all.
    learnt = {}
    pool = BottomK(lambda label: capacities.of(adapter, label, learnt))
    everything = {}
    for index, scan in enumerate(scans):
        learnt.update({k: v for k, v in scan.learnt.items() if k not in learnt})
        mapping = np.array([pool.add(label) for label in scan.labels], np.int32)
        pool.offer(scan.rank, mapping[scan.group], index, scan.fingerprint, scan.ordinal)
        for label, rank in zip(np.asarray(scan.labels, object)[scan.group], scan.rank):
            everything.setdefault(label, []).append(int(rank))
    rank, group, _, _ = pool.compact()
    for g, label in enumerate(pool.labels):
        cap = capacities.of(adapter, label, learnt)
        assert rank[group == g].tolist() == sorted(everything[label])[:cap]


def test_ties_between_equal_ranks_are_broken_by_fingerprint_then_ordinal():
    pool = BottomK(lambda label: 2)
    pool.add("")
    same = np.full(3, 5, np.uint64)
    pool.offer(same, np.zeros(3, np.int32), 1, 900, np.array([4, 5, 6]))
    pool.offer(same, np.zeros(3, np.int32), 0, 100, np.array([9, 8, 7]))  # arrives later, sorts first
    rank, group, file, ordinal = pool.compact()
    assert file.tolist() == [0, 0] and ordinal.tolist() == [7, 8]


@pytest.mark.parametrize("groups", [1, 3, 1500, 70_000])
def test_the_pool_sort_is_lexsorts_order_with_ties_and_many_groups(groups):
    rng = np.random.default_rng(groups)
    n = 20_000
    rank = rng.integers(0, 2**64 - 1, n, dtype=np.uint64)
    rank[rng.random(n) < 0.3] %= 5  # equal ranks, and ranks equal but for their low bits
    rank[rng.random(n) < 0.1] |= np.uint64(3)
    group = rng.integers(0, groups, n).astype(np.int32)
    fingerprint = rng.integers(0, 3, n).astype(np.uint64)
    ordinal = rng.integers(0, 4, n)  # full ties too: lexsort keeps them in position order
    expected = np.lexsort((ordinal, fingerprint, rank, group))
    assert np.array_equal(sort_order(group, rank, fingerprint, ordinal, groups=groups), expected)


def test_counts_add_up_and_keep_the_first_examples_of_each_reason():
    def counts(file: str, reasons: list[str]) -> SourceCounts:
        return SourceCounts(rows_read=len(reasons), scan_rejected=Counter(reasons), adapter_stats=Counter(zero=0, rows=1),
                            reject_examples=[{"reason": r, "file": file} for r in reasons])

    first = counts("a", ["bad"] * 4 + ["worse"])
    second = counts("b", ["bad"] * 3)
    total = first + second
    assert total.rows_read == 8 and total.scan_rejected == {"bad": 7, "worse": 1}
    assert total.adapter_stats == {"zero": 0, "rows": 2}  # zero counts are kept (Counter's own + drops them)
    bad = [e["file"] for e in total.reject_examples if e["reason"] == "bad"]
    assert bad == ["a"] * 4 + ["b"] * (MAX_EXAMPLES_PER_REASON - 4)
    assert (SourceCounts() + total).reject_examples == total.reject_examples
    assert first.rows_read == 5 and len(first.reject_examples) == 5  # + makes a new value: the parts are unchanged
