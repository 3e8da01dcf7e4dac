"""Union-find and exact groups against plain Python references on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from flan_mini.dedup.clusters import connected_components, exact_groups


def python_components(n: int, edges: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(x) for x in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_components_match_python_union_find(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    m = int(rng.integers(0, 2 * n))
    left, right = rng.integers(0, n, m), rng.integers(0, n, m)
    ours = connected_components(n, left, right)
    assert ours.tolist() == python_components(n, list(zip(left.tolist(), right.tolist())))
    # Roots are the smallest member, whatever the edge order.
    flipped = connected_components(n, right[::-1], left[::-1])
    assert np.array_equal(ours, flipped)


def test_long_chain_and_star():
    n = 5000
    chain = np.arange(n - 1)
    assert (connected_components(n, chain[::-1], chain[::-1] + 1) == 0).all()
    star = connected_components(n, np.full(n - 1, n - 1), np.arange(n - 1))
    assert (star == 0).all()


def test_exact_groups_point_at_first_occurrence():
    keys = np.array([[5, 1], [2, 2], [5, 1], [5, 2], [2, 2], [5, 1]], dtype=np.uint64)
    assert exact_groups(keys).tolist() == [0, 1, 0, 3, 1, 0]
    assert exact_groups(np.zeros((0, 2), dtype=np.uint64)).tolist() == []


def test_repeated_rows_are_the_rows_of_values_seen_twice():
    from collections import Counter

    from flan_mini.dedup.lsh import repeated_rows

    rng = np.random.default_rng(4)
    values = rng.integers(0, 300, 1000).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    counts = Counter(values.tolist())
    assert repeated_rows(values).tolist() == [i for i, v in enumerate(values.tolist()) if counts[v] > 1]
    assert repeated_rows(np.arange(10, dtype=np.uint64)).tolist() == []
    assert repeated_rows(np.zeros(0, dtype=np.uint64)).tolist() == []
