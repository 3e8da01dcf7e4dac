"""Where a source's data is: resolving `path` / `data_files` / `split` to concrete local files.

The rules follow `datasets.load_dataset(path, data_files=..., split=...)`:
- `path` is a local file, a local folder, or a Hub dataset id (`org/name`);
- `data_files` is a glob, a list of globs, or a mapping split -> glob(s), relative to `path`;
- without `data_files`, a folder's files are assigned to splits by name (`train-*`, `test/`,
  `valid*`...), and if no name says a split, every file is `train`.
Hub files are fetched with `huggingface_hub.snapshot_download` (only the matching files), so
the same local readers handle both and the commit they came from is recorded.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from ..errors import SourceError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # an fsspec URL: s3://bucket/key, gs://..., memory://...

# Keywords that mark a file as belonging to a split, as `datasets` infers them.
SPLIT_KEYWORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}


@dataclass(frozen=True)
class HubOrigin:
    """Where a Hub input came from, so a task on another machine can fetch the same bytes (sources/localize.py)."""

    repo_id: str
    revision: str  # the commit the driver resolved: every machine reads the same files
    filename: str  # within the repo, POSIX


@dataclass(frozen=True)
class UrlOrigin:
    """Where an input behind an fsspec URL (s3://, gs://, ...) came from; `version` is what the store said of the
    object when the driver resolved it (its ETag or modification time), part of its local copy's name."""

    url: str
    version: str


@dataclass(frozen=True)
class InputFile:
    path: Path  # absolute, local (on the machine that resolved it; a local copy for Hub and URL inputs)
    relative: str  # relative to the source root (a local folder, the Hub snapshot, the URL's folder), POSIX
    display: str  # what reports show: relative to the recipe folder, `hub:org/name/relative`, or the URL
    bytes: int
    origin: HubOrigin | UrlOrigin | None = None  # where a task on another machine fetches it from


@dataclass
class ResolvedInputs:
    kind: str  # "local", "hub" or "url"
    root: Path | None
    files: list[InputFile] = field(default_factory=list)
    repo_id: str | None = None
    revision: str | None = None


def file_fingerprint(file: InputFile, edge: int = 1 << 20) -> int:
    """A 64-bit identity of a file's content: its size and its first and last MiB.

    Ranks hang off this, not off the file's name, so renaming or moving a file keeps its rows' ranks.
    """
    digest = xxhash.xxh3_64(str(file.bytes).encode())
    with open(file.path, "rb") as handle:
        digest.update(handle.read(edge))
        if file.bytes > edge:
            handle.seek(max(edge, file.bytes - edge))
            digest.update(handle.read(edge))
    return digest.intdigest()


def is_url(path: str) -> bool:
    return bool(URL.match(path))


def is_hub_id(path: str, base_dir: Path) -> bool:
    """A Hub id looks like `org/name` and is not an existing local path."""
    return bool(HUB_ID.match(path)) and not (base_dir / path).exists()


def patterns_for_split(data_files, split: str) -> list[str] | None:
    """The glob patterns `data_files` gives for `split` (None when `data_files` is not set)."""
    if data_files is None:
        return None
    if isinstance(data_files, dict):
        if split not in data_files:
            raise SourceError(f"data_files has no entry for split {split!r}; it has {sorted(data_files)}")
        data_files = data_files[split]
    return [data_files] if isinstance(data_files, str) else list(data_files)


# Shards named as the Hub writes them name their split, whatever it is: data/train_sft-00000-of-00003.parquet.
# `datasets` tries this before the keywords, so UltraChat's train_sft and train_gen are two splits, not `train`.
SHARDED_SPLIT = re.compile(r"^data/([^/]+?)-\d{5}-of-\d{5}[^/]*$")


def sharded_split_matches(name: str, split: str) -> bool:
    """A shard's split name answers `split` when equal, or a keyword of it (`valid` for validation)."""
    return name == split or name in SPLIT_KEYWORDS.get(split, ())


def split_of(relative: str) -> str | None:
    """The split a file's path names, if any: `data/train-0000.parquet` -> 'train', `part.0.parquet` -> None.

    A keyword counts when letters do not continue it on either side, so `invalid.json` is not `valid`.
    """
    text = relative.lower()
    for split, keywords in SPLIT_KEYWORDS.items():
        if any(re.search(rf"(?<![a-z]){word}(?![a-z])", text) for word in keywords):
            return split
    return None


def _glob(root: Path, pattern: str) -> list[Path]:
    if os.path.isabs(pattern):
        anchor = Path(pattern).anchor
        return sorted(Path(anchor).glob(pattern[len(anchor):]))
    return sorted(root.glob(pattern))


def match_local(root: Path, patterns: list[str] | None, split: str, extensions: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """Files under `root` for `split`, plus the patterns that matched nothing."""
    if root.is_file():
        if patterns:
            return [], [f"data_files cannot be used when path is a file ({root})"]
        return [root], []
    if patterns is not None:
        found: dict[Path, None] = {}
        unmatched = []
        for pattern in patterns:
            hits = [p for p in _glob(root, pattern) if p.is_file()]
            if not hits:
                unmatched.append(pattern)
            found.update(dict.fromkeys(hits))
        return sorted(found), unmatched
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    chosen, unmatched = choose_by_split(list(files), split, extensions)
    return [files[name] for name in chosen], unmatched


def choose_by_split(relatives: list[str], split: str, extensions: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Without data_files, the files (POSIX paths relative to the source's folder) that make up `split`, as
    `datasets` infers it: Hub-style shards by the split they name, else files whose path names a split, else
    every file for `train`. Hidden files and other extensions are not data. Returns them sorted, plus what was
    looked for when nothing matched."""
    candidates = sorted(
        name for name in relatives
        if name.lower().endswith(extensions) and not any(part.startswith(".") for part in name.split("/"))
    )
    sharded = {name: m.group(1) for name in candidates if (m := SHARDED_SPLIT.match(name))}
    if sharded:
        chosen = [name for name, shard_split in sharded.items() if sharded_split_matches(shard_split, split)]
        splits = ", ".join(sorted(set(sharded.values())))
        return chosen, ([] if chosen else [f"data/{split}-NNNNN-of-NNNNN shards (the shards' splits: {splits})"])
    named = {name: split_of(name) for name in candidates}
    if any(named.values()):
        chosen = [name for name in candidates if named[name] == split]
    else:
        chosen = candidates if split == "train" else []
    return chosen, ([] if chosen else [f"*{{{','.join(extensions)}}} files for split {split!r}"])


def resolve_local(path: str, data_files, split: str, base_dir: Path, extensions: tuple[str, ...]) -> ResolvedInputs:
    root = (base_dir / path).resolve() if not os.path.isabs(path) else Path(path)
    if not root.exists():
        raise SourceError(f"path {path!r} does not exist (looked for {root}) and is not a Hub dataset id (org/name)")
    patterns = patterns_for_split(data_files, split)
    files, unmatched = match_local(root, patterns, split, extensions)
    if unmatched:
        raise SourceError(f"matched no files under {root}: {', '.join(unmatched)}")
    top = root if root.is_dir() else root.parent
    resolved = ResolvedInputs(kind="local", root=top)
    for file in files:
        relative = file.relative_to(top).as_posix() if file.is_relative_to(top) else file.as_posix()
        resolved.files.append(InputFile(file, relative, _display(file, base_dir), file.stat().st_size))
    return resolved


def _display(file: Path, base_dir: Path) -> str:
    try:
        return file.relative_to(base_dir.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(file, base_dir.resolve()).replace(os.sep, "/")


def resolve_hub(repo_id: str, data_files, split: str, revision: str | None, extensions: tuple[str, ...]) -> ResolvedInputs:
    """Download the matching files of a Hub dataset repo (or find them in the local HF cache when offline)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    from ..hub_timeouts import install

    install()  # a Hub that stops answering fails the plan instead of hanging it

    patterns = patterns_for_split(data_files, split)
    allow = patterns if patterns is not None else [f"**/*{ext}" for ext in extensions] + [f"*{ext}" for ext in extensions]
    try:
        folder = Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=allow))
    except RepositoryNotFoundError:
        raise SourceError(f"Hub dataset {repo_id!r} not found (or it is private and no token is set)") from None
    except LocalEntryNotFoundError as exc:
        raise SourceError(f"Hub dataset {repo_id!r} is not in the local cache and the Hub cannot be reached: {exc}") from None
    except (HfHubHTTPError, OSError) as exc:
        raise SourceError(f"cannot fetch Hub dataset {repo_id!r}: {exc}") from None
    files, unmatched = match_local(folder, patterns, split, extensions)
    if unmatched:
        raise SourceError(f"Hub dataset {repo_id!r} has no files matching: {', '.join(unmatched)}")
    resolved = ResolvedInputs(kind="hub", root=folder, repo_id=repo_id, revision=folder.name)
    for file in files:
        relative = file.relative_to(folder).as_posix()
        origin = HubOrigin(repo_id, folder.name, relative)  # a snapshot folder is named by its commit
        resolved.files.append(InputFile(file, relative, f"hub:{repo_id}/{relative}", file.stat().st_size, origin))
    return resolved


def resolve_url(url: str, data_files, split: str, extensions: tuple[str, ...]) -> ResolvedInputs:
    """The files behind an fsspec URL (a file, or a folder with the same data_files / split rules as a local
    one), each copied into this machine's cache (localize.py), as Hub files are downloaded."""
    import fsspec

    from .localize import fetch_url

    try:
        fs, root = fsspec.core.url_to_fs(url)
        root = root.rstrip("/")
        if fs.isfile(root):
            if data_files is not None:
                raise SourceError(f"data_files cannot be used when path is a file ({url})")
            found, unmatched = {posixpath.basename(root): root}, []
        else:
            found, unmatched = _match_url(fs, root, patterns_for_split(data_files, split), split, extensions)
        if unmatched:
            raise SourceError(f"matched no files under {url}: {', '.join(unmatched)}")
        resolved = ResolvedInputs(kind="url", root=None)
        for relative, remote in sorted(found.items()):
            info = fs.info(remote)
            origin = UrlOrigin(fs.unstrip_protocol(remote), _version(info))
            path = fetch_url(origin, int(info["size"]))
            resolved.files.append(InputFile(path, relative, origin.url, int(info["size"]), origin))
    except SourceError:
        raise
    except Exception as exc:  # fsspec back ends raise their own errors (missing credentials, no such bucket, ...)
        raise SourceError(f"cannot read {url}: {type(exc).__name__}: {exc}") from None
    return resolved


def _match_url(fs, root: str, patterns: list[str] | None, split: str, extensions) -> tuple[dict[str, str], list[str]]:
    """{relative name: remote path} under `root`, and the patterns that matched nothing."""
    if patterns is None:
        remote = {posixpath.relpath(p, root): p for p in fs.find(root)}
        chosen, unmatched = choose_by_split(list(remote), split, extensions)
        return {name: remote[name] for name in chosen}, unmatched
    found, unmatched = {}, []
    for pattern in patterns:
        hits = [p for p in fs.glob(posixpath.join(root, pattern)) if fs.isfile(p)]
        if not hits:
            unmatched.append(pattern)
        found.update({posixpath.relpath(p, root): p for p in hits})
    return found, unmatched


def _version(info: dict) -> str:
    """What identifies this version of a remote object: its ETag (S3, GCS, Azure) or else its modification time."""
    for key in ("ETag", "etag", "md5Hash", "LastModified", "last_modified", "mtime", "updated", "created"):
        if info.get(key) is not None:
            return str(info[key]).strip('"')
    return ""
