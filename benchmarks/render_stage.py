"""The render stage alone, per source: seconds and the process's peak RSS, on a recipe's selected rows.

Runs the select stage once (not timed), then renders each source as the build does (locally, in this
process), printing per-source seconds, rows, and the process's peak RSS (VmHWM) before and after render,
plus a digest of every rendered table so runs before and after a change can be compared.

    python benchmarks/render_stage.py RECIPE [--only flan2021 apps ...] [--workers 1 2]

With more than one worker, sources render side by side in worker processes (flan_mini/stages/render_processes.py):
only the total is timed then, and the digests must equal the one-worker run's.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import pyarrow as pa


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def digest(table: pa.Table) -> str:
    """Of the values, whatever the chunk layout (rows rendered in a worker come back chunked otherwise)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="render widths to run, one after another on the same selection")
    args = parser.parse_args()

    from flan_mini.executor import LocalExecutor
    from flan_mini.plan import make_plan
    from flan_mini.progress import Reporter
    from flan_mini.recipe import load_recipe
    from flan_mini.stages import render, select
    from flan_mini.stages.contract import Context

    plan = make_plan(load_recipe(args.recipe), out=tempfile.mkdtemp(), only=args.only)
    executor = LocalExecutor(max(args.workers))
    context = Context(plan, executor, Reporter("quiet"), Path(tempfile.mkdtemp()), max(args.workers))
    clock = time.perf_counter()
    selections, _ = select.select(plan, context)
    print(f"select {time.perf_counter() - clock:.1f}s, RSS {rss_mib():,.0f} MiB, peak {peak_mib():,.0f} MiB")
    rows = {s.adapter.config.name: sel.table.num_rows for s, sel in zip(plan.sources, selections)}
    timings = {}
    original = render.render_table

    def timed(adapter, *job):
        clock = time.perf_counter()
        out = original(adapter, *job)
        timings[adapter.config.name] = time.perf_counter() - clock
        return out

    render.render_table = timed  # in this process only: with more than one worker, sources render elsewhere
    for workers in args.workers:
        timings.clear()
        executor.workers = workers
        clock = time.perf_counter()
        mixture, _ = render.render(list(selections), context)  # a copy: render takes the selections off its list
        total = time.perf_counter() - clock
        print(f"--workers {workers}:" + ("" if workers == 1 else " (sources in worker processes: no per-source times)"))
        for candidates in mixture.sources:
            name = candidates.plan.adapter.config.name
            seconds = f"{timings[name]:7.2f}s" if name in timings else "       -"
            print(f"{name:>14} {rows[name]:>9,} rows {seconds}  {digest(candidates.table)}")
        print(f"render {total:.2f}s, RSS {rss_mib():,.0f} MiB, peak {peak_mib():,.0f} MiB (this process), Arrow holds "
              f"{pa.total_allocated_bytes() / 2**20:,.0f} MiB")
        del mixture
    executor.close()


if __name__ == "__main__":
    main()
