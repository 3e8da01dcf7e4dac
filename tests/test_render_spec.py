"""Render specs as plain data: the description pickles, rebuilds the same spec, and renders the same bytes in a child
process as in this one."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest

from flan_mini.compose import RenderedRows, render_rows, render_source
from flan_mini.errors import FlanMiniError
from flan_mini.lengths import load_measure
from flan_mini.plan import make_plan
from flan_mini.recipe import load_recipe
from flan_mini.render_spec import RenderDescription, RenderSpec, spec_of
from flan_mini.sources.base import FewShotConfig

from .test_fewshot import keys_of, toy_family, toy_table

REPO = Path(__file__).resolve().parent.parent


def arrow_bytes(rendered: RenderedRows) -> bytes:
    """Every rendered column in Arrow's IPC form: equal bytes, equal output."""
    table = pa.table({"conversations": rendered.conversations, "template_id": rendered.template_id,
                      "template_type": rendered.template_type, "num_shots": rendered.num_shots})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def word_tokenizer(folder: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(["Q A q a ? : 1 2 3"], tokenizers.trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tokenizer.save(str(folder / "tokenizer.json"))


def token_spec(tmp_path) -> RenderSpec:
    """The toy family, few-shot inline and as turns, with a budget in tokens of a tokenizer given by a relative path."""
    word_tokenizer(tmp_path)
    measure, note = load_measure("tokenizer.json", tmp_path)
    assert note is None and measure.source == str((tmp_path / "tokenizer.json").resolve())
    family = toy_family(tmp_path)
    return RenderSpec(family, list(family.templates.values()), list(family.patterns.values()),
                      FewShotConfig(share=0.5, shots=[1, 2, 3], max_length=14), measure,
                      task_field="task", exemplar_match=("language",), item_field="item", notes=["a note"])


def test_description_is_plain_data_that_rebuilds_the_spec(tmp_path):
    spec = token_spec(tmp_path)
    description = spec.description
    back = pickle.loads(pickle.dumps(description))
    assert back == description and hash(back) == hash(description)
    rebuilt = spec_of(back)
    assert rebuilt is spec_of(description)  # once per process
    assert rebuilt.description == description
    assert [t.full_id for t in rebuilt.templates] == [t.full_id for t in spec.templates]
    assert rebuilt.fewshot == spec.fewshot and rebuilt.measure.name == "tokenizer.json" and rebuilt.notes == ["a note"]
    table = toy_table(300)
    keys = keys_of(table)
    expected = render_rows(table, spec, keys, 3, "toy")
    assert expected.stats["few_shot"] > 0 and expected.stats["tokenizer"] == "tokenizer.json"
    assert arrow_bytes(render_source(back, table, keys, 3, "toy")) == arrow_bytes(expected)
    assert arrow_bytes(render_rows(table, back, keys, 3, "toy")) == arrow_bytes(expected)  # render_rows takes either


def test_rendering_in_a_spawned_process_gives_the_same_bytes(tmp_path):
    spec = token_spec(tmp_path)
    table = toy_table(300)
    keys = keys_of(table)
    expected = render_rows(table, spec, keys, 3, "toy")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        child = pool.submit(render_source, spec.description, table, keys, 3, "toy").result()
    assert arrow_bytes(child) == arrow_bytes(expected)
    assert child.stats == expected.stats and child.exemplars == expected.exemplars


def test_the_sample_recipes_specs_round_trip(tmp_path):
    plan = make_plan(load_recipe(REPO / "recipes" / "sample.yaml"), out=tmp_path / "out", resolve_hub_sources=False)
    specs = [source.render for source in plan.sources if source.render is not None]
    assert specs
    for spec in specs:
        description = pickle.loads(pickle.dumps(spec.description))
        assert spec_of(description).description == description


def test_a_tokenizer_that_is_gone_is_an_error_not_characters(tmp_path):
    description = RenderDescription("toy", str(tmp_path), ("plain",), (), tokenizer=str(tmp_path / "missing.json"),
                                    tokenizer_name="missing.json")
    toy_family(tmp_path)
    with pytest.raises(FlanMiniError, match="missing.json"):
        spec_of(description)
