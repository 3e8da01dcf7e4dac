"""The render stage: each source's selected rows as output rows (conversations, ids, metadata) plus bookkeeping.

Rows that render blank are not dropped here: they are returned as removals (id -> reason), like every
other stage's, and the pick stage writes around them.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from .. import bigtext
from ..compose import render_rows, render_source
from ..peak_memory import release_freed_memory
from ..render_spec import RenderSpec
from ..sample import GROUP, KEY, RANK, Selection
from ..shards import OUTPUT_SCHEMA, TURN
from ..sources.kinds import FlanPassthrough, ReadyConversations
from .candidates import Candidates, Mixture, removals
from .render_processes import render_in_processes, scratch_parent
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
    ids = _hex_ids(name, keys)
    repeated = np.flatnonzero(occurrence)
    if len(repeated):  # copies (rare): their suffixes per row
        ids = ids.to_numpy(zero_copy_only=False).astype(object)
        ids[repeated] = [f"{i}-{o}" for i, o in zip(ids[repeated], occurrence[repeated].tolist())]
        return pa.array(ids, pa.string())
    return ids


_HEX_PAIRS = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode(), np.uint8).reshape(256, 2)  # byte -> 2 hex digits


def _hex_ids(name: str, keys: np.ndarray) -> pa.Array:
    """`<name>-<16 hex of the key>` per key, built as one byte buffer (no Python string per row)."""
    prefix = np.frombuffer(f"{name}-".encode(), np.uint8)
    width = len(prefix) + 16
    big_endian = np.ascontiguousarray(np.asarray(keys, np.uint64).astype(">u8")).view(np.uint8).reshape(-1, 8)
    data = np.empty((len(keys), width), np.uint8)
    data[:, :len(prefix)] = prefix
    data[:, len(prefix):] = _HEX_PAIRS[big_endian].reshape(len(keys), 16)
    offsets = np.arange(0, (len(keys) + 1) * width, width, dtype=np.int64)
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(len(keys), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))
    return pa.LargeStringArray.from_buffers(len(keys), pa.py_buffer(offsets), pa.py_buffer(data)).cast(pa.string())


def output_kind(adapter, spec, table: pa.Table, seed: int):
    """(conversations, template_id, template_type, num_shots, failed, stats) by the kind of output the source
    gives: ready conversations (chat sources), FLAN's templated passthrough, or rows rendered from templates.

    The only place the adapter's kind (sources/kinds.py) is read. `spec` is the source's RenderSpec, or its
    plain RenderDescription (rebuilt once per process), or None for ready conversations.
    """
    n = table.num_rows
    stats: dict = {}
    if isinstance(adapter.kind, ReadyConversations):
        conversations = bigtext.fit(table.column(adapter.kind.field))
        conversations = conversations.cast(pa.list_(bigtext.widen_type(TURN) if bigtext.is_wide(conversations.type) else TURN))
        template_id, failed = pa.nulls(n, pa.string()), {}
        template_type = pa.array(["chat"] * n, pa.string())
        num_shots = pa.array(np.zeros(n, np.int32))
    else:
        keys, name = table.column(KEY).to_numpy(), adapter.config.name
        rendered = (render_rows(table, spec, keys, seed, name) if isinstance(spec, RenderSpec)
                    else render_source(spec, table, keys, seed, name))
        conversations, template_id, failed = rendered.conversations, rendered.template_id, dict(rendered.failed)
        template_type, num_shots, stats = rendered.template_type, rendered.num_shots, rendered.stats
    if isinstance(adapter.kind, FlanPassthrough):
        template_type = table.column(adapter.kind.template_type_field)
        num_shots = pa.nulls(n, pa.int32())  # FLAN inlines its exemplars; the count is not recorded
    return conversations, template_id, template_type, num_shots, failed, stats


def render_table(adapter, spec, table: pa.Table, seed: int) -> tuple[pa.Table, dict[str, np.ndarray], dict]:
    """The task: one source's selected rows as output columns plus bookkeeping, in selection order, with the
    masks of the rows that rendered blank (by reason) and the render stats. Plain arguments, so it can run in
    another process (a source renders in one call: its few-shot share and exemplar pool are source-wide)."""
    name = adapter.config.name
    keys = table.column(KEY).to_numpy()
    n = table.num_rows
    conversations, template_id, template_type, num_shots, failed, stats = output_kind(adapter, spec, table, seed)
    columns = {
        "id": make_ids(name, keys),
        "source": adapter.source_column(table),
        "conversations": conversations,
        "recipe_source": pa.array([name] * n, pa.string()),
        "template_id": template_id,
        "template_type": template_type,
        "num_shots": num_shots,
        "source_id": (table.column(adapter.source_id_field).cast(pa.string()) if adapter.source_id_field
                      else pa.nulls(n, pa.string())),
    }
    columns.update(adapter.output_columns(table, columns))  # values kept from the source's own columns
    out = pa.Table.from_pydict(columns, schema=bigtext.schema_with(OUTPUT_SCHEMA, columns))  # wide past 2 GiB
    for column in (KEY, RANK, GROUP):
        out = out.append_column(column, table.column(column))
    task = table.column(adapter.task_field).cast(pa.string()) if adapter.task_field else pa.nulls(n, pa.string())
    return out.append_column(TASK, task), failed, stats


def render_cost(adapter, table: pa.Table) -> float:
    """A source's rough render cost, to start the slowest first: bytes of selected rows, weighed by kind (rows
    rendered from templates, with few-shot assembly and token counts, cost far more per byte than FLAN's
    pre-templated rows, and those more than ready conversations)."""
    weight = 1 if isinstance(adapter.kind, ReadyConversations) else 2 if isinstance(adapter.kind, FlanPassthrough) else 20
    return table.nbytes * weight


def render(selections: list[Selection], context: Context) -> tuple[Mixture, Stats]:
    """The stage: every source's candidates, one task per source.

    Locally, with one worker, a source renders in this process's main thread (the template sandbox's time limit
    needs it) with its resolved spec; with more, sources render side by side in fresh worker processes
    (render_processes.py), each in its main thread. On other executors the task gets the spec's plain
    description. Jobs take the selections off `selections` as they are handed out, so a source's raw rows are
    freed once rendered or handed to a worker (holding every source's twice would double the peak).
    """
    executor, sources = context.executor, context.plan.sources
    local = executor.name == "local"

    facts = []  # each source's selection counts and quotas, kept as its job is handed out

    # (POSIX only: a worker's result file is unlinked while mapped, which Windows refuses)
    in_processes = local and executor.workers > 1 and len(sources) > 1 and os.name == "posix"
    total = sum(s.table.num_rows for s in selections)

    def jobs():
        for source in sources:
            selection = selections.pop(0)
            facts.append((selection.counts, selection.quotas))
            spec = source.render if local and not in_processes or source.render is None else source.render.description
            yield source.adapter, spec, selection.table, context.seed

    if in_processes:
        listed = list(jobs())
        results = render_in_processes(listed, [s.config.name for s in sources],
                                      [render_cost(job[0], job[2]) for job in listed], executor.workers,
                                      scratch_parent(context.folder))
    else:
        results = (render_table(*job) for job in jobs()) if local else executor.map(render_table, jobs())
    built, stats = [], Stats()
    with context.reporter.task("render", total=total) as task:
        for source, (table, failed, render_stats) in zip(sources, results):
            counts, quotas = facts.pop(0)
            candidates = Candidates(source, table, counts, quotas, render_stats)
            ids = table.column("id")
            for reason, mask in failed.items():
                candidates = candidates.removing(removals(ids.filter(pa.array(mask)), reason))
            built.append(candidates)
            task.update(table.num_rows)
            if local:  # few-shot assembly leaves millions of freed Python strings in glibc's heap
                release_freed_memory()
            stats += Stats(candidates.rows, candidates.rows - int(candidates.out_mask().sum()), candidates.removed_counts())
    return Mixture(tuple(built)), stats
