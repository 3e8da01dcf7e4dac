"""`flan-mini build` end to end on the bundled sample: readable by `datasets`, exact, deterministic, atomic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from flan_mini.shards import OUTPUT_SCHEMA, read_shards

from .conftest import SAMPLE_DATA, SAMPLE_RECIPE, run_cli, write_recipe

SAMPLE_ROWS = 148  # the sum of recipes/sample.yaml's n


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def test_sample_build_loads_with_datasets(sample_build):
    by_folder = datasets.load_dataset(str(sample_build))["train"]
    by_files = datasets.load_dataset("parquet", data_files=str(sample_build / "data" / "*.parquet"))["train"]
    assert len(by_folder) == len(by_files) == SAMPLE_ROWS
    assert by_folder.features["conversations"] == datasets.List({"from": datasets.Value("string"), "value": datasets.Value("string")})
    assert by_folder[0]["conversations"][0]["from"] == "human"


def test_sample_build_invariants(sample_build):
    table = read_shards(sample_build)
    assert table.schema.equals(OUTPUT_SCHEMA, check_metadata=False)
    manifest = json.loads((sample_build / "manifest.json").read_text())
    recipe_counts = {s["name"]: s["requested"] for s in manifest["sources"]}
    written = {}
    for name in table.column("recipe_source").to_pylist():
        written[name] = written.get(name, 0) + 1
    assert written == recipe_counts
    ids = table.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    for turns in table.column("conversations").to_pylist():
        assert len(turns) >= 2 and len(turns) % 2 == 0
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
        assert all(t["value"] and t["value"].strip() for t in turns)
    # FLAN rows keep their FLAN task name as `source`; others carry the recipe's label.
    sources = dict(zip(table.column("id").to_pylist(), table.column("source").to_pylist()))
    assert any(s == "glue/cola:2.0.0" or s == "super_glue/rte:1.0.2" for s in sources.values())
    assert {s for i, s in sources.items() if i.startswith("gpt4_alpaca-")} == {"alpaca_gpt4"}
    # Rows are shuffled across sources, not written source by source.
    first_ten = table.column("recipe_source").to_pylist()[:10]
    assert len(set(first_ten)) > 2


def test_manifest_records_inputs_counts_and_rejects(sample_build):
    manifest = json.loads((sample_build / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["seed"] == 1234
    assert manifest["recipe"]["sha256"] and manifest["recipe"]["resolved"]["name"] == "flan-mini-sample"
    assert manifest["output"]["rows"] == SAMPLE_ROWS
    shard = manifest["output"]["shards"][0]
    assert (sample_build / shard["path"]).stat().st_size == shard["bytes"]
    sources = {s["name"]: s for s in manifest["sources"]}
    cot = sources["cot"]
    # The scan parses every line, so broken JSON is counted exactly; a wrongly typed answer is found
    # when its row is examined (the chosen rows and their replacements).
    assert cot["rejected"]["invalid_json"] == 1 and set(cot["rejected"]) <= {"invalid_json", "wrong_type:targets"}
    assert cot["rows_read"] == 41 and cot["usable"] == 40 and cot["written"] == 10
    assert cot["rows_examined"] == cot["selected"] + cot["rejected"].get("wrong_type:targets", 0)
    assert cot["selected"] == 10 + 5  # n plus extra candidates: 20% for dedup, 30% for decontamination
    assert all(len(i["sha256"]) == 64 and i["bytes"] > 0 for i in cot["inputs"])
    assert sources["niv2"]["files_skipped"]  # the Dialog folders, excluded by name
    assert set(sources["flan2021"]["rejected"]) <= {"empty:targets", "missing:inputs"}
    assert sources["code_alpaca"]["rejected"]["not_an_object"] == 1
    sharegpt = sources["sharegpt"]
    assert sharegpt["rejected"]["policy:duplicate_id"] == 1 and sharegpt["adapter_stats"]
    assert sources["p3"]["settings"]["task_caps"]["P3"] == 20000
    # The resolved recipe keeps each adapter's own options.
    resolved = {s["name"]: s for s in manifest["recipe"]["resolved"]["sources"]}
    assert resolved["p3"]["task_caps"] == "flan2022" and resolved["sharegpt"]["split_conversations"]["max_length"] == 2000
    for source in sources.values():
        for example in source["reject_examples"]:
            assert example["reason"] in source["rejected"] and example["file"].startswith("sample_data/")
    assert sum(sources["p3"]["group_quotas"].values()) == 32
    assert sum(sources["gpt4_alpaca"]["templates"].values()) == 12
    assert all(t.startswith("alpaca/") for t in sources["gpt4_alpaca"]["templates"])


def test_two_builds_are_byte_identical_and_seed_matters(sample_build, tmp_path):
    again = tmp_path / "again"
    assert run_cli("build", SAMPLE_RECIPE, "--out", again, "-q").exit_code == 0
    assert shard_bytes(again) == shard_bytes(sample_build)
    other = tmp_path / "other"
    assert run_cli("build", SAMPLE_RECIPE, "--out", other, "--seed", "99", "-q").exit_code == 0
    assert shard_bytes(other) != shard_bytes(sample_build)
    assert json.loads((other / "manifest.json").read_text())["seed"] == 99


def test_source_order_and_file_names_do_not_change_the_output(sample_build, tmp_path):
    """Same rows under other file names, sources listed in reverse: the same dataset."""
    data = tmp_path / "sample_data"
    shutil.copytree(SAMPLE_DATA, data)
    dpi = data / "flan" / "flan2021_submix_original" / "data"
    next(dpi.glob("*.parquet")).rename(dpi / "train-00000-of-00001-renamed.parquet")
    recipe_text = SAMPLE_RECIPE.read_text()
    head, _, body = recipe_text.partition("sources:\n")
    blocks = body.split("\n\n")
    (tmp_path / "r.yaml").write_text(head + "sources:\n" + "\n\n".join(reversed([b.rstrip("\n") for b in blocks])) + "\n")
    out = tmp_path / "out"
    result = run_cli("build", tmp_path / "r.yaml", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert shard_bytes(out) == shard_bytes(sample_build)


def test_dry_run_reads_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = run_cli("build", SAMPLE_RECIPE, "--out", out, "--dry-run")
    assert result.exit_code == 0
    assert "[1] p3  adapter=flan  n=32" in result.output and "dry run: nothing read, nothing written" in result.output
    assert not out.exists()


def test_failed_build_leaves_nothing_and_keeps_the_previous_build(sample_build, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(sample_build, out)
    before = shard_bytes(out)
    recipe = write_recipe(tmp_path, f"""
        name: too-many
        sources:
          - {{name: s, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 1000}}
    """)
    result = run_cli("build", recipe, "--out", out)
    assert result.exit_code == 1
    assert "source 's': asks for n=1,000 rows but only 40 are usable" in result.stderr
    assert shard_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "recipe.yaml"]  # no temporary folder left


def test_rebuild_replaces_a_previous_build_but_not_other_folders(tmp_path):
    out = tmp_path / "out"
    assert run_cli("build", SAMPLE_RECIPE, "--out", out, "-q").exit_code == 0
    assert run_cli("build", SAMPLE_RECIPE, "--out", out, "-q").exit_code == 0  # its own previous build: replaced
    assert [p.name for p in (out / "data").iterdir()] == ["train-00000-of-00001.parquet"]
    # A file the manifest does not list is not flan-mini's to delete: the folder is refused.
    (out / "data" / "train-00000-of-00009.parquet").write_bytes(b"mine")
    result = run_cli("build", SAMPLE_RECIPE, "--out", out, "-q")
    assert result.exit_code == 1 and "holds files flan-mini did not write (data/train-00000-of-00009.parquet)" in result.stderr
    assert (out / "data" / "train-00000-of-00009.parquet").read_bytes() == b"mine"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    result = run_cli("build", SAMPLE_RECIPE, "--out", other)
    assert result.exit_code == 1 and "not a flan-mini dataset folder" in result.stderr
    assert (other / "notes.txt").read_text() == "keep me"


def test_shortfall_accepted_is_reported(tmp_path):
    recipe = write_recipe(tmp_path, f"""
        name: short
        sources:
          - {{name: s, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 50, accept_shortfall: true}}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out")
    assert result.exit_code == 0
    assert "s: short by 10 rows (accept_shortfall is set)" in result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["sources"][0]["shortfall"] == 10 and manifest["output"]["rows"] == 40


def test_messages_format_and_shard_size(tmp_path):
    recipe = write_recipe(tmp_path, f"""
        name: msgs
        output: {{format: messages, shard_size: 4kB}}
        sources:
          - {{name: s, adapter: alpaca, path: {SAMPLE_DATA}/alpaca_gpt4, n: 30}}
    """)
    assert run_cli("build", recipe, "--out", tmp_path / "out", "-q").exit_code == 0
    shards = sorted((tmp_path / "out" / "data").glob("*.parquet"))
    assert len(shards) > 1 and shards[0].name.endswith(f"-of-{len(shards):05d}.parquet")
    table = read_shards(tmp_path / "out")
    assert table.num_rows == 30 and "conversations" not in table.column_names
    assert [m["role"] for m in table.column("messages")[0].as_py()] == ["user", "assistant"]
    ds = datasets.load_dataset(str(tmp_path / "out"))["train"]
    assert ds[0]["messages"][1]["role"] == "assistant"


def test_hub_sources_are_read_through_huggingface_hub(tmp_path, monkeypatch):
    """A Hub id resolves through huggingface_hub (here offline, from a local HF cache in the Hub's layout)."""
    cache = tmp_path / "hf"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "datasets--vicgalle--alpaca-gpt4"
    snapshot = repo / "snapshots" / commit / "data"
    snapshot.mkdir(parents=True)
    shutil.copy(next((SAMPLE_DATA / "alpaca_gpt4" / "data").glob("*.parquet")), snapshot / "train-00000-of-00001.parquet")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    recipe = write_recipe(tmp_path, """
        name: hub
        sources:
          - {name: gpt4, adapter: alpaca, path: vicgalle/alpaca-gpt4, n: 5, license: cc-by-nc-4.0}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    source = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"][0]
    assert source["origin"] == {"kind": "hub", "path": "vicgalle/alpaca-gpt4", "repo_id": "vicgalle/alpaca-gpt4",
                                "revision": commit, "split": "train", "data_files": None}
    assert source["inputs"][0]["path"] == "hub:vicgalle/alpaca-gpt4/data/train-00000-of-00001.parquet"
    assert pq.read_table(next((tmp_path / "out" / "data").glob("*.parquet"))).num_rows == 5


def test_sample_build_removes_planted_duplicates_and_explains_it(sample_build):
    manifest = json.loads((sample_build / "manifest.json").read_text())
    dedup = manifest["dedup"]
    removed = {s["name"]: s["removed"] for s in manifest["sources"]}
    assert dedup["exact"] + dedup["near"] > 0
    assert sum(r["dedup_exact"] + r["dedup_near"] for r in removed.values()) == dedup["exact"] + dedup["near"]
    assert all(s["written"] == s["requested"] for s in manifest["sources"])  # exact n survives dedup
    clusters = pq.read_table(sample_build / dedup["clusters_file"]["path"])
    assert clusters.num_rows == dedup["clusters_file"]["rows"] > 0
    written = set(read_shards(sample_build).column("id").to_pylist())
    by_cluster = {}
    for row in clusters.to_pylist():
        by_cluster.setdefault(row["cluster_id"], []).append(row)
    for rows in by_cluster.values():
        # Exactly one keeper per cluster; no removed row was written.
        assert sum(r["is_keeper"] for r in rows) == 1
        assert not any(r["id"] in written for r in rows if not r["is_keeper"])
    card = (sample_build / "README.md").read_text()
    assert "## Deduplication" in card and "No deduplication stage ran" not in card


def test_output_does_not_depend_on_the_number_of_workers(sample_build, tmp_path, monkeypatch):
    from flan_mini.decontam.stage import Decontaminator

    # --workers is every parallel stage's width: decontamination's scan gets it too, not its section's default.
    scan, widths = Decontaminator.scan, []
    monkeypatch.setattr(Decontaminator, "scan", lambda self, *a, workers=None, **k: (
        widths.append(workers), scan(self, *a, workers=workers, **k))[1])
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_cli("build", SAMPLE_RECIPE, "--out", one, "--workers", "1", "-q").exit_code == 0
    assert run_cli("build", SAMPLE_RECIPE, "--out", two, "--workers", "3", "-q").exit_code == 0
    assert widths == [1, 3]
    assert shard_bytes(one) == shard_bytes(two) == shard_bytes(sample_build)
    for report in ("dedup_clusters.parquet", "decontam_matches.parquet"):
        assert (one / "reports" / report).read_bytes() == (two / "reports" / report).read_bytes()
