"""The fine-tuning config: the shipped files, every problem at once with its line, paths and overrides."""

from pathlib import Path

import pytest

from finetune.config import Location, load_config
from flan_mini.errors import RecipeError

REPO = Path(__file__).resolve().parents[2]
FLACUNA = REPO / "finetune" / "configs" / "flacuna-13b.yaml"
TINY = REPO / "finetune" / "configs" / "tiny-cpu.yaml"

VALID = """\
base_model:
  path: ./base
  init_tiny: {}
dataset:
  path: ./data
lora:
  target_modules: [q_proj]
training:
  learning_rate: 1.0e-3
  warmup: {steps: 0}
  max_steps: 3
  per_device_batch: 2
  max_length: 64
output:
  dir: ./out
"""


def write(tmp_path, text, name="run.yaml"):
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(text)
    return path


def test_flacuna_config_is_the_papers_run():
    config = load_config(FLACUNA, require_dataset=False)
    assert config.base_model.path == "TheBloke/vicuna-13B-1.1-HF" and config.base_model.architecture == "llama-13b"
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (8, 16, 0.05)
    assert config.lora.target_modules == ["q_proj", "v_proj"]
    t = config.training
    assert (t.learning_rate, t.scheduler, t.epochs, t.max_steps) == (2e-5, "cosine", 1, None)
    assert t.per_device_batch * t.gradient_accumulation * t.devices == 128 and t.devices == 4
    assert (t.warmup.steps, t.warmup.ratio, t.max_length) == (3000, None, 1280)
    assert (config.dataset.eval_share, config.dataset.eval_seed) == (0.005, 0)
    assert config.format == "vicuna_v1.1" and config.base_model.precision == "bf16"


def test_tiny_config_validates_and_is_small():
    config = load_config(TINY, require_dataset=False)
    spec = config.base_model.init_tiny
    assert spec.hidden_size <= 128 and spec.num_layers == 2 and config.training.max_length <= 256
    assert config.training.use_cpu and config.format == "vicuna_v1.1"


def test_every_problem_is_reported_with_its_line(tmp_path):
    text = VALID.replace("target_modules: [q_proj]", "target_modules: [q_proj]\n  rank: 4")
    text = text.replace("warmup: {steps: 0}", "warmup: {steps: 10, ratio: 0.1}")
    text = text.replace("per_device_batch: 2", "per_device_batch: -5")
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_config(path)
    problems = info.value.problems
    lines = text.splitlines()

    def line_of(fragment):
        return next(i + 1 for i, line in enumerate(lines) if fragment in line)

    assert f"{path}:{line_of('rank: 4')}  lora.rank: unknown key 'rank'; expected one of: alpha, bias, dropout, r, target_modules" in problems
    assert f"{path}:{line_of('warmup:')}  training.warmup: give exactly one of `steps` or `ratio`" in problems
    assert (
        f"{path}:{line_of('per_device_batch')}  training.per_device_batch: "
        "Input should be greater than or equal to 1, got -5"
    ) in problems
    assert len(problems) == 3


def test_missing_keys_point_at_their_section(tmp_path):
    path = write(tmp_path, VALID.replace("  learning_rate: 1.0e-3\n", ""))
    with pytest.raises(RecipeError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}:8  training.learning_rate: required key is missing (Peak learning rate)"]  # the `training:` line


def test_epochs_and_max_steps_are_exclusive(tmp_path):
    path = write(tmp_path, VALID.replace("max_steps: 3", "max_steps: 3\n  epochs: 1"))
    with pytest.raises(RecipeError, match="exactly one of `epochs` or `max_steps`"):
        load_config(path)


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = write(tmp_path, VALID.replace("max_length: 64", "max_length: [64"))
    with pytest.raises(RecipeError, match=r"config has 1 problem:\n  .*run\.yaml:\d+  YAML syntax error"):
        load_config(path)


def test_duplicate_keys_are_refused(tmp_path):
    path = write(tmp_path, VALID.replace("max_length: 64", "max_length: 64\n  max_length: 32"))
    with pytest.raises(RecipeError, match=r"run\.yaml:\d+  training.max_length: duplicate key"):
        load_config(path)


def test_missing_dataset_folder_says_how_to_build_it(tmp_path):
    path = write(tmp_path, VALID.replace("path: ./data", "path: ./nothing-here"))
    with pytest.raises(RecipeError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:5  dataset.path: no folder at {tmp_path / 'nothing-here'}")
    assert "flan-mini build" in problem
    assert load_config(path, require_dataset=False).dataset.path == "./nothing-here"


def test_overrides_replace_values_and_are_blamed_on_the_command_line(tmp_path):
    path = write(tmp_path, VALID)
    config = load_config(path, {"training.max_steps": 7, "output.dir": "/elsewhere"})
    assert config.training.max_steps == 7 and config.output.dir == "/elsewhere"
    with pytest.raises(RecipeError) as info:
        load_config(path, {"lora.r": 0})
    assert info.value.problems == [f"{path} (command line)  lora.r: Input should be greater than or equal to 1, got 0"]


def test_unknown_architecture_lists_the_shipped_ones(tmp_path):
    path = write(tmp_path, VALID.replace("  init_tiny: {}", "  init_tiny: {}\n  architecture: llama-99b"))
    with pytest.raises(RecipeError, match=r"llama-99b.*llama-13b"):
        load_config(path)


def test_local_paths_resolve_against_the_config_and_hub_ids_stay_ids(tmp_path):
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "built").mkdir()
    assert Location("owner/built", tmp_path).path == tmp_path / "owner" / "built"
    hub = Location("declare-lab/flan-mini", tmp_path)
    assert not hub.is_local and hub.hub_id == "declare-lab/flan-mini"
    assert Location("../x", tmp_path / "owner").path == (tmp_path / "x").resolve()
    assert Location("gpt2", tmp_path).hub_id == "gpt2"  # an id without owner, as transformers allows
    assert Location("a/b/c", tmp_path).path == tmp_path / "a" / "b" / "c"  # cannot be a Hub id: a missing folder


def test_a_missing_train_extra_is_a_clear_error(monkeypatch, tmp_path):
    import importlib.util

    from click.testing import CliRunner

    from flan_mini.cli import main as flan_mini

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    result = CliRunner().invoke(flan_mini, ["finetune", str(tmp_path / "any.yaml")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "training needs peft, which is not installed" in result.stderr and "pip install -e '.[train]'" in result.stderr


def test_the_train_sh_config_differs_from_the_papers_only_where_train_sh_did():
    paper = load_config(FLACUNA, require_dataset=False).model_dump()
    script = load_config(REPO / "finetune" / "configs" / "flacuna-13b-train-sh.yaml", require_dataset=False).model_dump()
    assert script["training"]["warmup"] == {"steps": None, "ratio": 0.0001}
    assert (script["base_model"]["load_in_8bit"], script["base_model"]["precision"]) == (True, "fp16")
    assert script["output"]["dir"] != paper["output"]["dir"]
    for section, key in (("training", "warmup"), ("base_model", "load_in_8bit"), ("base_model", "precision"),
                         ("output", "dir")):
        del paper[section][key], script[section][key]
    assert script == paper


def test_every_shipped_config_reads_what_a_shipped_recipe_writes():
    import yaml

    written = {}
    for recipe in sorted((REPO / "recipes").glob("*.yaml")):
        folder = yaml.safe_load(recipe.read_text())["output"]["folder"]
        written[(recipe.parent / folder).resolve()] = recipe.name
    configs = sorted((REPO / "finetune" / "configs").glob("*.yaml"))
    assert len(configs) >= 3
    for path in configs:
        config = load_config(path, require_dataset=False)
        dataset = Location(config.dataset.path, path.parent)
        assert dataset.is_local and dataset.path in written, (path.name, dataset.path, sorted(map(str, written)))
    assert written[Location(load_config(FLACUNA, require_dataset=False).dataset.path, FLACUNA.parent).path] == "flan_mini.yaml"


def test_a_missing_tokenizer_folder_and_an_unknown_mode_are_reported(tmp_path):
    path = write(tmp_path, VALID.replace("  init_tiny: {}\n", "  init_tiny: {}\n  tokenizer: ./tok\n  tokenizer_mode: legacy\n"))
    with pytest.raises(RecipeError) as info:
        load_config(path)
    text = str(info.value)
    assert "base_model.tokenizer_mode: Input should be 'auto', 'spm' or 'fast'" in text
    path = write(tmp_path, VALID.replace("  init_tiny: {}\n", "  init_tiny: {}\n  tokenizer: ./tok\n"))
    with pytest.raises(RecipeError, match=r"run\.yaml:4  base_model\.tokenizer: no folder at .*tok"):
        load_config(path)


@pytest.mark.parametrize("readme", ["README.md", "finetune/README.md"])
def test_the_readmes_build_then_train_commands_resolve(readme):
    """In each shell block of the README that builds a recipe and trains, the configs read what was built."""
    import re

    import yaml

    # Fences at the start of a line only: prose may quote ``` inline.
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", (REPO / readme).read_text(encoding="utf-8"), flags=re.S | re.M)
    checked = 0
    for block in blocks:
        built = {
            (REPO / "recipes" / yaml.safe_load((REPO / recipe).read_text())["output"]["folder"]).resolve()
            for recipe in re.findall(r"flan-mini build (recipes/\S+\.yaml)", block)
        }
        for config in re.findall(r"(?:flan-mini|-m finetune) finetune (finetune/configs/\S+\.yaml)", block):
            if built:
                path = REPO / config
                dataset = Location(load_config(path, require_dataset=False).dataset.path, path.parent)
                assert dataset.path in built, (readme, config, dataset.path, built)
                checked += 1
    assert checked >= 2
