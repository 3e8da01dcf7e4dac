"""The output stages: a seeded shuffle of the picked rows, the shards, the files beside them, and the card."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..keys import salt
from ..shards import ShardInfo, to_messages, write_shards
from .candidates import Mixture
from .contract import Context, Stats
from .render import BOOKKEEPING, TASK

WRITTEN_COLUMNS = ["source", "template_id", "template_type", "num_shots", TASK]  # what the manifest counts


@dataclass(frozen=True)
class SourceRecord:
    """What the manifest says about one source once its rows are picked (manifest.source_entry reads it)."""

    plan: object  # plan.SourcePlan
    counts: object  # sample.SourceCounts
    quotas: dict[str, int]
    render_stats: dict
    selected: int  # candidates rendered
    removed: dict[str, int]  # reason -> candidates removed
    final: pa.Table  # the written rows' WRITTEN_COLUMNS

    @property
    def name(self) -> str:
        return self.plan.config.name


@dataclass(frozen=True)
class Assembled:
    """Every source's candidates as one table (no copy) and the shuffled indices of the rows to write."""

    table: pa.Table
    order: np.ndarray
    sources: tuple[SourceRecord, ...]
    dedup: object = None
    decontam: object = None


@dataclass(frozen=True)
class Written:
    """What the output stages wrote into the folder, for the manifest."""

    shards: list[ShardInfo]
    schema: pa.Schema
    written_ids: pa.Array  # small: what the decontamination report flags
    sources: tuple[SourceRecord, ...]
    dedup: object = None
    decontam: object = None
    blocks: dict = field(default_factory=dict)  # manifest blocks of the files beside the shards


def shuffled_order(ids: pa.Array, seed: int) -> np.ndarray:
    """A seeded order of rows that depends only on the rows: sort by id, then permute."""
    by_id = pc.sort_indices(ids).to_numpy()
    generator = np.random.Generator(np.random.PCG64(salt(seed, "shuffle")))
    return by_id[generator.permutation(len(by_id))]


def shuffle(mixture: Mixture, context: Context) -> tuple[Assembled, Stats]:
    """The stage: all picked rows in one seeded order. Shards gather their rows from the candidates when
    written, so the output is never held twice."""
    tables, rows, records, offset = [], [], [], 0
    for item in mixture.sources:
        candidates = item.candidates
        tables.append(candidates.table.drop_columns(list(BOOKKEEPING)))
        rows.append(item.rows + offset)
        offset += candidates.rows
        final = candidates.table.select(WRITTEN_COLUMNS).take(pa.array(item.rows))
        records.append(SourceRecord(candidates.plan, candidates.counts, candidates.quotas, candidates.render_stats,
                                    candidates.rows, candidates.removed_counts(), final))
    every = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    combined = pa.concat_tables(tables, promote_options="permissive")  # (string and large_string -> large_string)
    order = every[shuffled_order(combined.column("id").take(pa.array(every)), context.seed)]
    assembled = Assembled(combined, order, tuple(records), mixture.dedup, mixture.decontam)
    return assembled, Stats(len(every), len(every))


def write(assembled: Assembled, context: Context) -> tuple[Written, Stats]:
    """The stage: the shards, into the build's temporary folder."""
    output = context.recipe.output
    shards = write_shards(
        assembled.table, context.folder, target_shard_bytes=int(output.shard_size), rows=assembled.order,
        transform=to_messages if output.format == "messages" else None, executor=context.executor,
    )
    written_ids = assembled.table.column("id").take(pa.array(assembled.order))
    schema = pq.read_schema(context.folder / shards[0].path)
    rows = sum(shard.rows for shard in shards)
    written = Written(shards, schema, written_ids, assembled.sources, assembled.dedup, assembled.decontam)
    return written, Stats(len(assembled.order), rows)


def reports(written: Written, context: Context) -> tuple[Written, Stats]:
    """The stage: the files beside the shards (dedup clusters, decontamination matches, the FastChat export)
    and their manifest blocks."""
    from ..dedup.report import manifest_entry, write_clusters
    from ..export_fastchat import write_fastchat_json

    folder, blocks = context.folder, {}
    if written.dedup is not None:
        blocks["dedup"] = manifest_entry(written.dedup.stats, write_clusters(written.dedup.clusters, folder))
    if written.decontam is not None:
        blocks["decontamination"] = written.decontam.finish(folder, written.written_ids)
        context.reporter.log(written.decontam.summary_line(blocks["decontamination"]))
    if export_name := context.recipe.output.fastchat_json_name:
        context.reporter.log(f"flan-mini: writing {export_name} for FastChat")
        blocks["exports"] = {"fastchat_json": write_fastchat_json(folder, [folder / s.path for s in written.shards], export_name)}
    rows = len(written.written_ids)
    return dataclasses.replace(written, blocks=blocks), Stats(rows, rows)


def manifest(written: Written, context: Context) -> tuple[dict, Stats]:
    """The stage: manifest.json, built in manifest.py (the stage timings are added when the build ends)."""
    from ..manifest import build_manifest, write_manifest

    result = build_manifest(context.plan, written, context.checksums.result(), context.executor.describe())
    write_manifest(context.folder, result)
    rows = result["output"]["rows"]
    return result, Stats(rows, rows)


def card(manifest_: dict, context: Context) -> tuple[dict, Stats]:
    """The stage: README.md and its figures, from the manifest just written."""
    from ..card import write_card

    context.reporter.log("flan-mini: writing the data card")
    recipe = context.recipe
    # The statistics the card's text shows go into the manifest (written again when the build ends), for push.
    write_card(context.folder, repo_id=recipe.publish.repo_id if recipe.publish else None, record_in=manifest_)
    rows = manifest_["output"]["rows"]
    return manifest_, Stats(rows, rows)
