"""Benchmark: the build's write, card and dedup stages on a real built folder (prints figures; not a test).

    nice -n 10 python benchmarks/out_stages.py [--folder /work/prof/out134] [--steps write card dedup] [--workers 2]

Each step runs in a fresh subprocess: it reads the folder's shards into one table (as the build holds its rows),
then times the stage alone and samples its RSS every 20 ms, printing seconds, RSS before, peak RSS during the
stage and the rise; for dedup also the driver's peak RSS per step (sketch, candidates, details, verify, group,
report; windows laid end to end from the stage's own step times) and the peak USS (private memory) of each
forked worker. write: write_shards of
the rows in a seeded shuffled order into a temporary folder (the write stage's call). card: write_card on a
temporary copy of the folder (shards symlinked). dedup: dedup_table with the default config (the folder's rows are
already deduplicated, so it removes nothing: its cost is sketching every row and verifying the candidate pairs).
The folder is only read.
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

from benchmarks.proc_memory import proc_kib


class Sampler:
    """Peak RSS of this process and peak USS of each child process, sampled every 20 ms."""

    def __init__(self):
        self.peak = 0
        self.timeline: list[tuple[float, int]] = []  # (perf_counter, RSS KiB) of every sample
        self.children: dict[int, int] = {}
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        me = os.getpid()
        while self.running:
            rss = proc_kib("/proc/self/status", ("VmRSS",))
            self.peak = max(self.peak, rss)
            self.timeline.append((time.perf_counter(), rss))
            for pid in _children(me):
                uss = proc_kib(f"/proc/{pid}/smaps_rollup", ("Private_Clean", "Private_Dirty"))
                self.children[pid] = max(self.children.get(pid, 0), uss)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    def peak_between(self, start: float, stop: float) -> int:
        return max((rss for at, rss in self.timeline if start <= at <= stop), default=0)


# The dedup stage's steps in the order they run, as named in DedupResult.seconds; what follows the last one
# (cluster table and stats) is "report".
DEDUP_STEPS = ("sketch", "candidates", "details", "verify", "group")


def step_peaks(sampler: Sampler, started: float, seconds: dict) -> dict:
    """Peak driver RSS (MiB) in each step's window, the windows laid end to end from the stage's start (the
    steps run one after the other; "verify" minus "details" is the pair decisions)."""
    peaks, at = {}, started
    for name in DEDUP_STEPS:
        if name not in seconds:
            continue
        length = seconds[name] - seconds.get("details", 0) if name == "verify" else seconds[name]
        peaks[name] = sampler.peak_between(at, at + length) / 1024
        at += length
    peaks["report"] = sampler.peak_between(at, started + seconds["total"]) / 1024
    return peaks


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def step(name: str, folder: Path, workers: int) -> dict:
    import numpy as np
    import pyarrow as pa

    from flan_mini.shards import read_shards

    if name == "card":
        table = None
    else:
        columns = None if name == "write" else ["id", "recipe_source", "conversations"]
        table = read_shards(folder, columns=columns)
    scratch = Path(tempfile.mkdtemp(prefix="out_stages-"))
    try:
        before = proc_kib("/proc/self/status", ("VmRSS",))
        started = time.perf_counter()
        with Sampler() as sampler:
            if name == "write":
                from flan_mini.executor import LocalExecutor
                from flan_mini.shards import write_shards
                from flan_mini.stages.write import shuffled_order

                order = shuffled_order(table.column("id"), 0)
                write_shards(table, scratch, target_shard_bytes=256 << 20, rows=order, executor=LocalExecutor(workers))
            elif name == "card":
                from flan_mini.card import write_card

                for sub in ("data", "reports"):
                    (scratch / sub).mkdir()
                    for file in (folder / sub).iterdir():
                        (scratch / sub / file.name).symlink_to(file)
                shutil.copy(folder / "manifest.json", scratch / "manifest.json")
                write_card(scratch, record_in={})
            else:
                from flan_mini.dedup.config import DedupConfig
                from flan_mini.dedup.stage import dedup_table

                table = table.append_column("_order", pa.array(np.arange(table.num_rows, dtype=np.int64)))
                result = dedup_table(table, DedupConfig(), workers=workers)
                print(f"  dedup: {table.num_rows:,} rows, {int((~result.keep.to_numpy(zero_copy_only=False)).sum()):,} "
                      f"removed; {json.dumps({k: round(v, 2) for k, v in result.seconds.items()})}", flush=True)
                print(f"  dedup lsh: {json.dumps(result.stats.get('lsh', {}))}", flush=True)
                peaks = step_peaks(sampler, started, result.seconds)
                print("  dedup peak RSS per step (MiB): " + ", ".join(f"{k} {v:,.0f}" for k, v in peaks.items()),
                      flush=True)
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"step": name, "seconds": seconds, "rss_before_mib": before / 1024, "peak_mib": sampler.peak / 1024,
            "rise_mib": (sampler.peak - before) / 1024, "worker_uss_mib": [v / 1024 for v in sampler.children.values()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/work/prof/out134"))
    parser.add_argument("--steps", nargs="+", default=["write", "card", "dedup"], choices=["write", "card", "dedup"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(step(args.child, args.folder, args.workers)), flush=True)
        return
    print(f"{'step':<6} {'seconds':>8} {'RSS before':>11} {'peak':>9} {'rise':>8}  worker USS peak (MiB)")
    for name in args.steps:
        out = subprocess.run([sys.executable, __file__, "--folder", str(args.folder), "--workers", str(args.workers),
                              "--child", name], capture_output=True, text=True, check=False)
        lines = out.stdout.splitlines()
        for line in lines:
            if not line.startswith("RESULT "):
                print(line)
        results = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
        if not results:
            print(f"{name}: failed\n{out.stderr[-2000:]}")
            continue
        r = results[0]
        uss = ", ".join(f"{v:,.0f}" for v in r["worker_uss_mib"]) or "-"
        print(f"{name:<6} {r['seconds']:>8.1f} {r['rss_before_mib']:>9,.0f} M {r['peak_mib']:>7,.0f} M "
              f"{r['rise_mib']:>6,.0f} M  {uss}", flush=True)


if __name__ == "__main__":
    main()
