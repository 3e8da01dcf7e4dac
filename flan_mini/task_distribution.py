"""A source's task distribution as read and as written, and the total-variation distance between them.

The manifest and the card show it for every source whose adapter tallies a task (FLAN), so that a mixture
distorted by the selection (FLAN capped twice) shows at a glance. Total variation is half the sum of the
absolute differences of the two shares: 0 for the same mix, 1 for disjoint ones. Example: input 50% / 50%,
output 75% / 25% -> TV 0.25.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

CARD_TOP = 10  # tasks shown per source in the card (the manifest lists every task)


def total_variation(a: dict[str, int], b: dict[str, int]) -> float:
    total_a, total_b = sum(a.values()) or 1, sum(b.values()) or 1
    return 0.5 * sum(abs(a.get(k, 0) / total_a - b.get(k, 0) / total_b) for k in set(a) | set(b))


def task_distribution(read: dict[str, int], written: pa.Array) -> dict:
    """The manifest's entry: rows per task in the input (after the recipe's filters) and in the output."""
    counted = pc.value_counts(written)
    out = dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))
    order = sorted(read, key=lambda k: (-read[k], k))
    return {
        "total_variation": round(total_variation(read, out), 6),
        "tasks_read": len(read),
        "tasks_written": len(out),
        "read": {k: int(read[k]) for k in order},
        "written": {k: int(out[k]) for k in sorted(out, key=lambda k: (-out[k], k))},
    }


def card_rows(manifest: dict) -> list[dict]:
    """Per source with a task distribution: its TV and its largest tasks' shares, read vs written."""
    rows = []
    for source in manifest.get("sources", []):
        dist = source.get("task_distribution")
        if not dist:
            continue
        read, written = dist["read"], dist["written"]
        total_read, total_written = sum(read.values()) or 1, sum(written.values()) or 1
        top = list(read)[:CARD_TOP]
        rows.append({
            "name": source["name"], "tv": dist["total_variation"], "tasks_read": dist["tasks_read"],
            "tasks_written": dist["tasks_written"], "mixing": (source.get("settings") or {}).get("mixing") or "uniform",
            "tasks": [{"task": t, "read": read[t] / total_read, "written": written.get(t, 0) / total_written} for t in top],
        })
    return rows
