"""Measuring text length for few-shot budgets: characters, or tokens of a named tokenizer when available."""

from __future__ import annotations

import os
from pathlib import Path


class Measure:
    """Lengths in characters."""

    unit = "chars"
    name: str | None = None

    def lengths(self, texts: list[str]) -> list[int]:
        return [len(t) for t in texts]


class TokenMeasure(Measure):
    """Lengths in tokens of a `tokenizers` tokenizer (special tokens not counted)."""

    unit = "tokens"

    def __init__(self, tokenizer, name: str):
        self.tokenizer, self.name = tokenizer, name

    def lengths(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]


def load_measure(name: str | None, base_dir: Path, *, allow_download: bool = False) -> tuple[Measure, str | None]:
    """The budget's measure, and a note when a named tokenizer is not available (characters are used then).

    `name`: a tokenizer.json file, a folder holding one (relative to `base_dir`), or a Hub model id
    (read from the local Hugging Face cache; fetched only with `allow_download`).
    """
    if name is None:
        return Measure(), None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return Measure(), f"tokenizer {name!r} not used: the `tokenizers` package is not installed; lengths are counted in characters"
    local = Path(name) if os.path.isabs(name) else base_dir / name
    try:
        if local.exists():
            file = local / "tokenizer.json" if local.is_dir() else local
            return TokenMeasure(Tokenizer.from_file(str(file)), name), None
        from huggingface_hub import hf_hub_download

        from .hub_timeouts import install

        install()
        path = hf_hub_download(name, "tokenizer.json", local_files_only=not allow_download)
        return TokenMeasure(Tokenizer.from_file(path), name), None
    except Exception as exc:  # any failure to find or parse it means "not available"
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return Measure(), f"tokenizer {name!r} not available ({reason}); lengths are counted in characters"
