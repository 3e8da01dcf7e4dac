"""Dedup a folder of Parquet shards into a new folder in the Hub's layout, with clusters and a report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_folder, check_apart
from ..decontam.report import MATCHES_FILE
from ..errors import FlanMiniError
from ..manifest import MANIFEST, stage_files
from ..shards import DATA_DIR, REPORTS_DIR, write_shards
from .config import DedupConfig
from .report import CLUSTERS_FILE, write_clusters
from .stage import deduplicate
from .texts import TextSpec

REPORT_FILE = "dedup_report.json"
DEFAULT_SHARD_BYTES = 256 << 20


def find_splits(folder: Path) -> dict[str, list[Path]]:
    """Shards per split: ``data/{split}-*.parquet`` (the Hub's layout) or, failing that, every ``*.parquet``
    under the folder as one "train" split, except stage reports (anything under ``reports/``, the stage files
    the folder's manifest lists, an older build's top-level clusters file). Sorted, so row positions are stable."""
    folder = Path(folder)
    splits: dict[str, list[Path]] = {}
    for path in sorted((folder / DATA_DIR).glob("*-*.parquet")):
        split = path.name.split("-", 1)[0]
        splits.setdefault(split, []).append(path)
    if splits:
        return splits
    reports = _stage_file_paths(folder)
    paths = sorted(
        p for p in folder.rglob("*.parquet")
        if p.relative_to(folder).parts[0] != REPORTS_DIR and p.relative_to(folder).as_posix() not in reports
    )
    if not paths:
        raise FlanMiniError(f"{folder}: no Parquet files (expected data/train-*.parquet or *.parquet files)")
    return {"train": paths}


def _stage_file_paths(folder: Path) -> set[str]:
    """Folder-relative paths of the stage files the folder's manifest lists, plus the top-level clusters and
    matches files older builds wrote. A manifest that cannot be read lists nothing (the folder may not be a build)."""
    listed = {CLUSTERS_FILE, MATCHES_FILE}
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        listed.update(entry["path"] for _, entry in stage_files(manifest) if isinstance(entry.get("path"), str))
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        pass
    return listed


def read_split(paths: list[Path]) -> pa.Table:
    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path))
        except (pa.ArrowException, OSError) as err:
            raise FlanMiniError(f"{path}: cannot be read as Parquet: {err}") from None
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid as err:
        raise FlanMiniError(
            f"{paths[0].parent}: the shards do not share one schema ({err}); dedup them folder by folder"
        ) from None


def dedup_folder(
    in_dir: Path,
    out_dir: Path,
    config: DedupConfig,
    columns: list[str] | None = None,
    workers: int | None = None,
    *,
    priority: list[str] | None = None,
    overwrite: bool = False,
    target_shard_bytes: int = DEFAULT_SHARD_BYTES,
    executor=None,
) -> dict:
    """Write the rows of ``in_dir`` that survive dedup to ``out_dir`` (``data/{split}-*.parquet``, every input
    column kept), plus ``dedup_clusters.parquet`` and ``dedup_report.json``; return the report.

    The compared text is ``columns`` (string columns joined by newlines) or else the ``conversations`` turns
    chosen by ``config.compare``. ``recipe_source``, when present, names the sources (for ``scope``,
    ``keep`` and the per-source counts). Within a source the earlier row (shard order, then row order) is
    kept. Each split is deduplicated on its own (on ``executor`` when given: see ``dedup_table``). Everything
    is written to a temporary folder beside ``out_dir`` and renamed into place at the end, so an interrupted
    run leaves no folder that looks done.
    """
    started = time.perf_counter()
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if out_dir.resolve() == in_dir.resolve():
        raise FlanMiniError(f"{out_dir}: the output folder must differ from the input folder")
    if nested := check_apart(out_dir, {"the input folder": in_dir}):
        raise FlanMiniError(nested[0])
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FlanMiniError(f"{out_dir}: exists and is not empty (choose another folder, or pass --overwrite)")
    splits = find_splits(in_dir)
    spec = TextSpec(compare=config.compare, columns=tuple(columns or ()))
    with atomic_folder(out_dir) as staging:
        report = {"input": str(in_dir), "splits": {}}
        all_clusters = []
        for split, paths in splits.items():
            table = read_split(paths)
            spec.check(table.schema, f"{in_dir} ({split})")
            result = deduplicate(
                table,
                spec,
                config,
                sources=table.column("recipe_source") if "recipe_source" in table.column_names else None,
                order=np.arange(table.num_rows, dtype=np.int64),
                ids=_ids(table),
                priority=priority,
                workers=workers,
                executor=executor,
            )
            kept = table.filter(result.keep)
            shards = write_shards(kept, staging, target_shard_bytes=target_shard_bytes, split=split)
            clusters = result.clusters
            all_clusters.append(clusters.add_column(0, "split", pa.array([split] * clusters.num_rows, pa.string())))
            report["splits"][split] = {
                "inputs": [str(p) for p in paths],
                "rows_in": table.num_rows,
                "rows_out": kept.num_rows,
                "shards": [s.to_dict() for s in shards],
                "stats": result.stats,
                "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
            }
        report["clusters"] = write_clusters(pa.concat_tables(all_clusters), staging)
        report["seconds"] = round(time.perf_counter() - started, 3)
        (staging / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _ids(table: pa.Table) -> pa.Array:
    """The ``id`` column as strings, or "row-<position>" when there is none."""
    if "id" in table.column_names:
        return table.column("id").cast(pa.string())
    return pa.array([f"row-{i}" for i in range(table.num_rows)], pa.string())
