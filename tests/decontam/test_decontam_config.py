"""The recipe's `decontaminate:` section: defaults, every problem reported at once with its line, plan checks."""

from __future__ import annotations

import pytest

from flan_mini.decontam.config import DecontamConfig, decontam_config
from flan_mini.errors import RecipeError

from ..conftest import SAMPLE_DATA, run_cli, write_recipe

SOURCE = f"  - {{name: s, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 3}}"


def test_defaults_and_readers():
    config = decontam_config({"benchmarks": [{"name": "humaneval"}, {"name": "mine", "path": "x.csv", "fields": ["q"]},
                                             {"name": "tests", "reader": "mbpp", "path": "mbpp.jsonl"}]})
    assert (config.ngram, config.share, config.min_tokens, config.compare, config.action) == (13, 0.5, 8, "both", "remove")
    assert [b.resolved_reader for b in config.benchmarks] == ["humaneval", "generic", "mbpp"]
    assert config.extra_share() == 0.02
    assert DecontamConfig(benchmarks=config.benchmarks, action="report").extra_share() == 0.0
    assert DecontamConfig(benchmarks=config.benchmarks, enabled=False).extra_share() == 0.0


def test_every_problem_at_once():
    with pytest.raises(RecipeError) as err:
        decontam_config({"benchmarks": [{"name": "a b"}, {"name": "humaneval", "delimiter": ";"}], "share": 0,
                         "compare": "answer", "ngram": 2})
    problems = err.value.problems
    assert "decontaminate.benchmarks[0].name: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$', got 'a b'" in problems
    assert ("decontaminate.benchmarks[1]: benchmark 'humaneval': `delimiter` is only for generic benchmarks; the "
            "humaneval reader knows its format") in problems
    assert "decontaminate.share: Input should be greater than 0, got 0" in problems
    assert any(p.startswith("decontaminate.compare: Input should be 'prompt', 'response' or 'both'") for p in problems)
    assert "decontaminate.ngram: Input should be greater than or equal to 3, got 2" in problems
    with pytest.raises(RecipeError, match="min_tokens \\(14\\) must not exceed ngram \\(13\\)"):
        decontam_config({"benchmarks": [{"name": "humaneval"}], "min_tokens": 14})
    with pytest.raises(RecipeError, match=r"benchmark names must be unique; repeated: \['humaneval'\]"):
        decontam_config({"benchmarks": [{"name": "humaneval"}, {"name": "humaneval"}]})
    with pytest.raises(RecipeError, match="decontaminate.benchmarks: required key is missing"):
        decontam_config({})


def test_recipe_problems_name_their_line(tmp_path):
    recipe = write_recipe(tmp_path, f"""
        name: t
        decontaminate:
          ngramm: 13
          benchmarks:
            - name: humaneval
              format: jsonl
            - name: mine
              path: x.jsonl
        sources:
        {SOURCE}
    """)
    result = run_cli("validate", recipe)
    assert result.exit_code == 1
    assert "recipe.yaml:3  decontaminate.ngramm: unknown key 'ngramm'; did you mean 'ngram'?" in result.stderr
    assert ("recipe.yaml:5  decontaminate.benchmarks[0]: benchmark 'humaneval': `format` is only for generic "
            "benchmarks; the humaneval reader knows its format") in result.stderr
    assert ("recipe.yaml:7  decontaminate.benchmarks[1]: benchmark 'mine': a generic benchmark needs `fields` "
            "(the keys holding its text)") in result.stderr


def test_validate_checks_benchmark_locations_and_prints_them(tmp_path):
    recipe = write_recipe(tmp_path, f"""
        name: t
        decontaminate:
          benchmarks:
            - {{name: mine, path: nowhere.jsonl, fields: [q]}}
            - {{name: crass}}
            - {{name: mmlu}}
        sources:
        {SOURCE}
    """)
    result = run_cli("validate", recipe)
    assert result.exit_code == 1
    assert (f"recipe.yaml:4  decontaminate.benchmarks[0]: path 'nowhere.jsonl' does not exist (looked for "
            f"{tmp_path / 'nowhere.jsonl'}) and is not a Hub dataset id (org/name)") in result.stderr
    assert ("recipe.yaml:5  decontaminate.benchmarks[1]: benchmark 'crass': no path given, and the crass reader has "
            "no default location; set path: to its files") in result.stderr
    (tmp_path / "crass.csv").write_text("PCTID;BatchID;Premise;QCC\n")
    (tmp_path / "nowhere.jsonl").write_text("")
    recipe.write_text(recipe.read_text().replace("{name: crass}", "{name: crass, path: crass.csv}"))
    result = run_cli("validate", recipe)
    assert result.exit_code == 0, result.output
    assert "decontaminate  13-grams, share 0.5, compare both, action remove, oversample 0.02" in result.output
    assert "  mmlu  reader=mmlu  from hub:cais/mmlu (split test)  fields ['question', 'choices']" in result.output
    assert "  crass  reader=crass  from crass.csv (split test)  fields [['Premise', 'QCC']]" in result.output
    assert ("note: decontaminate.benchmarks[2] benchmark mmlu: Hub dataset cais/mmlu not checked (needs the Hub; "
            "use --check-hub)") in result.output


def test_a_disabled_section_is_not_checked_or_run(tmp_path):
    recipe = write_recipe(tmp_path, f"""
        name: t
        decontaminate: {{enabled: false, benchmarks: [{{name: crass}}]}}
        sources:
        {SOURCE}
    """)
    assert run_cli("validate", recipe).exit_code == 0
    assert run_cli("build", recipe, "--out", tmp_path / "out", "-q").exit_code == 0
    import json

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["decontamination"] is None and manifest["sources"][0]["selected"] == 3
