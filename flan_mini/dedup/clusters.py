"""Grouping: keep order, exact-key groups, connected components of verified pairs (union-find), keepers and reasons."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .lsh import repeated_rows


def exact_groups(keys: np.ndarray) -> np.ndarray:
    """For rows 0..m-1 with 128-bit keys (m x 2), the index of the first row with the same key.

    Rows are in keep-priority order, so the first row of a group is the one to keep. Example: keys
    [k1, k2, k1, k1] -> [0, 1, 0, 0].
    """
    m = len(keys)
    out = np.arange(m, dtype=np.int64)
    # Only rows whose first key half repeats can share a key (usually a few percent): sort just those.
    rows = repeated_rows(np.ascontiguousarray(keys[:, 0]))
    if len(rows) == 0:
        return out
    sub = keys[rows]
    order = rows[np.lexsort((sub[:, 1], sub[:, 0]))]  # stable: equal keys stay in row order
    ordered = keys[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    first = order[np.flatnonzero(new)]
    group = np.cumsum(new) - 1
    out[order] = first[group]
    return out


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """root[i] = the smallest node of i's connected component in the graph of edges (left[k], right[k]).

    A vectorised union-find: each round, every edge whose endpoints have different roots hooks the larger
    root under the smaller one (``minimum.at`` resolves several candidates for one root at once), then
    pointer jumping (parent <- parent[parent]) compresses every path to its root. Parents only ever
    decrease, so no cycle can form and the loop ends; the root of a component is its smallest node, which
    callers arrange to be the keeper. Example: edges (3,1) (1,2) (5,4): round 1 hooks 3->1, 2->1, 5->4;
    roots [0,1,1,1,4,4].
    """
    parent = np.arange(n, dtype=np.int64)
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    while len(left):
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        root_left, root_right = parent[left], parent[right]
        open_ = root_left != root_right
        if not open_.any():
            break
        left, right = left[open_], right[open_]
        small = np.minimum(root_left[open_], root_right[open_])
        large = np.maximum(root_left[open_], root_right[open_])
        np.minimum.at(parent, large, small)
    return parent


def keep_reasons(keeper_key: np.ndarray, runner_up_key: np.ndarray) -> np.ndarray:
    """Why each cluster's keeper won against the next member in keep order, given (priority, order) keys
    (k x 2 int64 each): "source_priority", then "order" (the selection's rank), else "id" (the tie-break)."""
    reasons = np.full(len(keeper_key), "id", dtype=object)
    by_order = keeper_key[:, 1] != runner_up_key[:, 1]
    reasons[by_order] = "order"
    by_priority = keeper_key[:, 0] != runner_up_key[:, 0]
    reasons[by_priority] = "source_priority"
    return reasons


def keep_order(priority: np.ndarray | None, order: np.ndarray, ids) -> np.ndarray:
    """Input rows sorted by (source priority, _order, id, input position): the keep order, best first.

    No position column: Arrow's sort_indices is stable, so input position breaks the last ties itself;
    ``priority`` None (one priority for all rows) is left out of the sort. int32 below 2^31 rows (half the
    memory per row of the order a dedup keeps)."""
    columns = {} if priority is None else {"priority": priority}
    columns.update(order=order, id=pc.cast(ids, pa.string()))
    keys = pa.table(columns)
    # The system allocator: the sort's temporaries go back to the OS (the default pool keeps them).
    sort_keys = [(name, "ascending") for name in columns]
    indices = pc.sort_indices(keys, sort_keys=sort_keys, memory_pool=pa.system_memory_pool())
    indices = indices.to_numpy().view(np.int64)
    return indices.astype(np.int32) if len(indices) < 2**31 else indices
