"""Publishing a built folder to the Hugging Face Hub: check it is consistent, then one idempotent commit."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
from .card import CARD_FILE, COMPOSITION_PNG, LENGTHS_PNG
from .errors import FlanMiniError, PublishError
from .manifest import MANIFEST
from .publish_config import PublishConfig, check_repo_id  # noqa: F401 (PublishConfig: where callers found it)

log = logging.getLogger(__name__)

CARD_FIGURES = (COMPOSITION_PNG, LENGTHS_PNG)
# Remote files a push owns: anything under data/ and reports/ plus these. A stale shard left on the Hub would be
# read by the card's `data/train-*` config, so those are deleted; anything else in the repo (a LICENSE,
# .gitattributes) stays. The stage reports were once written at the top level: a re-push removes those copies.
CLUSTERS_FILE = "dedup_clusters.parquet"  # flan_mini.dedup.report's; named here to keep imports light
MATCHES_FILE = "decontam_matches.parquet"  # flan_mini.decontam.report's
FASTCHAT_FILE = "flan_mini.json"  # flan_mini.export_fastchat's default name
MANAGED_TOP_LEVEL = (MANIFEST, CARD_FILE, *CARD_FIGURES, CLUSTERS_FILE, MATCHES_FILE, FASTCHAT_FILE)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_WAIT = 60.0


# ---------------------------------------------------------------------------------------------- folder checks


def verify_folder(folder: Path) -> dict:
    """Refuse (PublishError) a folder whose manifest is missing or does not match its shards, or whose card is
    missing or describes another build. Returns the manifest."""
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    from .manifest import check_folder

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
    from .manifest import stage_files

    files = [s["path"] for s in manifest["output"]["shards"]] + [MANIFEST, CARD_FILE]
    files += [listed["path"] for _, listed in stage_files(manifest)]
    return files + [name for name in CARD_FIGURES if (Path(folder) / name).is_file()]


# ---------------------------------------------------------------------------------------------- pushing


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


def _delete_patterns() -> list[str]:
    """Remote paths a push owns, as huggingface_hub patterns: a stale file there is deleted, anything else (a
    LICENSE, .gitattributes) stays. Stale shards must go: the card's `data/train-*` config would read them."""
    from .shards import DATA_DIR, REPORTS_DIR

    return [f"{DATA_DIR}/*", f"{REPORTS_DIR}/*", *MANAGED_TOP_LEVEL]


def _stale(remote: list[str], local: list[str]) -> list[str]:
    from huggingface_hub.utils import filter_repo_objects

    return sorted(p for p in filter_repo_objects(remote, allow_patterns=_delete_patterns()) if p not in set(local))


def _changed(additions) -> list[str]:
    """Paths the Hub did not already hold. huggingface_hub keeps each file's preupload answer (the remote oid)
    on its operation; a file it has not asked about yet counts as changed."""
    return [op.path_in_repo for op in additions
            if getattr(op, "_remote_oid", None) is None or op._remote_oid != op._local_oid]


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

    from . import __version__, hub_timeouts
    from .card import refresh_card

    folder = Path(folder)
    check_repo_id(repo_id)
    if revision is not None and re.fullmatch(r"[0-9a-f]{40}", revision):
        raise PublishError(f"revision {revision!r} is a commit id; push to a branch name instead")
    manifest = verify_folder(folder)
    if token is None and get_token() is None:
        raise PublishError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a write token is needed)")
    hub_timeouts.install()
    # The card's loading snippet must name the repo it is published to, whatever the build wrote.
    refresh_card(folder, repo_id=repo_id, manifest=manifest)  # checked just above: not hashed again
    api = HfApi(endpoint=endpoint, token=token, library_name="flan-mini", library_version=__version__)
    branch = revision or "main"
    local = publish_files(folder, manifest)
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
        delete = _stale(api.list_repo_files(repo_id, repo_type="dataset", revision=branch), local)
        additions = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(folder / p)) for p in local]
        state["commit_sent"] = True
        if state["first_plan"] is None:
            state["first_plan"] = (additions, delete)
        # huggingface_hub asks the Hub for each file's remote oid (preupload), leaves out files that did not
        # change, and makes no commit at all when nothing differs: it then answers with the branch head.
        info = api.create_commit(
            repo_id, additions + [CommitOperationDelete(path_in_repo=p) for p in delete], repo_type="dataset",
            revision=branch, commit_message=summary, commit_description=description,
            parent_commit=head,  # fails if someone else committed meanwhile
        )
        upload = _changed(additions)
        if info.oid == head:
            # No commit now. If an earlier attempt's commit landed but its answer was lost, that commit is ours.
            changed = head != state["initial_head"]
            first_additions, first_delete = state["first_plan"]
            upload, delete = (_changed(first_additions), first_delete) if changed else ([], [])
            return PushResult(repo_id, branch, head, info.commit_url, changed, upload, delete,
                              [p for p in local if p not in upload])
        log.info("pushed %d files, deleted %d, kept %d unchanged", len(upload), len(delete), len(local) - len(upload))
        return PushResult(repo_id, branch, info.oid, info.commit_url, True, upload, delete,
                          [p for p in local if p not in upload])

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
