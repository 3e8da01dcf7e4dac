"""Candidate pairs decided in bounded blocks on the workers: each block's rows are sketched where they are
compared, so only pair indices go out and one similarity per pair comes back."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .clusters import connected_components
from .minhash import estimate_jaccard
from .verify import exact_jaccard


def pair_blocks(
    a: np.ndarray, b: np.ndarray, row_bytes: np.ndarray, max_rows: int, max_bytes: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Blocks of the pairs (a[k], b[k]) of input rows: (pair indices, distinct rows ascending, left, right),
    where left/right index the block's rows. Every pair is in exactly one block.

    Pairs are grouped by connected component of the pair graph, whole components packed into a block up to
    ``max_rows`` rows and about ``max_bytes`` of text, so a row is sketched once whatever its number of pairs.
    A component larger than that alone is cut by pairs (its rows may then be sketched in more than one
    block). Example: pairs (1,2) (7,8) (2,3), one row per block -> blocks {1,2,3} (pairs 0, 2) and {7,8}.
    """
    m = len(a)
    if m == 0:
        return []
    rows, inverse = np.unique(np.concatenate([a, b]).astype(np.int64), return_inverse=True)
    left, right = inverse[:m], inverse[m:]
    _, component = np.unique(connected_components(len(rows), left, right), return_inverse=True)
    sizes = row_bytes[rows]
    comp_rows = np.bincount(component)
    comp_bytes = np.bincount(component, weights=sizes).astype(np.int64)
    row_order = np.argsort(component, kind="stable")  # rows by component, ascending within one
    pair_order = np.argsort(component[left], kind="stable")
    row_cut = np.concatenate([[0], np.cumsum(comp_rows)])
    pair_cut = np.concatenate([[0], np.cumsum(np.bincount(component[left], minlength=len(comp_rows)))])
    byte_cut = np.concatenate([[0], np.cumsum(comp_bytes)])
    blocks = []
    start, count = 0, len(comp_rows)
    while start < count:
        by_rows = int(np.searchsorted(row_cut, row_cut[start] + max_rows, side="right")) - 1
        by_bytes = int(np.searchsorted(byte_cut, byte_cut[start] + max_bytes, side="right")) - 1
        stop = min(count, max(min(by_rows, by_bytes), start + 1))
        pairs = pair_order[pair_cut[start] : pair_cut[stop]]
        big = stop == start + 1 and (comp_rows[start] > max_rows or comp_bytes[start] > max_bytes)
        if big:
            blocks.extend(_cut_component(pairs, left, right, sizes, max_rows, max_bytes, rows))
        else:
            blocks.append(_block(pairs, row_order[row_cut[start] : row_cut[stop]], left, right, rows))
        start = stop
    return blocks


def _block(pairs, members, left, right, rows):
    members = np.sort(members)
    return pairs, rows[members], np.searchsorted(members, left[pairs]), np.searchsorted(members, right[pairs])


def _cut_component(pairs, left, right, sizes, max_rows, max_bytes, rows):
    """One oversized component's pairs (in order) cut greedily so each piece's distinct rows stay in bounds."""
    out, piece, seen, used = [], [], set(), 0
    for k in pairs.tolist():
        new = [r for r in {int(left[k]), int(right[k])} if r not in seen]
        extra = int(sizes[new].sum()) if new else 0
        if piece and (len(seen) + len(new) > max_rows or used + extra > max_bytes):
            out.append(_block(np.array(piece, np.int64), np.array(sorted(seen), np.int64), left, right, rows))
            piece, seen, used = [], set(), 0
            new = list({int(left[k]), int(right[k])})
            extra = int(sizes[new].sum())
        piece.append(k)
        seen.update(new)
        used += extra
    if piece:
        out.append(_block(np.array(piece, np.int64), np.array(sorted(seen), np.int64), left, right, rows))
    return out


def block_similarity(plan, batch: pa.Table, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Worker task: sketch the block's rows (``batch``, in block order) and return the similarity of each
    pair (left[k], right[k]): exact Jaccard of shingle sets, or the signature estimate in datasketch mode."""
    from .sketch import detail_batch  # noqa: PLC0415 (sketch imports this module's task)

    return similarity(plan.mode, detail_batch(plan, batch), left, right)


def similarity(mode: str, detail, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Similarity of the pairs (left[k], right[k]) of rows of ``detail``: exact Jaccard of shingle sets
    (mode "exact"), or the estimate from a signature matrix (datasketch mode)."""
    return exact_jaccard(detail, left, right) if mode == "exact" else estimate_jaccard(detail, left, right)


def pair_similarity(table: pa.Table, plan, a, b, row_bytes: np.ndarray, max_rows: int, max_bytes: int, workers):
    """Similarity of the input rows a[k], b[k] of ``table`` (float64, aligned with the pairs), block by block
    on ``workers`` (a sketch.Workers): the same values as sketching every row once and comparing, for any
    block size or worker count, with only a block's rows and sets in memory at a time."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    out = np.empty(len(a), dtype=np.float64)
    blocks = pair_blocks(a, b, row_bytes, max_rows, max_bytes)
    jobs = [(rows, left, right) for _, rows, left, right in blocks]
    for (pairs, *_), values in zip(blocks, workers.map_rows("pairs", table, plan, jobs), strict=True):
        out[pairs] = values
    return out
