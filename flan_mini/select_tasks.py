"""Selection's per-file tasks: survey a file, scan it for its bottom-k candidates, fetch its chosen rows.

Each is a top-level function of plain, picklable arguments (the adapter, one file, numbers and
arrays) returning that file's result, so an executor (executor.py) can run it in this process or on
another machine; sample.py merges the results on the driver in file order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .bottomk import BottomK, position_ranks
from .errors import SourceError
from .keys import row_keys, salt
from .quotas import NO_GROUP
from .rejects import record_rejects, reject_reasons
from .select_counts import SourceCounts
from .sources.base import Adapter
from .sources.files import InputFile, file_fingerprint
from .sources.localize import local_file
from .sources.formats import ORDINAL, REJECT

KEY, RANK, GROUP = "_key", "_rank", "_group"
# Candidates kept beyond each group's quota, to replace rows the fetch finds malformed.
SPARE_SHARE, SPARE_MIN = 0.10, 32


@dataclass(frozen=True)
class Capacities:
    """How many candidates each group keeps: its quota (planned by a count pass, or else n capped by the
    group's cap) plus spares for rows the fetch finds malformed."""

    target: int  # n + extra
    spare: float  # share of spares (grows when a rescan is needed)
    planned: dict[str, int] = field(default_factory=dict)  # group -> quota from the count pass (empty: none)

    def of(self, adapter: Adapter, label: str, learnt: dict) -> int:
        cap = adapter.group_cap(label, learnt) if label != NO_GROUP else None
        base = self.planned.get(label, 0) if self.planned else (min(self.target, cap) if cap is not None else self.target)
        return base + max(SPARE_MIN, math.ceil(base * self.spare))


@dataclass
class FileScan:
    """One file's scan: its counts, what it taught the adapter, and its bottom-k candidates per group."""

    counts: SourceCounts
    learnt: dict
    labels: list[str]  # the file's groups, in the order first seen
    rank: np.ndarray  # candidates: rank, index into `labels`, ordinal
    group: np.ndarray
    ordinal: np.ndarray
    fingerprint: int


def survey_task(adapter: Adapter, file: InputFile) -> object:
    return adapter.survey_file(local_file(file))


def scan_file(adapter: Adapter, file: InputFile, seed: int, capacities: Capacities | None) -> FileScan:
    """Read the scan fields of one file, count and check its rows, and keep each group's bottom-k usable
    rows; with `capacities` None (a count pass), only count the usable rows per group."""
    # Capacities use what this file teaches (FLAN: a task's submix, hence its cap); the driver keeps the first
    # file's answer. They differ only if one task name appears under two submixes with different caps: that
    # task's candidates from a later file are then kept by that file's cap (not known to happen in FLAN's exports).
    counts, learnt = SourceCounts(), {}
    file = local_file(file)  # tasks may run on another machine (a Hub input is fetched there)
    fingerprint = file_fingerprint(file)
    file_salt = salt(seed, adapter.config.name, "select", fingerprint)
    pool = BottomK(lambda label: capacities.of(adapter, label, learnt)) if capacities is not None else None
    for batch in adapter.read(file, fields=adapter.scan_fields(), stats=counts.adapter_stats):
        counts.rows_read += batch.num_rows
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
        for key, value in (adapter.scan_facts(usable) or {}).items():
            learnt.setdefault(key, value)
        if (tally := adapter.tally_column(usable)) is not None:
            counts.tallied.update(value_counts(tally))
        labels = adapter.group_column(usable)
        if pool is None:
            counts.matched_by_group.update(value_counts(labels) if labels is not None else {NO_GROUP: usable.num_rows})
            continue
        group = pool.group_ids(labels, usable.num_rows)
        for g, c in zip(*np.unique(group, return_counts=True)):
            counts.matched_by_group[pool.labels[g]] += int(c)
        ordinals = usable.column(ORDINAL).to_numpy()
        pool.offer(position_ranks(file_salt, ordinals), group, 0, fingerprint, ordinals)
    if pool is None:
        return FileScan(counts, learnt, [], np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.int64), fingerprint)
    rank, group, _, ordinal = pool.compact()
    return FileScan(counts, learnt, pool.labels, rank, group, ordinal, fingerprint)


def value_counts(array: pa.Array) -> dict[str, int]:
    counted = pc.value_counts(array)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))


@dataclass
class FileFetch:
    """One file's fetched rows: per-batch tables (adapter fields + key, rank, group), in file order, the
    group code of each row kept, and the counts of rows examined and rejected."""

    tables: list[pa.Table]
    kept: np.ndarray
    counts: SourceCounts


def fetch_file(adapter: Adapter, file: InputFile, fingerprint: int, wanted: np.ndarray, ranks: np.ndarray,
               codes: np.ndarray, labels: list[str]) -> FileFetch:
    """Read the wanted rows of one file (all fields; `wanted` sorted), drop and count the malformed, attach
    key/rank/group (`labels[codes]`). Works batch by batch, so the content is held once. `fingerprint` is
    the file's as the scan saw it: a file changed since is an error, not a silent mix of two versions."""
    file = local_file(file)
    if file_fingerprint(file) != fingerprint:
        raise SourceError(f"{file.display}: changed while the build was reading it (its content differs from the scan's)")
    counts, tables, kept = SourceCounts(), [], []
    label_array = np.asarray(labels, dtype=object)
    position = 0
    for batch in adapter.read(file, wanted):
        got = batch.column(ORDINAL).to_numpy()
        if not np.array_equal(got, wanted[position : position + len(got)]):
            raise SourceError(f"{file.display}: changed while the build was reading it (chosen rows not found again)")
        rank, group = ranks[position : position + len(got)], codes[position : position + len(got)]
        position += len(got)
        counts.rows_examined += batch.num_rows
        reasons = reject_reasons(batch, adapter)
        if reasons.null_count < len(reasons):
            record_rejects(batch, reasons, file, adapter, counts, counts.fetch_rejected)
            ok = np.asarray(reasons.is_null().to_numpy(zero_copy_only=False))
            batch, rank, group = batch.filter(pa.array(ok)), rank[ok], group[ok]
        keys = row_keys(batch, adapter.identity_fields)
        table = pa.Table.from_batches([batch]).drop_columns([ORDINAL, REJECT])
        table = table.append_column(KEY, pa.array(keys, pa.uint64())).append_column(RANK, pa.array(rank, pa.uint64()))
        tables.append(table.append_column(GROUP, pa.array(label_array[group], pa.string())))
        kept.append(group)
    if position != len(wanted):
        raise SourceError(f"{file.display}: changed while the build was reading it ({position} of {len(wanted)} chosen rows found again)")
    return FileFetch(tables, np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64), counts)
