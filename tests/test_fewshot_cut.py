"""The exact cut keeps a rendered source's few-shot share: strata cut apart by rank, removals refilled in kind."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from flan_mini.fewshot_cut import exact_rows_by_share, few_shot_share
from flan_mini.sample import GROUP, RANK, exact_rows


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
    plain = exact_rows(table, 5, {"a": 5})
    assert table.column("template_type").take(pa.array(plain)).to_pylist().count("fs") == 0  # the blind cut
    rows = exact_rows_by_share(table, 5, {"a": 5}, None, 0.4)
    assert rows.tolist() == [0, 1, 2, 6, 7]  # the best-ranked 3 zero-shot and 2 few-shot rows


def test_removed_rows_are_refilled_from_their_own_stratum():
    table = candidates("fzfzfzfzfz")
    removed = np.zeros(10, bool)
    removed[[0, 2]] = True  # dedup took the two best few-shot rows
    rows = exact_rows_by_share(table, 5, {"a": 5}, removed, 0.4)
    assert rows.tolist() == [1, 3, 4, 5, 6]  # few-shot 4 and 6 take their places, zero-shot stays 1, 3, 5


def test_a_stratum_that_runs_out_is_filled_from_the_other():
    table = candidates("zffffffff")
    assert exact_rows_by_share(table, 4, {"a": 4}, None, 0.25).tolist() == [0, 1, 2, 3]
    assert exact_rows_by_share(table, 4, {"a": 4}, None, None).tolist() == [0, 1, 2, 3]


def test_group_quotas_still_apply_inside_each_stratum():
    table = candidates("ffzzffzzffzz", groups="aaaaaabbbbbb")
    rows = exact_rows_by_share(table, 6, {"a": 3, "b": 3}, None, 0.5)
    picked = table.take(pa.array(rows))
    assert picked.column("template_type").to_pylist().count("fs") == 3
    assert sorted(picked.column(GROUP).to_pylist()) == ["a", "a", "a", "b", "b", "b"]


def test_target_share_is_the_recipes_or_what_the_candidates_could_reach():
    assert few_shot_share({}) is None
    assert few_shot_share({"few_shot": 3, "zero_shot": 5, "few_shot_share": {"requested": 0.4, "realised": 0.375}}) == 0.4
    assert few_shot_share({"few_shot": 1, "zero_shot": 7, "few_shot_share": {"requested": 0.4, "realised": 0.125}}) == 0.125
