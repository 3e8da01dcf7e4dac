"""The README's YAML examples (recipe, sources, dedup, decontamination, template family) pass `validate`, so the
documentation cannot drift from the configuration models again."""

from __future__ import annotations

import json
import re
import textwrap

import yaml

from flan_mini.render import load_family

from .conftest import REPO, run_cli

# YAML blocks of other tools' configuration, documented for them and not read by flan-mini.
FOREIGN = ("chat_template:",)


def _yaml_blocks() -> list[str]:
    """Every ```yaml block of README.md opening at a line's start (prose quotes fences inline)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"(?m)^```yaml\n(.*?)^```", text, re.S)


def _block(starts: str) -> object:
    """The one README YAML block whose first line starts with `starts` (after its indent), parsed."""
    found = [b for b in _yaml_blocks() if b.lstrip().startswith(starts)]
    assert len(found) == 1, f"README.md has {len(found)} yaml blocks starting with {starts!r}"
    return yaml.safe_load(textwrap.dedent(found[0]))


OURS = ("name: my-mixture", "split_conversations:", "- name: ultrachat", "- name: code_search", "dedup:",
        "decontaminate:", "family:")


def test_every_readme_yaml_block_is_checked_or_foreign():
    for block in _yaml_blocks():
        first = block.lstrip()
        assert first.startswith(OURS + FOREIGN), f"README yaml block not validated by this test:\n{block}"


def _readme_recipe(tmp_path):
    """The README's recipe with its other examples added: the source fragments as sources, and the sections."""
    recipe = _block("name: my-mixture")
    recipe["sources"] += [
        _block("- name: ultrachat")[0],
        _block("- name: code_search")[0],
        # dedup's `keep` names a sharegpt source; the splitting example is one of its options.
        {"name": "sharegpt", "adapter": "sharegpt", "path": "anon8231489123/ShareGPT_Vicuna_unfiltered", "n": 1000,
         "license": "other", **_block("split_conversations:")},
    ]
    recipe.update(_block("dedup:"))
    recipe.update(_block("decontaminate:"))
    folder = tmp_path / "recipes"
    # The local benchmark files the decontamination example names, in their published formats.
    (folder / "evals" / "bbh").mkdir(parents=True)
    (folder / "evals" / "bbh" / "date_understanding.json").write_text(
        json.dumps({"examples": [{"input": "Today is 9/7. What date was it yesterday?", "target": "9/6"}]}))
    (folder / "evals" / "my_eval.jsonl").write_text(
        json.dumps({"uid": "a1", "question": "Why is the sky blue?", "premise": "It rains.", "hypothesis": "It is wet."}) + "\n")
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def test_readme_recipe_examples_pass_validate(tmp_path):
    result = run_cli("validate", _readme_recipe(tmp_path))
    assert result.exit_code == 0, result.output
    assert "recipe.yaml: ok" in result.output
    for name in ("flan2021", "gpt4_alpaca", "ultrachat", "code_search", "sharegpt"):
        assert name in result.output


def test_readme_examples_would_catch_drift(tmp_path):
    """The check is real: a key the models do not know, put into the README's dedup example, fails validate."""
    path = _readme_recipe(tmp_path)
    recipe = yaml.safe_load(path.read_text())
    recipe["dedup"]["normalize"]["code"] = False
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    result = run_cli("validate", path)
    assert result.exit_code != 0 and "dedup.normalize.code" in result.output


def test_readme_template_family_example_loads(tmp_path):
    family = _block("family:")
    (tmp_path / f"{family['family']}.yaml").write_text(yaml.safe_dump(family, sort_keys=False), encoding="utf-8")
    loaded = load_family(family["family"], tmp_path)
    assert list(loaded.templates) == [t["id"] for t in family["templates"]]
    assert list(loaded.patterns) == [p["id"] for p in family["patterns"]]
    assert loaded.tasks == family["tasks"]
