"""Templates (YAML data under templates/) rendered with sandboxed Jinja into conversation turns.

A template family is one file, `templates/<family>.yaml`:

    family: code_search_net
    tasks:                                  # optional: the task directions the source's rows carry
      docstring_to_code: Write the function a docstring describes.
    templates:                              # zero-shot templates (also used for few-shot as turns)
      - id: implement
        task: docstring_to_code
        prompt: |-
          Write a {{ language_name }} function that does the following: {{ docstring }}
        completion: "{{ code }}"
    patterns:                               # few-shot patterns, FLAN 2022's grammar (inline exemplars)
      - id: doc_code
        task: docstring_to_code
        preamble: "Write {{ language_name }} functions from their documentation."   # optional
        input: "{{ docstring }}"
        target: "{{ code }}"
        input_prefix: "Documentation: "
        x_y_delimiter: "\n"
        target_prefix: "Code:\n"
        example_separator: "\n\n\n"

Templates are compiled once in a `SandboxedEnvironment` with `StrictUndefined`: a template can
neither reach Python internals nor silently render a misspelt field as "". A template that is
just `{{ field }}` is applied column-wise, without per-row Python; other templates' output is
stripped of surrounding whitespace. Which template each row gets is compose.py's (seeded by the
row's key); few-shot assembly (exemplars, budgets) is fewshot.py's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
import jinja2.meta
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import bigtext, limits
from .errors import RecipeError, TemplateError
from .paths import data_folder
from .sandbox import Sandbox, render_bounded, time_budget
from .shards import TURN
from .sources.utf8 import encodable
from .yamlio import load_yaml

DEFAULT_TEMPLATES_DIR = data_folder("templates")
_PASSTHROUGH = re.compile(r"^\{\{\s*([A-Za-z_]\w*)\s*\}\}$")


_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _TemplateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID, description="Unique id within the family.")
    task: str | None = Field(None, description="The task this template renders (families that declare tasks).")
    prompt: str = Field(min_length=1, description="Jinja for the human turn.")
    completion: str = Field(min_length=1, description="Jinja for the gpt turn.")
    description: str | None = None


class _PatternSpec(BaseModel):
    """A few-shot pattern (FLAN 2022's FewShotPattern): how exemplars and the query are laid out inline."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID, description="Unique id within the family (templates and patterns share ids).")
    task: str | None = None
    preamble: str | None = Field(None, description="Jinja (query row) put before the exemplars, then a blank line.")
    input: str = Field(min_length=1, description="Jinja: an example's input.")
    target: str = Field(min_length=1, description="Jinja: an example's target (the query's is the gpt turn).")
    input_prefix: str = ""
    x_y_delimiter: str = "\n\n"
    target_prefix: str = ""
    example_separator: str = "\n\n\n"
    description: str | None = None

    @field_validator("input_prefix", "x_y_delimiter", "target_prefix", "example_separator")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        if "{{" in value or "{%" in value:
            raise ValueError("prefixes and separators are plain text, not Jinja; put field values in input, target or preamble")
        return value


class _FamilySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: str
    description: str | None = None
    tasks: dict[str, str] | None = Field(None, description="Task name -> what it asks (families whose rows carry a task).")
    templates: list[_TemplateSpec] = Field(min_length=1)
    patterns: list[_PatternSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Template:
    family: str
    id: str
    prompt_source: str
    completion_source: str
    where: str  # "file:line" for messages
    prompt: jinja2.Template = field(repr=False, compare=False)
    completion: jinja2.Template = field(repr=False, compare=False)
    task: str | None = None

    @property
    def full_id(self) -> str:
        return f"{self.family}/{self.id}"

    @property
    def variables(self) -> set[str]:
        return set(_variables(self.prompt_source) | _variables(self.completion_source))

    @property
    def prompt_variables(self) -> set[str]:
        """Variables of what the human sees (the answer must not be among them)."""
        return set(_variables(self.prompt_source))


@dataclass(frozen=True)
class Pattern:
    """A compiled few-shot pattern. An exemplar renders as
    input_prefix + input + x_y_delimiter + target_prefix + target + example_separator;
    the query as input_prefix + input + x_y_delimiter + target_prefix (right-stripped)."""

    family: str
    id: str
    input_source: str
    target_source: str
    preamble_source: str | None
    input_prefix: str
    x_y_delimiter: str
    target_prefix: str
    example_separator: str
    where: str
    input: jinja2.Template = field(repr=False, compare=False)
    target: jinja2.Template = field(repr=False, compare=False)
    preamble: jinja2.Template | None = field(repr=False, compare=False)
    task: str | None = None

    @property
    def full_id(self) -> str:
        return f"{self.family}/{self.id}"

    @property
    def prompt_variables(self) -> set[str]:
        return set(_variables(self.input_source) | (_variables(self.preamble_source) if self.preamble_source else set()))

    @property
    def variables(self) -> set[str]:
        return self.prompt_variables | set(_variables(self.target_source))


@dataclass(frozen=True)
class TemplateFamily:
    name: str
    file: Path
    templates: dict[str, Template]
    patterns: dict[str, Pattern] = field(default_factory=dict)
    tasks: dict[str, str] | None = None

    def pick(self, ids: list[str] | None) -> list[Template]:
        """The templates a recipe asks for (all, in file order, when `ids` is None)."""
        return self._pick(self.templates, ids, "template")

    def pick_patterns(self, ids: list[str] | None) -> list[Pattern]:
        """The few-shot patterns a recipe asks for (all, in file order, when `ids` is None)."""
        return self._pick(self.patterns, ids, "few-shot pattern")

    def _pick(self, items: dict, ids: list[str] | None, kind: str) -> list:
        if ids is None:
            return list(items.values())
        unknown = [i for i in ids if i.split("/", 1)[-1] not in items]
        if unknown:
            raise TemplateError(
                f"{self.file}: no {kind} {', '.join(map(repr, unknown))} in family {self.name!r}; "
                f"it has {', '.join(items) or 'none'}"
            )
        return [items[i.split("/", 1)[-1]] for i in ids]


def environment() -> Sandbox:
    # Plain Jinja whitespace rules (no trim_blocks): what a template says is what it renders;
    # only the rendered turn's surrounding whitespace is stripped. sandbox.py bounds size, loops and time.
    return Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


_ENV = environment()


@lru_cache(maxsize=4096)
def _variables(source: str) -> frozenset[str]:
    return frozenset(jinja2.meta.find_undeclared_variables(_ENV.parse(source)))


@lru_cache(maxsize=64)
def load_family(name: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> TemplateFamily:
    """Load and compile `templates_dir/<name>.yaml`; errors name the file, line and template id."""
    path = Path(templates_dir) / f"{name}.yaml"
    if not path.exists():
        raise TemplateError(f"no template file for family {name!r}: {path} does not exist")
    try:
        located = load_yaml(path)
    except RecipeError as exc:
        raise TemplateError("\n".join(exc.problems)) from None
    try:
        spec = _FamilySpec.model_validate(located.data)
    except ValidationError as exc:
        problems = [located.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        raise TemplateError("\n".join(problems)) from None
    if spec.family != name:
        raise TemplateError(f"{located.problem(('family',), f'is {spec.family!r} but the file is {path.name}')}")
    templates: dict[str, Template] = {}
    patterns: dict[str, Pattern] = {}
    problems: list[str] = []
    for key, items in (("templates", spec.templates), ("patterns", spec.patterns)):
        for index, item in enumerate(items):
            where = f"{path}:{located.line_of((key, index))}"
            if item.id in templates or item.id in patterns:
                problems.append(f"{where}  {key}[{index}].id: duplicate id {item.id!r}")
                continue
            if spec.tasks is not None and item.task not in spec.tasks:
                found = "no task" if item.task is None else f"task {item.task!r}"
                problems.append(f"{where}  {name}/{item.id}: has {found}; expected one of the family's tasks: {', '.join(spec.tasks)}")
                continue
            if spec.tasks is None and item.task is not None:
                problems.append(f"{where}  {name}/{item.id}: has task {item.task!r} but the family declares no `tasks:`")
                continue
            try:
                if key == "templates":
                    compiled = (_ENV.from_string(item.prompt), _ENV.from_string(item.completion))
                    templates[item.id] = Template(name, item.id, item.prompt, item.completion, where, *compiled, task=item.task)
                else:
                    patterns[item.id] = Pattern(
                        name, item.id, item.input, item.target, item.preamble, item.input_prefix, item.x_y_delimiter,
                        item.target_prefix, item.example_separator, where, _ENV.from_string(item.input),
                        _ENV.from_string(item.target), _ENV.from_string(item.preamble) if item.preamble else None, task=item.task,
                    )
            except jinja2.TemplateSyntaxError as exc:
                problems.append(f"{where}  template {name}/{item.id}: Jinja syntax error: {exc.message} (template line {exc.lineno})")
    if problems:
        raise TemplateError("\n".join(problems))
    return TemplateFamily(name, path, templates, patterns, dict(spec.tasks) if spec.tasks is not None else None)


def check_templates(templates: list, fields: dict, answer_fields: dict | None = None) -> list[str]:
    """Problems with templates (or few-shot patterns) that use variables the source does not provide,
    or that show the answer in the prompt: `answer_fields` maps a task (None: any) to the fields that
    hold (or contain) its answer, which the prompt side must not use."""
    problems = []
    for template in templates:
        kind = "pattern" if isinstance(template, Pattern) else "template"
        missing = sorted(template.variables - set(fields))
        if missing:
            problems.append(
                f"{template.where}  {kind} {template.full_id}: uses {', '.join(missing)}, "
                f"which the source does not provide (it has {', '.join(fields)})"
            )
        answers = set((answer_fields or {}).get(template.task, ())) | set((answer_fields or {}).get(None, ()))
        leaked = sorted(template.prompt_variables & answers)
        if leaked:
            problems.append(
                f"{template.where}  {kind} {template.full_id}: its prompt uses {', '.join(leaked)}, which holds the answer"
                f"{f' of task {template.task}' if template.task else ''}; the prompt must not show the answer"
            )
    return problems


# -------------------------------------------------------------------------------------------- render


def _is_passthrough(source: str) -> bool:
    return bool(_PASSTHROUGH.match(source.strip()))


def _render_column(source: str, compiled: jinja2.Template, table: pa.Table, template) -> pa.Array:
    """Render one Jinja source over every row of `table` (column-wise when it is just `{{ field }}`: then the
    column itself, maybe chunked)."""
    if match := _PASSTHROUGH.match(source.strip()):
        # As the column's chunks, not joined: single_turn gathers from them directly (joining first copied the
        # source's whole text once more and made the gather ~10x slower).
        column = table.column(match.group(1))
        if bigtext.too_big(column) and not bigtext.is_wide(column.type):
            column = column.cast(bigtext.widen_type(column.type))
        return column if pa.types.is_large_string(column.type) else column.cast(pa.string())
    names = sorted(_variables(source))
    columns = [table.column(n).to_pylist() for n in names]
    out = []
    limit = limits.current().turn_chars
    with time_budget():
        for row, values in enumerate(zip(*columns)) if names else enumerate([()] * table.num_rows):
            try:
                out.append(render_bounded(compiled, dict(zip(names, values)), limit).strip())
            except Exception as exc:  # any failure inside a template is the template's (or its row's) problem
                detail = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
                raise TemplateError(f"{template.where}  template {template.full_id} failed on row {row}: {detail}") from None
    try:
        return bigtext.strings(out)
    except (pa.ArrowInvalid, UnicodeEncodeError):  # e.g. a "\ud83d" escape in the template: no UTF-8 form
        row = next((i for i, text in enumerate(out) if not encodable(text)), None)
        if row is None:
            raise
        raise TemplateError(f"{template.where}  template {template.full_id} renders text that is not valid UTF-8 (a lone "
                            f"surrogate) on row {row}") from None


def render_texts(source: str, compiled: jinja2.Template, table: pa.Table, template) -> list[str]:
    """`_render_column` as Python strings (for per-row assembly)."""
    return _render_column(source, compiled, table, template).to_pylist()


def _blank(array: pa.Array) -> np.ndarray:
    blank = pc.or_(pc.equal(pc.binary_length(array), 0), pc.utf8_is_space(array))
    return np.asarray(pc.fill_null(blank, True).to_numpy(zero_copy_only=False))


def single_turn(human, gpt) -> pa.Array:
    """[{'from': 'human', 'value': h}, {'from': 'gpt', 'value': g}] per row, built column-wise.

    `human` and `gpt` are arrays (or chunked arrays), or lists of them (parts in row order): the turns are
    interleaved straight from them, in one gather, without first concatenating the parts.
    """
    humans = human if isinstance(human, list) else [human]
    gpts = gpt if isinstance(gpt, list) else [gpt]
    n = sum(len(part) for part in humans)
    parts = bigtext.common([part if pa.types.is_large_string(part.type) else part.cast(pa.string()) for part in [*humans, *gpts]])
    chunks = [chunk for part in parts for chunk in (part.chunks if isinstance(part, pa.ChunkedArray) else [part])]
    values = pa.chunked_array(chunks, parts[0].type)
    interleave = np.empty(2 * n, np.int64)
    interleave[0::2], interleave[1::2] = np.arange(n), np.arange(n, 2 * n)
    roles = pa.array(np.tile(np.array(["human", "gpt"], dtype=object), n), pa.string())
    turn = bigtext.widen_type(TURN) if bigtext.is_wide(values.type) else TURN  # large_string past 2 GiB
    turns = pa.StructArray.from_arrays([roles.cast(turn[0].type), values.take(pa.array(interleave)).combine_chunks()], fields=list(turn))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), turns).cast(pa.list_(turn))
