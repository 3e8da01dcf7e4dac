"""Code adapters read the published formats exactly: CodeContests, APPS, CodeSearchNet, and their quirks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flan_mini.errors import SourceError
from flan_mini.rejects import reject_reasons
from flan_mini.sample import select_source
from flan_mini.sources.apps import AppsAdapter, AppsConfig
from flan_mini.sources.code_contests import CodeContestsAdapter, CodeContestsConfig
from flan_mini.sources.code_search_net import CodeSearchNetAdapter, CodeSearchNetConfig
from flan_mini.sources.base import read_file
from flan_mini.sources.code_strip import leaks
from flan_mini.sources.expand import PIECE_BITS, explode
from flan_mini.sources.files import resolve_local

from .fixtures.code_samples import APPS, APPS_TEST, CODE_CONTESTS, JAVA_FUNCTIONS, OTHER_FUNCTIONS, PYTHON_FUNCTIONS
from .fixtures.formats import (
    apps_row,
    code_contests_row,
    csn_row,
    write_apps_jsonl,
    write_apps_parquet,
    write_code_contests,
    write_csn_jsonl,
    write_csn_parquet,
)

PY2, CPP, PY3, JAVA = 1, 2, 3, 4


def files(adapter, folder, split="train", data_files=None):
    return resolve_local(str(folder), data_files, split, folder, adapter.extensions).files


def read_all(adapter, folder, split="train", **options) -> pa.Table:
    return pa.Table.from_batches([b for f in files(adapter, folder, split) for b in adapter.read(f, **options)])


def contests(**options) -> CodeContestsAdapter:
    return CodeContestsAdapter(CodeContestsConfig(name="cc", adapter="code_contests", path=".", n=1, **options))


def apps(**options) -> AppsAdapter:
    return AppsAdapter(AppsConfig(name="apps", adapter="apps", path=".", n=1, **options))


def search_net(**options) -> CodeSearchNetAdapter:
    return CodeSearchNetAdapter(CodeSearchNetConfig(name="cs", adapter="code_search_net", path=".", n=1, **options))


def test_explode_example():
    parents, pieces = explode(np.array([2, 0, 3]))
    assert parents.tolist() == [0, 0, 2, 2, 2] and pieces.tolist() == [0, 1, 0, 1, 2]


# ------------------------------------------------------------------------------------------ CodeContests


def test_code_contests_struct_of_lists_one_row_per_solution(tmp_path):
    write_code_contests(tmp_path, CODE_CONTESTS, row_group_size=3)
    adapter = contests()
    table = read_all(adapter, tmp_path)
    # Every solution of every language is a row; the language filter keeps Python 3 only.
    expected = [(i, j, text) for i, row in enumerate(CODE_CONTESTS)
                for j, (lang, text) in enumerate(zip(row["solutions"]["language"], row["solutions"]["solution"]))]
    assert table.num_rows == len(expected)
    assert table.column("_ordinal").to_pylist() == [(i << PIECE_BITS) | j for i, j, _ in expected]
    assert table.column("solution").to_pylist() == [text for *_, text in expected]
    kept = pa.Table.from_batches([b.filter(adapter.row_filter(b)) for b in table.to_batches()])
    assert set(kept.column("language").to_pylist()) == {"Python 3"}
    assert set(kept.column("name").to_pylist()) == {"1_A. Two Piles", "2_B. Reverse Words", "3_C. Even Sum",
                                                   "p02547 AtCoder Beginner Contest - Doublet", "8_B. Vowel Count"}


def test_code_contests_fields_enums_nulls_and_defaults(tmp_path):
    write_code_contests(tmp_path, CODE_CONTESTS)
    rows = {r["name"]: r for r in read_all(contests(), tmp_path).to_pylist()}
    two_piles = rows["1_A. Two Piles"]
    assert (two_piles["platform"], two_piles["difficulty"], two_piles["rating"]) == ("Codeforces", "A", 800)
    assert (two_piles["time_limit"], two_piles["memory_limit"], two_piles["tags"]) == ("1 second", "256 megabytes", "math")
    assert (two_piles["example_input"], two_piles["example_output"]) == ("3 5\n", "3\n")
    assert rows["3_C. Even Sum"]["time_limit"] == "0.5 seconds" and rows["3_C. Even Sum"]["difficulty"] == "C"
    assert rows["8_B. Vowel Count"]["time_limit"] is None  # time_limit null: no limit stated
    atcoder = rows["p02547 AtCoder Beginner Contest - Doublet"]
    # AtCoder: source 5, difficulty 0 (unknown), cf_* at their defaults (0 / [] mean "none").
    assert (atcoder["platform"], atcoder["difficulty"], atcoder["rating"], atcoder["tags"]) == ("AtCoder", None, None, None)
    assert atcoder["memory_limit"] == "1024 megabytes"  # 1,073,741,824 bytes: AtCoder's 1024 MB
    assert "5_E. Unsolved Mystery" not in rows  # empty solution list: no rows
    assert rows["4_A. Old Printer"]["language"] == "Python 2" and rows["4_A. Old Printer"]["language_tag"] == "python"
    assert all(not r["description"].endswith("\n") for r in rows.values())  # statements trimmed


def test_code_contests_counts_skipped_problems_and_languages(tmp_path):
    write_code_contests(tmp_path, CODE_CONTESTS)
    adapter = contests()
    stats = Counter()
    for file in files(adapter, tmp_path):
        first, counted = read_file(adapter, file, fields=adapter.scan_fields())
        again, recounted = read_file(adapter, file, fields=adapter.scan_fields())
        assert counted == recounted and first.equals(again)  # a read is a function of the file: nothing carried over
        stats.update(counted)
    assert stats["problems"] == len(CODE_CONTESTS)
    assert stats["problems_without_solutions"] == 1  # 5_E
    # 4_A has only Python 2, 6_D only C++ / Java
    assert stats["problems_without_solutions_in_languages"] == 2
    assert stats["solutions:python2"] == 3 and stats["solutions:java"] == 2
    assert contests(languages=["python2"]).row_filter(
        pa.record_batch({"language": ["Python 2", "Python 3"]})).to_pylist() == [True, False]


def test_code_contests_scan_reads_only_the_language_lists(tmp_path, monkeypatch):
    write_code_contests(tmp_path, CODE_CONTESTS)
    seen = []
    original = pq.ParquetFile.iter_batches
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda self, **kw: (seen.append(kw["columns"]), original(self, **kw))[1])
    adapter = contests(max_per_problem=2)
    batch = next(adapter.read(files(adapter, tmp_path)[0], fields=adapter.scan_fields()))
    assert seen == [["name", "solutions.language"]]  # not the solution texts, not the tests
    assert batch.schema.names == ["language", "name", "_ordinal", "_reject"]


def test_code_contests_reads_back_exactly_the_wanted_rows(tmp_path):
    write_code_contests(tmp_path, CODE_CONTESTS, row_group_size=2)
    adapter = contests()
    file = files(adapter, tmp_path)[0]
    everything = pa.Table.from_batches(list(adapter.read(file)))
    all_ordinals = np.array(everything.column("_ordinal").to_pylist())
    rng = np.random.default_rng(0)
    for size in (1, 3, 7, len(all_ordinals)):
        wanted = np.sort(rng.choice(all_ordinals, size, replace=False))
        got = pa.Table.from_batches(list(adapter.read(file, wanted)))
        assert got.column("_ordinal").to_pylist() == wanted.tolist()
        by_ordinal = dict(zip(all_ordinals.tolist(), everything.column("solution").to_pylist()))
        assert got.column("solution").to_pylist() == [by_ordinal[o] for o in wanted.tolist()]


def test_code_contests_mismatched_lists_and_bad_layouts(tmp_path):
    row = code_contests_row("x", "d", [(PY3, "a")])
    row["solutions"] = {"language": [3, 3], "solution": ["print(1)"]}  # one text for two languages
    write_code_contests(tmp_path, [row])
    adapter = contests()
    batch = next(adapter.read(files(adapter, tmp_path)[0]))
    assert reject_reasons(batch, adapter).to_pylist() == [None, "missing:solution"]
    other = tmp_path / "other"
    other.mkdir()
    pq.write_table(pa.table({"name": ["x"], "description": ["d"], "solutions": [["print(1)"]]}), other / "x.parquet")
    with pytest.raises(SourceError, match=r"x.parquet: not a CodeContests Parquet file: no column solutions as struct"):
        read_all(contests(), other)


def test_code_contests_cap_per_problem(tmp_path):
    many = [code_contests_row(f"{i}_A. P{i}", f"statement {i}", [(PY3, f"print({i}, {j})") for j in range(1 + 3 * i)])
            for i in range(6)]
    write_code_contests(tmp_path, many)
    # Problem i has 1 + 3i solutions; with a cap of 2 they weigh 1, 2, 2, 2, 2, 2: 11 rows at most.
    config = CodeContestsConfig(name="cc", adapter="code_contests", path=".", n=12, max_per_problem=2)
    with pytest.raises(SourceError, match="asks for n=12 rows but only 11 are usable"):
        select_source(CodeContestsAdapter(config), files(contests(), tmp_path), seed=3)
    config = config.model_copy(update={"n": 9})
    selection = select_source(CodeContestsAdapter(config), files(contests(), tmp_path), seed=3)
    per_problem = {r["name"]: r["solution_count"] for r in selection.table.group_by("name").aggregate([("solution", "count")]).to_pylist()}
    assert max(per_problem.values()) <= 2 and sum(selection.quotas.values()) == 9
    # Proportional to the capped weights 1 : 2 : 2 : 2 : 2 : 2, by largest remainder (ties to the first names).
    assert selection.quotas == {"0_A. P0": 1, "1_A. P1": 2, "2_A. P2": 2, "3_A. P3": 2, "4_A. P4": 1, "5_A. P5": 1}
    assert per_problem == selection.quotas


# ------------------------------------------------------------------------------------------------ APPS


def test_apps_jsonl_and_parquet_mirror_read_alike(tmp_path):
    write_apps_jsonl(tmp_path / "hub" / "train.jsonl", APPS)
    write_apps_parquet(tmp_path / "mirror", APPS)
    from_jsonl = read_all(apps(), tmp_path / "hub").drop_columns(["_ordinal"])
    from_parquet = read_all(apps(), tmp_path / "mirror").drop_columns(["_ordinal"])
    assert from_jsonl.to_pylist() == from_parquet.to_pylist()


def test_apps_problem_kinds_and_empty_documents(tmp_path):
    write_apps_jsonl(tmp_path / "train.jsonl", APPS)
    adapter = apps()
    table = read_all(adapter, tmp_path)
    rows = table.to_pylist()
    by_problem = {}
    for row in rows:
        by_problem.setdefault(row["problem_id"], []).append(row)
    assert [len(by_problem.get(i, [])) for i in range(8)] == [3, 2, 2, 0, 1, 2, 1, 2]
    # Standard input: no fn_name, no starter code.
    assert {(r["fn_name"], r["input_mode"], r["starter_code"]) for r in by_problem[0]} == {(None, "standard input", "")}
    # Call-based, tests with non-string inputs: fn_name from input_output; starter code right-trimmed.
    assert by_problem[1][0]["fn_name"] == "lengthOfLongestSubstring" and by_problem[1][0]["input_mode"] == "call-based"
    assert by_problem[2][0]["starter_code"] == "def tally(xs):"
    # input_output == "": no fn_name; a starter code still says call-based, none says standard input.
    assert (by_problem[5][0]["fn_name"], by_problem[5][0]["input_mode"]) == (None, "call-based")
    assert (by_problem[4][0]["fn_name"], by_problem[4][0]["input_mode"]) == (None, "standard input")
    # solutions == "": no rows, counted; solutions not JSON: one rejected row for the problem.
    assert reject_reasons(table.combine_chunks().to_batches()[0], adapter).to_pylist().count("invalid_json:solutions") == 1
    assert read_file(adapter, files(adapter, tmp_path)[0])[1] == {"problems": 8, "problems_without_solutions": 1, "solutions": 12}


def test_apps_malformed_records(tmp_path):
    rows = [apps_row(0, "q", ["ok", 7, "   "], ""), apps_row(1, "q2", {"not": "a list"}, "")]
    write_apps_jsonl(tmp_path / "train.jsonl", rows, raw_lines={1: '{"problem_id": 9, "question": "cut'})
    adapter = apps()
    batch = read_all(adapter, tmp_path).combine_chunks().to_batches()[0]
    assert reject_reasons(batch, adapter).to_pylist() == [None, "wrong_type:solution", "empty:solution", "invalid_json",
                                                          "wrong_type:solutions"]
    assert batch.column("_ordinal").to_pylist() == [0, 1, 2, 1 << PIECE_BITS, 2 << PIECE_BITS]


def test_apps_groups_keep_train_and_test_problems_apart(tmp_path):
    write_apps_jsonl(tmp_path / "train.jsonl", APPS)
    write_apps_jsonl(tmp_path / "test.jsonl", APPS_TEST)  # problem ids restart at 0
    adapter = apps(max_per_problem=1)
    table = pa.Table.from_batches([b for f in files(adapter, tmp_path, data_files=["*.jsonl"])
                                   for b in adapter.read(f, fields=adapter.scan_fields())])
    groups = adapter.group_column(table.combine_chunks().to_batches()[0]).to_pylist()
    assert len(set(groups)) == 7 + 1  # 7 train problems with solutions (+ the rejected one) and 1 test problem
    assert "https://example.com/test/0#0" in groups and "https://codeforces.com/problemset/problem/1000/A#0" in groups


def test_apps_difficulty_filter(tmp_path):
    write_apps_jsonl(tmp_path / "train.jsonl", APPS)
    adapter = apps(difficulties=["competition"])
    assert adapter.scan_fields() == ("difficulty",)
    batch = read_all(adapter, tmp_path, fields=adapter.scan_fields()).combine_chunks().to_batches()[0]
    assert adapter.row_filter(batch).to_pylist().count(True) == 1


# --------------------------------------------------------------------------------------- CodeSearchNet

FUNCTIONS = [csn_row("python", *f, partition="train") for f in PYTHON_FUNCTIONS] + \
    [csn_row("java", *f, partition="train") for f in JAVA_FUNCTIONS] + [csn_row(f[0], *f[1:], partition="train") for f in OTHER_FUNCTIONS]


def test_csn_raw_and_hub_parquet_forms_read_alike(tmp_path):
    valid = [csn_row("python", *f, partition="valid") for f in PYTHON_FUNCTIONS[:3]]
    write_csn_jsonl(tmp_path / "raw", "python", "valid", valid)
    write_csn_parquet(tmp_path / "hub", "python", "validation", valid)
    adapter = search_net()
    raw = read_all(adapter, tmp_path / "raw", split="validation").drop_columns(["_ordinal"])
    hub = read_all(adapter, tmp_path / "hub", split="validation").drop_columns(["_ordinal"])
    assert raw.to_pylist() == hub.to_pylist()
    assert set(raw.column("partition").to_pylist()) == {"validation"}  # `valid` in the data
    assert raw.column("func_name").to_pylist()[0] == "YouTube.get_vid_from_url"
    assert raw.column("task").to_pylist()[:2] == ["docstring_to_code", "code_to_docstring"]


def test_csn_partition_must_match_the_split(tmp_path):
    rows = [csn_row("python", *PYTHON_FUNCTIONS[0], partition="valid"), csn_row("python", *PYTHON_FUNCTIONS[1], partition="test")]
    write_csn_jsonl(tmp_path, "python", "valid", rows)
    adapter = CodeSearchNetAdapter(CodeSearchNetConfig(name="cs", adapter="code_search_net", path=".", n=1, split="validation"))
    assert [f.relative for f in files(adapter, tmp_path, split="validation")] == ["python/final/jsonl/valid/python_valid_0.jsonl.gz"]
    batch = read_all(adapter, tmp_path, split="validation", fields=adapter.scan_fields()).combine_chunks().to_batches()[0]
    assert adapter.row_filter(batch).to_pylist() == [True, True, False, False]  # the `test` function is filtered out
    loose = search_net(match_partition=False)
    assert loose.row_filter(batch) is None and loose.scan_fields() == ()


def test_csn_task_and_language_filters(tmp_path):
    write_csn_jsonl(tmp_path, "mixed", "train", FUNCTIONS)
    adapter = search_net(tasks=["code_to_docstring"], languages=["go", "ruby"], match_partition=False)
    assert adapter.tasks() == ("code_to_docstring",)
    batch = read_all(adapter, tmp_path, fields=adapter.scan_fields()).combine_chunks().to_batches()[0]
    kept = batch.filter(adapter.row_filter(batch))
    assert set(kept.column("task").to_pylist()) == {"code_to_docstring"} and kept.num_rows == 4


def test_csn_code_without_docs_never_holds_the_docstring(tmp_path):
    write_csn_jsonl(tmp_path, "mixed", "train", FUNCTIONS)
    table = read_all(search_net(), tmp_path)
    code_to_doc = table.filter(pa.compute.equal(table.column("task"), "code_to_docstring"))
    assert code_to_doc.num_rows == len(FUNCTIONS)
    assert table.filter(pa.compute.equal(table.column("task"), "docstring_to_code")).column("code_without_docs").null_count == len(FUNCTIONS)
    for row in code_to_doc.to_pylist():
        assert row["_reject"] is None, row["func_name"]
        assert not leaks(row["docstring"], row["code_without_docs"]), row["func_name"]
        assert row["docstring"] not in row["code_without_docs"]
        assert leaks(row["docstring"], row["code"]) or row["language"] != "python"  # Python code holds its docstring
        assert row["code_without_docs"].strip()


def test_csn_rejects_a_row_whose_docstring_survives(tmp_path):
    code = 'def f(x):\n    """Return the answer."""\n    raise ValueError("Return the answer.")'
    write_csn_jsonl(tmp_path, "python", "train", [csn_row("python", "r/r", "p.py", "f", code, "Return the answer.", "train")])
    adapter = search_net()
    batch = read_all(adapter, tmp_path).combine_chunks().to_batches()[0]
    assert reject_reasons(batch, adapter).to_pylist() == [None, "docstring_leak"]
    assert batch.column("code_without_docs").to_pylist()[1] == 'def f(x):\n    raise ValueError("Return the answer.")'


def test_csn_unknown_layout(tmp_path):
    pq.write_table(pa.table({"func": ["x"], "doc": ["y"]}), tmp_path / "x.parquet")
    with pytest.raises(SourceError, match=r"not a CodeSearchNet file: no column for code: one of code, func_code_string"):
        read_all(search_net(), tmp_path)


def test_every_code_adapter_reads_back_exactly_the_wanted_rows(tmp_path):
    write_apps_jsonl(tmp_path / "apps" / "train.jsonl", APPS)
    write_apps_parquet(tmp_path / "apps_parquet", APPS)
    write_csn_jsonl(tmp_path / "csn", "mixed", "train", FUNCTIONS)
    write_csn_parquet(tmp_path / "csn_parquet", "all", "train", FUNCTIONS)
    write_code_contests(tmp_path / "cc", CODE_CONTESTS, row_group_size=2)
    rng = np.random.default_rng(5)
    for adapter, folder in ((apps(), "apps"), (apps(), "apps_parquet"), (search_net(), "csn"), (search_net(), "csn_parquet"),
                            (contests(), "cc")):
        (file,) = files(adapter, tmp_path / folder)
        everything = pa.Table.from_batches(list(adapter.read(file)))
        usable = everything.filter(everything.column("_reject").is_null())
        by_ordinal = {r["_ordinal"]: r for r in usable.to_pylist()}
        for _ in range(5):
            wanted = np.sort(rng.choice(np.array(list(by_ordinal)), int(rng.integers(1, len(by_ordinal) + 1)), replace=False))
            got = pa.Table.from_batches(list(adapter.read(file, wanted))).to_pylist()
            assert [r["_ordinal"] for r in got] == wanted.tolist(), folder
            assert got == [by_ordinal[o] for o in wanted.tolist()], folder
