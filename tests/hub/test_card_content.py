"""The card's body: composition, templates and length statistics agree with the shards; figures; failures."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict

import pytest
from click.testing import CliRunner

from flan_mini.card import card_command, write_card
from flan_mini.errors import FlanMiniError
from flan_mini.shards import read_shards

from .built import make_built_folder
from .markdown import number, section, table


ROUNDING = 0.051  # the card prints one decimal


def _rows(folder):
    return read_shards(folder).to_pylist()


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_composition_table_matches_shards_and_manifest(built):
    card = (built / "README.md").read_text()
    rows = table(section(card, "Composition"))
    counted = Counter(r["recipe_source"] for r in _rows(built))
    manifest = _manifest(built)
    by_name = {r["Source"]: r for r in rows}
    assert [r["Source"] for r in rows] == [s["name"] for s in manifest["sources"]] + ["**Total**"]
    for source in manifest["sources"]:
        row = by_name[source["name"]]
        assert number(row["Written"]) == counted[source["name"]]
        assert number(row["Requested"]) == source["requested"]
        assert number(row["Share"]) == pytest.approx(100 * counted[source["name"]] / sum(counted.values()), abs=ROUNDING)
        assert row["Licence"] == source["license"]
        origin = source["origin"]
        assert (origin["repo_id"] or origin["path"]) in row["Origin"]
        assert row["Revision"] == (origin["revision"] or "–")
    total = by_name["**Total**"]
    assert number(total["Written"]) == sum(counted.values()) == manifest["output"]["rows"]
    assert number(total["Requested"]) == sum(s["requested"] for s in manifest["sources"])


def test_template_table_matches_shards(built):
    card = (built / "README.md").read_text()
    rows = {r["Source"]: r for r in table(section(card, "Prompt templates"))}
    groups = defaultdict(list)
    for row in _rows(built):
        groups[row["recipe_source"]].append(row)
    for name, part in groups.items():
        zero = sum(1 for r in part if (r["template_type"] or "").startswith("zs"))
        few = sum(1 for r in part if (r["template_type"] or "").startswith("fs"))
        untemplated = sum(1 for r in part if r["template_type"] is None and r["num_shots"] is None)
        assert number(rows[name]["Zero-shot"]) == zero
        assert number(rows[name]["Few-shot"]) == few
        assert number(rows[name]["No template"]) == untemplated
        assert number(rows[name]["Templates used"]) == len({r["template_id"] for r in part if r["template_id"]})
        assert number(rows[name]["Distinct `source` values"]) == len({r["source"] for r in part})
        shots = [r["num_shots"] for r in part if (r["template_type"] or "").startswith("fs")]
        if shots:
            assert number(rows[name]["Mean shots (few-shot)"]) == pytest.approx(statistics.mean(shots), abs=ROUNDING)
    assert rows["sharegpt"]["Mean shots (few-shot)"] == "–"


def test_length_statistics_match_a_plain_python_count(built):
    card = (built / "README.md").read_text()
    rows = {r["Source"]: r for r in table(section(card, "Lengths"))}
    turns, prompts, responses = defaultdict(list), defaultdict(list), defaultdict(list)
    for row in _rows(built):
        for key in (row["recipe_source"], "all"):
            turns[key].append(len(row["conversations"]))
            for turn in row["conversations"]:
                (prompts if turn["from"] == "human" else responses)[key].append(len(turn["value"]))
    assert set(rows) == set(turns)
    for key, shown in rows.items():
        assert number(shown["Rows"]) == len(turns[key])
        assert number(shown["Turns mean"]) == pytest.approx(statistics.mean(turns[key]), abs=ROUNDING)
        assert number(shown["Turns max"]) == max(turns[key])
        for prefix, values in (("Prompt", prompts[key]), ("Response", responses[key])):
            assert number(shown[f"{prefix} mean"]) == pytest.approx(statistics.mean(values), abs=ROUNDING)
            assert number(shown[f"{prefix} median"]) == pytest.approx(statistics.median(values), abs=ROUNDING)
            # statistics.quantiles' "inclusive" method is numpy's linear interpolation.
            p95 = statistics.quantiles(values, n=20, method="inclusive")[-1]
            assert number(shown[f"{prefix} p95"]) == pytest.approx(p95, abs=ROUNDING)
            assert number(shown[f"{prefix} max"]) == max(values)
    assert number(rows["sharegpt"]["Turns max"]) > 2  # the multi-turn source shows as such


def test_dedup_section_follows_the_manifest(tmp_path):
    with_dedup = make_built_folder(tmp_path / "a", dedup=True)
    without = make_built_folder(tmp_path / "b", dedup=False)
    card_a = write_card(with_dedup).read_text()
    card_b = write_card(without).read_text()
    dedup_rows = {r["Source"]: r for r in table(section(card_a, "Deduplication"))}
    for source in _manifest(with_dedup)["sources"]:
        assert number(dedup_rows[source["name"]]["Removed (near)"]) == source["removed"]["dedup_near"]
    assert "threshold (Jaccard): `0.8`" in section(card_a, "Deduplication")
    assert "`reports/dedup_clusters.parquet`" in section(card_a, "Deduplication")
    assert "No deduplication stage ran" in section(card_b, "Deduplication")
    assert "No deduplication ran" in section(card_b, "Limitations")


def test_card_shows_both_figures_and_they_are_pngs(built):
    card = (built / "README.md").read_text()
    for name in ("composition.png", "lengths.png"):
        assert f"]({name})" in card
        data = (built / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 500 and height >= 150
        assert b"Matplotlib" not in data  # no version text chunk: the bytes depend on the data only


def test_card_and_figures_are_deterministic(tmp_path):
    outputs = []
    for run in ("one", "two"):
        folder = make_built_folder(tmp_path / run)
        write_card(folder, repo_id="org/name")
        outputs.append({n: (folder / n).read_bytes() for n in ("README.md", "composition.png", "lengths.png")})
    assert outputs[0] == outputs[1]
    assert 'load_dataset("org/name"' in outputs[0]["README.md"].decode()


def test_licence_and_limitations_sections(built):
    card = (built / "README.md").read_text()
    licences = {r["Licence"].split(" ")[0].strip("`"): r for r in table(section(card, "Licences"))}
    assert set(licences) == {"apache-2.0", "cc-by-nc-4.0", "cc-by-4.0", "other"}
    assert licences["cc-by-nc-4.0"]["Sources"] == "alpaca_gpt4"
    assert "different terms" in section(card, "Licences")
    limitations = section(card, "Limitations")
    assert "`code_contests` delivered 5 fewer rows" in limitations
    assert "`alpaca_gpt4`, `sharegpt` were written by language models" in limitations


def test_card_refuses_a_folder_whose_manifest_disagrees_with_the_shards(tmp_path):
    folder = make_built_folder(tmp_path / "x")
    manifest = _manifest(folder)
    manifest["sources"][0]["written"] += 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FlanMiniError, match=r"sources\[flan2021\]\.written is 61 but the shards hold 60"):
        write_card(folder)
    assert not (folder / "README.md").exists()


def test_card_refuses_tampered_or_foreign_shards(tmp_path):
    folder = make_built_folder(tmp_path / "x")
    shard = folder / _manifest(folder)["output"]["shards"][0]["path"]
    shard.write_bytes(shard.read_bytes()[:-1] + b"\0")
    with pytest.raises(FlanMiniError, match="sha256"):
        write_card(folder)
    other = make_built_folder(tmp_path / "y")
    manifest = _manifest(other)
    manifest["sources"] = manifest["sources"][1:]  # the shards still hold flan2021 rows
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FlanMiniError, match="flan2021"):
        write_card(other)


def test_card_command(tmp_path):
    folder = make_built_folder(tmp_path / "x")
    result = CliRunner().invoke(card_command, [str(folder), "--repo-id", "org/cli"])
    assert result.exit_code == 0, result.output
    assert "README.md" in result.output
    assert 'load_dataset("org/cli"' in (folder / "README.md").read_text()


def test_a_single_licence_build_says_so(tmp_path):
    folder = make_built_folder(tmp_path / "x")
    manifest = _manifest(folder)
    for source in manifest["sources"]:
        source["license"] = "MIT"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    card = write_card(folder).read_text()
    assert "\nlicense: mit\n" in card and "license_name" not in card
    assert "Every source declares the same licence, `mit`." in section(card, "Licences")


def test_a_manifest_with_only_the_essential_keys_still_gets_a_card(tmp_path):
    # The card must not depend on optional counters (a build without dedup, an older manifest, a Hub-less recipe).
    folder = make_built_folder(tmp_path / "x", dedup=False)
    manifest = _manifest(folder)
    essential = {"name", "adapter", "license", "origin"}
    manifest["sources"] = [{k: v for k, v in s.items() if k in essential} for s in manifest["sources"]]
    for key in ("created_by", "command", "seed", "dedup", "stages"):
        manifest.pop(key)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    card = write_card(folder).read_text()
    rows = {r["Source"]: r for r in table(section(card, "Composition"))}
    assert number(rows["**Total**"]["Written"]) == 135
    assert rows["flan2021"]["Requested"] == "–"
    assert "flan-mini build <recipe>" in card
