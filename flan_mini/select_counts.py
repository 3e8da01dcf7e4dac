"""What the selection of one source saw (rows read, filtered, rejected by reason): per file, merged with `+`."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from .rejects import MAX_EXAMPLES_PER_REASON, malformed


def _plus(first: Counter, second: Counter) -> Counter:
    """first + second, keeping zero counts (Counter's own `+` drops them) and first's order of keys."""
    total = Counter(first)
    total.update(second)
    return total


def merge_examples(first: list[dict], second: list[dict]) -> list[dict]:
    """Reject examples of `first` then `second`, at most MAX_EXAMPLES_PER_REASON per reason: what one
    sequential pass over the same files in the same order would have kept."""
    kept, seen = list(first), Counter(e["reason"] for e in first)
    for example in second:
        if seen[example["reason"]] < MAX_EXAMPLES_PER_REASON:
            seen[example["reason"]] += 1
            kept.append(example)
    return kept


@dataclass
class SourceCounts:
    """What selection saw, for the manifest and the reject-rate check. Per-file counts add up with `+`
    (as datatrove's Stats), in file order, so the sum never depends on where or when a file was read."""

    rows_read: int = 0  # rows scanned
    rows_filtered: int = 0  # excluded by the recipe's filters
    rows_examined: int = 0  # rows whose content was read and checked (the chosen and their replacements)
    scan_rejected: Counter = field(default_factory=Counter)  # found by the scan, over all rows read
    fetch_rejected: Counter = field(default_factory=Counter)  # found by the content check, over rows examined
    reject_examples: list[dict] = field(default_factory=list)
    matched_by_group: Counter = field(default_factory=Counter)  # rows passing the filters and the scan's checks
    tallied: Counter = field(default_factory=Counter)  # the same rows by the adapter's tally_column (FLAN: task)
    adapter_stats: Counter = field(default_factory=Counter)  # the adapter's own counters, over the files scanned
    scan_seconds: float = 0.0
    fetch_seconds: float = 0.0

    def __add__(self, other: SourceCounts) -> SourceCounts:
        return SourceCounts(
            rows_read=self.rows_read + other.rows_read,
            rows_filtered=self.rows_filtered + other.rows_filtered,
            rows_examined=self.rows_examined + other.rows_examined,
            scan_rejected=_plus(self.scan_rejected, other.scan_rejected),
            fetch_rejected=_plus(self.fetch_rejected, other.fetch_rejected),
            reject_examples=merge_examples(self.reject_examples, other.reject_examples),
            matched_by_group=_plus(self.matched_by_group, other.matched_by_group),
            tallied=_plus(self.tallied, other.tallied),
            adapter_stats=_plus(self.adapter_stats, other.adapter_stats),
            scan_seconds=self.scan_seconds + other.scan_seconds,
            fetch_seconds=self.fetch_seconds + other.fetch_seconds,
        )

    @property
    def matched(self) -> int:
        return sum(self.matched_by_group.values())

    @property
    def rejected(self) -> Counter:
        return self.scan_rejected + self.fetch_rejected

    def adapter_summary(self) -> dict:
        """The adapter's counters for the manifest, sorted by name (empty: none)."""
        return dict(sorted(self.adapter_stats.items()))

    def reject_rate(self) -> tuple[float, float]:
        """(estimate, lower bound) of the share of malformed rows.

        Scan rejects are counted over every row read (exact). Content rejects are counted over the
        rows examined, a uniform sample of the matching rows, so their share is an estimate; its
        95% Wilson lower bound is what the recipe's limit is checked against, so a handful of bad
        rows among a few examined does not fail a build, while a truly bad source does.
        """
        scan = sum(malformed(self.scan_rejected).values()) / self.rows_read if self.rows_read else 0.0
        bad, n = sum(malformed(self.fetch_rejected).values()), self.rows_examined
        if not n:
            return scan, scan
        p, z = bad / n, 1.96
        lower = (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
        return scan + p, scan + max(0.0, lower)
