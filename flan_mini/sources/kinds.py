"""What an adapter's rows become in the output: one kind object per adapter instead of nullable flags.

- `Templated()`: rows are rendered through the family's templates (Alpaca, the code sources);
- `ReadyConversations(field)`: `field` already holds the turns (ShareGPT, chat data): written as is,
  no templates, no few-shot;
- `FlanPassthrough(template_type_field)`: FLAN's rows are templated already (its own zero-/few-shot
  prompts); they go through the `flan` family's pass-through template, and the output's `template_type`
  is the row's own (`template_type_field`), with no shot count (FLAN inlines its exemplars).

Code that must treat the kinds differently asks `isinstance(adapter.kind, ReadyConversations)`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutputKind:
    """Base of the three kinds; `renders` says whether rows go through templates."""

    @property
    def renders(self) -> bool:
        return True


@dataclass(frozen=True)
class Templated(OutputKind):
    """Rows rendered zero- or few-shot through the family's templates."""


@dataclass(frozen=True)
class ReadyConversations(OutputKind):
    """Rows whose `field` holds the turns already (list<struct<from, value>>, human/gpt alternating)."""

    field: str

    @property
    def renders(self) -> bool:
        return False


@dataclass(frozen=True)
class FlanPassthrough(OutputKind):
    """Rows templated already (FLAN); `template_type_field` holds each row's template type (zs_opt, fs_noopt...)."""

    template_type_field: str
