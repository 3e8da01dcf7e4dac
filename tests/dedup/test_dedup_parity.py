"""Parity with datasketch 2.0, the reference: permutations, signatures, band choice, LSH candidates, results."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param
from dedup_helpers import random_text

from flan_mini.dedup.config import DedupConfig
from flan_mini.dedup.lsh import band_keys, candidate_pairs, optimal_params
from flan_mini.dedup.minhash import EMPTY, estimate_jaccard, permutations, signatures
from flan_mini.dedup.shingle import shingle_hashes, token_values
from flan_mini.dedup.stage import dedup_table
from flan_mini.dedup.texts import TextSpec, compared_text
from flan_mini.textnorm import TextNorm, normalize, tokenize


@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 42), (256, 7)])
def test_permutations_are_datasketchs(num_perm, seed):
    a, b = permutations(num_perm, seed)
    reference = MinHash(num_perm=num_perm, seed=seed).permutations
    assert reference.dtype == np.uint32  # datasketch 2.0's default scheme, affine32
    assert np.array_equal(a, reference[0]) and np.array_equal(b, reference[1])


def test_signatures_equal_datasketch_bit_for_bit():
    """Given the same 32-bit shingle hashes (datasketch's `hashfunc` output), signatures are identical,
    including an empty row and a row long enough to span several chunks of the vectorised kernel."""
    rng = np.random.default_rng(0)
    lengths = [3, 0, 1, 40_000, 250, 0, 17]
    shingles = rng.integers(0, 2**32, sum(lengths), dtype=np.uint64).astype(np.uint32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for num_perm, seed in [(128, 1), (100, 3)]:
        a, b = permutations(num_perm, seed)
        ours = signatures(shingles, offsets, a, b)
        for row in range(len(lengths)):
            reference = MinHash(num_perm=num_perm, seed=seed, hashfunc=int)
            reference.update_batch(shingles[offsets[row] : offsets[row + 1]].tolist())
            assert np.array_equal(ours[row], reference.hashvalues), (num_perm, row)
        assert (ours[1] == EMPTY).all() and (ours[5] == EMPTY).all()


def _word_shingles(text: str, n: int = 5) -> list[bytes]:
    tokens = text.split()
    return list({" ".join(tokens[i : i + n]).encode() for i in range(max(1, len(tokens) - n + 1))})


def test_estimates_agree_with_datasketch_sha1_minhash_within_minhash_error():
    """datasketch hashes shingle bytes with SHA-1, we with xxh64 + polynomial windows: different hash
    functions, same estimator. Both estimate the same exact Jaccard with standard error sqrt(J(1-J)/k)."""
    rng = np.random.default_rng(11)
    base = [random_text(rng, 120) for _ in range(60)]
    variants = []
    for i, text in enumerate(base):
        words = text.split()
        for position in rng.choice(len(words), size=i % 20, replace=False):
            words[position] = "new" + str(position)
        variants.append(" ".join(words))
    texts = pa.array(base + variants)
    norm = TextNorm()
    values, offsets = token_values(tokenize(texts, norm), "word")
    shingles, shingle_offsets, _ = shingle_hashes(values, offsets, 5)
    k = 256
    sig = signatures(shingles, shingle_offsets, *permutations(k, 1))
    ours = estimate_jaccard(sig, np.arange(60), np.arange(60, 120))
    normalised = normalize(texts, norm).to_pylist()
    minhashes = MinHash.bulk([_word_shingles(t) for t in normalised], num_perm=k, seed=1)
    theirs = np.array([minhashes[i].jaccard(minhashes[60 + i]) for i in range(60)])
    exact = np.array([
        len(set(_word_shingles(normalised[i])) & set(_word_shingles(normalised[60 + i])))
        / len(set(_word_shingles(normalised[i])) | set(_word_shingles(normalised[60 + i])))
        for i in range(60)
    ])
    sigma = np.sqrt(np.maximum(exact * (1 - exact), 0.01) / k)
    assert np.all(np.abs(ours - exact) <= 4 * sigma)
    assert np.all(np.abs(theirs - exact) <= 4 * sigma)
    assert np.all(np.abs(ours - theirs) <= 4 * np.sqrt(2) * sigma)
    # And the errors are unbiased: their mean is well inside the standard error of a mean of 60.
    assert abs(np.mean(ours - exact)) < 3 * np.mean(sigma) / np.sqrt(60) + 1e-3


def test_band_choice_is_datasketchs_optimiser():
    grid = [(t, p) for p in (16, 64, 128, 200) for t in (0.1, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)]
    for threshold, num_perm in grid:
        assert optimal_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5), (threshold, num_perm)
    for weights in [(0.2, 0.8), (0.8, 0.2)]:
        assert optimal_params(0.7, 128, weights) == _optimal_param(0.7, 128, *weights)
    assert DedupConfig(threshold=0.9, mode="datasketch").lsh_params() == (MinHashLSH(threshold=0.9, num_perm=128).b,
                                                       MinHashLSH(threshold=0.9, num_perm=128).r)


def _clustered_signatures(rng, rows: int, num_perm: int) -> np.ndarray:
    """Signatures in groups whose members share a random share of their values (so some bands collide)."""
    sig = rng.integers(0, 2**32, (rows, num_perm), dtype=np.uint64).astype(np.uint32)
    for start in range(0, rows, 5):
        share = rng.random()
        for member in range(start + 1, min(rows, start + 5)):
            same = rng.random(num_perm) < share
            sig[member, same] = sig[start, same]
    return sig


@pytest.mark.parametrize("bands,rows", [(16, 8), (9, 13), (32, 4)])
def test_candidate_pairs_equal_datasketch_lsh_queries(bands, rows):
    rng = np.random.default_rng(bands)
    num_perm = bands * rows + (3 if bands == 9 else 0)  # datasketch may leave permutations unused
    sig = _clustered_signatures(rng, 400, num_perm)
    left, right, _ = candidate_pairs(band_keys(sig, bands, rows), bucket_cap=1000)
    ours = set(zip(left.tolist(), right.tolist()))

    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    minhashes = [MinHash(num_perm=num_perm, hashvalues=s, scheme="affine32") for s in sig]
    for key, minhash in enumerate(minhashes):
        lsh.insert(key, minhash)
    theirs = {(min(i, j), max(i, j)) for i, m in enumerate(minhashes) for j in lsh.query(m) if i != j}
    assert ours == theirs and len(ours) > 50


def test_bucket_cap_bounds_pairs_but_keeps_everyone_connected():
    keys = np.full((300, 1), 42, dtype=np.uint64)  # one bucket of 300
    left, right, stats = candidate_pairs(keys, bucket_cap=4)
    assert stats["oversized_buckets"] == 1 and stats["largest_bucket"] == 300
    assert len(left) == sum(300 - 1 - i for i in range(4))
    assert set(left.tolist()) == {0, 1, 2, 3} and set(right.tolist()) == set(range(1, 300))


def test_same_duplicates_as_a_datasketch_pipeline(planted):
    """The whole stage against a pipeline built from datasketch's own objects on the same normalised text:
    MinHash.bulk (SHA-1) + MinHashLSH with the same bands x rows + jaccard >= threshold + union-find,
    keeping the earliest row in keep order. The planted duplicates (all far from the threshold) match."""
    table, expected = planted
    config = DedupConfig(threshold=0.8, mode="datasketch")
    ours = dedup_table(table, config)

    order = np.argsort(table.column("_order").to_numpy(), kind="stable")  # one source priority: _order decides
    normalised = normalize(compared_text(table, TextSpec()), TextNorm()).to_pylist()
    minhashes = MinHash.bulk([_word_shingles(normalised[i]) for i in order], num_perm=128, seed=1)
    lsh = MinHashLSH(num_perm=128, params=config.lsh_params())
    for key, minhash in enumerate(minhashes):
        lsh.insert(key, minhash)
    parent = list(range(len(minhashes)))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for key, minhash in enumerate(minhashes):
        for other in lsh.query(minhash):
            if other > key and minhash.jaccard(minhashes[other]) >= config.threshold:
                a, b = find(key), find(other)
                parent[max(a, b)] = min(a, b)
    ids = table.column("id").to_pylist()
    theirs = {ids[order[k]] for k in range(len(parent)) if find(k) != k}
    assert theirs == set(table.filter(pc.invert(ours.keep)).column("id").to_pylist())
    assert theirs == {copy for copy, (kind, _) in expected.items() if kind != "keep"}
