"""Progress: log lines when not a terminal (start, periodic, done), a bar on a terminal, nothing when quiet."""

from __future__ import annotations

import io

from flan_mini.progress import Reporter

from .conftest import SAMPLE_RECIPE, run_cli


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_mode_reports_start_progress_and_end():
    stream = io.StringIO()
    reporter = Reporter("lines", stream, interval=0.0)
    with reporter.task("scan src", total=300) as task:
        task.update(100)
        task.update(200)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "scan src: started (300 rows)"
    assert lines[1].startswith("scan src: 100 / 300 rows (") and "rows/s, ETA" in lines[1]
    assert lines[-1].startswith("scan src: done, 300 rows in ")


def test_mode_follows_the_stream_and_quiet_is_silent():
    assert Reporter.for_stream(io.StringIO()).mode == "lines"
    assert Reporter.for_stream(Terminal()).mode == "bar"
    quiet = io.StringIO()
    reporter = Reporter.for_stream(quiet, quiet=True)
    with reporter.task("x", total=3) as task:
        task.update(3)
    reporter.log("hello")
    assert quiet.getvalue() == ""


def test_overall_progress_counts_sources_rows_and_eta():
    stream = io.StringIO()
    reporter = Reporter("lines", stream, interval=1e9)
    reporter.expect_sources({"a": 100, "b": 300})
    for name, rows in (("a", 100), ("b", 300)):
        with reporter.task(f"scan {name}", total=1000) as task:
            task.update(1000)  # scanning counts rows read, not rows gathered
        with reporter.task(f"fetch {name}", total=rows + 10) as task:
            task.update(rows + 10)  # extra candidates for dedup count as the source's requested rows only
    overall = [line for line in stream.getvalue().splitlines() if line.startswith("build: ")]
    assert overall[0].startswith("build: 1/2 sources, 100 / 400 rows, ") and "ETA" in overall[0]
    assert overall[1].startswith("build: 2/2 sources, 400 / 400 rows, ") and "ETA" not in overall[1]


def test_bar_mode_keeps_one_overall_bar_above_the_stage_bars():
    stream = Terminal()
    reporter = Reporter.for_stream(stream)
    reporter.expect_sources({"a": 10, "b": 30})
    for name, rows in (("a", 10), ("b", 30)):
        with reporter.task(f"fetch {name}", total=rows) as task:
            task.update(rows)
    text = stream.getvalue()
    assert "build:" in text and "2/2 sources" in text and "fetch b" in text
    assert reporter._overall.bar.n == 40 and reporter._overall.bar.pos == 0


def test_bar_mode_draws_a_bar():
    stream = Terminal()
    with Reporter.for_stream(stream).task("render", total=1000) as task:
        task.update(1000)
    assert "render" in stream.getvalue()


def test_build_reports_stages_and_quiet_prints_only_the_folder(tmp_path):
    result = run_cli("build", SAMPLE_RECIPE, "--out", tmp_path / "a")
    assert "scan flan2021: started" in result.stderr and "fetch sharegpt: done" in result.stderr
    # One overall line per selected source, the last one with every source and row of the recipe.
    overall = [line for line in result.stderr.splitlines() if line.startswith("build: ")]
    manifest = __import__("json").loads((tmp_path / "a" / "manifest.json").read_text())
    requested = sum(s["requested"] for s in manifest["sources"])
    assert len(overall) == len(manifest["sources"])
    assert overall[-1].startswith(f"build: {len(overall)}/{len(overall)} sources, {requested:,} / {requested:,} rows")
    # The closing message names the next commands for this folder.
    assert "next:" in result.stdout
    assert f"load_dataset('{tmp_path / 'a'}', split='train')" in result.stdout
    assert f"flan-mini push {tmp_path / 'a'} --repo-id ORG/NAME" in result.stdout
    # The sample is a smoke-test-sized build: the training hint is the CPU smoke config, not the paper's 13B run.
    assert f"flan-mini finetune finetune/configs/tiny-cpu.yaml --dataset {tmp_path / 'a'}" in result.stdout
    quiet = run_cli("build", SAMPLE_RECIPE, "--out", tmp_path / "b", "-q")
    assert quiet.stderr == "" and quiet.stdout.strip() == str(tmp_path / "b")


def test_the_training_hint_fits_the_build():
    from pathlib import Path

    from flan_mini.progress import SMOKE_ROWS, next_steps, training_config

    repo = Path(__file__).resolve().parents[1]
    for rows in (148, SMOKE_ROWS - 1, SMOKE_ROWS, 1_340_000):
        assert (repo / training_config(rows)).is_file()
    assert training_config(148).endswith("tiny-cpu.yaml") and training_config(1_340_000).endswith("flacuna-13b.yaml")
    hint = next_steps("build/flan-mini", {"output": {"rows": 1_340_000}}, repo_id="org/flan-mini")
    assert "flan-mini finetune finetune/configs/flacuna-13b.yaml --dataset org/flan-mini" in hint
