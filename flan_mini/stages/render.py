"""The render stage: each source's selected rows as output rows (conversations, ids, metadata) plus bookkeeping.

Rows that render blank are not dropped here: they are returned as removals (id -> reason), like every
other stage's, and the pick stage writes around them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .. import bigtext
from ..compose import render_rows
from ..sample import GROUP, KEY, RANK, Selection
from ..shards import OUTPUT_SCHEMA, TURN
from ..sources.kinds import FlanPassthrough, ReadyConversations
from .candidates import Candidates, Mixture, removals
from .contract import Context, Stats

TASK = "_task"  # the row's task (adapters with a task field), for the manifest's per-task counts
BOOKKEEPING = (KEY, RANK, GROUP, TASK)


def make_ids(name: str, keys: np.ndarray) -> pa.Array:
    """Stable ids `<source>-<16 hex of the content key>`; identical rows get `-1`, `-2`... in rank order."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] if len(keys) else np.zeros(0, bool)
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0)) if len(keys) else first
    occurrence = np.empty(len(keys), np.int64)
    occurrence[order] = np.arange(len(keys)) - run_start
    return pa.array(
        [f"{name}-{k:016x}" if o == 0 else f"{name}-{k:016x}-{o}" for k, o in zip(keys.tolist(), occurrence.tolist())],
        pa.string(),
    )


def output_kind(source, table: pa.Table, seed: int):
    """(conversations, template_id, template_type, num_shots, failed, stats) by the kind of output the source
    gives: ready conversations (chat sources), FLAN's templated passthrough, or rows rendered from templates.

    The only place the adapter's kind (sources/kinds.py) is read.
    """
    adapter, n = source.adapter, table.num_rows
    stats: dict = {}
    if isinstance(adapter.kind, ReadyConversations):
        conversations = bigtext.fit(table.column(adapter.kind.field))
        conversations = conversations.cast(pa.list_(bigtext.widen_type(TURN) if bigtext.is_wide(conversations.type) else TURN))
        template_id, failed = pa.nulls(n, pa.string()), {}
        template_type = pa.array(["chat"] * n, pa.string())
        num_shots = pa.array(np.zeros(n, np.int32))
    else:
        rendered = render_rows(table, source.render, table.column(KEY).to_numpy(), seed, source.config.name)
        conversations, template_id, failed = rendered.conversations, rendered.template_id, dict(rendered.failed)
        template_type, num_shots, stats = rendered.template_type, rendered.num_shots, rendered.stats
    if isinstance(adapter.kind, FlanPassthrough):
        template_type = table.column(adapter.kind.template_type_field)
        num_shots = pa.nulls(n, pa.int32())  # FLAN inlines its exemplars; the count is not recorded
    return conversations, template_id, template_type, num_shots, failed, stats


def render_source(source, selection: Selection, seed: int) -> Candidates:
    """One source's candidates: output columns plus bookkeeping, in selection order; blank renders as removals."""
    table, adapter = selection.table, source.adapter
    keys = table.column(KEY).to_numpy()
    n = table.num_rows
    conversations, template_id, template_type, num_shots, failed, stats = output_kind(source, table, seed)
    ids = make_ids(source.config.name, keys)
    columns = {
        "id": ids,
        "source": adapter.source_column(table),
        "conversations": conversations,
        "recipe_source": pa.array([source.config.name] * n, pa.string()),
        "template_id": template_id,
        "template_type": template_type,
        "num_shots": num_shots,
        "source_id": (table.column(adapter.source_id_field).cast(pa.string()) if adapter.source_id_field
                      else pa.nulls(n, pa.string())),
    }
    columns.update(adapter.output_columns(table, columns))  # values kept from the source's own columns
    out = pa.Table.from_pydict(columns, schema=bigtext.schema_with(OUTPUT_SCHEMA, columns))  # wide past 2 GiB
    for name in (KEY, RANK, GROUP):
        out = out.append_column(name, table.column(name))
    task = table.column(adapter.task_field).cast(pa.string()) if adapter.task_field else pa.nulls(n, pa.string())
    out = out.append_column(TASK, task)
    candidates = Candidates(source, out, selection.counts, selection.quotas, stats)
    for reason, mask in failed.items():
        candidates = candidates.removing(removals(ids.filter(pa.array(mask)), reason))
    return candidates


def render(selections: list[Selection], context: Context) -> tuple[Mixture, Stats]:
    """The stage: every source's candidates.

    It consumes `selections` as it goes, so a source's raw rows are freed as soon as its candidates exist
    (the stage's input is not needed afterwards, and holding every source's twice would double the peak).
    """
    built, stats = [], Stats()
    with context.reporter.task("render", total=sum(s.table.num_rows for s in selections)) as task:
        for source in context.plan.sources:
            selection = selections.pop(0)
            built.append(render_source(source, selection, context.seed))
            task.update(selection.table.num_rows)
            del selection
            stats += Stats(built[-1].rows, built[-1].rows - int(built[-1].out_mask().sum()), built[-1].removed_counts())
    return Mixture(tuple(built)), stats
