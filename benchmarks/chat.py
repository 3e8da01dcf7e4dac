"""Chat adapter benchmark: select n conversations from an UltraChat-sized `messages` set, as Parquet and as JSON Lines.

Generates (once, cached under benchmarks/.cache/chat/<records>/) records shaped like
HuggingFaceH4/ultrachat_200k's train_sft (`prompt`, `prompt_id`, `messages` of 1-6 exchanges, questions of
~300 characters, answers of ~1.2 KB), with a system turn in 20% of the records and a tool turn in 2%
(dropped, counted). The same records are written as `data/train_sft-00000-of-00001.parquet` and as
`train_sft.jsonl`.

Each measurement runs `select_source` (the parse, cleaning and scan, then the fetch of the chosen rows)
in a fresh process and reports wall time, rows/s and peak RSS.

    python benchmarks/chat.py                                   # 50K records, both files, n = 25,000
    python benchmarks/chat.py --records 200000 --n 100000       # ultrachat_200k's size (~1.7 GB of JSON Lines)
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "chat"


def files(records: int) -> tuple[Path, Path]:
    folder = CACHE / str(records)
    return folder / "ultrachat" / "data" / "train_sft-00000-of-00001.parquet", folder / "train_sft.jsonl"
RECORDS = 50_000  # a quarter of ultrachat_200k's train_sft: ~0.4 GB of JSON Lines (--records for more)


def generate(count: int) -> None:
    """Write the cached files if they are not there yet (about 20 s per 50K records)."""
    parquet, jsonl = files(count)
    if parquet.exists() and jsonl.exists():
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(2026)
    words = ["".join(rng.choices("etaoinshrdlucmfwypvbgk", k=rng.randint(2, 9))) for _ in range(4000)]

    def text(size: int) -> str:
        out = " ".join(rng.choices(words, k=max(2, size // 6)))
        return out[0].upper() + out[1:] + "."

    records = []
    for index in range(count):
        messages = [{"role": "system", "content": text(120)}] if rng.random() < 0.2 else []
        for _ in range(rng.randint(1, 6)):
            messages.append({"role": "user", "content": text(int(rng.lognormvariate(0, 0.8) * 300))})
            messages.append({"role": "assistant", "content": text(int(rng.lognormvariate(0, 0.8) * 1200))})
        if rng.random() < 0.02:
            messages.insert(2, {"role": "tool", "content": "{\"result\": 42}"})
        records.append({"prompt": messages[-2]["content"], "prompt_id": f"{rng.getrandbits(128):032x}", "messages": messages})
    parquet.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), parquet, compression="zstd")
    with open(jsonl, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"  generated {count:,} records: Parquet {parquet.stat().st_size / 1e6:,.0f} MB, "
          f"JSON Lines {jsonl.stat().st_size / 1e6:,.0f} MB", file=sys.stderr, flush=True)


def measure(kind: str, n: int, records: int) -> dict:
    """Run in a fresh process: select n rows from one file; wall time and peak RSS."""
    from flan_mini.sample import select_source
    from flan_mini.sources.chat import ChatAdapter, ChatConfig
    from flan_mini.sources.files import resolve_local

    parquet, jsonl = files(records)
    path = parquet.parent.parent if kind == "parquet" else jsonl
    config = ChatConfig(name="chat", adapter="chat", path=str(path), split="train_sft", n=n, id_column="prompt_id")
    adapter = ChatAdapter(config)
    start = time.perf_counter()
    inputs = resolve_local(str(path), None, "train_sft", CACHE, adapter.extensions).files
    selection = select_source(adapter, inputs, seed=1234)
    return {
        "seconds": time.perf_counter() - start,
        "rows": selection.counts.rows_read,
        "selected": selection.table.num_rows,
        "scan_seconds": selection.counts.scan_seconds,
        "fetch_seconds": selection.counts.fetch_seconds,
        "rejected": dict(selection.counts.rejected),
        "bytes": sum(f.bytes for f in inputs),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["parquet", "jsonl"], default=["parquet", "jsonl"])
    parser.add_argument("--records", type=int, default=RECORDS, help="records in the generated set")
    parser.add_argument("--n", type=int, default=25_000, help="conversations to select")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.n, args.records)))
        return
    generate(args.records)
    print(f"{args.records:,} UltraChat-like records; n = {args.n:,}")
    print(f"{'file':<8} {'MB':>6} {'seconds':>8} {'rows/s':>8} {'peak RSS MiB':>13}  details")
    for kind in args.only:
        command = [sys.executable, __file__, "--child", kind, "--n", str(args.n), "--records", str(args.records)]
        r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        details = (f"scan {r['scan_seconds']:.1f}s (parse and cleaning included), fetch {r['fetch_seconds']:.2f}s, "
                   f"{r['selected']:,} selected of {r['rows']:,}; dropped {r['rejected']}")
        print(f"{kind:<8} {r['bytes'] / 1e6:>6,.0f} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>8,.0f} "
              f"{r['peak_rss_mib']:>13,.0f}  {details}")


if __name__ == "__main__":
    main()
