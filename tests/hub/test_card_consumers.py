"""The card's "Training with it" section: the format written, each consumer's snippet, the repo id when pushed,
and the same snippets as README.md's "Training with other tools"."""

from __future__ import annotations

import json
import re

import pytest

from flan_mini.card import write_card

from ..conftest import REPO
from .built import make_built_folder
from .test_hub_roundtrip import ROLE_WORDS


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def settings(yaml_block: str) -> list[str]:
    """The YAML block's lines without comments, comment-only lines or trailing blanks."""
    lines = [line.split("#", 1)[0].rstrip() for line in yaml_block.splitlines()]
    return [line for line in lines if line.strip()]


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    out = {}
    for fmt in ("messages", "conversations"):
        for repo_id in (None, "org/flan-mix"):
            folder = make_built_folder(tmp_path_factory.mktemp(fmt) / "build", fmt=fmt)
            text = write_card(folder, repo_id=repo_id).read_text()
            out[fmt, repo_id] = section(text, "Training with it")
    return out


README = section((REPO / "README.md").read_text(), "Training with other tools")


@pytest.mark.parametrize("repo_id", [None, "org/flan-mix"])
def test_each_consumer_gets_the_snippet_for_the_format_written(cards, repo_id):
    where = repo_id or "path/to/this/folder"
    messages, conversations = cards["messages", repo_id], cards["conversations", repo_id]
    assert "This build is in the `messages` layout" in messages
    assert "This build is in the `conversations` layout" in conversations
    for text in (messages, conversations):
        assert f'ds = datasets.load_dataset("{where}", split="train")' in text
        assert "assistant_only_loss=True" in text and "apply_chat_template(ds[0][\"messages\"]" in text
        assert f"  - path: {where}\n" in text and "type: chat_template" in text
        assert '"formatting": "sharegpt"' in text
        hub = json.loads(blocks(text, "json")[0])
        (entry,) = hub.values()
        assert entry.get("hf_hub_url") == repo_id and ("file_name" in entry) == (repo_id is None)
    # messages: no glue, and nothing of from/value; conversations: the role map, the mappings and FastChat's export
    assert "ROLES" not in messages and "field_messages: messages" in messages
    assert json.loads(blocks(messages, "json")[0]).popitem()[1]["tags"]["role_tag"] == "role"
    for word in ROLE_WORDS:
        assert word not in messages, word
    assert 'ROLES = {"human": "user", "gpt": "assistant"}' in conversations
    assert "field_messages: conversations" in conversations
    assert "message_property_mappings: {role: from, content: value}" in conversations
    assert json.loads(blocks(conversations, "json")[0]).popitem()[1]["columns"] == {"messages": "conversations"}
    assert 'json.dump(ds.select_columns(["id", "conversations"]).to_list()' in conversations
    assert "flan_mini.json" not in messages


def test_a_pushed_card_names_the_repo_and_no_placeholder_path(cards):
    for fmt in ("messages", "conversations"):
        text = cards[fmt, "org/flan-mix"]
        assert "path/to/this/folder" not in text and text.count("org/flan-mix") == 3


def test_the_card_snippets_are_the_readmes(cards):
    readme_python, card = blocks(README, "python"), cards["messages", "org/flan-mix"]
    trl = readme_python[0].replace('"build/my-mixture"', '"org/flan-mix"')
    assert blocks(card, "python")[0] == trl
    role_map = readme_python[1].replace("ROLES = ", "").strip()
    assert role_map in blocks(cards["conversations", None], "python")[0]
    assert readme_python[2] == blocks(card, "python")[1]  # apply_chat_template
    assert readme_python[3] == blocks(cards["conversations", None], "python")[2]  # FastChat's JSON export
    readme_axolotl = settings(blocks(README, "yaml")[0])
    assert settings(blocks(card, "yaml")[0]) == [line.replace("build/my-mixture", "org/flan-mix") for line in readme_axolotl]
    (readme_entry,) = json.loads(blocks(README, "json")[0]).values()
    (card_entry,) = json.loads(blocks(card, "json")[0]).values()
    assert {k: v for k, v in readme_entry.items() if k != "file_name"} == {k: v for k, v in card_entry.items() if k != "hf_hub_url"}
