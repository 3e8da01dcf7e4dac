"""CodeSearchNet: functions with their docstrings, as two tasks, docstring -> code and code -> docstring.

Two published forms, normalised here:

| field            | raw `<lang>/final/jsonl/<split>/<lang>_<split>_N.jsonl.gz` | Hub Parquet (`datasets` names) |
|------------------|----------------------------------|---------------------------------|
| repo             | repo                             | repository_name                 |
| path             | path                             | func_path_in_repository         |
| func_name        | func_name (`Class.method` too)   | func_name                       |
| language         | language                         | language                        |
| code             | code (original_string)           | func_code_string (whole_func_string) |
| docstring        | docstring                        | func_documentation_string       |
| url              | url                              | func_code_url                   |
| partition        | partition                        | split_name                      |

`partition` says `valid` where the split is named `validation`; it is normalised to
`validation`, and rows whose partition is not the recipe's split are filtered out
(`match_partition`), so a loose glob cannot mix test functions into a training mixture.

Each function gives two rows, one per task (piece 0 docstring_to_code, piece 1
code_to_docstring); the recipe's `tasks` keeps one or both. The code keeps its docstring (Python)
and comments (all languages); for code_to_docstring rows `code_without_docs` holds the code with
them removed (code_strip.py), and a row whose docstring can still be read there is rejected
(`docstring_leak`), so the answer never reaches the prompt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from ..errors import SourceError
from . import expand, formats
from .base import Adapter, SourceConfig, all_of
from .code_strip import leaks, strip_docs
from .files import InputFile

DOC_TO_CODE, CODE_TO_DOC = "docstring_to_code", "code_to_docstring"
TASKS = (DOC_TO_CODE, CODE_TO_DOC)  # piece index -> task
Task = Literal["docstring_to_code", "code_to_docstring"]
Language = Literal["python", "java", "go", "php", "javascript", "ruby"]
LANGUAGE_NAMES = {"python": "Python", "java": "Java", "go": "Go", "php": "PHP", "javascript": "JavaScript", "ruby": "Ruby"}
_ALIASES = {
    "repo": ("repo", "repository_name"),
    "path": ("path", "func_path_in_repository"),
    "func_name": ("func_name",),
    "language": ("language",),
    "code": ("code", "func_code_string", "original_string", "whole_func_string"),
    "docstring": ("docstring", "func_documentation_string"),
    "url": ("url", "func_code_url"),
    "partition": ("partition", "split_name"),
}
_PARTITIONS = {"valid": "validation", "dev": "validation"}


class CodeSearchNetConfig(SourceConfig):
    adapter: Literal["code_search_net"] = Field(description="CodeSearchNet (raw jsonl.gz, or the Hub's Parquet form).")
    tasks: list[Task] = Field(
        list(TASKS), min_length=1,
        description="Task directions to make rows for: docstring_to_code, code_to_docstring (default: both; each "
        "function gives one row per task).",
    )
    languages: list[Language] | None = Field(
        None, min_length=1, description="Keep functions in these languages (python, java, go, php, javascript, ruby)."
    )
    match_partition: bool = Field(
        True, description="Keep only rows whose partition (split_name) is the recipe's split (`valid` counts as validation)."
    )


class CodeSearchNetAdapter(Adapter):
    piece_bits = expand.PIECE_BITS  # rows are pieces of records
    name = "code_search_net"
    config_model = CodeSearchNetConfig
    extensions = (".jsonl.gz", ".jsonl", ".parquet")
    fields: ClassVar[dict[str, pa.DataType]] = {
        "repo": pa.string(), "path": pa.string(), "func_name": pa.string(), "language": pa.string(),
        "language_name": pa.string(), "code": pa.string(), "code_without_docs": pa.string(),
        "docstring": pa.string(), "url": pa.string(), "partition": pa.string(), "task": pa.string(),
    }
    required = ("code", "docstring")
    key_fields = ("task", "language", "code", "docstring")
    source_id_field = "url"
    template_family = "code_search_net"
    task_field = "task"
    exemplar_match = ("language",)
    item_field = "docstring"  # two functions with one docstring would give each other's answer away
    answer_fields: ClassVar[dict] = {DOC_TO_CODE: ("code", "code_without_docs"), CODE_TO_DOC: ("docstring", "code")}
    license = "other"  # each function keeps its repository's licence

    config: CodeSearchNetConfig

    def column_map(self, file: InputFile, fmt: str) -> dict[str, str | None]:
        if fmt == "json":
            raise SourceError(f"{file.display}: CodeSearchNet is JSON Lines (jsonl.gz) or Parquet, not a JSON array")
        present = formats.record_keys(file.path, fmt) or set()
        mapping = {field: next((c for c in names if c in present), None) for field, names in _ALIASES.items()}
        missing = [field for field in ("code", "docstring") if mapping[field] is None]
        if missing:
            expected = "; ".join(f"{f}: one of {', '.join(_ALIASES[f])}" for f in missing)
            raise SourceError(f"{file.display}: not a CodeSearchNet file: no column for {expected} "
                              f"(found: {', '.join(sorted(present)) or 'none'})")
        return mapping

    def scan_fields(self) -> tuple[str, ...]:
        config = self.config
        needed = ["task"] if set(config.tasks) != set(TASKS) else []
        needed += ["language"] if config.languages else []
        needed += ["partition"] if config.match_partition else []
        return tuple(needed)

    def read_records(self, file: InputFile, wanted: np.ndarray | None, selected: dict, stats: Counter) -> Iterator[pa.RecordBatch]:
        fmt = formats.detect_format(file.path)
        need = set(selected)
        if "language_name" in need:
            need.add("language")
        if "code_without_docs" in need:  # stripping needs the code and its language, the leak check the docstring
            need |= {"code", "language", "docstring"}
        raw = {name: pa.string() for name in _ALIASES if name in need}
        for records in formats.READERS[fmt](file.path, self.column_map(file, fmt), raw, expand.records_of(wanted)):
            yield self._expand(records, selected, file, wanted)

    def _expand(self, records: pa.RecordBatch, fields: dict, file: InputFile, wanted) -> pa.RecordBatch:
        """Two rows per function (docstring_to_code, code_to_docstring); a record the reader could not parse gives
        one. A record rejected for one field keeps its two rows (each carrying the reason): the scan, which reads
        fewer fields, saw two, and the fetch must find them again."""
        reader_rejects = records.column(formats.REJECT)
        unparsed = pc.fill_null(pc.is_in(reader_rejects, formats.RECORD_REJECTS), False)
        counts = np.where(np.asarray(unparsed.to_numpy(zero_copy_only=False)), 1, len(TASKS))
        parents, pieces = expand.explode(counts, file.display)
        row_ordinals = expand.ordinals(records.column(formats.ORDINAL).to_numpy(), parents, pieces)
        if wanted is not None:  # only the wanted rows: no stripping for a function fetched for its other task
            keep = np.isin(row_ordinals, wanted)
            parents, pieces, row_ordinals = parents[keep], pieces[keep], row_ordinals[keep]
        take = pa.array(parents)
        columns: dict[str, pa.Array] = {}
        for name in _ALIASES:
            if name in records.schema.names and name in fields:
                columns[name] = records.column(name).take(take)
        if "language" in records.schema.names:
            language = pc.utf8_lower(records.column("language")).take(take)
            if "language" in fields:
                columns["language"] = language
            if "language_name" in fields:
                names = pa.array(list(LANGUAGE_NAMES.values()))
                index = pc.index_in(language, pa.array(list(LANGUAGE_NAMES)))
                columns["language_name"] = pc.if_else(index.is_null(), language, names.take(pc.fill_null(index, 0)))
        if "partition" in columns:
            partition = columns["partition"]
            for raw_name, canonical in _PARTITIONS.items():
                partition = pc.if_else(pc.equal(partition, raw_name), canonical, partition)
            columns["partition"] = partition
        if "task" in fields:
            columns["task"] = pa.array(TASKS).take(pa.array(pieces))
        rejects = reader_rejects.take(take)
        if "code_without_docs" in fields:
            columns["code_without_docs"], rejects = _without_docs(columns, records, take, pieces, rejects)
        columns = expand.trimmed(columns, prose=("docstring",), code=("code",))
        return expand.make_batch(fields, columns, row_ordinals, rejects)

    def row_filter(self, batch: pa.RecordBatch) -> pa.Array | None:
        config = self.config
        masks = []
        if set(config.tasks) != set(TASKS):
            masks.append(pc.is_in(batch.column("task"), pa.array(config.tasks)))
        if config.languages:
            masks.append(pc.is_in(batch.column("language"), pa.array(config.languages)))
        if config.match_partition:
            partition = batch.column("partition")
            masks.append(pc.or_(partition.is_null(), pc.equal(partition, config.split)))
        return all_of(masks)

    def tasks(self) -> tuple[str, ...]:
        return tuple(t for t in TASKS if t in self.config.tasks)

    def describe(self) -> dict:
        config = self.config
        described = {"tasks": config.tasks}
        if config.languages:
            described["languages"] = config.languages
        described["match_partition"] = config.match_partition
        return described


def _without_docs(columns, records, take, pieces, rejects) -> tuple[pa.Array, pa.Array]:
    """`code_without_docs` for code_to_docstring rows (null for the others), and `docstring_leak`
    rejects where the docstring survives the stripping. Per-row Python, but only for fetched rows."""
    code = records.column("code").take(take).to_pylist()
    language = (pc.utf8_lower(records.column("language")).take(take).to_pylist()
                if "language" in records.schema.names else [""] * len(code))
    docstring = records.column("docstring").take(take).to_pylist() if "docstring" in records.schema.names else [None] * len(code)
    stripped, reasons = [], rejects.to_pylist()
    for i, piece in enumerate(pieces.tolist()):
        if TASKS[piece] != CODE_TO_DOC or not isinstance(code[i], str):
            stripped.append(None)
            continue
        text = strip_docs(code[i], language[i] or "")
        stripped.append(text)
        if reasons[i] is None and isinstance(docstring[i], str) and leaks(docstring[i], text):
            reasons[i] = "docstring_leak"
    return pa.array(stripped, pa.string()), pa.array(reasons, pa.string())
