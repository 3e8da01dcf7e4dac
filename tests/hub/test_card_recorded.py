"""`push` re-renders the card from the statistics the build recorded in manifest.json, to the same bytes."""

from __future__ import annotations

import dataclasses
import json
import shutil

from flan_mini import card_stats
from flan_mini.card import CARD_FILE, refresh_card, write_card
from flan_mini.manifest import check_folder

REPO = "org/recorded"


def test_the_build_records_what_the_card_shows(sample_build):
    manifest, shards = check_folder(sample_build)
    names = [s["name"] for s in manifest["sources"]]
    computed = card_stats.compute_stats(shards, names)
    recorded = card_stats.stats_from_record(json.loads(json.dumps(manifest["card_stats"])))
    for field in ("rows", "num_bytes", "sources", "total", "unit"):
        assert getattr(recorded, field) == getattr(computed, field), field
    assert [s.name for s in recorded.sources] == names
    # Orders survive: templates most used first, as computed.
    assert [list(s.templates) for s in recorded.sources] == [list(s.templates) for s in computed.sources]
    assert dataclasses.asdict(recorded.total)["prompt_chars"] == dataclasses.asdict(computed.total)["prompt_chars"]


def test_refreshed_card_is_byte_identical_without_reading_the_shards(sample_build, tmp_path, monkeypatch):
    fresh, pushed = tmp_path / "fresh", tmp_path / "pushed"
    shutil.copytree(sample_build, fresh)
    shutil.copytree(sample_build, pushed)
    write_card(fresh, repo_id=REPO)  # from the shards, as `flan-mini card --repo-id` writes it

    def no_reading(*args, **kwargs):
        raise AssertionError("the shards were read for the card's statistics")

    monkeypatch.setattr(card_stats, "compute_stats", no_reading)
    manifest, _ = check_folder(pushed)
    assert refresh_card(pushed, repo_id=REPO, manifest=manifest) is True
    assert (pushed / CARD_FILE).read_bytes() == (fresh / CARD_FILE).read_bytes()
    assert REPO in (pushed / CARD_FILE).read_text()


def test_a_build_without_recorded_statistics_reads_the_shards(sample_build, tmp_path):
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    shutil.copytree(sample_build, fresh)
    shutil.copytree(sample_build, old)
    write_card(fresh, repo_id=REPO)
    manifest, _ = check_folder(old)
    del manifest["card_stats"]  # as an older build wrote it
    assert refresh_card(old, repo_id=REPO, manifest=manifest) is True
    assert (old / CARD_FILE).read_bytes() == (fresh / CARD_FILE).read_bytes()
