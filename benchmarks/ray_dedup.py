"""Benchmark: dedup's memory as documents grow, on the local path and partitioned on Ray.

    python benchmarks/ray_dedup.py                          # 1M, 5M and 10M documents, local and ray
    python benchmarks/ray_dedup.py --sizes 1 5 --executors ray --workers 2

The corpus is benchmarks/dedup.py's (~500-character documents, 10% planted near and exact copies), made in
chunks of 250k documents (copies planted within a chunk) and written once to Parquet files with row groups
of 16k rows under --cache; a size of S million uses the first 4*S chunks. Each run is a subprocess:
- local: the files read into one table, then ``deduplicate`` on --workers forked processes (today's path:
  every row's band keys and the text in the driver);
- ray: a local Ray cluster (loopback, no dashboard, --workers CPUs, its start not timed), and
  ``deduplicate(ParquetBatches(..., id_column="id"))`` runs partitioned (partitioned.py): tasks read their row
  groups' ids and sort the keep order in ranges (keep_rank.py), sketch and scatter band records into
  partitions, partition tasks pair, tasks verify the candidate pairs; the driver keeps sparse results and one
  byte per row (the keep mask; the source codes, one source here).
Printed per run: wall time (reading included), documents/s, the driver's peak RSS, the largest peak RSS of any
other process (Ray's workers, raylet and object store; the forked workers locally; a worker's RSS counts the
object store pages it read) and the largest private memory of any other process (RssAnon: RSS less shared
pages, such as the object store's, that several processes map; what the process itself allocated),
sampled every 200 ms with psutil; and whether the ray run removed exactly the rows the local run removed and
wrote the same clusters file (sha256).

``dedup_curve(sizes, executors, workers)`` returns the rows and ``format_curve(rows)`` the table, for
benchmarks/ray_scale.py to print the same figures.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import collections
import hashlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.proc_memory import rss_anon

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "ray_dedup"
CHUNK = 250_000
ROW_GROUP = 16_384


def _bench_dedup():
    """benchmarks/dedup.py as a module (this folder is off sys.path: see _path.py)."""
    spec = importlib.util.spec_from_file_location("bench_dedup", HERE / "dedup.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_dedup", module)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- corpus


def chunk_paths(millions: float, cache: Path) -> list[Path]:
    """The Parquet chunks of a corpus of ``millions`` documents, made on first use (each in a subprocess)."""
    count = max(1, round(millions * 1_000_000 / CHUNK))
    paths = [cache / f"chunk-{k:03d}.parquet" for k in range(count)]
    for k, path in enumerate(paths):
        if not path.exists():
            subprocess.run([sys.executable, __file__, "--make-chunk", str(k), "--cache", str(cache)], check=True)
    return paths


def make_chunk(k: int, cache: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table, _ = _bench_dedup().make_corpus(CHUNK, seed=1000 + k)
    ids = pa.array([f"doc-{k:03d}-{i:06d}" for i in range(table.num_rows)], pa.string())
    table = table.set_column(table.schema.get_field_index("id"), "id", ids)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"chunk-{k:03d}.parquet.partial"
    pq.write_table(table.select(["id", "conversations"]), partial, row_group_size=ROW_GROUP, compression="zstd")
    partial.rename(cache / f"chunk-{k:03d}.parquet")


# ---------------------------------------------------------------- memory


class ProcessPeaks:
    """Peak RSS and RssAnon of this process and of every descendant (Ray's raylet and workers are children of
    a driver that started the cluster; forked workers are children too), sampled every 200 ms."""

    def __init__(self):
        import psutil

        self.me = psutil.Process()
        self.rss: dict[int, int] = collections.defaultdict(int)
        self.anon: dict[int, int] = collections.defaultdict(int)
        self.names: dict[int, str] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            try:
                processes = [self.me, *self.me.children(recursive=True)]
            except Exception:
                processes = [self.me]
            for process in processes:
                try:
                    rss = process.memory_info().rss
                    if rss > self.rss[process.pid]:  # named at its peak: a Ray worker's title is its task
                        title = (process.cmdline() or [""])[0]
                        self.names[process.pid] = title if title.startswith("ray::") else process.name()
                except Exception:
                    continue
                self.rss[process.pid] = max(self.rss[process.pid], rss)
                self.anon[process.pid] = max(self.anon[process.pid], rss_anon(process.pid))
            self.stop.wait(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def summary(self) -> dict:
        me = self.me.pid
        others = {pid: rss for pid, rss in self.rss.items() if pid != me}
        top = max(others, key=others.get) if others else None
        private = {pid: anon for pid, anon in self.anon.items() if pid != me}
        top_private = max(private, key=private.get) if private else None
        return {"driver_rss": self.rss.get(me, 0), "driver_anon": self.anon.get(me, 0),
                "other_rss": others.get(top, 0), "other_process": self.names.get(top, ""),
                "other_anon": private.get(top_private, 0), "other_anon_process": self.names.get(top_private, ""),
                "largest_anon": max(self.anon.values(), default=0), "processes": len(self.rss)}


# ---------------------------------------------------------------- one run (a subprocess)


def _ray_executor(workers: int):
    from flan_mini.executor import make_executor

    return make_executor("ray", workers=workers), "flan_mini.executor_ray"


def run_one(millions: float, executor_name: str, workers: int, cache: Path, mode: str) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flan_mini.dedup.config import DedupConfig
    from flan_mini.dedup.partition import ParquetBatches
    from flan_mini.dedup.report import write_clusters
    from flan_mini.dedup.stage import deduplicate
    from flan_mini.dedup.texts import TextSpec

    paths = [str(p) for p in chunk_paths(millions, cache)]
    config = DedupConfig(mode=mode)
    spec = TextSpec()
    executor, started_in, which = None, 0.0, "local (forked processes)"
    if executor_name == "ray":
        clock = time.perf_counter()
        executor, which = _ray_executor(workers)
        started_in = time.perf_counter() - clock
    with ProcessPeaks() as peaks:
        clock = time.perf_counter()
        if executor is None:
            table = pa.concat_tables([pq.read_table(p) for p in paths])
            ids, source = table.column("id"), table
            options = {"workers": workers}
        else:
            # The driver's Arrow memory from the system allocator, which gives freed memory back (the default,
            # mimalloc, keeps the peak of what the driver's few per-row steps took).
            pa.set_memory_pool(pa.system_memory_pool())
            # The tasks read the ids too (no _order column: a row's position is its order, as locally).
            source = ParquetBatches(paths, tuple(spec.input_columns()), id_column="id")
            ids = None
            options = {"executor": executor}
        result = deduplicate(source, spec, config, sources=None, order=None if ids is None else
                             np.arange(len(ids), dtype=np.int64), ids=ids, **options)
        n = len(result.keep)
        seconds = time.perf_counter() - clock
    if executor is not None:
        executor.close()
    with tempfile.TemporaryDirectory() as folder:
        clusters = write_clusters(result.clusters, Path(folder))["sha256"]
    keep = np.asarray(result.keep.to_numpy(zero_copy_only=False), bool)
    return {"docs": n, "executor": executor_name, "ran_on": which, "workers": workers, "seconds": seconds,
            "cluster_start": started_in, "removed": int((~keep).sum()),
            "removed_sha": hashlib.sha256(np.packbits(~keep).tobytes()).hexdigest(), "clusters_sha": clusters,
            "steps": {k: round(v, 1) for k, v in result.seconds.items()}, **peaks.summary()}


# ---------------------------------------------------------------- the curve


def dedup_curve(sizes=(1, 5, 10), executors=("local", "ray"), workers: int = 2, cache: Path = CACHE,
                mode: str = "exact") -> list[dict]:
    """One subprocess per (size in millions, executor); returns their figures (see run_one)."""
    rows = []
    for millions in sizes:
        chunk_paths(millions, Path(cache))
        for name in executors:
            command = [sys.executable, __file__, "--run", str(millions), "--executor", name, "--workers",
                       str(workers), "--cache", str(cache), "--mode", mode]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                rows.append({"docs": int(millions * 1e6), "executor": name, "error": done.stderr.strip()[-400:]})
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def format_curve(rows: list[dict]) -> str:
    gib = 1 << 30
    lines = ["| docs | executor | wall s | docs/s | driver peak RSS (private) | largest other process "
             "| largest other private (RssAnon) | removed | same as local |",
             "|---|---|---|---|---|---|---|---|---|"]
    local = {r["docs"]: r for r in rows if r.get("executor") == "local" and "error" not in r}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['docs']:,} | {r['executor']} | failed: {r['error']} |")
            continue
        base = local.get(r["docs"])
        same = "-" if r["executor"] == "local" or base is None else (
            "yes" if (base["removed_sha"], base["clusters_sha"]) == (r["removed_sha"], r["clusters_sha"]) else "NO")
        lines.append(
            f"| {r['docs']:,} | {r['executor']} | {r['seconds']:.1f} | {r['docs'] / r['seconds']:,.0f} "
            f"| {r['driver_rss'] / gib:.2f} GiB ({r['driver_anon'] / gib:.2f}) | {r['other_rss'] / gib:.2f} GiB ({r['other_process'].strip()}) "
            f"| {r['other_anon'] / gib:.2f} GiB ({r['other_anon_process'].strip()}) | {r['removed']:,} | {same} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 5, 10], help="millions of documents")
    parser.add_argument("--executors", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", default="exact", choices=["exact", "datasketch"])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--run", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--executor", help=argparse.SUPPRESS)
    parser.add_argument("--make-chunk", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_chunk is not None:
        make_chunk(args.make_chunk, args.cache)
        return
    if args.run is not None:
        print(json.dumps(run_one(args.run, args.executor, args.workers, args.cache, args.mode)))
        return
    rows = dedup_curve(args.sizes, args.executors, args.workers, args.cache, args.mode)
    print(format_curve(rows))
    for r in rows:
        if "error" not in r:
            print(f"{r['docs']:,} {r['executor']} ({r['ran_on']}): steps {r['steps']}, cluster start "
                  f"{r['cluster_start']:.1f} s, {r['processes']} processes sampled; removed rows sha256 "
                  f"{r['removed_sha'][:16]}, clusters file sha256 {r['clusters_sha'][:16]}")


if __name__ == "__main__":
    main()
