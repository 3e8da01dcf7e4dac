"""Deterministic selection to exact counts: a streaming bottom-k scan, per-group quotas, a checked fetch.

How a source's rows are chosen, with memory bounded whatever the source size:
1. Scan, one task per file (select_tasks.py). Only the columns the recipe's filters and groups need
   are read (none at all for a plain Parquet source: row counts come from the file's metadata). Each
   row's rank is a hash of (seed, source, the file's fingerprint, the row's position in the file).
   Keeping the k smallest ranks ("bottom-k", bottomk.py) is a uniform sample without replacement. It
   does not depend on the order files are listed or read, nor on batch sizes, nor on how the files
   are spread over workers: each task keeps its file's k smallest per group, and the driver keeps the
   k smallest of those as the results arrive, in file order (ties: file fingerprint, then row).
   Example: ranks 7, 3, 9, 1 arrive; with k=2 the scan keeps {1, 3}, in any arrival order.
2. Quotas. Without groups there is one group and its quota is n. With FLAN-style per-task caps
   each task weighs min(its rows, cap), and quotas are proportional to the weights, apportioned
   to exact integers by largest remainder (ties by task name). Example: n=10, weights 5 and 15
   -> shares 2.5 and 7.5 -> 3 and 7. An adapter may give its own weights (`group_weights`: FLAN
   2022's mixture, or a mixed FLAN export's own task sizes); when they need every group's size,
   a first pass (per-file tasks too) counts the rows per group, so the scan then keeps only each
   group's quota (plus spares) of candidates.
3. Fetch and check, one task per file. The chosen rows are read again, all fields, and only those rows
   (Parquet row groups without a chosen row are skipped). A row whose prompt or answer is missing or
   blank is rejected (and counted). Its place goes to the group's next candidate in rank order.
   Content is read for the chosen rows and their replacements, never for the whole source.
Each chosen row also gets a content key (a hash of its fields), used for its id, its template
choice and dedup. Extra candidates (for dedup) are chosen the same way. The build's pick stage
(stages/pick.py) later keeps each group's quota of survivors and refills a short group from the others' extras.
The chosen rows stay in file order; rank order is only ever computed, never materialised.
Counts come back from every task and are added up (SourceCounts `+`) on the driver in file order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .bottomk import BottomK, position_ranks
from .errors import SourceError
from .executor import Executor, LocalExecutor
from .progress import QUIET, Reporter
from .quotas import NO_GROUP, apportion, group_weights
from .rejects import check_reject_rate
from .select_counts import SourceCounts
from .select_tasks import GROUP, KEY, RANK, SPARE_MIN, SPARE_SHARE, Capacities, fetch_file, scan_file, survey_task
from .sources.base import Adapter
from .sources.files import InputFile, file_fingerprint
from .sources.formats import parquet_rows

__all__ = ["GROUP", "KEY", "RANK", "SPARE_MIN", "SPARE_SHARE", "Selection", "SourceCounts", "apportion",
           "file_fingerprint", "position_ranks", "select_source"]


@dataclass
class Selection:
    table: pa.Table  # the chosen rows: adapter fields + _key, _rank, _group; in file order
    quotas: dict[str, int]  # rows each group should deliver when nothing is removed (sums to <= n)
    counts: SourceCounts
    shortfall: int  # n minus what the source can deliver (0 when it has enough)


# ------------------------------------------------------------------------------------------- select


def survey_source(adapter: Adapter, files: list[InputFile], executor: Executor) -> Adapter:
    """The adapter prepared for `files` and, if it surveys (ShareGPT: repeats judged across files), knowing what
    its survey found (a task per file). A pure function of the files: the select stage may run it early."""
    adapter = adapter.prepare(files)
    if adapter.survey:
        surveyed = [f for f in files if not adapter.skip_file(f)]
        adapter = adapter.surveyed(surveyed, list(executor.map(survey_task, [(adapter, f) for f in surveyed])))
    return adapter


def select_source(
    adapter: Adapter, files: list[InputFile], *, seed: int, extra: int = 0, reporter: Reporter = QUIET,
    executor: Executor | None = None, surveyed: Adapter | None = None,
) -> Selection:
    """Choose `n + extra` rows of one source (see the module docstring); per-file work runs on `executor`
    (default: inline, in this thread). `surveyed`: `survey_source`'s result, when it ran already.

    Raises SourceError on a shortfall (unless the recipe accepts it) or when the share of
    malformed rows passes the recipe's limit.
    """
    executor = executor or LocalExecutor(1)
    try:
        adapter = surveyed if surveyed is not None else survey_source(adapter, files, executor)
        spare = SPARE_SHARE
        while True:
            selection, pool_ran_dry = _select(adapter, files, seed=seed, extra=extra, spare=spare, reporter=reporter,
                                              executor=executor)
            if not pool_ran_dry:
                return selection
            # More malformed rows than spare candidates in some group: scan again keeping more.
            spare *= 4
    finally:
        adapter.release(files)


def _scan(adapter, files, seed, capacities, task, executor) -> tuple[BottomK | None, SourceCounts, dict, dict]:
    """Scan every file (a task each) and merge in file order: counts, learnt facts, each file's
    fingerprint, and (unless `capacities` is None: a count pass) each group's bottom-k candidates."""
    indices = [i for i, file in enumerate(files) if not adapter.skip_file(file)]
    shared, plain = executor.share(adapter), executor.share(capacities)
    results = executor.map(scan_file, [(shared, files[i], seed, plain) for i in indices])
    counts, learnt, fingerprints = SourceCounts(), {}, {}
    pool = BottomK(lambda label: capacities.of(adapter, label, learnt)) if capacities is not None else None
    for file_index, result in zip(indices, results):
        counts = counts + result.counts
        for key, value in result.learnt.items():
            learnt.setdefault(key, value)
        task.update(result.counts.rows_read)
        fingerprints[file_index] = result.fingerprint
        if pool is not None:
            mapping = np.array([pool.add(label) for label in result.labels], np.int32)
            if len(result.rank):
                pool.offer(result.rank, mapping[result.group], file_index, result.fingerprint, result.ordinal)
    return pool, counts, learnt, fingerprints


def _select(adapter, files, *, seed, extra, spare, reporter, executor) -> tuple[Selection, bool]:
    config = adapter.config
    target = config.n + extra
    clock = time.perf_counter()
    scanned = [f for f in files if not adapter.skip_file(f)]
    planned: dict[str, int] = {}
    learnt: dict = {}
    if adapter.needs_counts():
        # Count first: each group then keeps only its quota's candidates (a mixed FLAN export has thousands of
        # tasks, each far below n, which would otherwise all be held whole).
        with reporter.task(f"count {config.name}", total=parquet_rows(scanned)) as task:
            _, counted, learnt, _ = _scan(adapter, files, seed, None, task, executor)
        labels = sorted(counted.matched_by_group)
        weights, upper = group_weights(adapter, labels, np.array([counted.matched_by_group[g] for g in labels], np.int64), learnt)
        planned = dict(zip(labels, apportion(target, weights, upper, labels).tolist()))

    with reporter.task(f"scan {config.name}", total=parquet_rows(scanned)) as task:
        pool, counts, scan_learnt, fingerprints = _scan(adapter, files, seed, Capacities(target, spare, planned), task, executor)
    learnt = {**scan_learnt, **learnt}  # the count pass saw the same rows first
    rank, group, file_ids, ordinal = pool.compact()
    counts.scan_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    labels = pool.labels
    matched = np.array([counts.matched_by_group[label] for label in labels], np.int64)
    caps = [adapter.group_cap(label, learnt) if label != NO_GROUP else None for label in labels]
    weights, upper = group_weights(adapter, labels, matched, learnt)
    quotas_target = apportion(target, weights, upper, labels)
    starts = np.searchsorted(group, np.arange(len(labels)))
    ends = np.searchsorted(group, np.arange(len(labels)), side="right")

    # Fetch each group's quota of candidates in rank order, check their content, and replace the
    # malformed ones with the group's next candidates until the quota is met or candidates run out.
    taken = np.zeros(len(labels), np.int64)  # candidates fetched so far, per group
    valid = np.zeros(len(labels), np.int64)
    parts: list[pa.Table] = []
    with reporter.task(f"fetch {config.name}", total=int(quotas_target.sum())) as task:
        while True:
            want = np.minimum(quotas_target - valid, ends - starts - taken).clip(min=0)
            if not want.any():
                break
            picks = np.concatenate([np.arange(starts[g] + taken[g], starts[g] + taken[g] + want[g]) for g in np.flatnonzero(want)])
            taken += want
            fetched, kept_groups, counts = _fetch(adapter, files, file_ids[picks], ordinal[picks], rank[picks],
                                                  group[picks], labels, fingerprints, counts, task, executor)
            parts.extend(fetched)
            valid += np.bincount(kept_groups, minlength=len(labels))
    counts.fetch_seconds = time.perf_counter() - clock
    check_reject_rate(adapter, counts)

    # A group the pool could not fill although the source has more rows: the caller rescans with more spares.
    ran_dry = bool(((valid < quotas_target) & (taken >= ends - starts) & (matched > ends - starts)).any())
    if ran_dry:
        return Selection(pa.table({}), {}, counts, 0), True

    available = int(valid.sum())
    shortfall = max(0, config.n - available)
    if shortfall and not config.accept_shortfall:
        limit = " (the caps per task or problem limit it)" if any(c is not None for c in caps) else ""
        raise SourceError(
            f"source {config.name!r}: asks for n={config.n:,} rows but only {available:,} are usable{limit} "
            f"({counts.rows_read:,} read, {counts.rows_filtered:,} filtered out, "
            f"{sum(counts.rejected.values()):,} malformed). "
            f"Lower n, widen the filters, or set accept_shortfall: true to write what there is."
        )
    # Left in file order: nothing downstream needs rank order physically, and sorting would copy
    # every chosen row's content (hundreds of MB for FLAN-MINI's largest sources).
    table = pa.concat_tables(parts) if parts else _empty_selection(adapter)
    quotas = apportion(config.n, weights, np.minimum(valid, upper), labels)
    return Selection(table, {label: int(q) for label, q in zip(labels, quotas)}, counts, shortfall), False


def _empty_selection(adapter: Adapter) -> pa.Table:
    fields = [pa.field(n, t) for n, t in adapter.fields.items()]
    return pa.schema([*fields, (KEY, pa.uint64()), (RANK, pa.uint64()), (GROUP, pa.string())]).empty_table()


def _fetch(adapter, files, file_ids, ordinals, ranks, groups, labels, fingerprints, counts, task, executor):
    """Fetch the picked rows, one task per file (in file order), and merge: the per-batch tables, the group
    id of each row kept, and the counts (added to `counts`)."""
    order = np.lexsort((ordinals, file_ids))  # by (file, row): each file's run is sorted, as `read` wants it
    by_file = file_ids[order]
    bounds = np.flatnonzero(np.r_[True, by_file[1:] != by_file[:-1], True]) if len(order) else np.zeros(1, np.int64)
    jobs, present = [], []
    shared = executor.share(adapter)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        run = order[lo:hi]
        # Only this file's groups travel with its task (a FLAN source has thousands).
        uniq, codes = np.unique(groups[run], return_inverse=True)
        index = int(by_file[lo])
        jobs.append((shared, files[index], fingerprints[index], ordinals[run], ranks[run], codes.astype(np.int64),
                     [labels[g] for g in uniq]))
        present.append(uniq)
    tables, kept = [], []
    for uniq, result in zip(present, executor.map(fetch_file, jobs)):
        counts = counts + result.counts
        task.update(result.counts.rows_examined)
        tables.extend(result.tables)
        kept.append(uniq[result.kept])
    return tables, (np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64)), counts
