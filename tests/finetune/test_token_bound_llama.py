"""token_bound.py's byte bound on the genuine LLaMA vocabulary (here for the session's converted LLaMA tokenizer)."""

from __future__ import annotations

import json

from flan_mini.token_bound import byte_slack

from ..test_token_bound import LEGACY_LLAMA, excess, random_strings


def test_bound_holds_for_the_genuine_llama_tokenizer(llama_json_only):
    """In transformers' conversion and in the legacy form Vicuna's tokenizer.json has (Prepend + Replace
    normaliser, no pre-tokeniser)."""
    import tokenizers

    spec = json.loads((llama_json_only / "tokenizer.json").read_text())
    texts = random_strings(3000, seed=7)
    for normalizer, pre, expected in ((spec["normalizer"], spec["pre_tokenizer"], 2), (LEGACY_LLAMA, None, 1)):
        tokenizer = tokenizers.Tokenizer.from_str(json.dumps({**spec, "normalizer": normalizer, "pre_tokenizer": pre}))
        assert byte_slack(tokenizer) == expected
        assert excess(tokenizer, texts) <= expected
