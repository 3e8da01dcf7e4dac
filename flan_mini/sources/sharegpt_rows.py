"""The ShareGPT adapter's table: one Arrow row per kept piece or dropped record, built column by column.

Rows arrive in file order. A piece's `_ordinal` is its record's index shifted left by
`PIECE_BITS`, plus its piece number: record 5's third piece is 5 << 16 | 2 = 327682. A dropped
record is one row at its record's ordinal (piece 0) with `_reject` set and no conversation.
Pieces also carry the hidden columns the cross-file de-duplication reads (sharegpt_dedup.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

from ..shards import TURN
from .formats import ORDINAL, REJECT
from .sharegpt_clean import HUMAN
from .sharegpt_dedup import EXCHANGE, ORDER, OVER_BUDGET

PIECE_BITS = 16  # ordinal = record << 16 | piece; a conversation has fewer than 65,536 pieces
FLUSH_ROWS, FLUSH_CHARS = 16_384, 64 << 20  # a record batch every 16K rows or 64M characters


def to_int64(digest: int) -> int:
    return digest - (1 << 64) if digest >= 1 << 63 else digest


def piece_hash(turns: list[tuple[str, str]]) -> int:
    """xxh3-64 of a piece's turns (roles and values), as a signed 64-bit integer."""
    digest = xxhash.xxh3_64()
    for role, value in turns:
        digest.update(b"H" if role == HUMAN else b"G")
        digest.update(value.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return to_int64(digest.intdigest())


class Rows:
    """Accumulates output rows column by column and turns them into record batches every few MB."""

    def __init__(self, fields: dict[str, pa.DataType], extra: list[str] = ()):
        self.fields = fields
        # Caller columns (e.g. the chat adapter's kept ones): each row takes its value from `carry()`'s last call.
        self.extra: dict[str, list] = {name: [] for name in extra}
        self._carried: dict = {}
        self.schema = pa.schema([*(pa.field(n, t) for n, t in fields.items()), (ORDINAL, pa.int64()), (REJECT, pa.string()),
                                 (ORDER, pa.int64()), (EXCHANGE, pa.int64()), (OVER_BUDGET, pa.bool_())])
        self.batches: list[pa.RecordBatch] = []
        self._reset()

    def _reset(self) -> None:
        self.ids, self.records, self.parts, self.firsts, self.hashes = [], [], [], [], []
        self.offsets, self.roles, self.values, self.valid, self.ordinals, self.rejects = [0], [], [], [], [], []
        self.orders, self.exchanges, self.over = [], [], []
        self.chars = 0

    def carry(self, values: dict) -> None:
        """Values of the extra columns for the rows added from now on (a missing name is null)."""
        self._carried = values

    def reject(self, index: int, record_id: str | None, reason: str) -> None:
        self._row(index, record_id, None, None, None, index << PIECE_BITS, reason)
        self.orders.append(None)
        self.exchanges.append(None)
        self.over.append(False)
        self.offsets.append(len(self.values))
        self.valid.append(False)
        if len(self.ids) >= FLUSH_ROWS:
            self._flush()

    def piece(self, index: int, record_id: str | None, part: int, first_turn: int, turns: list[tuple[str, str]], *,
              order: int | None = None, exchange: int | None = None, over_budget: bool = False,
              digest: int | None = None) -> None:
        """One piece; `order`/`exchange` are its conversation's de-duplication keys, `digest` its hash if known."""
        digest = piece_hash(turns) if digest is None else digest
        self._row(index, record_id, part, first_turn, digest, (index << PIECE_BITS) | part, None)
        self.orders.append(order)
        self.exchanges.append(exchange)
        self.over.append(over_budget)
        for role, value in turns:
            self.roles.append(role)
            self.values.append(value)
            self.chars += len(value)
        self.offsets.append(len(self.values))
        self.valid.append(True)
        if len(self.ids) >= FLUSH_ROWS or self.chars >= FLUSH_CHARS:
            self._flush()

    def _row(self, index, record_id, part, first_turn, digest, ordinal, reason) -> None:
        self.ids.append(record_id)
        self.records.append(index)
        self.parts.append(part)
        self.firsts.append(first_turn)
        self.hashes.append(digest)
        self.ordinals.append(ordinal)
        self.rejects.append(reason)
        for name, values in self.extra.items():
            values.append(self._carried.get(name))

    def _flush(self) -> None:
        if not self.ids:
            return
        turns = pa.StructArray.from_arrays([_strings(self.roles), _strings(self.values)], fields=list(TURN))
        conversations = pa.ListArray.from_arrays(
            pa.array(self.offsets, pa.int32()), turns, type=pa.list_(TURN), mask=pa.array(np.logical_not(self.valid))
        )
        columns = [
            _strings(self.ids),
            pa.array(self.records, pa.int64()),
            pa.array(self.parts, pa.int32()),
            pa.array(self.firsts, pa.int32()),
            pa.array(self.hashes, pa.int64()),
            conversations,
            pa.array(self.ordinals, pa.int64()),
            pa.array(self.rejects, pa.string()),
            pa.array(self.orders, pa.int64()),
            pa.array(self.exchanges, pa.int64()),
            pa.array(self.over, pa.bool_()),
        ]
        self.batches.append(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        self._reset()

    def table(self) -> pa.Table:
        self._flush()
        return pa.Table.from_batches(self.batches, schema=self.schema)

    def drain(self, final: bool = False) -> list[pa.RecordBatch]:
        """The record batches made so far (all rows with `final`), handed over: the caller streams them on."""
        if final:
            self._flush()
        batches, self.batches = self.batches, []
        return batches


def _strings(values: list) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, UnicodeEncodeError):
        # Lone surrogates (JSON "\ud83d" escapes of half an emoji) have no UTF-8 form: replace them.
        return pa.array([v.encode("utf-8", "replace").decode("utf-8") if isinstance(v, str) else v for v in values], pa.string())
