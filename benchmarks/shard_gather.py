"""Gathering shard rows from a table chunked by source: Arrow's `take` per shard (joins the whole column each
call) against shards.gather (chunk by chunk). Prints seconds for all shards and checks the results are equal.

    python benchmarks/shard_gather.py --rows 400000 --shards 10
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import time

import numpy as np
import pyarrow as pa

from flan_mini.shards import TURN, gather


def chunked_table(rows: int, sources: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    pool = "".join(rng.choice(list("abcdefgh "), 1 << 16))
    parts = []
    for s in range(sources):
        n = rows // sources
        starts = rng.integers(0, len(pool) - 600, n)
        values = [pool[a : a + 200] for a in starts.tolist()]
        answers = [pool[a + 200 : a + 500] for a in starts.tolist()]
        turns = pa.StructArray.from_arrays([pa.array(["human", "gpt"] * n), pa.array([v for pair in zip(values, answers) for v in pair])],
                                           fields=list(TURN))
        conversations = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), turns)
        parts.append(pa.table({"id": pa.array([f"{s}-{i}" for i in range(n)]), "conversations": conversations}))
    return pa.concat_tables(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--sources", type=int, default=10)
    parser.add_argument("--shards", type=int, default=10)
    args = parser.parse_args()
    table = chunked_table(args.rows, args.sources)
    order = np.random.default_rng(1).permutation(table.num_rows)
    per = -(-len(order) // args.shards)
    timings = {}
    for name, fn in [("take", lambda rows: table.take(pa.array(rows))), ("gather", lambda rows: gather(table, rows))]:
        start = time.perf_counter()
        parts = [fn(order[i : i + per]) for i in range(0, len(order), per)]
        timings[name] = time.perf_counter() - start
        if name == "take":
            reference = parts
        else:
            assert all(a.equals(b) for a, b in zip(parts, reference)), "gather differs from take"
    print(f"{table.num_rows:,} rows in {args.sources} chunks, {table.nbytes / 2**20:,.0f} MiB, {args.shards} shards: "
          f"take {timings['take']:.2f} s, gather {timings['gather']:.2f} s ({timings['take'] / timings['gather']:.1f}x)")


if __name__ == "__main__":
    main()
