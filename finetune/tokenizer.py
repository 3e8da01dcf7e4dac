"""The training tokenizer: which tokenizer a run encodes with, in which mode, and the record of that choice.

Two modes:
  ``spm``   the original (legacy) LLaMA tokenizer Vicuna and Flacuna trained with: ``<s>``, then each text
            piece between special tokens encoded by the sentencepiece model with its dummy prefix, and ``</s>``
            closing each reply. So after ``</s>`` the next turn starts ``▁US ER :``, and code indentation is
            ``▁▁▁ ▁total`` as sentencepiece ranks it. Used for LLaMA-family bases, whether they ship
            ``tokenizer.model``, ``tokenizer.json`` (the sentencepiece model is rebuilt from it) or both.
  ``fast``  the base's transformers fast tokenizer as it is, one pass over the rendered text, labels from
            character offsets: for other tokenizers.
``auto`` (the default) picks ``spm`` when the tokenizer folder has ``tokenizer.model`` or a sentencepiece-style
``tokenizer.json``. The transformers tokenizer is loaded in both modes: it is saved with the adapter (with the
format as its chat template) and decodes generated text.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from flan_mini.errors import FlanMiniError

from .config import BaseModelSection, Location
from .spm import SPM_FILE, TOKENIZER_JSON, load_processor, looks_like_llama_spm

MODES = ("auto", "spm", "fast")
RECORD_FILE = "tokenization.json"  # written with the adapter: how its training data was tokenised
_TOKENIZER_FILES = ["tokenizer*", "special_tokens_map.json", "*.model", "added_tokens.json"]


class LegacySpm:
    """Encodes text pieces exactly as transformers 4.28's ``LlamaTokenizer`` did (``sp_model.encode``)."""

    def __init__(self, processor, described: str):
        self.processor = processor
        self.described = described
        self.bos_id, self.eos_id, self.unk_id = processor.bos_id(), processor.eos_id(), processor.unk_id()
        self.specials = [processor.id_to_piece(i) for i in range(processor.get_piece_size())
                         if processor.is_control(i) or processor.is_unknown(i)]

    def encode(self, text: str) -> list[int]:
        return self.processor.encode(text) if text else []

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(texts)

    def encode_text(self, text: str) -> list[int]:
        """Any text as the legacy tokenizer saw it: ``<s>``, special tokens by id, the pieces between them by
        sentencepiece, each with its dummy prefix."""
        pattern = "(" + "|".join(re.escape(s) for s in sorted(self.specials, key=len, reverse=True)) + ")"
        ids = [self.bos_id]
        for part in re.split(pattern, text):
            if part in self.specials:
                ids.append(self.processor.piece_to_id(part))
            elif part:
                ids += self.processor.encode(part)
        return ids

    def sha256(self) -> str:
        return hashlib.sha256(self.processor.serialized_model_proto()).hexdigest()


@dataclass
class TrainingTokenizer:
    """The tokenizer a run encodes with: the transformers one, plus the sentencepiece encoder in ``spm`` mode."""

    hf: object
    mode: str
    source: str
    spm: LegacySpm | None = None
    folder: Path | None = None
    settings: dict = field(default_factory=dict)

    @property
    def eos_id(self) -> int:
        return self.spm.eos_id if self.spm else self.hf.eos_token_id

    @property
    def vocab_size(self) -> int:
        """How many ids encoding can produce (the model must embed at least this many)."""
        return self.spm.processor.get_piece_size() if self.spm else len(self.hf)

    @property
    def pad_id(self) -> int:
        return self.hf.pad_token_id

    @property
    def special_tokens(self) -> list[str]:
        """Tokens whose literal text drops a row: the legacy tokenizer split them out of the text."""
        declared = [t for t in self.hf.all_special_tokens if t]
        return sorted(set(self.spm.specials) | set(declared)) if self.spm else declared

    def describe(self) -> dict:
        """What the run log, ``tokenization.json`` and the adapter card record."""
        return {"mode": self.mode, "source": self.source, "class": type(self.hf).__name__, **self.settings}

    def summary_line(self) -> str:
        extra = ", ".join(f"{k} {v}" for k, v in self.settings.items() if k != "spm_sha256")
        return f"tokenizer: {self.source}, mode {self.mode} ({type(self.hf).__name__}{', ' + extra if extra else ''})"

    def save(self, folder: Path, chat_template: str) -> None:
        """The tokenizer files for the adapter folder, with the chat template and the record of the mode."""
        self.hf.chat_template = chat_template
        self.hf.save_pretrained(folder)
        if self.folder is not None and (self.folder / SPM_FILE).is_file():
            shutil.copyfile(self.folder / SPM_FILE, Path(folder) / SPM_FILE)
        (Path(folder) / RECORD_FILE).write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")


def tokenizer_location(section: BaseModelSection, base_dir: Path) -> Location:
    return Location(section.tokenizer or section.path, base_dir)


def local_folder(location: Location, revision: str | None) -> Path:
    """A local folder with the tokenizer's files: the folder itself, or a snapshot of them from the Hub."""
    if location.is_local:
        if not location.path.is_dir():
            raise FlanMiniError(f"tokenizer folder {location.path} does not exist")
        return location.path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(location.hub_id, revision=revision, allow_patterns=_TOKENIZER_FILES))
    except Exception as exc:  # offline, unknown repo, gated repo: all end here with the Hub's own words
        raise FlanMiniError(
            f"tokenizer {location.hub_id}: cannot fetch its files from the Hub ({type(exc).__name__}: {exc}); "
            f"give a local folder (paths in --set are relative to the config file)"
        ) from None


def choose_mode(folder: Path, requested: str) -> str:
    if requested != "auto":
        return requested
    if (folder / SPM_FILE).is_file():
        return "spm"
    path = folder / TOKENIZER_JSON
    if path.is_file() and looks_like_llama_spm(json.loads(path.read_text(encoding="utf-8"))):
        return "spm"
    return "fast"


def load_training_tokenizer(section: BaseModelSection, base_dir: Path) -> TrainingTokenizer:
    """Load the tokenizer a run encodes with (``base_model.tokenizer``, default the base model's folder)."""
    from transformers import AutoTokenizer

    location = tokenizer_location(section, base_dir)
    revision = section.revision if section.tokenizer is None else None
    folder = local_folder(location, revision)
    mode = choose_mode(folder, section.tokenizer_mode)
    try:
        hf = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except (OSError, ValueError, ImportError) as exc:
        raise FlanMiniError(f"tokenizer {location}: transformers cannot load it ({exc})") from None
    settings: dict = {}
    encoder = None
    if mode == "spm":
        processor, described = load_processor(folder)
        encoder = LegacySpm(processor, described)
        # The transformers tokenizer decodes and is saved with the adapter: it must agree on the special ids.
        for name, wanted in (("bos", encoder.bos_id), ("eos", encoder.eos_id), ("unk", encoder.unk_id)):
            if wanted >= 0 and getattr(hf, f"{name}_token_id") != wanted:
                setattr(hf, f"{name}_token", processor.id_to_piece(wanted))
        settings = {
            "encoding": "legacy LLaMA: <s>, each text piece between special tokens by sentencepiece with its dummy "
                        "prefix, </s> after each reply",
            "sentencepiece_model": described,
            "spm_sha256": encoder.sha256(),
            "vocab_size": processor.get_piece_size(),
            **spm_settings(processor),
        }
    else:
        if not getattr(hf, "is_fast", False):
            raise FlanMiniError(
                f"tokenizer {location}: {type(hf).__name__} is not a fast (Rust) tokenizer; the label mask needs "
                f"character offsets. Install `tokenizers`, or use a LLaMA-family tokenizer (tokenizer_mode spm)"
            )
        settings = {"encoding": "one pass over the rendered text, labels from character offsets", "vocab_size": len(hf)}
        if getattr(hf, "legacy", None) is not None:
            settings["legacy"] = hf.legacy
    if hf.pad_token is None:  # FastChat pads with <unk>
        hf.pad_token = hf.unk_token if hf.unk_token is not None else hf.eos_token
    hf.padding_side = "right"
    return TrainingTokenizer(hf, mode, str(location), encoder, folder, settings)


def spm_settings(processor) -> dict:
    """The sentencepiece settings that decide the ids, as recorded with the run."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto.FromString(processor.serialized_model_proto())
    return {
        "model_type": pb.TrainerSpec.ModelType.Name(proto.trainer_spec.model_type),
        "add_dummy_prefix": proto.normalizer_spec.add_dummy_prefix,
        "byte_fallback": proto.trainer_spec.byte_fallback,
        "normalization": proto.normalizer_spec.name,
    }


def load_saved(folder: Path) -> TrainingTokenizer:
    """The tokenizer saved with an adapter, in the mode its training used (``tokenization.json``)."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    record = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8")) if (folder / RECORD_FILE).is_file() else {}
    mode = record.get("mode", "fast")
    hf = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    encoder = LegacySpm(*load_processor(folder)) if mode == "spm" else None
    return TrainingTokenizer(hf, mode, record.get("source", str(folder)), encoder, folder)
