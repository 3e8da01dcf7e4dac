"""flan-mini's own cache folder: $FLAN_MINI_CACHE if set, else $XDG_CACHE_HOME/flan-mini, else ~/.cache/flan-mini.

Everything in it can be deleted at any time: it is rebuilt on need.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "FLAN_MINI_CACHE"


def cache_folder(*parts: str) -> Path:
    """The cache folder, or a sub-folder of it (not created here: writers create what they write into)."""
    if folder := os.environ.get(ENV):
        return Path(folder).expanduser().joinpath(*parts)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().joinpath("flan-mini", *parts)
