"""A batch's token values with ASCII and other rows tokenised apart equal the one-pass values, row by row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from flan_mini.dedup.shingle import text_token_values, token_values
from flan_mini.textnorm import TextNorm, tokenize

TEXTS = [
    "Hello,  WORLD!\n",
    "Ｆｕｌｌ　ｗｉｄｔｈ becomes ASCII",  # NFKC folds it to ASCII, the ideographic space to a space
    None,
    "",
    "  \t ",
    "caf\u00e9 na\u00efve \u00a0non-breaking\u2028line separator",
    "info\x1cseparator\x1fsplit only by Unicode",
    "x = f(a+b)  # a comment",
    "plain ascii row with several words in it",
    "日本語のテキスト と english",
]


@pytest.mark.parametrize("kind", ["word", "char"])
@pytest.mark.parametrize("norm", [TextNorm(), TextNorm(punctuation="split"), TextNorm(code=True, lowercase=False)])
def test_split_tokenising_equals_one_pass(kind, norm):
    rng = np.random.default_rng(0)
    for order in [np.arange(len(TEXTS))] + [rng.permutation(len(TEXTS)) for _ in range(3)]:
        text = pa.array([TEXTS[i] for i in order], pa.string())
        values, offsets = text_token_values(text, norm, kind)
        expected_values, expected_offsets = token_values(tokenize(text, norm), kind)
        assert np.array_equal(offsets, expected_offsets)
        assert np.array_equal(values, expected_values)
        # Per row, the values do not depend on the batch: each row alone gives its slice.
        for row in range(len(text)):
            alone, _ = text_token_values(text.slice(row, 1), norm, kind)
            assert np.array_equal(alone, values[offsets[row] : offsets[row + 1]])
