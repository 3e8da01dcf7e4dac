"""The select stage: each source's n rows plus extra candidates (to replace removed ones), by sample.py's rule."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

from ..peak_memory import release_freed_memory
from ..sample import Selection, select_source, survey_source
from .contract import Context, Stats


def oversample(recipe) -> float:
    """Extra candidates per source, as a share of n, so each still delivers its exact n after removals."""
    dedup = recipe.dedup if recipe.dedup is not None and recipe.dedup.enabled else None
    decontam = recipe.decontaminate if recipe.decontaminate is not None and recipe.decontaminate.enabled else None
    return (dedup.oversample if dedup else 0.0) + (decontam.extra_share() if decontam else 0.0)


def select(plan, context: Context) -> tuple[list[Selection], Stats]:
    """The stage: one Selection per source of `plan`, in recipe order.

    A source that must survey its files first (ShareGPT: parsing a whole dump) is surveyed on a background
    thread from the start, while the sources before it are selected: its survey is a pure function of its files,
    so the output is the same, and the parse no longer waits for the other sources to finish."""
    share = oversample(plan.recipe)
    selections, stats = [], Stats()
    with ThreadPoolExecutor(max_workers=1) as background:
        early = {source.index: background.submit(survey_source, source.adapter, source.files, context.executor)
                 for source in plan.sources[1:] if source.adapter.survey}
        try:
            for source in plan.sources:
                context.reporter.log(f"flan-mini: selecting {source.config.n:,} rows from {source.config.name} "
                                     f"({len(source.files)} files)")
                surveyed = None
                if source.index in early:
                    surveyed = early[source.index].result()
                    release_freed_memory()  # what the survey's parse freed (its blocks, the tokenizer's batches)
                selection = select_source(source.adapter, source.files, seed=plan.seed,
                                          extra=math.ceil(source.config.n * share), reporter=context.reporter,
                                          executor=context.executor, surveyed=surveyed)
                selections.append(selection)
                release_freed_memory()  # the source's reads and pools: the next source's peak does not add to them
                stats += Stats(selection.counts.rows_read, selection.table.num_rows, dict(selection.counts.rejected))
        finally:
            for future in early.values():
                future.cancel()  # a failed build does not start surveys it will not use
    return selections, stats
