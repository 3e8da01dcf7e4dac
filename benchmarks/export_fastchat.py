"""FastChat JSON export benchmark: write flan_mini.json from a folder of shards, and read it back as FastChat does.

Makes (in a temporary folder) zstd shards of `--rows` synthetic conversations shaped like FLAN-MINI's rows
(1-3 exchanges, prompts of ~600 characters, answers of ~400, some non-ASCII), then times
`write_fastchat_json` over them, and `json.load` of the result (FastChat's loader), and prints rows/s,
MB/s and the peak RSS of the export, measured in a fresh process.

    python benchmarks/export_fastchat.py                   # 200,000 rows
    python benchmarks/export_fastchat.py --rows 1340153    # the release's size (needs ~4 GB of disk)
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from flan_mini.shards import OUTPUT_SCHEMA, shard_paths, write_shards


def make_shards(folder: Path, rows: int) -> None:
    rng = random.Random(0)
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyzéü", k=rng.randint(2, 9))) for _ in range(3000)]
    pool = " ".join(rng.choices(words, k=400_000))
    conversations = []
    for _ in range(rows):
        turns = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            start = rng.randrange(len(pool) - 2000)
            turns.append({"from": "human", "value": pool[start : start + int(rng.lognormvariate(6.2, 0.6))]})
            start = rng.randrange(len(pool) - 2000)
            turns.append({"from": "gpt", "value": pool[start : start + int(rng.lognormvariate(5.8, 0.8))] + '\n"ok"'})
        conversations.append(turns)
    table = pa.Table.from_pydict({
        "id": [f"src-{i:016x}" for i in range(rows)], "source": ["bench"] * rows, "conversations": conversations,
        "recipe_source": ["bench"] * rows, "template_id": [None] * rows, "template_type": [None] * rows,
        "num_shots": [None] * rows, "source_id": [str(i) for i in range(rows)],
    }, schema=OUTPUT_SCHEMA)
    write_shards(table, folder, target_shard_bytes=256 * 1000**2)


def _peak_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child started by
    the parent (which held the generated rows) would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(folder: Path) -> None:
    from flan_mini.export_fastchat import write_fastchat_json

    clock = time.perf_counter()
    entry = write_fastchat_json(folder, shard_paths(folder))
    seconds = time.perf_counter() - clock
    peak = _peak_mb()
    print(json.dumps({"seconds": seconds, "rows": entry["rows"], "bytes": entry["bytes"], "peak_mb": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_shards(folder, args.rows)
        shard_bytes = sum(p.stat().st_size for p in shard_paths(folder))
        out = subprocess.run([sys.executable, __file__, "--child", str(folder)], check=True, capture_output=True, text=True)
        result = json.loads(out.stdout)
        clock = time.perf_counter()
        with open(folder / "flan_mini.json") as handle:
            loaded = json.load(handle)
        load_seconds = time.perf_counter() - clock
        assert len(loaded) == result["rows"] == args.rows
    mb = result["bytes"] / 1e6
    print(f"rows {result['rows']:,}; shards {shard_bytes / 1e6:,.1f} MB (zstd); flan_mini.json {mb:,.1f} MB")
    print(f"export: {result['seconds']:.2f} s, {result['rows'] / result['seconds']:,.0f} rows/s, "
          f"{mb / result['seconds']:,.0f} MB/s, peak RSS {result['peak_mb']:,.0f} MB")
    print(f"json.load (FastChat's loader): {load_seconds:.2f} s")


if __name__ == "__main__":
    main()
