"""Nothing published names a path of the building machine: the manifest and card of a real build, and the rules."""

from __future__ import annotations

import json
import os

from flan_mini.manifest import portable, portable_command

from ..conftest import REPO


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_a_real_builds_manifest_and_card_hold_no_absolute_path(sample_build):
    manifest = json.loads((sample_build / "manifest.json").read_text())
    absolute = [s for s in _strings(manifest) if os.path.isabs(s)]
    assert absolute == []
    published = (sample_build / "manifest.json").read_text() + (sample_build / "README.md").read_text()
    for local in (str(sample_build), str(sample_build.parent), str(REPO)):
        assert local not in published
    assert "--out" not in manifest["command"] and manifest["recipe"]["path"] == "sample.yaml"
    # Source paths stay usable: relative to the recipe's folder, where the recipe's own paths start.
    assert all(not os.path.isabs(s["origin"]["path"] or "") for s in manifest["sources"])


def test_portable_rules():
    assert portable_command("flan-mini build /home/me/mix/r.yaml --out /tmp/x --seed 3", None) == \
        "flan-mini build r.yaml --seed 3"
    assert portable_command("flan-mini build /home/me/mix/r.yaml --out=/tmp/x", None) == "flan-mini build r.yaml"
    manifest = {"recipe": {"path": "/home/me/mix/r.yaml"}, "command": "flan-mini build /home/me/mix/r.yaml",
                "sources": [{"origin": {"path": "/home/me/mix/data/a.jsonl"}}, {"origin": {"path": "/srv/b"}}],
                "description": "text with / slashes",
                "reject_examples": [{"file": "/home/me/mix/data/a.jsonl", "excerpt": "/etc/passwd"}]}
    assert portable(manifest) == {
        "recipe": {"path": "r.yaml"}, "command": "flan-mini build r.yaml",
        "sources": [{"origin": {"path": "data/a.jsonl"}}, {"origin": {"path": "../../../srv/b"}}],
        "description": "text with / slashes",
        "reject_examples": [{"file": "data/a.jsonl", "excerpt": "/etc/passwd"}],  # row text is left as it is
    }
