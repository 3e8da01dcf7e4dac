"""Answering a prompt with a base model plus a trained adapter, in the format recorded with the adapter."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from flan_mini.errors import FlanMiniError

from .conversation import USER, ConversationFormat
from .encode import encode_prompt
from .tokenizer import TrainingTokenizer, load_saved


@dataclass
class LoadedAdapter:
    model: object
    tokenizer: TrainingTokenizer
    fmt: ConversationFormat
    base: str


def load_adapter(adapter_dir: str | Path, base: str | None = None, device: str = "cpu") -> LoadedAdapter:
    """Base model + adapter in eval mode. ``base`` overrides the base recorded in adapter_config.json."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = Path(adapter_dir)
    config_file = adapter_dir / "adapter_config.json"
    if not config_file.is_file():
        raise FlanMiniError(f"{adapter_dir}: no adapter_config.json; expected a folder written by `flan-mini finetune`")
    fmt = ConversationFormat.load(adapter_dir)
    base = base or json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise FlanMiniError(f"{config_file}: records no base model; pass --base")
    # The adapter folder carries the tokenizer (with the format's chat template and the encoding mode its
    # training used); fall back to the base's.
    if (adapter_dir / "tokenizer_config.json").is_file():
        tokenizer = load_saved(adapter_dir)
    else:
        tokenizer = TrainingTokenizer(AutoTokenizer.from_pretrained(base, use_fast=True), "fast", base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32 if device == "cpu" else "auto")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = PeftModel.from_pretrained(model, str(adapter_dir)).to(device)
    model.eval()
    return LoadedAdapter(model, tokenizer, fmt, base)


@dataclass
class Reply:
    text: str
    new_tokens: int  # generated ids, the closing end-of-sequence token included
    ended: bool  # the model closed its turn (rather than hitting max_new_tokens)

    def shown(self) -> str:
        """What the command prints: the reply, or what happened when there is no text to show."""
        if self.text:
            return self.text
        if self.new_tokens == 0 or (self.ended and self.new_tokens == 1):
            return "no reply: the model ended its turn at once"
        return f"no reply text: the model generated {self.new_tokens} token(s) that decode to nothing visible"


def generate(
    loaded: LoadedAdapter,
    prompt: str,
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_k: int = 0,
    seed: int = 0,
) -> Reply:
    """The assistant's reply to one user prompt. Temperature 0 decodes greedily (deterministic)."""
    import torch

    ids = encode_prompt([(USER, prompt)], loaded.tokenizer, loaded.fmt)
    hf = loaded.tokenizer.hf
    eos = hf.convert_tokens_to_ids(loaded.fmt.sep2)
    inputs = torch.tensor([ids], device=loaded.model.device)
    sampling = {"do_sample": False}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_k": top_k or None}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        output = loaded.model.generate(
            input_ids=inputs,
            attention_mask=torch.ones_like(inputs),
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=hf.pad_token_id if hf.pad_token_id is not None else eos,
            **sampling,
        )
    new = output[0, len(ids):].tolist()
    reply = hf.decode(new, skip_special_tokens=True).strip()
    return Reply(reply, len(new), bool(new) and new[-1] == eos)
