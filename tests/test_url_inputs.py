"""Sources behind fsspec URLs (s3://, gs://, ...; here fsspec's in-memory store): resolved like a local folder,
copied into this machine's cache, fetched again where a task runs without that copy."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import fsspec
import pytest

from flan_mini.errors import RecipeError, SourceError
from flan_mini.pipeline import build
from flan_mini.plan import make_plan
from flan_mini.progress import Reporter
from flan_mini.recipe import load_recipe
from flan_mini.sources.files import UrlOrigin
from tests.conftest import write_recipe


@pytest.fixture
def store(tmp_path, monkeypatch):
    """fsspec's in-memory store under memory://bucket-<test>, and a fresh flan-mini cache folder."""
    monkeypatch.setenv("FLAN_MINI_CACHE", str(tmp_path / "cache"))
    memory = fsspec.filesystem("memory")
    root = f"/bucket-{tmp_path.name}"
    yield memory, root
    if memory.exists(root):
        memory.rm(root, recursive=True)


def _rows(tag: str) -> bytes:
    return json.dumps([{"instruction": f"Say {tag}{i}.", "input": "", "output": f"{tag}{i}."} for i in range(12)]).encode()


def _recipe(folder: Path, path: str, extra: str = "", n: int = 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_recipe(folder, f"""
        name: t
        seed: 3
        sources:
          - {{name: a, adapter: alpaca, path: "{path}", n: {n}{extra}}}
    """)


def _digests(folder: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "data").glob("*.parquet"))]


def test_a_url_source_builds_the_same_shards_as_the_same_files_on_disk(store, tmp_path):
    memory, root = store
    files = {"train-part0.json": _rows("x"), "train-part1.json": _rows("y"), "test.json": _rows("t"), ".hidden.json": b"["}
    (tmp_path / "local").mkdir()
    for name, data in files.items():
        memory.pipe(f"{root}/{name}", data)
        (tmp_path / "local" / name).write_bytes(data)

    remote = build(make_plan(load_recipe(_recipe(tmp_path / "r", f"memory://{root}")), out=tmp_path / "out-r"),
                   reporter=Reporter("quiet"))
    local = build(make_plan(load_recipe(_recipe(tmp_path / "l", str(tmp_path / "local"))), out=tmp_path / "out-l"),
                  reporter=Reporter("quiet"))
    assert _digests(remote.out_dir) == _digests(local.out_dir)
    (source,) = remote.manifest["sources"]
    assert source["origin"]["kind"] == "url"
    assert [i["path"] for i in source["inputs"]] == [f"memory://{root}/train-part0.json", f"memory://{root}/train-part1.json"]
    assert [i["sha256"] for i in source["inputs"]] == [hashlib.sha256(files[n]).hexdigest() for n in ("train-part0.json", "train-part1.json")]
    assert f"`memory://{root}`" in (remote.out_dir / "README.md").read_text()


def test_a_task_without_the_drivers_copy_fetches_the_url_again(store, tmp_path):
    memory, root = store
    memory.pipe(f"{root}/data/rows.json", _rows("x"))
    recipe = _recipe(tmp_path, f"memory://{root}", ', data_files: "data/*.json"', n=10)
    plan = make_plan(load_recipe(recipe), out=tmp_path / "first")
    expected = _digests(build(plan, reporter=Reporter("quiet")).out_dir)
    (file,) = plan.sources[0].files
    assert isinstance(file.origin, UrlOrigin) and file.origin.url == f"memory://{root}/data/rows.json"
    shutil.rmtree(tmp_path / "cache")  # another machine: no copy in its cache
    again = replace(make_plan(load_recipe(recipe), out=tmp_path / "second", resolve_hub_sources=False), sources=plan.sources)
    assert _digests(build(again, reporter=Reporter("quiet")).out_dir) == expected
    assert file.path.is_file()


def test_url_sources_that_match_nothing_or_cannot_be_read_are_recipe_errors_naming_them(store, tmp_path):
    memory, root = store
    memory.pipe(f"{root}/data/rows.json", _rows("x"))
    with pytest.raises(RecipeError, match=rf"matched no files under memory://{root}: nothing/\*.json"):
        make_plan(load_recipe(_recipe(tmp_path, f"memory://{root}", ', data_files: "nothing/*.json"')), out=tmp_path / "o")
    with pytest.raises(RecipeError, match=r"cannot read nosuchscheme://x: "):
        make_plan(load_recipe(_recipe(tmp_path, "nosuchscheme://x")), out=tmp_path / "o")


def test_offline_validation_notes_a_url_source_without_reading_it(store, tmp_path):
    plan = make_plan(load_recipe(_recipe(tmp_path, "s3://no-bucket/never-read")), out=tmp_path / "o", resolve_hub_sources=False)
    assert any("s3://no-bucket/never-read not checked" in note for note in plan.notes)


def test_a_copy_cut_short_is_not_taken_for_the_file(store, tmp_path):
    from flan_mini.sources.localize import fetch_url

    memory, root = store
    memory.pipe(f"{root}/rows.json", _rows("x"))
    origin = UrlOrigin(f"memory://{root}/rows.json", "v1")
    path = fetch_url(origin, len(_rows("x")))
    path.write_bytes(path.read_bytes()[:10])  # a copy cut short (another process died mid-write)
    assert fetch_url(origin, len(_rows("x"))).read_bytes() == _rows("x")
    with pytest.raises(SourceError, match=rf"memory://{root}/gone.json: cannot fetch it on "):
        fetch_url(UrlOrigin(f"memory://{root}/gone.json", ""), 5)


def test_tasks_fetching_one_url_at_once_each_get_the_whole_file(store, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from flan_mini.sources.localize import fetch_url

    data = _rows("x") * 30_000  # ~20 MB: copies overlap
    (tmp_path / "rows.json").write_bytes(data)
    origin = UrlOrigin((tmp_path / "rows.json").as_uri(), "v1")  # file://: separate handles (memory:// shares one)
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: fetch_url(origin, len(data)), range(16)))
    assert {p.read_bytes() for p in paths} == {data}
    assert not [p for p in paths[0].parent.iterdir() if p.name.endswith(".part")]


def test_an_object_that_changed_since_the_build_resolved_it_is_not_copied(store, tmp_path):
    from flan_mini.sources.localize import fetch_url

    memory, root = store
    memory.pipe(f"{root}/rows.json", _rows("x"))
    with pytest.raises(SourceError, match=r"700 bytes fetched on .*resolved it at 699: it changed since"):
        fetch_url(UrlOrigin(f"memory://{root}/rows.json", "v0"), 699)
    assert not list((tmp_path / "cache" / "inputs").iterdir())
