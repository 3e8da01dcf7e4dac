"""Measuring text length for few-shot budgets: characters, or tokens of a named tokenizer when available.

`bounds` gives an upper bound per text without tokenising where the tokenizer allows it (token_bound.py):
callers compare bounds with the budget first and ask `lengths` only for the texts that might not fit.
"""

from __future__ import annotations

from pathlib import Path

from .errors import FlanMiniError
from .token_bound import byte_slack, utf8_lengths


class Measure:
    """Lengths in characters."""

    unit = "chars"
    name: str | None = None
    source: str | None = None  # where the tokenizer is loaded from (render_spec.py rebuilds the measure from it)

    def lengths(self, texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    bounds_exact = True  # `bounds` are the lengths themselves

    def bounds(self, texts: list[str]) -> list[int]:
        """An upper bound of each text's length (here the length)."""
        return self.lengths(texts)


class TokenMeasure(Measure):
    """Lengths in tokens of a `tokenizers` tokenizer (special tokens not counted)."""

    unit = "tokens"

    def __init__(self, tokenizer, name: str, source: str | None = None):
        self.tokenizer, self.name, self.source = tokenizer, name, source or name

    def lengths(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return count_tokens(self.tokenizer, texts)

    @property
    def slack(self) -> int | None:
        """tokens <= UTF-8 bytes + slack for this tokenizer (token_bound.py), or None when that is not proved."""
        if not hasattr(self, "_slack"):
            self._slack = byte_slack(self.tokenizer)
        return self._slack

    @property
    def bounds_exact(self) -> bool:
        return self.slack is None

    def bounds(self, texts: list[str]) -> list[int]:
        """UTF-8 bytes + slack per text, without tokenising; the token counts when no bound is proved."""
        if self.slack is None:
            return self.lengths(texts)
        return [length + self.slack for length in utf8_lengths(texts)]


def count_tokens(tokenizer, texts: list[str]) -> list[int]:
    """Tokens of each text, special tokens not added. `encode_batch_fast` (tokenizers >= 0.21) gives the same ids
    without computing character offsets, which nothing here reads: about 1.5x faster. `len(encoding)` is its number
    of ids, without building the Python list of them."""
    encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    return [len(e) for e in encode(texts, add_special_tokens=False)]


TOKENIZER_FILE = "tokenizer.json"


def load_tokenizer(name: str, base_dir: Path | None = None, *, allow_download: bool = True):
    """The project's one tokenizer loader: a `tokenizers.Tokenizer` from a tokenizer.json file, a folder holding
    one (relative to `base_dir`), or a Hub model id (its tokenizer.json through the Hugging Face cache, fetched
    only with `allow_download`, with the Hub request timeouts). Failures propagate; callers word them."""
    from tokenizers import Tokenizer

    local = Path(name).expanduser()
    if not local.is_absolute() and base_dir is not None:
        local = base_dir / local
    if local.exists():
        return Tokenizer.from_file(str(local / TOKENIZER_FILE if local.is_dir() else local))
    from huggingface_hub import hf_hub_download

    from .hub_timeouts import install

    install()
    return Tokenizer.from_file(hf_hub_download(name, TOKENIZER_FILE, local_files_only=not allow_download))


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
        import tokenizers  # noqa: F401
    except ImportError:
        return _unavailable(name, "the `tokenizers` package is not installed (pip install tokenizers)", allow_download)
    try:
        return TokenMeasure(load_tokenizer(name, base_dir, allow_download=allow_download), name, _source(name, base_dir)), None
    except Exception as exc:  # any failure to find or parse it means "not available"
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        if type(exc).__name__ == "LocalEntryNotFoundError":  # huggingface_hub's "not cached, and not fetching"
            reason = "not in the local Hugging Face cache"
        return _unavailable(name, reason, allow_download)


def _source(name: str, base_dir: Path | None) -> str:
    """The tokenizer's file as an absolute path when it is local (so any process finds it), else the Hub id."""
    local = Path(name).expanduser()
    if not local.is_absolute() and base_dir is not None:
        local = base_dir / local
    return str(local.resolve()) if local.exists() else name


def _unavailable(name: str, reason: str, allow_download: bool) -> tuple[Measure, str]:
    if allow_download:
        raise FlanMiniError(
            f"tokenizer {name!r} cannot be loaded ({reason}): the few-shot budget is in its tokens. Give a "
            "tokenizer.json path or a Hub model id that has one, make the Hub reachable (or the HF cache hold it), "
            "or remove `tokenizer` to count max_length in characters"
        )
    return Measure(), (f"fewshot.tokenizer {name!r} skipped ({reason}): the few-shot budget is in its tokens; "
                       "`build` fetches it and stops if it cannot")
