"""Sources rendered in fresh worker processes: identical bytes, the template time budget holds there, and a source
that fails or whose worker dies fails the build naming it, with no scratch left behind."""

from __future__ import annotations

import os
import time

from flan_mini.stages import render_processes

from .conftest import SAMPLE_RECIPE, run_cli
from .test_hostile import assert_clean_error, template_recipe


def test_a_build_renders_the_same_bytes_on_one_or_two_workers_and_leaves_no_scratch(tmp_path, monkeypatch):
    used = []
    original = render_processes.render_in_processes
    monkeypatch.setattr("flan_mini.stages.render.render_in_processes", lambda *a: used.append(1) or original(*a))
    digests = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        assert run_cli("build", SAMPLE_RECIPE, "--out", out, "--workers", str(workers), "-q").exit_code == 0
        digests.append({p.name: p.read_bytes() for p in sorted((out / "data").rglob("*.parquet"))})
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch beside the output
    assert digests[0] == digests[1]
    assert used == [1]  # only the two-worker build went to processes


def test_the_template_time_budget_holds_in_a_render_process(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAN_MINI_TEMPLATE_SECONDS", "0.5")  # the workers inherit the environment
    recipe = template_recipe(tmp_path, "{% for a in instruction * 300 %}{% for b in instruction * 300 %}{% for c in "
                                       "instruction * 300 %}{% endfor %}{% endfor %}{% endfor %}{{ instruction }}")
    recipe.write_text(recipe.read_text() + "  - {name: b, adapter: alpaca, path: data/alpaca.json, n: 3}\n")
    started = time.monotonic()
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--workers", "2")
    assert result.exit_code == 1 and time.monotonic() - started < 30
    assert_clean_error(result.stderr, "ran longer than the time budget of 0.5 s", "FLAN_MINI_TEMPLATE_SECONDS")
    assert not (tmp_path / "out").exists()


def dies_on_source_b(adapter, description, rows_path, seed, out_path):
    if adapter.config.name == "b":
        os._exit(9)  # as if killed: no answer
    return render_processes.render_file(adapter, description, rows_path, seed, out_path)


def test_a_render_worker_that_dies_fails_the_build_naming_its_source(tmp_path, monkeypatch):
    monkeypatch.setattr(render_processes, "render_file", dies_on_source_b)
    recipe = template_recipe(tmp_path, "{{ instruction }}")
    recipe.write_text(recipe.read_text() + "  - {name: b, adapter: alpaca, path: data/alpaca.json, n: 3}\n")
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--workers", "2")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "the process rendering source 'b' died", "exit code 9", "--workers 1")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".flan-mini-render")]
