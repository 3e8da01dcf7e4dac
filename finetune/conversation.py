"""The conversation format the adapter is trained and prompted in (FastChat's ``vicuna_v1.1``), defined once.

Rendering (FastChat's ADD_COLON_TWO style, sep " ", sep2 "</s>")::

    SYSTEM USER: q1 ASSISTANT: a1</s>USER: q2 ASSISTANT: a2</s>

The loss covers each assistant reply *with* the space that follows ``ASSISTANT:`` and the closing ``</s>``:
at inference the prompt ends with ``ASSISTANT:`` and the model has to produce `` a1</s>``. ``render`` returns
those character spans so that ``encode`` can label exactly the tokens inside them.

The same definition is written next to the adapter (``conversation_format.json``) and turned into a Jinja
chat template (with ``{% generation %}`` blocks) saved in the adapter's tokenizer, so ``generate``,
``tokenizer.apply_chat_template`` and training all produce the same token ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from flan_mini.errors import FlanMiniError

FORMAT_FILE = "conversation_format.json"
USER, ASSISTANT, SYSTEM = "user", "assistant", "system"
# The role names a conversation may use (FastChat's from/value and OpenAI's role/content), mapped explicitly.
ROLE_NAMES = {"human": USER, "user": USER, "gpt": ASSISTANT, "assistant": ASSISTANT, "system": SYSTEM}


@dataclass(frozen=True)
class ConversationFormat:
    name: str
    system: str
    user_role: str
    assistant_role: str
    sep: str  # after the system prompt and after each user turn
    sep2: str  # after each assistant turn; must be the tokenizer's end-of-sequence token

    # --- rendering -------------------------------------------------------------------------------------------

    def render(self, turns: list[tuple[str, str]], system: str | None = None) -> tuple[str, list[tuple[int, int]]]:
        """Render alternating (user, assistant) turns; return the text and the assistant spans.

        Example: turns [("user", "Hi"), ("assistant", "Hello")] with the Vicuna format give
        ``"<system> USER: Hi ASSISTANT: Hello</s>"`` and one span covering ``" Hello</s>"``.
        """
        parts = [system if system is not None else self.system, self.sep]
        length = len(parts[0]) + len(self.sep)
        spans = []
        for role, text in turns:
            if role == USER:
                piece = f"{self.user_role}: {text}{self.sep}"
                parts.append(piece)
                length += len(piece)
            else:
                head = f"{self.assistant_role}:"
                reply = f" {text}{self.sep2}"
                spans.append((length + len(head), length + len(head) + len(reply)))
                parts.append(head + reply)
                length += len(head) + len(reply)
        return "".join(parts), spans

    def render_prompt(self, turns: list[tuple[str, str]], system: str | None = None) -> str:
        """The text a model continues to answer the last user turn: the history, then ``ASSISTANT:``."""
        text, _ = self.render(turns, system)
        return text + f"{self.assistant_role}:"

    def chat_template(self) -> str:
        """The same format as a Jinja chat template for ``tokenizer.apply_chat_template``.

        Roles are mapped explicitly, as in training: ``user``/``human`` -> USER, ``assistant``/``gpt`` ->
        ASSISTANT, a leading ``system`` message replaces the default system prompt; any other role (or a system
        message later on) raises instead of being rendered as something else. ``{% generation %}`` marks the
        tokens that ``return_assistant_tokens_mask=True`` reports, which are exactly the ones ``encode`` labels.
        """
        q = json.dumps  # Jinja string literals accept JSON's escapes
        users = q(sorted(r for r, c in ROLE_NAMES.items() if c == USER))
        assistants = q(sorted(r for r, c in ROLE_NAMES.items() if c == ASSISTANT))
        return (
            "{{ bos_token }}"
            "{% if messages and messages[0]['role'] == 'system' %}"
            "{{ messages[0]['content'] + " + q(self.sep) + " }}{% set loop_messages = messages[1:] %}"
            "{% else %}{{ " + q(self.system + self.sep) + " }}{% set loop_messages = messages %}{% endif %}"
            "{% for message in loop_messages %}"
            "{% if message['role'] in " + users + " %}"
            "{{ " + q(self.user_role + ": ") + " + message['content'] + " + q(self.sep) + " }}"
            "{% elif message['role'] in " + assistants + " %}{{ " + q(self.assistant_role + ":") + " }}"
            "{% generation %}{{ ' ' + message['content'] + " + q(self.sep2) + " }}{% endgeneration %}"
            "{% else %}{{ raise_exception('" + self.name + ": unknown role ' ~ message['role'] ~ "
            "'; expected user/human, assistant/gpt, or system as the first message') }}"
            "{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ " + q(self.assistant_role + ":") + " }}{% endif %}"
        )

    # --- recording -------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return asdict(self)

    def sha256(self) -> str:
        """A stable fingerprint of the format, recorded in the adapter card."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def save(self, folder: Path) -> Path:
        path = Path(folder) / FORMAT_FILE
        path.write_text(json.dumps({"format_version": 1, **self.to_dict()}, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> ConversationFormat:
        path = Path(folder) / FORMAT_FILE
        if not path.is_file():
            raise FlanMiniError(
                f"{folder}: no {FORMAT_FILE}; this adapter was not trained by flan-mini, so its prompt format is "
                f"unknown (expected the file written next to adapter_config.json)"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("format_version", None)
        try:
            return cls(**data)
        except TypeError as exc:
            raise FlanMiniError(f"{path}: not a conversation format file ({exc})") from None


VICUNA_V1_1 = ConversationFormat(
    name="vicuna_v1.1",
    system=(
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    ),
    user_role="USER",
    assistant_role="ASSISTANT",
    sep=" ",
    sep2="</s>",
)

FORMATS = {VICUNA_V1_1.name: VICUNA_V1_1}
