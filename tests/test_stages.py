"""The stage contract: stats that add up, one loop that chains, times and reports the stages and lets each input
go, removals by id that agree with the reports, and the executor the build's tasks ran on."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import pickle
import weakref
from collections import Counter

import pyarrow.parquet as pq

from flan_mini.executor import LocalExecutor
from flan_mini.pipeline import build
from flan_mini.plan import make_plan
from flan_mini.progress import Reporter
from flan_mini.recipe import load_recipe
from flan_mini.stages.contract import Context, Stage, Stats, run_stages

from .conftest import write_recipe


def test_stats_of_tasks_add_up_and_keep_reasons_checked_at_zero():
    per_file = [Stats(10, 8, {"dedup_exact": 2, "dedup_near": 0}), Stats(5, 4, {"dedup_near": 1}), Stats(3, 3)]
    total = sum(per_file)
    assert total == Stats(18, 15, {"dedup_exact": 2, "dedup_near": 1})
    assert per_file[0] + per_file[2] == Stats(13, 11, {"dedup_exact": 2, "dedup_near": 0})  # a zero stays said
    assert per_file[0] == Stats(10, 8, {"dedup_exact": 2, "dedup_near": 0})  # + makes a new object
    assert total.summary() == "18 rows in, 15 out (dedup_exact 2, dedup_near 1)"


class _Rows(list):
    """A stage's output that can be watched (a weakref) to see when the loop lets it go."""


def test_the_loop_chains_stages_times_and_reports_each_and_frees_every_input():
    log = io.StringIO()
    context = Context(plan=None, executor=LocalExecutor(1), reporter=Reporter("lines", stream=log), folder=None)
    watched = {}

    def first(data, context):
        out = _Rows(range(data))
        watched["first"] = weakref.ref(out)
        return out, Stats(data, len(out))

    def second(rows, context):
        return [r * 2 for r in rows if r % 2], Stats(len(rows), len(rows) // 2, {"even": len(rows) - len(rows) // 2})

    def third(rows, context):
        gc.collect()
        alive = watched["first"]() is not None  # the first stage's output, after the second has run
        return (sum(rows), alive), Stats(len(rows), 1)

    result, run = run_stages([Stage("one", first), Stage("two", second), Stage("three", third)], 6, context)
    assert result == (2 + 6 + 10, False)
    assert list(run.seconds) == ["one", "two", "three"] and all(s >= 0 for s in run.seconds.values())
    assert list(run.peak_bytes) == ["one", "two", "three"] and all(b > 0 for b in run.peak_bytes.values())
    assert run.stats["two"] == Stats(6, 3, {"even": 3})
    lines = [line for line in log.getvalue().splitlines() if line.startswith("flan-mini: ")]
    assert [line.split(":")[1].strip() for line in lines] == ["one", "two", "three"]
    assert "flan-mini: two: 6 rows in, 3 out (even 3) in " in log.getvalue()
    assert ", peak " in lines[1] and lines[1].endswith(" GiB")


def test_each_stage_reports_its_own_memory_peak_not_an_earlier_one():
    import time

    context = Context(plan=None, executor=LocalExecutor(1), reporter=Reporter("quiet"), folder=None)
    size = 256 << 20
    before = _resident()

    def big(data, context):
        block = bytearray(size)  # touched: 256 MiB resident while this stage runs, freed when it returns
        time.sleep(0.2)  # held long enough for the sampler, whatever the process's earlier peak was
        return len(block), Stats(0, 0)

    def small(data, context):
        return data, Stats(0, 0)

    _, run = run_stages([Stage("big", big), Stage("small", small)], None, context)
    if run.exact_memory:  # Linux: a stage below an earlier peak is measured by sampling, not by that peak
        assert run.peak_bytes["big"] >= before + size * 0.9
        assert run.peak_bytes["small"] < run.peak_bytes["big"] - size // 2
    else:  # the process's peak so far
        assert run.peak_bytes["big"] >= size and run.peak_bytes["small"] >= run.peak_bytes["big"]


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class _Recording(LocalExecutor):
    name = "recording"

    def __init__(self):
        super().__init__(2)
        self.calls = Counter()

    def map(self, fn, jobs, *, inflight=None):
        jobs = list(jobs)
        self.calls[fn.__name__] += len(jobs)
        jobs = [pickle.loads(pickle.dumps(job)) for job in jobs]  # what another process would receive
        return super().map(pickle.loads(pickle.dumps(fn)), jobs, inflight=inflight)

    def describe(self) -> dict:
        return {"name": self.name, "workers": self.workers}


def test_a_build_runs_its_tasks_on_its_executor_and_records_where_it_ran(tmp_path):
    for part in range(2):
        rows = [{"instruction": f"Say {part}-{i}.", "input": "", "output": f"It is {part}-{i}."} for i in range(6)]
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / f"part{part}.json").write_text(json.dumps(rows), encoding="utf-8")
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: src, n: 8}
    """)
    executor = _Recording()
    result = build(make_plan(load_recipe(recipe), out=tmp_path / "out"), reporter=Reporter("quiet"), executor=executor)
    # Each input hashed, scanned and fetched from, the source rendered, its rows picked, the one shard written.
    assert executor.calls == {"input_sha256": 2, "scan_file": 2, "fetch_file": 2, "render_table": 1, "exact_rows": 1,
                              "write_shard": 1}
    (source,) = result.manifest["sources"]
    for entry in source["inputs"]:
        assert entry["sha256"] == hashlib.sha256((tmp_path / "src" / entry["path"].split("/")[-1]).read_bytes()).hexdigest()
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written["executor"] == {"name": "recording", "workers": 2}
    assert list(written["stages"]) == ["select", "render", "pick", "shuffle", "write", "reports", "manifest", "card", "total"]
    peaks = written["memory"]["peak_rss_mib"]
    assert list(peaks) == ["select", "render", "pick", "shuffle", "write", "reports", "manifest", "card", "build"]
    assert all(value > 0 for value in peaks.values()) and peaks["build"] == max(peaks.values())
    assert "recording" not in (tmp_path / "out" / "README.md").read_text()  # where it ran is not the card's business


def test_each_sources_removals_agree_with_the_dedup_and_decontamination_reports(sample_build):
    manifest = json.loads((sample_build / "manifest.json").read_text())
    clusters = pq.read_table(sample_build / "reports" / "dedup_clusters.parquet").to_pylist()
    matches = pq.read_table(sample_build / "reports" / "decontam_matches.parquet").to_pylist()
    by_cluster = Counter((row["recipe_source"], f"dedup_{row['kind']}") for row in clusters if not row["is_keeper"])
    by_match = Counter(row["recipe_source"] for row in {r["id"]: r for r in matches if r["removed"]}.values())
    assert sum(by_cluster.values()) > 0 and sum(by_match.values()) > 0  # the sample plants both
    for source in manifest["sources"]:
        removed = source["removed"]
        assert removed["dedup_exact"] == by_cluster[(source["name"], "dedup_exact")]
        assert removed["dedup_near"] == by_cluster[(source["name"], "dedup_near")]
        assert removed["decontam"] == by_match[source["name"]]
        assert source["written"] == source["requested"] <= source["selected"] - sum(removed.values())
    assert manifest["executor"]["name"] == "local"


def test_rows_that_render_blank_are_removed_by_id_and_counted(tmp_path):
    rows = [{"instruction": f"Say the number {i}.", "input": "", "output": f"It is {i}."} for i in range(10)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "templates").mkdir()
    prompt = "{% if '3' in instruction or '5' in instruction %} {% else %}{{ instruction }}{% endif %}"
    (tmp_path / "templates" / "alpaca.yaml").write_text(
        "family: alpaca\ntemplates:\n  - id: t\n    prompt: " + json.dumps(prompt) + "\n    completion: '{{ output }}'\n")
    recipe = write_recipe(tmp_path, """
        name: t
        templates_dir: templates
        sources:
          - {name: a, adapter: alpaca, path: data/a.json, n: 10, accept_shortfall: true}
    """)
    result = build(make_plan(load_recipe(recipe), out=tmp_path / "out"), reporter=Reporter("quiet"))
    (source,) = result.manifest["sources"]
    assert source["removed"] == {"empty:rendered_prompt": 2} and source["written"] == 8 and source["shortfall"] == 2
    written = pq.read_table(tmp_path / "out" / "data").column("conversations").to_pylist()
    assert sorted(turns[0]["value"] for turns in written) == [f"Say the number {i}." for i in range(10) if i not in (3, 5)]


def _alpaca_then_sharegpt(tmp_path):
    """A recipe of two sources: alpaca `a`, then sharegpt `s` (a source that surveys its files first)."""
    from tests.fixtures.sharegpt_data import chat, write_sharegpt_json

    (tmp_path / "alpaca.json").write_text(json.dumps(
        [{"instruction": f"Say {i}.", "input": "", "output": f"It is {i}."} for i in range(8)]), encoding="utf-8")
    write_sharegpt_json(tmp_path / "sg.json", [{"id": str(i), "conversations": chat(f"q{i}", f"a{i}")} for i in range(8)])
    return write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: alpaca.json, n: 6}
          - {name: s, adapter: sharegpt, path: sg.json, n: 6}
    """)


def test_a_surveying_source_is_surveyed_while_the_sources_before_it_are_selected(tmp_path, monkeypatch):
    import threading

    from flan_mini import sample as sample_module

    recipe = _alpaca_then_sharegpt(tmp_path)
    surveying = threading.Event()
    seen_during_first = []
    survey, scan = sample_module.survey_task, sample_module.scan_file

    def survey_task(adapter, file):
        surveying.set()
        return survey(adapter, file)

    def scan_file(adapter, file, *rest):
        if adapter.config.name == "a":  # the first source waits (a little) for the second's survey to start
            seen_during_first.append(surveying.wait(timeout=5))
        return scan(adapter, file, *rest)

    monkeypatch.setattr(sample_module, "survey_task", survey_task)
    monkeypatch.setattr(sample_module, "scan_file", scan_file)
    build(make_plan(load_recipe(recipe), out=tmp_path / "out"), reporter=Reporter("quiet"))
    assert seen_during_first and all(seen_during_first)


def test_selection_hands_freed_memory_back_after_each_source_and_each_survey(tmp_path, monkeypatch):
    from flan_mini.stages import select as select_stage

    recipe = _alpaca_then_sharegpt(tmp_path)
    handed_back = []
    selected = []
    original = select_stage.select_source

    def select_source(adapter, *args, **kwargs):
        selected.append(adapter.config.name)
        handed_back.append(f"before {adapter.config.name}")
        return original(adapter, *args, **kwargs)

    monkeypatch.setattr(select_stage, "select_source", select_source)
    monkeypatch.setattr(select_stage, "release_freed_memory", lambda: handed_back.append("release"))
    plan = make_plan(load_recipe(recipe), out=tmp_path / "out")
    context = Context(plan, LocalExecutor(1), Reporter("quiet"), tmp_path / "scratch", 1)
    selections, _ = select_stage.select(plan, context)
    assert [s.table.num_rows for s in selections] == [6, 6] and selected == ["a", "s"]
    # one after each source, and one when the survey's result is taken (its parse's memory), before that source
    assert handed_back == ["before a", "release", "release", "before s", "release"]
