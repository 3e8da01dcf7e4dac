"""Selection on 1, 2, ... workers: time, peak RSS, and a digest of the rows chosen (the same on any width).

Reads one FLAN source that benchmarks/build_scale.py generated (benchmarks/.cache/scale/flan_niv2,
four Parquet files; run build_scale once first) and selects from it with `select_source` on a
LocalExecutor of each width, each in a fresh process:

    python benchmarks/select_workers.py                      # widths 1 and 2, n = 20,000
    python benchmarks/select_workers.py --workers 1 2 4 --n 50000 --source flan_p3
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "scale"


def measure(source: str, workers: int, n: int) -> dict:
    import xxhash

    from flan_mini.executor import LocalExecutor
    from flan_mini.sample import KEY, select_source
    from flan_mini.sources.files import resolve_local
    from flan_mini.sources.flan import FlanAdapter, FlanConfig

    folder = CACHE / source
    adapter = FlanAdapter(FlanConfig(name=source, adapter="flan", path=str(folder), data_files="data/*.parquet", n=n,
                                     max_reject_rate=0.2))
    files = resolve_local(str(folder), "data/*.parquet", "train", folder, adapter.extensions).files
    start = time.perf_counter()
    with LocalExecutor(workers) as executor:
        selection = select_source(adapter, files, seed=2307, executor=executor)
    seconds = time.perf_counter() - start
    counts = selection.counts
    return {"workers": workers, "files": len(files), "rows_read": counts.rows_read, "selected": selection.table.num_rows,
            "seconds": seconds, "scan_seconds": counts.scan_seconds, "fetch_seconds": counts.fetch_seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "digest": xxhash.xxh3_64(selection.table.column(KEY).to_numpy().tobytes()).hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--source", default="flan_niv2", help="a folder under benchmarks/.cache/scale")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.source, args.child, args.n)))
        return
    if not (CACHE / args.source / "data").is_dir():
        sys.exit(f"no {CACHE / args.source}: run benchmarks/build_scale.py once first")
    print(f"selecting {args.n:,} rows of {args.source}")
    print(f"{'workers':>7} {'files':>5} {'rows read':>10} {'scan s':>7} {'fetch s':>8} {'total s':>8} {'peak RSS MiB':>13}  digest")
    for workers in args.workers:
        command = [sys.executable, __file__, "--child", str(workers), "--n", str(args.n), "--source", args.source]
        r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"{r['workers']:>7} {r['files']:>5} {r['rows_read']:>10,} {r['scan_seconds']:>7.2f} {r['fetch_seconds']:>8.2f} "
              f"{r['seconds']:>8.2f} {r['peak_rss_mib']:>13,.0f}  {r['digest']}")


if __name__ == "__main__":
    main()
