"""Sources rendered in forked processes: results in order, identical to rendering here, errors that name the source."""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pytest

from flan_mini.errors import FlanMiniError
from flan_mini.stages.render_forked import can_fork, render_forked

from .conftest import SAMPLE_RECIPE, run_cli
from .test_hostile import assert_clean_error, template_recipe

pytestmark = pytest.mark.skipif(not can_fork(), reason="forked rendering is Linux-only")


def _square(values: list[int]):
    return pa.table({"x": values, "x2": [v * v for v in values]}), {"pid": os.getpid()}, len(values)


def test_results_come_back_in_job_order_from_other_processes(tmp_path):
    jobs = [(f"s{k}", ([k] * (k + 1),)) for k in range(5)]
    out = list(render_forked(_square, jobs, 2, tmp_path))
    assert [table.column("x").to_pylist() for table, _, _ in out] == [[k] * (k + 1) for k in range(5)]
    assert [count for _, _, count in out] == [1, 2, 3, 4, 5]
    assert all(extras["pid"] != os.getpid() for _, extras, _ in out)
    assert list(tmp_path.iterdir()) == []  # the scratch folder is gone


def _fails(name: str):
    if name == "bad":
        raise ValueError("no such column 'answer'")
    return pa.table({"x": [1]}), None


def _dies(name: str):
    if name == "bad":
        os._exit(3)  # as if killed: no result, no error
    time.sleep(0.2)
    return pa.table({"x": [1]}), None


@pytest.mark.parametrize("task, message", [(_fails, "ValueError: no such column 'answer'"),
                                            (_dies, "ended with exit code 3")])
def test_a_failing_source_fails_the_stage_naming_it(tmp_path, task, message):
    jobs = [(name, (name,)) for name in ("good", "bad", "later")]
    with pytest.raises(FlanMiniError, match="bad") as caught:
        list(render_forked(task, jobs, 2, tmp_path))
    assert message in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_build_renders_the_same_bytes_on_one_or_two_workers(tmp_path):
    digests = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        assert run_cli("build", SAMPLE_RECIPE, "--out", out, "--workers", str(workers), "-q").exit_code == 0
        digests.append({p.name: p.read_bytes() for p in sorted((out / "data").rglob("*.parquet"))})
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left beside the output
    assert digests[0] == digests[1]


def test_the_template_time_budget_holds_in_a_render_process(tmp_path, monkeypatch):
    from flan_mini.stages import render as render_stage

    forked = []
    monkeypatch.setattr(render_stage, "render_forked", lambda *args: forked.append(1) or render_forked(*args))
    monkeypatch.setenv("FLAN_MINI_TEMPLATE_SECONDS", "0.5")
    recipe = template_recipe(tmp_path, "{% for a in instruction * 300 %}{% for b in instruction * 300 %}{% for c in "
                                       "instruction * 300 %}{% endfor %}{% endfor %}{% endfor %}{{ instruction }}")
    text = recipe.read_text()
    recipe.write_text(text + "  - {name: b, adapter: alpaca, path: data/alpaca.json, n: 3}\n")
    started = time.monotonic()
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--workers", "2")
    assert result.exit_code == 1 and time.monotonic() - started < 20
    assert_clean_error(result.stderr, "ran longer than the time budget of 0.5 s", "FLAN_MINI_TEMPLATE_SECONDS")
    assert not (tmp_path / "out").exists()
    assert forked  # the sources went to render processes
