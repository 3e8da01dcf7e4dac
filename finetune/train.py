"""One fine-tuning run: config -> tokenised data -> LoRA on the base model -> transformers.Trainer -> adapter folder.

Output folder (complete once ``train_summary.json`` exists; it is moved in last):
    adapter_config.json, adapter_model.safetensors   the PEFT adapter
    conversation_format.json, tokenizer files        the format, also as the tokenizer's chat template
    README.md                                        the adapter card
    training_config.json, metrics.jsonl, train_summary.json
    checkpoints/                                     the Trainer's checkpoints (for --resume)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from flan_mini.errors import FlanMiniError

from .config import FinetuneConfig, Location, load_config
from .conversation import FORMATS, ConversationFormat
from .data import load_raw, prepare
from .encode import IGNORE, check_tokenizer, normalise_turns
from .model import attach_lora, load_base_model
from .tiny import ensure_tiny_base
from .tokenizer import load_training_tokenizer

SUMMARY_FILE = "train_summary.json"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "training_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
CHECKPOINTS = "checkpoints"
_FINAL_FILES = (ADAPTER_WEIGHTS, "adapter_config.json", "README.md", CONFIG_FILE, SUMMARY_FILE)


@dataclass
class RunResult:
    output_dir: Path
    summary: dict  # empty on processes other than the main one
    model: object = None  # the trained PeftModel, still in memory


class PadCollator:
    """Right-pad a batch: ids with the pad token, labels with IGNORE so padding never counts in the loss."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        width = max(len(row["input_ids"]) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.as_tensor(row["input_ids"], dtype=torch.long)
            labels[i, :n] = torch.as_tensor(row["labels"], dtype=torch.long)
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def run(
    config_path: str | Path,
    overrides: dict | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    log=print,
) -> RunResult:
    """Train the adapter described by a config file and write the output folder.

    Under torchrun every process calls this; the main process builds the tiny base and tokenises first (the
    others then reuse its cache) and alone writes the final folder.
    """
    import transformers

    config_path = Path(config_path)
    config = load_config(config_path, overrides)
    base_dir = config_path.parent
    out = _output_dir(config, base_dir)
    fmt = FORMATS[config.format]
    base = Location(config.base_model.path, base_dir)
    args = _training_arguments(config, out, has_eval=config.dataset.eval_share > 0)
    with args.main_process_first(desc="preparing the output folder, base model and data"):
        _claim_output(out, overwrite=overwrite, resume=resume)
        if config.base_model.init_tiny is not None:
            _ensure_tiny(config, base_dir, base, fmt, log)
        tokenizer = load_training_tokenizer(config.base_model, base_dir)
        check_tokenizer(tokenizer, fmt)
        prepared = prepare(config.dataset, base_dir, tokenizer, fmt, config.training.max_length)
    log(tokenizer.summary_line())
    log(_describe_data(prepared))

    transformers.set_seed(config.training.seed)  # LoRA init and dropout use torch's global RNG
    model = attach_lora(load_base_model(config.base_model, base, config.training.use_cpu), config.lora)
    _check_vocabulary(model, tokenizer)
    trainable, total = model.get_nb_trainable_parameters()
    log(f"LoRA: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.4f}%)")
    _check_world_size(config, args.world_size, log)

    metrics = MetricsLog(out / METRICS_FILE, append=resume or args.process_index != 0, log=log)
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        data_collator=PadCollator(tokenizer.pad_id),
        processing_class=tokenizer.hf,
        callbacks=[metrics.callback()],
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=True if resume else None)
    elapsed = time.perf_counter() - started
    step = trainer.state.global_step
    if prepared.eval is not None and not any("eval_loss" in e and e["step"] == step for e in trainer.state.log_history):
        trainer.evaluate()  # always end with an evaluation loss, whatever the eval schedule
    if not trainer.is_world_process_zero():
        return RunResult(out, {}, model)
    summary = {
        "base_model": {"path": str(base), "hub": not base.is_local, "revision": config.base_model.revision},
        "dataset": prepared.info.to_dict(),
        "data": prepared.stats,
        "format": {"name": fmt.name, "sha256": fmt.sha256()},
        "tokenizer": tokenizer.describe(),
        "parameters": {"trainable": trainable, "total": total},
        "steps": step,
        "epochs": trainer.state.epoch,
        "seconds": round(elapsed, 3),
        "train_loss": output.training_loss,
        **metrics.summary(),
        "world_size": args.world_size,
        "versions": _versions(),
    }
    _finalise(model, tokenizer, fmt, config, config_path, out, summary)
    log(f"adapter written to {out}")
    if config.output.hub_repo:
        from .publish import push_adapter

        url = push_adapter(out, config.output.hub_repo, private=config.output.hub_private)
        log(f"pushed to {url}")
    return RunResult(out, summary, model)


def _check_vocabulary(model, tokenizer) -> None:
    """Every id the tokenizer can produce must have an embedding row (a tokenizer named apart from the base)."""
    rows = model.get_input_embeddings().num_embeddings
    size = tokenizer.vocab_size
    if size > rows:
        raise FlanMiniError(
            f"tokenizer {tokenizer.source} has {size:,} tokens but the base model embeds only {rows:,}; "
            f"base_model.tokenizer must be the base model's tokenizer (or one with the same vocabulary)"
        )


def _check_world_size(config: FinetuneConfig, world_size: int, log) -> None:
    t = config.training
    if world_size != t.devices:
        per_process = t.per_device_batch * t.gradient_accumulation
        log(
            f"warning: the config plans {t.devices} device(s) but {world_size} process(es) are running: the "
            f"global batch is {per_process * world_size}, not {per_process * t.devices}"
        )


def _output_dir(config: FinetuneConfig, base_dir: Path) -> Path:
    path = Path(config.output.dir).expanduser()
    return (path if path.is_absolute() else base_dir / path).resolve()


def _claim_output(out: Path, *, overwrite: bool, resume: bool) -> None:
    """Refuse to clobber a finished run unless asked; --overwrite removes only what a run writes."""
    finished = (out / SUMMARY_FILE).exists()
    if resume:
        if not any((out / CHECKPOINTS).glob("checkpoint-*")):
            raise FlanMiniError(f"--resume: no checkpoints under {out / CHECKPOINTS}; set training.save_steps")
        return
    if finished and not overwrite:
        raise FlanMiniError(f"{out} already holds a finished run; pass --overwrite or choose another output.dir")
    if overwrite:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
        for name in (*_FINAL_FILES, METRICS_FILE):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _ensure_tiny(config: FinetuneConfig, base_dir: Path, base: Location, fmt: ConversationFormat, log) -> None:
    if not base.is_local:
        raise FlanMiniError(f"base_model.init_tiny needs a local base_model.path, got the Hub id {base}")
    raw, info = load_raw(config.dataset, base_dir)

    def texts():
        # Rendered conversations teach the tokenizer the system prompt and role names; the turn-end token is
        # replaced because it is a special token, not text to learn merges from.
        for rows in raw.iter(batch_size=1000):
            for conversation in rows[info.layout]:
                row = normalise_turns(conversation)
                if row.turns:
                    yield fmt.render(row.turns, row.system)[0].replace(fmt.sep2, "\n")

    dataset_id = info.manifest_sha256 or info.source
    vocab_size = None
    if config.base_model.tokenizer is not None:  # e.g. LLaMA's: the tiny model embeds its vocabulary
        vocab_size = load_training_tokenizer(config.base_model, base_dir).vocab_size
    if ensure_tiny_base(base.path, config.base_model.init_tiny, texts(), dataset_id, vocab_size):
        log(f"built a tiny random base model at {base.path}")


def _training_arguments(config: FinetuneConfig, out: Path, has_eval: bool):
    from transformers import TrainingArguments

    t = config.training
    eval_kwargs = {"eval_strategy": "no"}
    if has_eval:
        eval_kwargs = {"eval_strategy": "steps", "eval_steps": t.eval_steps} if t.eval_steps else {"eval_strategy": "epoch"}
    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS),
        per_device_train_batch_size=t.per_device_batch,
        per_device_eval_batch_size=t.per_device_batch,
        gradient_accumulation_steps=t.gradient_accumulation,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.scheduler,
        # transformers reads an integer as steps and a float below 1 as a ratio of all steps.
        warmup_steps=t.warmup.steps if t.warmup.steps is not None else t.warmup.ratio,
        num_train_epochs=t.epochs if t.epochs is not None else 1.0,
        max_steps=t.max_steps if t.max_steps is not None else -1,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        bf16=config.base_model.precision == "bf16",
        fp16=config.base_model.precision == "fp16",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if t.save_steps else "no",
        save_steps=t.save_steps or 500,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        use_cpu=t.use_cpu,
        dataloader_num_workers=t.dataloader_workers,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        **eval_kwargs,
        **_checkpointing(config.base_model.gradient_checkpointing, TrainingArguments),
    )


def _checkpointing(enabled: bool, arguments_class) -> dict:
    """Activation checkpointing, under its newer name when this transformers has it."""
    import inspect

    if not enabled:
        return {}
    name = "activation_checkpointing"
    if name not in inspect.signature(arguments_class.__init__).parameters:
        name = "gradient_checkpointing"
    # Non-reentrant checkpointing works with a frozen base (no input that requires grad).
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


class MetricsLog:
    """Appends every Trainer log entry to metrics.jsonl and times optimizer steps."""

    def __init__(self, path: Path, *, append: bool, log):
        self.path = path
        self.log = log
        self.step_seconds: list[float] = []
        if not append:
            path.write_text("", encoding="utf-8")

    def callback(self):
        from transformers import TrainerCallback

        outer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                outer._began = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                outer.step_seconds.append(time.perf_counter() - outer._began)

            def on_log(self, args, state, control, logs=None, **kwargs):
                if not state.is_world_process_zero or not logs:
                    return
                entry = {"step": state.global_step, "epoch": state.epoch, **logs}
                with open(outer.path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry) + "\n")
                shown = "  ".join(
                    f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                    for key, value in logs.items()
                    if key in ("loss", "eval_loss", "learning_rate", "grad_norm")
                )
                if shown:
                    outer.log(f"step {state.global_step}/{state.max_steps}  {shown}")

        return _Callback()

    def summary(self) -> dict:
        # Read the file rather than this session's entries: a resumed run continues the same log.
        entries = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
        losses = [(e["step"], e["loss"]) for e in entries if "loss" in e]
        evals = [(e["step"], e["eval_loss"]) for e in entries if "eval_loss" in e]
        timed = self.step_seconds[1:] or self.step_seconds  # the first step pays for warm-up allocations
        return {
            "first_logged_loss": {"step": losses[0][0], "loss": losses[0][1]} if losses else None,
            "last_logged_loss": {"step": losses[-1][0], "loss": losses[-1][1]} if losses else None,
            "eval_loss": {"step": evals[-1][0], "loss": evals[-1][1]} if evals else None,
            "seconds_per_step": {
                "median": round(statistics.median(timed), 5) if timed else None,
                "mean": round(statistics.fmean(timed), 5) if timed else None,
            },
        }


def verify_adapter(folder: Path, expected_parameters: int) -> int:
    """Fail loudly when the saved adapter is missing or empty (the ZeRO-3 class of bug); return its size."""
    from safetensors import safe_open

    path = Path(folder) / ADAPTER_WEIGHTS
    if not path.is_file() or path.stat().st_size == 0:
        raise FlanMiniError(f"{path}: the adapter weights were not written")
    count = 0
    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
        for key in keys:
            count += math.prod(handle.get_slice(key).get_shape())
    if not keys or count == 0:
        raise FlanMiniError(
            f"{path}: the saved adapter holds no weights (0 tensors or 0 values); under DeepSpeed ZeRO-3 the "
            f"LoRA weights must be gathered before saving"
        )
    if count != expected_parameters:
        raise FlanMiniError(f"{path}: holds {count:,} values but the model has {expected_parameters:,} trainable ones")
    return count


def _finalise(model, tokenizer, fmt, config, config_path, out: Path, summary: dict) -> None:
    from .card import adapter_card

    partial = out / ".final.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    model.save_pretrained(partial)
    summary["adapter_values"] = verify_adapter(partial, summary["parameters"]["trainable"])
    fmt.save(partial)
    tokenizer.save(partial, fmt.chat_template())
    resolved = {"config_file": str(config_path.resolve()), **config.model_dump(mode="json")}
    (partial / CONFIG_FILE).write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8")
    (partial / "README.md").write_text(adapter_card(config, fmt, summary), encoding="utf-8")
    (partial / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    names = sorted(p.name for p in partial.iterdir() if p.name != SUMMARY_FILE) + [SUMMARY_FILE]
    for name in names:  # the summary goes last: its presence means the run is complete
        os.replace(partial / name, out / name)
    partial.rmdir()


def _describe_data(prepared) -> str:
    s = prepared.stats
    outcomes = ", ".join(f"{k} {v}" for k, v in s["outcomes"].items())
    evaluation = f", eval {s['eval']['rows']} rows" if s["eval"] else ""
    return (
        f"data: {s['rows']} rows from {prepared.info.source} ({outcomes}); train {s['train']['rows']} rows, "
        f"{s['train']['label_tokens']:,} label tokens{evaluation}"
    )


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "datasets", "tokenizers", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found
