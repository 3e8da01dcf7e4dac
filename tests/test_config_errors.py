"""One error format for every YAML config a command loads: `FILE:LINE  key.path: problem`, from one strict base."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from flan_mini.config_base import MAX_INT, StrictModel, Where, validate_config
from flan_mini.errors import RecipeError

from .conftest import SAMPLE_DATA, run_cli

HUGE = 10**20  # beyond int64

RECIPE = f"""\
name: t
seed: 1
sources:
  - {{name: s, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 3}}
"""
DEDUP = """\
name: a recipe holding the section
dedup:
  threshold: 0.8
  num_perm: 128
  bucket_cap: 64
"""
DECONTAM = """\
benchmarks:
  - {name: humaneval}
ngram: 13
min_tokens: 8
"""
FINETUNE = """\
base_model:
  path: ./base
  init_tiny: {}
dataset:
  path: ./data
lora:
  r: 8
  target_modules: [q_proj]
training:
  learning_rate: 1.0e-3
  warmup: {steps: 0}
  max_steps: 3
  per_device_batch: 2
  max_length: 64
  seed: 42
output:
  dir: ./out
"""

# Per config: its text, the command that loads it, and three faults (the line to change, its replacement, the
# key path and the problem the message must give).
CASES = {
    "recipe": (RECIPE, lambda f, tmp: ["validate", f], [
        ("seed: 1", "sed: 1", "sed", "unknown key 'sed'; did you mean 'seed'?"),
        ("seed: 1", "seed: true", "seed", "expected a number or text, not the boolean true"),
        ("seed: 1", f"seed: {HUGE}", "seed", "1e+20 is too large"),
    ]),
    "dedup": (DEDUP, lambda f, tmp: ["dedup", tmp, tmp / "out", "--config", f], [
        ("  threshold: 0.8", "  thresold: 0.8", "dedup.thresold", "unknown key 'thresold'; did you mean 'threshold'?"),
        ("  num_perm: 128", "  num_perm: true", "dedup.num_perm", "expected a number or text, not the boolean true"),
        ("  bucket_cap: 64", f"  bucket_cap: {HUGE}", "dedup.bucket_cap", "1e+20 is too large"),
    ]),
    "decontaminate": (DECONTAM, lambda f, tmp: ["decontaminate", tmp, "--config", f], [
        ("ngram: 13", "ngramm: 13", "ngramm", "unknown key 'ngramm'; did you mean 'ngram'?"),
        ("ngram: 13", "ngram: false", "ngram", "expected a number or text, not the boolean false"),
        ("min_tokens: 8", f"min_tokens: {HUGE}", "min_tokens", "1e+20 is too large"),
    ]),
    "finetune": (FINETUNE, lambda f, tmp: ["finetune", f, "--dry-run"], [
        ("  r: 8", "  rr: 8", "lora.rr", "unknown key 'rr'"),
        ("  max_steps: 3", "  max_steps: true", "training.max_steps", "expected a number or text, not the boolean true"),
        ("  seed: 42", f"  seed: {HUGE}", "training.seed", "1e+20 is too large"),
    ]),
}


@pytest.mark.parametrize("fault", range(3), ids=["typo", "boolean", "too-large"])
@pytest.mark.parametrize("kind", list(CASES))
def test_every_config_reports_a_fault_as_file_line_key(tmp_path, kind, fault):
    text, command, faults = CASES[kind]
    old, new, key, problem = faults[fault]
    assert old in text
    text = text.replace(old, new, 1)
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    (tmp_path / "data").mkdir()
    line = text.splitlines().index(new) + 1
    result = run_cli(*command(path, tmp_path))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [item.strip() for item in result.stderr.splitlines()]
    found = [item for item in lines if item.startswith(f"{path}:{line}  {key}: ")]
    assert len(found) == 1, result.stderr
    assert problem in found[0]
    assert re.match(r"flan-mini: error: \w[\w ]* has 1 problem:$", lines[0]), result.stderr


def test_a_command_line_value_is_named_as_such(tmp_path):
    """A value an option set has no line: it is reported as the command line's, in the same format."""
    (tmp_path / "in").mkdir()
    result = run_cli("dedup", tmp_path / "in", tmp_path / "out", "--threshold", "1.5")
    assert result.exit_code == 1
    assert "(command line)  dedup.threshold: Input should be less than 1, got 1.5" in result.stderr
    path = tmp_path / "dedup.yaml"
    path.write_text("threshold: 0.8\nnum_perm: 1\n")
    result = run_cli("dedup", tmp_path / "in", tmp_path / "out", "--config", path, "--threshold", "1.5")
    assert f"{path} (command line)  threshold: Input should be less than 1, got 1.5" in result.stderr
    assert f"{path}:2  num_perm: Input should be greater than or equal to 2, got 1" in result.stderr


def test_the_base_refuses_what_pydantic_would_coerce():
    class Section(StrictModel):
        count: int = 1
        share: float = 0.5
        flag: bool = False

    assert Section(count=MAX_INT, flag=True).count == MAX_INT
    with pytest.raises(RecipeError) as info:
        validate_config(Section, {"count": True, "share": -(MAX_INT + 2), "flagg": 1}, prefix=("section",))
    assert info.value.problems == [
        "section.count: expected a number or text, not the boolean true, got True",
        "section.share: -9.22e+18 is too large (at most 9,223,372,036,854,775,807), got -9223372036854775809",
        "section.flagg: unknown key 'flagg'; did you mean 'flag'?",
    ]
    config = Section()
    with pytest.raises(Exception, match="frozen"):
        config.count = 2
    assert Where(file="x.yaml").problem(("a", 0, "b"), "bad") == "x.yaml  a[0].b: bad"


def test_recipe_does_not_import_the_publishing_code():
    code = textwrap.dedent("""
        import sys
        import flan_mini.recipe
        print(sorted(m for m in sys.modules if m in ("flan_mini.hub", "flan_mini.card", "huggingface_hub")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
