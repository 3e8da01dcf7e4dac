"""A source's render settings: the resolved RenderSpec (compiled templates, tokenizer) and the plain description
it is rebuilt from in any process.

A RenderSpec holds compiled Jinja and a loaded tokenizer, which cannot be pickled. Its `description` is plain
data (family name and folder, template and pattern ids, the few-shot settings, the tokenizer's name, the
task / exemplar-match / item fields) that pickles; `spec_of(description)` rebuilds the spec, once per process
(cached by the description), so rendering can run wherever a stage sends it: `compose.render_source`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import FlanMiniError, TemplateError
from .lengths import Measure, TokenMeasure, load_tokenizer
from .render import Pattern, Template, TemplateFamily, check_templates, load_family
from .sources.base import FewShotConfig

DEFAULT_TASK = None


@dataclass(frozen=True)
class RenderDescription:
    """Everything a RenderSpec is rebuilt from, as plain (hashable, picklable) data."""

    family: str
    templates_dir: str
    templates: tuple[str, ...]  # template ids, in the spec's order
    patterns: tuple[str, ...]  # few-shot pattern ids, in the spec's order
    fewshot: str | None = None  # the FewShotConfig as JSON (pydantic models with lists do not hash)
    tokenizer: str | None = None  # where the budget's tokenizer is loaded from: a file or a Hub id (None: characters)
    tokenizer_name: str | None = None  # ... and its name as the recipe gives it (for the stats)
    task_field: str | None = None
    exemplar_match: tuple[str, ...] = ()
    item_field: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class RenderSpec:
    """How one source is rendered, resolved and checked at plan time."""

    family: TemplateFamily
    templates: list[Template]  # the zero-shot templates the recipe allows (also used by few-shot turns)
    patterns: list[Pattern]  # the inline few-shot patterns the recipe allows
    fewshot: FewShotConfig | None = None
    measure: Measure = field(default_factory=Measure)
    task_field: str | None = None
    exemplar_match: tuple[str, ...] = ()
    item_field: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> RenderDescription:
        """This spec as plain data (`spec_of` rebuilds it)."""
        return RenderDescription(
            self.family.name, str(self.family.file.parent), tuple(t.id for t in self.templates), tuple(p.id for p in self.patterns),
            self.fewshot.model_dump_json() if self.fewshot is not None else None, self.measure.source,
            self.measure.name, self.task_field, tuple(self.exemplar_match), self.item_field, tuple(self.notes),
        )

    def templates_for(self, task) -> list[Template]:
        return [t for t in self.templates if self.task_field is None or t.task == task]

    def patterns_for(self, task) -> list[Pattern]:
        return [p for p in self.patterns if self.task_field is None or p.task == task]

    @property
    def shots(self) -> list[int]:
        shots = self.fewshot.shots if self.fewshot else 0
        return [shots] if isinstance(shots, int) else list(shots)


def resolve_spec(adapter, family: TemplateFamily, measure: Measure | None = None) -> tuple[RenderSpec, list[tuple[str, str]]]:
    """The source's RenderSpec, and its problems as (recipe key, message): templates or patterns that do
    not exist, use fields the source lacks or show the answer, and tasks left without a template."""
    config = adapter.config
    problems: list[tuple[str, str]] = []
    fewshot = config.fewshot
    templates, patterns = [], []
    try:
        templates = family.pick(config.templates)
    except TemplateError as exc:
        problems.append(("templates", str(exc)))
    if fewshot is not None and fewshot.style == "inline":
        try:
            patterns = family.pick_patterns(fewshot.patterns)
        except TemplateError as exc:
            problems.append(("fewshot", str(exc)))
    elif fewshot is not None and fewshot.patterns:
        problems.append(("fewshot", "patterns are only used with style: inline"))
    spec = RenderSpec(family, templates, patterns, fewshot, measure or Measure(), adapter.task_field,
                      adapter.exemplar_match, adapter.item_field)
    problems += [("templates", p) for p in check_templates([*templates, *patterns], adapter.fields, adapter.answer_fields)]
    for task in adapter.tasks() if adapter.task_field else (DEFAULT_TASK,):
        label = f" of task {task}" if task else ""
        if templates and not spec.templates_for(task):
            offered = ", ".join(t.id for t in family.templates.values() if t.task == task) or "none"
            problems.append(("templates", f"no template{label} among those chosen ({', '.join(t.id for t in templates)}); "
                                          f"{family.file.name} offers: {offered}"))
        if fewshot is not None and fewshot.share > 0 and fewshot.style == "inline" and not spec.patterns_for(task):
            offered = ", ".join(p.id for p in family.patterns.values() if p.task == task) or "none"
            problems.append(("fewshot", f"no few-shot pattern{label} for style inline (family {family.name} offers: {offered}); "
                                        f"add patterns to {family.file.name} or use style: turns"))
    return spec, problems


def describe_spec(spec: RenderSpec) -> list[str]:
    """Dry-run lines: templates, patterns, few-shot settings."""
    lines = [f"templates ({len(spec.templates)}, {spec.family.name}): {', '.join(t.id for t in spec.templates)}"]
    fewshot = spec.fewshot
    if fewshot is not None:
        shots = fewshot.shots if isinstance(fewshot.shots, int) else "/".join(map(str, fewshot.shots))
        unit = f"tokens of {fewshot.tokenizer}" if fewshot.tokenizer else spec.measure.unit  # even when validate skipped it
        budget = f"{fewshot.max_length:,} {unit}" if fewshot.max_length else "none"
        lines.append(f"few-shot: {fewshot.share:.0%} of rows, {shots} exemplars, {fewshot.style}, budget {budget}")
        if spec.patterns:
            lines.append(f"few-shot patterns ({len(spec.patterns)}, {spec.family.name}): {', '.join(p.id for p in spec.patterns)}")
    return lines


@lru_cache(maxsize=32)
def spec_of(description: RenderDescription) -> RenderSpec:
    """The RenderSpec a description stands for: templates compiled and the tokenizer loaded once per process.

    The tokenizer is read from its file or the Hugging Face cache (the plan fetched it already; a task on another
    machine fetches it into that machine's cache); one that cannot be had is an error, never a silent switch to
    characters."""
    family = load_family(description.family, Path(description.templates_dir))
    measure: Measure = Measure()
    if description.tokenizer is not None:
        try:
            tokenizer = load_tokenizer(description.tokenizer)
        except Exception as exc:  # tokenizers and huggingface_hub raise assorted errors
            raise FlanMiniError(f"render: cannot load the few-shot budget's tokenizer {description.tokenizer!r} ({exc})") from None
        measure = TokenMeasure(tokenizer, description.tokenizer_name, description.tokenizer)
    fewshot = FewShotConfig.model_validate_json(description.fewshot) if description.fewshot is not None else None
    return RenderSpec(family, family.pick(list(description.templates)), family.pick_patterns(list(description.patterns)), fewshot,
                      measure, description.task_field, description.exemplar_match, description.item_field, list(description.notes))
