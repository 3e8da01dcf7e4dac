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
import re
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from ..errors import SourceError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

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
class InputFile:
    path: Path  # absolute, local (on the machine that resolved it)
    relative: str  # relative to the source root (a local folder or the Hub snapshot), POSIX
    display: str  # what reports show: relative to the recipe folder, or `hub:org/name/relative`
    bytes: int
    hub: HubOrigin | None = None  # set for Hub inputs


@dataclass
class ResolvedInputs:
    kind: str  # "local" or "hub"
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
    candidates = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.name.lower().endswith(extensions) and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    sharded = {p: m.group(1) for p in candidates if (m := SHARDED_SPLIT.match(p.relative_to(root).as_posix()))}
    if sharded:
        chosen = [p for p, name in sharded.items() if sharded_split_matches(name, split)]
        splits = ", ".join(sorted(set(sharded.values())))
        return chosen, ([] if chosen else [f"data/{split}-NNNNN-of-NNNNN shards (the shards' splits: {splits})"])
    named = {p: split_of(p.relative_to(root).as_posix()) for p in candidates}
    if any(named.values()):
        chosen = [p for p in candidates if named[p] == split]
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
