"""Cleaning one ShareGPT conversation (roles, order, artefacts, truncation, filters) and splitting it to a budget."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from flan_mini.sources.sharegpt_clean import (
    CleanOptions,
    clean_conversation,
    fix_copy_code,
    is_error_reply,
    non_latin_share,
    outside_code,
    remove_artefacts,
    split_points,
)

DEFAULT = CleanOptions()


def clean(turns, **options):
    stats = Counter()
    cleaned, reason = clean_conversation(turns, CleanOptions(**options) if options else DEFAULT, stats)
    return cleaned, reason, stats


# ------------------------------------------------------------------------------------- roles, order


@pytest.mark.parametrize("human", ["human", "user", "Human", " USER "])
@pytest.mark.parametrize("gpt", ["gpt", "chatgpt", "bing", "bard", "assistant", "GPT"])
def test_role_names_are_normalised(human, gpt):
    cleaned, reason, _ = clean([(human, "q"), (gpt, "a")])
    assert reason is None and cleaned == [("human", "q"), ("gpt", "a")]


@pytest.mark.parametrize("role", ["tool", "function", "", "observation", "humans"])
def test_unknown_roles_drop_the_conversation(role):
    assert clean([("human", "q"), (role, "x"), ("gpt", "a")])[1] == "policy:unknown_role"


def test_system_turns_prepend_drop_or_reject():
    turns = [("system", "Be terse."), ("system", "Answer in French."), ("human", "Hi"), ("gpt", "Salut"),
             ("system", "   "), ("human", "Bye"), ("gpt", "Au revoir"), ("system", "trailing")]
    cleaned, reason, stats = clean(turns)
    assert cleaned[0] == ("human", "Be terse.\n\nAnswer in French.\n\nHi") and cleaned[2] == ("human", "Bye")
    assert stats["turns:system_prepended"] == 2 and stats["turns:system_dropped"] == 2  # the blank one, the trailing one
    cleaned, _, stats = clean(turns, system_turns="drop")
    assert cleaned == [("human", "Hi"), ("gpt", "Salut"), ("human", "Bye"), ("gpt", "Au revoir")]
    assert stats["turns:system_dropped"] == 4
    assert clean(turns, system_turns="reject")[1] == "policy:system_turn"


def test_leading_gpt_and_trailing_human_turns_are_dropped():
    cleaned, reason, stats = clean([("gpt", "Hello!"), ("gpt", "Anyone?"), ("human", "q"), ("gpt", "a"), ("human", "dangling")])
    assert cleaned == [("human", "q"), ("gpt", "a")]
    assert stats["turns:leading_gpt_dropped"] == 2 and stats["turns:trailing_human_dropped"] == 1


@pytest.mark.parametrize("turns, reason", [
    ([("human", "a"), ("human", "b"), ("gpt", "c")], "policy:not_alternating"),
    ([("human", "a"), ("gpt", "b"), ("gpt", "c"), ("human", "d"), ("gpt", "e")], "policy:not_alternating"),
    ([("human", "only")], "policy:no_exchange"),
    ([("gpt", "only a reply")], "policy:no_exchange"),
    ([], "policy:no_exchange"),
    ([("system", "s"), ("gpt", "a")], "policy:no_exchange"),
])
def test_conversations_without_a_clean_exchange_are_dropped(turns, reason):
    assert clean(turns)[1] == reason


# ---------------------------------------------------------------------------- empty turns, truncation


@pytest.mark.parametrize("empty", ["", "  \n\t", "\u200b", "\ufeff\u200d ", "\u00a0"])
def test_empty_turns_cut_the_conversation_before_their_exchange(empty):
    turns = [("human", "q1"), ("gpt", "a1"), ("human", "q2"), ("gpt", empty), ("human", "q3"), ("gpt", "a3")]
    cleaned, reason, stats = clean(turns)
    assert cleaned == [("human", "q1"), ("gpt", "a1")] and stats["turns:empty_turn_truncated"] == 4
    turns[2] = ("human", empty)  # an empty question cuts the same way
    turns[3] = ("gpt", "a2")
    assert clean(turns)[0] == [("human", "q1"), ("gpt", "a1")]
    assert clean([("human", empty), ("gpt", "a")])[1] == "policy:empty_turn"


def test_a_turn_empty_only_after_cleaning_counts_as_empty():
    assert clean([("human", "q"), ("gpt", "2 / 2")])[1] == "policy:empty_turn"
    assert clean([("human", "q"), ("gpt", '<div class="markdown prose"><p> </p></div>')])[1] == "policy:empty_turn"


def test_error_replies_cut_the_conversation():
    error = "Too many requests in 1 hour. Try again later."
    assert clean([("human", "q"), ("gpt", error)])[1] == "policy:error_reply"
    cleaned, _, stats = clean([("human", "q"), ("gpt", "a"), ("human", "q2"), ("gpt", error + "\n")])
    assert cleaned == [("human", "q"), ("gpt", "a")] and stats["turns:error_reply_truncated"] == 2
    assert clean([("human", "q"), ("gpt", error)], drop_error_replies=False)[0] == [("human", "q"), ("gpt", error)]
    # An error message in a human turn, or quoted inside a real answer, is content.
    assert clean([("human", error), ("gpt", "That is a rate limit.")])[1] is None
    assert not is_error_reply("Network error handling in Go: " + "wrap errors with context. " * 5)
    assert is_error_reply("network error") and is_error_reply("An error occurred. If this issue persists please contact "
                                                             "us through our help center at help.openai.com.")


# --------------------------------------------------------------------------------------- artefacts


@pytest.mark.parametrize("text, expected", [
    ("1 / 1Write a poem", "Write a poem"),
    ("2 / 2\n\nHere you go", "\n\nHere you go"),
    ("  3 / 4Sure", "Sure"),
    ("1 / 2 cup of sugar", "1 / 2 cup of sugar"),  # a fraction followed by words is content
    ("3 / 2Sure", "3 / 2Sure"),  # not a counter: 3 of 2
    ("0 / 2x", "0 / 2x"),
    ("10 / 100 people agree", "10 / 100 people agree"),
    ("Answer: 1 / 1", "Answer: 1 / 1"),  # only at the very start
    ("A cat sat.Copy12 chars / 3 words", "A cat sat."),
    ("Copy1 char / 1 word", ""),
])
def test_ui_counters_are_removed(text, expected):
    assert remove_artefacts(text, Counter()) == expected


@pytest.mark.parametrize("text, expected", [
    ("```\npythonCopy codeprint(1)\n```", "```python\nprint(1)\n```"),
    ("```pythonCopy code\nprint(1)\n```", "```python\nprint(1)\n```"),
    ("```\nCopy code\nls -la\n```", "```\nls -la\n```"),
    ("```c++Copy codeint x;\n```", "```c++\nint x;\n```"),
    ("```\nCopy codeCopy codex = 1\n```", "```\nx = 1\n```"),
    ("Before\n\n```\nCopy code\n```\n\nAfter", "Before\n\nAfter"),  # an empty block: only the button
    ("```\ncode\n```\nCopy code is the button's label.", "```\ncode\n```\nCopy code is the button's label."),
    ("```python\nprint('Copy code')\n```", "```python\nprint('Copy code')\n```"),
    ("```\nbashCopy codeecho 1\n```\ntext\n```\njsCopy codef()\n```", "```bash\necho 1\n```\ntext\n```js\nf()\n```"),
    # The label after an info string the converter already wrote, or on a line of its own.
    ("```python\npythonCopy codeprint(1)\n```", "```python\nprint(1)\n```"),
    ("```pythonpythonCopy codeprint(1)\n```", "```python\nprint(1)\n```"),
    ("```\npython\nCopy code\nprint(1)\n```", "```python\nprint(1)\n```"),
    ("```python\nCopy code\nprint(1)\n```", "```python\nprint(1)\n```"),
    ("```sql \n  Copy code  \nSELECT 1;\n```", "```sql\nSELECT 1;\n```"),
    ("```python\nx = 1\n```", "```python\nx = 1\n```"),  # nothing to repair
    ("```\nnot_a_label = 1\nCopy code\n```", "```\nnot_a_label = 1\nCopy code\n```"),  # code, not a header
])
def test_copy_code_fences_are_repaired(text, expected):
    assert fix_copy_code(text, Counter()) == expected


def test_where_fastchats_cleaner_mangles_code_the_code_is_kept():
    # FastChat's pattern ```\s*(.*?)(?:Copy code)+(.+?)\s*?``` (DOTALL) runs from a clean block's opening fence
    # over its code and the prose after it to the next block's "Copy code", making all of it the "language";
    # and its "\n\n\n" -> "\n" collapses blank lines inside code. Here both blocks and the prose survive.
    text = "```\nx = 1\n```\n\nThe prose between.\n\n```\npythonCopy codea = 1\n\n\n\nb = 2\n```"
    cleaned, reason, _ = clean([("human", "q"), ("gpt", text)])
    assert reason is None
    assert cleaned[1][1] == "```\nx = 1\n```\n\nThe prose between.\n\n```python\na = 1\n\n\n\nb = 2\n```"


def test_prose_fixes_never_touch_code():
    text = "a <b>\n```\n<div> x\n```\nthen `<span>` and <c>"
    assert outside_code(text, str.upper) == "A <B>\n```\n<div> x\n```\nTHEN `<span>` AND <C>"
    assert outside_code("```\nunclosed <div>", str.upper) == "```\nunclosed <div>"


def test_html_is_converted_in_replies_only_and_remnants_outside_code_only():
    html = '<div class="markdown prose w-full"><p>Hello <em>there</em></p></div>'
    cleaned, _, stats = clean([("human", html), ("gpt", html)])
    assert cleaned == [("human", html), ("gpt", "Hello *there*")] and stats["values:html_converted"] == 1
    assert clean([("human", "q"), ("gpt", html)], clean_html=False)[0][1] == ("gpt", html)
    remnant = '<div class="min-h-[20px] flex flex-col">Use `<div class="x">` here.</div>\n```html\n<span class="y">k</span>\n```'
    cleaned, _, _ = clean([("human", "q"), ("gpt", remnant)])
    assert cleaned[1][1] == 'Use `<div class="x">` here.\n```html\n<span class="y">k</span>\n```'
    # Markdown that merely contains HTML (no page attributes) is left alone.
    plain = "Wrap it in <div> and </div> tags."
    assert clean([("human", "q"), ("gpt", plain)])[0][1] == ("gpt", plain)


# ------------------------------------------------------------------------------------------ filters


def test_blocked_phrases_are_case_insensitive_and_off_by_default():
    turns = [("human", "Who made you?"), ("gpt", "I was trained by OpenAI.")]
    assert clean(turns)[1] is None
    assert clean(turns, blocked_phrases=("openai",))[1] == "policy:blocked_phrase"
    assert clean(turns, blocked_phrases=("anthropic",))[1] is None


def test_non_latin_share():
    assert non_latin_share("plain ascii") == 0.0
    assert non_latin_share("Café au lait, naïve façade") == 0.0  # Latin with diacritics
    assert non_latin_share("请介绍一下长城") == 1.0
    assert non_latin_share("ab 你好") == pytest.approx(0.5)
    assert non_latin_share("Привет, world") == pytest.approx(6 / 11)
    assert non_latin_share("emoji 🎉 and “quotes” — dash") == 0.0
    turns = [("human", "请介绍一下长城。"), ("gpt", "The Great Wall of China.")]
    assert clean(turns, max_non_latin_share=0.5)[1] is None  # 7 of 25 letters
    assert clean(turns, max_non_latin_share=0.2)[1] == "policy:non_latin"


# ----------------------------------------------------------------------------------------- splitting


def test_split_points_worked_example():
    assert split_points([4, 5, 3, 12, 2], 10) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert split_points([4, 5, 3, 12, 2], None) == [(0, 5)]
    assert split_points([4, 5], 9) == [(0, 2)]


def test_split_keeps_the_last_pair_when_it_overflows():
    # FastChat's splitter drops the final exchange here (it is the one that overflows).
    assert split_points([5, 5, 8], 10) == [(0, 2), (2, 3)]
    # ... and emits an empty piece when the first exchange alone is too long.
    assert split_points([15, 2], 10) == [(0, 1), (1, 2)]


def test_split_points_properties():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        lengths = rng.integers(1, 60, rng.integers(1, 25)).tolist()
        budget = int(rng.integers(1, 150))
        pieces = split_points(lengths, budget)
        # Contiguous, complete, never empty: nothing lost, last pair included.
        assert pieces[0][0] == 0 and pieces[-1][1] == len(lengths)
        assert all(a < b for a, b in pieces) and all(p[1] == q[0] for p, q in zip(pieces, pieces[1:]))
        for index, (a, b) in enumerate(pieces):
            size = sum(lengths[a:b])
            # Within budget, unless a single exchange is longer than the budget on its own.
            assert size <= budget or b - a == 1
            # Greedy: the next exchange would not have fit.
            if index + 1 < len(pieces):
                assert size + lengths[b] > budget
