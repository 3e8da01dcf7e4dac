"""The partitioned dedup driver: tasks pair (partition.py), the driver keeps only sparse results.

The local path (stage.py) holds per-row arrays of everything after pairing (groups, keepers, similarities,
cluster flags) and the keep order. Here the keep order is sorted by tasks and left on the executor in ranges
(keep_rank.py: sketch tasks find their rows' ranks there; the driver looks up the rows, ``_order`` and ids of
the few ranks it needs). Per row the driver holds only the source codes (one byte for up to 255 sources) and
the keep mask; the rest lives on the rows that the tasks report: exact copies with their heads, candidate
pairs, and the rows of those pairs. Every figure, the removed rows and the clusters table equal the local
path's, for any partition count, range count and executor."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from .clusters import connected_components, keep_reasons
from .keep_rank import ArrayKeys, KeepRanks
from .partition import band_partition, detail_rows, exact_partition, sketch_ranked
from .report import cluster_table, pair_counts, summarize_counts
from .pairs import similarity
from .verify import ShingleSets

VERIFY_PAIRS = 1 << 16  # pairs per verify task: its result (float64 each) and indices stay small
VERIFY_PARTS = 16  # detail parts per verify task (one per batch read): what a task holds stays bounded


def small_codes(code: np.ndarray, count: int) -> np.ndarray:
    """Source codes in the smallest unsigned type that holds them (1 byte per row up to 255 sources)."""
    for kind in (np.uint8, np.uint16, np.uint32):
        if count <= np.iinfo(kind).max:
            return code.astype(kind)
    return code


class Details:
    """What verifies a pair (shingle sets or signatures) of the candidate rows, left on the executor (Ray's
    object store) in parts, one per batch the tasks read; pairs are verified by tasks, in blocks."""

    def __init__(self, table, rows: np.ndarray, plan, max_rows: int, max_bytes: int, executor):
        self.rows, self.mode, self.executor = rows, plan.mode, executor  # rows: input rows, ascending
        counts = []

        def jobs():
            for read, args, local, count in table.detail_reads(rows, plan.spec, max_rows, max_bytes):
                counts.append(count)
                yield (plan, local, read, *args)

        self.handles = list(executor.submit(detail_rows, jobs()))
        self.starts = np.cumsum([0, *counts])[:-1].astype(np.int64)  # each part's first index in ``rows``

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Jaccard of input rows a[k], b[k] (both among ``rows``): exact, or estimated in datasketch mode."""
        a, b = np.searchsorted(self.rows, a), np.searchsorted(self.rows, b)
        part_a = np.searchsorted(self.starts, a, side="right") - 1
        part_b = np.searchsorted(self.starts, b, side="right") - 1
        sort = np.lexsort((part_b, part_a))  # pairs between the same parts are neighbours
        blocks = part_blocks(part_a[sort], part_b[sort], VERIFY_PAIRS, VERIFY_PARTS)
        out = np.empty(len(a), dtype=np.float64)

        def jobs():
            for lo, hi in blocks:
                pick = sort[lo:hi]
                parts = np.unique(np.concatenate([part_a[pick], part_b[pick]]))
                local_a = np.searchsorted(parts, part_a[pick]), a[pick] - self.starts[part_a[pick]]
                local_b = np.searchsorted(parts, part_b[pick]), b[pick] - self.starts[part_b[pick]]
                yield (self.mode, *local_a, *local_b, *(self.handles[p] for p in parts))

        for (lo, hi), found in zip(blocks, self.executor.map(verify_block, jobs())):
            out[sort[lo:hi]] = found
        return out


def part_blocks(part_a: np.ndarray, part_b: np.ndarray, max_pairs: int, max_parts: int) -> list[tuple[int, int]]:
    """Cuts of pairs sorted by (part_a, part_b) into blocks of at most ``max_pairs`` pairs that need at most
    ``max_parts`` parts (a single run of pairs between two parts is never cut by parts). Example: parts
    (0,0) (0,1) (2,3) with max_parts 2 -> blocks [0, 2) [2, 3)."""
    if not len(part_a):
        return []
    new = np.ones(len(part_a), dtype=bool)  # runs of pairs between the same two parts
    new[1:] = (part_a[1:] != part_a[:-1]) | (part_b[1:] != part_b[:-1])
    starts = np.flatnonzero(new).tolist() + [len(part_a)]
    blocks, lo, held = [], 0, set()
    for start, stop in zip(starts[:-1], starts[1:]):
        run = {int(part_a[start]), int(part_b[start])}
        if start > lo and (len(held | run) > max_parts or stop - lo > max_pairs):
            blocks.append((lo, start))
            lo, held = start, set()
        held |= run
        while stop - lo > max_pairs:  # a run longer than a block: cut inside it (the same two parts)
            blocks.append((lo, lo + max_pairs))
            lo += max_pairs
    blocks.append((lo, len(part_a)))
    return [(x, y) for x, y in blocks if y > x]


def verify_block(mode: str, part_a, at_a, part_b, at_b, *parts) -> np.ndarray:
    """Task: the similarity of pairs (row at_a[k] of parts[part_a[k]], row at_b[k] of parts[part_b[k]])."""
    sizes = [len(p.offsets) - 1 if mode == "exact" else len(p) for p in parts]
    first = np.cumsum([0, *sizes])[:-1].astype(np.int64)
    a, b = first[part_a] + at_a, first[part_b] + at_b
    return similarity(mode, ShingleSets.concat(list(parts)) if mode == "exact" else np.concatenate(parts), a, b)


def deduplicate_partitioned(table, config, plan, sources, order, ids, priority, executor, parts, batch_bytes,
                            started, ranges=None):
    """stage.deduplicate's partitioned path (``table`` a TableBatches or ParquetBatches); returns a DedupResult.
    ``ids`` and ``order`` None: the tasks read them (``table.key_reads``); ``ranges``: the keep order's."""
    from .stage import DedupResult, _source_codes  # noqa: PLC0415 (stage dispatches here)

    seconds = {}
    n = table.num_rows
    # One source: one byte per row, not _source_codes' int64 zeros.
    names, code = (["all"], np.zeros(n, np.uint8)) if sources is None else _source_codes(sources, n)
    code = small_codes(code, len(names))
    listed = list(priority if priority is not None else (config.keep or []))
    source_rank = np.array([listed.index(name) if name in listed else len(listed) for name in names], np.int64)
    one_priority = len(np.unique(source_rank)) <= 1
    bounds = table.bounds(plan.spec, config.batch_rows, batch_bytes)
    if ids is None:
        keys = table
    else:
        keys = ArrayKeys(ids, np.arange(n, dtype=np.int64) if order is None else order)
    # The keep order, sorted by tasks and left on the executor in ranges (keep_rank.py): no per-row rank here.
    ranked = KeepRanks(keys, bounds, code, None if one_priority else source_rank, executor, ranges)
    seconds["keep_order"] = time.perf_counter() - started

    clock = time.perf_counter()
    salted = config.scope == "source"
    pieces: list[list] = [[] for _ in range(parts)]  # per partition, one handle per batch

    def jobs():
        for (start, stop), (read, args) in zip(bounds, table.reads(bounds)):
            # Salting every key with the row's source keeps rows of different sources out of each other's groups.
            yield (plan, parts, start, stop, code[start:stop] if salted else None, ranked.offsets,
                   len(ranked.by_row), read, *args, *ranked.by_row)

    # Each batch's pieces stay in the object store (Ray) and go from there to their partition's tasks: the
    # driver holds handles and, per batch, its empty rows and two counts.
    summaries = []
    for (start, _), handles in zip(bounds, executor.submit(sketch_ranked, jobs(), returns=1 + parts)):
        summaries.append((start, handles[0]))
        for p in range(parts):
            pieces[p].append(handles[1 + p])
    empty, truncated, invalid = [], 0, 0
    for start, handle in summaries:
        rows, cut, bad = executor.fetch(handle)
        empty.append(rows.astype(np.int64) + start)
        truncated, invalid = truncated + cut, invalid + bad
    del summaries
    empty = np.concatenate(empty) if empty else np.zeros(0, np.int64)
    ranked.release_by_row()  # (every batch has its ranks) Ray frees the ranges' by-row copies
    seconds["sketch"] = time.perf_counter() - clock

    pairing = time.perf_counter()
    found = list(executor.map(exact_partition, (tuple(h) for h in pieces)))  # few rows: the exact copies
    copy_rank = np.concatenate([c for c, _ in found]) if found else np.zeros(0, np.int64)
    copy_head = np.concatenate([h for _, h in found]) if found else np.zeros(0, np.int64)
    order_of = np.argsort(copy_rank)
    copy_rank, copy_head = copy_rank[order_of], copy_head[order_of]
    shared_copies = executor.share(copy_rank)

    def band_jobs():
        for p in range(parts):  # a partition's handles are dropped once its task has them: Ray frees the pieces
            handles, pieces[p] = pieces[p], []
            yield (config.bucket_cap, n, plan.bands, shared_copies, *handles)

    codes, oversized, largest = [], 0, 0
    for part, over, large in executor.map(band_partition, band_jobs()):
        codes.append(part)
        oversized += over
        largest = max(largest, large)
    # A pair can come from several bands, whose buckets live in different partitions: distinct pairs only.
    codes = np.unique(np.concatenate(codes)) if codes else np.zeros(0, np.int64)
    size = max(n, 1)
    left, right = codes // size, codes % size  # ranks, left < right
    del codes
    seconds["candidates"] = time.perf_counter() - pairing

    # Pass two: what decides a pair, for the rows of candidate pairs only.
    verifying = time.perf_counter()
    nodes = np.unique(np.concatenate([left, right]))  # candidate ranks, ascending (= keep order)
    # The rows, _order and ids of every rank a result names (candidates and exact copies with their heads),
    # looked up in the keep order's ranges: the driver's only map from rank to row.
    named = np.unique(np.concatenate([nodes, copy_rank, copy_head]))
    named_rows, named_order, named_ids = ranked.lookup(named)
    ranked = None  # frees the keep order's ranges

    def looked_up(rank: np.ndarray) -> np.ndarray:
        """Positions of named ranks in the lookup's results."""
        return np.searchsorted(named, rank)

    def perm(rank: np.ndarray) -> np.ndarray:
        return named_rows[looked_up(rank)]

    detail = Details(table, np.sort(perm(nodes)), plan, config.batch_rows, batch_bytes, executor)

    def similarity_of(a_rank: np.ndarray, b_rank: np.ndarray) -> np.ndarray:
        return detail.similarity(perm(a_rank), perm(b_rank))

    similarity = similarity_of(left, right)
    accepted = similarity >= config.threshold if config.verify else np.ones(len(left), dtype=bool)
    seconds["verify"] = time.perf_counter() - verifying

    grouping = time.perf_counter()
    # Connected components on the candidate rows only (compacted to 0..k-1 in keep order): a component's
    # smallest node is its best row, the keeper.
    root = connected_components(len(nodes), np.searchsorted(nodes, left[accepted]),
                                np.searchsorted(nodes, right[accepted]))
    node_keeper = nodes[root]
    near_heads = np.flatnonzero(node_keeper != nodes)
    head_rank, head_keeper = nodes[near_heads], node_keeper[near_heads]
    # An exact copy's keeper is its head's (the head itself unless the head is a removed near duplicate).
    at = np.minimum(np.searchsorted(nodes, copy_head), max(len(nodes) - 1, 0))
    in_nodes = nodes[at] == copy_head if len(nodes) else np.zeros(len(copy_head), bool)
    copy_keeper = np.where(in_nodes, node_keeper[at] if len(nodes) else copy_head, copy_head)
    copy_exact = copy_keeper == copy_head
    # A near row that is an exact copy took no part in the pairs: its head (same shingle set) stands for it.
    copy_sim = np.ones(len(copy_rank), dtype=np.float64)
    copy_sim[~copy_exact] = similarity_of(copy_head[~copy_exact], copy_keeper[~copy_exact])
    head_sim = np.asarray(similarity_of(head_rank, head_keeper), dtype=np.float64)
    detail = None  # frees the parts in the object store (similarity_of is not called after this)
    seconds["group"] = time.perf_counter() - grouping

    removed_rank = np.concatenate([head_rank, copy_rank])
    removed_keeper = np.concatenate([head_keeper, copy_keeper])
    removed_exact = np.concatenate([np.zeros(len(head_rank), bool), copy_exact])
    removed_sim = np.concatenate([head_sim, copy_sim])
    keepers = np.unique(removed_keeper)
    member = np.concatenate([removed_rank, keepers])
    member_keeper = np.concatenate([removed_keeper, keepers])
    is_keeper = np.concatenate([np.zeros(len(removed_rank), bool), np.ones(len(keepers), bool)])
    exact = np.concatenate([removed_exact, np.zeros(len(keepers), bool)])
    sim = np.concatenate([removed_sim, np.ones(len(keepers))])
    # Members sorted by (keeper, keep order): each cluster's first row is its keeper, the second the runner-up.
    sort = np.lexsort((member, member_keeper))
    member, member_keeper, is_keeper, exact, sim = (a[sort] for a in (member, member_keeper, is_keeper, exact, sim))
    near = ~is_keeper & ~exact
    cluster_keepers, cluster_id, sizes = np.unique(member_keeper, return_inverse=True, return_counts=True)
    firsts = np.cumsum(sizes) - sizes
    runners = member[firsts + 1] if len(firsts) else np.zeros(0, np.int64)

    def key(rank):
        return np.stack([source_rank[code[perm(rank)]], named_order[looked_up(rank)]], axis=1)

    reasons = keep_reasons(key(cluster_keepers), key(runners))
    member_rows = perm(member)
    # The members' ids only (a keeper is its cluster's first member), from the lookup.
    member_ids = named_ids.take(pa.array(looked_up(member), pa.int64()))
    clusters = cluster_table(
        cluster_id=cluster_id,
        rows=np.arange(len(member)),
        keeper_rows=firsts[cluster_id],
        is_keeper=is_keeper,
        kind=np.where(exact, "exact", np.where(near, "near", None)),
        similarity=sim,
        reason=reasons[cluster_id],
        size=sizes[cluster_id],
        ids=member_ids,
        names=names,
        code=code[member_rows],
    )
    keep = np.ones(n, dtype=bool)
    keep[perm(removed_rank)] = False
    count = len(names)
    stats = summarize_counts(
        config=config,
        bands=plan.bands,
        rows=plan.rows,
        priority=listed,
        names=names,
        rows_in=np.bincount(code, minlength=count),
        exact_rows=np.bincount(code[member_rows[exact]], minlength=count),
        near_rows=np.bincount(code[member_rows[near]], minlength=count),
        empty=np.bincount(code[empty], minlength=count),
        truncated=truncated,
        invalid_utf8=invalid,
        cluster_sizes=sizes,
        near_similarity=sim[near],
        pairs=pair_counts(accepted, len(nodes), oversized_buckets=oversized, largest_bucket=largest),
    )
    seconds["total"] = time.perf_counter() - started
    return DedupResult(keep=pa.array(keep, type=pa.bool_()), clusters=clusters, stats=stats, seconds=seconds)
