"""The dedup stage: exact then near duplicates of a table's rows, one deterministic keeper per cluster."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FlanMiniError
from .clusters import connected_components, exact_groups, keep_order, keep_reasons
from .config import DedupConfig
from .lsh import candidate_pairs
from .partition import ParquetBatches, TableBatches, partition_count, source_salt
from .report import cluster_table, pair_counts, summarize
from .pairs import pair_similarity
from .sketch import SketchPlan, Workers, batch_bounds, sketch_table
from .texts import TextSpec, text_bytes

# Text per batch handed to one worker: big enough to amortise the per-call overhead, small enough that a
# batch's temporaries (about 40 bytes per character in char mode) stay in the low hundreds of MB.
BATCH_BYTES = 8 << 20

ORDER_COLUMN = "_order"


@dataclass
class DedupResult:
    """keep: aligned with the input rows. clusters: the rows of dedup_clusters.parquet (see report.py).
    stats: JSON-able counts and parameters. seconds: wall time per step (not part of stats, which are
    deterministic)."""

    keep: pa.BooleanArray
    clusters: pa.Table
    stats: dict
    seconds: dict = field(default_factory=dict)


def dedup_table(
    table: pa.Table,
    config: DedupConfig,
    *,
    priority: list[str] | None = None,
    workers: int | None = None,
    batch_bytes: int = BATCH_BYTES,
    executor=None,
    partitions: int | None = None,
) -> DedupResult:
    """Find exact and near duplicates among the rows of a built table (OUTPUT_SCHEMA columns plus ``_order``).

    The compared text comes from ``conversations`` (``config.compare``). ``_order`` (int64, lower = preferred)
    is the selection's rank within a source. Keep priority: ``priority`` (or ``config.keep``) by
    ``recipe_source``, then ``_order``, then ``id``. ``workers`` defaults to ``config.workers``. The result
    does not depend on the row order of ``table``, on ``workers``, on batch sizes or on ``executor``.

    ``executor`` (executor.py): None or a local one runs today's path (``workers`` forked processes, every
    row's band keys in this process); any other (Ray), or ``partitions`` given, runs the partitioned path
    (partitioned.py, its tasks in partition.py) on it, in ``partitions`` partitions (default: from the size),
    with the same result.
    """
    for name in ("id", "recipe_source", ORDER_COLUMN):
        if name not in table.column_names:
            raise FlanMiniError(f"dedup: the table has no {name!r} column (columns: {table.column_names})")
    order = table.column(ORDER_COLUMN)
    if order.null_count or not pa.types.is_integer(order.type):
        raise FlanMiniError(f"dedup: column {ORDER_COLUMN!r} must be integers without nulls, found {order.type}")
    return deduplicate(
        table,
        TextSpec(compare=config.compare),
        config,
        sources=table.column("recipe_source"),
        order=order.to_numpy().astype(np.int64),
        ids=table.column("id"),
        priority=priority,
        workers=workers,
        batch_bytes=batch_bytes,
        executor=executor,
        partitions=partitions,
    )


def deduplicate(
    table: pa.Table | ParquetBatches,
    spec: TextSpec,
    config: DedupConfig,
    *,
    sources: pa.Array | pa.ChunkedArray | None,
    order: np.ndarray | None,
    ids: pa.Array | pa.ChunkedArray | None,
    priority: list[str] | None = None,
    workers: int | None = None,
    batch_bytes: int = BATCH_BYTES,
    executor=None,
    partitions: int | None = None,
    ranges: int | None = None,
) -> DedupResult:
    """The stage on any table: ``spec`` says which text is compared, ``sources`` names each row's source
    (None: one source, "all"), ``order`` and ``ids`` break ties in keep priority, in that order.
    ``executor`` and ``partitions``: see ``dedup_table``. ``table`` may be ``ParquetBatches`` (files the
    tasks read themselves, so this process never holds the text), which always takes the partitioned path;
    with ``ids`` and ``order`` None its tasks read those too (``ParquetBatches.id_column``/``order_column``),
    so this process holds no per-row key. ``ranges``: the partitioned keep order's (keep_rank.py)."""
    started = time.perf_counter()
    spec.check(table.schema, "dedup")
    bands, rows = config.lsh_params()
    plan = SketchPlan(
        spec=spec,
        norm=config.normalize.text_norm(),
        shingle_kind=config.shingle.kind,
        shingle_size=config.shingle.size,
        num_perm=config.num_perm,
        seed=config.seed,
        bands=bands,
        rows=rows,
        max_chars=config.max_chars,
        mode=config.mode,
    )
    local = (executor is None or executor.name == "local") and partitions is None
    if local and isinstance(table, pa.Table) and ids is not None and order is not None:
        with Workers(workers if workers is not None else config.workers) as pool:  # one pool for both passes
            return _deduplicate(table, config, plan, sources, order, ids, priority, pool, batch_bytes, started)
    if executor is None:
        from ..executor import LocalExecutor  # noqa: PLC0415

        executor = LocalExecutor(workers if workers is not None else config.workers)
    if isinstance(table, pa.Table):
        table = TableBatches(table, tuple(spec.input_columns()))
    parts = partitions or partition_count(table.num_rows, bands, executor.workers)
    from .partitioned import deduplicate_partitioned  # noqa: PLC0415 (it imports this module)

    if ids is None and not isinstance(table, ParquetBatches):
        raise FlanMiniError("dedup: ids are needed (or ParquetBatches whose tasks read them: id_column)")
    return deduplicate_partitioned(table, config, plan, sources, order, ids, priority, executor, parts, batch_bytes,
                                   started, ranges)


def _deduplicate(table, config, plan, sources, order, ids, priority, workers, batch_bytes, started) -> DedupResult:
    """``deduplicate``'s local path once its plan is made and its ``workers`` (a sketch.Workers) are up."""
    seconds = {}
    n = table.num_rows
    bands, rows = plan.bands, plan.rows
    names, code = _source_codes(sources, n)
    listed = list(priority if priority is not None else (config.keep or []))
    source_rank = np.array([listed.index(name) if name in listed else len(listed) for name in names], np.int64)
    row_priority = source_rank[code]
    # Rank = position in keep order; every later step works on ranks, so the input's row order never matters.
    perm = keep_order(row_priority, order, ids).astype(np.int64)

    salt = None
    if config.scope == "source":
        # Salting every key with the row's source keeps rows of different sources out of each other's groups.
        salt = source_salt(code)
    row_bytes = text_bytes(table, plan.spec)
    bounds = batch_bounds(row_bytes, config.batch_rows, batch_bytes)
    found = _local_pairs(table, plan, bounds, workers, perm, salt, config.bucket_cap, seconds, started)
    sketches, active, group, heads = found, found.active, found.group, found.heads
    left, right, lsh_stats = found.left, found.right, found.lsh_stats
    head_rows = active[heads]
    # Pass two: only the rows of candidate pairs are sketched again, for what decides a pair (shingle sets in
    # exact mode, signatures in datasketch mode); every near-duplicate and its keeper is among them.
    verifying = time.perf_counter()
    candidates = np.unique(np.concatenate([head_rows[left], head_rows[right]]))

    def similarity_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Jaccard of input rows a[k], b[k], block by block on the workers (pairs.py)."""
        return pair_similarity(table, plan, a, b, row_bytes, config.batch_rows, batch_bytes, workers)

    similarity = similarity_of(head_rows[left], head_rows[right])
    accepted = similarity >= config.threshold if config.verify else np.ones(len(left), dtype=bool)
    seconds["verify"] = time.perf_counter() - verifying
    grouping = time.perf_counter()
    root = connected_components(len(heads), left[accepted], right[accepted])
    head_index = np.empty(len(active), dtype=np.int64)
    head_index[heads] = np.arange(len(heads))
    keeper = heads[root[head_index[group]]]  # position in `active` of each row's cluster keeper
    seconds["group"] = time.perf_counter() - grouping

    members = np.arange(len(active))
    removed = keeper != members
    exact = removed & (group == keeper)
    near = removed & ~exact
    sim_to_keeper = np.ones(len(active), dtype=np.float64)
    # A near row that is an exact copy of another row took no part in the pairs: its exact head (same normalised
    # text, so the same shingle set) stands for it.
    sim_to_keeper[near] = similarity_of(active[group[near]], active[keeper[near]])

    keep = np.ones(n, dtype=bool)
    keep[active[removed]] = False
    in_cluster = np.zeros(len(active), dtype=bool)
    in_cluster[removed] = True
    in_cluster[keeper[removed]] = True
    clustered = np.flatnonzero(in_cluster)
    clustered = clustered[np.lexsort((clustered, keeper[clustered]))]
    cluster_keepers, cluster_id, sizes = np.unique(keeper[clustered], return_inverse=True, return_counts=True)
    # Members are sorted by (keeper, keep order): each cluster's first row is its keeper, the second the runner-up.
    firsts = np.cumsum(sizes) - sizes
    keeper_rows = active[cluster_keepers]
    runner_rows = active[clustered[firsts + 1]]
    key = np.stack([row_priority, order], axis=1)
    reasons = keep_reasons(key[keeper_rows], key[runner_rows])
    id_strings = pc.cast(ids, pa.string())
    clusters = cluster_table(
        cluster_id=cluster_id,
        rows=active[clustered],
        keeper_rows=keeper_rows[cluster_id],
        is_keeper=~removed[clustered],
        kind=np.where(exact[clustered], "exact", np.where(near[clustered], "near", None)),
        similarity=sim_to_keeper[clustered],
        reason=reasons[cluster_id],
        size=sizes[cluster_id],
        ids=id_strings,
        names=names,
        code=code,
    )
    stats = summarize(
        config=config,
        bands=bands,
        rows=rows,
        priority=listed,
        names=names,
        code=code,
        active=active,
        exact=exact,
        near=near,
        sketches=sketches,
        cluster_sizes=sizes,
        near_similarity=sim_to_keeper[near],
        pairs=pair_counts(accepted, len(candidates), **lsh_stats),
    )
    seconds["total"] = time.perf_counter() - started
    return DedupResult(keep=pa.array(keep, type=pa.bool_()), clusters=clusters, stats=stats, seconds=seconds)


@dataclass
class Found:
    """What the local pairing step gives ``_deduplicate``: per-row counts (Sketches' fields without any key), the
    exact groups and candidate pairs (positions in ``active`` and in its heads)."""

    shingles: np.ndarray
    truncated: np.ndarray
    invalid_utf8: np.ndarray
    active: np.ndarray
    group: np.ndarray
    heads: np.ndarray
    left: np.ndarray
    right: np.ndarray
    lsh_stats: dict


def _local_pairs(table, plan, bounds, workers, perm, salt, bucket_cap, seconds, started) -> Found:
    """Every row sketched on ``workers`` processes into this process, then grouped and paired here."""
    sketches = sketch_table(table, plan, bounds, workers)
    seconds["sketch"] = time.perf_counter() - started
    exact_keys, keys = sketches.exact_keys, sketches.band_keys
    # The keys are this function's own: salted and gathered in place, then dropped (at 1.34M rows each copy of
    # the band keys is ~170 MB of the driver's peak).
    sketches.exact_keys = sketches.band_keys = None
    if salt is not None:
        exact_keys[:, 0] ^= salt
        keys ^= salt[:, None]
    grouping = time.perf_counter()
    active = perm[sketches.shingles[perm] > 0]  # input rows with something to compare, in keep order
    group = exact_groups(exact_keys[active])  # position in `active` of each row's exact group head
    del exact_keys
    heads = np.flatnonzero(group == np.arange(len(active)))
    # The heads' keys gathered into the first rows of the same array, one band at a time (fancy indexing copies
    # the column before it is written), instead of a second (rows x bands) array.
    head_rows = active[heads]
    for band in range(keys.shape[1]):
        keys[: len(head_rows), band] = keys[head_rows, band]
    left, right, lsh_stats = candidate_pairs(keys[: len(head_rows)], bucket_cap)
    del keys
    seconds["candidates"] = time.perf_counter() - grouping
    return Found(sketches.shingles, sketches.truncated, sketches.invalid_utf8, active, group, heads, left, right,
                 lsh_stats)


def _source_codes(sources, n: int) -> tuple[list[str], np.ndarray]:
    """Sorted distinct source names and each row's index into them (sorted, so codes do not depend on row order)."""
    if sources is None:
        return ["all"], np.zeros(n, dtype=np.int64)
    sources = pc.fill_null(pc.cast(sources, pa.string()), "")
    if isinstance(sources, pa.ChunkedArray):
        sources = sources.combine_chunks()
    names = sorted(pc.unique(sources).to_pylist())
    code = pc.index_in(sources, value_set=pa.array(names, pa.string())).to_numpy(zero_copy_only=False)
    return names, code.astype(np.int64)
