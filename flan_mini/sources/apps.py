"""APPS (`codeparrot/apps` JSON Lines, and the `metr-evals/apps` Parquet mirror): one row per problem x solution.

Both forms have the same seven columns. Two of them are JSON documents stored as strings:
`solutions` (a list of Python programs) and `input_output` (`{"inputs", "outputs", "fn_name"?}`),
and either can be `""` (195 train problems have no tests, 1,235 test problems no solutions).
A problem whose `solutions` is `""` or `[]` gives no rows and is counted (`adapter_stats`).
`solutions` that is not valid JSON, or not a list, rejects the problem as malformed. A
solution that is not a string is rejected on its own.

Problems are of two kinds: standard input/output, and call-based (`fn_name` in `input_output`,
a function or class header in `starter_code`). `input_mode` says which: "call-based" when there
is an `fn_name` or, without tests to tell, a starter code; "standard input" otherwise.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, PositiveInt

from ..errors import SourceError
from . import expand, formats
from .base import Adapter, SourceConfig
from .files import InputFile

Difficulty = Literal["introductory", "interview", "competition"]
RAW = {"problem_id": pa.int64(), "question": pa.string(), "solutions": pa.string(), "input_output": pa.string(),
       "difficulty": pa.string(), "url": pa.string(), "starter_code": pa.string()}
CALL_BASED, STANDARD_INPUT = "call-based", "standard input"


class AppsConfig(SourceConfig):
    adapter: Literal["apps"] = Field(description="APPS (codeparrot/apps JSON Lines, or its Parquet mirror).")
    difficulties: list[Difficulty] | None = Field(
        None, min_length=1, description="Keep problems of these difficulties: introductory, interview, competition."
    )
    max_per_problem: PositiveInt | None = Field(
        None,
        description="Cap on rows (solutions) per problem: problems weigh min(their solutions, cap) and rows are "
        "apportioned in proportion, as FLAN caps tasks. Default: no cap (uniform over solutions).",
    )


class AppsAdapter(Adapter):
    piece_bits = expand.PIECE_BITS  # rows are pieces of records
    name = "apps"
    config_model = AppsConfig
    extensions = (".jsonl", ".jsonl.gz", ".json", ".parquet")
    fields: ClassVar[dict[str, pa.DataType]] = {
        "problem_id": pa.int64(), "question": pa.string(), "solution": pa.string(), "starter_code": pa.string(),
        "fn_name": pa.string(), "input_mode": pa.string(), "difficulty": pa.string(), "url": pa.string(),
    }
    required = ("question", "solution")
    key_fields = ("question", "starter_code", "solution")
    source_id_field = "problem_id"
    template_family = "apps"
    item_field = "question"
    answer_fields: ClassVar[dict] = {None: ("solution",)}
    license = "mit"

    config: AppsConfig

    def column_map(self, file: InputFile, fmt: str) -> dict[str, str | None]:
        present = formats.record_keys(file.path, fmt)
        if present is not None:
            missing = [c for c in ("question", "solutions") if c not in present]
            if missing:
                raise SourceError(f"{file.display}: not an APPS file: no {', '.join(missing)} "
                                  f"(found: {', '.join(sorted(present)) or 'none'})")
        return {name: name if present is None or name in present else None for name in RAW}

    def scan_fields(self) -> tuple[str, ...]:
        needed = ["difficulty"] if self.config.difficulties else []
        return (*needed, "problem_id", "url") if self.config.max_per_problem else tuple(needed)

    def read_records(self, file: InputFile, wanted: np.ndarray | None, selected: dict, stats: Counter) -> Iterator[pa.RecordBatch]:
        fmt = formats.detect_format(file.path)
        raw_names = {"solutions"} | {f for f in ("problem_id", "question", "difficulty", "url", "starter_code") if f in selected}
        if {"fn_name", "input_mode"} & set(selected):
            raw_names |= {"input_output", "starter_code"}
        raw_fields = {name: kind for name, kind in RAW.items() if name in raw_names}
        for records in formats.READERS[fmt](file.path, self.column_map(file, fmt), raw_fields, expand.records_of(wanted)):
            yield self._expand(records, selected, file, stats if wanted is None else None, wanted)

    def _expand(self, records: pa.RecordBatch, fields: dict, file: InputFile, stats, wanted) -> pa.RecordBatch:
        """One row per solution. A problem the reader could not parse, or whose `solutions` is malformed, gives
        one row (piece 0) carrying the reason, so it is counted once. A problem the reader rejected for another
        field keeps its rows, each carrying the reason: the scan (fewer fields) saw them, the fetch must too."""
        counts, texts, rejects = [], [], []
        for raw, why in zip(records.column("solutions").to_pylist(), records.column(formats.REJECT).to_pylist()):
            solutions, bad_solutions = ([], None) if why in formats.RECORD_REJECTS.to_pylist() else _solutions(raw)
            why = why or bad_solutions
            if why is not None:
                n = len(solutions) if solutions and bad_solutions is None else 1
                counts.append(n)
                texts += [None] * n
                rejects += [why] * n
                continue
            if stats is not None:
                stats["solutions"] += len(solutions)
                stats["problems_without_solutions"] += not solutions
            counts.append(len(solutions))
            texts += solutions
            rejects += [None if isinstance(t, str) else "wrong_type:solution" for t in solutions]
        if stats is not None:
            stats["problems"] += records.num_rows
        parents, pieces = expand.explode(np.array(counts, np.int64), file.display)
        row_ordinals = expand.ordinals(records.column(formats.ORDINAL).to_numpy(), parents, pieces)
        if wanted is not None:  # only the wanted solutions
            keep = np.isin(row_ordinals, wanted)
            parents, pieces, row_ordinals = parents[keep], pieces[keep], row_ordinals[keep]
            texts, rejects = [t for t, k in zip(texts, keep) if k], [r for r, k in zip(rejects, keep) if k]
        take = pa.array(parents)
        columns: dict[str, pa.Array] = {}
        if "solution" in fields:
            columns["solution"] = pa.array([t if isinstance(t, str) else None for t in texts], pa.string())
        for name in ("problem_id", "question", "difficulty", "url", "starter_code"):
            if name in fields:
                column = records.column(name)
                columns[name] = (pc.fill_null(column, "") if name == "starter_code" else column).take(take)
        if {"fn_name", "input_mode"} & set(fields):
            fn_names = [_fn_name(v) for v in records.column("input_output").to_pylist()]
            starters = records.column("starter_code").to_pylist()
            modes = [CALL_BASED if fn or (s or "").strip() else STANDARD_INPUT for fn, s in zip(fn_names, starters)]
            columns["fn_name"] = pa.array(fn_names, pa.string()).take(take)
            columns["input_mode"] = pa.array(modes, pa.string()).take(take)
        columns = expand.trimmed(columns, prose=("question",), code=("solution", "starter_code"))
        return expand.make_batch(fields, columns, row_ordinals, pa.array(rejects, pa.string()))

    def row_filter(self, batch: pa.RecordBatch) -> pa.Array | None:
        if not self.config.difficulties:
            return None
        return pc.fill_null(pc.is_in(batch.column("difficulty"), pa.array(self.config.difficulties)), False)

    def group_column(self, batch: pa.RecordBatch) -> pa.Array | None:
        if not self.config.max_per_problem:
            return None
        # problem_id restarts at 0 in each split; with the URL it names one problem across files.
        ids = pc.cast(pc.fill_null(batch.column("problem_id"), -1), pa.string())
        return pc.binary_join_element_wise(pc.fill_null(batch.column("url"), ""), ids, "#")

    def group_cap(self, group: str, learnt: dict) -> int | None:
        return self.config.max_per_problem

    def describe(self) -> dict:
        described = {}
        if self.config.difficulties:
            described["difficulties"] = self.config.difficulties
        if self.config.max_per_problem:
            described["max_per_problem"] = self.config.max_per_problem
        return described



def _solutions(raw: str | None) -> tuple[list, str | None]:
    """(solutions, reject reason). '' / null / '[]' -> no solutions; not JSON or not a list -> rejected."""
    if raw is None or not raw.strip():
        return [], None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return [], "invalid_json:solutions"
    if not isinstance(value, list):
        return [], "wrong_type:solutions"
    return value, None


def _fn_name(raw: str | None) -> str | None:
    """`fn_name` of an `input_output` document; None for "" (no tests), stdin problems, or malformed JSON."""
    if not raw or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    name = value.get("fn_name") if isinstance(value, dict) else None
    return name if isinstance(name, str) and name.strip() else None
