"""flan-mini's own cache folder: FLAN_MINI_CACHE if set, else $XDG_CACHE_HOME/flan-mini (~/.cache/flan-mini).

Everything in it can be deleted at any time: it is rebuilt on need.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it), created if missing."""
    root = os.environ.get("FLAN_MINI_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flan-mini"
    folder = Path(root).expanduser().joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
