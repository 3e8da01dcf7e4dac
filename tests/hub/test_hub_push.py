"""push_folder with the real huggingface_hub client against the loopback Hub: content, idempotence, branches."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from flan_mini.card import write_card
from flan_mini.errors import PublishError
from flan_mini.hub import publish_files, push_command, push_folder, verify_folder

from .built import make_built_folder
from .conftest import SECRET

REPO = "flan-mini/sample"


def _local(folder):
    return {p: (folder / p).read_bytes() for p in publish_files(folder, verify_folder(folder))}


def test_first_push_publishes_the_folder_byte_for_byte_in_one_commit(built, hub):
    result = push_folder(built, REPO)
    assert result.changed and result.created_repo and result.attempts == 1
    remote = hub.files(REPO)
    local = _local(built)
    assert {p: remote[p] for p in local} == local
    assert set(remote) == set(local) | {".gitattributes"}
    history = hub.history(REPO)
    assert len(history) == 2 and history[0].oid == result.commit_oid
    assert history[0].summary == "flan-mini: publish sample (135 rows, 2 shards)"
    assert len(hub.calls("POST", r"/commit/")) == 1
    # Shards and figures travel through LFS (sha256-checked by the server), the rest inline.
    assert {r.path.rsplit("/", 1)[1] for r in hub.calls("PUT", "^/lfs-upload/")} == {
        __import__("hashlib").sha256(local[p]).hexdigest() for p in local if p.endswith((".parquet", ".png"))
    }
    assert not hub.repos[REPO].private


def test_pushing_the_same_build_again_changes_nothing(built, hub):
    first = push_folder(built, REPO)
    commits = len(hub.history(REPO))
    second = push_folder(built, REPO)
    assert not second.changed
    assert second.commit_oid == first.commit_oid
    assert sorted(second.unchanged) == sorted(publish_files(built, verify_folder(built)))
    assert len(hub.history(REPO)) == commits
    assert len(hub.calls("POST", r"/commit/")) == 1
    # The first push uploaded 2 shards, 2 figures and the dedup clusters through LFS; the second, nothing.
    assert len(hub.calls("PUT", "^/lfs-upload/")) == 5
    assert "no changes" in second.summary()


def test_a_rebuild_replaces_stale_shards_and_keeps_foreign_files(built, hub, tmp_path):
    push_folder(built, REPO)
    # Someone adds a LICENSE by hand; flan-mini must not delete what it does not own.
    repo = hub.repos[REPO]
    head = repo.commits[repo.branches["main"]]
    from .fake_hub import StoredFile
    extra = hub._new_commit(repo, head.oid, "add licence", {**head.files, "LICENSE": StoredFile(b"terms\n", False)})
    repo.branches["main"] = extra.oid

    rebuilt = make_built_folder(tmp_path / "rebuilt", seed=99)  # one shard, different rows
    write_card(rebuilt, repo_id=REPO)
    result = push_folder(rebuilt, REPO, message="rebuild")
    assert result.changed
    assert result.deleted == ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    remote = hub.files(REPO)
    local = _local(rebuilt)
    assert {p: remote[p] for p in local} == local
    assert set(remote) == set(local) | {".gitattributes", "LICENSE"}
    assert hub.history(REPO)[0].summary == "rebuild"


def test_only_changed_files_are_uploaded(built, hub):
    push_folder(built, REPO)
    uploads_before = len(hub.calls("PUT", "^/lfs-upload/"))
    (built / "manifest.json").write_text((built / "manifest.json").read_text() + "\n")  # only it changes
    write_card(built, repo_id="another/name")  # and the card, which the push renders for REPO again
    result = push_folder(built, REPO)
    assert result.uploaded == ["manifest.json"]
    assert len(hub.calls("PUT", "^/lfs-upload/")) == uploads_before
    assert hub.files(REPO)["manifest.json"] == (built / "manifest.json").read_bytes()
    assert b'load_dataset("flan-mini/sample"' in hub.files(REPO)["README.md"]


def test_push_to_a_new_branch_and_private_repo(built, hub):
    result = push_folder(built, "org/private-one", private=True, revision="v1")
    assert hub.repos["org/private-one"].private
    assert result.revision == "v1"
    assert set(hub.files("org/private-one", "main")) == {".gitattributes"}  # main untouched
    local = _local(built)
    assert {p: hub.files("org/private-one", "v1")[p] for p in local} == local
    again = push_folder(built, "org/private-one", revision="v1")
    assert not again.changed


def test_private_flag_on_an_existing_public_repo_is_reported(built, hub):
    push_folder(built, REPO)
    result = push_folder(built, REPO, private=True)
    assert any("already exists and is public" in note for note in result.notes)
    assert not hub.repos[REPO].private


def test_the_token_is_sent_but_never_logged_or_written(built, hub, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    result = runner.invoke(push_command, [str(built), "--repo-id", REPO])
    assert result.exit_code == 0, result.output
    assert "pushed to flan-mini/sample@main" in result.output
    authenticated = [r for r in hub.requests if r.authorization]
    assert authenticated and all(r.authorization == f"Bearer {SECRET}" for r in authenticated)
    assert SECRET not in result.output
    assert SECRET not in caplog.text
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    for path in built.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    for content in hub.files(REPO).values():
        assert SECRET.encode() not in content
    for request in hub.requests:  # not even in request bodies (only in the Authorization header)
        assert SECRET.encode() not in request.body


def test_no_token_fails_before_any_request(built, hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PublishError, match="no Hugging Face token: set HF_TOKEN"):
        push_folder(built, REPO)
    assert hub.requests == []


def test_an_explicit_token_wins(built, hub):
    push_folder(built, REPO, token="hf_explicit")
    assert {r.authorization for r in hub.requests if r.authorization} == {"Bearer hf_explicit"}


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "org/has space", "", "org/a--b", "org/name.git"])
def test_bad_repo_ids_are_refused(built, hub, repo_id):
    with pytest.raises(PublishError, match="expected ORG/NAME"):
        push_folder(built, repo_id)
    assert hub.requests == []


def test_an_inconsistent_folder_is_never_pushed(built, hub):
    manifest = json.loads((built / "manifest.json").read_text())
    manifest["output"]["shards"][0]["sha256"] = "0" * 64
    (built / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PublishError, match="refusing to push"):
        push_folder(built, REPO)
    assert hub.requests == []
    result = CliRunner().invoke(push_command, [str(built), "--repo-id", REPO])
    assert result.exit_code != 0 and isinstance(result.exception, PublishError)


def test_publish_config_is_the_recipes_publish_section(built, hub):
    from pydantic import ValidationError

    from flan_mini.hub import PublishConfig

    config = PublishConfig.model_validate({"repo_id": "org/from-recipe", "private": True, "message": "built"})
    result = push_folder(built, **config.model_dump())
    assert result.changed and hub.repos["org/from-recipe"].private
    assert hub.history("org/from-recipe")[0].summary == "built"
    for bad in ({"repo_id": "no-slash"}, {"repo_id": "a/b", "privat": True}, {"repo_id": "org/a--b"}):
        with pytest.raises(ValidationError):
            PublishConfig.model_validate(bad)


def test_a_build_with_dedup_publishes_its_clusters_file(sample_build):
    manifest = json.loads((sample_build / "manifest.json").read_text())
    assert "reports/dedup_clusters.parquet" in publish_files(sample_build, manifest)
    verify_folder(sample_build)  # the clusters file matches the manifest's sha256


def test_a_push_removes_stage_reports_left_at_the_top_level_by_older_builds(built, hub):
    push_folder(built, REPO)
    repo = hub.repos[REPO]
    head = repo.commits[repo.branches["main"]]
    from .fake_hub import StoredFile
    legacy = {"dedup_clusters.parquet": StoredFile(b"old", True), "reports/stale.parquet": StoredFile(b"old", True)}
    repo.branches["main"] = hub._new_commit(repo, head.oid, "old layout", {**head.files, **legacy}).oid
    result = push_folder(built, REPO)
    assert result.deleted == ["dedup_clusters.parquet", "reports/stale.parquet"]
    assert "reports/dedup_clusters.parquet" in hub.files(REPO)
    assert "dedup_clusters.parquet" not in hub.files(REPO)
