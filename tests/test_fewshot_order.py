"""Few-shot choices are a function of row content (keys, task / exemplar-match / item columns), never of row
positions: permuting a source's candidates permutes its rendered rows and changes nothing else."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from flan_mini.compose import render_rows

from .test_fewshot import keys_of, toy_spec, toy_table


def with_duplicates(table: pa.Table, rng) -> pa.Table:
    """The table plus exact copies of some of its rows (same key: interchangeable, as a build's candidates can hold)."""
    copies = rng.choice(table.num_rows, table.num_rows // 10, replace=False)
    return pa.concat_tables([table, table.take(pa.array(copies))])


def outcome(rendered, keys, row: int) -> tuple:
    """What one row became: its conversation, template, kind, shots, and its exemplars by key."""
    return (str(rendered.conversations[row]), rendered.template_id[row].as_py(), rendered.template_type[row].as_py(),
            rendered.num_shots[row].as_py(), tuple(int(keys[e]) for e in rendered.exemplars.get(row, [])))


def test_permuting_rows_permutes_the_output_and_nothing_else(tmp_path):
    rng = np.random.default_rng(21)
    base = with_duplicates(toy_table(200, seed=4), rng)
    # Long questions every few rows: exemplars that do not fit, rows that cannot fit and are replaced (promotions).
    questions = [q + "x" * (150 if i % 37 == 0 else 25 if i % 4 == 0 else 0) for i, q in enumerate(base.column("question").to_pylist())]
    table = base.set_column(0, "question", pa.array(questions))
    keys = keys_of(table)
    counts = Counter(keys.tolist())
    promoted = 0
    for trial in range(4):
        style = ["inline", "turns"][trial % 2]
        spec = toy_spec(tmp_path, share=float(rng.uniform(0.2, 0.9)), shots=[1, 2, 3], style=style,
                        max_length=int(rng.integers(40, 90)))
        seed = int(rng.integers(0, 2**31))
        first = render_rows(table, spec, keys, seed, "toy")
        order = rng.permutation(table.num_rows)
        second = render_rows(table.take(pa.array(order)), spec, keys[order], seed, "toy")
        assert second.stats == first.stats
        promoted += first.stats["few_shot_promoted"]
        moved = np.empty_like(order)
        moved[order] = np.arange(len(order))  # where each original row went
        by_key_first, by_key_second = Counter(), Counter()
        for row in range(table.num_rows):
            a, b = outcome(first, keys, row), outcome(second, keys[order], moved[row])
            if counts[int(keys[row])] == 1:
                assert a == b, (style, row)  # the same row, the same conversation
            else:  # copies of one row are interchangeable: together they come out the same
                by_key_first[(int(keys[row]), a)] += 1
                by_key_second[(int(keys[row]), b)] += 1
        assert by_key_first == by_key_second
    assert promoted > 0  # the promotion rounds were exercised


def test_assembling_few_shot_rows_in_slices_changes_nothing(tmp_path, monkeypatch):
    from flan_mini import compose

    rng = np.random.default_rng(5)
    base = toy_table(300, seed=9)
    questions = [q + "x" * (150 if i % 5 == 0 else 30 if i % 3 == 0 else 0) for i, q in enumerate(base.column("question").to_pylist())]
    table = base.set_column(0, "question", pa.array(questions))
    keys = keys_of(table)
    promoted = 0
    for trial in range(8):
        spec = toy_spec(tmp_path, share=float(rng.uniform(0.3, 0.8)), shots=[1, 2, 3, 6], style=["inline", "turns"][trial % 2],
                        max_length=int(rng.integers(40, 90)))
        seed = int(rng.integers(0, 2**31))
        monkeypatch.setattr(compose, "ASSEMBLE_ROWS", 8192)
        whole = render_rows(table, spec, keys, seed, "toy")
        promoted += whole.stats["few_shot_promoted"]
        for rows in (1, 2, 3, 7):  # slices of the rounds: promotion rounds stop in the middle of a round
            monkeypatch.setattr(compose, "ASSEMBLE_ROWS", rows)
            sliced = render_rows(table, spec, keys, seed, "toy")
            assert sliced.stats == whole.stats, rows
            assert sliced.conversations.equals(whole.conversations) and sliced.template_id.equals(whole.template_id)
            assert sliced.exemplars == whole.exemplars
    assert promoted > 0
