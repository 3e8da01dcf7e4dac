"""Exact mode: bands for recall, candidate pairs decided on the exact Jaccard of the shingle sets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dedup_helpers import WORDS

import flan_mini.dedup.verify as verify
from flan_mini.dedup.config import DedupConfig
from flan_mini.dedup.stage import dedup_table
from flan_mini.dedup.texts import TextSpec, compared_text
from flan_mini.dedup.verify import exact_jaccard, shingle_sets
from flan_mini.textnorm import TextNorm, normalize


def _flat(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    values = np.array([v for r in rows for v in r], dtype=np.uint64)
    return values, offsets


def test_shingle_sets_are_distinct_and_sorted_per_row():
    rng = np.random.default_rng(1)
    pool = rng.integers(0, 2**64, 40, dtype=np.uint64)
    rows = [list(rng.choice(pool, size=k)) for k in (5, 0, 30, 1, 12)]  # repeats within rows, rows overlap
    sets = shingle_sets(*_flat(rows))
    for index, row in enumerate(rows):
        got = sets.values[sets.offsets[index] : sets.offsets[index + 1]]
        want = sorted({int(v) >> 16 for v in row})
        assert got.tolist() == want


@pytest.mark.parametrize("tag_limit,chunk", [(1 << 16, 8 << 20), (3, 50)])
def test_exact_jaccard_equals_python_sets(monkeypatch, tag_limit, chunk):
    """Including empty rows, identical rows and pair chunks cut small (several sorts, one pair per chunk)."""
    monkeypatch.setattr(verify, "TAG_LIMIT", tag_limit)
    monkeypatch.setattr(verify, "CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(2)
    pool = rng.integers(0, 2**64, 120, dtype=np.uint64)
    rows = [list(rng.choice(pool, size=int(k))) for k in rng.integers(0, 60, 25)] + [[], []]
    rows.append(list(rows[3]))
    sets = shingle_sets(*_flat(rows))
    left = rng.integers(0, len(rows), 200)
    right = rng.integers(0, len(rows), 200)
    left = np.concatenate([left, [25, 3]])
    right = np.concatenate([right, [26, len(rows) - 1]])
    got = exact_jaccard(sets, left, right)
    for k, (i, j) in enumerate(zip(left.tolist(), right.tolist())):
        a, b = {int(v) >> 16 for v in rows[i]}, {int(v) >> 16 for v in rows[j]}
        want = len(a & b) / len(a | b) if a | b else 1.0
        assert got[k] == pytest.approx(want, abs=1e-12), (i, j)
    assert got[-2] == 1.0 and got[-1] == 1.0


def _shingles(text: str) -> set:
    tokens = normalize(pa.array([text]), TextNorm())[0].as_py().split()
    return {tuple(tokens[i : i + 5]) for i in range(max(1, len(tokens) - 4))}


def near_threshold_corpus():
    """80 originals of 150 random words and, for each, a copy with a block of words replaced, so that the
    pairs' exact Jaccard spreads over about [0.7, 0.95]: the band a threshold of 0.8 has to get right."""
    rng = np.random.default_rng(5)
    rows, pairs = [], []
    for i in range(80):
        words = list(rng.choice(WORDS, size=150))
        rows.append({"id": f"o{i:02d}", "recipe_source": "s", "prompt": f"Task {i}", "response": " ".join(words)})
        copy = list(words)
        changed = int(rng.integers(1, 5))  # 1-4 scattered edits of 1-3 words each
        for _ in range(changed):
            start = int(rng.integers(0, 147))
            copy[start : start + 3] = [f"edit{i}x{start}{k}" for k in range(3)]
        rows.append({"id": f"c{i:02d}", "recipe_source": "s", "prompt": f"Task {i}", "response": " ".join(copy),
                     "_order": 1000 + i})
        pairs.append((f"o{i:02d}", f"c{i:02d}"))
    return rows, pairs


def test_exact_mode_finds_pairs_near_the_threshold_and_never_accepts_one_below(make_table):
    rows, pairs = near_threshold_corpus()
    table = make_table(rows)
    texts = dict(zip(table.column("id").to_pylist(), compared_text(table, TextSpec()).to_pylist()))
    truth = {copy: len(a & b) / len(a | b)
             for original, copy in pairs
             for a, b in [(_shingles(texts[original]), _shingles(texts[copy]))]}
    near = {copy for copy, j in truth.items() if 0.8 <= j < 0.9}
    below = {copy for copy, j in truth.items() if j < 0.8}
    assert len(near) >= 20 and len(below) >= 10  # the fixture straddles the threshold

    exact = dedup_table(table, DedupConfig(threshold=0.8))
    removed = set(table.filter(pc.invert(exact.keep)).column("id").to_pylist())
    assert removed <= {copy for copy, j in truth.items() if j >= 0.8}  # precision is exact
    assert len(removed & near) >= 0.9 * len(near)
    # The clusters report the exact Jaccard to the keeper.
    for row in exact.clusters.to_pylist():
        if row["kind"] == "near":
            assert row["similarity"] == pytest.approx(truth[row["id"]], abs=1e-12)
    assert exact.stats["parameters"]["mode"] == "exact"
    assert (exact.stats["parameters"]["bands"], exact.stats["parameters"]["rows"]) == (16, 8)

    parity = dedup_table(table, DedupConfig(threshold=0.8, mode="datasketch"))
    removed_parity = set(table.filter(pc.invert(parity.keep)).column("id").to_pylist())
    assert len(removed_parity & near) < len(removed & near)  # datasketch's bands miss pairs near the threshold


def test_only_rows_of_candidate_pairs_are_sketched_again(planted):
    table, expected = planted
    result = dedup_table(table, DedupConfig())
    lsh = result.stats["lsh"]
    assert 0 < lsh["rows_in_candidate_pairs"] <= 2 * lsh["candidate_pairs"]
    assert lsh["rows_in_candidate_pairs"] < table.num_rows // 2


def test_modes_and_their_band_weights():
    assert DedupConfig().mode == "exact" and DedupConfig().optimiser_weights() == (0.05, 0.95)
    assert DedupConfig(mode="datasketch").optimiser_weights() == (0.5, 0.5)
    assert DedupConfig(mode="datasketch").lsh_params() == (9, 13)
    assert DedupConfig(weights=(0.5, 0.5)).lsh_params() == (9, 13)
    assert DedupConfig(bands=32, rows=4).lsh_params() == (32, 4)


def test_a_table_in_several_chunks_gives_the_same_result(planted):
    """Candidate rows are gathered record batch by record batch: chunk edges must not matter."""
    table, _ = planted
    chunked = pa.concat_tables([table.slice(0, 70), table.slice(70, 1), table.slice(71, 60), table.slice(131)])
    assert chunked.column("conversations").num_chunks == 4
    one, many = dedup_table(table, DedupConfig()), dedup_table(chunked, DedupConfig(), workers=2)
    assert one.keep.equals(many.keep) and one.clusters.equals(many.clusters) and one.stats == many.stats
    assert one.stats["near"] > 0
