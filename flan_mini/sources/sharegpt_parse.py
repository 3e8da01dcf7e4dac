"""Parsing a ShareGPT file block by block: records cleaned one by one, then a block's pieces decided at once.

Cleaning is Python, one record at a time (sharegpt_clean.py, a pure function of the record). Deciding the
pieces in tokens is the tokenizer's work: one `encode_batch_fast` call per conversation left its Rust threads
idle, so the conversations of a block (about BLOCK_CHARS of cleaned text) are measured together
(`Splitter.pieces_many`), on a second thread while this one reads and cleans the next block (the tokenizer
releases the GIL). Rows are then added in record order, so the table is the same as record by record, and its
record batches are handed on as they are made: memory holds about two blocks and one batch, never the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from .sharegpt_clean import POLICY
from .sharegpt_rows import PIECE_BITS, Rows
from .utf8 import repair_surrogates

TOO_MANY_PIECES = POLICY + "too_many_pieces"

BLOCK_CHARS = 4 << 20  # cleaned text per tokenizer call: enough to keep both cores busy, small beside the table

# A record ready for its rows: (index, id, reject reason or None, cleaned turns, order key, first-exchange key).
Prepared = tuple


def parse_records(adapter, records: Iterable[tuple[int, object]], stats: Counter) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema of the adapter's table and its record batches, in order, made as `records` are read."""
    rows = Rows(adapter.fields)
    return rows.schema, _batches(adapter, rows, records, stats)


def _batches(adapter, rows: Rows, records, stats: Counter) -> Iterator[pa.RecordBatch]:
    splitter = adapter.splitter
    splitter.prepare()  # budget, tokenizer and slack settled here: the worker thread only reads them
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sharegpt-pieces") as pool:
        pending = None
        for block in _blocks(adapter, records, stats):
            future = pool.submit(splitter.pieces_many, [item[3] for item in block if item[2] is None])
            if pending is not None:
                add_rows(rows, pending[0], pending[1].result())
                yield from rows.drain()
            pending = (block, future)
        if pending is not None:
            add_rows(rows, pending[0], pending[1].result())
    yield from rows.drain(final=True)


def _blocks(adapter, records, stats: Counter) -> Iterator[list[Prepared]]:
    block, chars = [], 0
    for index, record in records:
        stats["conversations:read"] += 1
        record, repaired = repair_surrogates(record)  # half emoji ("\ud83d"): U+FFFD, counted
        if repaired:
            stats["conversations:lone_surrogates_repaired"] += 1
        item = adapter._prepare(index, record, stats)
        block.append(item)
        if item[2] is None:
            chars += sum(len(value) for _, value in item[3])
            if chars >= BLOCK_CHARS:
                yield block
                block, chars = [], 0
    if block:
        yield block


def add_rows(rows: Rows, block: list[Prepared], pieces: list[list[tuple[int, int, bool]]]) -> None:
    """Each record's rows, in order: its reject row, or one row per piece (`pieces`: those of the kept ones)."""
    found = iter(pieces)
    for index, record_id, reason, cleaned, order, exchange in block:
        if reason is not None:
            rows.reject(index, record_id, reason)
            continue
        cuts = next(found)
        if len(cuts) >= 1 << PIECE_BITS:
            rows.reject(index, record_id, TOO_MANY_PIECES)
            continue
        for part, (start, end, over) in enumerate(cuts):
            rows.piece(index, record_id, part, 2 * start, cleaned[2 * start : 2 * end], order=order, exchange=exchange,
                       over_budget=over, digest=order if len(cuts) == 1 else None)
