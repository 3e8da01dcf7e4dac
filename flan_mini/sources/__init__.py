"""The registry of source adapters: recipe `adapter:` names -> adapter classes."""

from __future__ import annotations

from .alpaca import AlpacaAdapter
from .apps import AppsAdapter
from .base import Adapter, SourceConfig
from .chat import ChatAdapter
from .code_contests import CodeContestsAdapter
from .code_search_net import CodeSearchNetAdapter
from .flan import FlanAdapter
from .sharegpt import ShareGPTAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    adapter.name: adapter
    for adapter in (FlanAdapter, AlpacaAdapter, CodeContestsAdapter, AppsAdapter, CodeSearchNetAdapter, ShareGPTAdapter, ChatAdapter)
}

__all__ = ["ADAPTERS", "Adapter", "SourceConfig"]
