"""Dedup on an executor, partitioned by bucket: batch tasks scatter, partition tasks pair, the driver verifies.

The local path (stage.py with sketch.Workers) keeps every row's band keys in one process: ~100 bytes per row,
gigabytes at tens of millions of rows. Here no process holds them all:

1. one task per batch of rows sketches it and scatters its records into P partitions by a hash of what they
   are grouped on: (exact key, rank) by the exact key, (band key, band, rank) by the band key. `rank` is a
   row's position in keep order (the driver's, passed in), so every later step sees rows in keep order
   whatever batch or partition they came through;
2. one task per partition finds the exact groups of its exact keys (the first rank of a key is its head) and
   returns the (row, head) of the others -- few;
3. one task per partition, given those non-head rows (shared once), pairs the rows that share a bucket,
   band by band, exactly as ``lsh.candidate_pairs`` does on one machine (members in keep order, the same
   ``bucket_cap``), and returns the pairs as rank codes;
4. the driver (partitioned.py) unions the pairs, has tasks verify them on the candidate rows only (shingle
   sets or signatures, ``partitioned.Details``), and decides clusters from those rows alone. The result is
   identical to the local path's, for any P and any executor.

Batches travel as Arrow IPC bytes or are read by the task itself (``ParquetBatches``: a file's row groups),
records between tasks as numpy arrays through ``executor.share`` (Ray's object store), never through a disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import FlanMiniError
from .clusters import exact_groups
from .hashing import U64, fmix64
from .keep_rank import batch_ranks
from .lsh import band_keys, band_pairs
from .minhash import permutations, signatures
from .sketch import SketchPlan, _shingle_batch, _take_ascending, _to_ipc, batch_bounds, detail_batch
from .texts import text_bytes
from .verify import ShingleSets

# Records per partition task, in bytes: P grows with the input so that one partition's band records (16 bytes
# per row and band) stay around this size, whatever the number of rows.
PARTITION_BYTES = 256 << 20
RANK_BITS = 48  # a band record packs (band << 48 | rank): ranks below 2^48 rows, bands below 2^16
_RANK_MASK = U64((1 << RANK_BITS) - 1)


def partition_count(rows: int, bands: int, workers: int) -> int:
    """P: at least two partitions per worker (so they balance), more when the band records are large."""
    return max(2 * max(1, workers), math.ceil(rows * bands * 16 / PARTITION_BYTES), 1)


# -------------------------------------------------------------------------------------- where batches come from


def read_ipc(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


def read_row_groups(path: str, row_groups: tuple[int, ...], columns: tuple[str, ...]) -> pa.Table:
    """Rows of a Parquet file's row groups (a local path or any URL pyarrow's filesystems open)."""
    return pq.ParquetFile(path).read_row_groups(list(row_groups), columns=list(columns))


@dataclass
class TableBatches:
    """A table on the driver: each batch goes to its task as IPC bytes of the compared columns only."""

    table: pa.Table
    columns: tuple[str, ...]

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def bounds(self, spec, max_rows: int, max_bytes: int) -> list[tuple[int, int]]:
        return batch_bounds(text_bytes(self.table, spec), max_rows, max_bytes)

    def reads(self, bounds: list[tuple[int, int]]) -> Iterator[tuple[Callable, tuple]]:
        columns = self.table.select(list(self.columns))
        for start, stop in bounds:  # generated lazily: at most the executor's in-flight batches are copies
            yield read_ipc, (_to_ipc(columns.slice(start, stop - start)),)

    def detail_reads(self, rows: np.ndarray, spec, max_rows: int, max_bytes: int) -> Iterator[tuple]:
        """(read, args, local rows or None, row count) per batch of the input rows ``rows`` (ascending): here
        the driver takes the rows itself, so only candidate rows travel."""
        subset = _take_ascending(self.table.select(list(self.columns)), rows)
        for start, stop in batch_bounds(text_bytes(subset, spec), max_rows, max_bytes):
            yield read_ipc, (_to_ipc(subset.slice(start, stop - start)),), None, stop - start


@dataclass
class ParquetBatches:
    """Parquet files read by the tasks themselves (one batch per row group), so the driver never holds the
    text: what a cluster dedups at scale. ``paths`` are local paths on storage every node sees, or URLs."""

    paths: list[str]
    columns: tuple[str, ...]
    # Where tasks read the keep key (keep_rank.py) when the caller passes no ids/order arrays: the id column,
    # and the ``_order`` column (None: a row's input position is its order).
    id_column: str | None = None
    order_column: str | None = None

    def __post_init__(self):
        self._groups = []  # (path, row group, first row, rows)
        first = 0
        for path in self.paths:
            meta = pq.ParquetFile(path).metadata
            for group in range(meta.num_row_groups):
                rows = meta.row_group(group).num_rows
                self._groups.append((str(path), group, first, rows))
                first += rows
        self._rows = first
        self._schema = pq.ParquetFile(self.paths[0]).schema_arrow if self.paths else pa.schema([])

    @property
    def num_rows(self) -> int:
        return self._rows

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def bounds(self, spec, max_rows: int, max_bytes: int) -> list[tuple[int, int]]:
        return [(first, first + rows) for _, _, first, rows in self._groups if rows]

    def reads(self, bounds: list[tuple[int, int]]) -> Iterator[tuple[Callable, tuple]]:
        where = {first: (path, group) for path, group, first, _ in self._groups}
        for start, _ in bounds:
            path, group = where[start]
            yield read_row_groups, (path, (group,), self.columns)

    def key_reads(self, bounds: list[tuple[int, int]]) -> Iterator[tuple[Callable, tuple]]:
        """(read, args) per batch of its id column and, if named, its ``_order`` column."""
        if self.id_column is None:
            raise FlanMiniError("dedup: without ids and order arrays, ParquetBatches needs id_column (and "
                                "order_column, or input positions are the order)")
        columns = (self.id_column,) + ((self.order_column,) if self.order_column else ())
        for path in self.paths:
            names = pq.ParquetFile(path).schema_arrow.names
            if missing := [c for c in columns if c not in names]:
                raise FlanMiniError(f"dedup: {path} has no column {missing[0]!r} (columns: {names})")
        where = {first: (path, group) for path, group, first, _ in self._groups}
        for start, _ in bounds:
            path, group = where[start]
            yield read_row_groups, (path, (group,), columns)

    def detail_reads(self, rows: np.ndarray, spec, max_rows: int, max_bytes: int) -> Iterator[tuple]:
        for path, group, first, count in self._groups:
            lo, hi = np.searchsorted(rows, [first, first + count])
            if hi > lo:
                yield read_row_groups, (path, (group,), self.columns), rows[lo:hi] - first, hi - lo


# ---------------------------------------------------------------------------------------------------- tasks


def sketch_scatter(plan: SketchPlan, parts: int, ranks: np.ndarray, salt: np.ndarray | None, read, *args):
    """Task: sketch one batch (rows ranked ``ranks`` in keep order) and scatter its records into ``parts``.

    Returns 1 + parts values (``executor.submit(..., returns=1 + parts)``, so each piece can go to its
    partition's tasks without passing through the driver): (the batch's rows without shingles as int32
    positions, how many rows were truncated, how many had invalid UTF-8), then per partition the pair
    (exact records, band records) of the rows with something to compare:
    m x 3 uint64 (key halves, rank) and m' x 2 uint64 (key, band << 48 | rank). One piece per partition, not
    two: Ray keeps a task's results under 100 KiB in the driver's own memory, not in the object store. ``salt``
    (scope source) is xor-ed into the keys as the local path does.
    """
    batch = read(*args)
    shingles, offsets, exact, truncated, invalid = _shingle_batch(plan, batch, wide=False)
    keys = band_keys(signatures(shingles, offsets, *permutations(plan.num_perm, plan.seed)), plan.bands, plan.rows)
    counts = np.diff(offsets)
    if salt is not None:
        exact[:, 0] ^= salt
        keys ^= salt[:, None]
    active = np.flatnonzero(counts > 0)
    rank = ranks[active].astype(U64)
    exact_records = np.column_stack([exact[active], rank])
    exact_parts = _scatter(exact_records, exact_records[:, 0] % U64(parts), parts)
    # Band-major (every row's band 0, then band 1, ...), and the scatter is stable: each piece is sorted by
    # band, so a partition task can take its records one band at a time.
    band = np.arange(plan.bands, dtype=U64) << U64(RANK_BITS)
    band_records = np.column_stack([keys[active].T.ravel(), (band[:, None] | rank[None, :]).ravel()])
    band_parts = _scatter(band_records, band_records[:, 0] % U64(parts), parts)
    summary = (np.flatnonzero(counts == 0).astype(np.int32), int(truncated.sum()), int(invalid.sum()))
    return summary, *zip(exact_parts, band_parts)


def sketch_ranked(plan: SketchPlan, parts: int, start: int, stop: int, code: np.ndarray | None, offsets: np.ndarray,
                  ranges: int, read, *rest):
    """Task: ``sketch_scatter`` of rows start..stop-1, which finds their ranks itself in the keep order's
    ranges (the last ``ranges`` arguments: keep_rank.sort_range's by-row results, from the object store) and,
    given the rows' source ``code`` (scope source), their salt: the driver sends no per-row rank or salt."""
    args, by_row = rest[: len(rest) - ranges], rest[len(rest) - ranges :]
    ranks = batch_ranks(start, stop, offsets, by_row)
    return sketch_scatter(plan, parts, ranks, None if code is None else source_salt(code), read, *args)


def source_salt(code: np.ndarray) -> np.ndarray:
    """Each row's salt for scope source: a mix of its source code (the local path xors the same into keys)."""
    return fmix64((code.astype(U64) + U64(1)) * U64(0x9E3779B97F4A7C15))


def _scatter(records: np.ndarray, part: np.ndarray, parts: int) -> list[np.ndarray]:
    order = np.argsort(part, kind="stable")
    cuts = np.searchsorted(part[order], np.arange(1, parts, dtype=U64))
    return [np.ascontiguousarray(piece) for piece in np.split(records[order], cuts)]


def exact_partition(*pieces: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Task: (rank, head rank) of every row of this partition whose exact key an earlier-ranked row holds
    (``pieces``: sketch_scatter's (exact records, band records) for this partition)."""
    records = np.concatenate([exact for exact, _ in pieces]) if pieces else np.zeros((0, 3), U64)
    records = records[np.argsort(records[:, 2])]  # keep order: a key's first row is its head
    group = exact_groups(np.ascontiguousarray(records[:, :2]))
    copies = np.flatnonzero(group != np.arange(len(group)))
    ranks = records[:, 2].astype(np.int64)
    return ranks[copies], ranks[group[copies]]


def band_partition(bucket_cap: int, size: int, bands: int, copies: np.ndarray, *pieces: tuple | np.ndarray):
    """Task: the candidate pairs of this partition's buckets, as sorted distinct codes rank_i * size + rank_j
    (rank_i < rank_j), with its oversized-bucket count and largest bucket. Rows in ``copies`` (exact copies
    of an earlier row, sorted ranks) take no part, as in the local path. Each piece is sorted by band
    (sketch_scatter): one band's records are gathered at a time, so the task holds its pieces and one band.
    A piece is sketch_scatter's (exact records, band records) or the band records alone."""
    pieces = [piece[1] if isinstance(piece, tuple) else piece for piece in pieces]
    edges = [np.searchsorted(piece[:, 1] >> U64(RANK_BITS), np.arange(bands + 1, dtype=U64)) for piece in pieces]
    codes = np.zeros(0, dtype=np.int64)
    oversized, largest = 0, 0
    for band in range(bands):
        records = [piece[at[band] : at[band + 1]] for piece, at in zip(pieces, edges)]
        records = np.concatenate(records) if records else np.zeros((0, 2), U64)
        rank = (records[:, 1] & _RANK_MASK).astype(np.int64)
        if len(copies) and len(rank):
            at = np.minimum(np.searchsorted(copies, rank), len(copies) - 1)
            fresh = copies[at] != rank
            records, rank = records[fresh], rank[fresh]
        if len(rank) < 2:
            continue
        order = np.argsort(rank)  # keep order (ranks are distinct within a band): members stay in keep order
        rank = rank[order]
        left, right, over, large = band_pairs(records[order, 0], bucket_cap)
        if len(left):
            # Merging band by band keeps memory at the distinct pairs, not bands x pairs.
            codes = np.union1d(codes, rank[left] * size + rank[right])
            oversized += over
            largest = max(largest, large)
    return codes, oversized, largest


def detail_rows(plan: SketchPlan, rows: np.ndarray | None, read, *args) -> ShingleSets | np.ndarray:
    """Task: ``detail_batch`` of a batch's rows ``rows`` (positions in the batch; None: all of them)."""
    batch = read(*args)
    if rows is not None:
        batch = batch.take(pa.array(rows, pa.int64()))
    return detail_batch(plan, batch)


# --------------------------------------------------------------------------------------------------- driver
