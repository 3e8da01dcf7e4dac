"""Bottom-k per group: ranks of rows by position, and the pool keeping each group's k smallest (rank, file, row).

The same pool runs inside each per-file scan task (over that file's rows) and on the driver (over
the tasks' results, in file order): the k smallest of a union are the k smallest of the parts' k
smallest, so splitting the scan by file changes nothing. Ties between equal ranks (two rows whose
hashes collide) are broken by the file's content fingerprint, then the row's ordinal: a total order,
so the candidates never depend on which file arrived first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from .keys import mix64
from .quotas import NO_GROUP


def position_ranks(file_salt: int, ordinals: np.ndarray) -> np.ndarray:
    """Seeded ranks of rows by position: mix64(ordinal ^ salt(seed, source, file fingerprint))."""
    return mix64(ordinals.astype(np.uint64) ^ np.uint64(file_salt))


class BottomK:
    """Per-group bottom-k of (rank, file, ordinal), compacted lazily.

    Rows whose rank is above their group's current k-th smallest are dropped on arrival, so
    once a group is full almost nothing is appended: work is linear in the rows scanned and
    memory in the number of candidates. Compaction (a sort) only runs when some group holds more
    than its capacity, so groups that never fill (FLAN tasks under their cap) cost no sorting.
    `capacity_of(label)` is the group's k, asked once, when the group is first seen.
    """

    def __init__(self, capacity_of: Callable[[str], int]):
        self.capacity_of = capacity_of
        self.labels: list[str] = []
        self.index: dict[str, int] = {}
        self.capacity = np.zeros(0, np.int64)
        self.threshold = np.zeros(0, np.uint64)
        self.held = np.zeros(0, np.int64)  # candidates held per group, compacted or not
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.pending = 0
        self.kept = 0

    def add(self, label: str) -> int:
        """The group id of `label`, a new group if it was not seen yet."""
        if label in self.index:
            return self.index[label]
        self.index[label] = len(self.labels)
        self.labels.append(label)
        self.capacity = np.append(self.capacity, self.capacity_of(label))
        self.threshold = np.append(self.threshold, np.iinfo(np.uint64).max).astype(np.uint64)
        self.held = np.append(self.held, 0)
        return self.index[label]

    def group_ids(self, labels: pa.Array | None, n: int) -> np.ndarray:
        if labels is None:  # one group: the whole source
            return np.full(n, self.add(NO_GROUP), np.int32)
        encoded = labels.dictionary_encode()
        mapping = np.array([self.add(x) for x in encoded.dictionary.to_pylist()], np.int32)
        return mapping[np.asarray(encoded.indices.to_numpy(zero_copy_only=False))]

    def offer(self, rank: np.ndarray, group: np.ndarray, file: int, fingerprint: int, ordinal: np.ndarray) -> None:
        keep = rank <= self.threshold[group]
        count = int(keep.sum())
        if not count:
            return
        self.parts.append((rank[keep], group[keep], np.full(count, file, np.int32),
                           np.full(count, fingerprint, np.uint64), ordinal[keep]))
        self.held += np.bincount(group[keep], minlength=len(self.labels))
        self.pending += count
        if self.pending > max(1 << 16, 2 * self.kept) and (self.held > self.capacity).any():
            self.compact()

    def compact(self) -> tuple[np.ndarray, ...]:
        """Keep each group's `capacity` smallest; returns (rank, group, file, ordinal) sorted by
        (group, rank, file fingerprint, ordinal)."""
        if not self.parts:
            return np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
        rank, group, file, fingerprint, ordinal = (np.concatenate(cols) for cols in zip(*self.parts))
        order = sort_order(group, rank, fingerprint, ordinal, groups=len(self.labels))
        rank, group, file, fingerprint, ordinal = rank[order], group[order], file[order], fingerprint[order], ordinal[order]
        starts = np.searchsorted(group, np.arange(len(self.labels)))
        keep = (np.arange(len(group)) - starts[group]) < self.capacity[group]
        rank, group, file, fingerprint, ordinal = rank[keep], group[keep], file[keep], fingerprint[keep], ordinal[keep]
        self.held = np.bincount(group, minlength=len(self.labels))
        ends = np.searchsorted(group, np.arange(len(self.labels)), side="right")
        full = self.held >= self.capacity
        self.threshold[full] = rank[ends[full] - 1]
        self.parts = [(rank, group, file, fingerprint, ordinal)]
        self.kept = self.pending = len(rank)
        return rank, group, file, ordinal


def sort_order(group: np.ndarray, rank: np.ndarray, fingerprint: np.ndarray, ordinal: np.ndarray, *,
               groups: int) -> np.ndarray:
    """The stable order by (group, rank, fingerprint, ordinal): np.lexsort's, about 5x faster. One sort of a single
    key (the group in the top bits, the rank's high bits below it), then the runs that key leaves tied (equal
    ranks, or ranks that differ only in the bits the group took) sorted again on every key and the position."""
    bits = max(1, (groups - 1).bit_length())
    if bits >= 32:
        return np.lexsort((ordinal, fingerprint, rank, group))
    key = (group.astype(np.uint64) << np.uint64(64 - bits)) | (rank.astype(np.uint64) >> np.uint64(bits))
    order = np.argsort(key)
    key = key[order]
    tied = np.flatnonzero(key[1:] == key[:-1])
    if len(tied):
        in_run = np.zeros(len(key), bool)
        in_run[tied] = in_run[tied + 1] = True
        positions = np.flatnonzero(in_run)
        run = np.cumsum(np.r_[True, positions[1:] != positions[:-1] + 1] | np.r_[True, key[positions[1:]] != key[positions[:-1]]])
        rows = order[positions]
        order[positions] = rows[np.lexsort((rows, ordinal[rows], fingerprint[rows], rank[rows], run))]
    return order

