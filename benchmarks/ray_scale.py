"""The paper build on the local executor and on Ray: wall time and peak memory per process, same bytes.

Reuses benchmarks/build_scale.py's synthetic sources (cached under benchmarks/.cache/scale/) and recipe (the
paper's mixture with dedup), and runs `flan-mini build` for each size in a fresh process three ways:
- local: `--executor local` (this process's threads);
- ray: `--executor ray` (a local cluster started by the build, loopback, no dashboard; its start is timed);
- ray 2 nodes: `--executor ray --ray-address ADDR`, joining a cluster of two simulated nodes (one CPU each,
  ray.cluster_utils.Cluster, started here beforehand and not timed).
While each runs, every process under this one is sampled with psutil every 200 ms: the build process
(driver), Ray's worker processes (tasks) and the others (Ray's raylet, GCS, object store; locally dedup's
forked processes). Printed per run: wall time, the driver's peak RSS, the largest task process's peak RSS and
private memory (RssAnon: RSS less pages shared with other processes, such as the object store's), the largest
other process, the peak of all of them together, and whether the shards are byte-identical to the local run's.

Then shard writing alone (shards.write_shards on the last local build's rows, shuffled), on the two-node
cluster: each task gathering its rows from the table shared once ("task") against the driver gathering
each shard and sending it ("driver"), and locally; and the dedup memory curve of benchmarks/ray_dedup.py.

    python benchmarks/ray_scale.py --sizes 0.1            # about 10 minutes on 2 busy cores
    python benchmarks/ray_scale.py --sizes 1.34 --runs local ray
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks import build_scale
from benchmarks.proc_memory import rss_anon

ROOT = build_scale.ROOT
CACHE = build_scale.CACHE
MIB = 1 << 20


def _kind(process: psutil.Process, driver: int | None) -> str:
    if process.pid == driver:
        return "driver"
    try:
        line = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "other"
    if "default_worker.py" in line or line.startswith("ray::"):
        return "worker"
    return "ray"


class Sampler:
    """Peak RSS per kind of process (and of all together) under this process, sampled every `every` seconds."""

    def __init__(self, every: float = 0.2, cluster: bool = True):
        # cluster=False: only the driver's own process tree (not a cluster started here beforehand and idle)
        self.every, self.driver, self.cluster = every, None, cluster
        self.peaks = {"driver": 0, "worker": 0, "worker_anon": 0, "ray": 0, "total": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            if self.driver == me.pid:
                processes = [me, *me.children(recursive=True)]
            elif self.cluster or self.driver is None:
                processes = me.children(recursive=True)
            else:
                try:
                    root = psutil.Process(self.driver)
                    processes = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    processes = []
            for process in processes:
                try:
                    rss = process.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                kind = _kind(process, self.driver)
                total += rss
                if kind in self.peaks:
                    self.peaks[kind] = max(self.peaks[kind], rss)
                if kind == "worker":
                    self.peaks["worker_anon"] = max(self.peaks["worker_anon"], rss_anon(process.pid))
            self.peaks["total"] = max(self.peaks["total"], total)
            self._stop.wait(self.every)


def run_build(recipe: Path, out: Path, workers: int, extra: list[str], cluster: bool) -> dict:
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "flan_mini", "build", str(recipe), "--out", str(out), "--workers", str(workers),
               "-q", *extra]
    with Sampler(cluster=cluster) as sampler:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler.driver = process.pid
        stdout, stderr = process.communicate()
        wall = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"build failed ({' '.join(extra) or 'local'}):\n{stderr[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {"rows": manifest["output"]["rows"], "wall": wall, **{k: v / MIB for k, v in sampler.peaks.items()},
            "shards": [s["sha256"] for s in manifest["output"]["shards"]], "stages": manifest["stages"]}


def start_two_nodes(temp: Path, object_store_gib: float):
    """Two simulated nodes of one CPU each on loopback; returns the Cluster (not connected to this process)."""
    from flan_mini.executor_ray import loopback_only

    loopback_only()
    (temp / "ray").mkdir(parents=True, exist_ok=True)
    os.environ["RAY_TMPDIR"] = str(temp)  # the cluster's address file, away from the machine-wide /tmp/ray
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": int(object_store_gib * (1 << 30)), "temp_dir": str(temp / "ray")}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    return cluster


def write_only(folder: Path, cluster, shard_size: int, temp: Path) -> tuple:
    """shards.write_shards on a built folder's rows (read back, shuffled), locally and on the cluster."""
    import numpy as np
    import pyarrow as pa
    import ray

    from flan_mini.executor import LocalExecutor
    from flan_mini.executor_ray import RayExecutor
    from flan_mini.shards import read_shards, write_shards

    table = read_shards(folder)
    table = pa.concat_tables([table.slice(i, 10_000) for i in range(0, table.num_rows, 10_000)])  # chunked, as built
    order = np.random.default_rng(0).permutation(table.num_rows)
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    ray_executor = RayExecutor(address=cluster.address)
    rows, digests = [], {}
    for label, executor, gather_on in [("local, 1 thread", None, "task"), ("local, 2 threads", LocalExecutor(2), "task"),
                                       ("ray 2 nodes, gather in task", ray_executor, "task"),
                                       ("ray 2 nodes, gather on driver", ray_executor, "driver")]:
        with tempfile.TemporaryDirectory(dir=temp) as out, Sampler() as sampler:
            sampler.driver = os.getpid()  # this process is the driver here (it holds the table: its base RSS)
            start = time.perf_counter()
            shards = write_shards(table, Path(out), target_shard_bytes=shard_size, rows=order, executor=executor,
                                  gather_on=gather_on)
            wall = time.perf_counter() - start
        digests[label] = [s.sha256 for s in shards]
        rows.append((label, len(shards), wall, sampler.peaks["driver"] / MIB, sampler.peaks["worker"] / MIB,
                     sampler.peaks["worker_anon"] / MIB))
    ray.shutdown()
    same = len({tuple(d) for d in digests.values()}) == 1
    return rows, table.num_rows, same


def print_builds(results: list) -> None:
    names = {"local": "local", "ray": "ray (local cluster)", "ray2": "ray (2 nodes)"}
    # tasks: Ray's worker processes; other: the largest other process (Ray's raylet / GCS / object store, or, in a
    # local build, dedup's forked signature processes); all: the sum of every RSS (shared pages counted each time).
    print(f"{'rows out':>10}  {'executor':<20} {'wall s':>7} {'x local':>7} {'driver MiB':>10} {'tasks MiB':>10} "
          f"{'t. private':>10} {'other':>8} {'all MiB':>8}  shards")
    base = {size: r for size, run, r in results if run == "local"}
    for size, run, r in results:
        ref = base.get(size)
        ratio = f"{r['wall'] / ref['wall']:>7.2f}" if ref else f"{'':>7}"
        same = "" if not ref else ("identical" if r["shards"] == ref["shards"] else "DIFFER")
        print(f"{r['rows']:>10,}  {names[run]:<20} {r['wall']:>7.1f} {ratio} {r['driver']:>10,.0f} {r['worker']:>10,.0f} "
              f"{r['worker_anon']:>10,.0f} {r['ray']:>8,.0f} {r['total']:>8,.0f}  {same}")
    for size, run, r in results:
        if run == "local":
            print(f"{size}M rows: shard sha256 " + " ".join(r["shards"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 1.34], help="output sizes, millions of rows")
    parser.add_argument("--runs", nargs="+", default=["local", "ray", "ray2"], choices=["local", "ray", "ray2"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--object-store-gib", type=float, default=2.0, help="per simulated node")
    parser.add_argument("--dedup-sizes", type=float, nargs="*", default=[1.0],
                        help="millions of documents for benchmarks/ray_dedup.py's curve (none: skip it)")
    args = parser.parse_args()

    build_scale.generate_flan()
    build_scale.generate_code_contests()
    build_scale.generate_apps()
    build_scale.generate_code_search_net()
    build_scale.generate_alpaca()
    sharegpt_file = build_scale.generate_sharegpt()
    from benchmarks.sharegpt import TOKENIZER as tokenizer

    # Outputs and the two-node cluster's files; short: Ray's socket paths are limited to 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="fmrs", dir="/tmp"))
    cluster = start_two_nodes(temp, args.object_store_gib) if {"ray2"} & set(args.runs) else None
    results, write_rows = [], None
    try:
        for size in args.sizes:
            scale = 1.0 if abs(size - 1.34) < 1e-9 else size * 1e6 / build_scale.PAPER
            recipe = build_scale.write_recipe(scale, args.workers, sharegpt_file, tokenizer)
            for run in args.runs:
                extra = {"local": ["--executor", "local"], "ray": ["--executor", "ray"],
                         "ray2": ["--executor", "ray", "--ray-address", cluster.address if cluster else ""]}[run]
                out = temp / f"out-{size}-{run}"
                print(f"building {size}M rows: {run}", file=sys.stderr, flush=True)
                results.append((size, run, run_build(recipe, out, args.workers, extra, cluster=run == "ray2")))
                if run != "local" or size != args.sizes[-1] or cluster is None:
                    shutil.rmtree(out, ignore_errors=True)
        print_builds(results)
        last = temp / f"out-{args.sizes[-1]}-local"
        if cluster is not None and last.exists():
            print("writing shards alone", file=sys.stderr, flush=True)
            write_rows = write_only(last, cluster, 64 * MIB, temp)
            shutil.rmtree(last, ignore_errors=True)
    finally:
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)

    if write_rows:
        rows, count, same = write_rows
        print(f"\nwrite_shards alone, {count:,} rows, 64 MB shards ({'identical bytes' if same else 'bytes DIFFER'}):")
        print(f"  {'how':<30} {'shards':>6} {'wall s':>7} {'driver MiB':>11} {'worker MiB':>10} {'w. private':>10}")
        for label, shards, wall, driver, worker, anon in rows:
            print(f"  {label:<30} {shards:>6} {wall:>7.2f} {driver:>11,.0f} {worker:>10,.0f} {anon:>10,.0f}")

    print("\ndedup memory as documents grow (benchmarks/ray_dedup.py):")
    try:
        from benchmarks import ray_dedup
    except ImportError:
        print("  not available")
        return
    if args.dedup_sizes:
        print(ray_dedup.format_curve(ray_dedup.dedup_curve(sizes=args.dedup_sizes, workers=args.workers)))
    else:
        print("  skipped (--dedup-sizes)")


if __name__ == "__main__":
    main()
