"""The one rule for the rows written (stages/pick.py): group quotas by rank, refills, and the few-shot share held by
stratum."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import pytest

from flan_mini.errors import SourceError
from flan_mini.sample import GROUP, RANK
from flan_mini.stages.candidates import Candidates, removals
from flan_mini.stages.pick import exact_rows, few_shot_share, pick_source


def candidates(kinds: str, groups: str | None = None) -> pa.Table:
    """One row per letter of `kinds` ("f" few-shot, "z" zero-shot), ranked in that order (rank 0 first)."""
    n = len(kinds)
    return pa.table({
        GROUP: list(groups or "a" * n),
        RANK: pa.array(np.arange(n), pa.uint64()),
        "template_type": ["fs" if k == "f" else "zs" for k in kinds],
    })


def test_the_cut_holds_the_share_by_rank_within_each_stratum():
    table = candidates("zzzzzzffff")  # 40% few-shot, all ranked after the zero-shot rows
    plain = exact_rows(table, 5, {"a": 5})  # no share asked
    assert table.column("template_type").take(pa.array(plain)).to_pylist().count("fs") == 0  # the blind cut
    rows = exact_rows(table, 5, {"a": 5}, None, 0.4)
    assert rows.tolist() == [0, 1, 2, 6, 7]  # the best-ranked 3 zero-shot and 2 few-shot rows


def test_removed_rows_are_refilled_from_their_own_stratum():
    table = candidates("fzfzfzfzfz")
    removed = np.zeros(10, bool)
    removed[[0, 2]] = True  # dedup took the two best few-shot rows
    rows = exact_rows(table, 5, {"a": 5}, removed, 0.4)
    assert rows.tolist() == [1, 3, 4, 5, 6]  # few-shot 4 and 6 take their places, zero-shot stays 1, 3, 5


def test_a_stratum_that_runs_out_is_filled_from_the_other():
    table = candidates("zffffffff")
    assert exact_rows(table, 4, {"a": 4}, None, 0.25).tolist() == [0, 1, 2, 3]
    assert exact_rows(table, 4, {"a": 4}, None, None).tolist() == [0, 1, 2, 3]


def test_group_quotas_still_apply_inside_each_stratum():
    table = candidates("ffzzffzzffzz", groups="aaaaaabbbbbb")
    rows = exact_rows(table, 6, {"a": 3, "b": 3}, None, 0.5)
    picked = table.take(pa.array(rows))
    assert picked.column("template_type").to_pylist().count("fs") == 3
    assert sorted(picked.column(GROUP).to_pylist()) == ["a", "a", "a", "b", "b", "b"]


def test_target_share_is_the_recipes_or_what_the_candidates_could_reach():
    assert few_shot_share({}) is None
    assert few_shot_share({"few_shot": 3, "zero_shot": 5, "few_shot_share": {"requested": 0.4, "realised": 0.375}}) == 0.4
    assert few_shot_share({"few_shot": 1, "zero_shot": 7, "few_shot_share": {"requested": 0.4, "realised": 0.125}}) == 0.125


def test_exact_rows_keeps_quotas_and_refills_proportionally():
    groups = ["a"] * 6 + ["b"] * 6
    table = pa.table({GROUP: groups, RANK: pa.array(range(12), pa.uint64()), "row": range(12)})
    assert exact_rows(table, 6, {"a": 3, "b": 3}).tolist() == [0, 1, 2, 6, 7, 8]
    removed = np.zeros(12, bool)
    removed[[0, 1]] = True  # two of a's first rows gone: a's next two survivors take their place
    assert exact_rows(table, 6, {"a": 3, "b": 3}, removed).tolist() == [2, 3, 4, 6, 7, 8]
    removed[:6] = True  # all of a gone: b's extras fill in
    assert exact_rows(table, 6, {"a": 3, "b": 3}, removed).tolist() == [6, 7, 8, 9, 10, 11]


def test_exact_rows_uses_rank_not_row_order():
    table = pa.table({GROUP: ["a"] * 4, RANK: pa.array([40, 10, 30, 20], pa.uint64()), "row": range(4)})
    assert exact_rows(table, 2, {"a": 2}).tolist() == [1, 3]


class _Config:
    def __init__(self, n, accept_shortfall=False):
        self.name, self.n, self.accept_shortfall = "s", n, accept_shortfall


class _Plan:
    def __init__(self, n, accept_shortfall=False):
        self.config = _Config(n, accept_shortfall)


def _source(n: int, rows: int, accept_shortfall: bool = False) -> Candidates:
    table = pa.table({
        "id": [f"s-{i}" for i in range(rows)],
        GROUP: ["a"] * rows,
        RANK: pa.array(np.arange(rows)[::-1].copy(), pa.uint64()),  # the last row ranks first
        "template_type": ["zs"] * rows,
    })
    return Candidates(_Plan(n, accept_shortfall), table, counts=None, quotas={"a": n}, render_stats={})


def test_a_source_writes_around_the_ids_every_stage_removed():
    source = _source(3, 6)
    source = source.removing(removals(pa.array(["s-5"]), "empty:rendered_prompt"))
    source = source.removing(removals(pa.array(["s-3"]), "dedup_near"), ("dedup_exact", "dedup_near"))
    assert pick_source(source).rows.tolist() == [1, 2, 4]  # best ranks 5, 4, 3, 2, 1: 5 and 3 removed
    assert source.removed_counts() == {"empty:rendered_prompt": 1, "dedup_exact": 0, "dedup_near": 1}
    assert source.out_mask().tolist() == [False, False, False, True, False, True]


def test_too_few_survivors_fail_with_the_reasons_unless_a_shortfall_is_accepted():
    source = _source(3, 4).removing(removals(pa.array(["s-0", "s-1"]), "decontam"), ("decontam",))
    with pytest.raises(SourceError, match=r"only 2 of n=3 rows remain after removing candidates \(decontam 2\)"):
        pick_source(source)
    accepted = _source(3, 4, accept_shortfall=True).removing(removals(pa.array(["s-0", "s-1"]), "decontam"))
    assert pick_source(accepted).rows.tolist() == [2, 3]
