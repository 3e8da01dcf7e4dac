"""The fine-tuning config: a validated YAML file; every problem reported at once as ``FILE:LINE  key.path: message``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from flan_mini.config_base import StrictModel, Where, validate_config
from flan_mini.errors import RecipeError
from flan_mini.yamlio import load_yaml

from .conversation import FORMATS

ARCHITECTURES_DIR = Path(__file__).parent / "architectures"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class _Section(StrictModel):
    """Every section of the config: unknown keys, booleans for numbers and out-of-range integers fail."""


class TinyBase(_Section):
    """A random LLaMA-architecture model and a tokenizer trained on the dataset, built offline for smoke runs."""

    vocab_size: int = Field(1024, ge=300, le=65536, description="BPE vocabulary size, special tokens included")
    hidden_size: int = Field(64, ge=8, le=1024, description="Model width")
    intermediate_size: int = Field(128, ge=8, le=4096, description="MLP width")
    num_layers: int = Field(2, ge=1, le=8, description="Decoder layers")
    num_heads: int = Field(4, ge=1, le=32, description="Attention heads (must divide hidden_size)")
    seed: int = Field(0, ge=0, description="Seed for the random weights")
    init_std: float = Field(0.1, gt=0.0, le=1.0, description="Standard deviation of the random weights")

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})")
        return self


class BaseModelSection(_Section):
    path: str = Field(description="Hub model id, or a local folder (relative to this config file)")
    revision: str | None = Field(None, description="Hub branch, tag or commit of the base model")
    tokenizer: str | None = Field(
        None, description="The tokenizer's folder (relative to this config file) or Hub id; default: the base model's"
    )
    tokenizer_mode: Literal["auto", "spm", "fast"] = Field(
        "auto",
        description="spm: the legacy LLaMA sentencepiece encoding Vicuna trained with; fast: the transformers fast "
        "tokenizer as it is; auto: spm when the tokenizer has tokenizer.model or a sentencepiece-style tokenizer.json",
    )
    architecture: str | None = Field(
        None,
        description="For --dry-run without the weights or network: a shipped architecture name "
        "(see finetune/architectures/) or a path to a config.json",
    )
    init_tiny: TinyBase | None = Field(
        None, description="Build a tiny random base model at `path` (if it does not exist yet) before training"
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="Training precision (mixed for bf16/fp16)")
    load_in_8bit: bool = Field(False, description="Load the frozen base in 8 bits (needs CUDA and bitsandbytes)")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory")


class DatasetSection(_Section):
    path: str = Field(description="A folder written by `flan-mini build` (relative to this config file), or a Hub id")
    revision: str | None = Field(None, description="Hub branch, tag or commit of the dataset")
    split: str = Field("train", description="Split to read")
    eval_share: float = Field(0.0, ge=0.0, lt=0.5, description="Share of rows held out for evaluation (0 = none)")
    eval_seed: int = Field(0, ge=0, description="Seed of the permutation that picks the evaluation rows")
    cache_dir: str | None = Field(None, description="Cache for the tokenised dataset (default: datasets' own)")


class LoraSection(_Section):
    r: int = Field(8, ge=1, le=1024, description="LoRA rank")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input")
    target_modules: list[str] = Field(min_length=1, description="Names of the linear layers to adapt")
    bias: Literal["none", "all", "lora_only"] = Field("none", description="Which biases to train")


class WarmupSection(_Section):
    steps: int | None = Field(None, ge=0, description="Warm-up length in optimizer steps")
    ratio: float | None = Field(None, ge=0.0, lt=1.0, description="Warm-up length as a share of all optimizer steps")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.steps is None) == (self.ratio is None):
            raise ValueError("give exactly one of `steps` or `ratio`")
        return self


class TrainingSection(_Section):
    learning_rate: float = Field(gt=0.0, le=1.0, description="Peak learning rate")
    scheduler: Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"] = (
        Field("cosine", description="Learning-rate schedule after warm-up")
    )
    warmup: WarmupSection = Field(description="Linear warm-up, as steps or as a ratio")
    epochs: float | None = Field(None, gt=0.0, description="Passes over the training rows (or give max_steps)")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps to run (or give epochs)")
    per_device_batch: int = Field(ge=1, description="Sequences per device per forward pass")
    gradient_accumulation: int = Field(1, ge=1, description="Forward passes per optimizer step")
    devices: int = Field(1, ge=1, description="Processes the run is planned for (global batch = batch x accum x devices)")
    max_length: int = Field(ge=16, le=1_048_576, description="Longest tokenised sequence; longer rows are truncated")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm")
    seed: int = Field(42, ge=0, description="Seed for LoRA init, data order and dropout")
    logging_steps: int = Field(10, ge=1, description="Log the training loss every N optimizer steps")
    save_steps: int | None = Field(None, ge=1, description="Checkpoint every N optimizer steps (null = only the end)")
    save_total_limit: int | None = Field(None, ge=1, description="Checkpoints to keep")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps (null = each epoch and at the end)")
    use_cpu: bool = Field(False, description="Train on the CPU even if an accelerator is present")
    dataloader_workers: int = Field(0, ge=0, description="Background processes feeding batches")

    @model_validator(mode="after")
    def _epochs_or_steps(self):
        if (self.epochs is None) == (self.max_steps is None):
            raise ValueError("give exactly one of `epochs` or `max_steps`")
        return self


class OutputSection(_Section):
    dir: str = Field(description="Folder for the adapter, metrics and card (relative to this config file)")
    hub_repo: str | None = Field(None, description="Hub model repo to push the adapter to after training")
    hub_private: bool = Field(True, description="Create the Hub repo as private")

    @model_validator(mode="after")
    def _hub_id(self):
        if self.hub_repo is not None and (not HUB_ID.match(self.hub_repo) or "/" not in self.hub_repo):
            raise ValueError(f"hub_repo must look like `owner/name`, got {self.hub_repo!r}")
        return self


class FinetuneConfig(_Section):
    base_model: BaseModelSection = Field(description="The model the adapter is trained on")
    dataset: DatasetSection = Field(description="The built dataset to train on")
    format: Literal[tuple(FORMATS)] = Field("vicuna_v1.1", description="Conversation format (see conversation.py)")
    lora: LoraSection = Field(description="LoRA hyper-parameters")
    training: TrainingSection = Field(description="Optimisation hyper-parameters")
    output: OutputSection = Field(description="Where the adapter goes")


class Location:
    """Where a model or dataset lives, decided as transformers does: an existing path is local, otherwise a
    Hub id (``owner/name`` or ``name``). Paths starting with ``.``, ``/`` or ``~``, and strings that cannot be
    Hub ids (``a/b/c``), are local even when missing, so a typo fails as a missing folder, not a download.
    Relative paths resolve against ``base_dir`` (the config file's folder).
    """

    def __init__(self, value: str, base_dir: Path):
        raw = Path(value).expanduser()
        candidate = raw if raw.is_absolute() else base_dir / raw
        explicit = value.startswith((".", "/", "~")) or raw.is_absolute()
        self.is_local = candidate.exists() or explicit or not HUB_ID.match(value)
        self.path = candidate.resolve() if self.is_local else None
        self.hub_id = None if self.is_local else value

    def __str__(self) -> str:
        return str(self.path) if self.is_local else str(self.hub_id)


def load_config(
    path: str | Path, overrides: dict[str, object] | None = None, check: bool = True, require_dataset: bool = True
) -> FinetuneConfig:
    """Read and validate a config; ``overrides`` maps dotted keys (``output.dir``) to values from the command line.

    With ``check``, paths and names are checked too (see ``_check_paths``; a dry run does not need the
    dataset). Every problem is collected and raised together as one ``RecipeError``.
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError([f"{path}: config file not found"], what="config")
    try:
        located = load_yaml(path)  # safe YAML, duplicate keys refused, every key's line kept
    except RecipeError as exc:
        raise RecipeError(exc.problems, what="config") from None
    data = located.data
    if not isinstance(data, dict):
        raise RecipeError([f"{path}:1  the config must be a mapping of sections, got {type(data).__name__}"], what="config")
    overrides = dict(overrides or {})
    for dotted, value in overrides.items():
        target = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value

    # One format for every problem: the file's line, or the command line for a value an option set.
    where = Where(located, command_line=[tuple(dotted.split(".")) for dotted in overrides])
    config = validate_config(FinetuneConfig, data, where=where, what="config")
    if check:
        problems = [where.problem(tuple(loc), message) for loc, message in _check_paths(config, path.parent, require_dataset)]
        if problems:
            raise RecipeError(problems, what="config")
    return config


def _check_paths(config: FinetuneConfig, base_dir: Path, require_dataset: bool) -> list[tuple[list, str]]:
    """Problems found without loading anything heavy: missing folders, unknown architectures."""
    problems = []
    data = Location(config.dataset.path, base_dir)
    if require_dataset and data.is_local and not data.path.is_dir():
        problems.append((
            ["dataset", "path"],
            f"no folder at {data.path}; build it first (e.g. `flan-mini build recipes/sample.yaml`) "
            f"or give a Hub dataset id",
        ))
    model = Location(config.base_model.path, base_dir)
    if model.is_local and not model.path.is_dir() and config.base_model.init_tiny is None:
        problems.append((["base_model", "path"], f"no folder at {model.path}; give a Hub model id or a model folder"))
    if config.base_model.tokenizer is not None:
        tokenizer = Location(config.base_model.tokenizer, base_dir)
        if tokenizer.is_local and not tokenizer.path.is_dir():
            problems.append((["base_model", "tokenizer"], f"no folder at {tokenizer.path}; give a tokenizer folder or Hub id"))
    arch = config.base_model.architecture
    if arch is not None and architecture_file(arch, base_dir) is None:
        known = ", ".join(sorted(p.stem for p in ARCHITECTURES_DIR.glob("*.json")))
        problems.append((["base_model", "architecture"], f"{arch!r} is neither a shipped architecture ({known}) nor a file"))
    return problems


def architecture_file(name: str, base_dir: Path) -> Path | None:
    shipped = ARCHITECTURES_DIR / f"{name}.json"
    if shipped.is_file():
        return shipped
    local = Path(name) if Path(name).is_absolute() else base_dir / name
    return local if local.is_file() else None
