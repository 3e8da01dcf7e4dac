"""Decontaminate an existing dataset folder: report on its shards, or write a cleaned copy in the Hub's layout."""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_folder, check_apart
from ..dedup.folder import DEFAULT_SHARD_BYTES, find_splits, read_split
from ..errors import FlanMiniError
from ..shards import write_shards
from .config import DecontamConfig
from .report import MATCHES_FILE, summarize, with_flags, write_matches
from .stage import Decontaminator, text_spec

REPORT_FILE = "decontam_report.json"


def _splits(folder: Path) -> dict[str, list[Path]]:
    splits = find_splits(folder)
    splits = {name: [p for p in paths if p.name != MATCHES_FILE] for name, paths in splits.items()}
    return {name: paths for name, paths in splits.items() if paths}


def _stream(paths: list[Path], columns: list[str], batch_rows: int):
    """The split's rows in order, a batch at a time, reading only the columns the scan needs."""
    for path in paths:
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as err:
            raise FlanMiniError(f"{path}: cannot be read as Parquet: {err}") from None
        present = [c for c in columns if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
            yield batch


def decontaminate_folder(
    in_dir: Path,
    config: DecontamConfig,
    *,
    base_dir: Path,
    out_dir: Path | None = None,
    columns: list[str] | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    target_shard_bytes: int = DEFAULT_SHARD_BYTES,
    engine: Decontaminator | None = None,
    executor=None,
) -> dict:
    """Check every split of ``in_dir`` against the benchmarks; return the report (per split, as in the manifest).

    Without ``out_dir`` nothing is written and the shards are streamed (bounded memory). With it, the rows that
    match no benchmark item are written to ``out_dir/data/{split}-*.parquet`` (every column kept), with
    ``decontam_matches.parquet`` and ``decontam_report.json``, through a temporary folder renamed at the end.
    The compared text is ``columns`` (string columns joined by newlines) or the ``conversations`` turns chosen
    by ``config.compare``. Benchmark paths resolve against ``base_dir``. ``executor``: where the batches are
    scanned (see ``Decontaminator.scan``; default this process's threads).
    """
    started = time.perf_counter()
    in_dir = Path(in_dir)
    if out_dir is not None:
        out_dir = Path(out_dir)
        if out_dir.resolve() == in_dir.resolve():
            raise FlanMiniError(f"{out_dir}: the output folder must differ from the input folder")
        if nested := check_apart(out_dir, {"the input folder": in_dir}):
            raise FlanMiniError(nested[0])
        if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
            raise FlanMiniError(f"{out_dir}: exists and is not empty (choose another folder, or pass --overwrite)")
    splits = _splits(in_dir)
    engine = engine or Decontaminator.load(config, base_dir)
    spec = text_spec(config, tuple(columns or ()))
    needed = [*spec.input_columns(), "id", "recipe_source"]
    removing = out_dir is not None
    report: dict = {"input": str(in_dir), "benchmark_seconds": {k: round(v, 3) for k, v in engine.seconds.items()},
                    "splits": {}}
    with atomic_folder(out_dir) if out_dir is not None else nullcontext() as staging:
        all_matches = []
        for split, paths in splits.items():
            if staging is None:
                result = engine.scan(_stream(paths, needed, config.batch_rows), spec, workers=workers,
                                     executor=executor)
                table = None
            else:
                table = read_split(paths)
                result = engine.scan_table(table, spec, workers=workers, executor=executor)
            flagged = with_flags(result.matches, removed=removing, written_ids=None)
            entry = {"inputs": [str(p) for p in paths], "rows_in": result.rows, **summarize(engine, result, flagged),
                     "seconds": round(result.seconds, 3)}
            if table is not None:
                drop = np.zeros(table.num_rows, bool)
                drop[result.matches.column("_row").to_numpy()] = True
                kept = table.filter(pa.array(~drop))
                shards = write_shards(kept, staging, target_shard_bytes=target_shard_bytes, split=split)
                entry.update(rows_out=kept.num_rows, shards=[s.to_dict() for s in shards])
            report["splits"][split] = entry
            all_matches.append(flagged.add_column(0, "split", pa.array([split] * flagged.num_rows, pa.string())))
        report["seconds"] = round(time.perf_counter() - started, 3)
        if staging is not None:
            report["matches_file"] = write_matches(pa.concat_tables(all_matches), staging)
            (staging / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report
