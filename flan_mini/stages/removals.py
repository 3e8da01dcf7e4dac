"""The mixture-wide removal stages, dedup and decontamination: each returns, per source, the ids it removes and why.

Both look only at candidates no earlier stage removed, call their package's public entry point
(`dedup.stage.dedup_table`, `decontam.stage.Decontaminator`), and hand back new `Candidates` records
with their removals added; the pick stage then refills each source from its extra candidates.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..decontam.stage import BuildDecontam
from ..dedup.stage import ORDER_COLUMN, dedup_table
from ..errors import FlanMiniError
from ..sample import RANK
from ..shards import OUTPUT_SCHEMA
from .candidates import Mixture, removals
from .contract import Context, Stats

DEDUP_REASONS = ("dedup_exact", "dedup_near")
DECONTAM_REASON = "decontam"


def _survivors(item, table: pa.Table) -> pa.Table:
    """The rows of `table` (aligned with the source's candidates) that no stage removed yet (no copy when none was)."""
    out = item.out_mask()
    return table.filter(pa.array(~out)) if out.any() else table


def dedup(mixture: Mixture, context: Context) -> tuple[Mixture, Stats]:
    """Exact and near duplicates among every source's surviving candidates.

    `_order` is a row's rank position within its source, so a cluster keeps (after source priority) the
    row the selection preferred. A removed row's reason is its cluster role: dedup_exact or dedup_near.
    """
    parts = []
    for item in mixture.sources:
        order = np.argsort(np.argsort(item.table.column(RANK).to_numpy(), kind="stable"), kind="stable")
        columns = item.table.select(OUTPUT_SCHEMA.names).append_column(ORDER_COLUMN, pa.array(order, pa.int64()))
        parts.append(_survivors(item, columns))
    rows_in = sum(part.num_rows for part in parts)
    context.reporter.log(f"flan-mini: removing duplicates among {sum(item.rows for item in mixture.sources):,} candidates")
    result = dedup_table(pa.concat_tables(parts, promote_options="permissive"), context.recipe.dedup,
                         workers=context.workers, executor=context.executor)
    del parts
    clusters = result.clusters.filter(pc.invert(result.clusters.column("is_keeper")))
    dropped = rows_in - (pc.sum(result.keep.cast(pa.int64())).as_py() or 0)
    if clusters.num_rows != dropped:  # the reasons come from the clusters: they must name every removed row
        raise FlanMiniError(f"dedup: the clusters name {clusters.num_rows:,} removed rows but {dropped:,} were removed (a bug)")
    reasons = pc.binary_join_element_wise("dedup_", clusters.column("kind"), "")
    sources, stats = [], Stats(rows_in, rows_in - clusters.num_rows, dict.fromkeys(DEDUP_REASONS, 0))
    for item in mixture.sources:
        mine = pc.equal(clusters.column("recipe_source"), item.name)
        removed = removals(clusters.column("id").filter(mine), reasons.filter(mine))
        sources.append(item.removing(removed, DEDUP_REASONS))
        stats += Stats(removed={r: count for r, count in sources[-1].removed_counts().items() if r in DEDUP_REASONS})
    return dataclasses.replace(mixture, sources=tuple(sources), dedup=result), stats


def decontaminate(mixture: Mixture, context: Context) -> tuple[Mixture, Stats]:
    """Scan every source's surviving candidates against the benchmarks; with action remove, the matched ones
    are removed (reason `decontam`). Either way the matches are kept for the report written with the shards.
    `context.workers` threads scan (default: the section's `workers`); the result does not depend on it."""
    config, engine = context.recipe.decontaminate, context.decontaminator
    context.reporter.log(f"flan-mini: checking candidates against {len(config.benchmarks)} benchmark(s) "
                         f"({config.ngram}-grams, action {config.action})")
    parts = [_survivors(item, item.table.select(["id", "recipe_source", "conversations"])) for item in mixture.sources]
    rows_in = sum(part.num_rows for part in parts)
    result = engine.scan_table(pa.concat_tables(parts) if parts else pa.table({}), workers=context.workers,
                               executor=context.executor)
    matched = result.matched_ids()
    remove = config.action == "remove"
    sources, stats = [], Stats(rows_in, rows_in)
    for item, part in zip(mixture.sources, parts):
        if remove:
            hit = part.column("id").filter(pc.is_in(part.column("id"), value_set=matched))
            item = item.removing(removals(hit, DECONTAM_REASON), (DECONTAM_REASON,))
            stats += Stats(rows_out=-len(hit), removed={DECONTAM_REASON: len(hit)})
        sources.append(item)
    return dataclasses.replace(mixture, sources=tuple(sources), decontam=BuildDecontam(engine, result, removed=remove)), stats
