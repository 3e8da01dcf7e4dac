"""The one output schema, and Parquet shards in the Hub's layout (``data/train-00000-of-0000N.parquet``)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import bigtext
from .errors import FlanMiniError

TURN = pa.struct([("from", pa.string()), ("value", pa.string())])
ROLES = ("human", "gpt")

# Every built dataset has exactly these columns, in this order.
OUTPUT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        # FLAN rows keep their FLAN task name; other sources use the recipe's label.
        pa.field("source", pa.string(), nullable=False),
        pa.field("conversations", pa.list_(TURN), nullable=False),
        # The recipe's source name this row came from (e.g. "flan2021", "sharegpt").
        pa.field("recipe_source", pa.string(), nullable=False),
        pa.field("template_id", pa.string()),
        # FLAN's zs_opt / zs_noopt / fs_opt / fs_noopt, or zs / fs for our own templates.
        pa.field("template_type", pa.string()),
        pa.field("num_shots", pa.int32()),
        # The record's own id in its source: ShareGPT id, CodeContests name, APPS problem_id, CodeSearchNet url,
        # Alpaca index in its file; null for FLAN rows (FLAN's exports carry no row id).
        pa.field("source_id", pa.string()),
    ]
)

DATA_DIR = "data"
# Stage reports (dedup clusters, decontamination matches) live here, outside data/, so the card's configs, globs
# over data/ and `load_dataset("parquet", data_dir=...)` never mix them with training rows.
REPORTS_DIR = "reports"
DEFAULT_SPLIT = "train"
# Row groups small enough for the Hub's viewer and for partial reads, large enough to compress well.
ROW_GROUP_ROWS = 10_000
# Pages cut where the content says (a rolling hash), not every N bytes, so a rebuild that changes a few rows
# leaves the other pages byte-identical and the Hub's Xet storage deduplicates them; the same options as
# `datasets` (config.DEFAULT_CDC_OPTIONS). The page index lets readers skip pages. Still deterministic: the
# boundaries depend only on the values written. benchmarks/shared_bytes.py measures what a rebuild shares.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}


def write_parquet(table: pa.Table, path: Path) -> None:
    """One shard with the output's write options (zstd, row groups, statistics, content-defined pages).
    Text past 2 GiB arrives as large_string (bigtext.py): it is written in row groups that fit the declared
    `string` type, so the file's schema is the declared one whatever the size."""
    if any(bigtext.is_wide(f.type) for f in table.schema) or bigtext.too_big(table):
        groups = bigtext.narrow_groups(table, ROW_GROUP_ROWS)
    else:
        groups = iter([(table, table.schema)])
    writer = None
    try:
        for group, schema in groups:
            if writer is None:
                writer = pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True, store_schema=True,
                                          use_content_defined_chunking=CDC_OPTIONS, write_page_index=True)
                writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})  # as `datasets` marks it
            writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
    finally:
        if writer is not None:
            writer.close()


@dataclass(frozen=True)
class ShardInfo:
    path: str  # relative to the dataset folder, POSIX separators
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


def shard_name(index: int, count: int, split: str = DEFAULT_SPLIT) -> str:
    return f"{DATA_DIR}/{split}-{index:05d}-of-{count:05d}.parquet"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_shards(
    table: pa.Table,
    folder: Path,
    *,
    target_shard_bytes: int,
    split: str = DEFAULT_SPLIT,
    rows: np.ndarray | None = None,
    transform: Callable[[pa.Table], pa.Table] | None = None,
    executor=None,
    gather_on: str = "driver",
) -> list[ShardInfo]:
    """Write ``table`` (or its ``rows``, in that order) as contiguous Parquet shards of about
    ``target_shard_bytes`` each; ``transform`` (e.g. to_messages) is applied to each shard.

    The target applies to the in-memory (uncompressed Arrow) size, which is known before
    writing; zstd typically makes the files 3-5x smaller. With ``rows``, each shard's rows are
    gathered when it is written, so the whole output is never held in memory at once. Output bytes
    depend only on the rows and the pyarrow version: equal inputs give byte-identical shards.

    With an ``executor`` (executor.py) each shard is one task that writes and checksums it (``write_shard``);
    the shard names and every shard's rows are decided here, so the bytes do not depend on the executor.
    Locally the tasks gather their rows from the table itself (threads share it). On a cluster, ``gather_on``:
    "driver" (default) gathers each shard here and sends it to its task, so each row crosses to one node once
    and the driver holds at most the shards in flight; "task" shares the whole table once (``executor.share``:
    a second copy in the driver node's object store, and one per node) and sends row indices. At 0.1M rows on
    two simulated nodes "driver" took 1.1-2.4 s against 2.3-4.0 s (two runs of benchmarks/ray_scale.py). The folder must be on
    storage every worker sees.
    """
    folder = Path(folder)
    (folder / DATA_DIR).mkdir(parents=True, exist_ok=True)
    total = table.num_rows if rows is None else len(rows)
    size = table.nbytes if rows is None else table.nbytes * total / max(1, table.num_rows)
    count = max(1, math.ceil(size / max(1, target_shard_bytes)))
    rows_per_shard = math.ceil(total / count) if total else 0
    # Equal contiguous slices; recount so no trailing shard is empty (4 rows in 3 -> 2 + 2, not 2 + 2 + 0).
    count = math.ceil(total / rows_per_shard) if rows_per_shard else 1
    if executor is None:
        from .executor import LocalExecutor  # noqa: PLC0415

        executor = LocalExecutor(1)  # inline, one shard at a time
    if gather_on not in ("task", "driver"):
        raise ValueError(f"gather_on: expected 'task' or 'driver', got {gather_on!r}")
    by_task = gather_on == "task" and executor.name != "local"
    source = executor.share(table) if by_task else table

    def jobs():
        for index in range(count):
            start = index * rows_per_shard
            if rows is None:
                part, wanted = table.slice(start, rows_per_shard), None
            elif by_task:
                part, wanted = source, np.asarray(rows[start : start + rows_per_shard], np.int64)
            elif executor.name == "local":
                part, wanted = table, np.asarray(rows[start : start + rows_per_shard], np.int64)  # gathered in the task
            else:
                part, wanted = gather(table, np.asarray(rows[start : start + rows_per_shard], np.int64)), None
            yield part, wanted, transform, str(folder), shard_name(index, count, split)

    shards = list(executor.map(write_shard, jobs(), inflight=executor.workers + 1))
    verify_shards(folder, shards)
    return shards


def write_shard(table: pa.Table, rows: np.ndarray | None, transform: Callable[[pa.Table], pa.Table] | None,
                folder: str, name: str) -> ShardInfo:
    """One shard, as an executor task: ``table`` (or its ``rows``, in that order), transformed, written to
    ``folder/name`` and checksummed. Pure in its arguments: a retry writes the same bytes again.

    With ``rows``, the shard is gathered one row group at a time and each group written before the next is
    gathered, so the task holds one row group, not the shard (the same row groups, so the same bytes)."""
    path = Path(folder) / name
    if rows is not None and not any(bigtext.is_wide(f.type) for f in table.schema):
        count = _write_gathered(table, rows, transform, path)
        return ShardInfo(name, count, path.stat().st_size, file_sha256(path))
    part = table if rows is None else gather(table, rows)
    if transform is not None:
        part = transform(part)
    write_parquet(part, path)
    return ShardInfo(name, part.num_rows, path.stat().st_size, file_sha256(path))


def _write_gathered(table: pa.Table, rows: np.ndarray, transform, path: Path) -> int:
    """``write_parquet(transform(gather(table, rows)), path)`` one ROW_GROUP_ROWS group at a time: each call to
    ``write_table`` with one group's rows writes exactly that row group, as the whole-table call would."""
    groups = [(lo, min(len(rows), lo + ROW_GROUP_ROWS)) for lo in range(0, len(rows), ROW_GROUP_ROWS)] or [(0, 0)]
    writer = None
    try:
        for lo, hi in groups:
            part = gather(table, rows[lo:hi])
            if transform is not None:
                part = transform(part)
            if writer is None:
                writer = pq.ParquetWriter(path, part.schema, compression="zstd", write_statistics=True, store_schema=True,
                                          use_content_defined_chunking=CDC_OPTIONS, write_page_index=True)
                writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})
            writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
            del part  # freed before the next group is gathered
    finally:
        if writer is not None:
            writer.close()
    return len(rows)


def gather(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """``table.take(rows)``, chunk by chunk: Arrow's take on a chunked column joins the whole column first (on every
    call, so once per shard), where this touches only the chunks and rows the shard needs. Same values, same bytes."""
    return pa.Table.from_arrays([_gather_column(column, rows) for column in table.columns], schema=table.schema)


def _gather_column(column: pa.ChunkedArray, rows: np.ndarray) -> pa.ChunkedArray:
    if column.num_chunks <= 1 or len(rows) == 0:
        return column.take(pa.array(rows, pa.int64()))
    starts = np.cumsum([0, *(len(chunk) for chunk in column.chunks)])
    chunk_of = np.searchsorted(starts, rows, side="right") - 1
    order = np.argsort(chunk_of, kind="stable")
    by_chunk, sorted_rows = chunk_of[order], rows[order]
    used = np.unique(by_chunk)
    bounds = np.searchsorted(by_chunk, [*used, by_chunk[-1] + 1])
    pieces = [column.chunk(int(c)).take(pa.array(sorted_rows[lo:hi] - starts[c], pa.int64()))
              for c, lo, hi in zip(used, bounds[:-1], bounds[1:])]
    # Back from chunk order to the shard's order: a take on the shard-sized array only.
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pa.chunked_array([pa.concat_arrays(pieces).take(pa.array(inverse, pa.int64()))], column.type)


def verify_shards(folder: Path, shards: list[ShardInfo]) -> None:
    """Read the written shards back before they are moved into place: each file's footer and schema (the same
    for all, with no large_string), and every row group decoded and validated (UTF-8 included), one at a time.
    A shard that fails is a bug in flan-mini, reported as an error rather than published."""
    first = None
    for shard in shards:
        path = Path(folder) / shard.path
        try:
            parquet = pq.ParquetFile(path)
            schema = parquet.schema_arrow
            if first is None:
                first = schema
            if not schema.equals(first) or any(bigtext.is_wide(f.type) for f in schema):
                raise ValueError(f"schema {schema} differs from the first shard's {first}")
            if parquet.metadata.num_rows != shard.rows:
                raise ValueError(f"{parquet.metadata.num_rows} rows, {shard.rows} written")
            for group in range(parquet.num_row_groups):
                parquet.read_row_group(group).validate(full=True)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise FlanMiniError(f"{shard.path}: the shard just written does not read back ({exc}); nothing was moved "
                                "into place. Please report this as a flan-mini bug") from None


def shard_paths(folder: Path, split: str = DEFAULT_SPLIT) -> list[Path]:
    """The shards of ``split`` in a dataset folder, in order."""
    return sorted((Path(folder) / DATA_DIR).glob(f"{split}-*.parquet"))


def read_shards(folder: Path, split: str = DEFAULT_SPLIT, columns: list[str] | None = None) -> pa.Table:
    """Read every shard of ``split`` in a dataset folder into one table."""
    paths = shard_paths(folder, split)
    if not paths:
        raise FlanMiniError(f"{folder}: no Parquet shards under {DATA_DIR}/{split}-*.parquet")
    return pa.concat_tables(pq.read_table(path, columns=columns) for path in paths)


MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])


def to_messages(table: pa.Table) -> pa.Table:
    """The `messages` layout: `conversations` renamed, `from`/`value` -> `role` (user/assistant) / `content`."""
    conversations = bigtext.fit(table.column("conversations"))
    turns = conversations.flatten()
    roles = pc.if_else(pc.equal(turns.field("from"), "human"), "user", "assistant")
    offsets = pc.subtract(conversations.offsets, conversations.offsets[0])
    message = bigtext.widen_type(MESSAGE) if bigtext.is_wide(conversations.type) else MESSAGE
    messages = pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays([roles.cast(message[0].type), turns.field("value")], fields=list(message)))
    index = table.schema.get_field_index("conversations")
    return table.set_column(index, pa.field("messages", pa.list_(message), nullable=False), messages)
