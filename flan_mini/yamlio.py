"""Safe YAML loading that remembers the line of every key, so errors can say `file:line  key.path: ...`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import RecipeError

KeyPath = tuple  # of str (mapping keys) and int (list positions), like pydantic's `loc`


def format_path(path: KeyPath) -> str:
    """('sources', 3, 'n') -> 'sources[3].n'"""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


@dataclass
class LocatedYaml:
    """Parsed YAML data plus the 1-based line where each key path is written."""

    data: Any
    file: Path
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest written ancestor (a missing key is reported at its parent)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(self, path: KeyPath, message: str) -> str:
        return f"{self.file}:{self.line_of(path)}  {format_path(path)}: {message}"


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
# Aliases let a few lines stand for an exponential number of values (a "billion laughs" bomb); a recipe or a
# template file never needs more than a few thousand values, so building stops well before memory runs out.
MAX_VALUES = 100_000


class _Builder:
    """Turns a composed YAML node tree into plain Python data, recording lines and duplicate keys."""

    def __init__(self, file: Path):
        self.located = LocatedYaml(data=None, file=file)
        self.problems: list[str] = []
        self.constructor = yaml.SafeLoader("")  # only its scalar construction is used
        self.values = 0

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.values += 1
        if self.values > MAX_VALUES or len(path) > 100:
            raise yaml.constructor.ConstructorError(
                None, None, f"expands to more than {MAX_VALUES:,} values or 100 levels (aliases repeating "
                "anchors?); a flan-mini YAML file is much smaller than that", node.start_mark
            )
        self.located.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            raise yaml.constructor.ConstructorError(
                None, None, f"tag {node.tag!r} is not allowed (recipes are plain YAML)", node.start_mark
            )
        if isinstance(node, yaml.MappingNode):
            result: dict = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                child = (*path, key)
                if key in result:
                    self.problems.append(
                        f"{self.located.file}:{key_node.start_mark.line + 1}  {format_path(child)}: "
                        f"duplicate key (first written on line {self.located.lines[child]})"
                    )
                self.located.lines[child] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)


def load_yaml(path: Path | str) -> LocatedYaml:
    """Load a YAML file with safe semantics (no tags that run code), keeping key lines.

    Raises RecipeError for unreadable files, syntax errors and duplicate keys (which plain
    yaml.safe_load would silently resolve to the last value).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError([f"{path}: cannot read: {exc}"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise RecipeError([f"{path}{line}  YAML syntax error: {reason}"]) from None
    builder = _Builder(path)
    try:
        data = builder.build(node, ()) if node is not None else None
    except yaml.YAMLError as exc:  # e.g. an unknown tag such as !!python/object
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RecipeError([f"{path}{line}  {getattr(exc, 'problem', None) or exc}"]) from None
    if builder.problems:
        raise RecipeError(builder.problems)
    builder.located.data = data
    return builder.located
