"""Cleaning one ShareGPT conversation: roles, order, UI artefacts, HTML, empty turns; and splitting it to a budget.

Pure functions over plain Python lists, one conversation at a time (the adapter in sharegpt.py
calls them while it parses the file). Every conversation that is dropped gets one reason; every
turn-level repair is counted in a `stats` Counter. The steps, in order:

1. roles: human/user -> human; gpt/chatgpt/bing/bard/assistant -> gpt (case-insensitive); system
   turns are prepended to the next human turn, dropped, or drop the conversation (an option);
   any other role drops the conversation (`policy:unknown_role`);
2. order: leading gpt turns are dropped; the rest must alternate human, gpt, ...
   (`policy:not_alternating`); a trailing human turn is dropped;
3. values: HTML replies become Markdown (gpt turns only: a user's question about `<div>` is
   content), then UI artefacts go: a leading "2 / 2" regenerate counter, the language label and
   "Copy code" button text at the top of a code fence (glued, on lines of their own, or after an
   info string: the label becomes the info string), empty "Copy code" blocks, "Copy12 chars / 3 words";
4. truncation: at the first turn that is empty after cleaning, or a gpt turn that is a ChatGPT
   error message ("Too many requests in 1 hour. Try again later."), the conversation is cut
   before that exchange (whole pairs are kept); nothing left -> dropped;
5. content filters: blocked phrases, non-Latin script share (both options, off by default).
Splitting (`split_points`) is separate: the adapter applies it after its de-duplication.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .sharegpt_html import html_to_markdown, looks_like_html

HUMAN, GPT, SYSTEM = "human", "gpt", "system"
ROLES = {
    "human": HUMAN, "user": HUMAN,
    "gpt": GPT, "chatgpt": GPT, "bing": GPT, "bard": GPT, "assistant": GPT,
    "system": SYSTEM,
}
# Reasons for dropping a whole conversation. `policy:` marks drops made by the data policy (a
# well-formed record this recipe does not want), as opposed to malformed records.
POLICY = "policy:"
UNKNOWN_ROLE = POLICY + "unknown_role"
SYSTEM_TURN = POLICY + "system_turn"
NOT_ALTERNATING = POLICY + "not_alternating"
NO_EXCHANGE = POLICY + "no_exchange"  # no human turn followed by a gpt turn
EMPTY_TURN = POLICY + "empty_turn"  # the first exchange is empty once cleaned
ERROR_REPLY = POLICY + "error_reply"  # the first reply is a ChatGPT error message
BLOCKED_PHRASE = POLICY + "blocked_phrase"
NON_LATIN = POLICY + "non_latin"

# Whitespace plus the invisible characters that make a turn look non-empty: zero-width space,
# non-joiner, joiner, word joiner, byte order mark.
_STRIP = " \t\n\r\f\v\u00a0\u200b\u200c\u200d\u2060\ufeff"

# ChatGPT's own error messages, stored in place of a reply when the page was shared. Matched at
# the start of a short reply only, so an answer that merely quotes one is kept.
ERROR_REPLIES = (
    "too many requests in 1 hour. try again later.",
    "an error occurred. if this issue persists please contact us through our help center at help.openai.com.",
    "something went wrong, please try reloading the conversation.",
    "network error",
    "only one message at a time. please allow any other responses to complete before sending another message",
)
_ERROR_SLACK = 40  # characters an error reply may carry beyond the message (e.g. "!" or a retry hint)

# "2 / 2" at the very start of a turn: the page's regenerate / edit counter, glued to the text or
# on its own line. "1 / 2 cup of flour ..." (a space and more words) is content and stays.
_COUNTER = re.compile(r"\A\s*(\d{1,3}) / (\d{1,3})(?=[ \t]*(?:\n|\Z)|[^\s\d/])")
_COUNTER_START = frozenset("0123456789 \t\n\r\f\v")
# "Copy12 chars / 3 words": a browser extension's counter under the reply.
_COPY_CHARS = re.compile(r"Copy\d+ chars? / \d+ words?")
# The header of a code block as markdownify left it: "```" then the language and the copy button's
# text, glued ("```\npythonCopy codeimport os") or on lines of their own ("```\npython\nCopy code\n"), and
# possibly after an info string the converter already wrote ("```python\npythonCopy code"): group 1 is
# that info string, group 2 the label. Both become the fence's info string: "```python\nimport os".
_COPY_CODE_HEADER = re.compile(
    r"([\w#+.-]{0,30})[ \t]*\n?[ \t]*([\w#+.-]{0,30}?)[ \t]*\n?[ \t]*(?:Copy code|Copied!)+[ \t]*\n?"
)
_FENCE = re.compile(r"```")
# Code (fenced blocks, an unclosed fence to the end, inline spans): never rewritten by prose fixes.
_CODE = re.compile(r"```[\s\S]*?(?:```|\Z)|`[^`\n]+`")
# Tag remnants of the page in Markdown replies: <div>/<span> carrying the page's attributes.
_ATTRIBUTED_TAG = re.compile(r"<(?:div|span)\s[^<>]*>")
_BARE_TAG = re.compile(r"</?(?:div|span)\s*>")
_MANY_NEWLINES = re.compile(r"\n{3,}")
# Letters of scripts other than Latin: Greek, Cyrillic, Armenian, Hebrew, Arabic, Syriac..Thaana,
# Indic scripts, Thai, Georgian, Hangul, kana, CJK.
_NON_LATIN_LETTER = re.compile(
    "[\u0370-\u03ff\u0400-\u052f\u0530-\u058f\u0590-\u05ff\u0600-\u06ff\u0700-\u08ff\u0900-\u0dff"
    "\u0e00-\u0e7f\u10a0-\u10ff\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"
)
_ASCII_NON_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha())


@dataclass(frozen=True)
class CleanOptions:
    system_turns: str = "prepend"  # prepend | drop | reject
    clean_html: bool = True
    remove_artefacts: bool = True
    drop_error_replies: bool = True
    blocked_phrases: tuple[str, ...] = ()  # lower-cased
    max_non_latin_share: float | None = None


# ------------------------------------------------------------------------------------------- values


def is_blank(text: str) -> bool:
    return not text.strip(_STRIP)


def is_error_reply(text: str) -> bool:
    lowered = text.strip(_STRIP).lower()
    return any(lowered.startswith(m) and len(lowered) <= len(m) + _ERROR_SLACK for m in ERROR_REPLIES)


def outside_code(text: str, function) -> str:
    """Apply `function` to the parts of a Markdown text that are not code (fenced or inline)."""
    pieces, position = [], 0
    for match in _CODE.finditer(text):
        pieces.append(function(text[position : match.start()]))
        pieces.append(match.group(0))
        position = match.end()
    pieces.append(function(text[position:]))
    return "".join(pieces)


def fix_copy_code(text: str, stats: Counter) -> str:
    """Repair code fences whose opening line holds the copy button's text; drop blocks holding only it.

    Only opening fences are looked at (fences alternate open / close), so "Copy code" in code or
    prose stays. Example: "```\\nrustCopy codefn main() {}\\n```" -> "```rust\\nfn main() {}\\n```".
    """
    out, position, opening = [], 0, True
    stats_before = stats["values:empty_copy_code_block_removed"]
    for fence in _FENCE.finditer(text):
        if fence.start() < position:  # inside a block already consumed
            continue
        if not opening:
            opening = True
            continue
        opening = False
        header = _COPY_CODE_HEADER.match(text, fence.end())
        if header is None:
            continue
        close = text.find("```", header.end())
        if close >= 0 and is_blank(text[header.end() : close]):
            out.append(text[position : fence.start()])  # an empty block: just the button
            position, opening = close + 3, True
            stats["values:empty_copy_code_block_removed"] += 1
            continue
        out.append(text[position : fence.end()] + _language(header.group(1), header.group(2)) + "\n")
        position = header.end()
        stats["values:copy_code_header_fixed"] += 1
    out.append(text[position:])
    text = "".join(out)
    if stats_before != stats["values:empty_copy_code_block_removed"]:
        text = outside_code(text, lambda prose: _MANY_NEWLINES.sub("\n\n", prose))  # close the gap it leaves
    return text


def _language(info: str, label: str) -> str:
    """The fence's info string from what the header held: the converter's info string, else the page's label.

    "pythonpython" (an info string glued to the same label) is "python".
    """
    language = info or label
    half = len(language) // 2
    if language and len(language) % 2 == 0 and language[:half] == language[half:]:
        language = language[:half]
    return language


def remove_artefacts(text: str, stats: Counter) -> str:
    """The page's UI text left in a turn (see the module docstring, step 3)."""
    if text[:1] in _COUNTER_START and (match := _COUNTER.match(text)) and 1 <= int(match.group(1)) <= int(match.group(2)):
        text = text[match.end() :]
        stats["values:regenerate_counter_removed"] += 1
    if "Copy code" in text:
        text = fix_copy_code(text, stats)
    if " chars / " in text or " char / " in text:
        text, count = _COPY_CHARS.subn("", text)
        stats["values:copy_chars_removed"] += count
    return text


def _strip_remnants(prose: str) -> str:
    prose = _ATTRIBUTED_TAG.sub("", prose)
    return _BARE_TAG.sub("", prose)


def clean_value(text: str, role: str, options: CleanOptions, stats: Counter) -> str:
    """One turn's text, cleaned: HTML (gpt turns), artefacts, surrounding whitespace."""
    if options.clean_html and role == GPT and "<" in text:
        if looks_like_html(text):
            text = html_to_markdown(text)
            stats["values:html_converted"] += 1
        elif _ATTRIBUTED_TAG.search(text):
            # Tags of the page left in a Markdown reply (markdownify keeps what it cannot parse).
            cleaned = outside_code(text, _strip_remnants)
            if cleaned != text:
                text = outside_code(cleaned, lambda prose: _MANY_NEWLINES.sub("\n\n", prose))
                stats["values:tag_remnants_removed"] += 1
    if options.remove_artefacts:
        text = remove_artefacts(text, stats)
    return text.strip(_STRIP)


def non_latin_share(text: str) -> float:
    """Share of letters in non-Latin scripts (0 for ASCII text). A script test, not language identification."""
    if text.isascii():
        return 0.0
    other = len(_NON_LATIN_LETTER.findall(text))
    if not other:
        return 0.0
    latin = len(text.encode("ascii", "ignore").translate(None, _ASCII_NON_LETTERS))
    return other / (other + latin)


# ------------------------------------------------------------------------------------ conversations


def clean_conversation(turns: list[tuple[str, str]], options: CleanOptions, stats: Counter) -> tuple[list[tuple[str, str]] | None, str | None]:
    """(cleaned turns, None), or (None, reason) when the conversation is dropped.

    `turns` holds (from, value) pairs as stored. The result alternates human, gpt, ... and has an
    even, non-zero length, with no blank value. Example: [(system, "Be brief"), (gpt, "Hi!"),
    (user, "2+2?"), (chatgpt, "4"), (human, "thanks")] -> [(human, "Be brief\\n\\n2+2?"), (gpt, "4")].
    """
    mapped = []
    for role, value in turns:
        canonical = ROLES.get(role) or ROLES.get(role.strip().lower())
        if canonical is None:
            return None, UNKNOWN_ROLE
        mapped.append((canonical, value))

    # System turns: their text joins the next human turn, or they are dropped.
    merged: list[list[str]] = []
    pending: list[str] = []
    for role, value in mapped:
        if role == SYSTEM:
            if options.system_turns == "reject":
                return None, SYSTEM_TURN
            if options.system_turns == "prepend" and not is_blank(value):
                pending.append(value.strip(_STRIP))
            else:
                stats["turns:system_dropped"] += 1
            continue
        if role == HUMAN and pending:
            value = "\n\n".join([*pending, value.strip(_STRIP)])
            stats["turns:system_prepended"] += len(pending)
            pending = []
        merged.append([role, value])
    if pending:  # after the last human turn: nothing to join
        stats["turns:system_dropped"] += len(pending)

    start = 0
    while start < len(merged) and merged[start][0] == GPT:
        start += 1
    stats["turns:leading_gpt_dropped"] += start
    merged = merged[start:]
    for index, (role, _) in enumerate(merged):
        if role != (HUMAN if index % 2 == 0 else GPT):
            return None, NOT_ALTERNATING
    if len(merged) % 2:
        merged.pop()
        stats["turns:trailing_human_dropped"] += 1
    if not merged:
        return None, NO_EXCHANGE

    # Clean values; cut before the first exchange holding an empty turn or an error reply.
    cleaned: list[tuple[str, str]] = []
    cut_reason = None
    for role, value in merged:
        text = clean_value(value, role, options, stats)
        if is_blank(text):
            cut_reason = EMPTY_TURN
        elif role == GPT and options.drop_error_replies and is_error_reply(text):
            cut_reason = ERROR_REPLY
        if cut_reason:
            break
        cleaned.append((role, text))
    if cut_reason:
        kept = len(cleaned) - len(cleaned) % 2
        if not kept:
            return None, cut_reason
        stats["turns:" + cut_reason.removeprefix(POLICY) + "_truncated"] += len(merged) - kept
        cleaned = cleaned[:kept]

    if options.blocked_phrases:
        lowered = [value.lower() for _, value in cleaned]
        if any(phrase in value for value in lowered for phrase in options.blocked_phrases):
            return None, BLOCKED_PHRASE
    if options.max_non_latin_share is not None:
        if non_latin_share("\n".join(value for _, value in cleaned)) > options.max_non_latin_share:
            return None, NON_LATIN
    return cleaned, None


def first_exchange_key(turns: list[tuple[str, str]]) -> tuple[str, str]:
    """The (first question, first answer) identity used to drop repeated conversations; whitespace-insensitive."""
    return " ".join(turns[0][1].split()), " ".join(turns[1][1].split())


# ----------------------------------------------------------------------------------------- splitting


def split_points(pair_lengths: list[int], budget: int | None) -> list[tuple[int, int]]:
    """Cut a conversation's exchanges into pieces of at most `budget`: [(first pair, end pair), ...].

    Greedy, in order: a piece takes exchanges while they fit; the exchange that would overflow
    starts the next piece. An exchange longer than the budget on its own becomes a piece of its
    own (kept whole: cutting inside a turn would break it). The last piece is always emitted and
    no piece is empty, unlike FastChat's splitter, which loses the final exchange when that
    exchange is the one that overflows and emits an empty piece when the first one does.
    Example: budget 10, lengths [4, 5, 3, 12, 2] -> [(0, 2), (2, 3), (3, 4), (4, 5)]
    (4+5=9 fits, +3 would be 12; 3 then +12 overflows; 12 alone is over budget; 2).
    """
    if budget is None or sum(pair_lengths) <= budget:
        return [(0, len(pair_lengths))]
    pieces, start, total = [], 0, 0
    for index, length in enumerate(pair_lengths):
        if index > start and total + length > budget:
            pieces.append((start, index))
            start, total = index, 0
        total += length
    pieces.append((start, len(pair_lengths)))
    return pieces
