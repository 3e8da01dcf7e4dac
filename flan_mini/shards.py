"""The one output schema, and Parquet shards in the Hub's layout (``data/train-00000-of-0000N.parquet``)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
DEFAULT_SPLIT = "train"
# Row groups small enough for the Hub's viewer and for partial reads, large enough to compress well.
ROW_GROUP_ROWS = 10_000


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
) -> list[ShardInfo]:
    """Write ``table`` (or its ``rows``, in that order) as contiguous Parquet shards of about
    ``target_shard_bytes`` each; ``transform`` (e.g. to_messages) is applied to each shard.

    The target applies to the in-memory (uncompressed Arrow) size, which is known before
    writing; zstd typically makes the files 3-5x smaller. With ``rows``, each shard's rows are
    gathered when it is written, so the whole output is never held in memory at once. Output bytes
    depend only on the rows and the pyarrow version: equal inputs give byte-identical shards.
    """
    folder = Path(folder)
    (folder / DATA_DIR).mkdir(parents=True, exist_ok=True)
    total = table.num_rows if rows is None else len(rows)
    size = table.nbytes if rows is None else table.nbytes * total / max(1, table.num_rows)
    count = max(1, math.ceil(size / max(1, target_shard_bytes)))
    rows_per_shard = math.ceil(total / count) if total else 0
    # Equal contiguous slices; recount so no trailing shard is empty (4 rows in 3 -> 2 + 2, not 2 + 2 + 0).
    count = math.ceil(total / rows_per_shard) if rows_per_shard else 1
    shards = []
    for index in range(count):
        start = index * rows_per_shard
        if rows is None:
            part = table.slice(start, rows_per_shard)
        else:
            part = table.take(pa.array(rows[start : start + rows_per_shard], pa.int64()))
        if transform is not None:
            part = transform(part)
        name = shard_name(index, count, split)
        path = folder / name
        pq.write_table(part, path, compression="zstd", row_group_size=ROW_GROUP_ROWS, write_statistics=True, store_schema=True)
        shards.append(ShardInfo(name, part.num_rows, path.stat().st_size, file_sha256(path)))
    return shards


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
    conversations = table.column("conversations").combine_chunks()
    turns = conversations.flatten()
    roles = pc.if_else(pc.equal(turns.field("from"), "human"), "user", "assistant")
    offsets = pc.subtract(conversations.offsets, conversations.offsets[0])
    messages = pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays([roles, turns.field("value")], fields=list(MESSAGE)))
    index = table.schema.get_field_index("conversations")
    return table.set_column(index, pa.field("messages", pa.list_(MESSAGE), nullable=False), messages)
