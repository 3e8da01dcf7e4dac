"""Source adapters: one module per source family, found by name through the lazy registry (registry.py)."""

from __future__ import annotations

from .base import Adapter, SourceConfig
from .registry import ADAPTERS, adapter_class, register

__all__ = ["ADAPTERS", "Adapter", "SourceConfig", "adapter_class", "register"]
