"""MinHash signatures exactly as datasketch 2.0 defines them (scheme "affine32"), computed for a whole batch."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .hashing import U32, fmix32

# datasketch's "empty" value for scheme affine32: a signature with nothing hashed into it.
EMPTY = U32(0xFFFFFFFF)


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of datasketch's ``MinHash(num_perm, seed, scheme="affine32").permutations``.

    Drawn the way datasketch draws them, from ``np.random.RandomState(seed)`` (the legacy generator is
    datasketch's contract, not a choice of ours): a odd in [1, 2^32), b in [0, 2^32). Because a is odd,
    h -> a*h + b mod 2^32 is a bijection, so the permutation step adds no collisions.
    """
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=U32) * U32(2) + U32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=U32)
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


def signatures(shingles: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures (n x num_perm uint32) of the n rows whose shingle hashes are shingles[offsets[i]:offsets[i+1]].

    Value k of row i is min over its shingles h of (a_k * fmix32(h) + b_k) mod 2^32 -- what
    ``MinHash(num_perm, seed, hashfunc=lambda h: h).update_batch(row_shingles)`` stores in ``hashvalues``.
    Rows without shingles get the empty signature (all 0xFFFFFFFF), as datasketch does.

    The work is a (num_perm x chunk) product per chunk of shingles, laid out so the per-row minimum is a
    ``minimum.reduceat`` along contiguous memory, with the chunk sized to stay in cache. Rows may span
    chunks (a MB-long text has ~10^5 shingles): segments are cut at row starts and at chunk edges, the
    minimum is taken per segment, then per row over its segments. Example, chunk 4, rows of 3 and 6 shingles:
    segments [0,3) [3,4) [4,8) [8,9) -> row 0 = seg 0, row 1 = min(seg 1, seg 2, seg 3).
    """
    num_perm = len(a)
    n = len(offsets) - 1
    out = np.empty((n, num_perm), dtype=U32)
    counts = np.diff(offsets)
    out[counts == 0] = EMPTY
    rows = np.flatnonzero(counts > 0)
    total = len(shingles)
    if total == 0:
        return out
    h = fmix32(np.ascontiguousarray(shingles, dtype=U32))
    chunk = max(256, (1 << 18) // num_perm)  # a 1 MB buffer stays in L2: measured ~15% faster than 4 MB
    row_starts = offsets[rows]
    segments = np.union1d(row_starts, np.arange(0, total, chunk, dtype=np.int64))
    segment_min = np.empty((num_perm, len(segments)), dtype=U32)
    chunk_first = np.searchsorted(segments, np.arange(0, total + chunk, chunk, dtype=np.int64))
    buffer = np.empty((num_perm, chunk), dtype=U32)
    a_col, b_col = a[:, None], b[:, None]
    for index in range((total + chunk - 1) // chunk):
        lo = index * chunk
        hi = min(total, lo + chunk)
        view = buffer[:, : hi - lo]
        np.multiply(a_col, h[None, lo:hi], out=view)
        np.add(view, b_col, out=view)
        s0, s1 = chunk_first[index], chunk_first[index + 1]
        segment_min[:, s0:s1] = np.minimum.reduceat(view, segments[s0:s1] - lo, axis=1)
    first_segment = np.searchsorted(segments, row_starts)
    out[rows] = np.minimum.reduceat(segment_min, first_segment, axis=1).T
    return out


def estimate_jaccard(sig: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Share of equal values between rows left[k] and right[k] of ``sig`` (datasketch's ``MinHash.jaccard``),
    as float64. Rows are gathered a chunk at a time, so millions of pairs cost no more than a chunk of memory."""
    out = np.empty(len(left), dtype=np.float64)
    for lo in range(0, len(left), chunk):
        hi = lo + chunk
        out[lo:hi] = np.count_nonzero(sig[left[lo:hi]] == sig[right[lo:hi]], axis=1)
    return out / sig.shape[1]
