"""One `workers` setting: `--workers` reaches every parallel stage, and each section's default is said once."""

from __future__ import annotations

import re
from pathlib import Path

from flan_mini.config_base import WORKERS_DOC
from flan_mini.decontam.config import DecontamConfig
from flan_mini.dedup.config import DedupConfig

from .conftest import SAMPLE_RECIPE, run_cli

README = Path(__file__).resolve().parents[1] / "README.md"


def test_build_workers_reach_dedup_and_decontamination(tmp_path, monkeypatch):
    from flan_mini.dedup import stage as dedup_stage
    from flan_mini.decontam.stage import Decontaminator

    widths: dict[str, list] = {"dedup": [], "decontaminate": []}
    pool = dedup_stage.Workers

    class CountedPool(pool):  # a subclass: dedup checks isinstance(workers, Workers)
        def __init__(self, count):
            widths["dedup"].append(count)
            super().__init__(count)

    scan = Decontaminator.scan

    def counted_scan(self, *args, workers=None, **kwargs):
        widths["decontaminate"].append(workers)
        return scan(self, *args, workers=workers, **kwargs)

    monkeypatch.setattr(dedup_stage, "Workers", CountedPool)
    monkeypatch.setattr(Decontaminator, "scan", counted_scan)
    assert run_cli("build", SAMPLE_RECIPE, "--out", tmp_path / "out", "--workers", "3", "-q").exit_code == 0
    assert widths == {"dedup": [3], "decontaminate": [3]}


def test_each_sections_default_is_the_documented_one():
    assert DedupConfig.model_fields["workers"].default == WORKERS_DOC["dedup"][0]
    assert DecontamConfig.model_fields["workers"].default == WORKERS_DOC["decontaminate"][0]
    readme = README.read_text(encoding="utf-8")
    for section, (default, what) in WORKERS_DOC.items():
        row = re.search(rf"^\| `{section}:` \| (\d+) \| ([^|]+) \|", readme, re.M)
        assert row, f"README: no row for {section}: in the workers table"
        assert (int(row.group(1)), row.group(2).strip()) == (default, what)
    for command in ("dedup", "decontaminate"):
        out = run_cli(command, "--help").output
        option = re.search(r"--workers INTEGER(.*?)(?:\n  -|\Z)", out, re.S).group(1)
        assert f"[default: {WORKERS_DOC[command][0]}]" in " ".join(option.split())
