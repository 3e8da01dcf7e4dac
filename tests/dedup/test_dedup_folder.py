"""`flan-mini dedup IN OUT` and dedup_folder: layout, report, clusters, atomic output, errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from dedup_helpers import random_text

from flan_mini.dedup.command import dedup_command
from flan_mini.dedup.config import DedupConfig
from flan_mini.dedup.folder import dedup_folder
from flan_mini.dedup.report import CLUSTERS_FILE
from flan_mini.errors import FlanMiniError
from flan_mini.shards import read_shards, shard_paths, write_shards


@pytest.fixture
def built(tmp_path, planted):
    """A built dataset folder (3 shards of the planted corpus, without _order) plus the expected removals."""
    table, expected = planted
    folder = tmp_path / "built"
    write_shards(table.drop_columns(["_order"]), folder, target_shard_bytes=table.nbytes // 3)
    (folder / "README.md").write_text("card")
    return folder, table, expected


def test_command_on_a_built_folder(tmp_path, built):
    folder, table, expected = built
    assert len(shard_paths(folder)) == 3
    out = tmp_path / "out"
    result = CliRunner().invoke(dedup_command, [str(folder), str(out), "--threshold", "0.8", "--workers", "2"])
    assert result.exit_code == 0, result.output
    kept = read_shards(out)
    assert kept.schema == table.drop_columns(["_order"]).schema
    gone = {c for c, (kind, _) in expected.items() if kind != "keep"}
    assert set(kept.column("id").to_pylist()) == set(table.column("id").to_pylist()) - gone
    # The kept rows keep their input order.
    ids = table.column("id").to_pylist()
    assert kept.column("id").to_pylist() == [i for i in ids if i not in gone]
    clusters = pq.read_table(out / "reports" / CLUSTERS_FILE)
    assert set(clusters.filter(pc.invert(clusters.column("is_keeper"))).column("id").to_pylist()) == gone
    report = json.loads((out / "dedup_report.json").read_text())
    train = report["splits"]["train"]
    assert train["rows_in"] == table.num_rows and train["rows_out"] == kept.num_rows
    assert train["stats"]["exact"] + train["stats"]["near"] == len(gone)
    assert report["clusters"]["rows"] == clusters.num_rows
    assert "alpha" in result.output and "beta" in result.output and "total" in result.output
    assert not (out / "README.md").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_output_loads_with_datasets_and_ignores_the_clusters_file(tmp_path, built):
    datasets = pytest.importorskip("datasets")
    folder, table, expected = built
    out = tmp_path / "out"
    dedup_folder(folder, out, DedupConfig())
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == table.num_rows - sum(kind != "keep" for kind, _ in expected.values())
    assert "conversations" in loaded.column_names and "cluster_id" not in loaded.column_names


def test_any_parquet_folder_with_text_columns(tmp_path):
    import numpy as np

    rng = np.random.default_rng(2)
    texts = [random_text(rng, 50) for _ in range(30)]
    rows = {"question": texts + texts[:5], "answer": ["same"] * 35, "n": list(range(35))}
    folder = tmp_path / "plain"
    folder.mkdir()
    pq.write_table(pa.table(rows).slice(0, 20), folder / "part-0.parquet")
    pq.write_table(pa.table(rows).slice(20), folder / "part-1.parquet")
    out = tmp_path / "out"
    with pytest.raises(FlanMiniError, match="--column"):
        dedup_folder(folder, out, DedupConfig())
    with pytest.raises(FlanMiniError, match="must hold strings"):
        dedup_folder(folder, out, DedupConfig(), columns=["n"])
    report = dedup_folder(folder, out, DedupConfig(), columns=["question", "answer"])
    kept = read_shards(out)
    assert kept.column("n").to_pylist() == list(range(30))
    assert report["splits"]["train"]["stats"]["exact"] == 5
    clusters = pq.read_table(out / "reports" / CLUSTERS_FILE)
    assert set(clusters.column("id").to_pylist()) >= {"row-30", "row-0"}


def test_existing_output_needs_overwrite_and_failures_leave_nothing(tmp_path, built, monkeypatch):
    folder, _, _ = built
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FlanMiniError, match="--overwrite"):
        dedup_folder(folder, out, DedupConfig())
    with pytest.raises(FlanMiniError, match="differ"):
        dedup_folder(folder, folder, DedupConfig())

    import flan_mini.dedup.folder as folder_module

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(folder_module, "write_clusters", boom)
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        dedup_folder(folder, fresh, DedupConfig())
    assert not fresh.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    # --overwrite replaces only a folder flan-mini wrote: keep.txt is not flan-mini's to delete.
    with pytest.raises(FlanMiniError, match=r"not a flan-mini dataset folder"):
        dedup_folder(folder, out, DedupConfig(), overwrite=True)
    assert (out / "keep.txt").read_text() == "x"
    (out / "keep.txt").unlink()
    dedup_folder(folder, out, DedupConfig())
    dedup_folder(folder, out, DedupConfig(), overwrite=True)  # its own previous output
    assert shard_paths(out) and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_command_errors_are_clear(tmp_path, built):
    folder, _, _ = built
    runner = CliRunner()
    result = runner.invoke(dedup_command, [str(folder), str(tmp_path / "o"), "--threshold", "1.5"])
    assert result.exit_code != 0 and "dedup.threshold" in str(result.exception)
    result = runner.invoke(dedup_command, [str(folder), str(tmp_path / "o"), "--bands", "9", "--rows", "13"])
    assert "9 x 13 = 117" in str(result.exception)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(dedup_command, [str(empty), str(tmp_path / "o")])
    assert "no Parquet files" in str(result.exception)


def test_config_file_and_options(tmp_path, built):
    folder, _, _ = built
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\ndedup:\n  threshold: 0.7\n  shingle: {kind: char, size: 7}\n  scope: source\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(dedup_command, [str(folder), str(out), "--config", str(recipe), "--ngram", "9",
                                                "--keep", "beta", "--code"])
    assert result.exit_code == 0, result.output
    params = json.loads((out / "dedup_report.json").read_text())["splits"]["train"]["stats"]["parameters"]
    assert params["threshold"] == 0.7 and params["shingle"] == {"kind": "char", "size": 9}
    assert params["scope"] == "source" and params["keep"] == ["beta"] and params["normalize"]["mode"] == "code"
    assert params["mode"] == "exact" and "(exact mode)" in result.output
    parity = CliRunner().invoke(dedup_command, [str(folder), str(tmp_path / "parity"), "--mode", "datasketch"])
    assert parity.exit_code == 0, parity.output
    params = json.loads((tmp_path / "parity" / "dedup_report.json").read_text())["splits"]["train"]["stats"]["parameters"]
    assert params["mode"] == "datasketch" and (params["bands"], params["rows"]) == (9, 13)


def test_a_folder_without_data_skips_stage_reports(tmp_path):
    """Only row files are read: reports/ (clusters, decontamination matches) and the stage files the manifest lists,
    wherever they are, never become rows (their schemas differ, so reading them would fail or add junk rows)."""
    folder = tmp_path / "plain"
    (folder / "reports").mkdir(parents=True)
    (folder / "extra").mkdir()
    pq.write_table(pa.table({"text": ["alpha beta gamma", "delta epsilon", "alpha beta gamma"]}), folder / "rows.parquet")
    pq.write_table(pa.table({"row_id": ["r1"], "benchmark": ["humaneval"]}), folder / "reports" / "decontam_matches.parquet")
    pq.write_table(pa.table({"cluster_id": [1], "id": ["x"]}), folder / "reports" / CLUSTERS_FILE)
    pq.write_table(pa.table({"row_id": ["r2"]}), folder / "extra" / "matches.parquet")
    pq.write_table(pa.table({"cluster_id": [2]}), folder / CLUSTERS_FILE)  # an older build's top-level file
    manifest = {"decontamination": {"matches_file": {"path": "extra/matches.parquet", "rows": 1}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = dedup_folder(folder, tmp_path / "out", DedupConfig(), columns=["text"])
    assert report["splits"]["train"]["inputs"] == [str(folder / "rows.parquet")]
    assert read_shards(tmp_path / "out").column("text").to_pylist() == ["alpha beta gamma", "delta epsilon"]
    # Without the manifest, the file it listed is data again (a plain folder names no stage files).
    (folder / "manifest.json").unlink()
    with pytest.raises(FlanMiniError, match="schema"):
        dedup_folder(folder, tmp_path / "out2", DedupConfig(), columns=["text"])
