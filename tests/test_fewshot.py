"""Few-shot rendering: exemplar choice (same task, never the row), pruning to a budget, layouts, determinism."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from flan_mini import compose
from flan_mini.compose import RenderSpec, render_rows
from flan_mini.errors import FlanMiniError, TemplateError
from flan_mini.keys import row_keys
from flan_mini.lengths import Measure, TokenMeasure, load_measure
from flan_mini.render import load_family
from flan_mini.sources.base import FewShotConfig

FAMILY = """
family: toy
tasks:
  ask: Answer a question.
  echo: Repeat a word.
templates:
  - id: plain
    task: ask
    prompt: "{{ question }}"
    completion: "{{ answer }}"
  - id: polite
    task: ask
    prompt: "Please answer: {{ question }}"
    completion: "{{ answer }}"
  - id: echo
    task: echo
    prompt: "Say {{ question }}"
    completion: "{{ answer }}"
patterns:
  - id: qa
    task: ask
    input: "{{ question }}"
    target: "{{ answer }}"
    input_prefix: "Q: "
    x_y_delimiter: "\\n"
    target_prefix: "A: "
    example_separator: "\\n\\n"
  - id: echo_pattern
    task: echo
    preamble: "Repeat each {{ language }} word."
    input: "{{ question }}"
    target: "{{ answer }}"
    x_y_delimiter: " -> "
    example_separator: "\\n"
"""


def toy_family(tmp_path):
    (tmp_path / "toy.yaml").write_text(FAMILY)
    return load_family("toy", tmp_path)


def toy_spec(tmp_path, **fewshot) -> RenderSpec:
    family = toy_family(tmp_path)
    config = FewShotConfig(**fewshot) if fewshot else None
    return RenderSpec(family, list(family.templates.values()), list(family.patterns.values()), config, Measure(),
                      task_field="task", exemplar_match=("language",), item_field="item")


def toy_table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "question": [f"q{i}?" for i in range(n)],
        "answer": [f"a{i}" for i in range(n)],
        "task": rng.choice(["ask", "echo"], n).tolist(),
        "language": rng.choice(["en", "fr"], n).tolist(),
        "item": [f"item{i // 3}" for i in range(n)],  # three rows per item
    })


def keys_of(table: pa.Table) -> np.ndarray:
    return row_keys(table, ("question", "answer", "task", "language", "item"))


def test_inline_layout_is_flan_grammar(tmp_path):
    family = toy_family(tmp_path)
    spec = RenderSpec(family, [family.templates["plain"]], [family.patterns["qa"]], FewShotConfig(share=1.0, shots=2))
    table = pa.table({"question": ["1+1?", "2+3?", "4+4?"], "answer": ["2", "5", "8"], "task": ["ask"] * 3})
    rendered = render_rows(table, spec, keys_of_simple(table), 7, "toy", rows=np.array([2]))
    exemplars = rendered.exemplars[0]
    assert sorted(exemplars) == [0, 1]
    blocks = {0: "Q: 1+1?\nA: 2\n\n", 1: "Q: 2+3?\nA: 5\n\n"}
    human = "".join(blocks[e] for e in exemplars) + "Q: 4+4?\nA:"
    assert rendered.conversations.to_pylist()[0] == [{"from": "human", "value": human}, {"from": "gpt", "value": "8"}]
    assert rendered.template_id.to_pylist() == ["toy/qa"] and rendered.num_shots.to_pylist() == [2]
    assert rendered.template_type.to_pylist() == ["fs"]


def keys_of_simple(table):
    return row_keys(table, tuple(table.column_names))


def test_exemplars_share_task_and_match_fields_and_are_never_the_row_or_its_item(tmp_path):
    table = toy_table(300)
    table = pa.concat_tables([table, table.slice(0, 20)])  # 20 exact duplicates: same key as their twin
    keys = keys_of(table)
    rendered = render_rows(table, toy_spec(tmp_path, share=1.0, shots=3), keys, 1, "toy")
    rows = table.to_pylist()
    used = 0
    for row in range(table.num_rows):
        exemplars = rendered.exemplars.get(row, [])
        for e in exemplars:
            assert rows[e]["task"] == rows[row]["task"] and rows[e]["language"] == rows[row]["language"]
            assert rows[e]["item"] != rows[row]["item"] and keys[e] != keys[row]
        assert len(set(exemplars)) == len(exemplars)
        used += bool(exemplars)
    assert used == len(rows)  # every group is large enough for exemplars
    assert set(rendered.num_shots.to_pylist()) == {3}


def test_choices_are_seeded_and_independent_of_row_order(tmp_path):
    table = toy_table(200)
    spec = toy_spec(tmp_path, share=0.5, shots=[1, 2])
    keys = keys_of(table)
    first = render_rows(table, spec, keys, 5, "toy")
    order = np.random.default_rng(1).permutation(table.num_rows)
    shuffled = render_rows(table.take(pa.array(order)), spec, keys[order], 5, "toy")
    back = np.argsort(order)
    assert shuffled.conversations.take(pa.array(back)).to_pylist() == first.conversations.to_pylist()
    assert shuffled.template_id.take(pa.array(back)).to_pylist() == first.template_id.to_pylist()
    other_seed = render_rows(table, spec, keys, 6, "toy")
    assert other_seed.conversations.to_pylist() != first.conversations.to_pylist()


def test_share_of_few_shot_rows(tmp_path):
    table = toy_table(2000)
    keys = keys_of(table)
    rendered = render_rows(table, toy_spec(tmp_path, share=0.3, shots=1), keys, 0, "toy")
    share = rendered.template_type.to_pylist().count("fs") / table.num_rows
    assert share == 0.3 and rendered.stats["few_shot_share"] == {"requested": 0.3, "realised": 0.3}  # exactly 600 rows
    none = render_rows(table, toy_spec(tmp_path, share=0.0), keys, 0, "toy")
    assert set(none.template_type.to_pylist()) == {"zs"} and set(none.num_shots.to_pylist()) == {0}
    # Zero-shot rows use their task's templates only.
    for task, template in zip(table.column("task").to_pylist(), none.template_id.to_pylist()):
        assert template in ({"toy/plain", "toy/polite"} if task == "ask" else {"toy/echo"})


def test_budget_prunes_exemplars_and_falls_back_to_zero_shot(tmp_path):
    table = toy_table(400).append_column("pad", pa.array([" " * 0] * 400))
    long_question = "q" * 100
    table = table.set_column(0, "question", pa.array([long_question if i % 50 == 0 else q
                                                      for i, q in enumerate(table.column("question").to_pylist())]))
    spec = toy_spec(tmp_path, share=1.0, shots=4, style="turns", max_length=40)
    rendered = render_rows(table, spec, keys_of(table), 3, "toy")
    fs, zs = 0, 0
    for turns, kind, shots in zip(rendered.conversations.to_pylist(), rendered.template_type.to_pylist(),
                                  rendered.num_shots.to_pylist()):
        total = sum(len(t["value"]) for t in turns)
        if kind == "fs":
            fs += 1
            assert total <= 40 and len(turns) == 2 * (shots + 1) and 1 <= shots <= 4
        else:
            zs += 1
            assert shots == 0 and len(turns) == 2
    stats = rendered.stats
    assert stats["few_shot"] == fs and stats["zero_shot"] == zs and zs >= 8  # the long queries cannot fit any
    assert stats["few_shot_without_exemplars"] == zs and stats["exemplars_dropped"] > 0
    assert stats["length_unit"] == "chars"


def test_exemplars_too_long_are_redrawn_and_rows_that_cannot_fit_are_replaced(tmp_path, monkeypatch):
    table = toy_table(400)
    questions = table.column("question").to_pylist()
    # A third of the rows are too long to be an exemplar under the budget; every 40th too long even alone.
    padded = [q + "x" * (200 if i % 40 == 0 else 30 if i % 3 == 0 else 0) for i, q in enumerate(questions)]
    table = table.set_column(0, "question", pa.array(padded))
    spec = toy_spec(tmp_path, share=0.5, shots=2, style="inline", max_length=60)
    rendered = render_rows(table, spec, keys_of(table), 5, "toy")
    kinds = rendered.template_type.to_pylist()
    stats = rendered.stats
    assert kinds.count("fs") == 200 and stats["few_shot_share"]["realised"] == 0.5  # the share holds
    # Rows that could not fit were replaced (some replacements could not fit either, and were replaced in turn).
    assert 1 <= stats["few_shot_promoted"] <= stats["few_shot_without_exemplars"]
    for row, (turns, kind) in enumerate(zip(rendered.conversations.to_pylist(), kinds)):
        if kind == "fs":
            assert len(turns[0]["value"]) + len(turns[1]["value"]) <= 60
            assert rendered.num_shots.to_pylist()[row] == len(rendered.exemplars[row]) <= 2
        else:
            assert row not in rendered.exemplars
    # The spare draws replace exemplars too long for the budget: without them, more rows lose exemplars.
    monkeypatch.setattr(compose, "SPARE_EXEMPLARS", 0)
    without = render_rows(table, spec, keys_of(table), 5, "toy").stats
    assert without["exemplars_dropped"] > stats["exemplars_dropped"] + 50


def test_turns_replay_the_rows_own_template(tmp_path):
    table = toy_table(60)
    spec = toy_spec(tmp_path, share=1.0, shots=2, style="turns")
    keys = keys_of(table)
    rendered = render_rows(table, spec, keys, 9, "toy")
    zero = render_rows(table, toy_spec(tmp_path, share=0.0), keys, 9, "toy")
    zero_turns = zero.conversations.to_pylist()
    prefix = {"toy/plain": "", "toy/polite": "Please answer: ", "toy/echo": "Say "}
    questions, answers = table.column("question").to_pylist(), table.column("answer").to_pylist()
    for row, turns in enumerate(rendered.conversations.to_pylist()):
        exemplars = rendered.exemplars.get(row, [])
        assert exemplars and [t["from"] for t in turns] == ["human", "gpt"] * (len(exemplars) + 1)
        assert turns[-2:] == zero_turns[row]  # the query, as its zero-shot rendering (same template)
        template = rendered.template_id.to_pylist()[row]
        assert template == zero.template_id.to_pylist()[row]
        for k, e in enumerate(exemplars):  # each exemplar rendered by the query's template
            assert [t["value"] for t in turns[2 * k: 2 * k + 2]] == [prefix[template] + questions[e], answers[e]]


def test_inline_preamble_and_group_of_one(tmp_path):
    table = pa.table({"question": ["x", "y", "z"], "answer": ["x", "y", "z"], "task": ["echo"] * 3,
                      "language": ["en", "en", "fr"], "item": ["1", "2", "3"]})
    rendered = render_rows(table, toy_spec(tmp_path, share=1.0, shots=1), keys_of(table), 0, "toy")
    human = [c[0]["value"] for c in rendered.conversations.to_pylist()]
    assert human[0] == "Repeat each en word.\n\ny -> y\nx ->" and human[1] == "Repeat each en word.\n\nx -> x\ny ->"
    assert human[2] == "Say z" and rendered.template_type.to_pylist() == ["fs", "fs", "zs"]  # alone in its language
    assert rendered.stats["few_shot_without_exemplars"] == 1


def test_budget_in_tokens(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(["Q A q a ? : 1 2 3"], tokenizers.trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    measure, note = load_measure("tokenizer.json", tmp_path)
    assert isinstance(measure, TokenMeasure) and note is None
    assert measure.lengths(["Q: q1?\nA:", ""]) == [6, 0]  # Q / : / q1 / ? / A / :
    family = toy_family(tmp_path)
    spec = RenderSpec(family, [family.templates["plain"]], [family.patterns["qa"]], FewShotConfig(share=1.0, shots=5, max_length=20),
                      measure, task_field="task")
    table = pa.table({"question": [f"q{i}?" for i in range(30)], "answer": [f"a{i}" for i in range(30)], "task": ["ask"] * 30})
    rendered = render_rows(table, spec, keys_of_simple(table), 0, "toy")
    for turns in rendered.conversations.to_pylist():
        assert sum(measure.lengths([t["value"] for t in turns])) <= 20
    assert rendered.stats["length_unit"] == "tokens" and set(rendered.num_shots.to_pylist()) <= {1, 2, 3}


def test_unavailable_tokenizer_is_skipped_offline_and_an_error_for_a_build(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # an empty cache
    measure, note = load_measure("no-such-org/no-such-tokenizer", tmp_path)  # validate: offline, cache only
    assert measure.unit == "chars" and "skipped" in note and "no-such-org/no-such-tokenizer" in note
    assert "build` fetches it and stops if it cannot" in note
    measure, note = load_measure(None, tmp_path)
    assert measure.unit == "chars" and note is None

    def unreachable(*args, **kwargs):  # what the Hub client raises without a network; nothing is fetched
        raise OSError("the Hub cannot be reached")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(FlanMiniError, match=r"'no-such-org/no-such-tokenizer' cannot be loaded \(the Hub cannot be reached\)"):
        load_measure("no-such-org/no-such-tokenizer", tmp_path, allow_download=True)  # build: never characters


def test_a_build_stops_when_the_budgets_tokenizer_cannot_be_had(tmp_path, monkeypatch):
    """The sample recipe with a tokenizer named for a few-shot budget: validate passes with a note, the build's
    plan fails naming the source and key, rather than counting the budget in characters."""
    import re

    import huggingface_hub

    from flan_mini.plan import make_plan
    from flan_mini.recipe import load_recipe

    from .conftest import SAMPLE_RECIPE

    text, count = re.subn(r"(fewshot: \{[^}]*)\}", r"\1, tokenizer: no-such-org/no-such-tokenizer}", SAMPLE_RECIPE.read_text())
    assert count == 3
    (tmp_path / "sample_data").symlink_to(SAMPLE_RECIPE.parent / "sample_data")
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    plan = make_plan(load_recipe(path), resolve_hub_sources=False)
    assert any("skipped" in note and "code_contests" in note for note in plan.notes)
    with pytest.raises(FlanMiniError, match=r"sources\[6\]\.fewshot\.tokenizer: tokenizer 'no-such-org/no-such-tokenizer' cannot be loaded \(offline\)"):
        make_plan(load_recipe(path), resolve_hub_sources=True)


def test_pattern_prefixes_are_plain_text(tmp_path):
    (tmp_path / "bad.yaml").write_text(FAMILY.replace("family: toy", "family: bad").replace('input_prefix: "Q: "', 'input_prefix: "{{ question }}"'))
    with pytest.raises(TemplateError, match=r"bad.yaml:\d+  patterns\[0\]\.input_prefix: Value error, prefixes and separators are plain text"):
        load_family("bad", tmp_path)


def test_family_task_declarations_are_checked(tmp_path):
    (tmp_path / "tasky.yaml").write_text(FAMILY.replace("family: toy", "family: tasky").replace("task: echo\n    prompt", "task: shout\n    prompt"))
    with pytest.raises(TemplateError, match=r"tasky.yaml:\d+  tasky/echo: has task 'shout'; expected one of the family's tasks: ask, echo"):
        load_family("tasky", tmp_path)


def test_invariants_hold_for_random_settings(tmp_path):
    """Whatever the share, shots, style, budget and seed: turns alternate and end with the query's answer,
    few-shot rows fit the budget, exemplars are valid, and the stats add up."""
    table = toy_table(150, seed=3)
    keys = keys_of(table)
    rows = table.to_pylist()
    rng = np.random.default_rng(11)
    for _ in range(25):
        style = str(rng.choice(["inline", "turns"]))
        budget = int(rng.integers(10, 120)) if rng.random() < 0.7 else None
        shots = rng.integers(1, 5, size=int(rng.integers(1, 3))).tolist()
        spec = toy_spec(tmp_path, share=float(rng.random()), shots=shots, style=style, max_length=budget)
        rendered = render_rows(table, spec, keys, int(rng.integers(0, 2**31)), "toy")
        kinds, shot_counts = rendered.template_type.to_pylist(), rendered.num_shots.to_pylist()
        for row, (turns, kind, count) in enumerate(zip(rendered.conversations.to_pylist(), kinds, shot_counts)):
            assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2) and turns[-1]["value"] == rows[row]["answer"]
            exemplars = rendered.exemplars.get(row, [])
            assert (kind == "fs") == bool(exemplars) == (count > 0) and count == len(exemplars) <= max(shots)
            if kind == "fs" and budget is not None:
                assert sum(len(t["value"]) for t in turns) <= budget
            for e in exemplars:
                assert rows[e]["task"] == rows[row]["task"] and rows[e]["language"] == rows[row]["language"]
                assert rows[e]["item"] != rows[row]["item"]
        assert rendered.stats["few_shot"] + rendered.stats["zero_shot"] == table.num_rows
