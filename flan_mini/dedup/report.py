"""What dedup explains: the clusters table (dedup_clusters.parquet) and the JSON stats per source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..shards import REPORTS_DIR, file_sha256

CLUSTERS_FILE = "dedup_clusters.parquet"

# One row per member of every cluster with at least one removed row, keeper first, in keep order.
CLUSTERS_SCHEMA = pa.schema(
    [
        pa.field("cluster_id", pa.int64(), nullable=False),  # 0.. in keep order of the keepers
        pa.field("id", pa.string(), nullable=False),  # the row's id
        pa.field("recipe_source", pa.string(), nullable=False),
        pa.field("is_keeper", pa.bool_(), nullable=False),
        pa.field("kind", pa.string()),  # exact | near for removed rows; null for the keeper
        # Jaccard to the keeper (exact mode: of the shingle sets; datasketch mode: estimated). 1.0: exact/keeper.
        pa.field("similarity", pa.float64(), nullable=False),
        pa.field("keeper_id", pa.string(), nullable=False),
        # Why the keeper beat the next member in keep order: source_priority | order | id.
        pa.field("reason", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),  # members in the cluster
    ]
)


def cluster_table(*, cluster_id, rows, keeper_rows, is_keeper, kind, similarity, reason, size, ids, names, code):
    """Assemble the clusters table; ``rows`` / ``keeper_rows`` are input row numbers into ``ids`` / ``code``."""
    take = pa.array(rows, type=pa.int64())
    keeper_take = pa.array(keeper_rows, type=pa.int64())
    source_names = np.array(names, dtype=object)
    columns = [
        pa.array(cluster_id, type=pa.int64()),
        ids.take(take),
        pa.array(source_names[code[rows]] if len(rows) else [], type=pa.string()),
        pa.array(is_keeper, type=pa.bool_()),
        pa.array(list(kind), type=pa.string()),
        pa.array(similarity, type=pa.float64()),
        ids.take(keeper_take),
        pa.array(list(reason), type=pa.string()),
        pa.array(size, type=pa.int64()),
    ]
    columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
    return pa.Table.from_arrays(columns, schema=CLUSTERS_SCHEMA)


def pair_counts(accepted, rows_in_pairs: int, **more) -> dict:
    """The stats' `pairs` entry: candidate pairs, how many verification accepted and rejected, the rows in them,
    plus what the pairing step reports (`more`: bucket sizes)."""
    verified = int(accepted.sum())
    return {"candidate_pairs": len(accepted), "verified_pairs": verified, "rejected_pairs": len(accepted) - verified,
            "rows_in_candidate_pairs": int(rows_in_pairs), **more}


def summarize(*, config, bands, rows, priority, names, code, active, exact, near, sketches, cluster_sizes,
              near_similarity, pairs) -> dict:
    """The stats: parameters, totals and per-source counts, cluster-size and similarity histograms."""
    n_names = len(names)
    return summarize_counts(
        config=config, bands=bands, rows=rows, priority=priority, names=names,
        rows_in=np.bincount(code, minlength=n_names),
        exact_rows=np.bincount(code[active[exact]], minlength=n_names),
        near_rows=np.bincount(code[active[near]], minlength=n_names),
        empty=np.bincount(code[sketches.shingles == 0], minlength=n_names),
        truncated=int(sketches.truncated.sum()), invalid_utf8=int(sketches.invalid_utf8.sum()),
        cluster_sizes=cluster_sizes, near_similarity=near_similarity, pairs=pairs,
    )


def summarize_counts(*, config, bands, rows, priority, names, rows_in, exact_rows, near_rows, empty, truncated,
                     invalid_utf8, cluster_sizes, near_similarity, pairs) -> dict:
    """``summarize`` from per-source counts (rows in, exact, near, empty) and totals: what the partitioned
    driver has without any per-row array."""
    n = int(rows_in.sum())
    sources = {}
    for index, name in enumerate(names):
        if rows_in[index]:
            sources[name] = {
                "rows_in": int(rows_in[index]),
                "exact": int(exact_rows[index]),
                "near": int(near_rows[index]),
                "kept": int(rows_in[index] - exact_rows[index] - near_rows[index]),
                "skipped_empty": int(empty[index]),
            }
    sizes, counts = np.unique(cluster_sizes, return_counts=True)
    edges = np.round(np.linspace(0.0, 1.0, 11), 1)
    similarity_counts, _ = np.histogram(near_similarity, bins=edges)
    return {
        "parameters": {
            "threshold": config.threshold,
            "num_perm": config.num_perm,
            "bands": bands,
            "rows": rows,
            "bands_from": "config" if config.bands is not None else "datasketch optimiser",
            "weights": list(config.optimiser_weights()),
            "mode": config.mode,
            "seed": config.seed,
            "shingle": config.shingle.model_dump(),
            "normalize": {**config.normalize.model_dump(), "punctuation": config.normalize.text_norm().punctuation},
            "compare": config.compare,
            "scope": config.scope,
            "keep": priority,
            "verify": config.verify,
            "bucket_cap": config.bucket_cap,
            "max_chars": config.max_chars,
        },
        "rows_in": n,
        "exact": int(exact_rows.sum()),
        "near": int(near_rows.sum()),
        "kept": int(n - exact_rows.sum() - near_rows.sum()),
        "skipped_empty": int(empty.sum()),
        "truncated": int(truncated),
        "invalid_utf8": int(invalid_utf8),
        "sources": sources,
        "clusters": int(len(cluster_sizes)),
        "cluster_sizes": {str(int(s)): int(c) for s, c in zip(sizes, counts)},
        "near_similarity": {f"{lo:.1f}-{hi:.1f}": int(c) for lo, hi, c in zip(edges[:-1], edges[1:], similarity_counts) if c},
        "lsh": pairs,
    }


def write_clusters(clusters: pa.Table, folder: Path) -> dict:
    """Write ``reports/dedup_clusters.parquet`` in a dataset folder (outside data/, so loaders never mistake it
    for training rows); returns its manifest entry."""
    path = Path(folder) / REPORTS_DIR / CLUSTERS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(clusters, path, compression="zstd")
    return {"path": f"{REPORTS_DIR}/{CLUSTERS_FILE}", "rows": clusters.num_rows, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def manifest_removed(stats: dict, source: str) -> dict:
    """The manifest's per-source ``removed`` entry from the stats."""
    counts = stats["sources"].get(source, {})
    return {"dedup_exact": counts.get("exact", 0), "dedup_near": counts.get("near", 0)}


def manifest_entry(stats: dict, clusters_file: dict | None) -> dict:
    """The manifest's top-level ``dedup`` block: the stats plus the clusters file's path, rows and sha256."""
    return {**stats, "clusters_file": clusters_file}
