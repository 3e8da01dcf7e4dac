"""The registry of source adapters: recipe `adapter:` names -> "module:Class", imported only when asked for.

As lm-evaluation-harness's registry: a name is registered with where its class lives, so listing the
names (`flan-mini --help`, a recipe error) imports no adapter module; `adapter_class(name)` imports
the one asked for, and an unknown name gets a did-you-mean. An adapter outside this package registers
itself with `register("name", "package.module:Class")`.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping

from ..errors import SourceError

_TARGETS: dict[str, str] = {
    "flan": "flan_mini.sources.flan:FlanAdapter",
    "alpaca": "flan_mini.sources.alpaca:AlpacaAdapter",
    "code_contests": "flan_mini.sources.code_contests:CodeContestsAdapter",
    "apps": "flan_mini.sources.apps:AppsAdapter",
    "code_search_net": "flan_mini.sources.code_search_net:CodeSearchNetAdapter",
    "sharegpt": "flan_mini.sources.sharegpt:ShareGPTAdapter",
    "chat": "flan_mini.sources.chat:ChatAdapter",
}
_LOADED: dict[str, type] = {}


class UnknownAdapter(SourceError, KeyError):
    """An adapter name nobody registered (a KeyError too, so `ADAPTERS[name]` behaves as a mapping's lookup)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def register(name: str, target: str) -> None:
    """Register `name` -> "module:Class" (the module is imported on first use)."""
    if ":" not in target:
        raise ValueError(f"adapter {name!r}: expected 'module:Class', got {target!r}")
    if name in _TARGETS and _TARGETS[name] != target:
        raise ValueError(f"adapter {name!r} is registered already ({_TARGETS[name]})")
    _TARGETS[name] = target


def names() -> list[str]:
    """Every registered adapter name, sorted (imports nothing)."""
    return sorted(_TARGETS)


def suggestion(name: object) -> str:
    """'; did you mean 'alpaca'?' for a near miss, else ''."""
    close = difflib.get_close_matches(str(name), list(_TARGETS), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def adapter_class(name: str) -> type:
    """The adapter class registered as `name`, imported now if it was not yet."""
    if name not in _TARGETS:
        raise UnknownAdapter(f"unknown adapter {name!r}; expected one of: {', '.join(names())}{suggestion(name)}")
    if name not in _LOADED:
        module, _, attribute = _TARGETS[name].partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        if getattr(cls, "name", None) != name:
            raise TypeError(f"{_TARGETS[name]} is registered as {name!r} but its `name` is {getattr(cls, 'name', None)!r}")
        _LOADED[name] = cls
    return _LOADED[name]


class _LazyAdapters(Mapping):
    """`ADAPTERS`: a read-only mapping name -> class; `in`, `len` and iteration import nothing."""

    def __getitem__(self, name: str) -> type:
        return adapter_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(_TARGETS))  # registration order

    def __len__(self) -> int:
        return len(_TARGETS)

    def __contains__(self, name: object) -> bool:
        return name in _TARGETS


ADAPTERS: Mapping[str, type] = _LazyAdapters()
