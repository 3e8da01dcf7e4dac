"""The dedup stage on tables: what is removed and kept, keep policy, scope, compared text, bad input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dedup_helpers import WORDS, random_text

from flan_mini.dedup.config import DedupConfig
from flan_mini.dedup.report import CLUSTERS_SCHEMA
from flan_mini.dedup.stage import dedup_table
from flan_mini.dedup.texts import TextSpec, compared_text
from flan_mini.errors import FlanMiniError
from flan_mini.textnorm import TextNorm, normalize


def removed_ids(table: pa.Table, result) -> set[str]:
    return set(table.filter(pc.invert(result.keep)).column("id").to_pylist())


def exact_jaccard(a: str, b: str, n: int = 5) -> float:
    def shingles(text):
        tokens = normalize(pa.array([text]), TextNorm())[0].as_py().split()
        return {tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1))}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_planted_exact_and_near_duplicates_go_and_similar_rows_stay(planted):
    table, expected = planted
    texts = dict(zip(table.column("id").to_pylist(), compared_text(table, TextSpec()).to_pylist()))
    # The fixture is what it claims: near copies well above 0.8, distinct-but-similar well below.
    for copy, (kind, original) in expected.items():
        j = exact_jaccard(texts[copy], texts[original])
        assert {"exact": j == 1.0, "near": 0.85 <= j < 1.0, "keep": 0.3 <= j <= 0.7}[kind], (copy, kind, j)

    result = dedup_table(table, DedupConfig(threshold=0.8))

    should_go = {copy for copy, (kind, _) in expected.items() if kind != "keep"}
    assert removed_ids(table, result) == should_go
    clusters = result.clusters
    assert clusters.schema == CLUSTERS_SCHEMA
    by_id = {row["id"]: row for row in clusters.to_pylist()}
    for copy in should_go:
        kind, original = expected[copy]
        row = by_id[copy]
        assert row["keeper_id"] == original and not row["is_keeper"] and row["kind"] == kind
        assert by_id[original]["is_keeper"] and by_id[original]["cluster_id"] == row["cluster_id"]
        assert row["reason"] == "order"  # originals have the lower _order
        if kind == "exact":
            assert row["similarity"] == 1.0
        else:
            assert 0.75 <= row["similarity"] < 1.0
    stats = result.stats
    assert stats["exact"] == sum(k == "exact" for k, _ in expected.values())
    assert stats["near"] == sum(k == "near" for k, _ in expected.values())
    assert stats["kept"] == table.num_rows - len(should_go) == int(pc.sum(result.keep).as_py())
    assert stats["clusters"] == len(should_go) and stats["cluster_sizes"] == {"2": len(should_go)}
    per_source = stats["sources"]
    assert sum(s["rows_in"] for s in per_source.values()) == table.num_rows
    for name, counts in per_source.items():
        in_source = [i for i, s in zip(table.column("id").to_pylist(), table.column("recipe_source").to_pylist())
                     if s == name]
        assert counts["exact"] + counts["near"] == len(should_go & set(in_source))
        assert counts["kept"] == counts["rows_in"] - counts["exact"] - counts["near"]
    assert stats["parameters"]["bands"] * stats["parameters"]["rows"] <= 128


def test_result_does_not_depend_on_row_order_batches_or_workers(planted):
    table, _ = planted
    config = DedupConfig(threshold=0.8)
    reference = dedup_table(table, config)

    def by_id(tbl, result):
        return dict(zip(tbl.column("id").to_pylist(), result.keep.to_pylist()))

    shuffled = table.take(pa.array(np.random.default_rng(3).permutation(table.num_rows)))
    variants = [
        (shuffled, dedup_table(shuffled, config)),
        (table, dedup_table(table, config.model_copy(update={"batch_rows": 7}))),
        (table, dedup_table(table, config, batch_bytes=5000)),
        (shuffled, dedup_table(shuffled, config.model_copy(update={"batch_rows": 23}), workers=2)),
    ]
    for tbl, result in variants:
        assert by_id(tbl, result) == by_id(table, reference)
        assert result.clusters.equals(reference.clusters)
        assert result.stats == reference.stats


def test_keep_policy_source_priority_then_order_then_id(make_table):
    text = "the same instruction text that appears in two different instruction sets " * 3
    rows = [
        {"id": "z", "recipe_source": "sharegpt", "prompt": text, "response": "ok", "_order": 0},
        {"id": "y", "recipe_source": "alpaca", "prompt": text, "response": "ok", "_order": 5},
        {"id": "x", "recipe_source": "alpaca", "prompt": text, "response": "ok", "_order": 5},
    ]
    table = make_table(rows)

    def keeper(config, **kwargs):
        result = dedup_table(table, config, **kwargs)
        row = [r for r in result.clusters.to_pylist() if r["is_keeper"]]
        assert len(row) == 1 and result.stats["exact"] == 2
        return row[0]["id"], row[0]["reason"]

    assert keeper(DedupConfig()) == ("z", "order")  # no priority: lowest _order wins
    assert keeper(DedupConfig(keep=["alpaca"])) == ("x", "id")  # alpaca first; _order ties; id "x" < "y"
    assert keeper(DedupConfig(keep=["alpaca", "sharegpt"]), priority=["sharegpt"]) == ("z", "source_priority")
    two = make_table(rows[:2])
    result = dedup_table(two, DedupConfig(keep=["alpaca"]))
    assert result.clusters.column("reason").to_pylist() == ["source_priority"] * 2


def test_scope_source_keeps_cross_source_duplicates(make_table):
    text = "a duplicated instruction about rivers and mountains and forests " * 4
    rows = [
        {"id": "a1", "recipe_source": "a", "prompt": text, "response": "r"},
        {"id": "a2", "recipe_source": "a", "prompt": text, "response": "r"},
        {"id": "b1", "recipe_source": "b", "prompt": text, "response": "r"},
    ]
    table = make_table(rows)
    assert removed_ids(table, dedup_table(table, DedupConfig(scope="global"))) == {"a2", "b1"}
    assert removed_ids(table, dedup_table(table, DedupConfig(scope="source"))) == {"a2"}


def test_compared_text_decides_what_is_a_duplicate(make_table):
    rng = np.random.default_rng(1)
    problem = random_text(rng, 80)
    rows = [
        {"id": "s1", "recipe_source": "code", "prompt": problem, "response": random_text(rng, 80)},
        {"id": "s2", "recipe_source": "code", "prompt": problem, "response": random_text(rng, 80)},
    ]
    table = make_table(rows)
    # One problem with two different solutions is not a duplicate of itself ...
    assert removed_ids(table, dedup_table(table, DedupConfig())) == set()
    # ... unless only prompts are compared.
    assert removed_ids(table, dedup_table(table, DedupConfig(compare="prompt"))) == {"s2"}
    assert removed_ids(table, dedup_table(table, DedupConfig(compare="response"))) == set()
    same_answer = make_table([{**rows[0], "id": "t1"}, {**rows[0], "id": "t2", "prompt": random_text(rng, 80)}])
    assert removed_ids(same_answer, dedup_table(same_answer, DedupConfig(compare="response"))) == {"t2"}


def test_rows_with_nothing_to_compare_are_kept_and_counted(make_table):
    rows = [
        {"id": "p1", "recipe_source": "s", "prompt": "???", "response": "!!!"},
        {"id": "p2", "recipe_source": "s", "prompt": "...", "response": "--"},
        {"id": "r1", "recipe_source": "s", "prompt": "hello there", "response": "general kenobi"},
    ]
    table = make_table(rows)
    result = dedup_table(table, DedupConfig())
    assert result.keep.to_pylist() == [True, True, True]
    assert result.stats["skipped_empty"] == 2 and result.stats["sources"]["s"]["skipped_empty"] == 2
    assert result.clusters.num_rows == 0
    prompts_only = dedup_table(table, DedupConfig(compare="response", keep=["s"]))
    assert prompts_only.stats["skipped_empty"] == 2


def _conversations_with_raw_values(values: list[bytes]) -> pa.Array:
    """conversations whose gpt values are raw bytes, invalid UTF-8 included (as a Parquet file can hold)."""
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in values])]).astype(np.int32)
    data = pa.py_buffer(b"".join(values))
    strings = pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets.tobytes()), data])
    prompts = pa.array(["say something"] * len(values))
    turn_values = pa.concat_arrays([prompts, strings]).take(
        pa.array(np.stack([np.arange(len(values)), np.arange(len(values)) + len(values)], 1).ravel())
    )
    roles = pa.array(["human", "gpt"] * len(values))
    turns = pa.StructArray.from_arrays([roles, turn_values], names=["from", "value"])
    return pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * len(values) + 1, 2, dtype=np.int32)), turns)


def test_invalid_utf8_is_repaired_and_counted(make_table):
    surrogate = "a lone surrogate encoded as CESU-8 bytes ".encode() * 3 + b"\xed\xa0\x80 end"
    values = [surrogate, surrogate, b"plain valid text that differs from the others entirely"]
    base = make_table([{"id": f"u{i}", "recipe_source": "s", "prompt": "x", "response": "y"} for i in range(3)])
    table = base.set_column(2, "conversations", _conversations_with_raw_values(values))
    result = dedup_table(table, DedupConfig())
    assert result.stats["invalid_utf8"] == 2
    assert result.keep.to_pylist() == [True, False, True]


def test_huge_texts_are_cut_to_max_chars_and_counted(make_table):
    rng = np.random.default_rng(5)
    head = random_words(rng, 3000)
    rows = [
        {"id": "h1", "recipe_source": "s", "prompt": "p", "response": head + random_words(rng, 200_000)},
        {"id": "h2", "recipe_source": "s", "prompt": "p", "response": head + random_words(rng, 200_000)},
    ]
    table = make_table(rows)  # two ~1.3 MB rows that share only their first ~20k characters
    full = dedup_table(table, DedupConfig(max_chars=None))
    assert full.keep.to_pylist() == [True, True] and full.stats["truncated"] == 0
    cut = dedup_table(table, DedupConfig(max_chars=10_000))
    assert cut.stats["truncated"] == 2 and cut.keep.to_pylist() == [True, False]


def random_words(rng, count: int) -> str:
    return " " + " ".join(rng.choice(WORDS, size=count))


def test_table_without_order_or_with_bad_columns_is_a_clear_error(make_table):
    table = make_table([{"id": "a", "recipe_source": "s", "prompt": "p", "response": "r"}])
    with pytest.raises(FlanMiniError, match="_order"):
        dedup_table(table.drop_columns(["_order"]), DedupConfig())
    with pytest.raises(FlanMiniError, match="conversations"):
        dedup_table(table.drop_columns(["conversations"]), DedupConfig())
    bad = table.set_column(table.schema.get_field_index("_order"), "_order", pa.array([1.5]))
    with pytest.raises(FlanMiniError, match="integers"):
        dedup_table(bad, DedupConfig())


def test_empty_table(make_table):
    table = make_table([])
    result = dedup_table(table, DedupConfig())
    assert len(result.keep) == 0 and result.clusters.num_rows == 0 and result.stats["rows_in"] == 0


def _exact_jaccard(a: str, b: str, kind: str, n: int) -> float:
    def shingles(text):
        normal = normalize(pa.array([text]), TextNorm())[0].as_py()
        units = normal.split() if kind == "word" else list(normal)
        return {tuple(units[i : i + n]) for i in range(max(1, len(units) - n + 1))}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


@pytest.mark.parametrize("kind,size,threshold", [("word", 5, 0.8), ("word", 3, 0.6), ("char", 9, 0.85), ("char", 5, 0.7)])
def test_removed_rows_match_exact_jaccard_truth(planted, kind, size, threshold):
    """Whatever the shingling and threshold: a planted copy goes iff its exact Jaccard to its original
    (computed on the same shingles with Python sets) is >= threshold; pairs within 0.1 are not judged."""
    table, expected = planted
    texts = dict(zip(table.column("id").to_pylist(), compared_text(table, TextSpec()).to_pylist()))
    config = DedupConfig(threshold=threshold, shingle={"kind": kind, "size": size})
    removed = removed_ids(table, dedup_table(table, config))
    judged = 0
    for copy, (_, original) in expected.items():
        j = _exact_jaccard(texts[copy], texts[original], kind, size)
        if abs(j - threshold) >= 0.1:
            judged += 1
            assert (copy in removed) == (j >= threshold), (copy, j)
    assert judged >= 30
    assert not removed - set(expected)  # no original is ever removed


def test_a_huge_cluster_is_bounded_by_bucket_cap_and_still_one_cluster(make_table):
    rng = np.random.default_rng(9)
    body = random_text(rng, 200)
    rows = [{"id": f"t{i:03d}", "recipe_source": "flan", "prompt": body, "response": f"answer {i}"} for i in range(300)]
    table = make_table(rows)
    result = dedup_table(table, DedupConfig(bucket_cap=4))
    assert result.stats["lsh"]["oversized_buckets"] > 0 and result.stats["lsh"]["largest_bucket"] > 100
    assert result.stats["near"] == 299 and result.stats["clusters"] == 1
    assert result.stats["cluster_sizes"] == {"300": 1}
    assert result.keep.to_pylist() == [True] + [False] * 299
    assert result.stats["lsh"]["candidate_pairs"] <= result.stats["parameters"]["bands"] * 4 * 300  # not 300*299/2



@pytest.mark.parametrize("mode", ["exact", "datasketch"])
def test_exact_copy_of_a_near_duplicate_gets_its_similarity_to_the_keeper(make_table, mode):
    # C is B up to case: it joins A's cluster through B, and takes no part in any candidate pair itself.
    from dedup_helpers import substitute

    rng = np.random.default_rng(1)
    a = random_text(rng, 200)
    b = substitute(rng, a, 2)
    rows = [{"id": "A", "recipe_source": "s", "prompt": "p", "response": a},
            {"id": "B", "recipe_source": "s", "prompt": "p", "response": b},
            {"id": "C", "recipe_source": "s", "prompt": "p", "response": b.upper()}]
    rows += [{"id": f"x{i}", "recipe_source": "s", "prompt": "p", "response": random_text(rng, 200)} for i in range(5)]
    clusters = dedup_table(make_table(rows), DedupConfig(mode=mode)).clusters.to_pylist()
    by_id = {row["id"]: row for row in clusters}
    assert by_id["B"]["kind"] == by_id["C"]["kind"] == "near"
    assert by_id["C"]["similarity"] == by_id["B"]["similarity"] < 1.0
    if mode == "exact":
        assert by_id["B"]["similarity"] == pytest.approx(exact_jaccard("p\n" + a, "p\n" + b))
