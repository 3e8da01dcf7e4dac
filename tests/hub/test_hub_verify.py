"""verify_folder: a push refuses folders whose manifest, shards or card do not agree."""

from __future__ import annotations

import json
import shutil

import pytest

from flan_mini.errors import PublishError
from flan_mini.hub import publish_files, verify_folder


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def _save(folder, manifest):
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_a_consistent_folder_passes(built):
    manifest = verify_folder(built)
    assert publish_files(built, manifest) == [
        "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet",
        "manifest.json", "README.md", "reports/dedup_clusters.parquet", "composition.png", "lengths.png",
    ]


def test_missing_manifest(built):
    (built / "manifest.json").unlink()
    with pytest.raises(PublishError, match="no manifest.json.*not a finished flan-mini build"):
        verify_folder(built)


def test_manifest_that_is_not_json_names_line_and_column(built):
    (built / "manifest.json").write_text('{\n  "format_version": 1,\n  oops\n}')
    with pytest.raises(PublishError, match=r"manifest.json:3:3: not valid JSON"):
        verify_folder(built)


def test_wrong_format_version(built):
    manifest = _manifest(built)
    manifest["format_version"] = 2
    _save(built, manifest)
    with pytest.raises(PublishError, match="format_version must be 1, found 2"):
        verify_folder(built)


def test_missing_shard(built):
    (built / "data/train-00001-of-00002.parquet").unlink()
    with pytest.raises(PublishError, match="data/train-00001-of-00002.parquet: listed in manifest.json but missing"):
        verify_folder(built)


def test_extra_shard(built):
    shutil.copy(built / "data/train-00001-of-00002.parquet", built / "data/train-00002-of-00002.parquet")
    with pytest.raises(PublishError, match="data/train-00002-of-00002.parquet: extra file, not listed"):
        verify_folder(built)


def test_size_and_sha256_mismatches_are_each_named(built):
    first, second = (built / s["path"] for s in _manifest(built)["output"]["shards"])
    first.write_bytes(first.read_bytes() + b"x")
    data = bytearray(second.read_bytes())
    data[100] ^= 0xFF
    second.write_bytes(bytes(data))
    with pytest.raises(PublishError) as caught:
        verify_folder(built)
    message = str(caught.value)
    assert "data/train-00000-of-00002.parquet:" in message and "bytes on disk" in message
    assert "data/train-00001-of-00002.parquet: sha256" in message


def test_row_count_mismatch(built):
    manifest = _manifest(built)
    manifest["output"]["shards"][0]["rows"] += 1
    _save(built, manifest)
    with pytest.raises(PublishError, match=r"rows, manifest.json says"):
        verify_folder(built)


def test_shard_path_outside_data_is_refused(built):
    manifest = _manifest(built)
    manifest["output"]["shards"][0]["path"] = "../elsewhere.parquet"
    _save(built, manifest)
    with pytest.raises(PublishError, match="must be relative and under data/"):
        verify_folder(built)


def test_missing_card(built):
    (built / "README.md").unlink()
    with pytest.raises(PublishError, match="no README.md data card; run `flan-mini card"):
        verify_folder(built)


def test_card_from_another_build(built):
    card = (built / "README.md").read_text()
    (built / "README.md").write_text(card.replace("num_examples: 135", "num_examples: 134"))
    with pytest.raises(PublishError, match="describes 134 rows but manifest.json lists 135"):
        verify_folder(built)


def test_card_figure_missing(built):
    (built / "lengths.png").unlink()
    with pytest.raises(PublishError, match="shows lengths.png, which is missing"):
        verify_folder(built)


def test_card_with_a_broken_header(built):
    (built / "README.md").write_text("---\nlicense: [unclosed\n---\n# card\n")
    with pytest.raises(PublishError, match="no readable YAML header"):
        verify_folder(built)
