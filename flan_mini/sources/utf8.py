"""Text that is not valid UTF-8 never reaches the output: the records holding it are rejected (or repaired), counted.

Arrow string data must be UTF-8, but not every reader checks: Arrow's JSON parser and Parquet files
written by other tools can hand over invalid bytes, which then fail whoever reads the shards. JSON's
`"\\ud83d"` escapes (half an emoji, common in ShareGPT dumps) give Python strings with lone surrogates,
which have no UTF-8 form at all. Both cost only their own record: `guard` rejects it as
`invalid_utf8:<field>`; `repair_surrogates` (for adapters that prefer to keep the record) replaces
each lone surrogate with U+FFFD and says whether it did.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

REASON = "invalid_utf8"
_SURROGATE = re.compile("[\ud800-\udfff]")


def guard(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with the values of records whose text is not valid UTF-8 nulled and the records rejected.

    The common case costs one validation pass over the text (no copy); only a batch that fails is examined
    row by row.
    """
    from .formats import ORDINAL, REJECT  # (formats.py applies this guard to every reader)

    try:
        batch.validate(full=True)
        return batch
    except pa.ArrowInvalid:
        pass
    arrays, reasons = list(batch.columns), batch.column(REJECT)
    for index, field in enumerate(batch.schema):
        if field.name in (ORDINAL, REJECT):
            continue
        try:
            arrays[index].validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        bad = bad_rows(arrays[index])
        keep = pa.array(np.where(bad, -1, np.arange(len(bad))), pa.int64())
        arrays[index] = arrays[index].take(pc.if_else(pa.array(bad), pa.scalar(None, pa.int64()), keep))
        reasons = pc.if_else(pc.and_(pa.array(bad), reasons.is_null()), f"{REASON}:{field.name}", reasons)
    arrays[batch.schema.get_field_index(REJECT)] = reasons
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def guarded(reader):
    """`reader` (a formats.py reader) with `guard` applied to every batch it yields."""

    def read(*args, **kwargs):
        for batch in reader(*args, **kwargs):
            yield guard(batch)

    read.__doc__, read.__name__ = reader.__doc__, reader.__name__
    return read


def bad_rows(array: pa.Array) -> np.ndarray:
    """Per row: True when its text (at any depth) is not valid UTF-8."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        binary = array.view(pa.large_binary() if pa.types.is_large_string(array.type) else pa.binary())
        return np.fromiter((value is not None and not _decodes(value) for value in binary.to_pylist()), bool, len(array))
    out = np.zeros(len(array), bool)
    for row in range(len(array)):
        try:
            array.slice(row, 1).validate(full=True)
        except pa.ArrowInvalid:
            out[row] = True
    return out


def _decodes(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def encodable(value) -> bool:
    """True when every string in `value` (a str, or lists / dicts of them) has a UTF-8 form."""
    if isinstance(value, str):
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
            return True
        except UnicodeEncodeError:
            return False
    if isinstance(value, list):
        return all(encodable(item) for item in value)
    if isinstance(value, dict):
        return all(encodable(item) for item in value.values())
    return True


def repair_surrogates(value):
    """(value, repaired): lone surrogates in the strings of `value` replaced with U+FFFD."""
    if encodable(value):
        return value, False
    return _repair(value), True


def _repair(value):
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_repair(item) for item in value]
    if isinstance(value, dict):
        return {key: _repair(item) for key, item in value.items()}
    return value
