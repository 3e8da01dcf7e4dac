"""One source's candidates on their way through the build, and the removals each stage reports by id.

A stage that removes rows returns, per source, a small table `id -> reason` (`REMOVED_SCHEMA`) and the
reasons it checked (so a check that removed nothing still shows a zero in the manifest); the source's
candidates table itself is never changed. `Candidates.removing` returns a new record with the removals
added; `alive()` says which candidates no stage removed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..sample import SourceCounts

REMOVED_SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("reason", pa.string(), nullable=False)])


def removals(ids: pa.Array | pa.ChunkedArray, reasons: pa.Array | pa.ChunkedArray | str) -> pa.Table:
    """A removals table from the removed rows' ids and their reason (one for all, or one per id)."""
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    if isinstance(reasons, str):
        reasons = pa.array([reasons] * len(ids), pa.string())
    return pa.Table.from_arrays([ids.cast(pa.string()), reasons.cast(pa.string())], schema=REMOVED_SCHEMA)


@dataclass(frozen=True)
class Candidates:
    """One source's rendered candidates: output columns plus bookkeeping (`_key`, `_rank`, `_group`, `_task`),
    in selection order, with what selection and rendering reported about them."""

    plan: object  # plan.SourcePlan
    table: pa.Table
    counts: SourceCounts  # what selection saw
    quotas: dict[str, int]  # rows each group should deliver (selection's quotas)
    render_stats: dict  # zero-/few-shot counts, tasks, length unit (empty for ready conversations)
    removed: pa.Table = dataclasses.field(default_factory=REMOVED_SCHEMA.empty_table)  # id -> reason, every stage's removals in stage order
    checked: tuple[str, ...] = ()  # every reason a stage checked for, in stage order (zero counts included)

    @property
    def name(self) -> str:
        return self.plan.config.name

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def removing(self, removed: pa.Table, checked: tuple[str, ...] = ()) -> Candidates:
        """A new record with `removed` (REMOVED_SCHEMA) added and `checked` reasons declared."""
        reasons = tuple(dict.fromkeys((*self.checked, *checked, *removed.column("reason").to_pylist())))
        return dataclasses.replace(self, removed=pa.concat_tables([self.removed, removed]), checked=reasons)

    def out_mask(self) -> np.ndarray:
        """True for the candidates some stage removed (aligned with `table`)."""
        if not self.removed.num_rows:
            return np.zeros(self.rows, bool)
        hit = pc.is_in(self.table.column("id"), value_set=self.removed.column("id").combine_chunks())
        return np.asarray(hit.to_numpy(zero_copy_only=False), bool)

    def removed_counts(self) -> dict[str, int]:
        """Rows removed per reason, in the order the reasons were checked."""
        counts = dict.fromkeys(self.checked, 0)
        if self.removed.num_rows:
            for item in pc.value_counts(self.removed.column("reason").combine_chunks()).to_pylist():
                counts[item["values"]] = item["counts"]
        return counts


@dataclass(frozen=True)
class Mixture:
    """Every source's record at one point of the build (Candidates, then pick.Picked), with the reports of the
    mixture-wide stages that the files beside the shards and the manifest need."""

    sources: tuple
    dedup: Any = None  # dedup.stage.DedupResult (its clusters and stats)
    decontam: Any = None  # decontam.stage.BuildDecontam (its matches, for the report written with the shards)
