"""`build`: wires select -> render -> (dedup) -> (decontaminate) -> exact counts -> shuffle -> shards + manifest.

The output is assembled in a hidden sibling folder and renamed into place only when complete
(atomic.py), so an interrupted build never leaves a folder that looks finished. A previous build in
the same place is replaced as a whole, and only if flan-mini wrote every file in it.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import bigtext
from .atomic import atomic_folder
from .card import write_card
from .decontam.stage import Decontaminator, decontaminate_candidates
from .dedup.report import manifest_entry, manifest_removed, write_clusters
from .dedup.stage import ORDER_COLUMN, DedupResult, dedup_table
from .errors import SourceError
from .executor import Executor
from .export_fastchat import write_fastchat_json
from .hub import PushResult, push_folder
from .keys import salt
from .manifest import FORMAT_VERSION, command_line, created_by, write_manifest
from .plan import Plan, SourcePlan
from .progress import Reporter
from .compose import render_rows
from .task_distribution import task_distribution
from .fewshot_cut import exact_rows_by_share, few_shot_share
from .sample import GROUP, KEY, RANK, Selection, select_source
from .sources.kinds import FlanPassthrough, ReadyConversations
from .shards import OUTPUT_SCHEMA, TURN, file_sha256, to_messages, write_shards

TASK = "_task"  # the row's task (adapters with a task field), for the manifest's per-task counts
BOOKKEEPING = (KEY, RANK, GROUP, TASK)


@dataclass
class SourceBuild:
    """One source's way through the build."""

    plan: SourcePlan
    selection: Selection
    candidates: pa.Table | None  # output columns + bookkeeping, in selection order; freed once assembled
    removed: dict[str, np.ndarray] = field(default_factory=dict)  # reason -> mask over candidates
    dedup_removed: dict[str, int] = field(default_factory=dict)  # dedup_exact / dedup_near counts
    final_rows: np.ndarray | None = None  # indices of the candidates written
    final: pa.Table | None = None  # the written rows' template and task columns, for the manifest
    selected: int = 0  # candidates rendered
    render_stats: dict = field(default_factory=dict)  # zero-/few-shot counts, tasks, length unit

    @property
    def name(self) -> str:
        return self.plan.config.name


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict
    sources: list[SourceBuild]
    push: PushResult | None = None


# --------------------------------------------------------------------------------------------- stages


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


def render_candidates(source: SourcePlan, selection: Selection, seed: int) -> SourceBuild:
    """Turn the selected rows into output rows (plus bookkeeping), remembering rows that rendered blank."""
    table, adapter = selection.table, source.adapter
    keys = table.column(KEY).to_numpy()
    n = table.num_rows
    stats: dict = {}
    if isinstance(adapter.kind, ReadyConversations):
        conversations = bigtext.fit(table.column(adapter.kind.field))
        conversations = conversations.cast(pa.list_(bigtext.widen_type(TURN) if bigtext.is_wide(conversations.type) else TURN))
        template_id, failed = pa.nulls(n, pa.string()), {}
        template_type = pa.array(["chat"] * n, pa.string())
        num_shots = pa.array(np.zeros(n, np.int32))
    else:
        rendered = render_rows(table, source.render, keys, seed, source.config.name)
        conversations, template_id, failed = rendered.conversations, rendered.template_id, dict(rendered.failed)
        template_type, num_shots, stats = rendered.template_type, rendered.num_shots, rendered.stats
    if isinstance(adapter.kind, FlanPassthrough):
        template_type = table.column(adapter.kind.template_type_field)
        num_shots = pa.nulls(n, pa.int32())  # FLAN inlines its exemplars; the count is not recorded
    columns = {
        "id": make_ids(source.config.name, keys),
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
    return SourceBuild(source, selection, out, removed=failed, render_stats=stats, selected=n)


def finish_source(build: SourceBuild) -> np.ndarray:
    """Which candidates are written: exactly n (or fewer, if the recipe accepts a shortfall) of the survivors."""
    config = build.plan.config
    removed = np.zeros(build.candidates.num_rows, bool)
    for mask in build.removed.values():
        removed |= mask
    share = few_shot_share(build.render_stats or {})  # the cut keeps it (fewshot_cut.py)
    rows = exact_rows_by_share(build.candidates, config.n, build.selection.quotas, removed, share)
    if len(rows) < config.n and not config.accept_shortfall:
        reasons = ", ".join(f"{reason} {int(mask.sum()):,}" for reason, mask in build.removed.items() if mask.any())
        raise SourceError(
            f"source {config.name!r}: only {len(rows):,} of n={config.n:,} rows remain after removing candidates "
            f"({reasons or 'none removed'}). Select more candidates (dedup.oversample, decontaminate.oversample), "
            f"lower n, or set accept_shortfall: true."
        )
    return rows


def deduplicate_candidates(builds: list[SourceBuild], config, workers: int | None = None) -> DedupResult:
    """Exact and near duplicates among every source's candidates; marks the removed ones per source.

    Rows that already failed to render take no part. `_order` is a row's rank position within its
    source, so a cluster keeps (after source priority) the row the selection preferred.
    """
    parts, masks = [], []
    for item in builds:
        table = item.candidates
        out = np.zeros(table.num_rows, bool)
        for mask in item.removed.values():
            out |= mask
        order = np.argsort(np.argsort(table.column(RANK).to_numpy(), kind="stable"), kind="stable")
        columns = table.select(OUTPUT_SCHEMA.names).append_column(ORDER_COLUMN, pa.array(order, pa.int64()))
        parts.append(columns.filter(pa.array(~out)) if out.any() else columns)  # no copy unless rows failed
        masks.append(out)
    result = dedup_table(pa.concat_tables(parts, promote_options="permissive"), config, workers=workers)
    removed = ~np.asarray(result.keep.to_numpy(zero_copy_only=False), bool)
    start = 0
    for item, out in zip(builds, masks):
        dropped = np.zeros(len(out), bool)
        dropped[np.flatnonzero(~out)] = removed[start : start + int((~out).sum())]
        start += int((~out).sum())
        item.removed["dedup"] = dropped
        item.dedup_removed = manifest_removed(result.stats, item.name)
    return result


def shuffled_order(ids: pa.Array, seed: int) -> np.ndarray:
    """A seeded order of rows that depends only on the rows: sort by id, then permute."""
    by_id = pc.sort_indices(ids).to_numpy()
    generator = np.random.Generator(np.random.PCG64(salt(seed, "shuffle")))
    return by_id[generator.permutation(len(by_id))]


def assemble(builds: list[SourceBuild], seed: int) -> tuple[pa.Table, np.ndarray]:
    """All sources' candidates as one table (no copy) and the shuffled indices of the rows to write.

    Shards gather their rows from these when written, so the output is never held twice. Each source
    keeps its written template and task columns for the manifest.
    """
    tables, rows, offset = [], [], 0
    for item in builds:
        tables.append(item.candidates.drop_columns(list(BOOKKEEPING)))
        rows.append(item.final_rows + offset)
        offset += item.candidates.num_rows
        item.final = item.candidates.select(["source", "template_id", "template_type", "num_shots", TASK]).take(pa.array(item.final_rows))
        item.candidates = None
    every = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    combined = pa.concat_tables(tables, promote_options="permissive")  # (string and large_string -> large_string)
    return combined, every[shuffled_order(combined.column("id").take(pa.array(every)), seed)]


# ---------------------------------------------------------------------------------------------- build


def build(plan: Plan, *, reporter: Reporter | None = None, push: bool = True, workers: int | None = None,
          executor: Executor | None = None) -> BuildResult:
    """Run the build a plan describes; returns where it went and its manifest.

    `workers` is every parallel stage's width: dedup's signature processes and decontamination's scan
    threads (default: each section's own `workers`); the output does not depend on it. `executor` runs the
    stages' independent tasks (default: this process's threads, executor.py); the output does not depend
    on it either. With a `publish:`
    section in the recipe (and `push`), the finished folder is pushed to the Hub. `reporter` says what
    the build is doing (default: log lines on stderr).
    """
    reporter = reporter or Reporter("lines")
    log = reporter.log
    started = time.perf_counter()
    stages: dict[str, float] = {}
    recipe = plan.recipe
    dedup = recipe.dedup if recipe.dedup is not None and recipe.dedup.enabled else None
    decontam = recipe.decontaminate if recipe.decontaminate is not None and recipe.decontaminate.enabled else None
    # Extra candidates per source, so that each still delivers its exact n after removals.
    oversample = (dedup.oversample if dedup else 0.0) + (decontam.extra_share() if decontam else 0.0)
    all_files = {f.path: f for s in plan.sources for f in s.files}
    # Benchmarks are read and indexed first: a broken benchmark file fails the build before any work.
    decontam_engine = Decontaminator.load(decontam, plan.loaded.base_dir) if decontam else None
    with ThreadPoolExecutor(max_workers=2) as hasher:
        # Input checksums are computed alongside the scan (hashlib releases the GIL).
        digests = {path: hasher.submit(file_sha256, path) for path in all_files}

        clock = time.perf_counter()
        selections = []
        for source in plan.sources:
            extra = math.ceil(source.config.n * oversample)
            log(f"flan-mini: selecting {source.config.n:,} rows from {source.config.name} ({len(source.files)} files)")
            selections.append(select_source(source.adapter, source.files, seed=plan.seed, extra=extra, reporter=reporter,
                                            executor=executor))
        stages["select"] = time.perf_counter() - clock

        clock = time.perf_counter()
        builds = []
        with reporter.task("render", total=sum(selection.table.num_rows for selection in selections)) as task:
            for source, selection in zip(plan.sources, selections):
                builds.append(render_candidates(source, selection, plan.seed))
                task.update(selection.table.num_rows)
                selection.table = None  # the rendered rows hold what is needed from here on
        stages["render"] = time.perf_counter() - clock

        dedup_result = None
        if dedup:
            clock = time.perf_counter()
            log(f"flan-mini: removing duplicates among {sum(b.candidates.num_rows for b in builds):,} candidates")
            dedup_result = deduplicate_candidates(builds, dedup, workers=workers)
            stages["dedup"] = time.perf_counter() - clock

        decontam_run = None
        if decontam:
            clock = time.perf_counter()
            log(f"flan-mini: checking candidates against {len(decontam.benchmarks)} benchmark(s) "
                f"({decontam.ngram}-grams, action {decontam.action})")
            decontam_run = decontaminate_candidates(builds, decontam, plan.loaded.base_dir, decontam_engine,
                                                    workers=workers)
            stages["decontaminate"] = time.perf_counter() - clock

        clock = time.perf_counter()
        for item in builds:
            item.final_rows = finish_source(item)
        candidates, order = assemble(builds, plan.seed)
        stages["assemble"] = time.perf_counter() - clock
        input_digests = {path: future.result() for path, future in digests.items()}

    clock = time.perf_counter()
    out_dir = plan.out_dir
    with atomic_folder(out_dir) as tmp:
        shards = write_shards(
            candidates, tmp, target_shard_bytes=int(recipe.output.shard_size), rows=order,
            transform=to_messages if recipe.output.format == "messages" else None, executor=executor,
        )
        written_ids = candidates.column("id").take(pa.array(order))  # small: what decontamination reports on
        del candidates
        clusters_file = write_clusters(dedup_result.clusters, tmp) if dedup_result else None
        if export_name := recipe.output.fastchat_json_name:
            log(f"flan-mini: writing {export_name} for FastChat")
            exported = write_fastchat_json(tmp, [tmp / shard.path for shard in shards], export_name)
        stages["write"] = time.perf_counter() - clock
        stages["total"] = time.perf_counter() - started
        schema = pq.read_schema(tmp / shards[0].path)
        manifest = make_manifest(plan, builds, shards, schema, input_digests, stages)
        if dedup_result:
            manifest["dedup"] = manifest_entry(dedup_result.stats, clusters_file)
        if export_name:
            manifest["exports"] = {"fastchat_json": exported}
        if decontam_run:
            manifest["decontamination"] = decontam_run.finish(tmp, written_ids)
            log(decontam_run.summary_line(manifest["decontamination"]))
        write_manifest(tmp, manifest)
        clock = time.perf_counter()
        log("flan-mini: writing the data card")
        write_card(tmp, repo_id=recipe.publish.repo_id if recipe.publish else None, record_in=manifest)
        stages["card"] = time.perf_counter() - clock
        stages["total"] = time.perf_counter() - started
        manifest["stages"] = {k: round(v, 3) for k, v in stages.items()}
        write_manifest(tmp, manifest)  # again, with the card's time (the card does not read the timings)
    result = BuildResult(out_dir, manifest, builds)
    if recipe.publish and push:
        log(f"flan-mini: pushing to {recipe.publish.repo_id}")
        result.push = push_folder(out_dir, **recipe.publish.model_dump())
    return result


# ------------------------------------------------------------------------------------------- manifest


def _value_counts(array: pa.Array) -> dict[str, int]:
    counts = pc.value_counts(array).to_pylist()
    return {str(item["values"]): item["counts"] for item in sorted(counts, key=lambda i: (str(i["values"])))}


def source_entry(item: SourceBuild, input_digests: dict) -> dict:
    config, adapter, counts = item.plan.config, item.plan.adapter, item.selection.counts
    inputs = item.plan.inputs
    final = item.final
    removed = {reason: int(mask.sum()) for reason, mask in item.removed.items() if reason != "dedup"}
    removed.update(item.dedup_removed)
    entry = {
        "name": config.name,
        "adapter": config.adapter,
        "label": config.label,
        "license": config.license or adapter.license,
        "origin": {
            "kind": inputs.kind,
            "path": config.path,
            "repo_id": inputs.repo_id,
            "revision": inputs.revision,
            "split": config.split,
            "data_files": config.data_files,
        },
        "inputs": [{"path": f.display, "bytes": f.bytes, "sha256": input_digests.get(f.path)} for f in item.plan.files],
        "files_skipped": item.plan.skipped,
        "requested": config.n,
        "rows_read": counts.rows_read,
        "rows_filtered": counts.rows_filtered,
        "rows_examined": counts.rows_examined,
        "rejected": dict(sorted(counts.rejected.items())),
        "reject_examples": counts.reject_examples,
        "usable": counts.matched,
        "selected": item.selected,
        "removed": removed,
        "written": final.num_rows,
        "shortfall": config.n - final.num_rows,
        "templates": _value_counts(final.column("template_id")),
        "template_types": _value_counts(final.column("template_type")),
        "num_shots": _value_counts(final.column("num_shots").cast(pa.string()).fill_null("unknown")),
        "settings": adapter.describe(),
    }
    if item.render_stats:
        # How rendering went over all candidates, with the zero-/few-shot and task counts of the rows written.
        types = entry["template_types"]
        written = {"zero_shot": types.get("zs", 0), "few_shot": types.get("fs", 0)}
        written["few_shot_share_written"] = round(written["few_shot"] / max(final.num_rows, 1), 6)
        if share := item.render_stats.get("few_shot_share"):  # realised = written; the candidates' share beside it
            written["few_shot_share"] = {**share, "candidates": share["realised"], "realised": written["few_shot_share_written"]}
        if "tasks" in item.render_stats:
            written["tasks"] = _value_counts(final.column(TASK))
        entry["render"] = {**item.render_stats, "candidates": item.selected, **written}
    if adapter_stats := counts.adapter_summary():
        entry["adapter_stats"] = adapter_stats
    if counts.tallied:  # FLAN: the tasks as read and as written, and how far apart
        entry["task_distribution"] = task_distribution(counts.tallied, final.column("source"))
    if len(item.selection.quotas) > 1:
        entry["group_quotas"] = dict(sorted(item.selection.quotas.items()))
    if stats := counts.adapter_summary():
        entry["adapter_stats"] = stats
    return entry


def make_manifest(plan: Plan, builds, shards, schema: pa.Schema, input_digests: dict, stages: dict) -> dict:
    recipe = plan.recipe
    return {
        "format_version": FORMAT_VERSION,
        "name": recipe.name,
        "description": recipe.description,
        "created_by": created_by(),
        "command": command_line(),
        "recipe": {"path": str(plan.loaded.path), "sha256": plan.loaded.sha256, "resolved": plan.loaded.resolved()},
        "seed": plan.seed,
        "output": {
            "format": recipe.output.format,
            "split": "train",
            "rows": sum(shard.rows for shard in shards),
            "bytes": sum(s.bytes for s in shards),
            "columns": [f"{f.name}: {f.type}" for f in schema],
            "shards": [s.to_dict() for s in shards],
        },
        "sources": [source_entry(item, input_digests) for item in builds],
        "dedup": None,
        "decontamination": None,
        "stages": {k: round(v, 3) for k, v in stages.items()},
    }
