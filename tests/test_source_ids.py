"""Every written row keeps its record's own id in the source (`source_id`), and it leads back to that record."""

from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq

from flan_mini.shards import read_shards

from .conftest import SAMPLE_DATA


def rows_of(build, source: str) -> list[dict]:
    table = read_shards(build)
    return [r for r in table.to_pylist() if r["recipe_source"] == source]


def prompt(row) -> str:
    return row["conversations"][-2]["value"]  # the query's human turn (few-shot rows put exemplars before it)


def test_alpaca_rows_keep_their_index_in_the_file(sample_build):
    published = json.loads((SAMPLE_DATA / "code_alpaca" / "code_alpaca_20k.json").read_text(encoding="utf-8"))
    rows = rows_of(sample_build, "code_alpaca")
    for row in rows:
        record = published[int(row["source_id"])]
        assert record["instruction"].strip() in prompt(row) and row["conversations"][-1]["value"] == record["output"].strip()
    parquet = pq.read_table(next((SAMPLE_DATA / "alpaca_gpt4" / "data").glob("*.parquet"))).to_pylist()
    for row in rows_of(sample_build, "gpt4_alpaca"):
        assert parquet[int(row["source_id"])]["instruction"].strip() in prompt(row)


def test_code_rows_keep_problem_ids_names_and_urls(sample_build):
    apps = {}
    for line in (SAMPLE_DATA / "apps" / "train.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        apps[str(record["problem_id"])] = record["question"]
    rows = rows_of(sample_build, "apps")
    assert rows and all(apps[r["source_id"]].strip()[:200] in prompt(r) for r in rows)

    contests = {}
    for path in (SAMPLE_DATA / "code_contests" / "data").glob("train-*.parquet"):
        contests.update(zip(*pq.read_table(path, columns=["name", "description"]).to_pydict().values()))
    rows = rows_of(sample_build, "code_contests")
    assert rows and all(contests[r["source_id"]].strip()[:200] in prompt(r) for r in rows)

    functions = {}
    for path in (SAMPLE_DATA / "code_search_net").rglob("*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            functions.update((r["url"], r) for r in map(json.loads, handle))
    rows = rows_of(sample_build, "code_search")
    for row in rows:
        function = functions[row["source_id"]]
        text = prompt(row) + row["conversations"][-1]["value"]
        assert function["docstring"].strip().splitlines()[0] in text or function["func_name"].split(".")[-1] in text


def test_sharegpt_rows_keep_the_published_id_and_flan_rows_have_none(sample_build):
    published = json.loads((SAMPLE_DATA / "sharegpt" / "ShareGPT_V3_unfiltered_cleaned_split.json").read_text(encoding="utf-8"))
    by_id = {str(r["id"]): r for r in published if isinstance(r, dict) and r.get("id") is not None}
    rows = rows_of(sample_build, "sharegpt")
    for row in rows:
        if row["source_id"] is not None:  # a record published without an id has none
            turns = [t["value"] for t in by_id[row["source_id"]]["conversations"]]
            assert row["conversations"][-1]["value"][:40] in "\n".join(turns)
    assert sum(r["source_id"] is not None for r in rows) >= len(rows) - 1
    table = read_shards(sample_build)
    flan = [r["source_id"] for r in table.to_pylist() if r["recipe_source"] in ("flan2021", "p3", "niv2", "cot")]
    assert flan and set(flan) == {None}
