"""The recipe model: validated YAML describing a mixture, loaded with `file:line  key.path: problem` errors.

    name: sample
    seed: 1234
    output: {folder: ../build/sample, shard_size: 64MB}
    sources:
      - name: flan2021
        adapter: flan
        path: sample_data/flan/dpi
        n: 40
        task_sources: [Flan2021]

Validation is two-staged. Here: the structure (types, ranges, unknown keys, unknown adapters,
filter values that cannot exist), all problems at once. Then `plan.py` checks what needs the
file system (paths, globs, templates) before any data is read.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ByteSize, Field, SerializeAsAny, StringConstraints, ValidationError, field_validator

from .decontam.config import DecontamConfig
from .dedup.config import DedupConfig
from .errors import RecipeError
from .hub import PublishConfig
from .sources import ADAPTERS
from .sources.base import SourceConfig, StrictModel
from .yamlio import KeyPath, LocatedYaml, load_yaml


class OutputConfig(StrictModel):
    folder: str | None = Field(
        None,
        description="Where the dataset folder is written (relative to the recipe file). Default: build/<name> "
        "under the current directory. `flan-mini build --out` overrides it.",
    )
    shard_size: ByteSize = Field(
        ByteSize(256 * 1000**2),
        description="Target size of one Parquet shard, in-memory (uncompressed Arrow) bytes, e.g. 256MB.",
        gt=0,
    )
    format: Literal["conversations", "messages"] = Field(
        "conversations",
        description="`conversations` (FastChat: from human/gpt, value) as FLAN-MINI, or `messages` (role user/assistant, content).",
    )
    fastchat_json: bool | Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.json$")] = Field(
        False,
        description="Also write the release as one JSON array of {id, conversations} beside the shards, the file "
        "FastChat's train.py reads (--data_path): true names it flan_mini.json, or give a file name ending in .json. "
        "Listed in the manifest and uploaded by push.",
    )

    @field_validator("fastchat_json")
    @classmethod
    def _not_a_build_file(cls, value):
        if value == "manifest.json":
            raise ValueError(f"{value!r} is the build's own file; choose another name, e.g. flan_mini.json")
        return value

    @property
    def fastchat_json_name(self) -> str | None:
        """The FastChat JSON file's name, or None when it is not written."""
        return "flan_mini.json" if self.fastchat_json is True else (self.fastchat_json or None)


class CardConfig(StrictModel):
    pretty_name: str | None = Field(None, description="Display name on the Hub (default: the recipe name).")
    language: list[str] | None = Field(None, min_length=1, description="Language tags (default: en, code).")
    tags: list[str] | None = Field(None, description="Extra Hub tags.")
    tokenizer: str | None = Field(None, description="Hub model id whose tokenizer counts the card's lengths in tokens.")


class Recipe(StrictModel):
    name: str = Field(description="Name of the mixture.", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=96)
    description: str | None = Field(None, description="Free text shown in the data card.")
    seed: int = Field(0, ge=0, lt=2**63, description="Seed of every random choice (selection, templates, shuffle).")
    templates_dir: str | None = Field(
        None, description="Folder of template families (relative to the recipe file). Default: the project's templates/."
    )
    output: OutputConfig = Field(default_factory=OutputConfig, description="Where and how the dataset is written.")
    # SerializeAsAny: dump each source with its adapter's model, so adapter options reach the manifest.
    sources: list[SerializeAsAny[SourceConfig]] = Field(
        min_length=1, description="The parts of the mixture, each with its exact count n."
    )
    dedup: DedupConfig | None = Field(
        None, description="Remove exact and near duplicates (MinHash LSH); the section's presence turns it on."
    )
    decontaminate: DecontamConfig | None = Field(
        None,
        description="Find rows holding evaluation benchmark items (word n-gram overlap) and remove or report them; "
        "the section's presence turns it on.",
    )
    card: CardConfig | None = Field(None, description="Data card settings; the card's content comes from the build.")
    publish: PublishConfig | None = Field(
        None, description="Push the finished build to this Hub dataset repo (skip with `build --no-push`)."
    )


# The top-level model as first validated: sources stay raw dicts, each checked by its adapter's model.
class _RecipeHead(Recipe):
    sources: list[Any] = Field(min_length=1)


@dataclass
class LoadedRecipe:
    recipe: Recipe
    located: LocatedYaml
    path: Path
    sha256: str

    @property
    def base_dir(self) -> Path:
        return self.path.resolve().parent

    def problem(self, path: KeyPath, message: str) -> str:
        return self.located.problem(path, message)

    def resolved(self) -> dict:
        """The validated recipe with its defaults filled in, as JSON-able data."""
        return json.loads(self.recipe.model_dump_json())


def _model_at(model, loc: tuple):
    """The pydantic model that owns the last key of `loc` (for its field names and descriptions)."""
    import typing

    from pydantic import BaseModel

    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            break
        candidates = [info.annotation, *typing.get_args(info.annotation)]
        nested = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nested is None:
            break
        model = nested
    return model


def _message(error: dict, model) -> str:
    kind, input_value = error["type"], error.get("input")
    if kind == "missing":
        info = getattr(_model_at(model, tuple(error["loc"])), "model_fields", {}).get(error["loc"][-1])
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


def _problems_from(exc: ValidationError, data: Any, prefix: KeyPath, located: LocatedYaml, model) -> list[str]:
    by_path: dict[KeyPath, list[str]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = _real_path(loc, data)
        message = _message(error, model)
        if error["type"] == "extra_forbidden":
            allowed = sorted(getattr(_model_at(model, loc), "model_fields", {}))
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message += f" {loc[-1]!r}" + (f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(allowed)}")
            path = _real_path(loc, data) or loc
        by_path.setdefault(path, [])
        if message not in by_path[path]:
            by_path[path].append(message)
    problems = []
    for path, messages in by_path.items():
        text = messages[0] if len(messages) == 1 else "; or ".join(messages)
        problems.append(located.problem((*prefix, *path), text))
    return problems


def validate_recipe_data(located: LocatedYaml) -> Recipe:
    """Validate parsed YAML into a Recipe, collecting every problem before raising RecipeError."""
    data = located.data
    if not isinstance(data, dict):
        raise RecipeError([located.problem((), f"a recipe is a mapping (name, seed, output, sources); found {type(data).__name__}")])
    problems: list[str] = []
    head = None
    try:
        head = _RecipeHead.model_validate(data)
    except ValidationError as exc:
        problems += _problems_from(exc, data, (), located, _RecipeHead)
    raw_sources = data.get("sources") if isinstance(data.get("sources"), list) else []
    sources: list[SourceConfig] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_sources):
        where = ("sources", index)
        if not isinstance(raw, dict):
            problems.append(located.problem(where, f"a source is a mapping (name, adapter, path, n, ...); found {type(raw).__name__}"))
            continue
        adapter = raw.get("adapter")
        if adapter is None:
            problems.append(located.problem(where, f"required key 'adapter' is missing; expected one of: {', '.join(sorted(ADAPTERS))}"))
            continue
        if not isinstance(adapter, str) or adapter not in ADAPTERS:
            close = difflib.get_close_matches(str(adapter), list(ADAPTERS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(located.problem((*where, "adapter"), f"unknown adapter {adapter!r}; expected one of: {', '.join(sorted(ADAPTERS))}{hint}"))
            continue
        model = ADAPTERS[adapter].config_model
        try:
            source = model.model_validate(raw)
        except ValidationError as exc:
            problems += _problems_from(exc, raw, where, located, model)
            continue
        if source.name in seen:
            problems.append(located.problem((*where, "name"), f"duplicate source name {source.name!r} (also sources[{seen[source.name]}])"))
        seen.setdefault(source.name, index)
        sources.append(source)
    if problems:
        raise RecipeError(problems)
    assert head is not None
    return Recipe.model_validate({**head.model_dump(), "sources": sources})


def load_recipe(path: Path | str) -> LoadedRecipe:
    """Read and validate a recipe file (structure only; see plan.py for the file-system checks)."""
    path = Path(path)
    located = load_yaml(path)
    recipe = validate_recipe_data(located)
    return LoadedRecipe(recipe, located, path, hashlib.sha256(path.read_bytes()).hexdigest())
