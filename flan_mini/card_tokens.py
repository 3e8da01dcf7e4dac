"""Token counts for the card's lengths: the tokenizer a recipe names in `card.tokenizer`, through `tokenizers`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import FlanMiniError
from .lengths import TOKENIZER_FILE


def token_counter(name: str) -> Callable[[list[str]], np.ndarray]:
    """A function giving the number of tokens of each text (no special tokens added), for the Hub model id
    ``name``: its tokenizer.json is fetched through `lengths.load_tokenizer` (the HF cache and HF_HUB_OFFLINE apply)."""
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        raise FlanMiniError(
            f"card.tokenizer {name!r}: counting tokens needs the `tokenizers` package; install it "
            "(pip install tokenizers, or the train extra: pip install 'flan-mini[train]')"
        ) from None
    from .lengths import count_tokens, load_tokenizer

    try:
        tokenizer = load_tokenizer(name)
    except Exception as err:  # noqa: BLE001 - huggingface_hub raises several types for a missing repo or file
        raise FlanMiniError(
            f"card.tokenizer {name!r}: could not load its {TOKENIZER_FILE} from the Hub or the HF cache "
            f"({type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}); give the id "
            "of a model repo that has a fast tokenizer"
        ) from None

    def count(texts: list[str]) -> np.ndarray:
        return np.asarray(count_tokens(tokenizer, texts), dtype=np.int64)

    return count
