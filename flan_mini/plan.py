"""The resolved plan of a build: every check that can be made before reading data, and what a dry run prints.

Checks, each reported as `recipe.yaml:LINE  key.path: problem`, all at once:
paths exist, globs match, files have a layout the adapter can read, the recipe's filters leave
some file to read, template families load, template ids exist, template variables are fields
the source provides, and the output folder can be (re)written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FlanMiniError, RecipeError
from .compose import RenderSpec, describe_spec, resolve_spec
from .lengths import load_measure
from .atomic import check_apart, replace_problem
from .recipe import LoadedRecipe
from .render import DEFAULT_TEMPLATES_DIR, Template, load_family
from .sources import ADAPTERS, Adapter
from .sources.files import ResolvedInputs, is_hub_id, is_url, resolve_hub, resolve_local, resolve_url
from .sources.formats import detect_format
from .sources.kinds import FlanPassthrough


@dataclass
class SourcePlan:
    index: int
    adapter: Adapter
    inputs: ResolvedInputs | None  # None: a Hub source that was not resolved (validate without --check-hub)
    templates: list[Template]
    skipped: list[str] = field(default_factory=list)  # files the filters exclude by name
    render: RenderSpec | None = None  # None: rows are conversations already (chat sources)

    @property
    def config(self):
        return self.adapter.config

    @property
    def files(self):
        return [f for f in self.inputs.files if f.display not in set(self.skipped)] if self.inputs else []


@dataclass
class Plan:
    loaded: LoadedRecipe
    seed: int
    out_dir: Path
    sources: list[SourcePlan]
    notes: list[str] = field(default_factory=list)

    @property
    def recipe(self):
        return self.loaded.recipe


def output_folder(loaded: LoadedRecipe, out: str | Path | None) -> Path:
    """`--out` (relative to the current directory), else the recipe's output.folder (relative to the recipe), else build/<name>."""
    if out is not None:
        return Path(out).resolve()
    if loaded.recipe.output.folder:
        return (loaded.base_dir / loaded.recipe.output.folder).resolve()
    return (Path.cwd() / "build" / loaded.recipe.name).resolve()


def check_output_folder(folder: Path) -> str | None:
    """Why `folder` cannot be written, or None. A previous build (every file listed by its manifest) may be replaced."""
    if reason := replace_problem(folder):
        return reason
    parent = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK):
        return f"cannot write under {parent}"
    return None


def make_plan(
    loaded: LoadedRecipe,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    resolve_hub_sources: bool = True,
    only: list[str] | None = None,
    check_output: bool = True,
) -> Plan:
    """Resolve and check everything the build needs; raise RecipeError listing every problem.

    `only` restricts the plan to the named sources; `check_output=False` skips the output folder
    check (for commands that write nothing, such as preview).
    """
    recipe = loaded.recipe
    problems: list[str] = []
    notes: list[str] = []
    out_dir = output_folder(loaded, out)
    out_path = ("output", "folder") if out is None else ()
    if check_output and (reason := check_output_folder(out_dir)):
        problems.append(loaded.problem(out_path, reason) if out is None else f"--out: {reason}")
    templates_dir = (loaded.base_dir / recipe.templates_dir).resolve() if recipe.templates_dir else DEFAULT_TEMPLATES_DIR
    if recipe.templates_dir and not templates_dir.is_dir():
        problems.append(loaded.problem(("templates_dir",), f"{templates_dir} is not a folder"))

    plans = [
        _plan_source(loaded, index, config, templates_dir, resolve_hub_sources, problems, notes)
        for index, config in enumerate(recipe.sources)
        if only is None or config.name in only
    ]
    _check_stages(loaded, resolve_hub_sources, problems, notes)
    if check_output:
        local = {f"sources[{p.index}] {p.config.name}": loaded.base_dir / p.config.path
                 for p in plans if p.inputs is not None and p.inputs.kind == "local"}
        problems += [f"--out: {reason}" if out is not None else loaded.problem(out_path, reason) for reason in check_apart(out_dir, local)]
    if problems:
        raise RecipeError(problems)
    return Plan(loaded, recipe.seed if seed is None else seed, out_dir, plans, notes)


def _plan_source(loaded, index, config, templates_dir, resolve_hub_sources, problems, notes) -> SourcePlan:
    """One source's checks: where its files are, that the adapter can read them, and its templates."""
    where = ("sources", index)
    adapter = ADAPTERS[config.adapter](config, base_dir=loaded.base_dir)
    inputs = None
    try:
        if is_url(config.path):
            if resolve_hub_sources:
                inputs = resolve_url(config.path, config.data_files, config.split, adapter.extensions)
            else:
                notes.append(f"sources[{index}] {config.name}: {config.path} not checked (needs the network; use --check-hub)")
        elif is_hub_id(config.path, loaded.base_dir):
            if resolve_hub_sources:
                inputs = resolve_hub(config.path, config.data_files, config.split, config.revision, adapter.extensions)
            else:
                notes.append(f"sources[{index}] {config.name}: Hub dataset {config.path} not checked (needs the Hub; use --check-hub); "
                             f"it is not a local path either ({loaded.base_dir / config.path} does not exist)")
        else:
            inputs = resolve_local(config.path, config.data_files, config.split, loaded.base_dir, adapter.extensions)
    except FlanMiniError as exc:
        key = "data_files" if config.data_files is not None and "matched no files" in str(exc) else "path"
        local = f" (nor is it a local path: {loaded.base_dir / config.path} does not exist)" if is_hub_id(config.path, loaded.base_dir) else ""
        problems.append(loaded.problem((*where, key), f"{exc}{local}"))
    skipped = []
    if inputs is not None:
        skipped = [f.display for f in inputs.files if adapter.skip_file(f)]
        if len(skipped) == len(inputs.files):
            problems.append(loaded.problem(where, f"the filters exclude every one of its {len(inputs.files)} files by name"))
        readable = []
        for file in inputs.files:
            if file.display not in skipped and file.bytes == 0:
                problems.append(loaded.problem((*where, "path"), f"{file.display}: the file is empty (0 bytes); "
                                                                 "delete it or leave it out with data_files"))
            elif file.display not in skipped:
                try:
                    adapter.column_map(file, detect_format(file.path))  # refuses a file of another format
                    readable.append(file)
                except FlanMiniError as exc:
                    problems.append(loaded.problem((*where, "path"), str(exc)))
        try:
            adapter = adapter.prepare(readable)
        except FlanMiniError as exc:
            problems.append(loaded.problem((*where, "path"), str(exc)))
    for warning in getattr(adapter, "mixing_warnings", list)():  # FLAN: caps that would mix FLAN twice, or none
        key = "task_caps" if config.task_caps is not None else "adapter"
        notes.append("warning: " + loaded.problem((*where, key), warning))
    if not adapter.kind.renders:  # chat data is written as is
        for key in ("templates", "fewshot"):
            if getattr(config, key, None):
                problems.append(loaded.problem((*where, key), f"{config.adapter} sources are conversations already; they take no {key}"))
        return SourcePlan(index, adapter, inputs, [], skipped)
    templates: list[Template] = []
    render = None
    try:
        if config.fewshot and isinstance(adapter.kind, FlanPassthrough):
            problems.append(loaded.problem((*where, "fewshot"), f"{config.adapter} rows are templated already, with their own "
                                                                "exemplars (see template_types); they take no fewshot settings"))
        try:  # a build cannot do without the budget's tokenizer; validate (offline) skips it with a note
            measure, note = load_measure(config.fewshot.tokenizer if config.fewshot else None, loaded.base_dir,
                                         allow_download=resolve_hub_sources)
        except FlanMiniError as exc:
            problems.append(loaded.problem((*where, "fewshot", "tokenizer"), str(exc)))
            measure, note = None, None
        if note:
            notes.append(f"sources[{index}] {config.name}: {note}")
        render, render_problems = resolve_spec(adapter, load_family(adapter.template_family, templates_dir), measure)
        render.notes += [note] if note else []
        templates = render.templates
        problems += [loaded.problem((*where, key), p) for key, p in render_problems]
    except FlanMiniError as exc:
        problems.append(loaded.problem((*where, "templates"), str(exc)))
    return SourcePlan(index, adapter, inputs, templates, skipped, render)


def _check_stages(loaded, resolve_hub_sources, problems, notes) -> None:
    """The dedup and decontamination sections' checks that need the recipe's sources or the file system."""
    recipe = loaded.recipe
    names = [source.name for source in recipe.sources]
    if recipe.dedup is not None and recipe.dedup.keep:
        unknown = [name for name in recipe.dedup.keep if name not in names]
        if unknown:
            problems.append(loaded.problem(("dedup", "keep"), f"names no source of this recipe: {', '.join(unknown)}; sources are {', '.join(names)}"))
    if recipe.decontaminate is not None and recipe.decontaminate.enabled:
        from .decontam.benchmarks import check_benchmark

        for i, bench in enumerate(recipe.decontaminate.benchmarks):
            reason, note = check_benchmark(bench, loaded.base_dir, allow_hub=resolve_hub_sources)
            if reason:
                problems.append(loaded.problem(("decontaminate", "benchmarks", i), reason))
            if note:
                notes.append(f"decontaminate.benchmarks[{i}] {note}")


def describe_plan(plan: Plan) -> list[str]:
    """Human-readable lines: what `validate` and `build --dry-run` print."""
    recipe = plan.recipe
    total = sum(s.config.n for s in plan.sources)
    lines = [
        f"recipe   {plan.loaded.path}  (sha256 {plan.loaded.sha256[:12]})",
        f"name     {recipe.name}    seed {plan.seed}",
        f"output   {plan.out_dir}  ({recipe.output.format}, shards of ~{recipe.output.shard_size.human_readable()}"
        + (f", and {recipe.output.fastchat_json_name} for FastChat)" if recipe.output.fastchat_json_name else ")"),
        f"rows     {total:,} from {len(plan.sources)} sources",
        "",
    ]
    for source in plan.sources:
        config = source.config
        origin = config.path if source.inputs is None or source.inputs.kind != "hub" else f"hub:{source.inputs.repo_id}@{source.inputs.revision}"
        lines.append(f"[{source.index}] {config.name}  adapter={config.adapter}  n={config.n:,}  from {origin} (split {config.split})")
        if source.inputs is not None:
            size = sum(f.bytes for f in source.files)
            lines.append(f"      files: {len(source.files)} to read ({size / 1e6:,.1f} MB), {len(source.skipped)} excluded by name")
        for key, value in source.adapter.describe().items():
            lines.append(f"      {key}: {value}")
        if source.render is None:
            lines.append("      templates: none (conversations are written as they are)")
        else:
            lines += [f"      {line}" for line in describe_spec(source.render)]
    if recipe.decontaminate is not None:
        from .decontam.benchmarks import describe_benchmarks

        lines += ["", *describe_benchmarks(recipe.decontaminate)]
    if plan.notes:
        lines += ["", *(n if n.startswith("warning: ") else f"note: {n}" for n in plan.notes)]
    return lines
