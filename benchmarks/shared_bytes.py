"""Benchmark: how much of a rebuilt dataset's bytes the Hub can reuse when 1% of its rows change (prints figures).

    python benchmarks/shared_bytes.py --rows 200000 --change 0.01

The Hub stores files with Xet, which cuts each file into content-defined chunks (a gear rolling hash, 64 KiB
average, 8 KiB minimum, 128 KiB maximum) and uploads only chunks it does not already hold. This script writes a
build's shards twice, once as before and once with a scenario's 1% change, and reports the share of the second
build's bytes that are in chunks the first already has, for two writers:

- plain:  zstd, 10,000-row row groups (flan-mini's shards before content-defined chunking);
- cdc:    flan_mini.shards.write_parquet (content-defined pages + page index, the options `datasets` uses).

Scenarios: `edit` rewrites the response of 1% of the rows in place (same ids, same order); `replace` drops 1% of
the rows and inserts as many new ones at random positions (what a reselected source does); `block` replaces 1% of
the rows with new ones in one contiguous run (a change that the final shuffle does not spread); `insert` adds 1%
new rows in one run without removing any, which shifts every later row group boundary. Scattered changes bound what any writer can share: a 64 KiB chunk holds about `r` rows, and
survives with probability (1 - 0.01)^r; the `bound` column prints that figure for the build's bytes per row. Chunking is done here
in numpy with the same gear-hash rule (a window of 64 bytes: a byte's influence leaves the 64-bit hash after 64
shifts, so the hash at each position is a sum over the last 64 bytes), then chunks are compared by sha256.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TARGET, MIN_CHUNK, MAX_CHUNK = 64 * 1024, 8 * 1024, 128 * 1024
MASK = np.uint64(((1 << 16) - 1) << 48)  # 16 high bits zero: one boundary per 64 KiB on average
GEAR = np.random.default_rng(12345).integers(0, 2**63, size=256, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def chunks(data: bytes) -> list[tuple[str, int]]:
    """(sha256, size) of each content-defined chunk of ``data``."""
    raw = np.frombuffer(data, dtype=np.uint8)
    n = len(raw)
    gear = GEAR[raw]
    rolling = np.zeros(n, dtype=np.uint64)
    for k in range(64):  # h_i = sum_k gear[b_(i-k)] << k (mod 2^64), the gear hash after 64 shifts
        rolling[k:] += gear[: n - k] << np.uint64(k)
    candidates = np.flatnonzero((rolling & MASK) == 0) + 1  # cut after this byte
    cuts, start = [], 0
    for cut in candidates.tolist():
        while cut - start > MAX_CHUNK:
            start += MAX_CHUNK
            cuts.append(start)
        if cut - start >= MIN_CHUNK:
            cuts.append(cut)
            start = cut
    while n - start > MAX_CHUNK:
        start += MAX_CHUNK
        cuts.append(start)
    bounds = [0, *cuts] + ([n] if not cuts or cuts[-1] != n else [])
    return [(hashlib.sha256(data[a:b]).hexdigest(), b - a) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def make_rows(count: int, rng: np.random.Generator, start_id: int = 0) -> list[dict]:
    vocabulary = np.array([f"w{i:x}" for i in range(5000)])
    rows = []
    for i in range(count):
        prompt = " ".join(vocabulary[rng.integers(0, 5000, int(rng.integers(20, 120)))])
        answer = " ".join(vocabulary[rng.integers(0, 5000, int(rng.integers(20, 200)))])
        rows.append({"id": f"row-{start_id + i}", "source": "bench", "conversations": [
            {"from": "human", "value": prompt}, {"from": "gpt", "value": answer}],
            "recipe_source": "bench", "template_id": "t/zs_0", "template_type": "zs", "num_shots": 0})
    return rows


def changed(rows: list[dict], scenario: str, share: float, rng: np.random.Generator) -> list[dict]:
    count = max(1, int(len(rows) * share))
    picked = rng.choice(len(rows), size=count, replace=False)
    if scenario == "insert":
        first = int(rng.integers(0, len(rows) // 2))  # early, so most of the build lies after it
        return rows[:first] + make_rows(count, rng, start_id=10**9) + rows[first:]
    if scenario == "block":
        first = int(rng.integers(0, len(rows) - count))
        return rows[:first] + make_rows(count, rng, start_id=10**9) + rows[first + count:]
    if scenario == "edit":
        out = list(rows)
        for i, fresh in zip(picked.tolist(), make_rows(count, rng, start_id=10**9)):
            out[i] = {**rows[i], "conversations": [rows[i]["conversations"][0], fresh["conversations"][1]]}
        return out
    kept = [row for i, row in enumerate(rows) if i not in set(picked.tolist())]
    for row in make_rows(count, rng, start_id=10**9):
        kept.insert(int(rng.integers(0, len(kept) + 1)), row)
    return kept


def write_plain(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", row_group_size=10_000, write_statistics=True, store_schema=True)


def write_build(rows: list[dict], folder: Path, writer, shard_bytes: int) -> list[Path]:
    from flan_mini import shards
    from flan_mini.shards import OUTPUT_SCHEMA, write_shards

    table = pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)
    original = shards.write_parquet
    shards.write_parquet = writer  # the same sharding, only the file writer differs
    try:
        written = write_shards(table, folder, target_shard_bytes=shard_bytes)
    finally:
        shards.write_parquet = original
    return [folder / s.path for s in written]


def shared_share(old: list[Path], new: list[Path]) -> tuple[float, int, int]:
    known = {digest for path in old for digest, _ in chunks(path.read_bytes())}
    total = shared = 0
    for path in new:
        for digest, size in chunks(path.read_bytes()):
            total += size
            shared += size if digest in known else 0
    return shared / max(total, 1), total, total - shared


def main() -> None:
    from flan_mini.shards import write_parquet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--change", type=float, default=0.01, help="share of rows changed")
    parser.add_argument("--shard-mb", type=float, default=64.0, help="in-memory size per shard, MB")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    clock = time.perf_counter()
    base = make_rows(args.rows, rng)
    print(f"{args.rows:,} rows generated in {time.perf_counter() - clock:.1f}s; {args.change:.1%} changed per scenario")
    print(f"{'scenario':<9} {'writer':<6} {'shards':>6} {'rebuild MiB':>11} {'shared':>7} {'to upload MiB':>13} "
          f"{'bound':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for scenario in ("edit", "replace", "block", "insert"):
            after = changed(base, scenario, args.change, np.random.default_rng(args.seed + 1))
            for name, writer in (("plain", write_plain), ("cdc", write_parquet)):
                old = write_build(base, tmp / f"{scenario}-{name}-old", writer, int(args.shard_mb * 1e6))
                new = write_build(after, tmp / f"{scenario}-{name}-new", writer, int(args.shard_mb * 1e6))
                share, total, fresh = shared_share(old, new)
                rows_per_chunk = TARGET / (total / len(after))
                bound = (1 - args.change) ** rows_per_chunk if scenario in ("edit", "replace") else 1 - args.change
                print(f"{scenario:<9} {name:<6} {len(new):>6} {total / 2**20:>11.1f} {share:>7.1%} "
                      f"{fresh / 2**20:>13.1f} {bound:>6.1%}")


if __name__ == "__main__":
    main()
