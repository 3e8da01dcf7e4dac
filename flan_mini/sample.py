"""Deterministic selection to exact counts: a streaming bottom-k scan, per-group quotas, a checked fetch.

How a source's rows are chosen, with memory bounded whatever the source size:
1. Scan. Only the columns the recipe's filters and groups need are read (none at all for a
   plain Parquet source: row counts come from the file's metadata). Each row's rank is a hash of
   (seed, source, the file's fingerprint, the row's position in the file). Keeping the k smallest
   ranks ("bottom-k") is a uniform sample without replacement. It does not depend on the order
   files are listed or read, nor on batch sizes. Per group, the scan keeps only the current k
   smallest (rank, file, row): about 24 bytes a candidate.
   Example: ranks 7, 3, 9, 1 arrive; with k=2 the scan keeps {1, 3}, in any arrival order.
2. Quotas. Without groups there is one group and its quota is n. With FLAN-style per-task caps
   each task weighs min(its rows, cap), and quotas are proportional to the weights, apportioned
   to exact integers by largest remainder (ties by task name). Example: n=10, weights 5 and 15
   -> shares 2.5 and 7.5 -> 3 and 7. An adapter may give its own weights (`group_weights`: FLAN
   2022's mixture, or a mixed FLAN export's own task sizes); when they need every group's size,
   a first pass counts the rows per group, so the scan then keeps only each group's quota (plus
   spares) of candidates.
3. Fetch and check. The chosen rows are read again, all fields, and only those rows (Parquet row
   groups without a chosen row are skipped). A row whose prompt or answer is missing or blank is
   rejected (and counted). Its place goes to the group's next candidate in rank order. Content is
   read for the chosen rows and their replacements, never for the whole source.
Each chosen row also gets a content key (a hash of its fields), used for its id, its template
choice and dedup. Extra candidates (for dedup) are chosen the same way. The build's pick stage
(stages/pick.py) later keeps each group's quota of survivors and refills a short group from the others' extras.
The chosen rows stay in file order; rank order is only ever computed, never materialised.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from .errors import SourceError
from .keys import mix64, row_keys, salt
from .progress import QUIET, Reporter
from .quotas import NO_GROUP, apportion, group_weights
from .rejects import check_reject_rate, malformed, record_rejects, reject_reasons
from .sources.base import Adapter
from .sources.files import InputFile
from .sources.formats import ORDINAL, REJECT, parquet_rows

KEY, RANK, GROUP = "_key", "_rank", "_group"
# Candidates kept beyond each group's quota, to replace rows the fetch finds malformed.
SPARE_SHARE, SPARE_MIN = 0.10, 32


@dataclass
class SourceCounts:
    """What selection saw, for the manifest and the reject-rate check."""

    rows_read: int = 0  # rows scanned
    rows_filtered: int = 0  # excluded by the recipe's filters
    rows_examined: int = 0  # rows whose content was read and checked (the chosen and their replacements)
    scan_rejected: Counter = field(default_factory=Counter)  # found by the scan, over all rows read
    fetch_rejected: Counter = field(default_factory=Counter)  # found by the content check, over rows examined
    reject_examples: list[dict] = field(default_factory=list)
    matched_by_group: Counter = field(default_factory=Counter)  # rows passing the filters and the scan's checks
    tallied: Counter = field(default_factory=Counter)  # the same rows by the adapter's tally_column (FLAN: task)
    scan_seconds: float = 0.0
    fetch_seconds: float = 0.0

    @property
    def matched(self) -> int:
        return sum(self.matched_by_group.values())

    @property
    def rejected(self) -> Counter:
        return self.scan_rejected + self.fetch_rejected

    def reject_rate(self) -> tuple[float, float]:
        """(estimate, lower bound) of the share of malformed rows.

        Scan rejects are counted over every row read (exact). Content rejects are counted over the
        rows examined, a uniform sample of the matching rows, so their share is an estimate; its
        95% Wilson lower bound is what the recipe's limit is checked against, so a handful of bad
        rows among a few examined does not fail a build, while a truly bad source does.
        """
        scan = sum(malformed(self.scan_rejected).values()) / self.rows_read if self.rows_read else 0.0
        bad, n = sum(malformed(self.fetch_rejected).values()), self.rows_examined
        if not n:
            return scan, scan
        p, z = bad / n, 1.96
        lower = (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
        return scan + p, scan + max(0.0, lower)


@dataclass
class Selection:
    table: pa.Table  # the chosen rows: adapter fields + _key, _rank, _group; in file order
    quotas: dict[str, int]  # rows each group should deliver when nothing is removed (sums to <= n)
    counts: SourceCounts
    shortfall: int  # n minus what the source can deliver (0 when it has enough)


# ------------------------------------------------------------------------------------------ ranks


def file_fingerprint(file: InputFile, edge: int = 1 << 20) -> int:
    """A 64-bit identity of a file's content: its size and its first and last MiB.

    Ranks hang off this, not off the file's name, so renaming or moving a file keeps its rows' ranks.
    """
    digest = xxhash.xxh3_64(str(file.bytes).encode())
    with open(file.path, "rb") as handle:
        digest.update(handle.read(edge))
        if file.bytes > edge:
            handle.seek(max(edge, file.bytes - edge))
            digest.update(handle.read(edge))
    return digest.intdigest()


def position_ranks(file_salt: int, ordinals: np.ndarray) -> np.ndarray:
    """Seeded ranks of rows by position: mix64(ordinal ^ salt(seed, source, file fingerprint))."""
    return mix64(ordinals.astype(np.uint64) ^ np.uint64(file_salt))


# --------------------------------------------------------------------------------------- bottom-k


class _Pool:
    """Per-group bottom-k of (rank, file, ordinal), compacted lazily.

    Rows whose rank is above their group's current k-th smallest are dropped on arrival, so
    once a group is full almost nothing is appended: work is linear in the rows scanned and
    memory in the number of candidates. Compaction (a sort) only runs when some group holds more
    than its capacity, so groups that never fill (FLAN tasks under their cap) cost no sorting.
    """

    def __init__(self, capacity_of):
        self.capacity_of = capacity_of
        self.labels: list[str] = []
        self.index: dict[str, int] = {}
        self.capacity = np.zeros(0, np.int64)
        self.threshold = np.zeros(0, np.uint64)
        self.held = np.zeros(0, np.int64)  # candidates held per group, compacted or not
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.pending = 0
        self.kept = 0

    def _add(self, label: str) -> int:
        self.index[label] = len(self.labels)
        self.labels.append(label)
        self.capacity = np.append(self.capacity, self.capacity_of(label))
        self.threshold = np.append(self.threshold, np.iinfo(np.uint64).max).astype(np.uint64)
        self.held = np.append(self.held, 0)
        return self.index[label]

    def group_ids(self, labels: pa.Array | None, n: int) -> np.ndarray:
        if labels is None:  # one group: the whole source
            return np.full(n, self.index[NO_GROUP] if NO_GROUP in self.index else self._add(NO_GROUP), np.int32)
        encoded = labels.dictionary_encode()
        local = encoded.dictionary.to_pylist()
        mapping = np.array([self.index[x] if x in self.index else self._add(x) for x in local], np.int32)
        return mapping[np.asarray(encoded.indices.to_numpy(zero_copy_only=False))]

    def offer(self, rank: np.ndarray, group: np.ndarray, file: int, ordinal: np.ndarray) -> None:
        keep = rank <= self.threshold[group]
        count = int(keep.sum())
        if not count:
            return
        self.parts.append((rank[keep], group[keep], np.full(count, file, np.int32), ordinal[keep]))
        self.held += np.bincount(group[keep], minlength=len(self.labels))
        self.pending += count
        if self.pending > max(1 << 16, 2 * self.kept) and (self.held > self.capacity).any():
            self.compact()

    def compact(self) -> tuple[np.ndarray, ...]:
        """Keep each group's `capacity` smallest ranks; returns them sorted by (group, rank)."""
        if not self.parts:
            return np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
        rank, group, file, ordinal = (np.concatenate(cols) for cols in zip(*self.parts))
        # Sort by rank, then stably by group: (group, rank) order. Two ranks are equal only if two
        # (file, row) pairs hash alike, which 64-bit mixing makes vanishingly rare.
        order = np.argsort(rank)
        order = order[np.argsort(group[order], kind="stable")]
        rank, group, file, ordinal = rank[order], group[order], file[order], ordinal[order]
        starts = np.searchsorted(group, np.arange(len(self.labels)))
        keep = (np.arange(len(group)) - starts[group]) < self.capacity[group]
        rank, group, file, ordinal = rank[keep], group[keep], file[keep], ordinal[keep]
        self.held = np.bincount(group, minlength=len(self.labels))
        ends = np.searchsorted(group, np.arange(len(self.labels)), side="right")
        full = self.held >= self.capacity
        self.threshold[full] = rank[ends[full] - 1]
        self.parts = [(rank, group, file, ordinal)]
        self.kept = self.pending = len(rank)
        return rank, group, file, ordinal


# ------------------------------------------------------------------------------------------- select


def select_source(
    adapter: Adapter, files: list[InputFile], *, seed: int, extra: int = 0, reporter: Reporter = QUIET
) -> Selection:
    """Choose `n + extra` rows of one source (see the module docstring).

    Raises SourceError on a shortfall (unless the recipe accepts it) or when the share of
    malformed rows passes the recipe's limit.
    """
    adapter.prepare(files)
    spare = SPARE_SHARE
    while True:
        selection, pool_ran_dry = _select(adapter, files, seed=seed, extra=extra, spare=spare, reporter=reporter)
        if not pool_ran_dry:
            return selection
        # More malformed rows than spare candidates in some group: scan again keeping more.
        spare *= 4


def _scan(adapter, files, seed, capacity_of, task, count_only=False) -> tuple[_Pool, SourceCounts]:
    """Offer every usable row to the pool; with `count_only`, only count the rows per group."""
    config = adapter.config
    pool = _Pool(capacity_of)
    counts = SourceCounts()
    scan_fields = adapter.scan_fields()
    for file_index, file in enumerate(files):
        if adapter.skip_file(file):
            continue
        file_salt = salt(seed, config.name, "select", file_fingerprint(file))
        for batch in adapter.read(file, fields=scan_fields):
            counts.rows_read += batch.num_rows
            task.update(batch.num_rows)
            reasons = reject_reasons(batch, adapter)
            if reasons.null_count < len(reasons):
                record_rejects(batch, reasons, file, adapter, counts, counts.scan_rejected)
            ok = reasons.is_null()
            keep = adapter.row_filter(batch)
            if keep is not None:
                counts.rows_filtered += int(pc.sum(pc.and_(ok, pc.invert(keep))).as_py() or 0)
                ok = pc.and_(ok, keep)
            usable = batch.filter(ok)
            if usable.num_rows == 0:
                continue
            if (tally := adapter.tally_column(usable)) is not None:
                counts.tallied.update(_value_counts(tally))
            labels = adapter.group_column(usable)
            if count_only:
                counts.matched_by_group.update(_value_counts(labels) if labels is not None else {NO_GROUP: usable.num_rows})
                continue
            group = pool.group_ids(labels, usable.num_rows)
            for g, c in zip(*np.unique(group, return_counts=True)):
                counts.matched_by_group[pool.labels[g]] += int(c)
            ordinals = usable.column(ORDINAL).to_numpy()
            pool.offer(position_ranks(file_salt, ordinals), group, file_index, ordinals)
    return pool, counts


def _value_counts(array: pa.Array) -> dict[str, int]:
    counted = pc.value_counts(array)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))


def _select(adapter, files, *, seed, extra, spare, reporter) -> tuple[Selection, bool]:
    config = adapter.config
    target = config.n + extra
    clock = time.perf_counter()
    scanned = [f for f in files if not adapter.skip_file(f)]
    planned: dict[str, int] = {}
    if adapter.needs_counts():
        # Count first: each group then keeps only its quota's candidates (a mixed FLAN export has thousands of
        # tasks, each far below n, which would otherwise all be held whole).
        with reporter.task(f"count {config.name}", total=parquet_rows(scanned)) as task:
            _, counted = _scan(adapter, files, seed, None, task, count_only=True)
        labels = sorted(counted.matched_by_group)
        weights, upper = group_weights(adapter, labels, np.array([counted.matched_by_group[g] for g in labels], np.int64))
        planned = dict(zip(labels, apportion(target, weights, upper, labels).tolist()))

    def capacity_of(label: str) -> int:
        cap = adapter.group_cap(label) if label != NO_GROUP else None
        base = planned.get(label, 0) if planned else (min(target, cap) if cap is not None else target)
        return base + max(SPARE_MIN, math.ceil(base * spare))

    with reporter.task(f"scan {config.name}", total=parquet_rows(scanned)) as task:
        pool, counts = _scan(adapter, files, seed, capacity_of, task)
    rank, group, file_ids, ordinal = pool.compact()
    counts.scan_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    labels = pool.labels
    matched = np.array([counts.matched_by_group[label] for label in labels], np.int64)
    caps = [adapter.group_cap(label) if label != NO_GROUP else None for label in labels]
    weights, upper = group_weights(adapter, labels, matched)
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
            fetched, kept_groups = _fetch_checked(
                adapter, files, file_ids[picks], ordinal[picks], rank[picks], group[picks], labels, counts, task
            )
            parts.append(fetched)
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


def _fetch_checked(adapter, files, file_ids, ordinals, ranks_, groups, labels, counts, task) -> tuple[pa.Table, np.ndarray]:
    """Read the given rows (all fields), drop and count the malformed, attach key/rank/group; also returns
    the group ids of the rows kept.

    Works batch by batch, so the content is held once (no combined or filtered copies).
    """
    tables, kept_groups = [], []
    label_array = np.asarray(labels, dtype=object)
    # One sort by (file, row), then a run per file (not one pass over every pick per file).
    order = np.lexsort((ordinals, file_ids))
    by_file = file_ids[order]
    bounds = np.flatnonzero(np.r_[True, by_file[1:] != by_file[:-1], True]) if len(order) else np.zeros(1, np.int64)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        run = order[lo:hi]
        wanted, wanted_rank, wanted_group = ordinals[run], ranks_[run], groups[run]
        file = files[int(by_file[lo])]
        position = 0
        for batch in adapter.read(file, wanted):
            got = batch.column(ORDINAL).to_numpy()
            if not np.array_equal(got, wanted[position : position + len(got)]):
                raise SourceError(f"{file.display}: changed while the build was reading it (chosen rows not found again)")
            rank, group = wanted_rank[position : position + len(got)], wanted_group[position : position + len(got)]
            position += len(got)
            counts.rows_examined += batch.num_rows
            task.update(batch.num_rows)
            reasons = reject_reasons(batch, adapter)
            if reasons.null_count < len(reasons):
                record_rejects(batch, reasons, file, adapter, counts, counts.fetch_rejected)
                ok = np.asarray(reasons.is_null().to_numpy(zero_copy_only=False))
                batch, rank, group = batch.filter(pa.array(ok)), rank[ok], group[ok]
            keys = row_keys(batch, adapter.identity_fields)
            table = pa.Table.from_batches([batch]).drop_columns([ORDINAL, REJECT])
            table = table.append_column(KEY, pa.array(keys, pa.uint64())).append_column(RANK, pa.array(rank, pa.uint64()))
            tables.append(table.append_column(GROUP, pa.array(label_array[group], pa.string())))
            kept_groups.append(group)
        if position != len(wanted):
            raise SourceError(f"{file.display}: changed while the build was reading it ({position} of {len(wanted)} chosen rows found again)")
    kept = np.concatenate(kept_groups).astype(np.int64) if kept_groups else np.zeros(0, np.int64)
    return (pa.concat_tables(tables) if tables else _empty_selection(adapter)), kept
