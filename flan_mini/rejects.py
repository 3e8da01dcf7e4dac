"""Malformed source rows: why each is rejected, a few examples per reason, and the recipe's limit on their share.

A row is rejected for a reason the reader found (`invalid_json`, `invalid_utf8:<field>`, `not_an_object`,
`wrong_type:<field>`), or
because a required field is `missing:<field>` or `empty:<field>` (blank). Reasons starting with `policy:` are
an adapter's data policy (ShareGPT's duplicate conversations, say): counted and reported like the others, but
not held against `max_reject_rate`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import SourceError
from .sources.base import Adapter
from .sources.formats import ORDINAL, REJECT

# Reject reasons with this prefix are an adapter's data policy (e.g. ShareGPT's duplicate conversations),
# not malformed data: they are counted and reported, but do not count against max_reject_rate.
POLICY = "policy:"
MAX_EXAMPLES_PER_REASON = 5


def malformed(reasons: Counter) -> Counter:
    """The reject counts that are malformed data, without the data-policy drops."""
    return Counter({reason: n for reason, n in reasons.items() if not reason.startswith(POLICY)})


def reject_reasons(batch: pa.RecordBatch, adapter: Adapter, names: tuple[str, ...] | None = None) -> pa.Array:
    """Per row: why it cannot be used (reader's reason, `missing:<field>`, `empty:<field>`), or null.

    Checks the required fields among `names` (default: all the adapter's required fields present).
    """
    present = set(batch.schema.names)
    required = [n for n in adapter.required if n in present and (names is None or n in names)]
    reasons = batch.column(REJECT)
    for kind in ("missing", "empty"):
        for name in required:
            column = batch.column(name)
            if kind == "missing":
                bad = column.is_null()
            else:
                if not pa.types.is_string(column.type):
                    continue
                # Blank = empty or whitespace only; utf8_is_space is false for "", so test both.
                bad = pc.fill_null(pc.or_(pc.equal(pc.binary_length(column), 0), pc.utf8_is_space(column)), False)
            reasons = pc.if_else(pc.and_(bad, reasons.is_null()), f"{kind}:{name}", reasons)
    return reasons


def excerpt(batch: pa.RecordBatch, row: int, adapter: Adapter, limit: int = 160) -> str:
    """The row's non-empty fields, shortened, for a reject example."""
    parts = []
    for name in adapter.fields:
        if name not in batch.schema.names:
            continue
        value = batch.column(name)[row].as_py()
        if value not in (None, ""):
            text = str(value).replace("\n", " ")[:60]
            parts.append(f"{name}={text!r}")
    return ", ".join(parts)[:limit]


def record_rejects(batch, reasons, file, adapter, counts, counter: Counter) -> None:
    for item in pc.value_counts(reasons.drop_null()).to_pylist():
        reason, number = item["values"], item["counts"]
        counter[reason] += number
        seen = sum(1 for e in counts.reject_examples if e["reason"] == reason)
        if seen >= MAX_EXAMPLES_PER_REASON:
            continue
        rows = np.flatnonzero(pc.equal(reasons, reason).to_numpy(zero_copy_only=False))
        for row in rows[: MAX_EXAMPLES_PER_REASON - seen]:
            counts.reject_examples.append({
                "reason": reason,
                "file": file.display,
                **position(int(batch.column(ORDINAL)[int(row)].as_py()), file, adapter),
                "excerpt": excerpt(batch, int(row), adapter),
            })


def position(ordinal: int, file, adapter: Adapter) -> dict:
    """Where a rejected row is in its file: `row` = the record's index (row of a Parquet file or JSON array,
    0-based), plus `line` (1-based) for JSON Lines and `piece` for records that become several rows."""
    bits = adapter.piece_bits
    record, piece = (ordinal >> bits, ordinal & ((1 << bits) - 1)) if bits else (ordinal, None)
    where = {"row": record}
    if str(file.display).lower().endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")):
        where["line"] = record + 1
    if piece is not None:
        where["piece"] = piece
    return where


def describe_position(example: dict) -> str:
    """'line 10' / 'row 9' (+ ', piece 2') of a reject example."""
    text = f"line {example['line']}" if "line" in example else f"row {example['row']}"
    return text + (f", piece {example['piece']}" if example.get("piece") else "")


def check_reject_rate(adapter: Adapter, counts) -> None:
    """Raise SourceError when the recipe's max_reject_rate is passed beyond doubt (see SourceCounts.reject_rate)."""
    limit = adapter.config.max_reject_rate
    estimate, lower = counts.reject_rate()
    if lower <= limit:
        return
    top = ", ".join(f"{reason} {number:,}" for reason, number in malformed(counts.rejected).most_common(5))
    shown = [e for e in counts.reject_examples if not e["reason"].startswith(POLICY)][:3]
    examples = "; ".join(f"{e['file']} {describe_position(e)}: {e['reason']}" for e in shown)
    raise SourceError(
        f"source {adapter.config.name!r}: about {estimate:.1%} of its rows are malformed (at least {lower:.1%}, "
        f"above max_reject_rate {limit:.1%}): {top} (of {counts.rows_read:,} rows read, "
        f"{counts.rows_examined:,} examined in full). For example {examples}. "
        f"Fix the data or the adapter options, or raise max_reject_rate."
    )
