"""DeepMind CodeContests (`deepmind/code_contests`, Parquet): one row per problem x solution in an allowed language.

The Hub's Parquet stores each list of structs as a struct of parallel lists:
`solutions: struct<language: list<int64>, solution: list<string>>` (the i-th language goes with
the i-th solution), and the same for the tests. Enums are the Hub's ClassLabel indices:
language 0 unknown, 1 Python 2, 2 C++, 3 Python 3, 4 Java; source 0 unknown ... 6 Aizu;
difficulty 0 unknown, 1-6 EASY..EXTERNAL, 7-28 the letters A..V.

The scan reads only `solutions.language` (a nested column projection; plus `name` for the
per-problem cap): the solution texts and the tests, megabytes per row, are never read for rows
not chosen, and the tests are never read at all. Problems with an empty solution list, or with
no solution in an allowed language, give no rows; both are counted (`adapter_stats`).
`time_limit` may be null (no limit stated): the field is then null and templates leave it out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, PositiveInt

from ..errors import SourceError
from . import expand
from .base import Adapter, SourceConfig
from .files import InputFile
from .formats import parquet_columns

Language = Literal["python3", "python2", "cpp", "java", "unknown"]
# ClassLabel index -> (recipe name, display name, Markdown fence tag)
LANGUAGES = [("unknown", "Unknown", ""), ("python2", "Python 2", "python"), ("cpp", "C++", "cpp"),
             ("python3", "Python 3", "python"), ("java", "Java", "java")]
PLATFORMS = [None, "CodeChef", "Codeforces", "HackerEarth", "Code Jam", "AtCoder", "Aizu"]
DIFFICULTIES = [None, "easy", "medium", "hard", "harder", "hardest", "external", *"ABCDEFGHIJKLMNOPQRSTUV"]

# Raw columns each output field is made from; `solutions.language` is always read (it says how
# many rows a problem gives).
_RAW = {
    "name": ["name"], "description": ["description"], "solution": ["solutions.solution"],
    "language": [], "language_tag": [], "platform": ["source"], "difficulty": ["difficulty"],
    "rating": ["cf_rating"], "tags": ["cf_tags"], "time_limit": ["time_limit"],
    "memory_limit": ["memory_limit_bytes"], "example_input": ["public_tests"], "example_output": ["public_tests"],
}
PROBLEM_ROWS = 1024  # problems per scan batch: each may hold thousands of solutions


class CodeContestsConfig(SourceConfig):
    adapter: Literal["code_contests"] = Field(description="DeepMind CodeContests (Parquet as on the Hub).")
    languages: list[Language] = Field(
        ["python3"], min_length=1,
        description="Solution languages to keep: python3, python2, cpp, java, unknown (default: python3 only; "
        "`python2` is Python 2 code, with print statements).",
    )
    max_per_problem: PositiveInt | None = Field(
        None,
        description="Cap on rows (solutions) per problem: problems weigh min(their solutions, cap) and rows are "
        "apportioned in proportion, as FLAN caps tasks. Default: no cap (uniform over solutions).",
    )


class CodeContestsAdapter(Adapter):
    piece_bits = expand.PIECE_BITS  # rows are pieces of records
    name = "code_contests"
    config_model = CodeContestsConfig
    extensions = (".parquet",)
    fields: ClassVar[dict[str, pa.DataType]] = {
        "name": pa.string(), "description": pa.string(), "solution": pa.string(), "language": pa.string(),
        "language_tag": pa.string(), "platform": pa.string(), "difficulty": pa.string(), "rating": pa.int64(),
        "tags": pa.string(), "time_limit": pa.string(), "memory_limit": pa.string(),
        "example_input": pa.string(), "example_output": pa.string(),
    }
    required = ("description", "solution")
    key_fields = ("name", "description", "language", "solution")
    source_id_field = "name"
    template_family = "code_contests"
    exemplar_match = ("language",)
    item_field = "description"
    answer_fields: ClassVar[dict] = {None: ("solution",)}
    license = "cc-by-4.0"

    config: CodeContestsConfig

    def column_map(self, file: InputFile, fmt: str) -> dict[str, str | None]:
        if fmt != "parquet":
            raise SourceError(f"{file.display}: CodeContests is read from its Hub Parquet files, not {fmt}")
        schema = pq.read_schema(file.path)
        present = set(parquet_columns(file.path))
        problems = [c for c in ("name", "description", "solutions") if c not in present]
        if "solutions" in present:
            kind = schema.field("solutions").type
            if not (pa.types.is_struct(kind) and {"language", "solution"} <= {kind.field(i).name for i in range(kind.num_fields)}):
                problems.append(f"solutions as struct<language: list, solution: list> (found {kind})")
        if problems:
            raise SourceError(f"{file.display}: not a CodeContests Parquet file: no column {', '.join(problems)} "
                              f"(found: {', '.join(sorted(present))})")
        return {column: column for column in present}

    def scan_fields(self) -> tuple[str, ...]:
        return ("language", "name") if self.config.max_per_problem else ("language",)

    def read_records(self, file: InputFile, wanted: np.ndarray | None, selected: dict, stats: Counter) -> Iterator[pa.RecordBatch]:
        present = self.column_map(file, "parquet")
        columns = sorted({"solutions.language", *(c for f in selected for c in _RAW[f] if c.split(".")[0] in present)})
        parquet = pq.ParquetFile(file.path)
        for records, record_ordinals in _records(parquet, columns, expand.records_of(wanted)):
            yield self._expand(records, record_ordinals, selected, file, stats if wanted is None else None, wanted)

    def _expand(self, records: pa.Table, record_ordinals: np.ndarray, fields: dict, file: InputFile, stats, wanted) -> pa.RecordBatch:
        struct = records.column("solutions").combine_chunks()
        solutions = dict(zip([f.name for f in struct.type], struct.flatten()))  # flatten applies the parent's nulls
        languages = solutions["language"]
        counts = expand.lengths(languages)
        parents, pieces = expand.explode(counts, file.display)
        codes = np.asarray(pc.fill_null(pc.list_flatten(languages), 0).to_numpy(zero_copy_only=False), np.int64)
        codes = np.where((codes >= 0) & (codes < len(LANGUAGES)), codes, 0)
        if stats is not None:
            allowed = np.isin(codes, [i for i, lang in enumerate(LANGUAGES) if lang[0] in self.config.languages])
            kept_per_problem = np.bincount(parents[allowed], minlength=len(counts))
            stats["problems"] += len(counts)
            stats["problems_without_solutions"] += int((counts == 0).sum())
            stats["problems_without_solutions_in_languages"] += int(((counts > 0) & (kept_per_problem == 0)).sum())
            stats.update({f"solutions:{LANGUAGES[c][0]}": int(k) for c, k in zip(*np.unique(codes, return_counts=True))})
        row_ordinals = expand.ordinals(record_ordinals, parents, pieces)
        if wanted is not None:  # only the wanted pieces: a fetch of one solution must not copy the others
            keep = np.isin(row_ordinals, wanted)
            parents, pieces, codes, row_ordinals = parents[keep], pieces[keep], codes[keep], row_ordinals[keep]
        columns: dict[str, pa.Array] = {}
        take = pa.array(parents)
        if "language" in fields:
            columns["language"] = pa.array([lang[1] for lang in LANGUAGES]).take(pa.array(codes))
        if "language_tag" in fields:
            columns["language_tag"] = pa.array([lang[2] for lang in LANGUAGES]).take(pa.array(codes))
        if "solution" in fields:
            # Solution i goes with language i. A solution list shorter than the language list leaves
            # a piece without text: null, so the row is rejected as missing:solution.
            texts = solutions["solution"]
            text_counts = expand.lengths(texts)
            present = pieces < text_counts[parents]
            index = np.where(present, (np.cumsum(text_counts) - text_counts)[parents] + pieces, 0)
            flat = pc.list_flatten(texts)
            values = flat.take(pa.array(index)) if len(flat) else pa.nulls(len(index), pa.string())
            columns["solution"] = pc.if_else(pa.array(present), values, pa.scalar(None, pa.string()))
        for name in ("name", "description"):
            if name in fields and name in records.column_names:
                columns[name] = records.column(name).combine_chunks().take(take)
        per_problem = _problem_fields(records, fields)
        for name, values in per_problem.items():
            columns[name] = values.take(take)
        columns = expand.trimmed(columns, prose=("name", "description"), code=("solution",))
        return expand.make_batch(fields, columns, row_ordinals)

    def row_filter(self, batch: pa.RecordBatch) -> pa.Array | None:
        names = [lang[1] for lang in LANGUAGES if lang[0] in self.config.languages]
        return pc.fill_null(pc.is_in(batch.column("language"), pa.array(names)), False)

    def group_column(self, batch: pa.RecordBatch) -> pa.Array | None:
        return pc.fill_null(batch.column("name"), "(unnamed)") if self.config.max_per_problem else None

    def group_cap(self, group: str, learnt: dict) -> int | None:
        return self.config.max_per_problem

    def describe(self) -> dict:
        described = {"languages": self.config.languages}
        if self.config.max_per_problem:
            described["max_per_problem"] = self.config.max_per_problem
        return described



def _records(parquet: pq.ParquetFile, columns: list[str], wanted_records: np.ndarray | None):
    """(table of problems, their row ordinals): all of them, or only the wanted, skipping row groups."""
    if wanted_records is None:
        first = 0
        for batch in parquet.iter_batches(batch_size=PROBLEM_ROWS, columns=columns):
            yield pa.Table.from_batches([batch]), np.arange(first, first + batch.num_rows, dtype=np.int64)
            first += batch.num_rows
        return
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    for group in range(parquet.num_row_groups):
        lo, hi = np.searchsorted(wanted_records, [starts[group], starts[group + 1]])
        if lo == hi:
            continue
        local = wanted_records[lo:hi] - starts[group]
        yield parquet.read_row_group(group, columns=columns).take(pa.array(local)), wanted_records[lo:hi]


def _problem_fields(records: pa.Table, fields: dict) -> dict[str, pa.Array]:
    """Per-problem display fields (only for the problems fetched, so plain Python is fine)."""
    out: dict[str, pa.Array] = {}
    n = records.num_rows
    names = set(records.column_names)

    def labelled(column: str, labels: list) -> pa.Array:
        if column not in names:
            return pa.nulls(n, pa.string())
        values = records.column(column).to_pylist()
        return pa.array([labels[v] if isinstance(v, int) and 0 <= v < len(labels) else None for v in values], pa.string())

    if "platform" in fields:
        out["platform"] = labelled("source", PLATFORMS)
    if "difficulty" in fields:
        out["difficulty"] = labelled("difficulty", DIFFICULTIES)
    if "rating" in fields:
        values = records.column("cf_rating").to_pylist() if "cf_rating" in names else [None] * n
        out["rating"] = pa.array([v if v else None for v in values], pa.int64())
    if "tags" in fields:
        values = records.column("cf_tags").to_pylist() if "cf_tags" in names else [None] * n
        out["tags"] = pa.array([", ".join(t for t in v if t) or None if v else None for v in values], pa.string())
    if "time_limit" in fields:
        values = records.column("time_limit").to_pylist() if "time_limit" in names else [None] * n
        out["time_limit"] = pa.array([_seconds(v) for v in values], pa.string())
    if "memory_limit" in fields:
        values = records.column("memory_limit_bytes").to_pylist() if "memory_limit_bytes" in names else [None] * n
        out["memory_limit"] = pa.array([_megabytes(v) if v else None for v in values], pa.string())
    if "example_input" in fields or "example_output" in fields:
        tests = records.column("public_tests").to_pylist() if "public_tests" in names else [None] * n
        for field, key in (("example_input", "input"), ("example_output", "output")):
            if field in fields:
                out[field] = pa.array([(t or {}).get(key)[0] if (t or {}).get(key) else None for t in tests], pa.string())
    return out


def _seconds(limit: dict | None) -> str | None:
    """{'seconds': 2, 'nanos': 500000000} -> '2.5 seconds'; null or zero -> None (no limit stated)."""
    if not limit:
        return None
    total = (limit.get("seconds") or 0) + (limit.get("nanos") or 0) / 1e9
    if total <= 0:
        return None
    return f"{total:g} second{'' if total == 1 else 's'}"


def _megabytes(value: int) -> str:
    """Codeforces states 256 MB as 256,000,000 bytes, AtCoder 1024 MB as 1,073,741,824: '256 megabytes', '1024 megabytes'."""
    return f"{value // 2**20} megabytes" if value % 2**20 == 0 else f"{value / 1e6:g} megabytes"
