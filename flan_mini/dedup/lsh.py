"""LSH banding done columnar: datasketch's choice of bands x rows, band keys, and candidate pairs per bucket."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .hashing import U64, fmix64


@lru_cache(maxsize=64)
def optimal_params(threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """datasketch's ``MinHashLSH`` choice of (bands b, rows r) for a threshold: b*r <= num_perm minimising
    fp_weight * FP + fn_weight * FN, the areas under the LSH S-curve P(s) = 1 - (1 - s^r)^b:
    FP = integral_0^t P(s) ds (pairs below the threshold that collide), FN = integral_t^1 1 - P(s) ds.

    datasketch integrates each (b, r) with scipy's ``quad`` in a double loop; the integrands are polynomials
    of degree b*r <= num_perm, so Gauss-Legendre with num_perm/2 + 1 nodes is exact (to rounding) and one
    vectorised pass covers every (b, r). Ties keep the first (b, r) in datasketch's loop order (b, then r).
    Example: threshold 0.9, num_perm 128 -> (5, 25); threshold 0.8 -> (9, 13).
    """
    fp_weight, fn_weight = weights
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=np.float64)
    bands, rows = pairs[:, :1], pairs[:, 1:]
    nodes, node_weights = np.polynomial.legendre.leggauss(num_perm // 2 + 2)

    def integral(lo: float, hi: float, false_negative: bool) -> np.ndarray:
        s = (hi - lo) / 2 * nodes + (hi + lo) / 2
        miss = (1.0 - s[None, :] ** rows) ** bands  # P(a pair of similarity s never shares a band)
        values = miss if false_negative else 1.0 - miss
        return (values * node_weights).sum(axis=1) * (hi - lo) / 2

    error = fp_weight * integral(0.0, threshold, False) + fn_weight * integral(threshold, 1.0, True)
    b, r = pairs[int(np.argmin(error))]
    return int(b), int(r)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 key per (row, band): two rows get the same key in band k exactly when their signature values
    k*rows .. (k+1)*rows - 1 are all equal (datasketch's bucket test), up to a 2^-64-scale accident.

    The band's values are packed two per 64-bit word and folded with h <- fmix64(h ^ word), seeded by the band
    number; fmix64 is a bijection, so sequences that differ cannot collide except by chance.
    """
    n = len(signatures)
    keys = np.empty((n, bands), dtype=U64)
    for band in range(bands):
        h = fmix64(np.full(n, U64(band + 1), dtype=U64))
        for j in range(band * rows, (band + 1) * rows, 2):
            word = signatures[:, j].astype(U64)
            if j + 1 < (band + 1) * rows:
                word |= signatures[:, j + 1].astype(U64) << U64(32)
            h = fmix64(h ^ word)
        keys[:, band] = h
    return keys


def candidate_pairs(keys: np.ndarray, bucket_cap: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Distinct pairs (i < j) of rows that share a key in at least one band, sorted; i, j index ``keys``.

    Per band: find the keys held by two rows or more (a plain sort of the keys, SIMD-fast), keep only their rows
    (usually a few percent), sort those by key (stable, so members of a bucket stay in index order), find runs
    of equal keys, and pair the members of each run. Example: keys [7, 3, 7, 7] -> shared {7} -> rows 0, 2, 3
    -> bucket {0, 2, 3} -> (0,2) (0,3) (2,3). A stable argsort of every row per band cost 6x more.
    A bucket with more than ``bucket_cap`` members pairs each member with the first ``bucket_cap`` only,
    so its cost is linear in its size; callers order rows by keep priority, making those the likely keepers.
    """
    n = len(keys)
    codes = np.zeros(0, dtype=np.int64)  # pair (i, j) as i * n + j: sorted and distinct after each band
    oversized = 0
    largest = 0
    for band in range(keys.shape[1]):
        left, right, over, large = band_pairs(keys[:, band], bucket_cap)
        if not len(left):
            continue
        oversized += over
        largest = max(largest, large)
        # Merging band by band keeps memory at the distinct pairs, not bands x pairs.
        codes = np.union1d(codes, left * n + right)
    stats = {"oversized_buckets": oversized, "largest_bucket": largest}
    return codes // max(n, 1), codes % max(n, 1), stats


def band_pairs(column: np.ndarray, bucket_cap: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The pairs (left < right, positions in ``column``) of one band's keys, the number of its buckets over
    ``bucket_cap`` and its largest bucket (0 when no key repeats). See ``candidate_pairs``."""
    none = np.zeros(0, dtype=np.int64)
    rows_in = repeated_rows(column)  # ascending: bucket members stay in index order
    if not len(rows_in):
        return none, none, 0, 0
    order = rows_in[np.argsort(column[rows_in], kind="stable")]
    ordered = column[order]
    edges = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    starts = np.concatenate([[0], edges])
    sizes = np.diff(np.concatenate([starts, [len(order)]]))
    multi = sizes >= 2
    if not multi.any():
        return none, none, 0, 0
    lefts, rights, oversized = [], [], 0
    for size in np.unique(sizes[multi]):
        run_starts = starts[sizes == size]
        members = order[run_starts[:, None] + np.arange(size)]  # (runs, size), ascending within a run
        left, right = _pair_positions(int(size), bucket_cap)
        lefts.append(members[:, left].ravel())
        rights.append(members[:, right].ravel())
        oversized += int(len(run_starts)) if size > bucket_cap else 0
    return np.concatenate(lefts).astype(np.int64), np.concatenate(rights).astype(np.int64), oversized, int(sizes.max())


def repeated_rows(values: np.ndarray) -> np.ndarray:
    """Ascending indices of the entries of ``values`` (uint64) whose value occurs more than once.

    A plain sort (SIMD) finds the repeated values; Arrow's hash set (``is_in``) marks their rows. Both are
    several times cheaper than the stable argsort of every row that grouping would otherwise need, and
    usually only a few percent of the rows are left to sort. Example: [7, 3, 7, 9, 9] -> [0, 2, 3, 4].
    """
    ordered = np.sort(values)
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(shared):
        return np.zeros(0, dtype=np.int64)
    import pyarrow as pa
    import pyarrow.compute as pc

    member = pc.is_in(pa.array(values), value_set=pa.array(np.unique(shared)))
    return np.flatnonzero(member.to_numpy(zero_copy_only=False))


@lru_cache(maxsize=256)
def _pair_positions(size: int, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (left < right) of the pairs made inside one bucket of ``size`` members."""
    if size <= cap:
        return np.triu_indices(size, 1)
    left = np.concatenate([np.full(size - 1 - i, i) for i in range(cap)])
    right = np.concatenate([np.arange(i + 1, size) for i in range(cap)])
    return left, right
