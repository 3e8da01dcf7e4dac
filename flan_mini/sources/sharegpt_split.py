"""Splitting a cleaned ShareGPT conversation into pieces that fit a budget: lengths in characters or tokens, as
the trainer sees them in a chat format, and where to cut (`Splitter.pieces`; the greedy rule is `split_points`,
in sharegpt_clean.py). In tokens, conversations that fit by a byte bound are not tokenised (token_bound.py).

With `chat_format: vicuna_v1.1` and `unit: tokens`, a piece of exchanges (q1, a1), (q2, a2) is measured as

    1 (start token) + len("<system prompt> ") + len("USER: q1 ") + len("ASSISTANT: a1</s>") + len("USER: q2 ") + ...

each part tokenised on its own (a token the tokenizer would merge across two parts is counted twice, so the
estimate errs towards shorter pieces), and max_length is the training sequence length itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, field_validator, model_validator

from ..errors import SourceError
from .base import StrictModel
from ..lengths import count_tokens
from ..token_bound import byte_slack, utf8_lengths
from .sharegpt_clean import HUMAN, split_points

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class SplitConfig(StrictModel):
    max_length: PositiveInt | None = Field(
        8192,
        description="Longest piece, in `unit`s: longer conversations are cut between exchanges into pieces that fit "
        "(an exchange longer than this on its own is kept whole). null: no splitting. The default, 8192 characters, "
        "is about FastChat's 2048 LLaMA tokens of English.",
    )
    unit: Literal["chars", "tokens"] = Field(
        "chars", description="What max_length counts: characters (offline, no dependency) or tokens of `tokenizer`."
    )
    tokenizer: str | None = Field(
        None,
        description="With unit: tokens, the tokenizer to count with: a tokenizer.json file or a folder holding one "
        "(relative to the recipe file), or a Hub model id (needs the Hub or the local HF cache). Needs `tokenizers`.",
    )
    turn_overhead: NonNegativeInt = Field(
        0, description="Added to each turn's length for the role tags a chat template adds (FastChat counts 6 tokens)."
    )
    chat_format: str | None = Field(
        None,
        description="Count each piece as the trainer sees it in this conversation format (vicuna_v1.1, the reference "
        "adapter's): every turn with its role tags and separators, plus the format's system prompt and, in tokens, "
        "the start token once per piece. max_length is then the training sequence length itself (e.g. 1280).",
    )

    @field_validator("chat_format")
    @classmethod
    def _known_format(cls, value):
        if value is not None:
            from finetune.conversation import FORMATS  # a plain dataclass module: no torch

            if value not in FORMATS:
                raise ValueError(f"unknown chat_format {value!r}; expected one of: {', '.join(sorted(FORMATS))}")
        return value

    @model_validator(mode="after")
    def _tokenizer_matches_unit(self):
        if self.unit == "tokens" and not self.tokenizer:
            raise ValueError("unit: tokens needs a tokenizer (a tokenizer.json path or a Hub model id)")
        if self.tokenizer and self.unit != "tokens":
            raise ValueError("a tokenizer is only used with unit: tokens")
        return self


def describe_split(split: SplitConfig) -> str:
    """The settings in one line, for dry runs and the manifest."""
    if split.max_length is None:
        return "off"
    return (
        f"at {split.max_length:,} {split.unit}" + (f" of {split.tokenizer}" if split.tokenizer else "")
        + (f" in the {split.chat_format} format (system prompt included)" if split.chat_format else "")
        + (f", +{split.turn_overhead} per turn" if split.turn_overhead else "")
    )


class Splitter:
    """Measures exchanges for one source's split settings; loads its tokenizer once."""

    def __init__(self, config: SplitConfig, base_dir: Path | None = None):
        self.config, self.base_dir = config, base_dir
        self._tokenizer = None
        self._piece_overhead: int | None = None

    def lengths(self, texts: list[str]) -> list[int]:
        """Characters, or tokens (special tokens not added), of each text."""
        if self.config.unit == "tokens":
            return count_tokens(self.load_tokenizer(), texts)
        return [len(text) for text in texts]

    def chat_format(self):
        """The ConversationFormat named by chat_format, or None."""
        name = self.config.chat_format
        if name is None:
            return None
        from finetune.conversation import FORMATS

        return FORMATS[name]

    def budget(self) -> int | None:
        """What the exchanges of one piece may take: max_length less, with a chat format, the piece's own
        overhead (the system prompt, its separator and, in tokens, the start token)."""
        split = self.config
        if split.max_length is None or (fmt := self.chat_format()) is None:
            return split.max_length
        if self._piece_overhead is None:
            self._piece_overhead = self.lengths([fmt.system + fmt.sep])[0] + (split.unit == "tokens")
            if self._piece_overhead >= split.max_length:
                raise SourceError(
                    f"split_conversations.max_length {split.max_length:,} {split.unit} leaves no room for turns: "
                    f"the {fmt.name} system prompt alone takes {self._piece_overhead:,}"
                )
        return split.max_length - self._piece_overhead

    def pair_lengths(self, turns: list[tuple[str, str]]) -> list[int]:
        """Length of each exchange: its two turns (with their role tags when a chat format is set), plus overheads.

        Turns are measured one by one, so a token the trainer's tokenizer would merge across two turns is
        counted twice: the estimate errs towards shorter pieces.
        """
        lengths = [length + self.config.turn_overhead for length in self.lengths(self._texts(turns))]
        return [lengths[i] + lengths[i + 1] for i in range(0, len(lengths), 2)]

    def _texts(self, turns: list[tuple[str, str]]) -> list[str]:
        """Each turn as it is measured: its value, or with its role tags in the chat format."""
        fmt = self.chat_format()
        if fmt is None:
            return [value for _, value in turns]
        # as ConversationFormat.render writes them: "USER: q " and "ASSISTANT: a</s>"
        return [f"{fmt.user_role}: {value}{fmt.sep}" if role == HUMAN else f"{fmt.assistant_role}: {value}{fmt.sep2}"
                for role, value in turns]

    def pieces(self, turns: list[tuple[str, str]]) -> list[tuple[int, int, bool]]:
        """Where to cut a cleaned conversation: (first exchange, end exchange, over budget) per piece."""
        return self.pieces_many([turns])[0]

    def pieces_many(self, conversations: list[list[tuple[str, str]]]) -> list[list[tuple[int, int, bool]]]:
        """`pieces` of each conversation, deciding many at once: the same pieces as one by one.

        In tokens, a conversation whose upper bound (UTF-8 bytes plus the tokenizer's proved slack per turn, see
        token_bound.py) fits the budget is one piece without tokenising; the turns of all the others go to the
        tokenizer in ONE batch (its Rust side then uses every core; a call per conversation barely did), and each
        is cut by `split_points`. Same pieces either way: a bound that fits means the tokens fit, and a text's
        token count does not depend on the batch it is in (padding is off, see `load_tokenizer`).
        (Deciding exchange by exchange, tokenising only where the greedy cut's bounds cannot decide, gave the same
        98.6% of the text tokenised on benchmarks/sharegpt.py's file at 1,280 tokens: its exchanges alone are
        mostly over the budget's byte bound.)
        """
        budget = self.budget()
        if budget is None:
            return [[(0, len(turns) // 2, False)] for turns in conversations]
        overhead = self.config.turn_overhead
        if self.config.unit != "tokens":
            return [self._cut([len(t) + overhead for t in self._texts(turns)], budget) for turns in conversations]
        slack = self._slack()
        results: list = [None] * len(conversations)
        undecided, texts = [], []  # (conversation, its number of turns); their texts, in order
        for position, turns in enumerate(conversations):
            measured = self._texts(turns)
            if slack is not None and sum(utf8_lengths(measured)) + len(measured) * (slack + overhead) <= budget:
                results[position] = [(0, len(turns) // 2, False)]
            else:
                undecided.append((position, len(measured)))
                texts.extend(measured)
        lengths = self.lengths(texts) if texts else []
        start = 0
        for position, count in undecided:
            results[position] = self._cut([length + overhead for length in lengths[start : start + count]], budget)
            start += count
        return results

    @staticmethod
    def _cut(turn_lengths: list[int], budget: int) -> list[tuple[int, int, bool]]:
        """The greedy cut of exchanges measured turn by turn (overheads included)."""
        pairs = [turn_lengths[i] + turn_lengths[i + 1] for i in range(0, len(turn_lengths), 2)]
        return [(start, end, end - start == 1 and pairs[start] > budget) for start, end in split_points(pairs, budget)]

    def prepare(self) -> None:
        """Load the tokenizer and settle the budget and slack now, so other threads only read them."""
        self.budget()
        if self.config.unit == "tokens" and self.config.max_length is not None:
            self._slack()

    def _slack(self) -> int | None:
        if not hasattr(self, "_slack_value"):
            self._slack_value = byte_slack(self.load_tokenizer())
        return self._slack_value

    def load_tokenizer(self):
        if self._tokenizer is not None:
            return self._tokenizer
        spec = self.config.tokenizer
        try:
            import tokenizers  # noqa: F401
        except ImportError:
            raise SourceError("split_conversations.unit: tokens needs the `tokenizers` package (pip install tokenizers)") from None
        from ..lengths import load_tokenizer

        path = Path(spec).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        try:
            if not path.exists() and not _HUB_ID.match(spec):
                raise SourceError(f"split_conversations.tokenizer {spec!r}: no tokenizer.json at {path}, and not a Hub model id (org/name)")
            tokenizer = load_tokenizer(spec, self.base_dir)
            # Counts must not depend on which texts are tokenised together (pieces_many batches many conversations).
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        except SourceError:
            raise
        except Exception as exc:  # tokenizers raises plain Exceptions for unreadable files and Hub failures
            raise SourceError(f"split_conversations.tokenizer {spec!r}: cannot load ({exc})") from None
        return self._tokenizer
