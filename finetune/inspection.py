"""``flan-mini finetune CONFIG --inspect N``: the first rows of the training split, encoded exactly as training
will, shown with the trained tokens marked (as axolotl's ``preprocess --debug`` does), and optionally written as
JSON Lines ``{"id", "input_ids", "labels"}``. Loads the tokenizer only, never the model's weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import load_config
from .conversation import FORMATS
from .data import load_raw, split_indices
from .encode import IGNORE, check_tokenizer, encode_batch
from .tokenizer import TrainingTokenizer, load_training_tokenizer

OPEN, CLOSE = "\u27e6", "\u27e7"  # ⟦ trained ⟧: characters that hardly occur in text or code


@dataclass
class InspectedRow:
    id: str
    status: str
    input_ids: list[int]
    labels: list[int]

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "input_ids": self.input_ids, "labels": self.labels})


def inspect_rows(config_path: Path, overrides: dict, count: int, log=print) -> tuple[TrainingTokenizer, list[InspectedRow]]:
    """Encode the first ``count`` rows of the training split (the evaluation rows held out, as in a run)."""
    from .train import _ensure_tiny

    config_path = Path(config_path)
    config = load_config(config_path, overrides)
    base_dir = config_path.parent
    fmt = FORMATS[config.format]
    if config.base_model.init_tiny is not None and config.base_model.tokenizer is None:
        from .config import Location

        _ensure_tiny(config, base_dir, Location(config.base_model.path, base_dir), fmt, log)  # its tokenizer
    tokenizer = load_training_tokenizer(config.base_model, base_dir)
    check_tokenizer(tokenizer, fmt)
    raw, info = load_raw(config.dataset, base_dir)
    train_idx, _ = split_indices(raw.num_rows, config.dataset.eval_share, config.dataset.eval_seed)
    chosen = raw.select(train_idx[:count])
    ids = chosen["id"] if "id" in chosen.column_names else [str(i) for i in train_idx[:count]]
    encoded = encode_batch(chosen[info.layout], tokenizer, fmt, config.training.max_length)
    rows = [
        InspectedRow(str(row_id), status, [int(i) for i in input_ids], [int(i) for i in labels])
        for row_id, status, input_ids, labels in zip(ids, encoded["status"], encoded["input_ids"], encoded["labels"])
    ]
    return tokenizer, rows


def runs(labels: list[int]) -> list[tuple[int, int, bool]]:
    """Maximal runs of trained / untrained positions: [(start, end, trained)]."""
    trained = np.asarray(labels) != IGNORE
    if not len(trained):
        return []
    cuts = [0, *(np.flatnonzero(np.diff(trained)) + 1).tolist(), len(trained)]
    return [(a, b, bool(trained[a])) for a, b in zip(cuts, cuts[1:])]


def pieces_text(tokenizer: TrainingTokenizer, ids: list[int]) -> str:
    """The text of consecutive tokens, spaces included (a sentencepiece ``▁`` is shown as the space it is)."""
    if tokenizer.spm is None:
        return tokenizer.hf.convert_tokens_to_string(tokenizer.hf.convert_ids_to_tokens(ids))
    processor, out, pending = tokenizer.spm.processor, [], bytearray()
    for i in ids:
        if processor.is_byte(i):
            pending.append(int(processor.id_to_piece(i)[3:5], 16))
            continue
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
            pending.clear()
        out.append(processor.id_to_piece(i).replace("\u2581", " "))
    if pending:
        out.append(pending.decode("utf-8", errors="replace"))
    return "".join(out)


def show_row(tokenizer: TrainingTokenizer, row: InspectedRow) -> str:
    """Three views of one row: the text with ⟦trained⟧ spans, the tokens (trained ones in ⟦⟧), the counts."""
    trained = sum(1 for label in row.labels if label != IGNORE)
    lines = [f"row {row.id}  {row.status}  {len(row.input_ids)} tokens, {trained} trained"]
    if not row.input_ids:
        return lines[0] + "  (not trained on)"
    text, tokens = [], []
    pieces = tokenizer.hf.convert_ids_to_tokens(row.input_ids)
    for start, end, is_trained in runs(row.labels):
        chunk = pieces_text(tokenizer, row.input_ids[start:end])
        shown = " ".join(f"{p}({i})" for p, i in zip(pieces[start:end], row.input_ids[start:end]))
        text.append(f"{OPEN}{chunk}{CLOSE}" if is_trained else chunk)
        tokens.append(f"{OPEN}{shown}{CLOSE}" if is_trained else shown)
    lines.append("  text:   " + "".join(text).replace("\n", "\n          "))
    lines.append("  tokens: " + " ".join(tokens))
    return "\n".join(lines)


def write_jsonl(rows: list[InspectedRow], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(row.to_json() + "\n" for row in rows), encoding="utf-8")
