"""make_ids builds `<source>-<16 hex>` ids columnar; they equal the plain per-row formatting, copies suffixed."""

from __future__ import annotations

import numpy as np

from flan_mini.stages.render import make_ids


def plain_ids(name: str, keys: np.ndarray) -> list[str]:
    seen: dict[int, int] = {}
    out = []
    for key in keys.tolist():  # rows in rank order: the n-th copy of a key gets -n
        count = seen.get(key, 0)
        seen[key] = count + 1
        out.append(f"{name}-{key:016x}" + (f"-{count}" if count else ""))
    return out


def test_ids_match_plain_formatting_on_random_keys():
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 2000):
        keys = rng.integers(0, 2**64, n, dtype=np.uint64)
        if n > 3:
            keys[:3] = [0, 2**64 - 1, 255]
            keys[rng.integers(0, n, n // 10)] = keys[rng.integers(0, n, n // 10)]  # copies
        for name in ("flan2021", "código-x"):
            ids = make_ids(name, keys)
            assert str(ids.type) == "string" and ids.to_pylist() == plain_ids(name, keys)
