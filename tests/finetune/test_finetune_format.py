"""The Vicuna v1.1 format: exact rendering, spans, the chat template, and recording it next to the adapter."""

import pytest

from finetune.conversation import VICUNA_V1_1, ConversationFormat
from flan_mini.errors import FlanMiniError

SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
TURNS = [("user", "Add 2 and 3."), ("assistant", "2 + 3 = 5."), ("user", "Thanks!"), ("assistant", "You are welcome.")]


def test_render_is_fastchat_vicuna_v1_1_exactly():
    text, spans = VICUNA_V1_1.render(TURNS)
    assert text == (
        SYSTEM + " USER: Add 2 and 3. ASSISTANT: 2 + 3 = 5.</s>USER: Thanks! ASSISTANT: You are welcome.</s>"
    )
    # The loss spans are the replies with their leading space and closing </s>.
    assert [text[s:e] for s, e in spans] == [" 2 + 3 = 5.</s>", " You are welcome.</s>"]


def test_spans_follow_each_assistant_marker_for_any_text():
    turns = [("user", "a\n\nb  c"), ("assistant", " x "), ("user", "ü ASSISTANT:"), ("assistant", "y\n")]
    text, spans = VICUNA_V1_1.render(turns)
    assert [text[s:e] for s, e in spans] == ["  x </s>", " y\n</s>"]
    for s, _ in spans:
        assert text[:s].endswith("ASSISTANT:")


def test_prompt_is_the_history_then_the_assistant_marker():
    prompt = VICUNA_V1_1.render_prompt(TURNS[:3])
    assert prompt == SYSTEM + " USER: Add 2 and 3. ASSISTANT: 2 + 3 = 5.</s>USER: Thanks! ASSISTANT:"
    full, spans = VICUNA_V1_1.render(TURNS)
    assert full.startswith(prompt) and full[len(prompt):] == " You are welcome.</s>"
    assert full[: spans[-1][0]] == prompt


def test_a_system_message_replaces_the_default_prompt():
    text, _ = VICUNA_V1_1.render(TURNS[:2], system="Be terse.")
    assert text == "Be terse. USER: Add 2 and 3. ASSISTANT: 2 + 3 = 5.</s>"


@pytest.mark.parametrize("system", [None, "Be terse, it's fine."])
def test_chat_template_renders_the_same_text(tiny_tokenizer, system):
    messages = [{"role": role, "content": text} for role, text in TURNS]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    template = VICUNA_V1_1.chat_template()
    rendered = tiny_tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    assert rendered == "<s>" + VICUNA_V1_1.render(TURNS, system)[0]
    prompt = tiny_tokenizer.apply_chat_template(
        messages[:-1], chat_template=template, tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<s>" + VICUNA_V1_1.render_prompt(TURNS[:3], system)


def test_format_round_trips_through_its_file(tmp_path):
    VICUNA_V1_1.save(tmp_path)
    assert ConversationFormat.load(tmp_path) == VICUNA_V1_1
    assert ConversationFormat.load(tmp_path).sha256() == VICUNA_V1_1.sha256()


def test_loading_a_folder_without_a_format_names_the_file(tmp_path):
    with pytest.raises(FlanMiniError, match="conversation_format.json"):
        ConversationFormat.load(tmp_path)


def test_chat_template_maps_fastchat_role_names_like_training(tiny_tokenizer):
    template = VICUNA_V1_1.chat_template()
    fastchat = [{"role": {"user": "human", "assistant": "gpt"}[role], "content": text} for role, text in TURNS]
    rendered = tiny_tokenizer.apply_chat_template(fastchat, chat_template=template, tokenize=False)
    assert rendered == "<s>" + VICUNA_V1_1.render(TURNS)[0]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}],  # was rendered as ASSISTANT
        [{"role": "tool", "content": "42"}],
        [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be terse."}],  # system only first
    ],
)
def test_chat_template_refuses_roles_it_cannot_map(tiny_tokenizer, messages):
    from jinja2 import TemplateError

    with pytest.raises(TemplateError, match=r"vicuna_v1\.1: unknown role"):
        tiny_tokenizer.apply_chat_template(messages, chat_template=VICUNA_V1_1.chat_template(), tokenize=False)
