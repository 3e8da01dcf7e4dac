"""Helpers for the dedup tests: tables in the built schema, random text, a small corpus with planted duplicates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from flan_mini.shards import OUTPUT_SCHEMA

WORDS = np.array(
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
    "romeo sierra tango uniform victor whiskey xray yankee zulu red orange yellow green blue indigo violet "
    "black white grey brown pink cyan magenta north south east west up down left right near far over under "
    "river mountain forest desert ocean island valley canyon meadow glacier volcano harbor bridge tower".split()
)


def random_text(rng: np.random.Generator, words: int = 60) -> str:
    return " ".join(rng.choice(WORDS, size=words))


def build_table(rows: list[dict]) -> pa.Table:
    """Rows with id, recipe_source, prompt, response (and optional _order, source) -> OUTPUT_SCHEMA + _order."""
    conversations = [
        [{"from": "human", "value": r["prompt"]}, {"from": "gpt", "value": r["response"]}] for r in rows
    ]
    columns = {
        "id": [r["id"] for r in rows],
        "source": [r.get("source", r["recipe_source"]) for r in rows],
        "conversations": conversations,
        "recipe_source": [r["recipe_source"] for r in rows],
        "template_id": [None] * len(rows),
        "template_type": [None] * len(rows),
        "num_shots": [None] * len(rows),
        "source_id": [None] * len(rows),
    }
    table = pa.Table.from_pydict(columns, schema=OUTPUT_SCHEMA)
    order = [r.get("_order", i) for i, r in enumerate(rows)]
    return table.append_column("_order", pa.array(order, pa.int64()))


def substitute(rng: np.random.Generator, text: str, count: int) -> str:
    """Replace ``count`` words at distinct random positions with other words."""
    words = text.split()
    for position in rng.choice(len(words), size=count, replace=False):
        words[position] = "zz" + words[position][::-1]
    return " ".join(words)


def planted_corpus():
    """200 rows in two sources: 150 distinct originals plus 50 planted copies of known kind.

    Returns (table, expected) where expected maps a copy's id to ("exact" | "near" | "keep", original id):
    exact = same text up to case/punctuation/spacing; near = 2 of 200 words replaced (Jaccard ~0.9);
    keep = 12 of 200 words replaced (Jaccard ~0.55-0.65: similar but distinct, must stay at threshold 0.8).
    """
    rng = np.random.default_rng(7)
    rows = []
    for i in range(150):
        rows.append({"id": f"o{i:03d}", "recipe_source": "alpha" if i % 2 else "beta",
                     "prompt": f"Question {i}: " + random_text(rng, 20), "response": random_text(rng, 180)})
    expected = {}
    for j in range(50):
        original = rows[j]
        kind = ("exact", "near", "keep")[j % 3]
        prompt, response = original["prompt"], original["response"]
        if kind == "exact":
            prompt, response = prompt.upper() + "!!", "  " + response.replace(" ", "\n  ") + " ..."
        elif kind == "near":
            response = substitute(rng, response, 2)
        else:
            response = substitute(rng, response, 12)
        rows.append({"id": f"c{j:03d}", "recipe_source": "alpha" if j % 4 else "beta", "prompt": prompt,
                     "response": response, "_order": 1000 + j})
        expected[f"c{j:03d}"] = (kind, original["id"])
    return build_table(rows), expected
