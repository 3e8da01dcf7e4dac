"""fewshot_prune.prune keeps exactly the exemplars exact counting keeps (FLAN's rule), counting fewer texts."""

from __future__ import annotations

import random

from flan_mini.fewshot_prune import prune
from flan_mini.lengths import Measure


class WordMeasure(Measure):
    """'Tokens' = words + non-ASCII characters (never above UTF-8 bytes), bounded by UTF-8 bytes; counts its calls."""

    unit = "tokens"
    bounds_exact = False

    def __init__(self):
        self.counted: list[str] = []

    def lengths(self, texts):
        self.counted += texts
        return [len(t.split()) + sum(not c.isascii() for c in t) for t in texts]

    def bounds(self, texts):
        return [len(t.encode("utf-8")) for t in texts]


def exact_prune(plans, measure, budget):
    """The rule as FLAN states it, every text counted."""
    out = []
    for blocks, fixed, limit in plans:
        total, chosen = sum(measure.lengths(fixed)), []
        for index, block in enumerate(blocks):
            size = sum(measure.lengths(block))
            if total + size > budget:
                continue
            total += size
            chosen.append(index)
            if len(chosen) == limit:
                break
        out.append(chosen)
    return out


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(["a", "bb", "ccc", "été", "東京", "x"]) for _ in range(rng.choice([1, 2, 5, 20, 60])))


def test_prune_matches_exact_counting_and_counts_less():
    rng = random.Random(8)
    plans = [([[text(rng)] if rng.random() < 0.5 else [text(rng), text(rng)] for _ in range(rng.randint(0, 7))],
              [text(rng) for _ in range(rng.randint(1, 3))], rng.randint(1, 4)) for _ in range(400)]
    for budget in (10, 40, 120, 400):
        measure = WordMeasure()
        assert prune(plans, measure, budget) == exact_prune(plans, WordMeasure(), budget)
        every = {t for blocks, fixed, _ in plans for t in [*fixed, *(x for b in blocks for x in b)]}
        assert len(measure.counted) == len(set(measure.counted)) < len(every)  # each text at most once, not all
    assert prune(plans, WordMeasure(), None) == [list(range(min(limit, len(blocks)))) for blocks, _, limit in plans]


def test_a_query_over_the_budget_alone_counts_no_exemplar():
    measure = WordMeasure()
    query = "word " * 50
    exemplars = [["exemplar " * 30], ["another " * 30]]
    assert prune([(exemplars, [query], 2)], measure, 40) == [[]]
    assert measure.counted == [query]
    characters = Measure()  # characters: bounds are the lengths, one pass
    assert prune([(exemplars, ["q"], 2)], characters, 300) == [[0]]
