"""The card's dedup sentence says how pairs were decided: exact Jaccard, datasketch's estimate, or unverified."""

from __future__ import annotations

import json

from flan_mini.card import write_card
from tests.hub.built import make_built_folder
from tests.hub.markdown import section


def _card_with(folder, **parameters) -> str:
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["dedup"]["parameters"].update(parameters)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return " ".join(section(write_card(folder).read_text(), "Deduplication").split())


def test_dedup_sentence_follows_the_mode(tmp_path):
    folder = make_built_folder(tmp_path / "built", dedup=True)
    exact = _card_with(folder, mode="exact", verify=True)
    assert "exact Jaccard similarity of its two shingle sets" in exact and "estimated" not in exact
    parity = _card_with(folder, mode="datasketch")
    assert "datasketch's semantics" in parity and "estimated Jaccard" in parity and "exact Jaccard" not in parity
    unverified = _card_with(folder, mode="exact", verify=False)
    assert "not verified" in unverified and "exact Jaccard" not in unverified
    # A manifest from before the mode existed was decided on the MinHash estimate.
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["dedup"]["parameters"]["mode"]
    manifest["dedup"]["parameters"]["verify"] = True
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert "estimated Jaccard" in section(write_card(folder).read_text(), "Deduplication")
