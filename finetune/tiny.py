"""A tiny random LLaMA and a byte-level BPE tokenizer trained on the dataset: a base model for offline smoke runs.

The tokenizer behaves like LLaMA's where it matters: ``<unk>``, ``<s>``, ``</s>`` are ids 0, 1, 2, ``<s>`` is
prepended on encode, and ``</s>`` is the end-of-sequence token that closes each assistant turn.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from flan_mini.errors import FlanMiniError

from .config import TinyBase

SPEC_FILE = "tiny_base.json"
SPECIALS = ["<unk>", "<s>", "</s>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer (no unknown characters possible) wrapped as a transformers fast tokenizer.

    Pass texts without literal special tokens: the BPE trainer would learn merges such as ``.</`` from them.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    core.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>", model_max_length=1_000_000
    )


# RoPE has no weights, so the position limit costs nothing; a fixed value keeps the base valid for any max_length.
MAX_POSITIONS = 4096


def tiny_model(spec: TinyBase, vocab_size: int, max_positions: int = MAX_POSITIONS):
    """A randomly initialised LlamaForCausalLM; the weights depend only on ``spec.seed``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        # After the final RMSNorm a hidden state has norm ~sqrt(hidden), so a logit is at most ~std * hidden:
        # with transformers' default 0.02 and width 64 that is ~1.3, and no adapter can take the loss far below
        # log(vocab). A wider init lets the smoke run and the tests show real learning.
        initializer_range=spec.init_std,
    )
    # Seed a forked RNG so the caller's global torch RNG is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        return LlamaForCausalLM(config)


def ensure_tiny_base(
    folder: Path, spec: TinyBase, texts: Iterable[str], dataset_id: str, vocab_size: int | None = None
) -> bool:
    """Create the tiny base in ``folder`` unless one built from the same spec is already there.

    With ``vocab_size`` (a tokenizer named apart from the base, e.g. LLaMA's), only the model is built, with that
    many embeddings, and no tokenizer is trained. Returns True when it was built now. A base whose tokenizer was trained on another dataset is still
    reused (byte-level BPE encodes any text). The folder is written next to its final place and renamed in, so
    an interrupted build never looks finished.
    """
    folder = Path(folder)
    if folder.exists():
        recorded = folder / SPEC_FILE
        if not recorded.is_file():
            raise FlanMiniError(f"base_model.path {folder} exists but was not made by init_tiny ({SPEC_FILE} missing)")
        data = json.loads(recorded.read_text(encoding="utf-8"))
        found = data.get("spec")
        if vocab_size is not None and data.get("vocab_size") not in (None, vocab_size):
            raise FlanMiniError(
                f"tiny base {folder} has {data['vocab_size']:,} embeddings but the tokenizer has {vocab_size:,}; "
                f"delete the folder to rebuild it"
            )
        if found != spec.model_dump():
            raise FlanMiniError(
                f"tiny base {folder} was built from {found}, but the config now asks for {spec.model_dump()}; "
                f"delete the folder to rebuild it"
            )
        return False
    tokenizer = train_tokenizer(texts, spec.vocab_size) if vocab_size is None else None
    model = tiny_model(spec, vocab_size or len(tokenizer))
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save_pretrained(partial)
    if tokenizer is not None:
        tokenizer.save_pretrained(partial)
    recorded = {"spec": spec.model_dump(), "trained_on": dataset_id, "vocab_size": model.config.vocab_size}
    (partial / SPEC_FILE).write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")
    partial.rename(folder)
    return True
