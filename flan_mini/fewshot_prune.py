"""Pruning few-shot exemplars to a length budget (FLAN's rule), measuring exactly only what a decision needs.

FLAN keeps a row's exemplars from the first while the whole example fits: block i is kept when
total + size(i) <= budget, where total is the fixed part (query, target, preamble) plus the blocks kept so far.
Counting tokens is what costs, so each decision is first tried on bounds: every text has a lower bound (its words
where the tokenizer proves tokens >= words, token_floor.py; else 0; or its count once known) and an upper bound (measure.bounds: UTF-8 bytes plus a proved slack, token_bound.py; or the
count). If the upper bounds fit, the exact counts fit: keep. If the lower bounds do not fit, the exact counts do
not: skip. Only otherwise are the texts involved tokenised, all rows' at once, and the rows still undecided are
replayed. Every decision is the one exact counts give, so the rows kept are the same.

Example, budget 1,200 tokens: a query of 5,000 bytes is over by its bound, so it is tokenised (1,400 tokens, say);
then no exemplar can fit (1,400 + 0 > 1,200) and none is tokenised. A query of 300 bytes with exemplars of 400 and
450 bytes fits by bytes alone: nothing is tokenised.
"""

from __future__ import annotations

from . import token_floor
from .lengths import Measure

BATCH_CHARS = 4 << 20  # text measured per call: large enough for the tokenizer's threads on both cores
Plan = tuple[list[list[str]], list[str], int]  # (blocks: the texts of each candidate exemplar, fixed texts, limit)


def prune(plans: list[Plan], measure: Measure, budget: int | None, known: dict[str, int] | None = None) -> list[list[int]]:
    """Per row, the indices of the blocks kept: from the first, while the total fits, at most `limit`.

    `known`: exact counts from earlier calls (the caller's promotion rounds share exemplars), updated in place."""
    if budget is None:
        return [list(range(min(limit, len(blocks)))) for blocks, _, limit in plans]
    distinct = sorted({t for blocks, fixed, _ in plans for t in [*fixed, *(x for block in blocks for x in block)]})
    high = dict(zip(distinct, measure.bounds(distinct)))
    exact = known if known is not None and not measure.bounds_exact else {}
    low: dict[str, int] = {}
    if measure.bounds_exact:
        exact.update(high)
    else:
        unknown = [t for t in distinct if t not in exact]
        low = dict(zip(unknown, floors(measure, unknown)))
    chosen: list[list[int]] = [[] for _ in plans]
    pending = list(range(len(plans)))
    while pending:
        needed: set[str] = set()
        undecided = []
        for row in pending:
            outcome = _replay(*plans[row], high, low, exact, budget)
            if isinstance(outcome, list):
                chosen[row] = outcome
            else:
                needed |= outcome
                undecided.append(row)
        texts = sorted(needed)
        exact.update(zip(texts, _lengths(measure, texts)))
        pending = undecided
    return chosen


def _replay(blocks: list[list[str]], fixed: list[str], limit: int, high: dict, low: dict, exact: dict, budget: int) -> list[int] | set[str]:
    """The row's kept blocks, or the text whose exact count the first undecided step needs next (there is one: once
    every text of a step is counted, its bounds are equal and decide)."""
    low_total, high_total, open_ = _sizes(fixed, high, low, exact)
    chosen: list[int] = []
    for index, block in enumerate(blocks):
        low_size, high_size, open_block = _sizes(block, high, low, exact)
        if high_total + high_size <= budget:
            low_total, high_total = low_total + low_size, high_total + high_size
            open_ |= open_block
            chosen.append(index)
            if len(chosen) == limit:
                break
        elif low_total + low_size > budget:
            continue  # too long here: the next drawn exemplar takes its place
        else:
            # One text at a time, the total so far first (a long query alone rules out every exemplar), the widest
            # between its bounds first: its count may decide the step without the others'.
            texts = open_ or open_block
            return {max(sorted(texts), key=lambda t: high[t] - low.get(t, 0))}
    return chosen


def _sizes(texts: list[str], high: dict, floor: dict, exact: dict) -> tuple[int, int, set[str]]:
    """Lower and upper bound of the texts' total length, and those of them not counted yet."""
    low = upper = 0
    unknown = set()
    for text in texts:
        if text in exact:
            low += exact[text]
            upper += exact[text]
        else:
            low += floor.get(text, 0)
            upper += high[text]
            unknown.add(text)
    return low, upper, unknown


def _lengths(measure: Measure, texts: list[str]) -> list[int]:
    """`measure.lengths` a batch of about BATCH_CHARS at a time: a tokenizer's batch holds every token of its texts
    as objects (tens of bytes each), so one call over 100 MB of text took GiBs and ran 3x slower per byte."""
    out: list[int] = []
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (size < BATCH_CHARS or end == start):
            size += len(texts[end])
            end += 1
        out += measure.lengths(texts[start:end])
        start = end
    return out


def floors(measure: Measure, texts: list[str]) -> list[int]:
    """A lower bound of each text's length: the measure's own `floors`, or its tokenizer's proved word count
    (token_floor.py), else 0."""
    if not texts:
        return []
    own = getattr(measure, "floors", None)
    if own is not None:
        return own(texts)
    tokenizer = getattr(measure, "tokenizer", None)
    if tokenizer is None:
        return [0] * len(texts)
    if not hasattr(measure, "_floor_separators"):
        measure._floor_separators = token_floor.separators(tokenizer)
    seps = measure._floor_separators
    return token_floor.words(texts, seps) if seps else [0] * len(texts)
