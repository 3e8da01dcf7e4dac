"""Importing the card and hub modules (as the CLI does for --help) stays cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "peft", "datasets", "matplotlib", "polars", "huggingface_hub")


def test_importing_card_and_hub_loads_no_heavy_dependency():
    code = (
        "import sys, flan_mini.card, flan_mini.card_header, flan_mini.hub\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
