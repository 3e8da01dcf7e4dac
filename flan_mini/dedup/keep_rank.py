"""The keep order sorted by tasks: each row's rank in (priority, _order, id, row) without a per-row array on the driver.

``clusters.keep_order`` sorts every row's key in one process. Here, for the partitioned path:

1. one task per batch reads the batch's ids and ``_order`` (``ArrayKeys``: slices the caller holds; or
   ``ParquetBatches.key_reads``: the files' own columns), sorts them by the keep key and returns a few
   evenly spaced keys as a sample, keeping the sorted batch in the object store;
2. the driver sorts the samples (a few thousand keys) and cuts the key space into R ranges;
3. one task per range takes its keys from every sorted batch (a binary search per batch), sorts them and keeps
   the range's rows in keep order (with their ``_order`` and id) and the same rows sorted by row;
4. a sketch task finds its batch's ranks in the R ranges by row (``batch_ranks``); the driver asks for the
   rows, ``_order`` and ids of the few ranks it needs (``KeepRanks.lookup``), range by range.

The key ends with the row (input position, unique), so the order is total and equals ``keep_order``'s (a stable
sort of (priority, _order, id)); ids compare as UTF-8 bytes, nulls last, as Arrow's sort does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FlanMiniError
from .sketch import _to_ipc

SAMPLE_KEYS = 4096  # keys the driver sorts to cut the ranges (all batches together)
RANGE_ROWS = 1 << 20  # rows per range task: what one task sorts, and what one lookup task reads


def range_count(rows: int, workers: int) -> int:
    """R: one range per ~RANGE_ROWS rows, at least one per worker."""
    return max(1, workers, math.ceil(rows / RANGE_ROWS))


def read_keys(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


@dataclass
class ArrayKeys:
    """Ids and ``_order`` the caller holds (a table on the driver): each batch's slice travels as IPC bytes."""

    ids: pa.Array | pa.ChunkedArray
    order: np.ndarray

    def key_reads(self, bounds: list[tuple[int, int]]):
        for start, stop in bounds:  # lazily: only the batches in flight are copies
            keys = pa.table({"id": pc.cast(self.ids.slice(start, stop - start), pa.string()),
                             "order": pa.array(np.asarray(self.order[start:stop], np.int64))})
            yield read_keys, (_to_ipc(keys),)


# ---------------------------------------------------------------------------------------------------- tasks


def _key_table(batch: pa.Table, start: int, stop: int, priority: np.ndarray | None) -> pa.Table:
    """(priority, order, id, row) of a batch whose first column is the id and second, if any, ``_order``
    (none: the row's input position is its order)."""
    if batch.num_rows != stop - start:
        raise FlanMiniError(f"dedup: a batch of rows {start}..{stop} read {batch.num_rows} id rows")
    if batch.num_columns > 1:
        order = batch.column(1)
        if order.null_count or not pa.types.is_integer(order.type):
            raise FlanMiniError(f"dedup: column {batch.column_names[1]!r} (rows {start}..{stop}) must be integers "
                                f"without nulls, found {order.type}")
        order = order.to_numpy().astype(np.int64)
    else:
        order = np.arange(start, stop, dtype=np.int64)
    columns = {} if priority is None else {"priority": pa.array(priority, pa.int64())}
    columns.update(order=order, id=pc.cast(batch.column(0), pa.string()).combine_chunks(),
                   row=np.arange(start, stop, dtype=np.int64))
    return pa.table(columns)


def _sort(keys: pa.Table) -> pa.Table:
    indices = pc.sort_indices(keys, sort_keys=[(name, "ascending") for name in keys.column_names])
    return keys.take(indices).combine_chunks()


def _key_at(keys: pa.Table, at: int) -> tuple:
    """The comparable key of row ``at``: ids as UTF-8 bytes (the order Arrow sorts strings in), nulls last."""
    has_priority = keys.num_columns == 4
    name = keys.column("id")[at].as_py()
    return (keys.column("priority")[at].as_py() if has_priority else 0, keys.column("order")[at].as_py(),
            (1, b"") if name is None else (0, name.encode()), keys.column("row")[at].as_py())


def _first_at_or_after(keys: pa.Table, key: tuple | None) -> int:
    """The first position of sorted ``keys`` whose key is >= ``key`` (None: past the end)."""
    if key is None:
        return keys.num_rows
    lo, hi = 0, keys.num_rows
    while lo < hi:
        mid = (lo + hi) // 2
        if _key_at(keys, mid) < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def sort_batch(start: int, stop: int, samples: int, code: np.ndarray | None, source_rank: np.ndarray | None,
               read, *args) -> tuple[list[tuple], pa.Table]:
    """Task: a batch's keys sorted (left in the object store) and ``samples`` evenly spaced keys of them.
    ``code`` (the rows' source codes) and ``source_rank`` give the priority; None: one priority for all."""
    priority = None if code is None else source_rank[code]
    keys = _sort(_key_table(read(*args), start, stop, priority))
    picks = np.unique(np.linspace(0, keys.num_rows - 1, min(samples, keys.num_rows)).round().astype(np.int64))
    return [_key_at(keys, int(at)) for at in picks], keys


def sort_range(low: tuple | None, high: tuple | None, *batches: pa.Table):
    """Task: the rows whose keys are in [low, high) (None: unbounded), from every sorted batch, in keep order.

    Returns (count, (rows, order, ids) in keep order, (the same rows ascending, their positions in keep
    order)): the first for lookups by rank, the second for sketch tasks finding ranks by row."""
    parts = []
    for keys in batches:
        lo = 0 if low is None else _first_at_or_after(keys, low)
        hi = _first_at_or_after(keys, high)
        if hi > lo:
            parts.append(keys.slice(lo, hi - lo))
    if not parts:
        empty = np.zeros(0, np.int64)
        return 0, (empty, empty, pa.array([], pa.string())), (empty, empty)
    ranked = _sort(pa.concat_tables(parts))
    rows = ranked.column("row").to_numpy()
    by_row = np.argsort(rows, kind="stable")
    return (len(rows), (rows, ranked.column("order").to_numpy(), ranked.column("id").combine_chunks()),
            (rows[by_row], by_row.astype(np.int64)))


def batch_ranks(start: int, stop: int, offsets: np.ndarray, by_row: tuple) -> np.ndarray:
    """The ranks of rows start..stop-1, from every range's rows ascending with their positions (``sort_range``'s
    third result) and the ranges' first ranks ``offsets``."""
    ranks = np.full(stop - start, -1, dtype=np.int64)
    for first, (rows, positions) in zip(offsets, by_row):
        lo, hi = np.searchsorted(rows, [start, stop])
        ranks[rows[lo:hi] - start] = first + positions[lo:hi]
    if (ranks < 0).any():
        raise FlanMiniError(f"dedup: rows {start}..{stop} are missing from the keep order")
    return ranks


def lookup_range(positions: np.ndarray, ranked: tuple) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Task: (rows, order, ids) at ``positions`` of a range's keep order."""
    rows, order, ids = ranked
    return rows[positions], order[positions], ids.take(pa.array(positions, pa.int64()))


# --------------------------------------------------------------------------------------------------- driver


class KeepRanks:
    """The keep order of ``n`` rows, sorted by tasks and left on the executor in ranges.

    ``keys`` (``ArrayKeys`` or ``ParquetBatches``) reads each batch's ids and ``_order``; ``code`` and
    ``source_rank`` give each row's priority (``code`` is the only per-row array the driver holds; None for
    ``source_rank``: one priority). ``ranges`` (R) defaults to ``range_count``."""

    def __init__(self, keys, bounds: list[tuple[int, int]], code: np.ndarray, source_rank: np.ndarray | None,
                 executor, ranges: int | None = None):
        self.executor = executor
        n = bounds[-1][1] if bounds else 0
        per_batch = max(1, math.ceil(SAMPLE_KEYS / max(1, len(bounds))))

        def jobs():
            for (start, stop), (read, args) in zip(bounds, keys.key_reads(bounds)):
                rows_code = None if source_rank is None else code[start:stop]
                yield (start, stop, per_batch, rows_code, source_rank, read, *args)

        samples, sorted_batches = [], []
        for sample, handle in executor.submit(sort_batch, jobs(), returns=2):
            samples.append(sample)
            sorted_batches.append(handle)
        samples = sorted(key for sample in samples for key in executor.fetch(sample))
        count = max(1, min(ranges or range_count(n, executor.workers), len(samples)))
        cuts = [samples[len(samples) * k // count] for k in range(1, count)]
        cuts = [cut for k, cut in enumerate(cuts) if k == 0 or cut != cuts[k - 1]]
        lows, highs = [None, *cuts], [*cuts, None]
        counts, self.ranked, self.by_row = [], [], []
        for size, ranked, by_row in executor.submit(
                sort_range, ((low, high, *sorted_batches) for low, high in zip(lows, highs)), returns=3):
            counts.append(size)
            self.ranked.append(ranked)
            self.by_row.append(by_row)
        del sorted_batches  # (the ranges hold every key now) Ray frees the sorted batches
        counts = [executor.fetch(size) for size in counts]
        self.offsets = np.cumsum([0, *counts]).astype(np.int64)  # each range's first rank, then n
        if self.offsets[-1] != n:
            raise FlanMiniError(f"dedup: the keep order has {self.offsets[-1]} rows, expected {n}")

    def release_by_row(self) -> None:
        """Drops the ranges' by-row copies (once every batch has its ranks)."""
        self.by_row = []

    def lookup(self, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """(rows, order, ids) of ascending distinct ``ranks``, from the ranges that hold them."""
        ranks = np.asarray(ranks, dtype=np.int64)
        where = np.searchsorted(self.offsets, ranks, side="right") - 1
        cuts = np.searchsorted(where, np.arange(len(self.ranked) + 1))
        picked = [r for r in range(len(self.ranked)) if cuts[r + 1] > cuts[r]]
        jobs = ((ranks[cuts[r]:cuts[r + 1]] - self.offsets[r], self.ranked[r]) for r in picked)
        found = list(self.executor.map(lookup_range, jobs))
        if not found:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), pa.array([], pa.string())
        return (np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]),
                pa.concat_arrays([f[2] for f in found]))
