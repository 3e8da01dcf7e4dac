"""Quotas per group: weights (examples-proportional with caps, or an adapter's own) apportioned to exact integers."""

from __future__ import annotations

import numpy as np

NO_GROUP = ""  # the label of a source's one group when it has no groups


def apportion(total: int, weights, upper, labels: list[str]) -> np.ndarray:
    """Split `total` into integers proportional to `weights`, none above `upper` (water-filling).

    Largest remainder with exact integer arithmetic; ties go to the smaller label, so the result
    depends only on the groups and their weights. Examples:
    apportion(10, [5, 15], [99, 99], ['a', 'b']) -> [3, 7]  (shares 2.5 / 7.5, the .5 tie goes to 'a');
    apportion(10, [5, 15], [99, 4], ['a', 'b'])  -> [6, 4]  ('b' is clamped at 4, 'a' takes the rest).
    """
    weights = np.asarray(weights, dtype=np.int64)
    upper = np.asarray(upper, dtype=np.int64)
    alloc = np.zeros(len(weights), np.int64)
    active = (weights > 0) & (upper > 0)
    label_rank = {label: i for i, label in enumerate(sorted(labels))}
    while True:
        remaining = int(total - alloc.sum())
        idx = np.flatnonzero(active)
        if remaining <= 0 or not len(idx):
            return alloc
        w = [int(x) for x in weights[idx]]
        total_w = sum(w)
        shares = [remaining * x // total_w for x in w]
        remainders = [remaining * x % total_w for x in w]
        for j in sorted(range(len(idx)), key=lambda j: (-remainders[j], label_rank[labels[idx[j]]]))[: remaining - sum(shares)]:
            shares[j] += 1
        proposed = alloc[idx] + np.array(shares, np.int64)
        over = proposed > upper[idx]
        if not over.any():
            alloc[idx] = proposed
            return alloc
        # Clamp the groups that overflow, and share what they could not take among the others.
        alloc[idx[over]] = upper[idx[over]]
        active[idx[over]] = False


def group_weights(adapter, labels: list[str], matched: np.ndarray, learnt: dict) -> tuple[np.ndarray, np.ndarray]:
    """(weight, most rows) per group: the adapter's (FLAN 2022's mixture, a mixed export's own proportions),
    or else examples-proportional with caps: each group weighs min(its rows, cap), and gives at most that.
    `learnt`: what the scan learnt for the adapter (FLAN: each task's submix)."""
    custom = adapter.group_weights(labels, [int(m) for m in matched], learnt) if labels != [NO_GROUP] else None
    if custom is not None:
        weights, upper = (np.asarray(x, np.int64) for x in custom)
    else:
        caps = [adapter.group_cap(label, learnt) if label != NO_GROUP else None for label in labels]
        weights = upper = np.array([min(m, c) if c is not None else m for m, c in zip(matched, caps)], np.int64)
    return weights, upper
