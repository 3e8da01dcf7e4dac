"""Repeated ShareGPT conversations across a source's files, judged by content: file names and order play no part.

Parsing (sharegpt.py) cleans and splits every record of every file and marks each surviving
conversation's rows with two hidden columns: `_order`, the xxh3-64 of the whole cleaned
conversation, and `_exchange`, the hash of its whitespace-insensitive first question and answer
(null when `dedup_first_exchange` is off). Once every file of the source is parsed,
`repeated_records` walks the surviving conversations in content order (`_order`, then id) and
keeps one unless its id or its first exchange belongs to a conversation kept before it:

    a: id "x", "q"/"a" (order 9)   b: id "x", "q2"/"a2" (order 4)   c: id "y", "q"/" a " (order 7)
    -> b kept (lowest order); c kept (new id, new exchange); a: duplicate_id (id "x" is b's)

Conversations dropped by cleaning take no part, so a broken copy never shadows a good one.
`drop_repeats` then turns each repeat's rows into one reject row (its first piece's, at the
record's ordinal) and removes the hidden columns. Two copies identical in content and id are
told apart by (file position, record) only, where files are ordered by content fingerprint (then path,
for byte-identical copies): the rows written are the same either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .formats import REJECT
from .sharegpt_clean import POLICY

DUPLICATE_ID = POLICY + "duplicate_id"
DUPLICATE_EXCHANGE = POLICY + "duplicate_exchange"
ORDER, EXCHANGE, OVER_BUDGET = "_order", "_exchange", "_over_budget"  # hidden: dropped by `drop_repeats`
HIDDEN = (ORDER, EXCHANGE, OVER_BUDGET)
_EMPTIED = ("part", "first_turn", "content_hash", "conversations")  # null on a reject row


def repeated_records(tables: list[pa.Table]) -> list[dict[int, str]]:
    """Per table: record index -> `policy:duplicate_id` / `policy:duplicate_exchange` for the repeats."""
    candidates = []
    for position, table in enumerate(tables):
        first = pc.fill_null(pc.equal(table.column("part"), 0), False)  # one row per surviving conversation
        heads = table.select(["record", "id", ORDER, EXCHANGE]).filter(first)  # select first: no conversation copied
        for record, record_id, order, exchange in zip(*(heads.column(n).to_pylist() for n in heads.column_names)):
            candidates.append((order, record_id is None, record_id or "", position, record, exchange))
    candidates.sort()
    repeats: list[dict[int, str]] = [{} for _ in tables]
    kept_ids: set[str] = set()
    kept_exchanges: set[int] = set()
    for _, no_id, record_id, position, record, exchange in candidates:
        if not no_id and record_id in kept_ids:
            repeats[position][record] = DUPLICATE_ID
        elif exchange is not None and exchange in kept_exchanges:
            repeats[position][record] = DUPLICATE_EXCHANGE
        else:
            if not no_id:
                kept_ids.add(record_id)
            if exchange is not None:
                kept_exchanges.add(exchange)
    return repeats


def drop_repeats(batches: Iterable[pa.RecordBatch], repeats: dict[int, str], stats: Counter) -> Iterator[pa.RecordBatch]:
    """The batches with each repeat as one reject row and no hidden columns, made as `batches` are read; counts
    what is kept into `stats`.

    Zero-copy for the conversations (the V3 file's are 600 MiB): a repeat's later pieces are cut
    out by slicing, its first piece's conversation is nulled by a new validity bitmap only.
    """
    wanted = np.fromiter(repeats, np.int64, len(repeats))
    for batch in batches:
        repeat = np.isin(batch.column("record").to_numpy(), wanted) if repeats else np.zeros(batch.num_rows, bool)
        later_piece = repeat & (batch.column("part").fill_null(0).to_numpy() > 0)
        keep_starts = np.flatnonzero(~later_piece & np.r_[True, later_piece[:-1]])  # runs of rows to keep
        keep_ends = np.flatnonzero(~later_piece & np.r_[later_piece[1:], True]) + 1
        for start, end in zip(keep_starts.tolist(), keep_ends.tolist()):
            piece = batch.slice(start, end - start)
            if repeat[start:end].any():
                piece = _as_rejects(piece, repeat[start:end], repeats)
            _count(piece, stats)
            yield piece.drop_columns(list(HIDDEN))


def _as_rejects(batch: pa.RecordBatch, repeat: np.ndarray, repeats: dict[int, str]) -> pa.RecordBatch:
    mask = pa.array(repeat)
    for name in _EMPTIED:
        column = batch.column(name)
        if pa.types.is_list(column.type):  # a new validity bitmap over the same offsets and values
            nulls = pa.array(repeat | np.asarray(column.is_null()))
            offsets = pa.array(column.offsets.to_numpy())  # a copy starting at 0: a sliced one cannot take a mask
            emptied = pa.ListArray.from_arrays(offsets, column.values, type=column.type, mask=nulls)
        else:
            emptied = pc.if_else(mask, pa.scalar(None, column.type), column)
        batch = batch.set_column(batch.schema.get_field_index(name), name, emptied)
    reasons = np.array(batch.column(REJECT).to_pylist(), dtype=object)
    reasons[repeat] = [repeats[r] for r in batch.column("record").to_numpy()[repeat]]
    return batch.set_column(batch.schema.get_field_index(REJECT), REJECT, pa.array(reasons.tolist(), pa.string()))


def _count(batch: pa.RecordBatch, stats: Counter) -> None:
    part = batch.column("part")
    counts = {
        "conversations:kept": pc.sum(pc.equal(part, 0)).as_py(),
        "conversations:split": pc.sum(pc.equal(part, 1)).as_py(),
        "pieces": len(part) - part.null_count,
        "pieces:over_budget": pc.sum(pc.and_(batch.column(OVER_BUDGET), pc.is_valid(part))).as_py(),
    }
    stats.update({name: count for name, count in counts.items() if count})  # Counter.update adds
