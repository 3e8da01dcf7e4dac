"""Hub inputs read where a task runs: a task on a machine without the driver's download fetches the same commit."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from flan_mini.errors import SourceError
from flan_mini.pipeline import build
from flan_mini.plan import make_plan
from flan_mini.progress import Reporter
from flan_mini.recipe import load_recipe
from flan_mini.sources.files import HubOrigin, InputFile
from flan_mini.sources.localize import local_file
from tests.conftest import write_recipe

REPO = "someone/tiny-alpaca"


def _rows(tag: str) -> bytes:
    return json.dumps([{"instruction": f"Say {tag}{i}.", "input": "", "output": f"{tag}{i}."} for i in range(12)]).encode()


def _recipe(tmp_path: Path) -> Path:
    return write_recipe(tmp_path, f"""
        name: t
        seed: 7
        sources:
          - {{name: a, adapter: alpaca, path: {REPO}, data_files: "data/*.json", n: 10}}
    """)


def _shard_digests(folder: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "data").glob("*.parquet"))]


def test_a_build_whose_hub_files_are_missing_where_tasks_run_fetches_the_resolved_commit(hub, tmp_path):
    hub.add_repo(REPO, {"data/part-0.json": _rows("x"), "data/part-1.json": _rows("y")})
    plan = make_plan(load_recipe(_recipe(tmp_path)), out=tmp_path / "first")
    expected = _shard_digests(build(plan, reporter=Reporter("quiet")).out_dir)

    # Another machine: the driver's download is not there. The tasks fetch each file again, at the commit the
    # driver resolved, even though the repo has moved on since.
    files = [f for source in plan.sources for f in source.files]
    assert all(isinstance(f.origin, HubOrigin) and f.origin.repo_id == REPO for f in files)
    shutil.rmtree(Path(files[0].path).parents[2])  # the snapshot's commit folder, files and all
    HfApi().upload_file(path_or_fileobj=_rows("changed"), path_in_repo="data/part-0.json", repo_id=REPO,
                        repo_type="dataset")
    assert hub.files(REPO)["data/part-0.json"] == _rows("changed")
    again = make_plan(load_recipe(_recipe(tmp_path)), out=tmp_path / "second", resolve_hub_sources=False)
    again = replace(again, sources=plan.sources)  # the driver's resolution, pinned to the first commit
    result = build(again, reporter=Reporter("quiet"))
    assert _shard_digests(result.out_dir) == expected
    assert all(Path(f.path).is_file() for f in files)  # fetched back into this machine's cache


def test_a_missing_local_input_names_the_file_and_the_shared_disk_it_needs(tmp_path):
    gone = InputFile(tmp_path / "gone.json", "gone.json", "data/gone.json", 10)
    with pytest.raises(SourceError, match=r"data/gone.json: not found at .*gone.json on .*same path"):
        local_file(gone)


def test_a_present_file_is_used_where_it_is_and_one_of_another_size_is_an_error(tmp_path):
    path = tmp_path / "here.json"
    path.write_bytes(b"[]")
    here = InputFile(path, "here.json", "here.json", 2)
    assert local_file(here) is here
    with pytest.raises(SourceError, match=r"here.json: changed while the build was reading it \(2 bytes now, 3"):
        local_file(replace(here, bytes=3))  # a different file at that path is not the input


def test_an_unreachable_hub_file_is_a_clear_error_naming_it(hub, tmp_path):
    hub.add_repo(REPO, {"data/part-0.json": _rows("x")})
    missing = InputFile(tmp_path / "nowhere.json", "data/none.json", f"hub:{REPO}/data/none.json", 5,
                        HubOrigin(REPO, "main", "data/none.json"))
    with pytest.raises(SourceError, match=rf"hub:{REPO}/data/none.json: cannot fetch it on .* at commit main"):
        local_file(missing)
