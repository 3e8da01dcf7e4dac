"""The one rule for which candidates are written: exactly n per source, by group quota, rank and few-shot share.

After every removal (failed renders, duplicates, contamination) a source's survivors are ordered by how
far into its group's quota each one is, in rank order: each group's quota of survivors comes first, then
the other survivors by how far past their group's quota they are (a proportional refill of groups that
ran short). Example: quotas a=3, b=3, a's first two rows removed -> a's next two survivors take their place.

A rendered source that asks for a few-shot share is cut by stratum: the first round(share x n) few-shot
rows in that order are written with the first n - that many zero-shot rows, so a removed row is replaced
by the next row of its own stratum and the share holds in the rows written (a plain cut could not: with
candidates at 40% few-shot all ranked last, it would write none). Only a stratum that runs out is filled
from the other. Example: n = 5, share 0.4, order [z1, f1, z2, z3, f2, z4, f3] -> f1, f2 and z1, z2, z3.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SourceError
from ..sample import GROUP, RANK
from .candidates import Candidates, Mixture
from .contract import Context, Stats

FEW_SHOT = "fs"


def exact_rows(table: pa.Table, n: int, quotas: dict[str, int], removed: np.ndarray | None = None,
               share: float | None = None) -> np.ndarray:
    """Indices (ascending) of the min(n, survivors) rows to write (see the module docstring).

    `removed` marks rows dropped since selection; `share` is the few-shot share to hold (None: none asked).
    Reads only `_group`, `_rank` and, with a share, `template_type`.
    """
    alive = np.flatnonzero(~removed) if removed is not None else np.arange(table.num_rows)
    if len(alive) <= n:
        return alive
    order = keep_order(table, quotas, alive)
    if share is None:
        return np.sort(order[:n])
    few = np.asarray(pc.equal(table.column("template_type"), FEW_SHOT).fill_null(False).to_numpy(zero_copy_only=False), bool)
    few_order, zero_order = order[few[order]], order[~few[order]]
    want_few = min(int(np.floor(share * n + 0.5)), len(few_order))
    want_zero = min(n - want_few, len(zero_order))
    want_few = min(n - want_zero, len(few_order))  # zero-shot rows ran out: few-shot ones fill the gap
    return np.sort(np.concatenate([few_order[:want_few], zero_order[:want_zero]]))


def keep_order(table: pa.Table, quotas: dict[str, int], alive: np.ndarray) -> np.ndarray:
    """The `alive` rows in the order they are kept (without a few-shot share, the first n are the n written)."""
    codes = table.column(GROUP).take(pa.array(alive)).combine_chunks().dictionary_encode()
    labels = codes.dictionary.to_pylist()
    code = np.asarray(codes.indices.to_numpy(zero_copy_only=False), np.int64)
    rank = table.column(RANK).to_numpy()[alive]
    # Position of each row within its group, in rank order.
    by_group = np.lexsort((rank, code))
    starts = np.searchsorted(code[by_group], np.arange(len(labels)))
    position = np.empty(len(code), np.int64)
    position[by_group] = np.arange(len(code)) - starts[code[by_group]]
    quota = np.array([quotas.get(label, 0) for label in labels], np.float64)[code]
    with np.errstate(divide="ignore", invalid="ignore"):
        priority = np.where(quota > 0, (position + 0.5) / quota, np.inf)
    return alive[np.lexsort((rank, priority))]


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


@dataclass(frozen=True)
class Picked:
    """One source's candidates and the rows of them to write."""

    candidates: Candidates
    rows: np.ndarray  # ascending indices into candidates.table


def pick_source(candidates: Candidates, executor=None) -> Picked:
    """Exactly n of the source's surviving candidates (fewer only when the recipe accepts a shortfall)."""
    return pick_sources([candidates], executor)[0]


def _task(candidates: Candidates) -> tuple:
    """`exact_rows`' arguments as plain data (the three columns it reads), so any executor can run it."""
    columns = candidates.table.select([GROUP, RANK, "template_type"])
    return (columns, candidates.plan.config.n, candidates.quotas, candidates.out_mask(),
            few_shot_share(candidates.render_stats))


def pick_sources(sources, executor=None) -> list[Picked]:
    """Each source's exact rows, one task per source (on `executor` when given); raises SourceError on a
    shortfall the recipe does not accept, naming what was removed."""
    jobs = [_task(item) for item in sources]
    found = executor.map(exact_rows, jobs) if executor is not None else (exact_rows(*job) for job in jobs)
    picked = []
    for candidates, rows in zip(sources, found):
        config = candidates.plan.config
        if len(rows) < config.n and not config.accept_shortfall:
            reasons = ", ".join(f"{reason} {count:,}" for reason, count in candidates.removed_counts().items() if count)
            raise SourceError(
                f"source {config.name!r}: only {len(rows):,} of n={config.n:,} rows remain after removing candidates "
                f"({reasons or 'none removed'}). Select more candidates (dedup.oversample, decontaminate.oversample), "
                f"lower n, or set accept_shortfall: true."
            )
        picked.append(Picked(candidates, rows))
    return picked


def pick(mixture: Mixture, context: Context) -> tuple[Mixture, Stats]:
    """The stage: each source's exact rows."""
    picked = tuple(pick_sources(mixture.sources, context.executor))
    stats = sum((Stats(item.candidates.rows, len(item.rows)) for item in picked), Stats())
    return dataclasses.replace(mixture, sources=picked), stats
