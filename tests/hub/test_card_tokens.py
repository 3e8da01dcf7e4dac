"""With `card.tokenizer`, the card's lengths are tokens of that tokenizer, fetched from the (loopback) Hub."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flan_mini.card import write_card
from flan_mini.errors import FlanMiniError
from flan_mini.shards import shard_paths

from .built import WORDS, make_built_folder
from .markdown import section, table

TOKENIZER_REPO = "org/tiny-tokenizer"


def _tokenizer_json() -> bytes:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(sorted(set(WORDS)))}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # one token per whitespace-separated piece
    return tokenizer.to_str().encode()


def _with_tokenizer(folder, name):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["recipe"]["resolved"]["card"] = {"tokenizer": name}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_lengths_are_counted_in_the_named_tokenizers_tokens(hub, tmp_path):
    pytest.importorskip("tokenizers")
    hub.add_repo(TOKENIZER_REPO, {"tokenizer.json": _tokenizer_json()})
    folder = make_built_folder(tmp_path / "build")
    _with_tokenizer(folder, TOKENIZER_REPO)
    card = write_card(folder).read_text()
    lengths = section(card, "Lengths")
    assert f"tokens of the `{TOKENIZER_REPO}` tokenizer" in lengths
    assert "counted in characters" not in section(card, "Limitations")
    rows = pa.concat_tables(pq.read_table(p) for p in shard_paths(folder)).to_pylist()
    by_source = {r["Source"]: r for r in table(lengths)}
    for name in ("flan2021", "sharegpt"):
        prompts = [len(t["value"].split()) for r in rows if r["recipe_source"] == name
                   for t in r["conversations"] if t["from"] == "human"]
        assert by_source[name]["Prompt mean"] == f"{np.mean(prompts):,.1f}"
        assert by_source[name]["Prompt max"] == f"{max(prompts):,}"
    # Characters, the default, give other figures: the table really changed unit.
    plain = make_built_folder(tmp_path / "plain")
    assert table(section(write_card(plain).read_text(), "Lengths"))[0]["Prompt mean"] != by_source["flan2021"]["Prompt mean"]


def test_an_unknown_tokenizer_is_a_clear_error(hub, tmp_path):
    pytest.importorskip("tokenizers")
    folder = make_built_folder(tmp_path / "build")
    _with_tokenizer(folder, "org/no-such-model")
    with pytest.raises(FlanMiniError, match="card.tokenizer 'org/no-such-model': could not load its tokenizer.json"):
        write_card(folder)
