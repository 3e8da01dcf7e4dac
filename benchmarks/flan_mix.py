"""FLAN mixing benchmark: how far each way of drawing moves a mixed export's task distribution, and its cost.

Writes a synthetic Flan2021 export in the DataProvenanceInitiative layout (FLAN's mixture already) whose task
sizes fall off like FLAN's: one task holds half the rows, the rest follow a power law. Draws FLAN-MINI's share
of it (388,000 of 5,362,361 rows: 7.2%) through the real selection code, and prints the total-variation
distance between the input's and the output's task distribution:
- as the paper recipe now reads it (mixed export: stratified by task, no caps);
- capped again, as the recipe used to (`task_caps: flan2022` on top; FLAN's 30,000 cap scaled to the size).

    python benchmarks/flan_mix.py               # 500,000 rows
    python benchmarks/flan_mix.py --rows 2000000
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flan_mini.sample import select_source
from flan_mini.sources.files import resolve_local
from flan_mini.sources.flan import FlanAdapter, FlanConfig
from flan_mini.task_distribution import task_distribution

DPI_FLAN2021_ROWS, FLAN_MINI_FLAN2021 = 5_362_361, 388_000


def write_export(folder: Path, rows: int, tasks: int = 70) -> None:
    tail = 1.0 / np.arange(1, tasks) ** 1.1
    sizes = np.r_[rows // 2, np.floor(tail / tail.sum() * (rows - rows // 2))].astype(np.int64)
    sizes[1] += rows - sizes.sum()
    names = np.repeat(np.array([f"task_{i:03d}:1.0.0" for i in range(tasks)], dtype=object), sizes)
    np.random.default_rng(0).shuffle(names)
    (folder / "data").mkdir(parents=True)
    table = pa.table({
        "inputs": pa.array([f"question {i}" for i in range(rows)]), "targets": pa.array([f"answer {i}" for i in range(rows)]),
        "task_source": pa.array(["Flan2021"] * rows), "task_name": pa.array(names.tolist()),
        "template_type": pa.array(["zs_opt"] * rows),
    })
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet", row_group_size=100_000)


def draw(folder: Path, n: int, **options):
    adapter = FlanAdapter(FlanConfig(name="flan2021", adapter="flan", path=str(folder), n=n, **options))
    files = resolve_local(str(folder), None, "train", folder, adapter.extensions).files
    clock = time.perf_counter()
    selection = select_source(adapter, files, seed=2307)
    seconds = time.perf_counter() - clock
    dist = task_distribution(selection.counts.tallied, selection.table.column("task_name"))
    biggest = next(iter(dist["read"]))
    share = dist["written"].get(biggest, 0) / n
    return dist["total_variation"], share, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    n = round(args.rows * FLAN_MINI_FLAN2021 / DPI_FLAN2021_ROWS)
    cap = round(30_000 * args.rows / DPI_FLAN2021_ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_export(folder, args.rows)
        print(f"export: {args.rows:,} rows, 70 tasks, the largest holds 50.0%; drawing n={n:,}")
        for label, options in (("mixed export, as read now (stratified)", {}),
                               (f"capped again (cap {cap:,} = FLAN's 30,000 scaled)", {"task_caps": cap, "already_mixed": False})):
            tv, share, seconds = draw(folder, n, **options)
            print(f"{label:55s} TV {tv:.4f}   largest task {share:6.1%} of the output   {seconds:5.2f} s")


if __name__ == "__main__":
    main()
