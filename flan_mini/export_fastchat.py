"""The release as one JSON file for FastChat's `train.py`: a JSON array of `{"id", "conversations"}` records.

FastChat's trainer (`fastchat/train/train.py`, `make_supervised_data_module`) reads its data with
`json.load(open(data_path))` and takes each record's `conversations`, a list of `{"from": "human" | "gpt",
"value": str}` turns that starts with human and alternates, which is what the shards hold. The file has the
shards' rows in the shards' order (the build's seeded shuffle), so it is as reproducible as they are:

    [
    {"id":"sharegpt-3f0c...","conversations":[{"from":"human","value":"Hi"},{"from":"gpt","value":"Hello!"}]},
    ...
    ]

It is written from the finished shards, a row group at a time, with polars' JSON writer (column-wise),
so memory stays at one row group whatever the size of the release. Shards in the `messages` layout are
turned back into from/value turns (user -> human, assistant -> gpt) first.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from .shards import file_sha256

DEFAULT_NAME = "flan_mini.json"
FORMAT = "FastChat (fastchat/train/train.py): JSON array of {id, conversations: [{from: human|gpt, value}]}"


def _records(path: Path) -> pl.DataFrame:
    """One shard's rows as id + conversations (from/value), whichever layout the shard has."""
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    for group in range(parquet.num_row_groups):
        frame = pl.from_arrow(parquet.read_row_group(group, columns=["id", "conversations" if "conversations" in names else "messages"]))
        if "messages" in frame.columns:
            frame = frame.select(
                "id",
                pl.col("messages").list.eval(pl.struct(
                    pl.when(pl.element().struct.field("role") == "user").then(pl.lit("human")).otherwise(pl.lit("gpt")).alias("from"),
                    pl.element().struct.field("content").alias("value"),
                )).alias("conversations"),
            )
        yield frame


def write_fastchat_json(folder: Path, shard_paths: list[Path], name: str = DEFAULT_NAME) -> dict:
    """Write `folder/name` from the shards (in order); returns its manifest entry {path, rows, bytes, sha256, format}."""
    path = Path(folder) / name
    rows = 0
    with open(path, "wb") as handle:
        handle.write(b"[")
        for shard in shard_paths:
            for frame in _records(shard):
                if not frame.height:
                    continue
                # One JSON object per line from polars; the array's commas go between the lines.
                lines = frame.write_ndjson().rstrip("\n").replace("\n", ",\n")
                handle.write((",\n" if rows else "\n").encode() + lines.encode("utf-8"))
                rows += frame.height
        handle.write(b"\n]\n")
    return {"path": name, "rows": rows, "bytes": path.stat().st_size, "sha256": file_sha256(path), "format": FORMAT}
