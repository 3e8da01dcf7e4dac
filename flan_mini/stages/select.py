"""The select stage: each source's n rows plus extra candidates (to replace removed ones), by sample.py's rule."""

from __future__ import annotations

import math

from ..sample import Selection, select_source
from .contract import Context, Stats


def oversample(recipe) -> float:
    """Extra candidates per source, as a share of n, so each still delivers its exact n after removals."""
    dedup = recipe.dedup if recipe.dedup is not None and recipe.dedup.enabled else None
    decontam = recipe.decontaminate if recipe.decontaminate is not None and recipe.decontaminate.enabled else None
    return (dedup.oversample if dedup else 0.0) + (decontam.extra_share() if decontam else 0.0)


def select(plan, context: Context) -> tuple[list[Selection], Stats]:
    """The stage: one Selection per source of `plan`, in recipe order."""
    share = oversample(plan.recipe)
    selections, stats = [], Stats()
    for source in plan.sources:
        context.reporter.log(f"flan-mini: selecting {source.config.n:,} rows from {source.config.name} "
                             f"({len(source.files)} files)")
        selection = select_source(source.adapter, source.files, seed=plan.seed,
                                  extra=math.ceil(source.config.n * share), reporter=context.reporter,
                                  executor=context.executor)
        selections.append(selection)
        stats += Stats(selection.counts.rows_read, selection.table.num_rows, dict(selection.counts.rejected))
    return selections, stats
