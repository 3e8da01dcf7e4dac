"""Readers for the file formats sources are published in: Parquet, JSON Lines (optionally gzipped), JSON arrays.

Every reader yields Arrow record batches holding the requested fields (cast to the declared
types) plus two bookkeeping columns:
- `_ordinal` (int64): the record's position in its file (row for Parquet and JSON arrays, line
  index for JSON Lines), so a row can be found again and named in error reports;
- `_reject` (string): why the reader could not use the record (`invalid_json`, `invalid_utf8[:<field>]`,
  `wrong_type:<field>`, `not_an_object`), or null.
Readers never drop a record: rejected records come through with their reason so they are counted. Every
batch is checked to be valid UTF-8 (utf8.py) before it leaves here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from ..errors import SourceError
from . import utf8

ORDINAL = "_ordinal"
REJECT = "_reject"
# Reasons that concern the whole record (it could not be parsed), whichever fields are read.
RECORD_REJECTS = pa.array(["invalid_json", "invalid_utf8", "not_an_object"], pa.string())
BATCH_ROWS = 65_536
JSONL_CHUNK_BYTES = 16 << 20

# column name in the file -> field name in the batch (None: the field is not in this file)
ColumnMap = Mapping[str, "str | None"]
Fields = Mapping[str, pa.DataType]


def detect_format(path: Path) -> str:
    """'parquet', 'jsonl' or 'json' (a single JSON array), from the name and, for .json, the first byte."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")):
        return "jsonl"
    if name.endswith((".json", ".json.gz")):
        # Hub files named .json are sometimes JSON Lines; the first non-blank byte tells.
        with pa.input_stream(str(path)) as stream:
            head = stream.read(4096).lstrip()
        return "json" if head.startswith(b"[") else "jsonl"
    raise SourceError(f"{path}: unsupported file type; expected .parquet, .jsonl[.gz] or .json[.gz]")


def _empty_batch(fields: Fields) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {**{name: [] for name in fields}, ORDINAL: [], REJECT: []},
        schema=_batch_schema(fields),
    )


def _batch_schema(fields: Fields) -> pa.Schema:
    return pa.schema([*(pa.field(n, t) for n, t in fields.items()), (ORDINAL, pa.int64()), (REJECT, pa.string())])


# ---------------------------------------------------------------------------------------------- Parquet


def parquet_rows(files) -> int | None:
    """Total rows of `files` (InputFiles) from Parquet metadata; None if any is not Parquet (unknown without reading)."""
    total = 0
    for file in files:
        if not file.path.name.lower().endswith(".parquet"):
            return None
        try:
            total += pq.ParquetFile(file.path).metadata.num_rows
        except (pa.ArrowException, OSError):
            return None
    return total


def parquet_columns(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None


def _cast_column(path: Path, column: str, array: pa.Array, target: pa.DataType) -> pa.Array:
    if array.type.equals(target):
        return array
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    try:
        if pa.types.is_string(target) and not (
            pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
            or pa.types.is_string_view(array.type) or pa.types.is_null(array.type)
        ):
            raise pa.ArrowInvalid("not a string column")
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise SourceError(f"{path}: column {column!r} has type {array.type}; expected {target}") from None


def read_parquet(
    path: Path, columns: ColumnMap, fields: Fields, wanted: np.ndarray | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream `fields` from a Parquet file; `columns` maps each field to its column name in this file.

    With `wanted` (sorted ordinals), only row groups holding wanted rows are read, and only the
    wanted rows are cast. With no column to read, row counts come from the file's metadata.
    """
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
    present = list(dict.fromkeys(col for name, col in columns.items() if col is not None and name in fields))

    def assemble(data, first: int, n: int, ordinals: np.ndarray | None = None):
        arrays = []
        for name, target in fields.items():
            col = columns.get(name)
            if col is None:
                arrays.append(pa.nulls(n, target))
            else:
                arrays.append(_cast_column(path, col, _combine(data.column(col)), target))
        if ordinals is None:
            ordinals = np.arange(first, first + n, dtype=np.int64)
        return pa.RecordBatch.from_arrays(
            [*arrays, pa.array(ordinals, pa.int64()), pa.nulls(n, pa.string())], schema=_batch_schema(fields)
        )

    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    if wanted is None and not present:
        for first in range(0, int(starts[-1]), BATCH_ROWS):
            yield assemble(None, first, min(BATCH_ROWS, int(starts[-1]) - first))
        return
    if wanted is None:
        first = 0
        batches = parquet.iter_batches(batch_size=BATCH_ROWS, columns=present)
        while (batch := _or_fail(lambda: next(batches, None), path, f"after row {first:,}")) is not None:
            yield assemble(batch, first, batch.num_rows)
            first += batch.num_rows
        return
    for group in range(parquet.num_row_groups):
        lo, hi = np.searchsorted(wanted, [starts[group], starts[group + 1]])
        if lo == hi:
            continue
        local = pa.array(wanted[lo:hi] - starts[group])
        table = None
        if present:
            table = _or_fail(lambda: parquet.read_row_group(group, columns=present), path, f"in row group {group}").take(local)
        yield assemble(table, 0, hi - lo, wanted[lo:hi])


def _or_fail(read, path: Path, where: str):
    """`read()`, with a damaged file's error as one SourceError line naming the file."""
    try:
        return read()
    except (pa.ArrowException, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: damaged Parquet data {where} ({first_line}); replace the file") from None


def _combine(column) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


# ------------------------------------------------------------------------------------------ JSON records


def _records_to_batch(records: list, first: int, columns: ColumnMap, fields: Fields) -> pa.RecordBatch:
    """Slow, exact path: check each record's fields one by one, so a bad record is rejected alone.

    `records` holds parsed objects, or `_InvalidJson` markers for lines that did not parse.
    """
    values: dict[str, list] = {name: [] for name in fields}
    rejects: list[str | None] = []
    for record in records:
        reason = None
        if isinstance(record, _InvalidJson):
            reason = record.reason
        elif not isinstance(record, dict):
            reason = "not_an_object"
        readable = reason is None
        for name, target in fields.items():
            value = None
            if readable and columns.get(name) is not None:
                value = record.get(columns[name])
                if value is not None and not _has_type(value, target):
                    # Only this field is unusable; the others stay, for the reject report's excerpt.
                    reason, value = reason or f"wrong_type:{name}", None
            values[name].append(value)
        rejects.append(reason)
    arrays = []
    for name, target in fields.items():
        array, unencodable = _to_arrow(values[name], target)
        for row in unencodable:
            rejects[row] = rejects[row] or f"{utf8.REASON}:{name}"
        arrays.append(array)
    ordinals = pa.array(np.arange(first, first + len(records), dtype=np.int64))
    return pa.RecordBatch.from_arrays([*arrays, ordinals, pa.array(rejects, pa.string())], schema=_batch_schema(fields))


class _InvalidJson:
    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


_INVALID = _InvalidJson("invalid_json")
_INVALID_UTF8 = _InvalidJson(utf8.REASON)


def _has_type(value, target: pa.DataType) -> bool:
    if pa.types.is_string(target) or pa.types.is_large_string(target):
        return isinstance(value, str)
    if pa.types.is_integer(target):
        return isinstance(value, int) and not isinstance(value, bool)
    if pa.types.is_floating(target):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if pa.types.is_boolean(target):
        return isinstance(value, bool)
    try:  # nested types: let Arrow decide
        pa.array([value], target)
        return True
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return False


def _to_arrow(values: list, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """The values as Arrow, and the rows whose text has no UTF-8 form (lone surrogates from "\ud83d" escapes,
    or bytes that were not UTF-8): those become null, for their record to be rejected."""
    try:
        return pa.array(values, target), []
    except (pa.ArrowInvalid, UnicodeEncodeError):
        bad = [row for row, value in enumerate(values) if not utf8.encodable(value)]
        if not bad:
            raise
        for row in bad:
            values[row] = None
        return pa.array(values, target), bad


def read_json_array(path: Path, columns: ColumnMap, fields: Fields, wanted: np.ndarray | None = None) -> Iterator[pa.RecordBatch]:
    """A file holding one JSON array of objects (the original Alpaca / ShareGPT files)."""
    columns = {name: col for name, col in columns.items() if name in fields}
    try:
        with pa.input_stream(str(path)) as stream:
            # Bytes that are not UTF-8 become lone surrogates, so they cost their record, not the file.
            data = json.loads(stream.read().decode("utf-8", "surrogateescape"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise SourceError(f"{path}: expected a JSON array of records; found a JSON {type(data).__name__}")
    if wanted is not None:
        data_view = [data[i] for i in wanted]
        for start in range(0, len(data_view), BATCH_ROWS):
            batch = _records_to_batch(data_view[start : start + BATCH_ROWS], 0, columns, fields)
            ordinals = pa.array(wanted[start : start + BATCH_ROWS].astype(np.int64))
            yield batch.set_column(batch.schema.get_field_index(ORDINAL), ORDINAL, ordinals)
        return
    if not data:
        yield _empty_batch(fields)
    for start in range(0, len(data), BATCH_ROWS):
        yield _records_to_batch(data[start : start + BATCH_ROWS], start, columns, fields)


def read_json_lines(path: Path, columns: ColumnMap, fields: Fields, wanted: np.ndarray | None = None) -> Iterator[pa.RecordBatch]:
    """JSON Lines, plain or gzip-compressed, streamed in chunks with bounded memory.

    Fast path: Arrow's JSON parser on a whole chunk. If the chunk has a record Arrow cannot
    type (wrong type, invalid JSON, blank line), that chunk is re-read record by record so that
    only the bad records are rejected, each with its reason. Ordinal = line index (line - 1).
    """
    columns = {name: col for name, col in columns.items() if name in fields}
    explicit = pa.schema([pa.field(col, fields[name]) for name, col in columns.items() if col is not None])
    rename = {col: name for name, col in columns.items() if col is not None}
    wanted = None if wanted is None else np.unique(np.asarray(wanted, np.int64))
    first_line = 0
    for chunk in _line_chunks(path):
        line_count = chunk.count(b"\n")
        if wanted is not None:
            lo, hi = np.searchsorted(wanted, [first_line, first_line + line_count])
            if lo < hi:
                yield _wanted_lines(chunk, wanted[lo:hi], first_line, explicit, rename, columns, fields)
            first_line += line_count
            continue
        # Arrow skips blank lines, so a fast parse with one row per line proves the chunk has none: the blank-line
        # scans (two passes over 16 MB) are only paid on the record-by-record path.
        batch = None if chunk[:1].isspace() else _fast_json_lines(chunk, line_count, explicit, rename, fields, first_line)
        if batch is None:
            records = [_parse_line(line) for line in chunk.split(b"\n")[:line_count]]
            batch = _records_to_batch(records, first_line, columns, fields)
            # Blank lines are not records; they keep their line number but are dropped here.
            if _has_blank(chunk):
                batch = _drop_blank(batch, chunk, line_count)
        yield batch
        first_line += line_count


def _wanted_lines(chunk: bytes, wanted: np.ndarray, first_line: int, explicit, rename, columns, fields) -> pa.RecordBatch:
    """Only the `wanted` lines of a chunk (sorted, distinct line ordinals), parsed as the whole chunk would parse
    them: a fetch wants a few rows per chunk, and parsing every field of every line was most of its cost."""
    ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)
    local = wanted - first_line
    starts = np.r_[0, ends[:-1] + 1][local]
    lines = [chunk[a : b + 1] for a, b in zip(starts.tolist(), ends[local].tolist())]
    subset = b"".join(lines)
    # A blank line never holds a wanted record (only a changed file would make it so): it is dropped, and the
    # caller sees the row missing.
    blank = np.fromiter((not line.strip() for line in lines), bool, len(lines))
    batch = None if blank.any() or subset[:1].isspace() else _fast_json_lines(subset, len(lines), explicit, rename, fields, 0)
    if batch is None:
        batch = _records_to_batch([_parse_line(line[:-1]) for line in lines], 0, columns, fields)
    batch = batch.set_column(batch.schema.get_field_index(ORDINAL), ORDINAL, pa.array(wanted, pa.int64()))
    return batch.filter(pa.array(~blank)) if blank.any() else batch


class _Blank:
    __slots__ = ()


_BLANK = _Blank()


def _parse_line(line: bytes):
    if not line.strip():
        return _BLANK
    try:
        return json.loads(line)
    except UnicodeDecodeError:
        return _INVALID_UTF8
    except json.JSONDecodeError:
        return _INVALID


def _has_blank(chunk: bytes) -> bool:
    return chunk[:1].isspace() or b"\n\n" in chunk or b"\n \n" in chunk


def _drop_blank(batch: pa.RecordBatch, chunk: bytes, line_count: int) -> pa.RecordBatch:
    lines = chunk.split(b"\n")[:line_count]
    keep = np.fromiter((bool(line.strip()) for line in lines), dtype=bool, count=line_count)
    return batch.filter(pa.array(keep)) if not keep.all() else batch


def _fast_json_lines(chunk, line_count, explicit, rename, fields, first_line) -> pa.RecordBatch | None:
    # Arrow skips blank lines, which would shift its row numbering away from line numbers: then the row count differs.
    try:
        table = pajson.read_json(
            io.BytesIO(chunk),
            read_options=pajson.ReadOptions(block_size=max(1 << 20, len(chunk) + 1)),
            parse_options=pajson.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != line_count:
        return None
    arrays = []
    for name, target in fields.items():
        col = next((c for c, n in rename.items() if n == name), None)
        arrays.append(table.column(col).combine_chunks() if col is not None else pa.nulls(line_count, target))
    ordinals = pa.array(np.arange(first_line, first_line + line_count, dtype=np.int64))
    return pa.RecordBatch.from_arrays([*arrays, ordinals, pa.nulls(line_count, pa.string())], schema=_batch_schema(fields))


def _line_chunks(path: Path) -> Iterator[bytes]:
    """Chunks of whole lines, each ending in b'\\n' (one is added to a final unterminated line)."""
    try:
        stream = pa.input_stream(str(path))  # decompresses .gz by extension
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{path}: cannot open ({exc})") from None
    with stream:
        rest = b""
        while True:
            try:
                block = stream.read(JSONL_CHUNK_BYTES)
            except (pa.ArrowException, OSError) as exc:
                raise SourceError(f"{path}: cannot read ({exc})") from None
            if not block:
                break
            data = rest + block
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            yield data[: cut + 1]
            rest = data[cut + 1 :]
        if rest.strip():
            yield rest + b"\n"


READERS = {"parquet": utf8.guarded(read_parquet), "jsonl": utf8.guarded(read_json_lines), "json": utf8.guarded(read_json_array)}


def record_keys(path: Path, fmt: str, sample: int = 50) -> set[str] | None:
    """The column / key names a file offers (JSON Lines: the union over its first records).

    None for JSON arrays: finding out would mean parsing the whole file, so callers use their
    declared names and missing keys come through as nulls (and are counted as missing).
    """
    if fmt == "parquet":
        return set(parquet_columns(path))
    if fmt == "json":
        return None
    keys: set[str] = set()
    for chunk in _line_chunks(path):
        for line in chunk.split(b"\n")[:sample]:
            record = _parse_line(line)
            if isinstance(record, dict):
                keys.update(record)
        break
    return keys
