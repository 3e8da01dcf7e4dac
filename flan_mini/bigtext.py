"""Text columns past 2 GiB: Arrow's `string` keeps 32-bit offsets, so such a column is carried as `large_string`.

Arrow holds a `string` column of any size as several chunks, but joining them into one array (which take,
combine_chunks and concatenation do) overflows its 32-bit offsets at 2 GiB. The build joins columns in a few
places (rendering, assembling sources, gathering a shard's rows); each goes through `fit`, which widens the
text to `large_string` (64-bit offsets, same bytes) when the result would not fit. When written, every shard is
narrowed back to the declared schema (`string`) in row groups small enough to fit, so readers see the one
output schema whatever the size. Example: three rows of 800 MB each are one 2.4 GB `large_string` column in
memory and a shard of three row groups of `string` on disk.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Widen above this many bytes (below Arrow's 2**31 - 1, leaving room for offsets and rounding). Tests lower it
# to run the wide path on small data.
LARGE_TEXT_BYTES = (1 << 31) - (64 << 20)


def _with_strings_as(kind: pa.DataType, source: pa.DataType, target: pa.DataType) -> pa.DataType:
    """`kind` with every `source` string type (at any depth: lists, structs) replaced by `target`."""
    if kind.equals(source):
        return target
    if pa.types.is_list(kind):
        field = kind.value_field
        return pa.list_(pa.field(field.name, _with_strings_as(field.type, source, target), field.nullable))
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_with_strings_as(f.type, source, target)) for f in kind])
    return kind


def widen_type(kind: pa.DataType) -> pa.DataType:
    """`kind` with every string (at any depth) a large_string."""
    return _with_strings_as(kind, pa.string(), pa.large_string())


def narrow_type(kind: pa.DataType) -> pa.DataType:
    """`kind` with every large_string (at any depth) a string: the declared output types."""
    return _with_strings_as(kind, pa.large_string(), pa.string())


def is_wide(kind: pa.DataType) -> bool:
    return not narrow_type(kind).equals(kind)


def too_big(*arrays) -> bool:
    """True when the arrays' bytes together might overflow 32-bit offsets once joined (an upper bound)."""
    return sum(a.nbytes for a in arrays) > LARGE_TEXT_BYTES


def fit(column) -> pa.Array:
    """One contiguous array of `column` (an Array or ChunkedArray), widened when its text is too big to join."""
    if isinstance(column, pa.Array):
        return column
    if too_big(column) and not is_wide(column.type):
        column = column.cast(widen_type(column.type))
    return column.combine_chunks()


def strings(values: list) -> pa.Array:
    """Python strings as one Arrow array: `string`, or `large_string` when they pass 2 GiB."""
    array = pa.array(values, pa.string())
    if isinstance(array, pa.ChunkedArray) or array.nbytes > LARGE_TEXT_BYTES:
        return pa.array(values, pa.large_string())
    return array


def common(arrays: list) -> list:
    """`arrays` cast to one type: all widened if any is wide or together they are too big to join."""
    if any(is_wide(a.type) for a in arrays) or too_big(*arrays):
        return [a if is_wide(a.type) else a.cast(widen_type(a.type)) for a in arrays]
    return arrays


def schema_with(schema: pa.Schema, table_columns: dict) -> pa.Schema:
    """`schema` with each field whose column is wide made wide too (for building a table of wide columns)."""
    fields = []
    for field in schema:
        column = table_columns.get(field.name)
        fields.append(field.with_type(widen_type(field.type)) if column is not None and is_wide(column.type) else field)
    return pa.schema(fields, metadata=schema.metadata)


def row_bytes(table: pa.Table) -> np.ndarray:
    """Per row, an upper bound of its text bytes (string columns, and strings inside list<struct> columns)."""
    sizes = np.zeros(table.num_rows, np.int64)
    for column in table.columns:
        for chunk_start, chunk in _chunks(column):
            n = len(chunk)
            if pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type):
                sizes[chunk_start : chunk_start + n] += np.asarray(pc.fill_null(pc.binary_length(chunk), 0), np.int64)
            elif pa.types.is_list(chunk.type) and pa.types.is_struct(chunk.type.value_type):
                flat, parents = chunk.flatten(), np.asarray(pc.list_parent_indices(chunk), np.int64)
                for index in range(flat.type.num_fields):
                    values = flat.field(index)
                    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
                        lengths = np.asarray(pc.fill_null(pc.binary_length(values), 0), np.int64)
                        sizes[chunk_start : chunk_start + n] += np.bincount(parents, lengths, minlength=n).astype(np.int64)
    return sizes


def _chunks(column):
    start = 0
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        yield start, chunk
        start += len(chunk)


def narrow_groups(table: pa.Table, rows_per_group: int):
    """Slices of `table` of at most `rows_per_group` rows and LARGE_TEXT_BYTES of text, cast to the narrow
    (declared) types. A single row above the limit cannot be a `string`: that is an error naming it."""
    schema = pa.schema([f.with_type(narrow_type(f.type)) for f in table.schema], metadata=table.schema.metadata)
    sizes = row_bytes(table)
    start = 0
    while start < table.num_rows:
        end, total = start, 0
        while end < table.num_rows and end - start < rows_per_group and (end == start or total + sizes[end] <= LARGE_TEXT_BYTES):
            total += int(sizes[end])
            end += 1
        if sizes[start] > LARGE_TEXT_BYTES:
            from .errors import FlanMiniError

            raise FlanMiniError(f"row {start:,} of a shard holds {int(sizes[start]):,} bytes of text, more than one Parquet "
                                "string column can hold in a row group (2 GiB); shorten the source's texts")
        # take, not slice: a slice keeps the whole text buffer, and Arrow refuses to narrow a buffer past 2 GiB
        # even when the slice's own text would fit.
        yield table.take(pa.array(np.arange(start, end, dtype=np.int64))).cast(schema), schema
        start = end
