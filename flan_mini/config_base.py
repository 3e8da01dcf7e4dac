"""The one strict base of every config section, and the one way its validation errors are reported.

Every YAML-backed setting (a recipe and its sections, the `dedup`/`decontaminate` --config files, the
fine-tuning config) is a `StrictModel`: unknown keys fail (with "did you mean"), `true` is not a number,
an integer beyond int64 is a typing mistake, and a validated config cannot be changed afterwards.
`validate_config` turns pydantic's errors into the one format every command prints, all at once:

    recipe.yaml:14  dedup.threshold: Input should be less than 1, got 1.5
    run.yaml (command line)  lora.r: Input should be greater than or equal to 1, got 0

`workers` (WORKERS_DOC) is the one parallelism setting: each section that runs in parallel has its own
default, and a command's `--workers` overrides every one of them.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import RecipeError
from .yamlio import KeyPath, LocatedYaml, format_path

# Counts, sizes and seeds beyond this are typing mistakes, and would overflow the int64 arithmetic downstream.
MAX_INT = 2**63 - 1

# The defaults of every section's `workers`, said once (the README's "Parallel work" and each field's help).
WORKERS_DOC = {
    "dedup": (1, "processes computing MinHash signatures"),
    "decontaminate": (2, "threads scanning the rows for benchmark n-grams"),
}


def workers_help(section: str) -> str:
    """A section's `workers` field description, from WORKERS_DOC."""
    default, what = WORKERS_DOC[section]
    return (f"How many {what} (default {default}); `--workers` of build and of `flan-mini {section}` overrides "
            "it. Results do not depend on it.")


def workers_option_help(section: str) -> str:
    """The help of a command's `--workers`, from WORKERS_DOC."""
    default, what = WORKERS_DOC[section]
    return f"{what[0].upper()}{what[1:]}. Default {default}."


def _wants_bool(annotation) -> bool:
    return annotation is bool or any(_wants_bool(arg) for arg in typing.get_args(annotation))


def check_number(value, annotation):
    """Refuse `true`/`false` where a number is expected (pydantic would take them as 1/0) and integers too large
    for int64, in a value or in a list of values."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool) and not _wants_bool(annotation):
            raise ValueError(f"expected a number or text, not the boolean {str(item).lower()}")
        if isinstance(item, (int, float)) and not isinstance(item, bool) and abs(item) > MAX_INT:
            raise ValueError(f"{item:.3g} is too large (at most {MAX_INT:,})")
    return value


class PlainNumbers(BaseModel):
    """Numbers are numbers: `true` is not 1, and integers beyond int64 are typing mistakes (every config section)."""

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value, info):
        return check_number(value, cls.model_fields[info.field_name].annotation)


class StrictModel(PlainNumbers):
    """The base of every config section: unknown keys fail instead of being ignored, and a validated config is
    frozen (stages share it, possibly across processes, and none may change it under the others)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------- error format


def _nested_models(annotation) -> list[type[BaseModel]]:
    """The models an annotation can hold: X, X | None, list[X], dict[str, X] ... -> [X]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]


def model_at(model, loc: tuple):
    """The pydantic model that owns the last key of `loc` (for its field names and descriptions)."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = getattr(model, "model_fields", {}).get(part)
        nested = _nested_models(info.annotation) if info is not None else []
        if not nested:
            break
        model = nested[0]
    return model


def _message(error: dict, model) -> str:
    kind, input_value = error["type"], error.get("input")
    if kind == "missing":
        info = getattr(model_at(model, tuple(error["loc"])), "model_fields", {}).get(error["loc"][-1])
        return "required key is missing" + (f" ({info.description})" if info is not None and info.description else "")
    if kind == "extra_forbidden":
        return "unknown key"
    text = error["msg"].removeprefix("Value error, ")
    if kind not in ("literal_error", "union_tag_invalid") and not isinstance(input_value, (dict, list)):
        shown = repr(input_value)
        text += f", got {shown if len(shown) <= 60 else shown[:57] + '...'}"
    elif kind == "literal_error":
        text += f", got {input_value!r}"
    return text


def _real_path(loc: tuple, data: Any) -> KeyPath:
    """Cut pydantic's union-branch names off a `loc`, keeping the part that exists in the YAML.

    ('task_caps', 'int') -> ('task_caps',) when the data has `task_caps` but nothing below it.
    """
    path: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part.isidentifier() and part not in ("int", "str", "list", "dict"):
            path.append(part)  # a missing key: report it at its own name
            break
        else:
            break
        path.append(part)
    return tuple(path)


class Where:
    """Says where a key path was written: `FILE:LINE  key.path`, `FILE (command line)  key.path` for a value a
    command-line option set, or `key.path` for data that came from no file."""

    def __init__(self, located: LocatedYaml | None = None, command_line: typing.Iterable[KeyPath] = (),
                 file: Path | str | None = None):
        self.located = located
        self.file = file if file is not None else (located.file if located is not None else None)
        self.command_line = {tuple(path) for path in command_line}

    def problem(self, path: KeyPath, message: str) -> str:
        path = tuple(path)
        key = format_path(path)
        if any(path[: len(given)] == given for given in self.command_line):
            return f"{self.file} (command line)  {key}: {message}" if self.file else f"(command line)  {key}: {message}"
        if self.located is not None:
            return self.located.problem(path, message)
        return f"{self.file}  {key}: {message}" if self.file else f"{key}: {message}"


def problems_from(exc: ValidationError, data: Any, model, where: Where, prefix: KeyPath = ()) -> list[str]:
    """pydantic's errors for `data` (validated as `model`, found at `prefix` in its file) in the one format."""
    by_path: dict[KeyPath, list[str]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = _real_path(loc, data)
        message = _message(error, model)
        if error["type"] == "extra_forbidden":
            allowed = sorted(getattr(model_at(model, loc), "model_fields", {}))
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message += f" {loc[-1]!r}" + (f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(allowed)}")
            path = path or loc
        by_path.setdefault(path, [])
        if message not in by_path[path]:
            by_path[path].append(message)
    return [where.problem((*prefix, *path), messages[0] if len(messages) == 1 else "; or ".join(messages))
            for path, messages in by_path.items()]


def validate_config(model: type[BaseModel], data: Any, *, where: Where | None = None, prefix: KeyPath = (),
                    what: str = "recipe") -> BaseModel:
    """`model` validated from `data` (None: every default), found at `prefix` of the file `where` names; every
    problem at once in a RecipeError (`what` names the kind of file in its heading)."""
    data = data if data is not None else {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(problems_from(exc, data, model, where or Where(), prefix), what=what) from None


def section_from_file(path: Path, key: str) -> tuple[dict, LocatedYaml, KeyPath]:
    """A command's --config file: the `key:` section of a recipe, or a file that is the section itself. Returns
    a copy of the section's mapping, the located file and the section's key path in it (for error lines)."""
    from .yamlio import load_yaml

    try:
        located = load_yaml(path)
    except RecipeError as err:
        raise RecipeError(err.problems, what=f"{key} config") from None
    data = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        raise RecipeError([located.problem((), f"expected a mapping (a {key} section, or a recipe with a {key}: key), "
                                                f"found {type(data).__name__}")], what=f"{key} config")
    if key not in data:
        return dict(data), located, ()
    if not isinstance(data[key], dict):
        raise RecipeError([located.problem((key,), f"the {key} section must be a mapping, found "
                                                   f"{type(data[key]).__name__}")], what=f"{key} config")
    return dict(data[key]), located, (key,)
