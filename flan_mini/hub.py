"""Publishing a built folder to the Hugging Face Hub: check it is consistent, then one idempotent commit."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
from pydantic import BaseModel, ConfigDict, Field

from .card import CARD_FILE, COMPOSITION_PNG, LENGTHS_PNG
from .errors import FlanMiniError, PublishError
from .manifest import MANIFEST, check_folder, stage_files
from .shards import DATA_DIR, file_sha256

log = logging.getLogger(__name__)

CARD_FIGURES = (COMPOSITION_PNG, LENGTHS_PNG)
# Remote files a push owns: anything under data/ plus these. A stale shard left on the Hub would be read by the
# card's `data/train-*` config, so those are deleted; anything else in the repo (a LICENSE, .gitattributes) stays.
CLUSTERS_FILE = "dedup_clusters.parquet"  # flan_mini.dedup.report's; named here to keep imports light
MATCHES_FILE = "decontam_matches.parquet"  # flan_mini.decontam.report's
FASTCHAT_FILE = "flan_mini.json"  # flan_mini.export_fastchat's default name
MANAGED_TOP_LEVEL = (MANIFEST, CARD_FILE, *CARD_FIGURES, CLUSTERS_FILE, MATCHES_FILE, FASTCHAT_FILE)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_WAIT = 60.0


# ---------------------------------------------------------------------------------------------- folder checks


def verify_folder(folder: Path) -> dict:
    """Refuse (PublishError) a folder whose manifest is missing or does not match its shards, or whose card is
    missing or describes another build. Returns the manifest."""
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    try:
        manifest, _ = check_folder(folder)
    except FlanMiniError as err:
        raise PublishError(f"refusing to push: {err}") from None
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise PublishError(f"refusing to push {folder}: no {CARD_FILE} data card; run `flan-mini card {folder}`")
    try:
        card = DatasetCard.load(card_path)
    except Exception as err:  # noqa: BLE001 - yaml and huggingface_hub raise several types for a broken header
        raise PublishError(f"refusing to push {folder}: {CARD_FILE} has no readable YAML header ({err}); "
                           f"regenerate it with `flan-mini card {folder}`") from None
    splits = ((card.data.to_dict().get("dataset_info") or {}).get("splits")) or []
    described = sum(int(s.get("num_examples", 0)) for s in splits)
    if described != manifest["output"]["rows"]:
        raise PublishError(
            f"refusing to push {folder}: {CARD_FILE} describes {described} rows but {MANIFEST} lists "
            f"{manifest['output']['rows']}; regenerate the card with `flan-mini card {folder}`"
        )
    for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", card.text):
        if "://" not in image and not (folder / image).is_file():
            raise PublishError(f"refusing to push {folder}: {CARD_FILE} shows {image}, which is missing")
    return manifest


def publish_files(folder: Path, manifest: dict) -> list[str]:
    """Repo paths a push uploads: the shards, the manifest, the card, the card's figures that exist, and the
    dedup clusters and decontamination matches when the build had those stages."""
    files = [s["path"] for s in manifest["output"]["shards"]] + [MANIFEST, CARD_FILE]
    files += [listed["path"] for _, listed in stage_files(manifest)]
    return files + [name for name in CARD_FIGURES if (Path(folder) / name).is_file()]


# ---------------------------------------------------------------------------------------------- pushing


class PublishConfig(BaseModel):
    """The recipe's optional `publish:` section: `build` pushes the finished folder there."""

    model_config = ConfigDict(extra="forbid")
    repo_id: str = Field(pattern=REPO_ID.pattern, description="Hub dataset repo, ORG/NAME; created if missing.")
    private: bool = Field(False, description="Create the repo as private (ignored if it exists).")
    revision: str | None = Field(None, description="Branch to commit to; created from main if missing.")
    message: str | None = Field(None, description="Commit message; default names the build.")


@dataclass
class PushResult:
    repo_id: str
    revision: str
    commit_oid: str | None
    commit_url: str | None
    changed: bool  # False: the Hub already held exactly these files, no commit was made
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    created_repo: bool = False
    attempts: int = 1
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        where = f"{self.repo_id}@{self.revision}"
        if not self.changed:
            return f"no changes: {where} already matches ({len(self.unchanged)} files, commit {self.commit_oid})"
        return (f"pushed to {where}: {len(self.uploaded)} uploaded, {len(self.deleted)} deleted, "
                f"{len(self.unchanged)} unchanged; commit {self.commit_url or self.commit_oid}")


@dataclass(frozen=True)
class _Local:
    path: Path
    size: int
    sha256: str


def _local_files(folder: Path, manifest: dict) -> dict[str, _Local]:
    # Shards' sha256 was just verified against the manifest; only the small files are hashed here.
    known = {s["path"]: s["sha256"] for s in manifest["output"]["shards"]}
    return {
        rel: _Local(folder / rel, (folder / rel).stat().st_size, known.get(rel) or file_sha256(folder / rel))
        for rel in publish_files(folder, manifest)
    }


def _git_blob_sha1(path: Path, size: int) -> str:
    """The id git gives a file's content: sha1 of "blob <size>\\0" + bytes (what the Hub reports for non-LFS files)."""
    digest = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _same(local: _Local, remote) -> bool:
    if remote.size != local.size:
        return False
    if remote.lfs is not None:  # LFS (and Xet) files are reported with the sha256 of their content
        return remote.lfs.sha256 == local.sha256
    return remote.blob_id == _git_blob_sha1(local.path, local.size)


def _plan(local: dict[str, _Local], remote: dict) -> tuple[list[str], list[str], list[str]]:
    """(upload, delete, unchanged) repo paths that turn the remote tree into the local folder."""
    upload = [p for p, f in local.items() if p not in remote or not _same(f, remote[p])]
    unchanged = [p for p in local if p not in upload]
    delete = sorted(
        p for p in remote
        if p not in local and (p.startswith(f"{DATA_DIR}/") or p in MANAGED_TOP_LEVEL)
    )
    return upload, delete, unchanged


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Network-failure exception types of the HTTP stack huggingface_hub runs on (httpx2 in 2.x, httpx, requests)."""
    found: list[type[BaseException]] = []
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                         ("requests", "ConnectionError"), ("requests", "Timeout")):
        try:
            found.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _is_transient(error: BaseException) -> bool:
    """HTTP 408/429/5xx or a network failure (refused, dropped, timed out), anywhere in the cause chain."""
    from huggingface_hub.errors import HfHubHTTPError

    network = _transport_errors()
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, HfHubHTTPError) and error.response is not None:
            return error.response.status_code in TRANSIENT_STATUS
        if network and isinstance(error, network):
            return True
        error = error.__cause__ or error.__context__
    return False


def _retry_after(error: BaseException) -> float | None:
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(float(value), MAX_WAIT) if value is not None else None
    except ValueError:
        return None


def _describe(error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def push_folder(
    folder: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    token: str | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    endpoint: str | None = None,
) -> PushResult:
    """Publish a built folder to the dataset repo ``repo_id`` in one commit.

    The folder is checked first (``verify_folder``). The repo (and branch ``revision``) is created if missing.
    Files equal to the remote ones are skipped, stale remote shards deleted; if nothing differs, no commit is made.
    Transient failures (HTTP 408/429/5xx, dropped connections) restart the attempt after an exponential backoff
    (``backoff``, doubling, honouring Retry-After), up to ``retries`` times; the Hub client also retries its own
    upload requests. A commit is atomic, so a push that fails leaves the repo as it was; a repo or branch this push
    created is removed again. The token comes from ``token``, else HF_TOKEN or the saved login; it is never logged.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
    from huggingface_hub.errors import RepositoryNotFoundError
    from huggingface_hub.hf_api import RepoFile

    from . import __version__

    folder = Path(folder)
    if not REPO_ID.match(repo_id or ""):
        raise PublishError(f"repo id {repo_id!r}: expected ORG/NAME (letters, digits, '.', '_', '-')")
    if revision is not None and re.fullmatch(r"[0-9a-f]{40}", revision):
        raise PublishError(f"revision {revision!r} is a commit id; push to a branch name instead")
    manifest = verify_folder(folder)
    if token is None and get_token() is None:
        raise PublishError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a write token is needed)")
    api = HfApi(endpoint=endpoint, token=token, library_name="flan-mini", library_version=__version__)
    branch = revision or "main"
    local = _local_files(folder, manifest)
    rows, shards = manifest["output"]["rows"], len(manifest["output"]["shards"])
    summary = message or f"flan-mini: publish {manifest['name']} ({rows:,} rows, {shards} shards)"
    description = (f"Built by flan-mini {(manifest.get('created_by') or {}).get('version', '?')} with "
                   f"`{manifest.get('command', '')}` (recipe sha256 {manifest['recipe'].get('sha256')}, "
                   f"seed {manifest.get('seed')}).")
    state = {"created_repo": False, "created_branch": False, "initial_head": None, "first_plan": None,
             "commit_sent": False}
    notes: list[str] = []

    def attempt() -> PushResult:
        if not state["created_repo"] and state["initial_head"] is None:
            try:
                info = api.repo_info(repo_id, repo_type="dataset")
                if private and info.private is False and not notes:
                    notes.append(f"{repo_id} already exists and is public; --private applies only to new repos")
            except RepositoryNotFoundError:
                api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=False)
                state["created_repo"] = True
        if branch != "main" and not state["created_branch"]:
            names = {ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").branches}
            if branch not in names:
                api.create_branch(repo_id, repo_type="dataset", branch=branch, exist_ok=True)
                state["created_branch"] = True
        head = api.repo_info(repo_id, repo_type="dataset", revision=branch).sha
        if state["initial_head"] is None:
            state["initial_head"] = head
        remote = {
            entry.path: entry
            for entry in api.list_repo_tree(repo_id, repo_type="dataset", revision=branch, recursive=True)
            if isinstance(entry, RepoFile)
        }
        upload, delete, unchanged = _plan(local, remote)
        if state["first_plan"] is None:
            state["first_plan"] = (upload, delete)
        if not upload and not delete:
            # Nothing differs. If an earlier attempt's commit landed but its answer was lost, that commit is ours.
            first_upload, first_delete = state["first_plan"]
            changed = bool(first_upload or first_delete)
            return PushResult(repo_id, branch, head, f"{api.endpoint}/datasets/{repo_id}/commit/{head}", changed,
                              first_upload, first_delete, [p for p in local if p not in first_upload])
        operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local[p].path)) for p in upload]
        operations += [CommitOperationDelete(path_in_repo=p) for p in delete]
        log.info("pushing %d files, deleting %d, keeping %d unchanged", len(upload), len(delete), len(unchanged))
        state["commit_sent"] = True
        info = api.create_commit(
            repo_id, operations, repo_type="dataset", revision=branch, commit_message=summary,
            commit_description=description, parent_commit=head,  # fails if someone else committed meanwhile
        )
        return PushResult(repo_id, branch, info.oid, info.commit_url, True, upload, delete, unchanged)

    for number in range(1, retries + 2):
        try:
            result = attempt()
            result.attempts, result.created_repo, result.notes = number, state["created_repo"], notes
            return result
        except Exception as error:  # noqa: BLE001 - classified below; non-transient errors end the push
            if _is_transient(error) and number <= retries:
                wait = _retry_after(error)
                wait = min(backoff * 2 ** (number - 1), MAX_WAIT) if wait is None else wait
                log.warning("push attempt %d/%d failed (%s); retrying in %.1fs",
                            number, retries + 1, _describe(error), wait)
                time.sleep(wait)
                continue
            raise PublishError(_failure(api, repo_id, branch, state, error, number)) from error
    raise AssertionError("unreachable")


def _failure(api, repo_id: str, branch: str, state: dict, error: BaseException, attempts: int) -> str:
    """Roll back what this push created (only if none of its commits landed) and say what state the Hub is in."""
    from huggingface_hub.errors import RepositoryNotFoundError

    head, missing = None, False
    try:
        head = api.repo_info(repo_id, repo_type="dataset", revision=branch).sha
    except RepositoryNotFoundError:
        missing = True
    except Exception:  # noqa: BLE001 - the Hub may be unreachable; report what we know
        pass
    # Untouched: no commit was ever sent, or the branch still points where it did before the first one.
    untouched = not state["commit_sent"] or (head is not None and head == state["initial_head"])
    if missing and not state["created_repo"]:
        note = f"nothing was created: {repo_id} does not exist"
    elif untouched:
        note = f"no commit was made; {repo_id}@{branch} is unchanged" + (f" (head {head[:12]})" if head else "")
        try:
            if state["created_branch"]:
                api.delete_branch(repo_id, repo_type="dataset", branch=branch)
                note += f"; removed the branch {branch!r} this push created"
            elif state["created_repo"]:
                api.delete_repo(repo_id, repo_type="dataset")
                note = f"no commit was made; removed the empty repo {repo_id} this push created"
        except Exception as cleanup:  # noqa: BLE001
            note += f" (could not remove what this push created: {_describe(cleanup)})"
    else:
        note = f"could not confirm the state of {repo_id}@{branch} (head {head or 'unknown'}); check it on the Hub"
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        note += f"; check that your token can write to {repo_id.split('/')[0]}"
    kind = "after retries" if _is_transient(error) else "with an error that retrying cannot fix"
    return f"push of {repo_id}@{branch} failed {kind} ({attempts} attempt{'s' * (attempts > 1)}): " \
           f"{_describe(error)}. {note}."


@click.command("push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo-id", required=True, metavar="ORG/NAME", help="Hub dataset repo; created if missing.")
@click.option("--private", is_flag=True, help="Create the repo as private (an existing repo keeps its visibility).")
@click.option("--revision", default=None, metavar="BRANCH", help="Branch to commit to (default main).")
@click.option("--message", default=None, help="Commit message.")
@click.option("--retries", default=5, show_default=True, type=click.IntRange(0, 20),
              help="Retries after transient failures (HTTP 429/5xx, dropped connections).")
def push_command(folder: Path, repo_id: str, private: bool, revision: str | None, message: str | None,
                 retries: int) -> None:
    """Publish a built dataset FOLDER to the Hugging Face Hub in one commit.

    The token is read from HF_TOKEN or your saved login (`hf auth login`); it is never written or logged.
    """
    result = push_folder(folder, repo_id, private=private, revision=revision, message=message, retries=retries)
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(result.summary())
