"""Hostile recipes, templates and source files: each ends in a clear `flan-mini: error:` (no traceback), in
bounded time and memory, with nothing written; or, for bad records, a build that costs only those records."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flan_mini.shards import read_shards

from .conftest import SAMPLE_DATA, run_cli, write_recipe

MEMORY_LIMIT = 3 << 30  # address space of a bounded subprocess (imports of pyarrow/numpy reserve ~1 GB)


def run_bounded(*args, cwd: Path, env: dict | None = None, seconds: float = 60) -> tuple[int, str, float]:
    """`flan-mini ARGS` in a subprocess with a memory limit; (exit code, stderr, seconds taken)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "flan_mini", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=seconds, preexec_fn=limit, env={**os.environ, **(env or {})})
    return done.returncode, done.stderr, time.monotonic() - started


def assert_clean_error(stderr: str, *needles: str) -> None:
    """One `flan-mini: error:` (after any progress lines), no traceback, saying each of `needles`."""
    assert stderr.count("flan-mini: error:") == 1 and "Traceback" not in stderr, stderr
    error = stderr[stderr.index("flan-mini: error:"):]
    for needle in needles:
        assert needle in error, stderr


def alpaca_json(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def records(n: int) -> list[dict]:
    return [{"instruction": f"Say the number {i} in words.", "input": "", "output": f"The number is {i}."} for i in range(n)]


_FOLDERS = itertools.count()


def template_recipe(tmp_path: Path, prompt: str, n: int = 3) -> Path:
    """A recipe over a small Alpaca file rendered with one template whose prompt is `prompt` (in a new templates
    folder each time: template families are cached by folder)."""
    alpaca_json(tmp_path / "data" / "alpaca.json", records(6))
    templates = f"templates{next(_FOLDERS)}"
    (tmp_path / templates).mkdir()
    (tmp_path / templates / "alpaca.yaml").write_text(
        "family: alpaca\ntemplates:\n  - id: hostile\n    prompt: " + json.dumps(prompt) + "\n    completion: '{{ output }}'\n"
    )
    return write_recipe(tmp_path, f"""
        name: hostile
        templates_dir: {templates}
        sources:
          - {{name: a, adapter: alpaca, path: data/alpaca.json, n: {n}}}
    """)


# ------------------------------------------------------------------------------------------------ recipes


def test_a_yaml_alias_bomb_stops_at_once(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    code, stderr, seconds = run_bounded("validate", "bomb.yaml", cwd=tmp_path)
    assert code == 1 and seconds < 30
    assert_clean_error(stderr, "bomb.yaml:", "expands to more than 100,000 values")


def test_booleans_are_not_numbers_and_huge_integers_are_refused(tmp_path):
    alpaca_json(tmp_path / "a.json", records(3))
    recipe = write_recipe(tmp_path, """
        name: t
        seed: true
        sources:
          - {name: a, adapter: alpaca, path: a.json, n: true}
          - {name: b, adapter: alpaca, path: a.json, n: 100000000000000000000000000000}
    """)
    result = run_cli("validate", recipe)
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "recipe.yaml:2  seed: expected a number or text, not the boolean true",
                       "recipe.yaml:4  sources[0].n: expected a number or text, not the boolean true",
                       "recipe.yaml:5  sources[1].n: 1e+29 is too large")


def test_booleans_are_not_numbers_in_the_dedup_and_decontaminate_sections_either(tmp_path):
    alpaca_json(tmp_path / "a.json", records(3))
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: a.json, n: 2}
        dedup: {num_perm: true}
        decontaminate: {ngram: false, benchmarks: [{name: humaneval}]}
    """)
    result = run_cli("validate", recipe)
    assert result.exit_code == 1
    assert "dedup.num_perm: expected a number or text, not the boolean true" in result.stderr
    assert "decontaminate.ngram: expected a number or text, not the boolean false" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_local_path_that_looks_like_a_hub_id_names_both(tmp_path):
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: data/alpacca, n: 3}
    """)
    result = run_cli("validate", recipe)
    assert result.exit_code == 0
    assert f"it is not a local path either ({tmp_path / 'data/alpacca'} does not exist)" in result.output


# ---------------------------------------------------------------------------------------------- templates


def test_a_template_multiplying_text_to_a_gigabyte_fails_at_once(tmp_path):
    template_recipe(tmp_path, "{{ 'a' * 10**9 }}")
    code, stderr, seconds = run_bounded("build", "recipe.yaml", "--out", "out", cwd=tmp_path)
    assert code == 1 and seconds < 30
    assert_clean_error(stderr, "template alpaca/hostile failed on row 0", "over the turn limit", "FLAN_MINI_MAX_TURN_CHARS")
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_template_repeating_a_field_a_hundred_million_times_fails(tmp_path):
    recipe = template_recipe(tmp_path, "{{ instruction * 100000000 }}")
    result = run_cli("build", recipe, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "`*` would make a text of")
    assert not (tmp_path / "out").exists()


def test_nested_loops_and_huge_ranges_are_bounded(tmp_path):
    started = time.monotonic()
    for prompt in ("{% for i in range(90000) %}{% for j in range(90000) %}{% endfor %}{% endfor %}{{ instruction }}",
                   "{{ range(10**9) | list | length }}"):
        recipe = template_recipe(tmp_path, prompt)
        result = run_cli("build", recipe, "--out", tmp_path / "out")
        assert result.exit_code == 1
        assert_clean_error(result.stderr, "loops over more than 10,000,000 range() items", "FLAN_MINI_TEMPLATE_LOOP_ITEMS")
    assert time.monotonic() - started < 30


def test_a_slow_template_is_stopped_by_the_time_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAN_MINI_TEMPLATE_SECONDS", "0.5")
    recipe = template_recipe(tmp_path, "{% for a in instruction * 300 %}{% for b in instruction * 300 %}{% for c in "
                                       "instruction * 300 %}{% endfor %}{% endfor %}{% endfor %}{{ instruction }}")
    started = time.monotonic()
    result = run_cli("build", recipe, "--out", tmp_path / "out")
    assert result.exit_code == 1 and time.monotonic() - started < 20
    assert_clean_error(result.stderr, "ran longer than the time budget of 0.5 s", "FLAN_MINI_TEMPLATE_SECONDS")


def test_include_import_and_extends_are_refused_when_the_template_loads(tmp_path):
    for tag, word in (("{% include 'other.j2' %}", "include"), ("{% import 'm.j2' as m %}", "import"),
                      ("{% extends 'base.j2' %}", "extends")):
        recipe = template_recipe(tmp_path, tag + "{{ instruction }}")
        result = run_cli("validate", recipe)
        assert result.exit_code == 1
        assert_clean_error(result.stderr, f"`{word}` is disabled")


def test_python_objects_never_render_so_output_depends_on_data_only(tmp_path):
    for prompt in ("{{ instruction.format_map }}", "{{ instruction.upper ~ '!' }}", "{{ '%s' % instruction.split }}"):
        recipe = template_recipe(tmp_path, prompt)
        result = run_cli("build", recipe, "--out", tmp_path / "out")
        assert result.exit_code == 1
        assert_clean_error(result.stderr, "renders a Python method or function instead of data")
    # Calling the method is fine, and lazy filters render their items, not a generator's address.
    recipe = template_recipe(tmp_path, "{{ instruction.upper() }} {{ instruction.split() | map('length') }}")
    result = run_cli("build", recipe, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    prompts = [row["conversations"][0]["value"] for row in read_shards(tmp_path / "out").to_pylist()]
    assert all(p.startswith("SAY THE NUMBER") and p.endswith("IN WORDS. [3, 3, 6, 1, 2, 6]") for p in prompts), prompts


# -------------------------------------------------------------------------------------------- source files


def _flan_gz(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")


def _flan_line(i: int, inputs: bytes | None = None) -> bytes:
    text = inputs if inputs is not None else f"Question {i}: what is {i} plus one?".encode()
    return b'{"inputs": "' + text + b'", "targets": "' + str(i + 1).encode() + b'", "task": "cot_gsm8k"}'


def test_an_invalid_utf8_byte_in_a_gzipped_flan_record_costs_only_that_record(tmp_path):
    lines = [_flan_line(i) for i in range(10)]
    lines[9] = _flan_line(9, b"caf\xe9 au lait")  # Latin-1, not UTF-8
    _flan_gz(tmp_path / "flan" / "cot_zs_opt_train.jsonl.gz", lines)
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: cot, adapter: flan, path: flan, n: 10, task_sources: [CoT], max_reject_rate: 0.2, accept_shortfall: true}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    table = read_shards(tmp_path / "out")
    table.validate(full=True)
    assert table.num_rows == 9 and not any("caf" in row["conversations"][0]["value"] for row in table.to_pylist())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    source = manifest["sources"][0]
    assert source["rejected"] == {"invalid_utf8:inputs": 1}
    example = source["reject_examples"][0]
    assert example["line"] == 10 and example["row"] == 9 and example["file"].endswith("cot_zs_opt_train.jsonl.gz")


def test_bad_text_in_a_json_array_costs_only_its_records(tmp_path):
    good = json.dumps(records(20)).encode()
    # One record with a byte that is not UTF-8, one with a lone surrogate (half an emoji).
    bad = good[:-1] + b', {"instruction": "caf\xe9", "input": "", "output": "x"}' \
                      + b', {"instruction": "emoji \\ud83d", "input": "", "output": "y"}]'
    (tmp_path / "a.json").write_bytes(bad)
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: a.json, n: 22, max_reject_rate: 0.2, accept_shortfall: true}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    source = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"][0]
    assert source["rejected"] == {"invalid_utf8:instruction": 2}
    assert sorted(e["row"] for e in source["reject_examples"]) == [20, 21]
    read_shards(tmp_path / "out").validate(full=True)


def test_invalid_utf8_inside_a_parquet_file_is_counted_and_never_written(tmp_path):
    texts = pa.array([f"Say {i}.".encode() for i in range(10)] + [b"bad \xff byte"], pa.binary()).view(pa.string())
    table = pa.table({"instruction": texts, "input": [""] * 11, "output": [f"{i}" for i in range(11)]})
    (tmp_path / "p").mkdir()
    pq.write_table(table, tmp_path / "p" / "train.parquet")
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: p, n: 11, max_reject_rate: 0.2, accept_shortfall: true}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    source = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"][0]
    assert source["rejected"] == {"invalid_utf8:instruction": 1} and source["reject_examples"][0]["row"] == 10
    read_shards(tmp_path / "out").validate(full=True)


def test_a_parquet_file_with_corrupt_pages_is_one_error_line(tmp_path):
    table = pa.table({"instruction": [f"Say the number {i} in words, please. " * 5 for i in range(3000)],
                      "input": [""] * 3000, "output": [str(i) for i in range(3000)]})
    path = tmp_path / "p" / "train.parquet"
    path.parent.mkdir()
    pq.write_table(table, path, compression="none", row_group_size=1000)
    data = bytearray(path.read_bytes())
    for offset in range(2000, len(data) - 4000, 7):  # damage the pages, keep the footer readable
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: p, n: 10}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "train.parquet: damaged Parquet data", "replace the file")
    assert len(result.stderr[result.stderr.index("flan-mini: error:"):].strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_empty_source_file_is_named(tmp_path):
    (tmp_path / "d").mkdir()
    alpaca_json(tmp_path / "d" / "a.json", records(5))
    (tmp_path / "d" / "b.jsonl").write_bytes(b"")
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: d, n: 3}
    """)
    result = run_cli("validate", recipe)
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "recipe.yaml:3  sources[0].path: d/b.jsonl: the file is empty (0 bytes)")


# ---------------------------------------------------------------------------------------------- folders


def _small_recipe(tmp_path: Path, out: str | None = None) -> Path:
    alpaca_json(tmp_path / "src" / "a.json", records(5))
    folder = f"\noutput: {{folder: {out}}}" if out else ""
    return write_recipe(tmp_path, f"""
        name: t{folder}
        sources:
          - {{name: a, adapter: alpaca, path: src/a.json, n: 3}}
    """)


def test_a_folder_with_a_manifest_and_other_files_is_never_replaced(tmp_path):
    recipe = _small_recipe(tmp_path)
    out = tmp_path / "site"
    out.mkdir()
    (out / "manifest.json").write_text('{"name": "my web app"}')
    (out / "index.html").write_text("<html>mine</html>")
    result = run_cli("build", recipe, "--out", out)
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "not a flan-mini dataset folder")
    assert (out / "index.html").read_text() == "<html>mine</html>"
    # A real previous build with one extra file of the user's: refused too, naming the file.
    assert run_cli("build", recipe, "--out", tmp_path / "build", "-q").exit_code == 0
    (tmp_path / "build" / "notes.txt").write_text("mine")
    result = run_cli("build", recipe, "--out", tmp_path / "build")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "holds files flan-mini did not write (notes.txt)")
    assert (tmp_path / "build" / "notes.txt").read_text() == "mine"


def test_output_inside_a_source_or_a_source_inside_the_output_is_refused(tmp_path):
    alpaca_json(tmp_path / "src" / "a.json", records(5))
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: src, n: 3}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "src" / "out")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "--out: the output folder", "is inside sources[0] a")
    result = run_cli("build", recipe, "--out", tmp_path)
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "is inside the output folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml", "src"]


def test_leftovers_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    recipe = _small_recipe(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    for name in (f".out.tmp-{dead_pid}", f".out.old-{dead_pid}", f".other.partial-{dead_pid}", f".out.tmp-{os.getppid()}"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
    assert run_cli("build", recipe, "--out", tmp_path / "out", "-q").exit_code == 0
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [f".out.tmp-{os.getppid()}"]  # its process (pytest's parent) still runs


def test_a_killed_build_leaves_nothing_after_the_next_build(tmp_path):
    alpaca_json(tmp_path / "src" / "a.json", records(3000))
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: a, adapter: alpaca, path: src/a.json, n: 2900}
    """)
    out = tmp_path / "out"
    assert run_cli("build", recipe, "--out", out, "-q").exit_code == 0  # a previous build to replace
    previous = (out / "manifest.json").read_bytes()
    process = subprocess.Popen([sys.executable, "-m", "flan_mini", "build", str(recipe), "--out", str(out), "-q"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = tmp_path / f".out.tmp-{process.pid}"
    deadline = time.monotonic() + 120
    # Killed mid-write: once its shard is in the temporary folder (the card, written next, takes a while).
    while not (tmp.is_dir() and any((tmp / "data").glob("*.parquet"))):
        assert process.poll() is None and time.monotonic() < deadline, "the build ended before it was caught writing"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert tmp.is_dir()  # what a kill leaves behind
    assert (out / "manifest.json").read_bytes() == previous  # the previous build survives the kill
    assert run_cli("build", recipe, "--out", out, "-q").exit_code == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    read_shards(out).validate(full=True)


def test_limits_given_in_the_environment_are_checked(tmp_path, monkeypatch):
    recipe = template_recipe(tmp_path, "{{ instruction }}!")
    monkeypatch.setenv("FLAN_MINI_MAX_TURN_CHARS", "lots")
    result = run_cli("build", recipe, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "FLAN_MINI_MAX_TURN_CHARS='lots': expected a whole number")
    monkeypatch.setenv("FLAN_MINI_MAX_TURN_CHARS", "10")
    result = run_cli("build", recipe, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "renders more than the turn limit of 10 characters")


def test_dedup_output_inside_its_input_is_refused(tmp_path):
    recipe = _small_recipe(tmp_path)
    assert run_cli("build", recipe, "--out", tmp_path / "built", "-q").exit_code == 0
    result = run_cli("dedup", tmp_path / "built", tmp_path / "built" / "deduped")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "is inside the input folder")
    assert not (tmp_path / "built" / "deduped").exists()


def test_a_sharegpt_lone_surrogate_is_repaired_and_counted(tmp_path):
    chats = [{"id": f"c{i}", "conversations": [{"from": "human", "value": f"Tell me a fact about the number {i}."},
                                                {"from": "gpt", "value": f"The number {i} comes after {i - 1}."}]}
             for i in range(1, 6)]
    text = json.dumps(chats).replace("comes after 2.", "comes after 2 \\ud83d.")  # half an emoji, as JSON escapes it
    (tmp_path / "sharegpt.json").write_text(text)
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: chat, adapter: sharegpt, path: sharegpt.json, n: 5}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    source = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"][0]
    assert source["adapter_stats"]["conversations:lone_surrogates_repaired"] == 1
    values = [turn["value"] for row in read_shards(tmp_path / "out").to_pylist() for turn in row["conversations"]]
    assert "The number 3 comes after 2 \ufffd." in values


def test_a_template_that_renders_a_lone_surrogate_is_an_error(tmp_path):
    recipe = template_recipe(tmp_path, '{{ instruction }} {{ "\\ud83d" }}')
    result = run_cli("build", recipe, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert_clean_error(result.stderr, "renders text that is not valid UTF-8 (a lone surrogate) on row 0")
    assert not (tmp_path / "out").exists()


def test_invalid_utf8_in_apps_json_lines_costs_its_problem_and_points_at_its_line(tmp_path):
    lines = (SAMPLE_DATA / "apps" / "train.jsonl").read_bytes().splitlines()
    original = lines[2]
    lines[2] = lines[2].replace(b"Write a function", b"Write a f\xffunction", 1)
    assert b"\xff" in lines[2]
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "train.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    recipe = write_recipe(tmp_path, """
        name: t
        sources:
          - {name: apps, adapter: apps, path: apps, n: 30, accept_shortfall: true, max_reject_rate: 0.5}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    source = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"][0]
    # Each of its solutions (rows) is counted; the sample's own malformed problem is counted as before.
    solutions = len(json.loads(json.loads(original)["solutions"]))
    assert source["rejected"] == {"invalid_utf8:question": solutions, "invalid_json:solutions": 1}, source["rejected"]
    examples = [e for e in source["reject_examples"] if e["reason"] == "invalid_utf8:question"]
    assert {(e["row"], e["line"]) for e in examples} == {(2, 3)} and examples[0]["file"].endswith("train.jsonl")
    read_shards(tmp_path / "out").validate(full=True)


def test_invalid_utf8_in_code_search_net_costs_its_function(tmp_path):
    source = SAMPLE_DATA / "code_search_net" / "go" / "final" / "jsonl" / "train" / "go_train_0.jsonl.gz"
    lines = gzip.decompress(source.read_bytes()).splitlines()
    lines[1] = lines[1].replace(b'"code": "', b'"code": "\xff', 1)
    _flan_gz(tmp_path / "csn" / "go" / "final" / "jsonl" / "train" / "go_train_0.jsonl.gz", lines)
    recipe = write_recipe(tmp_path, f"""
        name: t
        sources:
          - {{name: csn, adapter: code_search_net, path: csn, n: {2 * len(lines)}, accept_shortfall: true,
              max_reject_rate: 0.5}}
    """)
    result = run_cli("build", recipe, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    entry = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"][0]
    assert entry["rejected"].get("invalid_utf8:code") == 2, entry["rejected"]  # both its tasks
    assert {(e["row"], e["line"]) for e in entry["reject_examples"] if e["reason"] == "invalid_utf8:code"} == {(1, 2)}
    table = read_shards(tmp_path / "out")
    table.validate(full=True)
    assert entry["written"] == table.num_rows == 2 * len(lines) - sum(entry["rejected"].values()) - sum(entry["removed"].values())
