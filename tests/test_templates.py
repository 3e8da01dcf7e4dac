"""Every shipped code template and few-shot pattern renders cleanly on rows read from the real-format sample
files; templates that use missing fields or show the answer fail validation with their file and id."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from flan_mini.compose import RenderSpec, render_rows
from flan_mini.keys import row_keys
from flan_mini.render import DEFAULT_TEMPLATES_DIR, load_family
from flan_mini.rejects import reject_reasons
from flan_mini.sources import ADAPTERS
from flan_mini.sources.base import FewShotConfig
from flan_mini.sources.code_strip import leaks
from flan_mini.sources.files import resolve_local

from .conftest import SAMPLE_DATA, run_cli, write_recipe

CODE_SOURCES = {  # adapter -> (sample folder, options)
    "code_contests": ("code_contests", {"languages": ["python3", "python2", "cpp", "java"]}),
    "apps": ("apps", {}),
    "code_search_net": ("code_search_net", {}),
}


def fixture_rows(adapter_name: str) -> tuple[pa.Table, object]:
    """All usable rows of the sample files, read through the adapter (every language, both CSN partitions' train)."""
    folder, options = CODE_SOURCES[adapter_name]
    adapter_type = ADAPTERS[adapter_name]
    adapter = adapter_type(adapter_type.config_model(name="t", adapter=adapter_name, path=".", n=1, **options))
    inputs = resolve_local(str(SAMPLE_DATA / folder), None, "train", SAMPLE_DATA, adapter.extensions)
    batches = []
    for file in inputs.files:
        for batch in adapter.read(file):
            keep = pc.and_(reject_reasons(batch, adapter).is_null(), adapter.row_filter(batch) or pa.array([True] * batch.num_rows))
            batches.append(batch.filter(keep))
    table = pa.Table.from_batches(batches).drop_columns(["_ordinal", "_reject"])
    return table, adapter


def answers_of(adapter, table: pa.Table) -> list[str]:
    field = "solution" if "solution" in table.column_names else None
    if field:
        return table.column(field).to_pylist()
    return [d if t == "code_to_docstring" else c for t, d, c in
            zip(table.column("task").to_pylist(), table.column("docstring").to_pylist(), table.column("code").to_pylist())]


def check_prompt(human: str, answer: str, task: str | None, values: list):
    assert human.strip() and "{{" not in human and "{%" not in human
    if task == "code_to_docstring":
        assert not leaks(answer, human)  # the docstring never reaches the prompt
    else:
        assert answer not in human  # the solution / code is not shown
    if "None" in human:  # a null field printed as text
        assert any(isinstance(v, str) and "None" in v for v in values)


def spec_for(adapter, family, templates, patterns=(), fewshot=None) -> RenderSpec:
    return RenderSpec(family, list(templates), list(patterns), fewshot, task_field=adapter.task_field,
                      exemplar_match=adapter.exemplar_match, item_field=adapter.item_field)


def families():
    return [(name, item) for name in CODE_SOURCES for item in
            [*load_family(ADAPTERS[name].template_family).templates.values(), *load_family(ADAPTERS[name].template_family).patterns.values()]]


@pytest.mark.parametrize(("adapter_name", "item"), families(), ids=lambda x: getattr(x, "full_id", x))
def test_every_code_template_and_pattern_renders_on_fixture_rows(adapter_name, item):
    table, adapter = fixture_rows(adapter_name)
    family = load_family(adapter.template_family)
    if item.task is not None:
        table = table.filter(pc.equal(table.column("task"), item.task))
    keys = row_keys(table, adapter.identity_fields)
    answers = answers_of(adapter, table)
    rows = table.to_pylist()
    is_pattern = item.id in family.patterns
    runs = []
    if is_pattern:  # inline few-shot with this pattern, for every row that has exemplars
        runs.append(spec_for(adapter, family, [t for t in family.templates.values() if t.task == item.task], [item],
                             FewShotConfig(share=1.0, shots=2, style="inline")))
    else:  # zero-shot with this template, and few-shot as turns with it
        runs.append(spec_for(adapter, family, [item]))
        runs.append(spec_for(adapter, family, [item], fewshot=FewShotConfig(share=1.0, shots=2, style="turns")))
    for spec in runs:
        rendered = render_rows(table, spec, keys, 0, "t")
        assert not rendered.failed
        ids = rendered.template_id.to_pylist()
        if is_pattern:
            assert ids.count(item.full_id) >= 2  # the pattern was used
        else:
            assert set(ids) == {item.full_id}
        if spec.fewshot is not None:
            assert "fs" in rendered.template_type.to_pylist()
        for index, (turns, shots) in enumerate(zip(rendered.conversations.to_pylist(), rendered.num_shots.to_pylist())):
            assert [t["from"] for t in turns] == ["human", "gpt"] * (shots + 1 if spec.fewshot and spec.fewshot.style == "turns" else 1)
            assert answers[index] in turns[-1]["value"]  # the answer is the gpt turn (fenced or introduced at most)
            check_prompt(turns[-2]["value"], answers[index], item.task, list(rows[index].values()))


def test_code_to_docstring_answers_are_the_docstrings():
    table, adapter = fixture_rows("code_search_net")
    table = table.filter(pc.equal(table.column("task"), "code_to_docstring"))
    family = load_family("code_search_net")
    spec = spec_for(adapter, family, [t for t in family.templates.values() if t.task == "code_to_docstring"])
    rendered = render_rows(table, spec, row_keys(table, adapter.identity_fields), 4, "t")
    assert [c[-1]["value"] for c in rendered.conversations.to_pylist()] == table.column("docstring").to_pylist()


def test_pools_are_large_enough():
    for name in CODE_SOURCES:
        family = load_family(ADAPTERS[name].template_family)
        for task in family.tasks or [None]:
            assert len([t for t in family.templates.values() if t.task == task]) >= 8, (name, task)
            assert len([p for p in family.patterns.values() if p.task == task]) >= 8, (name, task)
    assert len(load_family("alpaca").templates) >= 4


# ------------------------------------------------------------------------------------------ validation


def templates_with(tmp_path, family: str, extra: str, section: str = "templates"):
    """A copy of the shipped templates with `extra` items at the start of the family's `section` list."""
    folder = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, folder)
    path = folder / f"{family}.yaml"
    path.write_text(path.read_text().replace(f"\n{section}:\n", f"\n{section}:{extra}", 1))
    return path


def validate(tmp_path, source: str, templates_dir: str | None = None):
    recipe = write_recipe(tmp_path, f"""
        name: t
        {f"templates_dir: {templates_dir}" if templates_dir else ""}
        sources:
          - {source}
    """)
    return recipe, run_cli("validate", recipe)


def test_template_with_missing_field_fails_validation_with_file_and_id(tmp_path):
    path = templates_with(tmp_path, "code_search_net", """
  - id: uses_missing
    task: docstring_to_code
    prompt: "{{ docstring }} in {{ framework }}"
    completion: "{{ code }}"
""")
    source = f"{{name: cs, adapter: code_search_net, path: {SAMPLE_DATA}/code_search_net, n: 2}}"
    recipe, result = validate(tmp_path, source, "templates")
    assert result.exit_code == 1
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "id: uses_missing" in text)
    assert re.search(rf"recipe.yaml:\d+  sources\[0\].templates: \S+/templates/code_search_net.yaml:{line}  "
                     r"template code_search_net/uses_missing: uses framework, which the source does not provide", result.stderr)


def test_pattern_with_missing_field_and_answer_in_prompt_fail_validation(tmp_path):
    templates_with(tmp_path, "apps", """
  - id: fs_broken
    input: "{{ question }} {{ hint }}"
    target: "{{ solution }}"
  - id: fs_cheating
    preamble: "Like this: {{ solution }}"
    input: "{{ question }}"
    target: "{{ solution }}"
""", section="patterns")
    source = f"{{name: a, adapter: apps, path: {SAMPLE_DATA}/apps, data_files: train.jsonl, n: 2, fewshot: {{share: 0.5}}}}"
    _, result = validate(tmp_path, source, "templates")
    assert result.exit_code == 1
    assert "pattern apps/fs_broken: uses hint, which the source does not provide" in result.stderr
    assert "pattern apps/fs_cheating: its prompt uses solution, which holds the answer; the prompt must not show the answer" in result.stderr


def test_code_to_docstring_template_showing_the_code_with_its_docstring_is_refused(tmp_path):
    templates_with(tmp_path, "code_search_net", """
  - id: leaky
    task: code_to_docstring
    prompt: "{{ code }}"
    completion: "{{ docstring }}"
""")
    source = f"{{name: cs, adapter: code_search_net, path: {SAMPLE_DATA}/code_search_net, n: 2}}"
    _, result = validate(tmp_path, source, "templates")
    assert "template code_search_net/leaky: its prompt uses code, which holds the answer of task code_to_docstring" in result.stderr


def test_fewshot_settings_are_checked_against_the_source(tmp_path):
    flan = f"{{name: f, adapter: flan, path: {SAMPLE_DATA}/flan/sirneural, n: 2, fewshot: {{share: 0.5}}}}"
    _, result = validate(tmp_path, flan)
    assert "sources[0].fewshot: flan rows are templated already, with their own exemplars" in result.stderr
    alpaca = f"{{name: a, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 2, fewshot: {{share: 0.5, style: inline}}}}"
    _, result = validate(tmp_path, alpaca)
    assert "fewshot: no few-shot pattern for style inline (family alpaca offers: none)" in result.stderr
    assert "use style: turns" in result.stderr
    turns = f"{{name: a, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 2, fewshot: {{share: 0.5, style: turns}}}}"
    assert validate(tmp_path, turns)[1].exit_code == 0
    unknown = (f"{{name: a, adapter: apps, path: {SAMPLE_DATA}/apps, data_files: train.jsonl, n: 2, "
               f"fewshot: {{patterns: [fs_nope]}}, templates: [nope]}}")
    _, result = validate(tmp_path, unknown)
    assert "sources[0].templates: " in result.stderr and "no template 'nope' in family 'apps'" in result.stderr
    assert "sources[0].fewshot: " in result.stderr and "no few-shot pattern 'fs_nope' in family 'apps'" in result.stderr
    one_task = (f"{{name: cs, adapter: code_search_net, path: {SAMPLE_DATA}/code_search_net, n: 2, "
                f"templates: [dc_generate]}}")
    _, result = validate(tmp_path, one_task)
    assert "no template of task code_to_docstring among those chosen (dc_generate)" in result.stderr
    bad_shape = f"{{name: a, adapter: apps, path: {SAMPLE_DATA}/apps, n: 2, fewshot: {{share: 2, shots: 0, style: sideways}}}}"
    _, result = validate(tmp_path, bad_shape)
    for key in ("fewshot.share: ", "fewshot.shots: ", "fewshot.style: "):
        assert f"sources[0].{key}" in result.stderr


def test_validate_says_when_a_tokenizer_is_not_available(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = (f"{{name: a, adapter: apps, path: {SAMPLE_DATA}/apps, data_files: train.jsonl, n: 2, "
              f"fewshot: {{max_length: 100, tokenizer: nobody/nothing}}}}")
    _, result = validate(tmp_path, source)
    assert result.exit_code == 0
    assert "note: sources[0] a: fewshot.tokenizer 'nobody/nothing' skipped" in result.output
    assert "`build` fetches it and stops if it cannot" in result.output
    assert "budget 100 tokens of nobody/nothing" in result.output  # the unit the build will count in


def test_keys_are_stable_content_hashes():
    table, adapter = fixture_rows("apps")
    assert len(set(row_keys(table, adapter.identity_fields).tolist())) == table.num_rows
    np.testing.assert_array_equal(row_keys(table, adapter.identity_fields), row_keys(table.take(pa.array(range(table.num_rows))), adapter.identity_fields))
