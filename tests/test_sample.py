"""Selection: exact, uniform, deterministic whatever the file order, splits or batch size; FLAN quotas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from flan_mini.errors import SourceError
from flan_mini.keys import row_keys, salt
from flan_mini.sample import GROUP, KEY, RANK, apportion, file_fingerprint, position_ranks, select_source
from flan_mini.sources import formats
from flan_mini.sources.files import resolve_local
from flan_mini.sources.flan import FlanAdapter, FlanConfig

from .fixtures.formats import write_dpi_flan, write_openorca_flan, write_sirneural_flan


def rows(count: int, task: str = "t", source: str = "P3", start: int = 0) -> list[dict]:
    return [{"inputs": f"question {i}", "targets": f"answer {i}", "task_name": task, "task_source": source,
             "template_type": "zs_opt"} for i in range(start, start + count)]


def select(folder, seed=7, n=10, extra=0, **options):
    adapter = FlanAdapter(FlanConfig(name="src", adapter="flan", path=str(folder), n=n, **options))
    inputs = resolve_local(str(folder), None, "train", folder, adapter.extensions)
    return select_source(adapter, inputs.files, seed=seed, extra=extra)


def chosen(selection) -> list[str]:
    return sorted(selection.table.column("inputs").to_pylist())


def test_bottom_k_equals_brute_force(tmp_path):
    data = rows(300)
    write_dpi_flan(tmp_path, data)
    selection = select(tmp_path, seed=11, n=25)
    (file,) = resolve_local(str(tmp_path), None, "train", tmp_path, (".parquet",)).files
    brute = np.argsort(position_ranks(salt(11, "src", "select", file_fingerprint(file)), np.arange(300)))[:25]
    assert chosen(selection) == sorted(data[i]["inputs"] for i in brute)
    assert selection.table.num_rows == 25
    # Each chosen row carries a key of its content.
    fields = ("inputs", "targets", "task_name", "task_source", "template_type", "template_idx")
    assert selection.table.column(KEY).to_numpy().tolist() == row_keys(selection.table, fields).tolist()


def test_same_rows_whatever_the_file_order_names_or_batch_size(tmp_path, monkeypatch):
    data = rows(210)
    folder = tmp_path / "a"
    names = [f"part-{i}.parquet" for i in range(3)]
    for i, name in enumerate(names):
        write_dpi_flan(folder, data[i * 70:(i + 1) * 70], shard_name=name)
    patterns = [f"data/{name}" for name in names]
    reference = chosen(select(folder, n=30, data_files=patterns))
    assert chosen(select(folder, n=30, data_files=patterns[::-1])) == reference
    # Renamed and moved files keep their rows' ranks: a rank hangs off the file's content, not its name.
    moved = tmp_path / "b"
    for i, name in enumerate(names):
        (moved / "x").mkdir(parents=True, exist_ok=True)
        (folder / "data" / name).rename(moved / "x" / f"renamed-{2 - i}.parquet")
    assert chosen(select(moved, n=30)) == reference
    monkeypatch.setattr(formats, "BATCH_ROWS", 7)
    assert chosen(select(moved, n=30)) == reference
    assert chosen(select(moved, n=30, seed=8)) != reference


def test_selection_is_uniform(tmp_path):
    write_dpi_flan(tmp_path, rows(100))
    hits = np.zeros(100)
    for seed in range(200):
        for text in chosen(select(tmp_path, seed=seed, n=10)):
            hits[int(text.split()[1])] += 1
    # Each row is chosen with probability 0.1: 20 times in 200 draws, sd ~4.2.
    assert hits.sum() == 2000 and hits.min() >= 5 and hits.max() <= 38


def test_task_caps_make_examples_proportional_quotas(tmp_path):
    write_openorca_flan(tmp_path, "t0_zsopt_data", rows(50, "big") + rows(10, "small") + rows(5, "tiny"))
    selection = select(tmp_path, n=20, task_caps=10)
    # weights min(rows, 10) = 10, 10, 5 -> 20 * (10, 10, 5) / 25 = 8, 8, 4
    assert selection.quotas == {"big": 8, "small": 8, "tiny": 4}
    names = selection.table.column("task_name").to_pylist()
    assert (names.count("big"), names.count("small"), names.count("tiny")) == (8, 8, 4)
    uncapped = select(tmp_path, n=20)
    assert len(uncapped.quotas) == 1 and uncapped.table.num_rows == 20


def test_flan2022_caps_are_per_submix(tmp_path):
    write_openorca_flan(tmp_path, "t0_zsopt_data", rows(30, "p3_task"))
    write_openorca_flan(tmp_path, "niv2_zsopt_data", rows(30, "task001_x", "NIv2"))
    selection = select(tmp_path, n=40, task_caps={"NIv2": 10})
    assert selection.quotas == {"p3_task": 30, "task001_x": 10}
    with pytest.raises(SourceError, match=r"asks for n=50 rows but only 40 are usable \(the caps per task or problem limit it\)"):
        select(tmp_path, n=50, task_caps={"NIv2": 10})


def test_apportion():
    assert apportion(10, [5, 15], [99, 99], ["a", "b"]).tolist() == [3, 7]
    assert apportion(10, [5, 15], [99, 4], ["a", "b"]).tolist() == [6, 4]
    assert apportion(10, [5, 15], [99, 99], ["b", "a"]).tolist() == [2, 8]  # the tie goes to the smaller label
    assert apportion(7, [0, 3], [5, 5], ["a", "b"]).tolist() == [0, 5]
    for total in range(0, 60):
        got = apportion(total, [7, 3, 11, 1], [20, 20, 20, 20], list("abcd"))
        assert got.sum() == min(total, 80) and (got <= 20).all()


def test_shortfall_fails_unless_accepted(tmp_path):
    write_dpi_flan(tmp_path, rows(8))
    with pytest.raises(SourceError, match=r"source 'src': asks for n=10 rows but only 8 are usable .*accept_shortfall"):
        select(tmp_path, n=10)
    selection = select(tmp_path, n=10, accept_shortfall=True)
    assert selection.shortfall == 2 and selection.table.num_rows == 8


def test_malformed_rows_are_replaced_counted_and_limited(tmp_path):
    data = rows(200)
    for i in range(0, 200, 10):
        data[i]["targets"] = "  "  # 10% blank answers
    write_dpi_flan(tmp_path, data)
    selection = select(tmp_path, n=60, max_reject_rate=0.5)
    assert selection.table.num_rows == 60  # the malformed chosen rows were replaced
    assert all(t.strip() for t in selection.table.column("targets").to_pylist())
    rejected = selection.counts.rejected["empty:targets"]
    assert rejected >= 1 and selection.counts.rows_examined == 60 + rejected
    assert all(e["reason"] == "empty:targets" and e["row"] % 10 == 0 for e in selection.counts.reject_examples)
    # 60% malformed: the sample examined shows it beyond doubt.
    for i in range(200):
        if i % 5 < 3:
            data[i]["targets"] = ""
    write_dpi_flan(tmp_path, data)
    with pytest.raises(SourceError, match=r"source 'src': about \d+\.\d% of its rows are malformed \(at least \d+\.\d%, above max_reject_rate 10.0%\): empty:targets"):
        select(tmp_path, n=20, max_reject_rate=0.1)


def test_records_the_scan_finds_broken_are_counted_exactly(tmp_path):
    data = rows(20)
    write_sirneural_flan(tmp_path, "p3_zs_opt_train.jsonl.gz", data, raw_lines={0: "{broken", 5: "[1]", 9: "nope"})
    with pytest.raises(SourceError, match=r"about 13.0% of its rows are malformed \(at least 13.0%.*invalid_json 2, not_an_object 1"):
        select(tmp_path, n=5, max_reject_rate=0.1)
    selection = select(tmp_path, n=5, max_reject_rate=0.2)
    assert selection.counts.scan_rejected == {"invalid_json": 2, "not_an_object": 1}
    assert selection.counts.rows_read == 23 and selection.counts.matched == 20


def test_many_malformed_chosen_rows_trigger_a_wider_scan(tmp_path):
    """More malformed rows among the candidates than spares: the scan runs again keeping more."""
    data = rows(400)
    for i in range(400):
        if i % 4:
            data[i]["targets"] = ""  # 75% blank
    write_dpi_flan(tmp_path, data)
    selection = select(tmp_path, n=90, max_reject_rate=1.0)
    assert selection.table.num_rows == 90 and selection.shortfall == 0
