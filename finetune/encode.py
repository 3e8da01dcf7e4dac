"""Conversations to token ids and labels: role clean-up, assistant-only label mask, truncation at turn boundaries.

Each row is rendered once with the conversation format, then tokenised in one of two modes (tokenizer.py):
``spm``, the legacy LLaMA ids Vicuna trained on (each round's text by sentencepiece, ``</s>`` between them; a
token is labelled when it follows its round's prompt), or ``fast``, one pass of a fast tokenizer where a token
is labelled when its characters lie inside an assistant span. Either way a prompt tokenised at inference gives
exactly the training ids. Per-row Python is unavoidable here (one conversation at a time), but the tokenisers
run on whole batches.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from flan_mini.errors import FlanMiniError

from .conversation import ASSISTANT, ROLE_NAMES, SYSTEM, USER, ConversationFormat

IGNORE = -100  # the label value the causal-LM loss skips

ROLE_ALIASES = ROLE_NAMES

# Row outcomes. Rows whose status starts with "dropped:" are not trained on.
OK = "ok"
TRUNCATED_AT_TURN = "truncated_at_turn"  # later rounds removed; every kept reply is whole
TRUNCATED_MID_TURN = "truncated_mid_turn"  # the first reply alone is too long: cut at max_length
DROPPED_TOO_LONG = "dropped:too_long"  # the first prompt alone fills max_length: nothing to learn
DROPPED_EMPTY_TURN = "dropped:empty_turn"
DROPPED_UNKNOWN_ROLE = "dropped:unknown_role"
DROPPED_NOT_ALTERNATING = "dropped:roles_not_alternating"
DROPPED_NO_REPLY = "dropped:no_assistant_turn"
DROPPED_SPECIAL_TOKEN = "dropped:special_token_in_text"  # e.g. a literal "</s>" would end the turn early
DROPPED_TOKEN_BOUNDARY = "dropped:token_crosses_turn_boundary"


@dataclass
class NormalisedRow:
    turns: list[tuple[str, str]]
    system: str | None
    status: str
    trimmed: int  # turns removed to make the conversation start with the user and end with the assistant


def normalise_turns(raw: list[dict] | None) -> NormalisedRow:
    """Map either layout (``from``/``value`` or ``role``/``content``) to alternating user/assistant turns.

    Like FastChat, a conversation that opens with the assistant loses that turn, and a trailing user turn
    (nothing to learn from) is dropped; both are counted. A leading system message becomes the system prompt.
    """
    turns: list[tuple[str, str]] = []
    for turn in raw or []:
        role = turn.get("from", turn.get("role"))
        text = turn.get("value", turn.get("content"))
        canonical = ROLE_ALIASES.get(str(role).lower()) if role is not None else None
        if canonical is None:
            return NormalisedRow([], None, DROPPED_UNKNOWN_ROLE, 0)
        if text is None or not str(text).strip():
            return NormalisedRow([], None, DROPPED_EMPTY_TURN, 0)
        turns.append((canonical, str(text)))
    system = None
    if turns and turns[0][0] == SYSTEM:
        system = turns.pop(0)[1]
    trimmed = 0
    while turns and turns[0][0] != USER:
        turns.pop(0)
        trimmed += 1
    if turns and turns[-1][0] == USER:
        turns.pop()
        trimmed += 1
    if not turns:
        return NormalisedRow([], None, DROPPED_NO_REPLY, trimmed)
    expected = (USER, ASSISTANT)
    if any(role != expected[i % 2] for i, (role, _) in enumerate(turns)):
        return NormalisedRow([], None, DROPPED_NOT_ALTERNATING, trimmed)
    return NormalisedRow(turns, system, OK, trimmed)


def check_tokenizer(tokenizer, fmt: ConversationFormat) -> int:
    """The format's turn end must be the tokenizer's single end-of-sequence token; return its id."""
    tokenizer = as_training_tokenizer(tokenizer)
    if tokenizer.spm is not None:
        eos = tokenizer.spm.eos_id
        piece = tokenizer.spm.processor.id_to_piece(eos) if eos >= 0 else None
        if piece != fmt.sep2 or tokenizer.spm.bos_id < 0:
            raise FlanMiniError(
                f"format {fmt.name} ends each assistant turn with {fmt.sep2!r}, but this sentencepiece model's "
                f"end-of-sequence piece is {piece!r} (bos id {tokenizer.spm.bos_id}); a LLaMA tokenizer is expected"
            )
        return eos
    hf = tokenizer.hf
    if not getattr(hf, "is_fast", False):
        raise FlanMiniError(
            f"tokenizer {type(hf).__name__} is not a fast (Rust) tokenizer; the label mask needs character "
            f"offsets. Fix: install `tokenizers` and load the base model's tokenizer with use_fast=True"
        )
    ids = hf.encode(fmt.sep2, add_special_tokens=False)
    if len(ids) != 1 or ids[0] != hf.eos_token_id:
        raise FlanMiniError(
            f"format {fmt.name} ends each assistant turn with {fmt.sep2!r}, but this tokenizer's end-of-sequence "
            f"token is {hf.eos_token!r} and {fmt.sep2!r} encodes to {ids}; a base model with a LLaMA "
            f"tokenizer is expected"
        )
    return ids[0]


def as_training_tokenizer(tokenizer):
    """Accept a TrainingTokenizer, or a bare transformers fast tokenizer (used as it is: ``fast`` mode)."""
    from .tokenizer import TrainingTokenizer

    if isinstance(tokenizer, TrainingTokenizer):
        return tokenizer
    return TrainingTokenizer(tokenizer, "fast", type(tokenizer).__name__)


def label_mask(offsets: np.ndarray, spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, bool]:
    """Which tokens lie inside an assistant span, the token index where each span ends, and alignment.

    ``offsets`` is the tokenizer's (start, end) character range per token. Worked example (span = (10, 15)):
        token ranges  (0,0) BOS, (0,4), (4,10) "ASSISTANT:", (10,13) " hi", (13,15) "</s>"
        inside        F          F      F                   T               T
        span end at token index 5 (one past "</s>"). A token such as (8,12) would cross the span's start:
        the tokenizer merged prompt and reply characters, so no exact mask exists and ``aligned`` is False.
    """
    starts, ends = offsets[:, 0], offsets[:, 1]
    span_starts = np.array([s for s, _ in spans], dtype=np.int64)
    span_ends = np.array([e for _, e in spans], dtype=np.int64)
    # The last span starting at or before each token's first character.
    which = np.searchsorted(span_starts, starts, side="right") - 1
    clipped = np.clip(which, 0, None)
    inside = (which >= 0) & (ends > starts) & (ends <= span_ends[clipped])
    boundaries = np.concatenate([span_starts, span_ends])
    crossing = (starts[:, None] < boundaries[None, :]) & (boundaries[None, :] < ends[:, None])
    aligned = not crossing.any()
    span_token_ends = np.zeros(len(spans), dtype=np.int64)
    for k in range(len(spans)):
        members = np.flatnonzero(inside & (which == k))
        span_token_ends[k] = members[-1] + 1 if members.size else -1
    return inside, span_token_ends, aligned and bool((span_token_ends > 0).all())


def truncate(ids: np.ndarray, inside: np.ndarray, span_token_ends: np.ndarray, max_length: int) -> tuple[int, str]:
    """How many tokens to keep, preferring the end of the last whole round that fits.

    Example, max_length 100, rounds ending at tokens [60, 130]: keep 60 (truncated_at_turn). Rounds ending at
    [130]: keep 100 if any reply token is within the first 100 (truncated_mid_turn), else drop (too_long).
    """
    if len(ids) <= max_length:
        return len(ids), OK
    fitting = span_token_ends[span_token_ends <= max_length]
    if fitting.size:
        return int(fitting[-1]), TRUNCATED_AT_TURN
    if inside[:max_length].any():
        return max_length, TRUNCATED_MID_TURN
    return 0, DROPPED_TOO_LONG


def encode_batch(
    conversations: list[list[dict] | None], tokenizer, fmt: ConversationFormat, max_length: int
) -> dict[str, list]:
    """Encode a batch of raw conversations into ``input_ids``, ``labels``, ``status`` and ``trimmed_turns``."""
    tokenizer = as_training_tokenizer(tokenizer)
    rows = [normalise_turns(raw) for raw in conversations]
    specials = tokenizer.special_tokens
    texts, spans, where = [], [], []
    for i, row in enumerate(rows):
        if row.status != OK:
            continue
        strings = [text for _, text in row.turns] + ([row.system] if row.system else [])
        if any(special in s for s in strings for special in specials):
            row.status = DROPPED_SPECIAL_TOKEN
            continue
        text, row_spans = fmt.render(row.turns, row.system)
        texts.append(text)
        spans.append(row_spans)
        where.append(i)
    out = {
        "input_ids": [np.zeros(0, np.int32)] * len(rows),
        "labels": [np.zeros(0, np.int32)] * len(rows),
        "status": [row.status for row in rows],
        "trimmed_turns": [row.trimmed for row in rows],
    }
    if not texts:
        return out
    encode = _encode_legacy_spm if tokenizer.spm is not None else _encode_fast
    for i, (ids, inside, span_token_ends, aligned) in zip(where, encode(texts, spans, tokenizer, fmt)):
        if not aligned:
            out["status"][i] = DROPPED_TOKEN_BOUNDARY
            continue
        keep, status = truncate(ids, inside, span_token_ends, max_length)
        out["status"][i] = status
        if keep:
            out["input_ids"][i] = ids[:keep]
            out["labels"][i] = np.where(inside[:keep], ids[:keep], IGNORE).astype(np.int32)
    return out


def _encode_fast(texts, spans, tokenizer, fmt):
    """One pass of the fast tokenizer over each rendered text; labels from the tokens' character offsets."""
    encoded = tokenizer.hf(texts, return_offsets_mapping=True, add_special_tokens=True)
    for ids, offsets, row_spans in zip(encoded["input_ids"], encoded["offset_mapping"], spans):
        inside, span_token_ends, aligned = label_mask(np.asarray(offsets, dtype=np.int64).reshape(-1, 2), row_spans)
        yield np.asarray(ids, dtype=np.int32), inside, span_token_ends, aligned


def _encode_legacy_spm(texts, spans, tokenizer, fmt):
    """The legacy LLaMA ids: ``<s>``, then per round the text up to its ``</s>`` encoded by sentencepiece (dummy
    prefix included), then ``</s>``.

    Each round's text is ``[SYSTEM ]USER: q ASSISTANT: a``: the prompt ends in ``ASSISTANT:`` and the reply
    starts with a space, where sentencepiece always starts a new word, so the prompt's own encoding is a prefix
    of the round's. Example (LLaMA): ``USER: hi ASSISTANT: ok`` -> ``▁US ER : ▁hi ▁A SS IST ANT :`` | ``▁ok``,
    then ``</s>`` (2): labels are -100 up to ``:``, then ``▁ok`` and ``</s>``.
    """
    spm, sep2 = tokenizer.spm, fmt.sep2
    rounds, prompts = [], []
    for text, row_spans in zip(texts, spans):
        previous = 0
        for start, end in row_spans:
            rounds.append(text[previous : end - len(sep2)])
            prompts.append(text[previous:start])
            previous = end
    round_ids = iter(spm.encode_many(rounds))
    prompt_ids = iter(spm.encode_many(prompts))
    for row_spans in spans:
        ids, inside, ends, aligned = [spm.bos_id], [False], [], True
        for _ in row_spans:
            whole, prompt = next(round_ids), next(prompt_ids)
            aligned = aligned and whole[: len(prompt)] == prompt
            ids += whole + [spm.eos_id]
            inside += [False] * len(prompt) + [True] * (len(whole) - len(prompt) + 1)
            ends.append(len(ids))
        yield (np.asarray(ids, dtype=np.int32), np.asarray(inside, dtype=bool), np.asarray(ends, dtype=np.int64),
               aligned)


def encode_prompt(
    turns: list[tuple[str, str]], tokenizer, fmt: ConversationFormat, system: str | None = None
) -> list[int]:
    """Token ids of a prompt ending in ``ASSISTANT:``, tokenised exactly as during training."""
    tokenizer = as_training_tokenizer(tokenizer)
    if tokenizer.spm is None:
        return tokenizer.hf(fmt.render_prompt(turns, system), add_special_tokens=True)["input_ids"]
    return tokenizer.spm.encode_text(fmt.render_prompt(turns, system))


def status_counts(statuses: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(statuses).items()))


def is_kept(status: str) -> bool:
    return not status.startswith("dropped:")
