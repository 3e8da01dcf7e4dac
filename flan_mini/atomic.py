"""Writing an output folder whole or not at all, replacing only what flan-mini wrote, and sweeping old leftovers.

Every command that writes a folder (build, dedup, decontaminate) goes through `atomic_folder`:

    with atomic_folder(out_dir) as tmp:     # .NAME.tmp-PID beside out_dir
        write everything into tmp           # an exception (or a kill) leaves out_dir as it was
    # here out_dir is the finished folder; a previous one was moved to .NAME.old-PID, then deleted

A folder that already exists is replaced only if flan-mini wrote every file in it (`replace_problem`): its
manifest.json (or a dedup / decontamination report) lists exactly the files the folder holds. Anything else
(a folder that merely has a manifest.json beside the user's own files) is refused with the reason.
A process killed mid-way leaves its `.NAME.tmp-PID` / `.NAME.old-PID`; the next command writing into the
same parent removes those whose process no longer runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import FlanMiniError

MANIFEST = "manifest.json"
CARD_FILES = ("README.md", "composition.png", "lengths.png")  # card.py's (not imported: it is heavier)
# Reports of the folder commands: file -> the keys holding {path: ...} entries beside the shards.
REPORTS = {"dedup_report.json": ("clusters",), "decontam_report.json": ("matches_file",)}
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|partial)-(?P<pid>\d+)$")


@contextmanager
def atomic_folder(out_dir: Path) -> Iterator[Path]:
    """A temporary folder beside `out_dir`, renamed to `out_dir` when the block ends without an exception.

    Refuses (FlanMiniError) an `out_dir` holding files flan-mini did not write; removes stale leftovers of
    dead processes in the parent first.
    """
    out_dir = Path(out_dir)
    if problem := replace_problem(out_dir):
        raise FlanMiniError(problem)
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(parent)
    tmp = parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if problem := replace_problem(out_dir):  # checked again: the folder may have changed meanwhile
            raise FlanMiniError(problem)
        _move_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    # Two renames: a kill between them leaves the old folder intact under .NAME.old-PID (swept later).
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def remove_stale(parent: Path) -> list[Path]:
    """Remove `.NAME.tmp-PID` / `.NAME.old-PID` / `.NAME.partial-PID` folders in `parent` whose process is gone."""
    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match is None or not entry.is_dir() or entry.is_symlink() or _alive(int(match["pid"])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or a pid we cannot ask about): leave it alone
    return True


def replace_problem(folder: Path) -> str | None:
    """Why `folder` may not be (re)written, or None: it does not exist, is empty, or flan-mini wrote every file."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_symlink() or not folder.is_dir():
        return f"{folder} exists and is not a folder"
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir() or p.is_symlink()}
    if not present:
        return None
    written = written_files(folder)
    if written is None:
        return (f"{folder} exists and is not a flan-mini dataset folder (no flan-mini {MANIFEST} or report listing "
                "its files); choose another folder, or empty it yourself")
    extra = sorted(present - written)
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        return (f"{folder} holds files flan-mini did not write ({shown}); replacing the folder would delete them. "
                "Move them away or choose another folder")
    return None


def written_files(folder: Path) -> set[str] | None:
    """The files flan-mini wrote into `folder` by its manifest (or report), or None when it has neither."""
    manifest = _json(folder / MANIFEST)
    if isinstance(manifest, dict) and (manifest.get("created_by") or {}).get("tool") == "flan-mini":
        output = manifest.get("output") or {}
        paths = {MANIFEST, *CARD_FILES, *(s.get("path") for s in output.get("shards") or [] if isinstance(s, dict))}
        for stage, key in (("dedup", "clusters_file"), ("decontamination", "matches_file")):
            entry = (manifest.get(stage) or {}).get(key) if isinstance(manifest.get(stage), dict) else None
            if isinstance(entry, dict):
                paths.add(entry.get("path"))
        return {p for p in paths if isinstance(p, str)}
    for name, keys in REPORTS.items():
        report = _json(folder / name)
        if isinstance(report, dict) and isinstance(report.get("splits"), dict):
            paths = {name}
            for split in report["splits"].values():
                paths.update(s.get("path") for s in (split or {}).get("shards") or [] if isinstance(s, dict))
            paths.update((report.get(key) or {}).get("path") for key in keys if isinstance(report.get(key), dict))
            return {p for p in paths if isinstance(p, str)}
    return None


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_apart(out_dir: Path, inputs: dict[str, Path]) -> list[str]:
    """Problems when the output folder lies inside an input (a later build would read its own output) or an
    input lies inside the output folder (replacing it would delete the input). `inputs`: label -> path."""
    out = Path(out_dir).resolve()
    problems = []
    for label, path in inputs.items():
        path = Path(path).resolve()
        if out == path or out.is_relative_to(path):
            problems.append(f"the output folder {out} is inside {label} ({path}); a later build would read its own output. "
                            "Choose an output folder outside the source's files")
        elif path.is_relative_to(out):
            problems.append(f"{label} ({path}) is inside the output folder {out}, which a build replaces whole. "
                            "Choose an output folder that holds no input")
    return problems
