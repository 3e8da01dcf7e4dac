"""`build`: the list of stages (select -> render -> dedup -> decontaminate -> pick -> shuffle -> write -> reports
-> manifest -> card) run by one loop (stages/contract.py), each stage in its own module under stages/.

The output is assembled in a hidden sibling folder and renamed into place only when complete
(atomic.py), so an interrupted build never leaves a folder that looks finished. A previous build in
the same place is replaced as a whole, and only if flan-mini wrote every file in it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_folder
from .decontam.stage import Decontaminator
from .executor import Executor, LocalExecutor
from .hub import PushResult, push_folder
from .manifest import stage_memory, write_manifest
from .plan import Plan
from .progress import Reporter
from .file_hashes import remembered_sha256
from .sources.files import InputFile
from .sources.localize import local_file
from .stages import pick, removals, render, select, write
from .stages.contract import Context, Stage, run_stages
from .stages.render import make_ids  # noqa: F401  (preview.py's ids are the build's)


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict
    push: PushResult | None = None


def stages_of(plan: Plan) -> list[Stage]:
    """The build's stages in order; dedup and decontamination only when the recipe enables them."""
    recipe = plan.recipe
    return [
        Stage("select", select.select),
        Stage("render", render.render),
        *([Stage("dedup", removals.dedup)] if recipe.dedup is not None and recipe.dedup.enabled else []),
        *([Stage("decontaminate", removals.decontaminate)] if _decontam(plan) else []),
        Stage("pick", pick.pick),
        Stage("shuffle", write.shuffle),
        Stage("write", write.write),
        Stage("reports", write.reports),
        Stage("manifest", write.manifest),
        Stage("card", write.card),
    ]


def _decontam(plan: Plan):
    section = plan.recipe.decontaminate
    return section if section is not None and section.enabled else None


def input_sha256(file: InputFile) -> str:
    """One input's sha256, read where the task runs (a Hub input is fetched there if it is not), once per process
    (the parse cache asks for ShareGPT's too)."""
    return remembered_sha256(local_file(file).path)


def _checksums(executor: Executor, files: list[InputFile]) -> dict:
    return dict(zip((f.path for f in files), executor.map(input_sha256, [(file,) for file in files])))


def build(plan: Plan, *, reporter: Reporter | None = None, push: bool = True, workers: int | None = None,
          executor: Executor | None = None) -> BuildResult:
    """Run the build a plan describes; returns where it went and its manifest.

    `workers` is every parallel stage's width: dedup's signature processes and decontamination's scan
    threads (default: each section's own `workers`); the output does not depend on it. `executor` runs the
    stages' independent tasks (default: this process's threads, executor.py); the output does not depend
    on it either. With a `publish:` section in the recipe (and `push`), the finished folder is pushed to the
    Hub. `reporter` says what the build is doing (default: log lines on stderr).
    """
    started = time.perf_counter()
    reporter = reporter or Reporter("lines")
    own_executor = executor is None
    executor = executor or LocalExecutor(workers)
    recipe = plan.recipe
    # Benchmarks are read and indexed first: a broken benchmark file fails the build before any work.
    decontam = _decontam(plan)
    decontaminator = Decontaminator.load(decontam, plan.loaded.base_dir) if decontam else None
    files = list({f.path: f for s in plan.sources for f in s.files}.values())
    try:
        with atomic_folder(plan.out_dir) as folder, ThreadPoolExecutor(max_workers=1) as background:
            # Input checksums are computed beside the stages (hashlib releases the GIL); the manifest waits for them.
            checksums = background.submit(_checksums, executor, files)
            context = Context(plan, executor, reporter, folder, workers, decontaminator, checksums)
            manifest, run = run_stages(stages_of(plan), plan, context)
            seconds = {**run.seconds, "total": time.perf_counter() - started}
            manifest["stages"] = {name: round(value, 3) for name, value in seconds.items()}
            manifest["memory"] = stage_memory(run)
            write_manifest(folder, manifest)  # again, with the timings (the card does not read them)
    finally:
        if own_executor:
            executor.close()
    result = BuildResult(plan.out_dir, manifest)
    if recipe.publish and push:
        reporter.log(f"flan-mini: pushing to {recipe.publish.repo_id}")
        result.push = push_folder(plan.out_dir, **recipe.publish.model_dump())
    return result
