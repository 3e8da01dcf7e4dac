"""Few-shot examples: drawing exemplars from the same task, pruning them to a length budget, laying them out.

A few-shot row's exemplars come from the same source's selected rows of the same task (and the
same `exemplar_match` fields, e.g. language). Never the row itself, an identical row, or a row of
the same item (another solution of the same problem). The draw is a seeded function of the row's
key and of which rows there are (keys, task / exemplar_match / item columns), never of their order
(tests/test_fewshot_order.py). Exemplars are then pruned FLAN-style: keep
them from the first while the whole example (every turn) fits the budget.

Two layouts. Inline (FLAN 2022's FewShotPattern grammar), with input_prefix "Q: ",
x_y_delimiter "\n", target_prefix "A: ", example_separator "\n\n" and two exemplars:

    human: "Q: 1+1?\nA: 2\n\nQ: 2+3?\nA: 5\n\nQ: 4+4?\nA:"      gpt: "8"

As turns: each exemplar is an earlier human/gpt exchange rendered by the row's own template, then
the query's exchange (four exchanges for two exemplars).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .keys import hash_strings, mix64, ranks, row_keys, salt
from .fewshot_prune import prune
from .lengths import Measure
from .render import Pattern, Template, _variables, render_texts


@dataclass
class ExemplarPool:
    """Who may be whose exemplar: every candidate row's key, group (task + exemplar_match fields) and item, and
    the rows sorted by (group, seeded rank of the key). Built once per source; a function of those columns only,
    so the same rows in any order (or any batch layout) make the same pool, up to rows with equal keys (copies)."""

    keys: np.ndarray
    group: np.ndarray
    item: np.ndarray
    order: np.ndarray  # row indices by (group, pool rank)
    sorted_group: np.ndarray
    draw_salt: np.uint64

    @classmethod
    def build(cls, table, spec, keys: np.ndarray, seed: int, source: str) -> "ExemplarPool":
        group_fields = tuple(f for f in ((spec.task_field,) if spec.task_field else ()) + tuple(spec.exemplar_match))
        group = row_keys(table, group_fields) if group_fields else np.zeros(table.num_rows, np.uint64)
        item = hash_strings(table.column(spec.item_field)) if spec.item_field else keys
        order = np.lexsort((ranks(keys, salt(seed, source, "exemplar-pool")), group))
        return cls(keys, group, item, order, group[order], np.uint64(salt(seed, source, "exemplar-draw")))

    def draw(self, queries: np.ndarray, wanted: np.ndarray, spare: int = 0, tries: int | None = None) -> list[list[int]]:
        """For each query row, up to `wanted + spare` exemplar rows: same task and match fields, not the same key
        or item. The `spare` ones, drawn after the first `wanted`, replace exemplars that do not fit the budget.

        A query draws positions in its group's stretch of the pool by hashing its own key with 0, 1, 2, ...;
        a drawn row is skipped if it is the query itself (same key), of the same item, or drawn already.
        Example: pool [r3, r9, r4], query key k: mix64(k+0) % 3 = 1 -> r9; mix64(k+1) % 3 = 1 again -> skipped;
        mix64(k+2) % 3 = 0 -> r3.
        """
        if not len(queries):
            return []
        keys, item, n = self.keys, self.item, len(self.keys)
        starts = np.searchsorted(self.sorted_group, self.group[queries], side="left")
        ends = np.searchsorted(self.sorted_group, self.group[queries], side="right")
        sizes = (ends - starts).astype(np.uint64)
        wanted = wanted + spare
        tries = tries or draw_tries(wanted)  # `tries`: the caller's, when it draws a batch in slices
        base = mix64(keys[queries] ^ self.draw_salt)
        with np.errstate(over="ignore"):
            attempts = mix64(base[:, None] + np.arange(tries, dtype=np.uint64)[None, :])
        offsets = (attempts % np.maximum(sizes, 1)[:, None]).astype(np.int64)
        candidates = self.order[np.minimum(starts[:, None] + offsets, max(n - 1, 0))]
        usable = (keys[candidates] != keys[queries][:, None]) & (item[candidates] != item[queries][:, None])
        usable &= (sizes > 1)[:, None]
        out = []
        for want, cands, ok in zip(wanted.tolist(), candidates.tolist(), usable.tolist()):
            chosen: list[int] = []
            for candidate, good in zip(cands, ok):
                if good and candidate not in chosen:
                    chosen.append(candidate)
                    if len(chosen) == want:
                        break
            out.append(chosen)
        return out


def draw_tries(wanted: np.ndarray) -> int:
    """Hash attempts per query in a draw: enough for the largest request (`wanted`, spares included) to skip
    the query itself, its item and repeats."""
    return int(wanted.max()) * 3 + 8


@dataclass
class Layout:
    """One few-shot row on its way: its pattern (inline) or template (turns), exemplars drawn and kept."""

    position: int  # among the rendered rows
    row: int  # in the table
    owner: Template | Pattern
    drawn: list[int]
    wanted: int = 0  # exemplars asked for (0: as many as drawn)
    kept: list[int] = field(default_factory=list)
    turns: list[str] = field(default_factory=list)


def _parts(owner) -> tuple[tuple, tuple]:
    """The (Jinja source, compiled) pairs of an owner's input side and target side."""
    if isinstance(owner, Pattern):
        return (owner.input_source, owner.input), (owner.target_source, owner.target)
    return (owner.prompt_source, owner.prompt), (owner.completion_source, owner.completion)


def assemble(table: pa.Table, layouts: list[Layout], measure: Measure, budget: int | None,
             known: dict[str, int] | None = None) -> list[Layout]:
    """Render, measure and prune every few-shot row; returns those left with at least one exemplar.

    Three passes, so that rendering and measuring are batched: (1) render each needed
    (template part, row) once, per template part over all its rows; (2) build the candidate
    blocks and keep leading exemplars while the whole example fits the budget (FLAN's pruning,
    fewshot_prune.py: texts measured in batches, tokens counted only where bounds cannot decide);
    (3) lay out the turns. Example, budget 100: query 40, blocks 30, 25, 20 -> 40+30 = 70,
    +25 = 95, +20 = 115 > 100: two exemplars kept. `known`: exact counts shared between calls (fewshot_prune.py).
    """
    if not layouts:
        return []
    # (1) render
    jobs: dict[str, tuple] = {}
    wanted: dict[str, set[int]] = {}
    for layout in layouts:
        parts = list(_parts(layout.owner))
        if isinstance(layout.owner, Pattern) and layout.owner.preamble is not None:
            jobs[layout.owner.preamble_source] = (layout.owner.preamble, layout.owner)
            wanted.setdefault(layout.owner.preamble_source, set()).add(layout.row)
        for source, compiled in parts:
            jobs[source] = (compiled, layout.owner)
            wanted.setdefault(source, set()).update([layout.row, *layout.drawn])
    texts: dict[tuple[str, int], str] = {}
    for source, (compiled, owner) in jobs.items():
        needed = sorted(wanted[source])
        # only what the template reads (each take is a copy); a template reading no field keeps one for the row count
        fields = table.select(sorted(_variables(source)) or table.column_names[:1])
        rendered = render_texts(source, compiled, fields.take(pa.array(needed, pa.int64())), owner)
        texts.update(zip(((source, r) for r in needed), rendered))

    # (2) lay out and measure
    plans = []
    made: dict[tuple[str, int], list[str] | None] = {}  # (owner, exemplar row) -> its block, built once: an
    # exemplar serves many rows, and one string per block (not per use) keeps memory and hashing down
    for layout in layouts:
        (x_source, _), (y_source, _) = _parts(layout.owner)
        owner = layout.owner
        usable, blocks = [], []
        for candidate in layout.drawn:
            key = (owner.full_id, candidate)
            if key not in made:
                x, y = texts[(x_source, candidate)], texts[(y_source, candidate)]
                if not x.strip() or not y.strip():
                    made[key] = None  # an exemplar that renders blank teaches nothing
                elif isinstance(owner, Pattern):
                    made[key] = [owner.input_prefix + x + owner.x_y_delimiter + owner.target_prefix + y + owner.example_separator]
                else:
                    made[key] = [x, y]
            if made[key] is None:
                continue
            usable.append(candidate)
            blocks.append(made[key])
        query_x, query_y = texts[(x_source, layout.row)], texts[(y_source, layout.row)]
        if isinstance(owner, Pattern):
            preamble = texts[(owner.preamble_source, layout.row)] if owner.preamble is not None else ""
            head = preamble + "\n\n" if preamble.strip() else ""
            fixed = [head, owner.input_prefix + query_x + owner.x_y_delimiter + owner.target_prefix.rstrip(), query_y]
        else:
            fixed = [query_x, query_y]
        plans.append((usable, blocks, fixed))
    choices = prune([(blocks, fixed, layout.wanted or len(blocks)) for layout, (_, blocks, fixed) in zip(layouts, plans)],
                    measure, budget, known)

    # (3) assemble
    kept = []
    for layout, (usable, blocks, fixed), chosen in zip(layouts, plans, choices):
        if not chosen:
            continue
        layout.kept = [usable[i] for i in chosen]
        picked = [blocks[i] for i in chosen]
        if isinstance(layout.owner, Pattern):
            head, query, target = fixed
            layout.turns = [(head + "".join(b[0] for b in picked) + query).strip(), target]
        else:
            layout.turns = [t for block in picked for t in block] + fixed
        kept.append(layout)
    return kept

