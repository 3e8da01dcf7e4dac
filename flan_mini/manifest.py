"""manifest.json: everything needed to reproduce and audit a built dataset (format_version 1), and the check
that a folder's shards are exactly the ones its manifest lists."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path, PurePosixPath

from . import __version__
from .errors import FlanMiniError

DATA_DIR = "data"  # flan_mini.shards' (imported lazily there: this module stays light for the CLI)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
KEY_PACKAGES = ("pyarrow", "polars", "numpy", "xxhash", "jinja2", "pydantic", "datasketch", "huggingface_hub", "datasets")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def created_by() -> dict:
    return {"tool": "flan-mini", "version": __version__, "python": platform.python_version(), "packages": package_versions()}


def command_line() -> str:
    args = sys.argv[1:] if sys.argv and sys.argv[0].endswith(("flan-mini", "__main__.py", "cli.py")) else []
    return shlex.join(["flan-mini", *args]) if args else "flan-mini"


# Options whose value is where the build writes: the folder is the published dataset itself, its name is noise.
_OUTPUT_OPTIONS = ("--out",)


def portable_command(command: str, base: Path | None = None) -> str:
    """The build command as published: no `--out FOLDER`, absolute paths made relative to ``base`` (the recipe's
    folder). e.g. `flan-mini build /home/me/r/mix.yaml --out /tmp/x` -> `flan-mini build mix.yaml`."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word in _OUTPUT_OPTIONS:
            skip = True
            continue
        if word.startswith(tuple(f"{o}=" for o in _OUTPUT_OPTIONS)):
            continue
        kept.append(_relative(word, base))
    return shlex.join(kept)


def _relative(value: str, base: Path | None) -> str:
    if "\n" in value or not os.path.isabs(value):
        return value
    return Path(os.path.relpath(value, base)).as_posix() if base is not None else Path(value).name


_TEXT_KEYS = frozenset({"excerpt", "span", "description", "note", "message"})


def portable(manifest: dict) -> dict:
    """The manifest with no absolute path of the building machine: every absolute path becomes relative to the
    recipe's folder (where a recipe's own relative paths start), the recipe itself is named by its file name and
    the command loses its `--out` folder. Applied before the manifest is written, so it is what gets published."""
    recipe_path = (manifest.get("recipe") or {}).get("path")
    base = Path(recipe_path).parent if recipe_path and os.path.isabs(recipe_path) else None

    def walk(value, key=None):
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if key == "command" and isinstance(value, str):
            return portable_command(value, base)
        if key in _TEXT_KEYS:  # row excerpts and prose are data, even when they look like a path
            return value
        return _relative(value, base) if isinstance(value, str) else value

    return walk(manifest)


# ------------------------------------------------------------------------------------------- building


def _value_counts(array) -> dict[str, int]:
    import pyarrow.compute as pc

    counts = pc.value_counts(array).to_pylist()
    return {str(item["values"]): item["counts"] for item in sorted(counts, key=lambda i: (str(i["values"])))}


def source_entry(record, input_digests: dict) -> dict:
    """One source's entry: where it came from, what selection saw, what each stage removed, what was written.

    `record` is a stages.write.SourceRecord (plan, counts, quotas, render_stats, selected, removed, final).
    """
    import pyarrow as pa

    from .task_distribution import task_distribution

    config, adapter, counts, final = record.plan.config, record.plan.adapter, record.counts, record.final
    inputs = record.plan.inputs
    entry = {
        "name": config.name,
        "adapter": config.adapter,
        "label": config.label,
        "license": config.license or adapter.license,
        "origin": {
            "kind": inputs.kind,
            "path": config.path,
            "repo_id": inputs.repo_id,
            "revision": inputs.revision,
            "split": config.split,
            "data_files": config.data_files,
        },
        "inputs": [{"path": f.display, "bytes": f.bytes, "sha256": input_digests.get(f.path)} for f in record.plan.files],
        "files_skipped": record.plan.skipped,
        "requested": config.n,
        "rows_read": counts.rows_read,
        "rows_filtered": counts.rows_filtered,
        "rows_examined": counts.rows_examined,
        "rejected": dict(sorted(counts.rejected.items())),
        "reject_examples": counts.reject_examples,
        "usable": counts.matched,
        "selected": record.selected,
        "removed": dict(record.removed),
        "written": final.num_rows,
        "shortfall": config.n - final.num_rows,
        "templates": _value_counts(final.column("template_id")),
        "template_types": _value_counts(final.column("template_type")),
        "num_shots": _value_counts(final.column("num_shots").cast(pa.string()).fill_null("unknown")),
        "settings": adapter.describe(),
    }
    if record.render_stats:
        # How rendering went over all candidates, with the zero-/few-shot and task counts of the rows written.
        types = entry["template_types"]
        written = {"zero_shot": types.get("zs", 0), "few_shot": types.get("fs", 0)}
        written["few_shot_share_written"] = round(written["few_shot"] / max(final.num_rows, 1), 6)
        if share := record.render_stats.get("few_shot_share"):  # realised = written; the candidates' share beside it
            written["few_shot_share"] = {**share, "candidates": share["realised"], "realised": written["few_shot_share_written"]}
        if "tasks" in record.render_stats:
            written["tasks"] = _value_counts(final.column("_task"))
        entry["render"] = {**record.render_stats, "candidates": record.selected, **written}
    if adapter_stats := counts.adapter_summary():
        entry["adapter_stats"] = adapter_stats
    if counts.tallied:  # FLAN: the tasks as read and as written, and how far apart
        entry["task_distribution"] = task_distribution(counts.tallied, final.column("source"))
    if len(record.quotas) > 1:
        entry["group_quotas"] = dict(sorted(record.quotas.items()))
    return entry


def build_manifest(plan, written, input_digests: dict, executor: dict) -> dict:
    """The manifest of a build: `plan` (plan.Plan), `written` (stages.write.Written: the shards, each source's
    record and the blocks of the files beside the shards), the inputs' sha256 by path, and
    `executor.describe()` (where it ran; not part of the output's identity, so the card does not show it).
    Stage timings and memory (`stage_memory`) are added by the build once every stage has run."""
    recipe, shards = plan.recipe, written.shards
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": recipe.name,
        "description": recipe.description,
        "created_by": created_by(),
        "command": command_line(),
        "recipe": {"path": str(plan.loaded.path), "sha256": plan.loaded.sha256, "resolved": plan.loaded.resolved()},
        "seed": plan.seed,
        "output": {
            "format": recipe.output.format,
            "split": "train",
            "rows": sum(shard.rows for shard in shards),
            "bytes": sum(s.bytes for s in shards),
            "columns": [f"{f.name}: {f.type}" for f in written.schema],
            "shards": [s.to_dict() for s in shards],
        },
        "sources": [source_entry(record, input_digests) for record in written.sources],
        "dedup": written.blocks.get("dedup"),
        "decontamination": written.blocks.get("decontamination"),
        "stages": {},
    }
    if "exports" in written.blocks:
        manifest["exports"] = written.blocks["exports"]
    manifest["executor"] = executor
    return manifest


def stage_memory(run) -> dict:
    """The manifest's `memory` block from a `StagesRun`: the build process's peak resident memory per stage, MiB."""
    peaks = {name: round(value / 2**20, 1) for name, value in run.peak_bytes.items()}
    return {
        "peak_rss_mib": {**peaks, "build": max(peaks.values(), default=0.0)},
        "measured": ("this process's largest resident size while each stage ran: exact (the kernel's high-water "
                     "mark) for a stage that set a new peak, else sampled every 20 ms" if run.exact_memory else
                     "this process's peak resident memory so far as each stage ends (no /proc here)")
        + "; worker processes (dedup's, Ray's) are not included",
    }


def write_manifest(folder: Path, manifest: dict) -> Path:
    path = Path(folder) / MANIFEST
    text = json.dumps(portable(manifest), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> dict:
    """manifest.json of a built folder, with the keys every stage relies on checked."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FlanMiniError(
            f"{folder}: no {MANIFEST}. A build writes it last, so this folder is not a finished flan-mini "
            "build; run `flan-mini build <recipe>` again."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise FlanMiniError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != 1:
        found = manifest.get("format_version") if isinstance(manifest, dict) else type(manifest).__name__
        raise FlanMiniError(f"{path}: format_version must be 1, found {found!r}")
    problems = [f"missing key {key!r}" for key in ("name", "recipe", "output", "sources") if key not in manifest]
    shards = (manifest.get("output") or {}).get("shards")
    if not isinstance(shards, list):
        problems.append("output.shards must be a list")
    else:
        for i, shard in enumerate(shards):
            missing = [k for k in ("path", "rows", "bytes", "sha256") if k not in shard]
            if missing:
                problems.append(f"output.shards[{i}] lacks {missing}")
    if problems:
        raise FlanMiniError(f"{path}: " + "; ".join(problems))
    return manifest


def _safe_relative(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return bool(parts) and not PurePosixPath(rel).is_absolute() and ".." not in parts and parts[0] == DATA_DIR


# Files a build stage writes beside the shards, as the manifest lists them: (stage block, key). Push uploads them.
STAGE_FILES = (("dedup", "clusters_file"), ("decontamination", "matches_file"), ("exports", "fastchat_json"))


def stage_files(manifest: dict) -> list[tuple[str, dict]]:
    """(stage, {path, rows, bytes, sha256}) of each stage file the manifest lists (dedup clusters, decontamination
    matches)."""
    return [(stage, (manifest.get(stage) or {})[key]) for stage, key in STAGE_FILES if (manifest.get(stage) or {}).get(key)]


def check_folder(folder: Path) -> tuple[dict, list[Path]]:
    """The manifest and its shard paths, after checking the shards are exactly those it lists.

    Every listed shard must exist with the listed size, sha256 and row count; no other file may sit under data/.
    Raises FlanMiniError listing every mismatch.
    """
    import pyarrow.parquet as pq

    from .shards import file_sha256

    folder = Path(folder)
    manifest = read_manifest(folder)
    problems, paths, listed = [], [], set()
    for shard in manifest["output"]["shards"]:
        rel = shard["path"]
        listed.add(rel)
        path = folder / rel
        if not _safe_relative(rel):
            problems.append(f"{rel}: shard paths must be relative and under {DATA_DIR}/")
        elif not path.is_file():
            problems.append(f"{rel}: listed in {MANIFEST} but missing")
        elif path.stat().st_size != shard["bytes"]:
            problems.append(f"{rel}: {path.stat().st_size} bytes on disk, {MANIFEST} says {shard['bytes']}")
        elif (digest := file_sha256(path)) != shard["sha256"]:
            problems.append(f"{rel}: sha256 {digest[:12]}... differs from {MANIFEST}'s {shard['sha256'][:12]}...")
        elif (rows := pq.ParquetFile(path).metadata.num_rows) != shard["rows"]:
            problems.append(f"{rel}: {rows} rows, {MANIFEST} says {shard['rows']}")
        else:
            paths.append(path)
    data = folder / DATA_DIR
    for path in sorted(data.rglob("*")) if data.is_dir() else []:
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel not in listed:
            problems.append(f"{rel}: extra file, not listed in {MANIFEST}")
    for stage, listed_file in stage_files(manifest):  # checked like a shard
        path = folder / listed_file["path"]
        if not path.is_file():
            problems.append(f"{listed_file['path']}: listed in {MANIFEST} ({stage}) but missing")
        elif file_sha256(path) != listed_file["sha256"]:
            problems.append(f"{listed_file['path']}: sha256 differs from {MANIFEST}'s")
    total = sum(int(s["rows"]) for s in manifest["output"]["shards"])
    if not problems and total != manifest["output"].get("rows"):
        problems.append(f"output.rows is {manifest['output'].get('rows')} but the shards list {total} rows")
    if problems:
        raise FlanMiniError(
            f"{folder}: the shards do not match {MANIFEST}:\n  " + "\n  ".join(problems)
            + "\nRebuild the folder with `flan-mini build` instead of editing it."
        )
    return manifest, paths
