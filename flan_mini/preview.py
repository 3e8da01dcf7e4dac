"""`flan-mini preview`: a few rendered examples of one source, turn by turn with their template ids, to judge prompts.

The source is selected as the build selects it (same seed, same ranks) but with a pool of up to
POOL candidates, so that few-shot rows have exemplars to draw from; the examples shown are the
pool's first rows by rank (of the asked task, if any). `mode` forces zero- or few-shot, and
`template` one template or few-shot pattern, to look at each in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .compose import FEW_SHOT, render_rows
from .errors import FlanMiniError
from .pipeline import make_ids
from .plan import make_plan
from .recipe import LoadedRecipe
from .sample import KEY, RANK, select_source
from .sources.kinds import FlanPassthrough

POOL = 200


@dataclass
class Example:
    id: str
    recipe_source: str
    source: str  # the output `source` value
    task: str | None
    template_id: str | None
    template_type: str | None
    num_shots: int | None
    conversations: list[dict]


def preview(
    loaded: LoadedRecipe,
    source_name: str,
    n: int = 3,
    *,
    seed: int | None = None,
    mode: str | None = None,
    task: str | None = None,
    template: str | None = None,
    pool: int = POOL,
) -> list[Example]:
    """Render `n` examples of the recipe's source `source_name` (reads its files; writes nothing)."""
    names = [s.name for s in loaded.recipe.sources]
    if source_name not in names:
        raise FlanMiniError(f"{loaded.path}: no source named {source_name!r}; the recipe has: {', '.join(names)}")
    plan = make_plan(loaded, seed=seed, only=[source_name], check_output=False)
    source = plan.sources[0]
    adapter = source.adapter
    if task is not None and task not in adapter.tasks():
        offered = ", ".join(adapter.tasks()) or "none (its rows have no task)"
        raise FlanMiniError(f"source {source_name!r}: no task {task!r}; it has: {offered}")
    spec = source.render
    if template is not None:
        owners = {t.id: t for t in [*spec.templates, *spec.patterns]} if spec else {}
        template = template.split("/")[-1]
        if template not in owners:
            raise FlanMiniError(f"source {source_name!r}: no template or few-shot pattern {template!r}; it uses: {', '.join(owners)}")
        if owners[template].task is not None:  # show rows of the template's task
            if task not in (None, owners[template].task):
                raise FlanMiniError(f"template {template!r} renders task {owners[template].task}, not {task}")
            task = owners[template].task
    if mode == FEW_SHOT and spec is not None and spec.fewshot is not None and spec.fewshot.style == "inline" and not spec.patterns:
        raise FlanMiniError(f"source {source_name!r}: no few-shot patterns to render with")

    # Select like the build does, keeping a larger pool (exemplars come from it).
    config = adapter.config.model_copy(update={"n": max(n, min(adapter.config.n, pool)), "accept_shortfall": True})
    adapter = adapter.with_config(config)
    selection = select_source(adapter, source.files, seed=plan.seed)
    table = selection.table
    keys = table.column(KEY).to_numpy()
    candidates = np.argsort(table.column(RANK).to_numpy(), kind="stable")
    if task is not None:
        candidates = candidates[np.asarray(table.column(adapter.task_field).to_pylist(), dtype=object)[candidates] == task]
    rows = candidates[:n]
    if not len(rows):
        raise FlanMiniError(f"source {source_name!r}: no usable rows{f' of task {task}' if task else ''} to preview")

    part = table.take(pa.array(rows))
    labels = adapter.source_column(part).to_pylist()
    ids = make_ids(config.name, keys[rows]).to_pylist()
    tasks = part.column(adapter.task_field).to_pylist() if adapter.task_field else [None] * len(rows)
    if spec is None:  # chat data: written as it is
        conversations = part.column(adapter.kind.field).to_pylist()
        return [Example(i, config.name, s, t, None, "chat", 0, c) for i, s, t, c in zip(ids, labels, tasks, conversations)]
    rendered = render_rows(table, spec, keys, plan.seed, config.name, rows=rows, force=mode, template=template)
    types = rendered.template_type.to_pylist()
    shots = rendered.num_shots.to_pylist()
    if isinstance(adapter.kind, FlanPassthrough):  # FLAN: its own template types, exemplars inline and uncounted
        types, shots = part.column(adapter.kind.template_type_field).to_pylist(), [None] * len(rows)
    return [
        Example(i, config.name, s, t, template_id, kind, shot, turns)
        for i, s, t, template_id, kind, shot, turns in zip(
            ids, labels, tasks, rendered.template_id.to_pylist(), types, shots, rendered.conversations.to_pylist()
        )
    ]


def format_examples(examples: list[Example], width: int = 100) -> str:
    """Examples as plain text, one block per example, turn by turn."""
    blocks = []
    for number, example in enumerate(examples, 1):
        title = f"== {example.recipe_source}: example {number} of {len(examples)} "
        kind = {"zs": "zero-shot", "fs": "few-shot"}.get(example.template_type or "", example.template_type or "")
        shots = f", {example.num_shots} exemplar{'s' if example.num_shots != 1 else ''}" if example.num_shots else ""
        lines = [title + "=" * max(3, width - len(title)),
                 f"id        {example.id}",
                 f"source    {example.source}" + (f"    task {example.task}" if example.task else ""),
                 f"template  {example.template_id or '-'}    {kind}{shots}"]
        for turn in example.conversations:
            lines += ["", f"--- {turn['from']} " + "-" * max(3, width - 5 - len(turn["from"])), turn["value"]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
