"""The real >2 GiB text case: a FLAN source of a few huge rows whose `inputs` pass 2 GiB together, built end to end.

Arrow's `string` overflows its 32-bit offsets at 2 GiB when a column is joined into one array; the build carries
such text as `large_string` (flan_mini/bigtext.py) and writes shards of the declared schema. The suite tests that
path on small data with a lowered threshold (tests/test_hostile_bigtext.py); this script runs the real size by
hand. It needs about 9-11 GB of memory (peak RSS) and well under a minute, and refuses to run past --memory-gb (an
address-space limit on itself), so it fails instead of pushing the machine into swap.

    python benchmarks/big_text.py                     # 3 rows x 740 MB = 2.2 GB of text
    python benchmarks/big_text.py --rows 4 --mb 600

Prints: the build's wall time, peak RSS, the shards' schema and row groups, and that every value reads back.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--mb", type=int, default=740, help="MB of text in each row's inputs")
    parser.add_argument("--memory-gb", type=float, default=22.0, help="address-space limit (above the RSS it allows)")
    parser.add_argument("--shard-size", default="4GB", help="the recipe's shard_size; 4GB puts all rows in one shard, "
                        "which must then be split into row groups that fit")
    args = parser.parse_args()
    limit = int(args.memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    from flan_mini.cli import main as cli
    from flan_mini.shards import OUTPUT_SCHEMA, shard_paths

    work = Path(tempfile.mkdtemp(prefix="flan-mini-bigtext-"))
    try:
        source = work / "flan" / "data"
        source.mkdir(parents=True)
        size = args.mb << 20
        with pq.ParquetWriter(source / "train-00000-of-00001.parquet", pa.schema(
                [(n, pa.string()) for n in ("inputs", "targets", "task_source", "task_name", "template_type")])) as writer:
            for i in range(args.rows):  # one row per row group: the input file itself stays readable as `string`
                writer.write_table(pa.table({"inputs": [chr(ord("a") + i) * size], "targets": [f"answer {i}"],
                                             "task_source": ["Flan2021"], "task_name": [f"task{i}"],
                                             "template_type": ["zs_opt"]}))
        total = args.rows * size
        print(f"source: {args.rows} rows x {args.mb} MB = {total / (1 << 30):.2f} GiB of text in one column")
        (work / "recipe.yaml").write_text(
            f"name: bigtext\nseed: 1\noutput: {{shard_size: {args.shard_size}}}\nsources:\n"
            f"  - {{name: flan, adapter: flan, path: flan, n: {args.rows}, task_sources: [Flan2021]}}\n"
        )
        started = time.perf_counter()
        sys.argv = ["flan-mini", "build", str(work / "recipe.yaml"), "--out", str(work / "out"), "-q"]
        try:
            cli(standalone_mode=False)
        except SystemExit as exit_:
            if exit_.code:
                raise
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)
        print(f"build: {seconds:.1f} s, peak RSS {peak:.1f} GB")
        read_back = 0
        for path in shard_paths(work / "out"):
            parquet = pq.ParquetFile(path)
            assert parquet.schema_arrow.remove_metadata().equals(OUTPUT_SCHEMA), parquet.schema_arrow
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group)
                table.validate(full=True)
                for turns in table.column("conversations").to_pylist():
                    read_back += len(turns[0]["value"])
            print(f"{path.name}: {parquet.metadata.num_rows} rows, {parquet.num_row_groups} row groups, schema as declared")
        print(f"read back {read_back / (1 << 30):.2f} GiB of prompt text (expected {total / (1 << 30):.2f})")
        assert read_back == total
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
