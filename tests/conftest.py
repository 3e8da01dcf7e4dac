"""Shared test helpers: repository paths, writing recipes, running the CLI in-process."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from flan_mini.cli import main

REPO = Path(__file__).resolve().parent.parent
SAMPLE_RECIPE = REPO / "recipes" / "sample.yaml"
SAMPLE_DATA = REPO / "recipes" / "sample_data"


def write_recipe(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = Path(folder) / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run_cli(*args: str):
    """Run `flan-mini ARGS` in-process; returns click's Result (exit_code, output, stderr)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(autouse=True, scope="session")
def _session_parse_cache(tmp_path_factory):
    """The parse cache (sources/parse_cache.py) in a temporary folder: for session fixtures and Ray workers..."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLAN_MINI_CACHE", str(tmp_path_factory.mktemp("parse-cache")))
        yield


@pytest.fixture(autouse=True)
def _parse_cache(_session_parse_cache, tmp_path_factory, monkeypatch):
    """...and one of its own for each test, so no test sees another's entries."""
    monkeypatch.setenv("FLAN_MINI_CACHE", str(tmp_path_factory.mktemp("parse-cache")))


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory) -> Path:
    """One build of the bundled sample recipe, shared by the read-only end-to-end tests."""
    out = tmp_path_factory.mktemp("sample") / "build"
    result = run_cli("build", SAMPLE_RECIPE, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


# Ray's session folders hold unix sockets (at most 107 bytes): `<temp>/session_<date>_<pid>/sockets/plasma_store`
# takes about 65 of them, so the cluster's temp folder must stay under about 40.
_RAY_TEMP_MAX = 40


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """One Ray cluster for every Ray test: two simulated nodes of one CPU each (ray.cluster_utils.Cluster), on
    loopback, no dashboard, small object stores, its files under pytest's temp folder. This process is connected
    to it, so a RayExecutor made in the tests (or by the CLI with --ray-address) uses that connection. Yields the
    cluster (its `.address`). Skips when Ray is not installed (CI installs the `ray` extra)."""
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    import os
    import shutil
    import tempfile

    from flan_mini.executor_ray import loopback_only

    loopback_only()  # before ray.cluster_utils: keeps every node on 127.0.0.1
    import ray
    from ray.cluster_utils import Cluster

    temp = tmp_path_factory.mktemp("ray")
    own = len(str(temp)) > _RAY_TEMP_MAX
    if own:  # a deep pytest base folder: a short one of our own, removed at the end
        temp = Path(tempfile.mkdtemp(prefix="fmray", dir="/tmp"))
    (temp / "ray").mkdir()
    saved = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(temp)  # where Cluster records its address (not the machine-wide /tmp/ray)
    node = {"num_cpus": 1, "object_store_memory": 100 * 2**20, "temp_dir": str(temp / "ray")}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved
        if own:
            shutil.rmtree(temp, ignore_errors=True)
