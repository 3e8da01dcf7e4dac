"""The base model, its tokenizer and the LoRA wrapper; and the dry run that counts parameters on the meta device."""

from __future__ import annotations

import importlib.util
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from flan_mini.errors import FlanMiniError

from .config import BaseModelSection, FinetuneConfig, Location, LoraSection, architecture_file

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def load_base_model(section: BaseModelSection, location: Location, use_cpu: bool):
    """The frozen base model in the configured precision, optionally 8-bit, ready for LoRA."""
    import torch
    from transformers import AutoModelForCausalLM

    cuda = torch.cuda.is_available() and not use_cpu
    if section.precision == "fp16" and not cuda:
        raise FlanMiniError("base_model.precision fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
    kwargs = {"dtype": getattr(torch, _DTYPES[section.precision]), "revision": section.revision}
    if section.load_in_8bit:
        if not cuda or importlib.util.find_spec("bitsandbytes") is None:
            raise FlanMiniError(
                "base_model.load_in_8bit needs a CUDA GPU and the `bitsandbytes` package "
                "(pip install bitsandbytes); or set load_in_8bit: false"
            )
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    model = AutoModelForCausalLM.from_pretrained(str(location), **kwargs)
    if section.load_in_8bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=section.gradient_checkpointing)
    model.config.use_cache = False  # the KV cache is useless during training and costs memory
    return model


def lora_config(section: LoraSection):
    from peft import LoraConfig

    return LoraConfig(
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        target_modules=list(section.target_modules),
        bias=section.bias,
        task_type="CAUSAL_LM",
    )


def attach_lora(model, section: LoraSection):
    """Wrap ``model`` with fresh LoRA layers; unknown target names fail with the names that do exist."""
    from peft import get_peft_model

    names = [name for name, _ in model.named_modules()]
    missing = [t for t in section.target_modules if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise FlanMiniError(
            f"lora.target_modules: {missing} not found in {type(model).__name__}; its linear layers are {leaves}"
        )
    with warnings.catch_warnings():
        # peft 0.21 calls a transformers method that transformers 5 deprecates; not actionable for users.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, lora_config(section))


@dataclass
class DryRun:
    architecture: str
    model_class: str
    total: int
    trainable: int
    lora_modules: int
    lines: list[str]


def architecture_config(config: FinetuneConfig, base_dir: Path):
    """The base model's transformers config without its weights: shipped file, tiny spec, or the model's own."""
    from transformers import AutoConfig, LlamaConfig

    section = config.base_model
    if section.architecture is not None:
        path = architecture_file(section.architecture, base_dir)
        data = json.loads(path.read_text(encoding="utf-8"))
        model_type = data.pop("model_type", None)
        if model_type is None:
            raise FlanMiniError(f"{path}: a config.json needs `model_type` (e.g. llama)")
        return AutoConfig.for_model(model_type, **data), f"{section.architecture} ({path.name})"
    location = Location(section.path, base_dir)
    if section.init_tiny is not None and not (location.is_local and location.path.is_dir()):
        spec = section.init_tiny
        return LlamaConfig(
            vocab_size=spec.vocab_size,
            hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
        ), "init_tiny spec (vocabulary at most vocab_size)"
    try:
        return AutoConfig.from_pretrained(str(location), revision=section.revision), str(location)
    except OSError as exc:
        raise FlanMiniError(
            f"base_model.path {location}: cannot read its config offline ({exc}); set base_model.architecture "
            f"to a shipped architecture or a config.json path"
        ) from None


def dry_run(config: FinetuneConfig, base_dir: Path) -> DryRun:
    """Build the model on the meta device (no memory, no weights), attach LoRA and count parameters."""
    import torch
    from transformers import AutoModelForCausalLM

    arch_config, described = architecture_config(config, base_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(arch_config)
    peft_model = attach_lora(model, config.lora)
    trainable, total = peft_model.get_nb_trainable_parameters()
    lora_modules = sum(1 for name, _ in peft_model.named_modules() if name.endswith(".lora_A"))
    t = config.training
    global_batch = t.per_device_batch * t.gradient_accumulation * t.devices
    warmup = f"{t.warmup.steps} steps" if t.warmup.steps is not None else f"ratio {t.warmup.ratio:g} of all steps"
    length = f"{t.epochs:g} epoch(s)" if t.epochs is not None else f"{t.max_steps} optimizer steps"
    lines = [
        f"base model    {config.base_model.path}",
        f"architecture  {described}: {type(model).__name__}, {arch_config.num_hidden_layers} layers, "
        f"hidden {arch_config.hidden_size}, vocab {arch_config.vocab_size}",
        f"LoRA          r={config.lora.r} alpha={config.lora.alpha:g} dropout={config.lora.dropout:g} on "
        f"{', '.join(config.lora.target_modules)} ({lora_modules} modules)",
        f"parameters    {total:,} total",
        f"trainable     {trainable:,} ({100 * trainable / total:.4f}%)",
        f"batch         {t.per_device_batch} per device x {t.gradient_accumulation} accumulation x {t.devices} "
        f"device(s) = {global_batch}",
        f"schedule      lr {t.learning_rate:g} {t.scheduler}, warm-up {warmup}, {length}, max length {t.max_length}",
        f"precision     {config.base_model.precision}{', base in 8 bits' if config.base_model.load_in_8bit else ''}",
        f"tokenizer     {config.base_model.tokenizer or config.base_model.path}, mode {config.base_model.tokenizer_mode} "
        f"(see the tokens with --inspect N)",
    ]
    return DryRun(described, type(model).__name__, total, trainable, lora_modules, lines)
