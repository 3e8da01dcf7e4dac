"""Rendering a source's rows into conversations: per row its template, zero- or few-shot (the spec: render_spec.py).

Per row, every choice is a seeded function of the row's content key, never of row order: its
template (among its task's templates), whether it is few-shot (`fewshot.share`), how many
exemplars it asks for (`fewshot.shots`) and, inline, its few-shot pattern. Zero-shot rows are
rendered a template at a time (column-wise for `{{ field }}` templates); few-shot rows are laid
out by fewshot.py. A few-shot row left without exemplars that fit is rendered zero-shot and
counted, and the next rows in the few-shot draw's rank order are tried few-shot in its place, so
the share the recipe asks for holds over the candidates (the stats give the share realised); the
cut to exactly n rows keeps it in the rows written (stages/pick.py).

A source's candidates are rendered in one call: the few-shot share, the promotion rounds and the exemplar pool
are source-wide, so a stage may send sources to different workers (`render_source`, from the spec's plain
description) but not split one source's rows between calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import bigtext, limits
from .errors import TemplateError
from .fewshot import ExemplarPool, Layout, assemble, draw_tries
from .keys import ranks, salt
from .render import Pattern, _blank, _is_passthrough, _render_column, single_turn
from .render_spec import DEFAULT_TASK, RenderDescription, RenderSpec, describe_spec, resolve_spec, spec_of  # noqa: F401 (re-exported)
from .shards import TURN

ZERO_SHOT, FEW_SHOT = "zs", "fs"
# A few-shot row draws this many exemplars beyond those it asks for, to replace ones too long for the budget.
SPARE_EXEMPLARS = 4
# Rounds of promoting the next rows to few-shot in place of rows whose exemplars cannot fit.
PROMOTION_ROUNDS = 6
ASSEMBLE_ROWS = 8192  # few-shot rows assembled at a time (see render_rows)


@dataclass
class RenderedRows:
    conversations: pa.Array  # list<struct<from, value>>
    template_id: pa.Array
    template_type: pa.Array  # zs / fs
    num_shots: pa.Array  # int32
    failed: dict[str, np.ndarray]  # reason -> mask over the rendered rows
    stats: dict
    exemplars: dict[int, list[int]]  # rendered row -> the table rows used as its exemplars, in order (few-shot rows)



def _choose(keys: np.ndarray, seed: int, source: str, purpose: str, counts: np.ndarray) -> np.ndarray:
    """Per row, an index in [0, count): a seeded function of the row's key."""
    counts = np.maximum(counts, 1).astype(np.uint64)
    return (ranks(keys, salt(seed, source, purpose)) % counts).astype(np.int64)


def render_source(description: RenderDescription, table: pa.Table, keys: np.ndarray, seed: int, source: str) -> RenderedRows:
    """Render every row of one source's candidates from plain data: what a stage hands to `executor.map`
    (the spec is rebuilt from its description once per process)."""
    return render_rows(table, spec_of(description), keys, seed, source)


def render_rows(
    table: pa.Table,
    spec: RenderSpec | RenderDescription,
    keys: np.ndarray,
    seed: int,
    source: str,
    *,
    rows: np.ndarray | None = None,
    force: str | None = None,
    template: str | None = None,
) -> RenderedRows:
    """Render `rows` of `table` (default: all) into conversations; exemplars come from all of `table`.

    `force` ("zs" / "fs") and `template` (an id) override the seeded choices, for previews. `spec` may be given as
    its plain description (see render_spec.py).
    """
    if isinstance(spec, RenderDescription):
        spec = spec_of(spec)
    n = table.num_rows
    rows = np.arange(n) if rows is None else np.asarray(rows, np.int64)
    if spec.task_field:
        encoded = table.column(spec.task_field).combine_chunks().dictionary_encode()
        task_list = encoded.dictionary.to_pylist()
        row_task = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)[rows]
    else:
        task_list, row_task = [DEFAULT_TASK], np.zeros(len(rows), np.int64)
    templates_of = [spec.templates_for(t) for t in task_list]
    patterns_of = [spec.patterns_for(t) for t in task_list]
    if template is not None:  # a preview asking for one template or pattern
        templates_of = [[x for x in v if x.id == template] or v for v in templates_of]
        patterns_of = [[x for x in v if x.id == template] or v for v in patterns_of]
    for task, options in zip(task_list, templates_of):
        if not options and (row_task == task_list.index(task)).any():
            raise TemplateError(f"source {source}: no template for task {task!r}")
    row_keys_ = keys[rows]
    t_choice = _choose(row_keys_, seed, source, "template", np.array([len(templates_of[t]) for t in range(len(task_list))])[row_task])

    fewshot = spec.fewshot
    style = fewshot.style if fewshot is not None else "turns"
    fs = np.zeros(len(rows), bool)
    p_choice = wanted_shots = np.zeros(len(rows), np.int64)
    if fewshot is not None or force == FEW_SHOT:  # (zero-shot-only sources skip these draws)
        p_choice = _choose(row_keys_, seed, source, "pattern", np.array([max(1, len(p)) for p in patterns_of])[row_task])
        shots = np.array(spec.shots or [3], np.int64)
        wanted_shots = shots[_choose(row_keys_, seed, source, "shots", np.full(len(rows), len(shots)))]
        if fewshot is not None:
            # Exactly round(share x rows) rows, those of smallest seeded rank: the share holds at any size.
            fs_order = np.argsort(ranks(row_keys_, salt(seed, source, "fewshot")), kind="stable")
            fs[fs_order[: int(np.floor(fewshot.share * len(rows) + 0.5))]] = True
        if force is not None:
            fs[:] = force == FEW_SHOT
        if style == "inline":
            fs &= np.array([bool(p) for p in patterns_of])[row_task]

    # Few-shot rows: draw exemplars, render everything needed in batches, prune to the budget. A row whose
    # exemplars cannot fit is written zero-shot, and the next rows in the few-shot draw's order take its place,
    # so the recipe's share holds (unless a preview forces the mode).
    budget = fewshot.max_length if fewshot is not None else None
    fs_positions = np.flatnonzero(fs)
    waiting = np.zeros(0, np.int64)
    if fewshot is not None and force is None and len(fs_positions):
        eligible = ~fs & np.array([bool(p) for p in patterns_of] if style == "inline" else [True] * len(task_list))[row_task]
        waiting = fs_order[eligible[fs_order]]  # the next rows in the draw's order
    draw_order = np.empty(len(rows), np.int64)
    if len(waiting):
        draw_order[fs_order] = np.arange(len(rows))
    need = len(fs_positions)
    layouts, kept, tried = [], [], 0
    pool = None  # built once, for every round, when some row is few-shot
    counted: dict[str, int] = {}  # exact lengths, shared by the rounds (their rows draw the same exemplars)
    for _ in range(PROMOTION_ROUNDS):
        if pool is None and len(fs_positions):
            pool = ExemplarPool.build(table, spec, keys, seed, source)
        missing = need - len(kept)
        # The round's rows a slice at a time, in draw order (a promotion round's), so a round that fills the gap
        # early renders no further rows, and memory holds one slice's texts. A row's draw and fit do not depend
        # on its slice (the draw's attempts are the round's, exact counts are shared).
        tries = draw_tries(wanted_shots[fs_positions] + SPARE_EXEMPLARS) if len(fs_positions) else 0
        batch, fitted = [], []
        for start in range(0, len(fs_positions), ASSEMBLE_ROWS):
            part = np.sort(fs_positions[start:start + ASSEMBLE_ROWS])
            drawn = pool.draw(rows[part], wanted_shots[part], spare=SPARE_EXEMPLARS, tries=tries)
            sliced = []
            for position, exemplars in zip(part.tolist(), drawn):
                task = row_task[position]
                owner = patterns_of[task][p_choice[position]] if style == "inline" else templates_of[task][t_choice[position]]
                sliced.append(Layout(position, int(rows[position]), owner, exemplars, int(wanted_shots[position])))
            batch += sliced
            fitted += assemble(table, sliced, spec.measure, budget, counted)
            if len(fitted) > missing:
                break
        success = len(fitted) / max(len(batch), 1)
        if len(fitted) > missing:  # a promotion round tries extra rows: keep the first in draw order
            fitted = sorted(fitted, key=lambda layout: draw_order[layout.position])[:missing]
            last = draw_order[fitted[-1].position]
            batch = [layout for layout in batch if draw_order[layout.position] <= last]
        else:
            fitted.sort(key=lambda layout: layout.position)
        layouts += sorted(batch, key=lambda layout: layout.position)
        kept += fitted
        missing = need - len(kept)
        if missing <= 0 or tried >= len(waiting):
            break
        # Try as many rows as the last round's success rate says will fill the gap.
        count = min(int(np.ceil(missing / max(success, 0.05))), len(waiting) - tried)
        fs_positions = waiting[tried:tried + count]  # in draw order
        tried += count
    if kept:  # the largest few-shot row against the row limit
        largest = max(kept, key=lambda layout: sum(len(t) for t in layout.turns))
        _check_row_size(largest.owner, [pa.array([sum(len(t) for t in largest.turns)], pa.int64())], source)
    is_fs = np.zeros(len(rows), bool)
    is_fs[[layout.position for layout in kept]] = True

    # Zero-shot rows (and few-shot rows left without exemplars): one template at a time, column-wise
    # where the template allows it.
    zs_positions = np.flatnonzero(~is_fs)
    names: list[str] = []  # template / pattern ids; each row gets an index into it
    id_index = np.zeros(len(rows), np.int64)
    human_parts, gpt_parts, order = [], [], []
    for task, options in enumerate(templates_of):
        for index, chosen in enumerate(options):
            mine = zs_positions[(row_task[zs_positions] == task) & (t_choice[zs_positions] == index)]
            if not len(mine):
                continue
            # Only the template's fields, and no gather at all when it renders every row in order
            # (FLAN's pass-through): each avoided copy is the source's whole text.
            part = table.select(sorted(chosen.variables))
            picked = rows[mine]
            if not (len(picked) == table.num_rows and (picked == np.arange(table.num_rows)).all()):
                part = part.take(pa.array(picked))
            human_parts.append(_render_column(chosen.prompt_source, chosen.prompt, part, chosen))
            gpt_parts.append(_render_column(chosen.completion_source, chosen.completion, part, chosen))
            _check_row_size(chosen, [pc.binary_length(human_parts[-1]), pc.binary_length(gpt_parts[-1])], source)
            order.append(mine)
            id_index[mine] = len(names)
            names.append(chosen.full_id)
    pieces, positions = [], []
    if order:
        pieces.append(single_turn(human_parts, gpt_parts))
        positions.append(np.concatenate(order))
    if kept:
        pieces.append(_turns_array([layout.turns for layout in kept]))
        positions.append(np.array([layout.position for layout in kept], np.int64))
    for layout in kept:
        if layout.owner.full_id not in names:
            names.append(layout.owner.full_id)
        id_index[layout.position] = names.index(layout.owner.full_id)
    if pieces:
        conversations = pieces[0] if len(pieces) == 1 else pa.concat_arrays(bigtext.common(pieces))
        placed = np.concatenate(positions)
        if len(placed) > 1 and not (np.diff(placed) > 0).all():  # back to row order
            conversations = conversations.take(pa.array(np.argsort(placed, kind="stable")))
    else:
        conversations = pa.array([], pa.list_(TURN))
    num_shots = np.zeros(len(rows), np.int32)
    exemplars: dict[int, list[int]] = {}
    for layout in kept:
        num_shots[layout.position] = len(layout.kept)
        exemplars[layout.position] = layout.kept
    stats = {
        "zero_shot": int(len(rows) - len(kept)),
        "few_shot": len(kept),
        # drawn few-shot but rendered zero-shot: no exemplar available, or none fit the budget
        "few_shot_without_exemplars": len(layouts) - len(kept),
        "few_shot_promoted": len(kept) - len([layout for layout in kept if fs[layout.position]]),  # rows that took their places
        "exemplars_dropped": sum(max(0, layout.wanted - len(layout.kept)) for layout in layouts),
    }
    if fewshot is not None and force is None:
        stats["few_shot_share"] = {"requested": fewshot.share, "realised": round(len(kept) / max(len(rows), 1), 6)}
    if fewshot is not None:
        stats["style"] = style
        stats["length_unit"] = spec.measure.unit if budget else None
        stats["tokenizer"] = spec.measure.name if budget else None
        stats["notes"] = list(spec.notes) or None
    if spec.task_field:
        stats["tasks"] = {str(t): int((row_task == i).sum()) for i, t in enumerate(task_list) if (row_task == i).any()}
    return RenderedRows(
        conversations=conversations,
        template_id=pa.array(names, pa.string()).take(pa.array(id_index)),
        template_type=pa.array([ZERO_SHOT, FEW_SHOT], pa.string()).take(pa.array(is_fs.astype(np.int8))),
        num_shots=pa.array(num_shots, pa.int32()),
        failed=_blank_turns(conversations),
        stats={k: v for k, v in stats.items() if v is not None},
        exemplars=exemplars,
    )


def _check_row_size(owner, lengths: list[pa.Array], source: str) -> None:
    """Fail when a templated row's turns together pass the row limit (a row holding its data as is, through
    `{{ field }}` templates, is data-sized and not limited). `lengths` are per-row sizes of each turn (bytes,
    which bound the characters from above; equal for ASCII)."""
    if all(_is_passthrough(s) for s in _sources_of(owner)):
        return
    limit = limits.current().row_chars
    total = lengths[0].cast(pa.int64())
    for more in lengths[1:]:
        total = pc.add(total, more.cast(pa.int64()))
    largest = pc.max(total).as_py()
    if largest is not None and largest > limit:
        raise TemplateError(f"{owner.where}  {owner.full_id}: source {source} renders a row of {largest:,} bytes, over the row "
                            f"limit of {limit:,} (raise {limits.ENV['row_chars']})")


def _sources_of(owner) -> list[str]:
    if isinstance(owner, Pattern):
        return [owner.input_source, owner.target_source, owner.preamble_source or "{{ x }}"]
    return [owner.prompt_source, owner.completion_source]


def _blank_turns(conversations: pa.Array) -> dict[str, np.ndarray]:
    """Rows with a blank human or gpt turn, by reason."""
    if not len(conversations):
        return {}
    flat = conversations.flatten()
    blank = _blank(flat.field("value"))
    parent = np.asarray(pc.list_parent_indices(conversations).to_numpy(zero_copy_only=False))
    roles = np.asarray(flat.field("from").to_numpy(zero_copy_only=False))
    failed = {}
    for role, reason in (("human", "empty:rendered_prompt"), ("gpt", "empty:rendered_completion")):
        mask = np.zeros(len(conversations), bool)
        mask[parent[blank & (roles == role)]] = True
        if mask.any():
            failed[reason] = mask
    return failed


def _turns_array(conversations: list[list[str]]) -> pa.Array:
    """Alternating human/gpt turns from lists of values."""
    values = [v for turns in conversations for v in turns]
    offsets = np.zeros(len(conversations) + 1, np.int32)
    offsets[1:] = np.cumsum([len(t) for t in conversations])
    roles = pa.array(np.tile(np.array(["human", "gpt"], dtype=object), len(values) // 2), pa.string())
    texts = bigtext.strings(values)
    turn = bigtext.widen_type(TURN) if bigtext.is_wide(texts.type) else TURN
    turns = pa.StructArray.from_arrays([roles.cast(turn[0].type), texts], fields=list(turn))
    return pa.ListArray.from_arrays(pa.array(offsets), turns).cast(pa.list_(turn))
