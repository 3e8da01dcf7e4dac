"""The decontamination stage: benchmarks indexed once, then the mixture streamed through it in batches."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..dedup.texts import TextSpec, compared_text
from ..textnorm import TextNorm
from .benchmarks import Benchmark, load_benchmark
from .config import DecontamConfig
from .ngrams import NgramIndex

SPAN_CHARS = 400  # longest span kept per match (longer ones keep both ends)
COMPARE = {"prompt": "prompt", "response": "response", "both": "conversation"}

# One row per (training row, benchmark item) match, in the order the rows were scanned.
MATCH_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # the training row
        pa.field("recipe_source", pa.string()),
        pa.field("benchmark", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("matched_ngrams", pa.int64(), nullable=False),  # distinct item n-grams found in the row
        pa.field("item_ngrams", pa.int64(), nullable=False),  # distinct n-grams of the item
        pa.field("share", pa.float64(), nullable=False),
        pa.field("span", pa.string(), nullable=False),  # the longest overlapping run, from the row's text
        pa.field("span_tokens", pa.int64(), nullable=False),
    ]
)


def text_spec(config: DecontamConfig, columns: tuple[str, ...] = ()) -> TextSpec:
    return TextSpec(compare=COMPARE[config.compare], columns=tuple(columns))


@dataclass
class ScanResult:
    """matches: MATCH_SCHEMA plus `_row` (position in the scanned stream). checked: rows scanned per source."""

    matches: pa.Table
    checked: Counter
    rows: int
    seconds: float

    def matched_ids(self) -> pa.Array:
        return pc.unique(self.matches.column("id").combine_chunks()) if self.matches.num_rows else pa.array([], pa.string())


@dataclass
class Decontaminator:
    """The loaded benchmarks and their index, ready to scan any number of batches."""

    config: DecontamConfig
    benchmarks: list[Benchmark]
    index: NgramIndex
    item_benchmark: np.ndarray  # benchmark position of each (global) item
    item_ids: np.ndarray  # object array of item ids
    seconds: dict = field(default_factory=dict)

    @classmethod
    def load(cls, config: DecontamConfig, base_dir: Path, benchmarks: list[Benchmark] | None = None) -> Decontaminator:
        clock = time.perf_counter()
        if benchmarks is None:
            benchmarks = [load_benchmark(b, Path(base_dir)) for b in config.benchmarks]
        loaded = time.perf_counter()
        first = np.cumsum([0] + [b.items for b in benchmarks])
        segments = [s for b in benchmarks for s in b.segments]
        segment_item = np.concatenate([b.segment_item + first[i] for i, b in enumerate(benchmarks)])
        index = NgramIndex(segments, segment_item, int(first[-1]), n=config.ngram, min_tokens=config.min_tokens,
                           norm=config.normalize.text_norm(), share=config.share)
        item_benchmark = np.repeat(np.arange(len(benchmarks)), [b.items for b in benchmarks])
        item_ids = np.array([i for b in benchmarks for i in b.item_ids], dtype=object)
        seconds = {"read": loaded - clock, "index": time.perf_counter() - loaded}
        return cls(config, benchmarks, index, item_benchmark, item_ids, seconds)

    # -------------------------------------------------------------------------------------------- scanning

    def view(self) -> ScanIndex:
        """What a scan task needs (picklable): the index and the names its matches report."""
        names = tuple(b.name for b in self.benchmarks)
        return ScanIndex(self.index, self.config.normalize.text_norm(), names, self.item_benchmark, self.item_ids)

    def scan(self, batches: Iterable[pa.Table], spec: TextSpec, *, workers: int | None = None,
             executor=None) -> ScanResult:
        """Scan a stream of tables (each with the compared columns, optionally `id` and `recipe_source`) in order.

        Batches are handed to `workers` threads (Arrow and numpy release the GIL) with at most two per worker
        in flight, so memory stays bounded; results are collected in input order, so they do not depend on
        the number of workers. With an `executor` that is not local (Ray), the index is shipped to the
        cluster once (`executor.share`), each batch is a task (its compared columns, `id` and
        `recipe_source` as Arrow IPC bytes), and results are gathered in submission order: the same matches.
        """
        clock = time.perf_counter()
        workers = workers or self.config.workers
        parts, checked, rows = [], Counter(), 0

        def jobs() -> Iterator[tuple[pa.Table, int]]:
            nonlocal rows
            for batch in batches:
                if isinstance(batch, pa.RecordBatch):
                    batch = pa.Table.from_batches([batch])
                spec.check(batch.schema, "decontaminate")
                yield batch, rows
                rows += batch.num_rows

        if executor is None or executor.name == "local":
            view = self.view()
            results = _ordered_map(lambda job: scan_batch(view, job[0], job[1], spec), jobs(), workers)
        else:
            shared = executor.share(self.view())
            needed = [*spec.input_columns(), "id", "recipe_source"]
            results = executor.map(scan_batch, ((shared, _to_ipc(batch, needed), first, spec)
                                                for batch, first in jobs()))
        for found, counts in results:
            if found.num_rows:
                parts.append(found)
            checked.update(counts)
        matches = pa.concat_tables(parts) if parts else _empty_matches()
        return ScanResult(matches, checked, rows, time.perf_counter() - clock)

    def scan_table(self, table: pa.Table, spec: TextSpec | None = None, *, workers: int | None = None,
                   executor=None) -> ScanResult:
        size = self.config.batch_rows
        slices = (table.slice(start, size) for start in range(0, table.num_rows, size))
        return self.scan(slices, spec or text_spec(self.config), workers=workers, executor=executor)


@dataclass(frozen=True)
class ScanIndex:
    """The benchmark index as scan tasks receive it (once per cluster through `executor.share`)."""

    index: NgramIndex
    norm: TextNorm
    benchmark_names: tuple[str, ...]
    item_benchmark: np.ndarray  # benchmark position of each (global) item
    item_ids: np.ndarray  # object array of item ids


def scan_batch(view: ScanIndex, batch: pa.Table | bytes, first_row: int, spec: TextSpec) -> tuple[pa.Table, Counter]:
    """Task: the matches of one batch (a table, or Arrow IPC bytes of one) whose first row is `first_row` of
    the stream, and the rows it checked per source."""
    if isinstance(batch, bytes):
        batch = pa.ipc.open_stream(batch).read_all()
    texts = compared_text(batch, spec)
    found = view.index.scan(texts)
    sources = batch.column("recipe_source") if "recipe_source" in batch.column_names else None
    checked = Counter(_value_counts(sources, batch.num_rows))
    if not len(found):
        return _empty_matches(), checked
    rows = pa.array(found.row)
    ids = _ids(batch, first_row).take(rows)
    columns = {
        "id": ids,
        "recipe_source": sources.take(rows) if sources is not None else pa.nulls(len(found), pa.string()),
        "benchmark": pa.array([view.benchmark_names[b] for b in view.item_benchmark[found.item]], pa.string()),
        "item_id": pa.array(view.item_ids[found.item].tolist(), pa.string()),
        "matched_ngrams": pa.array(found.grams, pa.int64()),
        "item_ngrams": pa.array(found.item_grams, pa.int64()),
        "share": pa.array(found.grams / np.maximum(found.item_grams, 1), pa.float64()),
        "span": pa.array(found.spans(texts, view.norm, SPAN_CHARS), pa.string()),
        "span_tokens": pa.array(found.span_end - found.span_start, pa.int64()),
    }
    table = pa.Table.from_pydict({k: _plain(v) for k, v in columns.items()}, schema=MATCH_SCHEMA)
    return table.append_column("_row", pa.array(found.row + first_row, pa.int64())), checked


def _to_ipc(batch: pa.Table, columns: list[str]) -> bytes:
    # Pickling a slice of a table ships its parent's whole buffers; the IPC writer ships only the slice.
    batch = batch.select([name for name in dict.fromkeys(columns) if name in batch.column_names])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(batch)
    return sink.getvalue().to_pybytes()


def _ordered_map(fn, jobs: Iterable, workers: int) -> Iterator:
    if workers <= 1:
        for job in jobs:
            yield fn(job)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(fn, job))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _plain(values):
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _ids(batch: pa.Table, first_row: int) -> pa.Array:
    if "id" in batch.column_names:
        return _plain(pc.cast(batch.column("id"), pa.string()))
    return pa.array([f"row-{first_row + i}" for i in range(batch.num_rows)], pa.string())


def _value_counts(values, n: int) -> dict:
    if values is None:
        return {"all": n} if n else {}
    counts = pc.value_counts(pc.fill_null(_plain(values), "")).to_pylist()
    return {item["values"]: item["counts"] for item in counts}


def _empty_matches() -> pa.Table:
    return MATCH_SCHEMA.empty_table().append_column("_row", pa.array([], pa.int64()))


# ------------------------------------------------------------------------------------------------ build


@dataclass
class BuildDecontam:
    """The stage inside `build`: what it scanned and matched, for the manifest, card and matches file."""

    engine: Decontaminator
    result: ScanResult
    removed: bool  # action remove: matched candidates were taken out before the exact takes

    @property
    def config(self) -> DecontamConfig:
        return self.engine.config

    def finish(self, folder: Path, written_ids: pa.Array | pa.ChunkedArray) -> dict:
        """Write the matches file into the build folder (flagging the matched rows that were written) and
        return the manifest's `decontamination` block."""
        from .report import summarize, with_flags, write_matches

        flagged = with_flags(self.result.matches, removed=self.removed, written_ids=_plain(written_ids))
        entry = summarize(self.engine, self.result, flagged)
        entry["matches_file"] = write_matches(flagged, folder)
        return entry

    @staticmethod
    def summary_line(entry: dict) -> str:
        found = ", ".join(f"{b['name']} {b['items_matched']:,} item(s) in {sum(b['rows_matched'].values()):,} row(s)"
                          for b in entry["benchmarks"])
        verb = "removed" if entry["parameters"]["action"] == "remove" else "reported"
        return (f"flan-mini: decontamination: {entry['rows_checked']:,} candidates checked; {found}; "
                f"{entry['rows_matched']:,} row(s) {verb}")
