"""The recipe's `dedup:` section: a validated model of every dedup setting, with datasketch's defaults noted."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..config_base import WORKERS_DOC, StrictModel, Where, validate_config, workers_help
from ..textnorm import TextNorm
from ..yamlio import KeyPath


# Band optimiser weights (false positive, false negative). datasketch's are even, which at threshold 0.8 and 128
# permutations picks 9 bands x 13 rows: a pair at exactly 0.8 shares a band with probability 0.40, so about
# half of the pairs in [0.8, 0.9) are never even compared. Exact verification makes a false positive cost only
# one set intersection, so exact mode weighs misses 19 to 1: 16 x 8, P(0.8) = 0.95, P(0.85) = 0.99.
DATASKETCH_WEIGHTS = (0.5, 0.5)
RECALL_WEIGHTS = (0.05, 0.95)


class ShingleConfig(StrictModel):
    """What a document's set is made of."""

    kind: Literal["word", "char"] = Field(
        "word",
        description="word: n consecutive tokens of the normalised text; char: n consecutive characters of it "
        "(spaces included). A document shorter than n yields one shingle: all of it.",
    )
    size: int = Field(5, ge=1, le=64, description="n, the shingle length in tokens (word) or characters (char).")


class NormalizeConfig(StrictModel):
    """How text is normalised before shingling and exact hashing (see flan_mini.textnorm.TextNorm)."""

    mode: Literal["text", "code"] = Field(
        "text",
        description="text: prose (punctuation stripped). code: comments and docstrings removed first, and each "
        "punctuation/operator character kept as its own token, so `a+b` and `a + b` compare equal.",
    )
    lowercase: bool = Field(True, description="Compare case-insensitively (Unicode lower case).")
    nfkc: bool = Field(True, description="Apply Unicode NFKC first (full-width letters, ligatures, odd spaces).")
    punctuation: Literal["strip", "split", "keep"] | None = Field(
        None,
        description="strip: punctuation/symbols become spaces; split: each becomes its own token; keep: left "
        "attached to words. Default: strip in text mode, split in code mode.",
    )

    def text_norm(self) -> TextNorm:
        punctuation = self.punctuation or ("split" if self.mode == "code" else "strip")
        return TextNorm(nfkc=self.nfkc, lowercase=self.lowercase, punctuation=punctuation, code=self.mode == "code")


class DedupConfig(StrictModel):
    """Near-duplicate removal with MinHash LSH. The section's presence turns dedup on; `enabled: false` keeps
    the settings but skips the stage."""

    enabled: bool = Field(True, description="Run the stage. The section's absence also means off.")
    threshold: float = Field(
        0.8,
        gt=0.0,
        lt=1.0,
        description="Jaccard similarity of the shingle sets at or above which two rows are duplicates. It picks "
        "the LSH bands x rows (datasketch's optimiser) unless they are given, and candidate pairs below it "
        "are dropped when `verify` is on (on the exact Jaccard, or the MinHash estimate in datasketch mode).",
    )
    mode: Literal["exact", "datasketch"] = Field(
        "exact",
        description="exact (default): bands chosen for recall near the threshold (optimiser weights 0.05/0.95) "
        "and every candidate pair verified on the exact Jaccard of its two shingle sets, so no pair below the "
        "threshold is accepted, while a pair exactly at it is found with probability 0.95 (at 0.8, 128 "
        "permutations; ~98% of the pairs in [0.8, 0.9)). datasketch: datasketch's MinHashLSH "
        "semantics (its band choice, weights 0.5/0.5, pairs accepted on the estimated Jaccard of bit-identical "
        "signatures); finds about half the pairs in [threshold, threshold + 0.1).",
    )
    num_perm: int = Field(
        128, ge=2, le=4096, description="MinHash permutations (signature length). Estimation error ~ 1/sqrt(num_perm)."
    )
    bands: int | None = Field(
        None, ge=1, description="LSH bands b. Give with `rows`, b x r = num_perm; omit both for datasketch's optimum."
    )
    rows: int | None = Field(None, ge=1, description="LSH rows per band r. Give with `bands`.")
    weights: tuple[float, float] | None = Field(
        None,
        description="(false positive, false negative) weights of datasketch's band optimiser; sum to 1. Default: "
        "(0.05, 0.95) in exact mode (false positives only cost a verification there), (0.5, 0.5) in datasketch mode.",
    )
    seed: int = Field(
        1,
        ge=0,
        lt=2**32,
        description="Seed of the permutations (datasketch's MinHash seed: the same seed gives the same signatures).",
    )
    shingle: ShingleConfig = Field(default_factory=ShingleConfig, description="Shingling: word or char n-grams.")
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig, description="Text normalisation.")
    compare: Literal["conversation", "prompt", "response"] = Field(
        "conversation",
        description="The text compared: every turn (default: one problem with two different solutions is not a "
        "duplicate), the human turns only, or the gpt turns only.",
    )
    scope: Literal["global", "source"] = Field(
        "global", description="global: across all recipe sources; source: only within each recipe source."
    )
    keep: list[str] | None = Field(
        None,
        description="Recipe source names in priority order: in a cluster the row of the earliest listed source is "
        "kept. Unlisted sources rank after listed ones. Ties: the selection order, then the row id.",
    )
    verify: bool = Field(
        True,
        description="Drop LSH candidate pairs whose Jaccard is below the threshold: exact (shingle sets) in exact "
        "mode, estimated (all num_perm values) in datasketch mode. Off: every pair sharing a band is a duplicate "
        "(datatrove / text-dedup behaviour).",
    )
    bucket_cap: int = Field(
        64,
        ge=2,
        description="In an LSH bucket with more members than this, each member is paired with the first "
        "bucket_cap members (by keep priority) only, bounding the work on huge clusters. Counted in the stats.",
    )
    max_chars: int | None = Field(
        1_000_000,
        ge=1,
        description="Compared text longer than this many characters is cut to its start (counted as truncated).",
    )
    oversample: float = Field(
        0.05,
        ge=0.0,
        le=10.0,
        description="Share of extra candidates the selection draws per source, so exact counts survive dedup.",
    )
    workers: int = Field(WORKERS_DOC["dedup"][0], ge=1, le=256, description=workers_help("dedup"))
    batch_rows: int = Field(
        16384, ge=1, le=1_000_000, description="Rows per signature batch (memory vs overhead); results do not depend on it."
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and (any(w < 0.0 or w > 1.0 for w in value) or abs(sum(value) - 1.0) > 1e-9):
            raise ValueError("must be two numbers in [0, 1] that sum to 1")
        return value

    @field_validator("keep")
    @classmethod
    def _keep(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            repeated = sorted({name for name in value if value.count(name) > 1})
            if repeated:
                raise ValueError(f"lists a source more than once: {repeated}")
        return value

    @model_validator(mode="after")
    def _bands_rows(self) -> DedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both `bands` and `rows` (b x r = num_perm), or neither to use the optimiser")
        if self.bands is not None and self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"bands x rows = {self.bands} x {self.rows} = {self.bands * self.rows}, but num_perm is "
                f"{self.num_perm}: choose bands and rows whose product is num_perm (e.g. num_perm 128 = 16 x 8)"
            )
        return self

    def optimiser_weights(self) -> tuple[float, float]:
        """The band optimiser's (false positive, false negative) weights: the given ones, or the mode's."""
        if self.weights is not None:
            return tuple(self.weights)
        return RECALL_WEIGHTS if self.mode == "exact" else DATASKETCH_WEIGHTS

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows): the explicit ones, or datasketch's optimiser at the mode's weights."""
        if self.bands is not None:
            return self.bands, self.rows
        from .lsh import optimal_params

        return optimal_params(self.threshold, self.num_perm, self.optimiser_weights())


def dedup_config(data: Any, where: Where | None = None, prefix: KeyPath = ("dedup",)) -> DedupConfig:
    """Validate a `dedup:` mapping found at `prefix` of the file `where` names (none: data given in code);
    every problem at once, as a RecipeError in config_base's one format."""
    return validate_config(DedupConfig, data, where=where, prefix=prefix, what="dedup config" if where else "recipe")
