"""The exact cut of a rendered source that keeps its few-shot share: few-shot and zero-shot rows cut apart.

`exact_rows` alone cuts by group quota and rank and is blind to few-shot status, so the written rows could
miss the recipe's share (candidates at exactly 40% few-shot, 20% after the cut). Here the survivors keep
`exact_rows`' order, and the first round(share x n) few-shot rows in that order are written with the first
n - that many zero-shot rows. A row removed by dedup or decontamination is thus replaced by the next row of
its own stratum. Example: n = 5, share 0.4, order [z1, f1, z2, z3, f2, z4, f3] -> f1, f2 and z1, z2, z3.
Only a stratum that runs out is filled from the other (the manifest's written share then shows it).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .sample import exact_rows, keep_order

FEW_SHOT = "fs"


def few_shot_share(render_stats: dict) -> float | None:
    """The share the cut should hold: the recipe's, or the candidates' own when fewer could be few-shot (a task
    without a pattern, exemplars that fit nowhere). None when the source asks for no share."""
    share = render_stats.get("few_shot_share")
    if not share:
        return None
    candidates = render_stats.get("few_shot", 0) + render_stats.get("zero_shot", 0)
    if render_stats.get("few_shot", 0) < int(np.floor(share["requested"] * candidates + 0.5)):
        return render_stats["few_shot"] / max(candidates, 1)
    return float(share["requested"])


def exact_rows_by_share(table: pa.Table, n: int, quotas: dict[str, int], removed: np.ndarray | None,
                        share: float | None) -> np.ndarray:
    """Indices (ascending) of the min(n, survivors) rows to write, round(share x written) of them few-shot
    (`template_type` "fs"); `exact_rows` when there is no share to hold."""
    alive = np.flatnonzero(~removed) if removed is not None else np.arange(table.num_rows)
    if share is None or len(alive) <= n:
        return exact_rows(table, n, quotas, removed)
    order = keep_order(table, quotas, alive)
    few = np.asarray(pc.equal(table.column("template_type"), FEW_SHOT).fill_null(False).to_numpy(zero_copy_only=False), bool)
    few_order, zero_order = order[few[order]], order[~few[order]]
    want_few = min(int(np.floor(share * n + 0.5)), len(few_order))
    want_zero = min(n - want_few, len(zero_order))
    want_few = min(n - want_zero, len(few_order))  # zero-shot rows ran out: few-shot ones fill the gap
    return np.sort(np.concatenate([few_order[:want_few], zero_order[:want_zero]]))
