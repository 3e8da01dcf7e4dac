"""Per-source statistics of a built dataset (counts, templates, lengths), computed columnar from its shards."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import FlanMiniError

ROLES = ("human", "gpt")


@dataclass(frozen=True)
class Summary:
    """Distribution summary of one length measure. ``p95`` and ``median`` interpolate linearly (numpy's default)."""

    count: int
    mean: float
    median: float
    p95: float
    max: int

    @classmethod
    def of(cls, values: np.ndarray) -> Summary:
        if len(values) == 0:
            return cls(0, 0.0, 0.0, 0.0, 0)
        return cls(
            count=int(len(values)),
            mean=float(np.mean(values)),
            median=float(np.median(values)),
            p95=float(np.percentile(values, 95)),
            max=int(np.max(values)),
        )


@dataclass
class SourceStats:
    """What the card says about one recipe source (or about all of them, ``name="all"``)."""

    name: str
    rows: int
    distinct_sources: int  # distinct values of the `source` column (FLAN task names, or the label)
    templates: dict[str, int]  # template_id -> rows, most used first
    template_types: dict[str, int]  # zs_opt / fs_opt / zs / fs ... -> rows
    zero_shot: int
    few_shot: int
    untemplated: int  # rows with neither template type nor shot count (e.g. ShareGPT passed through)
    mean_shots: float | None  # mean num_shots over few-shot rows
    turns: Summary  # turns per conversation
    prompt_chars: Summary  # characters per human turn
    response_chars: Summary  # characters per gpt turn


@dataclass
class DatasetStats:
    schema: pa.Schema  # the shards' schema (all shards share it), without file metadata
    rows: int
    num_bytes: int  # in-memory Arrow size, the figure `datasets` records as the split's num_bytes
    sources: list[SourceStats]  # in manifest order
    total: SourceStats
    # (recipe source, role) -> characters (or tokens) per turn, for the length histogram
    lengths: dict[tuple[str, str], np.ndarray] = field(repr=False, default_factory=dict)
    unit: str = "characters"  # or "tokens"
    features: list[dict] | None = None  # the card's `features` as recorded (schema is None then)


# ---------------------------------------------------------------------------------------------- recorded stats
# The build records what the card's text shows (not the per-turn lengths, which only the figures need) in the
# manifest's `card_stats`, so `push` re-renders the card for its repo without reading the shards again.
# Lists of pairs keep the card's orders (templates most used first) whatever a JSON writer does with keys.


def _summary_record(summary: Summary) -> list:
    return [summary.count, summary.mean, summary.median, summary.p95, summary.max]


def _source_record(stats: SourceStats) -> dict:
    return {
        "name": stats.name, "rows": stats.rows, "distinct_sources": stats.distinct_sources,
        "templates": [[k, v] for k, v in stats.templates.items()],
        "template_types": [[k, v] for k, v in stats.template_types.items()],
        "zero_shot": stats.zero_shot, "few_shot": stats.few_shot, "untemplated": stats.untemplated,
        "mean_shots": stats.mean_shots, "turns": _summary_record(stats.turns),
        "prompt_chars": _summary_record(stats.prompt_chars), "response_chars": _summary_record(stats.response_chars),
    }


def stats_record(stats: DatasetStats) -> dict:
    """What the card's text needs of ``stats``, as JSON-able data (see ``stats_from_record``)."""
    from .card_header import features_yaml

    return {
        "unit": stats.unit, "rows": stats.rows, "num_bytes": stats.num_bytes,
        "features": stats.features if stats.features is not None else features_yaml(stats.schema),
        "sources": [_source_record(s) for s in stats.sources], "total": _source_record(stats.total),
    }


def _source_from(record: dict) -> SourceStats:
    return SourceStats(
        name=record["name"], rows=record["rows"], distinct_sources=record["distinct_sources"],
        templates=dict(map(tuple, record["templates"])), template_types=dict(map(tuple, record["template_types"])),
        zero_shot=record["zero_shot"], few_shot=record["few_shot"], untemplated=record["untemplated"],
        mean_shots=record["mean_shots"], turns=Summary(*record["turns"]),
        prompt_chars=Summary(*record["prompt_chars"]), response_chars=Summary(*record["response_chars"]),
    )


def stats_from_record(record: dict) -> DatasetStats:
    """The statistics a build recorded (``stats_record``), without lengths: enough for the card's text."""
    return DatasetStats(
        schema=None, rows=record["rows"], num_bytes=record["num_bytes"],
        sources=[_source_from(s) for s in record["sources"]], total=_source_from(record["total"]),
        unit=record["unit"], features=record["features"],
    )


def _shot_kind() -> pl.Expr:
    """zero / few / none for each row: FLAN's zs_*/fs_* and our zs/fs, else the shot count decides.

    e.g. ("fs_noopt", 3) -> few, ("zs", 0) -> zero, (None, 2) -> few, (None, None) -> none.
    """
    kind = pl.col("template_type")
    shots = pl.col("num_shots")
    return (
        pl.when(kind.str.starts_with("zs")).then(pl.lit("zero"))
        .when(kind.str.starts_with("fs")).then(pl.lit("few"))
        .when(shots.is_null()).then(pl.lit("none"))
        .when(shots > 0).then(pl.lit("few"))
        .otherwise(pl.lit("zero"))
    )


def _row_groups(paths: list[Path]):
    """Yield (path, row group as Arrow) in order, the next one read on a thread while the caller works on this
    one (reading decompresses, outside the GIL): at most two row groups in memory."""
    groups = [(path, index) for path in paths for index in range(pq.ParquetFile(path).num_row_groups)]
    with ThreadPoolExecutor(1) as reader:
        ahead = None
        for path, index in groups:
            current, ahead = ahead, (path, reader.submit(lambda p=path, i=index: pq.ParquetFile(p).read_row_group(i)))
            if current is not None:
                yield current[0], current[1].result()
        if ahead is not None:
            yield ahead[0], ahead[1].result()


def _read_groups(paths: list[Path], names: list[str]):
    """Yield (shard path, row group as a polars frame, its Arrow size), one row group at a time (bounded memory)."""
    for path, table in _row_groups(paths):
        frame = pl.from_arrow(table)
        unknown = sorted(set(frame["recipe_source"].unique().to_list()) - set(names))
        if unknown:
            raise FlanMiniError(
                f"{path}: recipe_source values {unknown} are not among the manifest's sources {names}; "
                "the shards and manifest.json come from different builds. Rebuild the folder."
            )
        yield path, frame, table.nbytes


def shared_schema(paths: list[Path]) -> pa.Schema:
    """The one Arrow schema of all shards; differing shards mean the folder mixes builds."""
    if not paths:
        raise FlanMiniError("no Parquet shards to describe")
    schema = pq.read_schema(paths[0]).remove_metadata()
    for path in paths[1:]:
        other = pq.read_schema(path).remove_metadata()
        if not other.equals(schema):
            raise FlanMiniError(f"{path}: schema differs from {paths[0].name}'s:\n{other}\nvs\n{schema}")
    return schema


def _as_conversations(frame: pl.DataFrame) -> pl.DataFrame:
    """The `messages` layout (role user/assistant, content) seen as `conversations` (from human/gpt, value)."""
    if "messages" not in frame.columns:
        return frame
    turn = pl.struct(
        pl.element().struct.field("role").replace_strict({"user": "human", "assistant": "gpt"}, default=None).alias("from"),
        pl.element().struct.field("content").alias("value"),
    )
    return frame.with_columns(pl.col("messages").list.eval(turn)).rename({"messages": "conversations"})


def compute_stats(paths: list[Path], names: list[str],
                  count_tokens: Callable[[list[str]], np.ndarray] | None = None) -> DatasetStats:
    """Statistics per recipe source over the shards at ``paths``; ``names`` are the manifest's sources, in order.
    Turn lengths are in characters, or in tokens when ``count_tokens`` (texts -> token counts) is given."""
    schema = shared_schema(paths)
    source_type = pl.Enum(names)
    role_type = pl.Enum(list(ROLES))
    row_parts, turn_parts, template_parts, pair_parts = [], [], [], []
    num_bytes = 0
    for path, frame, nbytes in _read_groups(paths, names):
        num_bytes += nbytes
        frame = _as_conversations(frame).with_columns(pl.col("recipe_source").cast(source_type))
        # One row per conversation: only its turn count is kept whole; the rest is aggregated per row group.
        row_parts.append(frame.select("recipe_source", pl.col("conversations").list.len().alias("turns")))
        template_parts.append(
            frame.with_columns(_shot_kind().alias("shot_kind"))
            .group_by("recipe_source", "template_id", "template_type", "shot_kind")
            .agg(
                pl.len().alias("rows"),
                pl.col("num_shots").sum().alias("shots"),
                pl.col("num_shots").count().alias("shot_rows"),  # non-null counts only
            )
        )
        pair_parts.append(frame.select("recipe_source", "source").unique())
        turns = frame.select("recipe_source", "conversations").explode("conversations").select(
            "recipe_source",
            pl.col("conversations").struct.field("from").alias("role"),
            pl.col("conversations").struct.field("value").str.len_chars().alias("chars"),
        )
        if count_tokens is not None:
            values = frame.select(pl.col("conversations").explode().struct.field("value"))["value"]
            turns = turns.with_columns(pl.Series("chars", count_tokens(values.fill_null("").to_list())))
        bad = turns.filter(~pl.col("role").is_in(ROLES) | pl.col("role").is_null())
        if bad.height:
            raise FlanMiniError(
                f"{path}: conversation turn role {bad['role'][0]!r} is not one of {list(ROLES)}; "
                "the shard does not follow the output schema."
            )
        turn_parts.append(turns.with_columns(pl.col("role").cast(role_type)))

    if not row_parts:
        raise FlanMiniError("no Parquet shards to describe")
    rows = pl.concat(row_parts)
    turns = pl.concat(turn_parts)
    templates = pl.concat(template_parts)
    pairs = pl.concat(pair_parts).unique()

    lengths: dict[tuple[str, str], np.ndarray] = {}
    for (name, role), part in turns.partition_by(["recipe_source", "role"], as_dict=True).items():
        lengths[(str(name), str(role))] = part["chars"].to_numpy()

    def describe(name: str, row_filter: pl.Expr) -> SourceStats:
        mine = templates.filter(row_filter)
        by_id = mine.drop_nulls("template_id").group_by("template_id").agg(pl.col("rows").sum())
        by_type = mine.drop_nulls("template_type").group_by("template_type").agg(pl.col("rows").sum())
        by_kind = dict(mine.group_by("shot_kind").agg(pl.col("rows").sum()).iter_rows())
        few = mine.filter(pl.col("shot_kind") == "few")
        shot_total, shot_rows = few["shots"].sum(), few["shot_rows"].sum()
        role_turns = turns.filter(row_filter)
        return SourceStats(
            name=name,
            rows=int(rows.filter(row_filter).height),
            distinct_sources=int(pairs.filter(row_filter)["source"].n_unique()),
            # Most used first; ties broken by id so the card is stable.
            templates={k: int(v) for k, v in sorted(by_id.iter_rows(), key=lambda kv: (-kv[1], kv[0]))},
            template_types={k: int(v) for k, v in sorted(by_type.iter_rows())},
            zero_shot=int(by_kind.get("zero", 0)),
            few_shot=int(by_kind.get("few", 0)),
            untemplated=int(by_kind.get("none", 0)),
            mean_shots=float(shot_total / shot_rows) if shot_rows else None,
            turns=Summary.of(rows.filter(row_filter)["turns"].to_numpy()),
            prompt_chars=Summary.of(role_turns.filter(pl.col("role") == "human")["chars"].to_numpy()),
            response_chars=Summary.of(role_turns.filter(pl.col("role") == "gpt")["chars"].to_numpy()),
        )

    per_source = [describe(name, pl.col("recipe_source") == name) for name in names]
    return DatasetStats(
        schema=schema,
        rows=rows.height,
        num_bytes=num_bytes,
        sources=per_source,
        total=describe("all", pl.lit(True)),
        lengths=lengths,
        unit="characters" if count_tokens is None else "tokens",
    )
