"""The recipe's dedup section: defaults, ranges, and errors that name the field."""

from __future__ import annotations

import pytest

from flan_mini.dedup.config import DedupConfig, dedup_config
from flan_mini.errors import FlanMiniError, RecipeError


def problems(data) -> list[str]:
    with pytest.raises(RecipeError) as info:
        dedup_config(data)
    assert isinstance(info.value, FlanMiniError)
    return info.value.problems


def test_defaults_are_documented_and_valid():
    config = dedup_config({})
    assert config.enabled and config.threshold == 0.8 and config.num_perm == 128
    assert config.shingle.kind == "word" and config.shingle.size == 5
    assert config.compare == "conversation" and config.scope == "global" and config.keep is None
    assert config.normalize.text_norm().punctuation == "strip"
    assert dedup_config(None) == config
    for name, field in DedupConfig.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize("threshold", [0, 1, 1.5, -0.2])
def test_threshold_outside_open_unit_interval(threshold):
    (problem,) = problems({"threshold": threshold})
    assert problem.startswith("dedup.threshold:") and repr(threshold) in problem


def test_bands_times_rows_must_be_num_perm():
    (problem,) = problems({"num_perm": 128, "bands": 9, "rows": 13})
    assert "9 x 13 = 117" in problem and "num_perm is 128" in problem
    (problem,) = problems({"bands": 16})
    assert "both" in problem
    assert DedupConfig(num_perm=128, bands=16, rows=8).lsh_params() == (16, 8)


def test_every_problem_reported_at_once_with_its_path():
    found = problems({"threshold": 2, "num_perm": 1, "shingle": {"kind": "byte", "size": 0}, "compare": "all",
                      "scope": "world", "typo": 1, "weights": [0.9, 0.9], "keep": ["a", "a"]})
    where = sorted(p.split(":")[0] for p in found)
    assert where == sorted(["dedup.threshold", "dedup.num_perm", "dedup.shingle.kind", "dedup.shingle.size",
                            "dedup.compare", "dedup.scope", "dedup.typo", "dedup.weights", "dedup.keep"])


def test_code_mode_defaults_to_split_punctuation():
    config = dedup_config({"normalize": {"mode": "code"}})
    norm = config.normalize.text_norm()
    assert norm.code and norm.punctuation == "split"
    assert dedup_config({"normalize": {"mode": "code", "punctuation": "strip"}}).normalize.text_norm().punctuation == "strip"


def test_mode_and_weights_survive_a_dump_and_revalidation():
    """A recipe is validated twice (its head is dumped and validated again): an unset `weights` stays unset."""
    for data in ({}, {"mode": "datasketch"}, {"weights": [0.2, 0.8]}):
        config = dedup_config(data)
        again = DedupConfig.model_validate(config.model_dump())
        assert again == config and again.lsh_params() == config.lsh_params()
    assert problems({"mode": "fast"})[0].startswith("dedup.mode:")
