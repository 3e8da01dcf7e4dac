"""Fixtures for the card and hub tests: a small built folder, and the real Hub client pointed at a loopback Hub."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .built import make_built_folder
from .fake_hub import FakeHub

SECRET = "hf_loopbackSECRETtoken1234567890abcdef"


@pytest.fixture(scope="session")
def built_template(tmp_path_factory):
    from flan_mini.card import write_card

    folder = make_built_folder(tmp_path_factory.mktemp("template") / "build", target_shard_bytes=40_000)
    write_card(folder, repo_id="flan-mini/sample")
    return folder


@pytest.fixture
def built(built_template, tmp_path):
    """A built folder (2 shards, manifest in the contract's shape) with its card written; a fresh copy per test."""
    return Path(shutil.copytree(built_template, tmp_path / "build"))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running FakeHub; huggingface_hub talks to it with HF_TOKEN=SECRET, a temporary HF_HOME and no Xet."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    home.mkdir()
    with FakeHub() as server:
        monkeypatch.setenv("HF_HOME", str(home))
        monkeypatch.setenv("HF_TOKEN", SECRET)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        # huggingface_hub reads these at import time, so the environment alone is not enough in one process.
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HOME", str(home))
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / ".agent_harnesses.json"))
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
        yield server
