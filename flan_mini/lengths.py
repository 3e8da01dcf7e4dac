"""Measuring text length for few-shot budgets: characters, or tokens of a named tokenizer when available."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import FlanMiniError


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
    """The budget's measure, and a note when a named tokenizer was skipped.

    `name`: a tokenizer.json file, a folder holding one (relative to `base_dir`), or a Hub model id
    (read from the local Hugging Face cache; fetched only with `allow_download`). Without `allow_download`
    (`validate`, offline) a tokenizer that cannot be had is skipped with a note. With it (`build`) that is
    an error: a budget meant in tokens counted in characters would silently change every few-shot row.
    """
    if name is None:
        return Measure(), None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return _unavailable(name, "the `tokenizers` package is not installed (pip install tokenizers)", allow_download)
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
        if type(exc).__name__ == "LocalEntryNotFoundError":  # huggingface_hub's "not cached, and not fetching"
            reason = "not in the local Hugging Face cache"
        return _unavailable(name, reason, allow_download)


def _unavailable(name: str, reason: str, allow_download: bool) -> tuple[Measure, str]:
    if allow_download:
        raise FlanMiniError(
            f"tokenizer {name!r} cannot be loaded ({reason}): the few-shot budget is in its tokens. Give a "
            "tokenizer.json path or a Hub model id that has one, make the Hub reachable (or the HF cache hold it), "
            "or remove `tokenizer` to count max_length in characters"
        )
    return Measure(), (f"fewshot.tokenizer {name!r} skipped ({reason}): the few-shot budget is in its tokens; "
                       "`build` fetches it and stops if it cannot")
