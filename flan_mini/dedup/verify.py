"""Exact Jaccard of candidate pairs on their shingle sets, vectorised: per-row sorted sets, then one sort per chunk.

MinHash LSH only proposes pairs; exact mode decides them on the sets themselves, so no pair below the threshold
is ever accepted, whatever the bands. A shingle is compared by the top 48 bits of its 64-bit hash: two different
shingles of a pair are mistaken for one with probability |A| |B| / 2^48 (2e-11 for two 80-shingle documents).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hashing import U64

HASH_BITS = 48
_LOW = U64((1 << HASH_BITS) - 1)
# Tag bits above the 48-bit hash: row (or pair) numbers inside one sort, so at most 2^16 per sort.
TAG_LIMIT = 1 << (64 - HASH_BITS)
# Elements per pair-sort chunk: 8M uint64 (64 MB), large enough that numpy's sort dominates the Python loop.
CHUNK_ELEMENTS = 8 << 20


@dataclass
class ShingleSets:
    """Each row's distinct shingles (48-bit hashes, ascending) in one flat array: row i is
    ``values[offsets[i]:offsets[i+1]]``."""

    values: np.ndarray  # uint64
    offsets: np.ndarray  # int64, n + 1

    @staticmethod
    def concat(parts: list[ShingleSets]) -> ShingleSets:
        if not parts:
            return ShingleSets(np.zeros(0, U64), np.zeros(1, np.int64))
        values = np.concatenate([p.values for p in parts])
        sizes = np.concatenate([np.diff(p.offsets) for p in parts])
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return ShingleSets(values, offsets)


def shingle_sets(hashes: np.ndarray, offsets: np.ndarray) -> ShingleSets:
    """Distinct, sorted 48-bit shingle values per row from 64-bit shingle hashes (rows at ``offsets``).

    One sort of (row << 48 | hash >> 16) keys per 2^16 rows orders every row's values and keeps rows apart;
    a value equal to its predecessor (same row, same shingle) is a repeat and is dropped. Example: rows
    [h1 h2 h1] [h2] -> [h1 h2] [h2] (ascending within each row).
    """
    n = len(offsets) - 1
    values, sizes = [], []
    for lo in range(0, max(n, 1), TAG_LIMIT):
        hi = min(n, lo + TAG_LIMIT)
        start, stop = offsets[lo], offsets[hi]
        counts = np.diff(offsets[lo : hi + 1])
        tags = np.repeat(np.arange(hi - lo, dtype=U64), counts) << U64(HASH_BITS)
        keys = np.sort(tags | (hashes[start:stop] >> U64(64 - HASH_BITS)))
        fresh = np.ones(len(keys), dtype=bool)
        fresh[1:] = keys[1:] != keys[:-1]
        keys = keys[fresh]
        values.append(keys & _LOW)
        sizes.append(np.bincount((keys >> U64(HASH_BITS)).astype(np.int64), minlength=hi - lo))
    sizes = np.concatenate(sizes) if sizes else np.zeros(0, np.int64)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes[:n], out=out_offsets[1:])
    return ShingleSets(np.concatenate(values) if values else np.zeros(0, U64), out_offsets)


def exact_jaccard(sets: ShingleSets, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """|A & B| / |A | B| for the pairs (left[k], right[k]) of rows of ``sets``, as float64 (1.0 for two empty sets).

    For a chunk of pairs, both members' values are tagged with the pair's number in the chunk and sorted
    together: a shingle the two sets share appears twice in a row, so |A & B| is the count of equal
    neighbours per pair, and |A | B| = |A| + |B| - |A & B|. Example: A = {1, 5, 9}, B = {5, 9, 12} ->
    sorted 1 5 5 9 9 12 -> 2 repeats -> 2 / (3 + 3 - 2) = 0.5. Chunks hold at most 2^16 pairs and about
    CHUNK_ELEMENTS values, so memory stays bounded whatever the number of pairs.
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    out = np.empty(len(left), dtype=np.float64)
    sizes = np.diff(sets.offsets)
    work = np.cumsum(sizes[left] + sizes[right])
    lo = 0
    while lo < len(left):
        done = work[lo - 1] if lo else 0
        hi = int(np.searchsorted(work, done + CHUNK_ELEMENTS, side="right"))
        hi = min(len(left), lo + TAG_LIMIT, max(hi, lo + 1))
        out[lo:hi] = _chunk(sets, left[lo:hi], right[lo:hi], sizes)
        lo = hi
    return out


def _chunk(sets: ShingleSets, left: np.ndarray, right: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    members = np.stack([left, right], axis=1).ravel()  # pair k's rows at 2k and 2k + 1
    counts = sizes[members]
    # Gather every member's values in one go: position = row start + index within the member's run.
    run_start = np.zeros(len(members) + 1, dtype=np.int64)
    np.cumsum(counts, out=run_start[1:])
    shift = np.repeat(sets.offsets[members] - run_start[:-1], counts)
    gathered = sets.values[np.arange(run_start[-1], dtype=np.int64) + shift]
    pair = np.repeat(np.arange(len(left), dtype=U64), counts[0::2] + counts[1::2])
    keys = np.sort((pair << U64(HASH_BITS)) | gathered)
    repeated = keys[1:][keys[1:] == keys[:-1]]
    common = np.bincount((repeated >> U64(HASH_BITS)).astype(np.int64), minlength=len(left))
    union = counts[0::2] + counts[1::2] - common
    return np.divide(common, union, out=np.ones(len(left), dtype=np.float64), where=union > 0)
