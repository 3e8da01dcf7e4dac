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

from .config_base import StrictModel, Where, problems_from
from .decontam.config import DecontamConfig
from .dedup.config import DedupConfig
from .errors import RecipeError
from .publish_config import PublishConfig
from .sources import ADAPTERS
from .sources.base import SourceConfig
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


def validate_recipe_data(located: LocatedYaml) -> Recipe:
    """Validate parsed YAML into a Recipe, collecting every problem before raising RecipeError."""
    data = located.data
    if not isinstance(data, dict):
        raise RecipeError([located.problem((), f"a recipe is a mapping (name, seed, output, sources); found {type(data).__name__}")])
    problems: list[str] = []
    head = None
    where_written = Where(located)
    try:
        head = _RecipeHead.model_validate(data)
    except ValidationError as exc:
        problems += problems_from(exc, data, _RecipeHead, where_written)
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
            problems += problems_from(exc, raw, model, where_written, where)
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
