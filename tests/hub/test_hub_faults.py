"""Transient Hub failures are retried; a push that still fails leaves the Hub as it was and says so."""

from __future__ import annotations

import logging

import pytest

from flan_mini.card import write_card
from flan_mini.errors import PublishError
from flan_mini.hub import publish_files, push_folder, verify_folder

from .built import make_built_folder
from .conftest import SECRET

REPO = "flan-mini/sample"
FAST = {"backoff": 0.01}  # our own backoff; the client's own retries still wait about 1 s


def _assert_published(hub, folder, branch="main"):
    local = {p: (folder / p).read_bytes() for p in publish_files(folder, verify_folder(folder))}
    remote = hub.files(REPO, branch)
    assert {p: remote.get(p) for p in local} == local


def test_429_on_preupload_is_retried(built, hub):
    hub.inject("POST", r"/preupload/", status=429, retry_after="0")
    result = push_folder(built, REPO, **FAST)
    assert result.changed
    assert len(hub.calls("POST", r"/preupload/")) == 2
    _assert_published(hub, built)
    assert len(hub.history(REPO)) == 2


def test_500_on_commit_is_retried_and_lands_exactly_one_commit(built, hub, caplog):
    caplog.set_level(logging.WARNING, logger="flan_mini.hub")
    hub.inject("POST", r"/commit/", status=500, times=2)
    result = push_folder(built, REPO, **FAST)
    assert result.attempts == 3
    assert len(hub.calls("POST", r"/commit/")) == 3
    assert len(hub.history(REPO)) == 2
    _assert_published(hub, built)
    assert caplog.text.count("retrying in") == 2
    assert "500" in caplog.text


def test_connection_cut_mid_upload_is_retried(built, hub):
    fault = hub.inject("PUT", r"^/lfs-upload/", cut=True)
    result = push_folder(built, REPO, **FAST)
    assert fault.hits == 1
    assert result.changed
    _assert_published(hub, built)
    assert len(hub.history(REPO)) == 2


def test_a_lost_commit_answer_does_not_make_a_second_commit(built, hub):
    # The Hub applies the commit, then the connection drops before the answer: the retry must notice it landed.
    hub.inject("POST", r"/commit/", drop_answer=True)
    result = push_folder(built, REPO, **FAST)
    assert result.attempts == 2 and result.changed
    history = hub.history(REPO)
    assert len(history) == 2 and result.commit_oid == history[0].oid
    assert len(hub.calls("POST", r"/commit/")) == 1
    _assert_published(hub, built)


def test_a_push_that_keeps_failing_removes_the_repo_it_created(built, hub):
    hub.inject("POST", r"/commit/", status=503, times=100)
    with pytest.raises(PublishError) as caught:
        push_folder(built, REPO, retries=3, **FAST)
    message = str(caught.value)
    assert "failed after retries (4 attempts)" in message
    assert "503" in message
    assert f"removed the empty repo {REPO} this push created" in message
    assert SECRET not in message
    assert REPO not in hub.repos
    assert len(hub.calls("POST", r"/commit/")) == 4


def test_a_failed_push_leaves_an_existing_repo_as_it_was(built, hub, tmp_path):
    push_folder(built, REPO)
    before_files, before_history = hub.files(REPO), [c.oid for c in hub.history(REPO)]
    rebuilt = make_built_folder(tmp_path / "rebuilt", seed=5)
    write_card(rebuilt)
    hub.inject("POST", r"/commit/", status=500, times=100)
    with pytest.raises(PublishError, match=r"no commit was made; flan-mini/sample@main is unchanged"):
        push_folder(rebuilt, REPO, retries=2, **FAST)
    assert hub.files(REPO) == before_files
    assert [c.oid for c in hub.history(REPO)] == before_history


def test_a_failed_push_to_a_new_branch_removes_the_branch(built, hub):
    push_folder(built, REPO)
    _change_a_figure(built)  # the new branch starts from main, so make the push differ
    hub.inject("POST", r"/commit/", status=502, times=100)
    with pytest.raises(PublishError, match="removed the branch 'v2' this push created"):
        push_folder(built, REPO, revision="v2", message="to v2", retries=1, **FAST)
    assert set(hub.repos[REPO].branches) == {"main"}


def test_errors_retrying_cannot_fix_are_not_retried(built, hub):
    hub.inject("POST", r"/commit/", status=403, times=100)
    with pytest.raises(PublishError, match="with an error that retrying cannot fix"):
        push_folder(built, REPO, **FAST)
    assert len(hub.calls("POST", r"/commit/")) == 1


def test_a_transient_failure_creating_the_repo_is_retried(built, hub):
    hub.inject("POST", r"^/api/repos/create$", status=502)
    result = push_folder(built, REPO, **FAST)
    assert result.attempts == 2 and result.created_repo
    _assert_published(hub, built)


def test_someone_else_committing_meanwhile_is_not_overwritten(built, hub):
    push_folder(built, REPO)
    hub.inject("POST", r"/commit/", status=412)  # what the Hub answers when parentCommit is not the head
    _change_a_figure(built)
    with pytest.raises(PublishError, match="412"):
        push_folder(built, REPO, **FAST)


def _change_a_figure(folder):
    """Make a push differ without touching the rows: the card's figure gets one more byte."""
    figure = folder / "lengths.png"
    figure.write_bytes(figure.read_bytes() + b"\0")
