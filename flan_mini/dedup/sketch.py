"""Batches of rows to sketches (band keys, exact key) and, for candidate rows only, to what verifies a pair
(shingle sets or signatures); running batches on N processes."""

from __future__ import annotations

import multiprocessing
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..textnorm import TextNorm, repair_utf8
from .hashing import U64
from .lsh import band_keys
from .minhash import permutations, signatures
from .pairs import block_similarity
from .shingle import shingle_hashes, text_token_values
from .texts import TextSpec, compared_text
from .verify import ShingleSets, shingle_sets


@dataclass(frozen=True)
class SketchPlan:
    """Everything a worker needs to sketch a batch (small and picklable)."""

    spec: TextSpec
    norm: TextNorm
    shingle_kind: str
    shingle_size: int
    num_perm: int
    seed: int
    bands: int
    rows: int
    max_chars: int | None
    mode: str = "exact"  # exact: candidate rows give shingle sets; datasketch: signatures


@dataclass
class Sketches:
    """Per-row results for ``n`` rows; row i of every array belongs to input row i. No signature is kept: the
    band keys are all LSH needs, and only rows in candidate pairs are sketched again (pairs.py)."""

    band_keys: np.ndarray  # (n, bands) uint64
    exact_keys: np.ndarray  # (n, 2) uint64
    shingles: np.ndarray  # (n,) int64: shingle count; 0 = nothing to compare (empty after normalising)
    truncated: np.ndarray  # (n,) bool: compared text cut to max_chars
    invalid_utf8: np.ndarray  # (n,) bool: compared text had bytes that are not UTF-8 (replaced by U+FFFD)

    FIELDS = ("band_keys", "exact_keys", "shingles", "truncated", "invalid_utf8")

    @classmethod
    def allocate(cls, n: int, plan: SketchPlan) -> Sketches:
        return cls(
            np.empty((n, plan.bands), U64),
            np.empty((n, 2), U64),
            np.empty(n, np.int64),
            np.empty(n, bool),
            np.empty(n, bool),
        )

    def put(self, start: int, part: Sketches) -> None:
        stop = start + len(part.shingles)
        for name in self.FIELDS:
            getattr(self, name)[start:stop] = getattr(part, name)


def _shingle_batch(plan: SketchPlan, batch: pa.Table, wide: bool):
    """Compared text -> normalised tokens -> shingle hashes (offsets per row), exact keys, truncated, invalid."""
    text, invalid = repair_utf8(compared_text(batch, plan.spec))
    truncated = np.zeros(len(text), dtype=bool)
    if plan.max_chars is not None and len(text) and pc.max(pc.binary_length(text)).as_py() > plan.max_chars:
        lengths = pc.fill_null(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False)
        truncated = lengths > plan.max_chars
        if truncated.any():
            text = pc.utf8_slice_codeunits(text, 0, plan.max_chars)
    values, offsets = text_token_values(text, plan.norm, plan.shingle_kind)
    shingles, shingle_offsets, exact = shingle_hashes(values, offsets, plan.shingle_size, wide=wide)
    return shingles, shingle_offsets, exact, truncated, invalid


def sketch_batch(plan: SketchPlan, batch: pa.Table) -> Sketches:
    """Compared text -> normalised tokens -> shingles -> MinHash signature -> band keys, and the exact key.

    Every output row depends only on that row's text and the plan, never on the batch it came in.
    """
    shingles, shingle_offsets, exact, truncated, invalid = _shingle_batch(plan, batch, wide=False)
    sig = signatures(shingles, shingle_offsets, *permutations(plan.num_perm, plan.seed))
    return Sketches(band_keys(sig, plan.bands, plan.rows), exact, np.diff(shingle_offsets), truncated, invalid)


def detail_batch(plan: SketchPlan, batch: pa.Table) -> ShingleSets | np.ndarray:
    """What decides a candidate pair, per row: its shingle set (exact mode) or its MinHash signature
    (datasketch mode, bit-identical to pass one's and to datasketch's)."""
    wide = plan.mode == "exact"
    shingles, shingle_offsets, *_ = _shingle_batch(plan, batch, wide=wide)
    if wide:
        return shingle_sets(shingles, shingle_offsets)
    return signatures(shingles, shingle_offsets, *permutations(plan.num_perm, plan.seed))


_TASKS = {"sketch": sketch_batch, "detail": detail_batch, "pairs": block_similarity}


# Tables the workers were forked with, by token: a batch of one of them travels as (token, start, stop), with
# no copy at all; any other table (or a spawned worker) gets its batches as IPC bytes.
_INHERITED: dict[int, pa.Table] = {}
_TOKENS = iter(range(1, 1 << 62))


def _run_ipc(task: str, plan: SketchPlan, payload):
    """Worker entry point: the batch arrives as an Arrow IPC stream (compact even for slices of big tables), or
    as (token, start, stop) into a table inherited at fork."""
    if isinstance(payload, tuple):
        token, start, stop = payload
        return _TASKS[task](plan, _INHERITED[token].slice(start, stop - start))
    return _TASKS[task](plan, pa.ipc.open_stream(payload).read_all())


def _run_rows(task: str, plan: SketchPlan, payload, args: tuple):
    """Worker entry point for a task on chosen rows: (token, rows) of a table inherited at fork, read here (no
    text through the pipe), or the rows themselves as an Arrow IPC stream."""
    if isinstance(payload, tuple):
        token, rows = payload
        return _TASKS[task](plan, _take_ascending(_INHERITED[token], rows), *args)
    return _TASKS[task](plan, pa.ipc.open_stream(payload).read_all(), *args)


def _to_ipc(table: pa.Table) -> bytes:
    # Pickling a sliced Arrow array ships its whole parent buffers; the IPC writer ships only the slice.
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _context():
    """fork on Linux: workers start in milliseconds and do not re-import the caller's __main__ (spawn and
    forkserver do, which breaks scripts without an ``if __name__ == "__main__"`` guard). Workers only run
    numpy, pyarrow (whose thread pools re-initialise after fork) and xxhash, never a lock another parent
    thread could hold. Elsewhere (macOS, Windows) spawn, the platform default."""
    if sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def batch_bounds(byte_sizes: np.ndarray, max_rows: int, max_bytes: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) row ranges of at most ``max_rows`` rows and about ``max_bytes`` of text each
    (a single larger row gets a batch of its own)."""
    bounds = []
    n = len(byte_sizes)
    start = 0
    cumulative = np.concatenate([[0], np.cumsum(byte_sizes, dtype=np.int64)])
    while start < n:
        by_bytes = int(np.searchsorted(cumulative, cumulative[start] + max_bytes, side="right")) - 1
        stop = min(n, start + max_rows, max(by_bytes, start + 1))
        bounds.append((start, stop))
        start = stop
    return bounds


class Workers:
    """Processes for batches, shared by both passes of one dedup (forked once, on first need; a context manager).

    ``map(task, table, plan, bounds)`` yields (start, result) of ``task`` on every batch at ``bounds``, in order;
    ``map_rows`` the same for jobs of chosen rows (pairs.py). Workers forked with ``table`` (Linux) read its
    batches themselves; other tables' batches go as IPC bytes. At most two calls per worker are in flight
    (bounded memory); with one worker, or one batch, they run in this process.
    """

    def __init__(self, count: int):
        self.count = max(1, int(count))
        self.pool: ProcessPoolExecutor | None = None
        self.token: int | None = None  # of the table the workers were forked with
        self.inherited: pa.Table | None = None
        self.source: pa.Table | None = None  # the caller's table that ``inherited`` was selected from

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        _INHERITED.pop(self.token, None)
        self.inherited = self.source = None

    def map(self, task: str, table: pa.Table, plan: SketchPlan, bounds: list[tuple[int, int]]):
        columns = table.select(plan.spec.input_columns())
        if self.count <= 1 or len(bounds) <= 1:
            for start, stop in bounds:
                yield start, _TASKS[task](plan, columns.slice(start, stop - start))
            return
        self._start(table, columns)
        calls = ((start, (_run_ipc, task, plan, self._payload(table, columns, start, stop))) for start, stop in bounds)
        yield from self._bounded(calls)

    def map_rows(self, task: str, table: pa.Table, plan: SketchPlan, jobs: list[tuple]):
        """Yield ``task(plan, rows of table, *args)`` for every job (rows ascending, *args), in order. Workers
        forked with ``table`` read the rows themselves; others get them as IPC bytes; one worker or one job
        runs here."""
        columns = table.select(plan.spec.input_columns())
        if self.count <= 1 or len(jobs) <= 1:
            for rows, *args in jobs:
                yield _TASKS[task](plan, _take_ascending(columns, rows), *args)
            return
        self._start(table, columns)

        def submits():
            for rows, *args in jobs:
                if table is self.source:
                    payload = (self.token, rows)
                else:
                    payload = _to_ipc(_take_ascending(columns, rows))
                yield None, (_run_rows, task, plan, payload, tuple(args))

        for _, result in self._bounded(submits()):
            yield result

    def _start(self, table: pa.Table, columns: pa.Table) -> None:
        if self.pool is None:
            context = _context()
            if context.get_start_method() == "fork":
                # A fork-context pool forks every worker at its first submit: they inherit this table.
                self.token, self.inherited, self.source = next(_TOKENS), columns, table
                _INHERITED[self.token] = columns
            self.pool = ProcessPoolExecutor(max_workers=self.count, mp_context=context)

    def _payload(self, table: pa.Table, columns: pa.Table, start: int, stop: int):
        if table is self.source:
            return (self.token, start, stop)
        return _to_ipc(columns.slice(start, stop - start))

    def _bounded(self, submits):
        """(key, call) -> (key, result) in order, with at most two calls per worker in flight."""
        pending: deque = deque()
        for key, call in submits:
            pending.append((key, self.pool.submit(*call)))
            while len(pending) >= 2 * self.count:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()


def sketch_table(
    table: pa.Table,
    plan: SketchPlan,
    bounds: list[tuple[int, int]],
    workers: int | Workers,
) -> Sketches:
    """Sketch every row of ``table`` (batches at ``bounds``) on ``workers`` processes; the same for any count."""
    out = Sketches.allocate(table.num_rows, plan)
    with _workers(workers) as pool:
        for start, part in pool.map("sketch", table, plan, bounds):
            out.put(start, part)
    return out


def _take_ascending(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """``table.take(rows)`` for ascending ``rows``, record batch by record batch: a take on a chunked nested
    column (conversations) joins every chunk first, which costs 5x more for a few percent of the rows."""
    batches = table.to_batches()
    edges = np.zeros(len(batches) + 1, dtype=np.int64)
    np.cumsum([batch.num_rows for batch in batches], out=edges[1:])
    cut = np.searchsorted(rows, edges)  # rows[cut[i]:cut[i+1]] fall in batch i
    # Only the batches that hold a wanted row are visited: a table of thousands of chunks costs one searchsorted.
    pieces = [
        batches[i].take(pa.array(rows[cut[i] : cut[i + 1]] - edges[i], type=pa.int64()))
        for i in np.flatnonzero(cut[1:] > cut[:-1])
    ]
    return pa.Table.from_batches(pieces, schema=table.schema)


class _Borrowed:
    """A caller's Workers used inside a ``with``: leaves the pool running for the caller's next pass."""

    def __init__(self, workers: Workers):
        self.workers = workers

    def __enter__(self) -> Workers:
        return self.workers

    def __exit__(self, *exc) -> None:
        pass


def _workers(workers: int | Workers):
    return _Borrowed(workers) if isinstance(workers, Workers) else Workers(workers)
