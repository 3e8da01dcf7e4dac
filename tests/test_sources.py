"""Adapters read the real published layouts exactly, normalise their variants, and flag bad records."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flan_mini.errors import SourceError
from flan_mini.rejects import reject_reasons
from flan_mini.sources.alpaca import AlpacaAdapter, AlpacaConfig
from flan_mini.sources.files import resolve_local
from flan_mini.sources.flan import FlanAdapter, FlanConfig, submix_from_name

from .fixtures.formats import (
    write_alpaca_json,
    write_alpaca_parquet,
    write_dpi_flan,
    write_openorca_flan,
    write_sirneural_flan,
)

ROW = {"inputs": "Sentence: x\nOPTIONS:\n- a\n- b", "targets": "a", "task_name": "glue/cola:2.0.0",
       "task_source": "Flan2021", "template_type": "zs_opt", "template_idx": 3}


def flan(tmp_path, **options) -> FlanAdapter:
    return FlanAdapter(FlanConfig(name="f", adapter="flan", path=str(tmp_path), n=1, **options))


def read_all(adapter, tmp_path, data_files=None) -> pa.Table:
    inputs = resolve_local(str(tmp_path), data_files, "train", tmp_path, adapter.extensions)
    batches = [b for f in inputs.files if not adapter.skip_file(f) for b in adapter.read(f)]
    return pa.Table.from_batches(batches)


def test_submix_names():
    assert submix_from_name("flan_zsopt_data/part.0.parquet") == ("Flan2021", "zs_opt")
    assert submix_from_name("t0_fsnoopt_data/part.3.parquet") == ("P3", "fs_noopt")
    assert submix_from_name("cot_fs_opt_train.jsonl.gz") == ("CoT", "fs_opt")
    assert submix_from_name("flan2021_zsnoopt_submix_data.json") == ("Flan2021", "zs_noopt")
    assert submix_from_name("hub:DataProvenanceInitiative/niv2_submix_original/data/train-0.parquet") == ("NIv2", None)
    assert submix_from_name("data/train-00000-of-00002.parquet") == (None, None)


def test_openorca_layout_with_and_without_metadata_columns(tmp_path):
    write_openorca_flan(tmp_path, "flan_zsopt_data", [ROW])
    write_openorca_flan(tmp_path, "niv2_fsopt_data", [{**ROW, "task_name": "task061_ropes_answer_generation"}], with_metadata=False)
    table = read_all(flan(tmp_path), tmp_path).sort_by("task_name")
    assert table.column("task_name").to_pylist() == ["glue/cola:2.0.0", "task061_ropes_answer_generation"]
    assert table.column("task_source").to_pylist() == ["Flan2021", "NIv2"]  # second from the folder name
    assert table.column("template_type").to_pylist() == ["zs_opt", "fs_opt"]
    assert table.column("template_idx").to_pylist() == [3, None]


def test_dpi_layout(tmp_path):
    write_dpi_flan(tmp_path, [ROW, {**ROW, "template_type": "fs_noopt", "inputs": "Q: 1\nA: 2\n\n\nQ: 3\nA:"}])
    table = read_all(flan(tmp_path), tmp_path)
    assert table.column("template_type").to_pylist() == ["zs_opt", "fs_noopt"]
    assert table.column("task_source").to_pylist() == ["Flan2021", "Flan2021"]
    assert pq.read_schema(next(tmp_path.rglob("*.parquet"))).names == ["inputs", "targets", "task_source", "task_name", "template_type"]


def test_sirneural_layout_and_json_lines_quirks(tmp_path):
    rows = [ROW, {**ROW, "targets": "b"}, {**ROW, "targets": "c"}]
    raw = {1: '{"inputs": "broken", "targ', 3: "", 4: '["an", "array"]', 5: '{"inputs": 7, "targets": "x", "task": "t"}'}
    write_sirneural_flan(tmp_path, "cot_zs_opt_train.jsonl.gz", rows, raw_lines=raw)
    adapter = flan(tmp_path)
    table = read_all(adapter, tmp_path)
    # Lines: row, broken, row, blank, array, wrong type, row. The blank line is no record; every
    # other line keeps its 0-based line index as its ordinal.
    assert table.column("_ordinal").to_pylist() == [0, 1, 2, 4, 5, 6]
    batch = table.combine_chunks().to_batches()[0]
    assert reject_reasons(batch, adapter).to_pylist() == [None, "invalid_json", None, "not_an_object", "wrong_type:inputs", None]
    assert table.column("task_source").to_pylist()[0] == "CoT"  # from the file name
    assert table.column("targets").to_pylist()[2] == "b"
    assert table.column("targets").to_pylist()[4] == "x"  # the wrongly typed row keeps its other fields


def test_json_lines_without_final_newline_and_plain_file(tmp_path):
    (tmp_path / "cot_zs_opt_train.jsonl").write_text('{"inputs": "a", "targets": "b", "task": "t"}\n{"inputs": "c", "targets": "d", "task": "t"}')
    table = read_all(flan(tmp_path), tmp_path)
    assert table.column("inputs").to_pylist() == ["a", "c"]


def test_json_lines_blank_lines_among_valid_rows_keep_line_ordinals(tmp_path):
    row = '{"inputs": "%s", "targets": "t", "task": "t"}'
    (tmp_path / "cot_zs_opt_train.jsonl").write_text("\n".join([row % "a", "", row % "b", " ", row % "c"]) + "\n")
    table = read_all(flan(tmp_path), tmp_path)
    assert table.column("inputs").to_pylist() == ["a", "b", "c"]
    assert table.column("_ordinal").to_pylist() == [0, 2, 4]


def test_json_lines_fetch_of_chosen_lines_matches_the_full_read(tmp_path):
    from flan_mini.sources import formats

    good = '{"a": "%s", "b": %d}'
    lines = [good % (f"row {i} \\u00e9", i) for i in range(40)]
    lines[7], lines[12], lines[20] = '{"a": "broken', "", '{"a": 5, "b": 1}'  # invalid, blank, wrong type
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    fields = {"a": pa.string(), "b": pa.int64()}
    columns = {"a": "a", "b": "b"}
    full = pa.Table.from_batches(list(formats.read_json_lines(path, columns, fields)))
    for wanted in ([3, 7, 20, 39], [0, 1, 2], [7], list(range(40))):
        wanted = np.array(wanted)
        got = pa.Table.from_batches(list(formats.read_json_lines(path, columns, fields, wanted)))
        expected = full.filter(pa.array(np.isin(full.column("_ordinal").to_numpy(), wanted)))
        assert got.equals(expected), wanted


def test_chiayewken_layout(tmp_path):
    pq.write_table(pa.table({"source": ["q"], "target": ["a"], "task_name": ["t"], "task_source": ["P3"],
                             "template_type": ["zsopt"], "template_idx": [1]}), tmp_path / "train.parquet")
    table = read_all(flan(tmp_path), tmp_path)
    assert table.column("inputs").to_pylist() == ["q"]
    assert table.column("template_type").to_pylist() == ["zs_opt"]  # spelling variant normalised


def test_unknown_layout_is_a_clear_error(tmp_path):
    pq.write_table(pa.table({"question": ["q"], "answer": ["a"]}), tmp_path / "x.parquet")
    adapter = flan(tmp_path)
    with pytest.raises(SourceError, match=r"x.parquet: not a FLAN export layout: no column for inputs: one of inputs, input; .*found: answer, question"):
        read_all(adapter, tmp_path)


def test_wrongly_typed_parquet_column_is_a_clear_error(tmp_path):
    pq.write_table(pa.table({"inputs": [1], "targets": ["a"], "_task_name": ["t"]}), tmp_path / "flan_zsopt_data.parquet")
    with pytest.raises(SourceError, match=r"column 'inputs' has type int64; expected string"):
        read_all(flan(tmp_path), tmp_path)


def test_missing_submix_is_an_error_only_when_filters_need_it(tmp_path):
    pq.write_table(pa.table({"inputs": ["q"], "targets": ["a"], "_task_name": ["t"]}), tmp_path / "mystery.parquet")
    assert read_all(flan(tmp_path), tmp_path).num_rows == 1
    with pytest.raises(SourceError, match="has no task_source column and its name does not say"):
        read_all(flan(tmp_path, task_sources=["P3"]), tmp_path)


def test_flan_filters_and_file_skipping(tmp_path):
    write_openorca_flan(tmp_path, "t0_zsopt_data", [{**ROW, "task_name": "a_task", "task_source": "P3"},
                                                    {**ROW, "task_name": "b_task", "task_source": "P3"}])
    write_openorca_flan(tmp_path, "flan_zsopt_data", [ROW])
    adapter = flan(tmp_path, task_sources=["P3"], exclude_tasks=["b_*"])
    inputs = resolve_local(str(tmp_path), None, "train", tmp_path, adapter.extensions)
    assert [adapter.skip_file(f) for f in inputs.files] == [True, False]  # flan_ folder skipped unread
    batch = next(adapter.read(inputs.files[1]))
    assert adapter.row_filter(batch).to_pylist() == [True, False]
    assert adapter.source_column(pa.Table.from_batches([batch])).to_pylist() == ["a_task", "b_task"]


def test_alpaca_original_json_and_hub_parquet(tmp_path):
    rows = [{"instruction": "Do x", "input": "", "output": "done"}, {"instruction": "Do y", "input": "with this", "output": "ok"}]
    write_alpaca_json(tmp_path / "orig" / "alpaca_data.json", rows + [{"instruction": "No input key", "output": "fine"},
                                                                       {"instruction": "Null output", "input": "", "output": None},
                                                                       "a string"])
    write_alpaca_parquet(tmp_path / "hub", rows)
    adapter = AlpacaAdapter(AlpacaConfig(name="a", adapter="alpaca", path=".", n=1))
    original = read_all(adapter, tmp_path / "orig")
    assert original.column("input").to_pylist() == ["", "with this", "", "", ""]
    batch = original.combine_chunks().to_batches()[0]
    assert reject_reasons(batch, adapter).to_pylist() == [None, None, None, "missing:output", "not_an_object"]
    hub = read_all(adapter, tmp_path / "hub")
    assert hub.column_names == ["instruction", "input", "output", "index", "_ordinal", "_reject"]  # `text` is not read
    assert hub.column("output").to_pylist() == ["done", "ok"]
    # The records have no id: their position in the file is their source id.
    assert original.column("index").to_pylist() == [0, 1, 2, 3, 4] and hub.column("index").to_pylist() == [0, 1]


def test_json_file_that_is_not_an_array(tmp_path):
    (tmp_path / "x.json").write_text('{"instruction": "a"}')
    adapter = AlpacaAdapter(AlpacaConfig(name="a", adapter="alpaca", path=".", n=1))
    # A .json file whose first byte is "{" is JSON Lines (as some Hub files are).
    assert read_all(adapter, tmp_path).column("instruction").to_pylist() == ["a"]
    (tmp_path / "x.json").write_text('"just a string"')
    batch = read_all(adapter, tmp_path).combine_chunks().to_batches()[0]
    assert reject_reasons(batch, adapter).to_pylist() == ["not_an_object"]
    (tmp_path / "x.json").write_text('[{"instruction": "a", "output": "b"}, {"instr')
    with pytest.raises(SourceError, match=r"x.json: not valid JSON"):
        read_all(adapter, tmp_path)


def test_blank_values_are_rejected_as_empty(tmp_path):
    write_dpi_flan(tmp_path, [ROW, {**ROW, "targets": "  \n\t"}, {**ROW, "targets": ""}, {**ROW, "inputs": None}])
    adapter = flan(tmp_path)
    batch = read_all(adapter, tmp_path).combine_chunks().to_batches()[0]
    assert reject_reasons(batch, adapter).to_pylist() == [None, "empty:targets", "empty:targets", "missing:inputs"]


def test_reading_only_wanted_rows(tmp_path):
    rows = [{**ROW, "inputs": f"q{i}"} for i in range(25)]
    write_dpi_flan(tmp_path, rows)
    write_sirneural_flan(tmp_path, "cot_zs_opt_train.jsonl.gz", rows)
    adapter = flan(tmp_path)
    inputs = resolve_local(str(tmp_path), None, "train", tmp_path, adapter.extensions)
    for file in inputs.files:
        got = pa.Table.from_batches(list(adapter.read(file, np.array([2, 3, 24]))))
        assert got.column("inputs").to_pylist() == ["q2", "q3", "q24"]
