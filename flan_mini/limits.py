"""The limits that keep hostile or broken input bounded, with generous defaults raised by environment variables.

    FLAN_MINI_MAX_TURN_CHARS=268435456 flan-mini build recipe.yaml

Limits only decide whether a build fails, never what it writes, so they live outside the recipe (a build's
output does not depend on them). Every error that hits one names the variable that raises it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import FlanMiniError

ENV = {
    "turn_chars": "FLAN_MINI_MAX_TURN_CHARS",
    "row_chars": "FLAN_MINI_MAX_ROW_CHARS",
    "template_seconds": "FLAN_MINI_TEMPLATE_SECONDS",
    "loop_items": "FLAN_MINI_TEMPLATE_LOOP_ITEMS",
    "hub_seconds": "FLAN_MINI_HUB_TIMEOUT",
}


@dataclass(frozen=True)
class Limits:
    turn_chars: int = 64 << 20  # one turn a template renders (a long source file fits many times over)
    row_chars: int = 256 << 20  # all turns of one templated row (few-shot rows hold several examples)
    template_seconds: float = 10.0  # one render of one template for one row
    loop_items: int = 10_000_000  # range() items handed out during one render
    hub_seconds: float = 60.0  # one Hub request waiting to connect, send or receive (not a whole upload)


def current() -> Limits:
    """The limits in force: the defaults, each replaced by its environment variable when set."""
    texts = tuple(os.environ.get(variable) for variable in ENV.values())
    if texts not in _CACHE:
        _CACHE[texts] = _parse(texts)
    return _CACHE[texts]


_CACHE: dict[tuple, Limits] = {}


def _parse(texts: tuple) -> Limits:
    values = {}
    for (name, variable), text in zip(ENV.items(), texts):
        if text is None or not text.strip():
            continue
        kind = float if name in ("template_seconds", "hub_seconds") else int
        try:
            value = kind(text)
        except ValueError:
            raise FlanMiniError(f"{variable}={text!r}: expected a {'number' if kind is float else 'whole number'}") from None
        if value <= 0:
            raise FlanMiniError(f"{variable}={text!r}: must be > 0")
        values[name] = value
    return Limits(**values)
