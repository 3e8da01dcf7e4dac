"""Any chat dataset: `messages` (role/content) or `conversations` (from/value) records, cleaned as ShareGPT's are.

The Hub's SFT sets come in two layouts (UltraChat, Tulu 3's mixture and flan-mini `messages` builds use
the first; OpenHermes, SlimOrca and flan-mini `conversations` builds the second):

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}, ...]}
    {"conversations": [{"from": "system", "value": "..."}, {"from": "human", "value": "..."}, ...]}

The turns column is found from the file's columns (`format: auto`) or named (`format`, `column`); a
turn may use either key pair. Each record is turned into ShareGPT's (from, value) form and handed to
the ShareGPT adapter's code, so roles, system turns, order, empty and trailing turns, de-duplication
and splitting behave exactly as they do there (sharegpt.py, sharegpt_clean.py). What only chat data
has is decided here, before: a tool or function turn, or an assistant turn carrying `tool_calls`,
drops the conversation (`policy:tool_turn`: its replies depend on calls the output format cannot
hold); content given as a list of parts keeps its text parts, and any image or audio part drops it
(`policy:non_text_content`).

`keep_columns` carries the record's own values into output columns of the same (or a mapped) name:
a flan-mini build read back keeps its `source`, `template_id`, `template_type`, `num_shots`. Which
columns can be kept is read from the output schema, so a column added there can be kept too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from ..errors import SourceError
from ..shards import OUTPUT_SCHEMA
from . import formats
from .files import InputFile
from .sharegpt import ShareGPTAdapter, ShareGPTConfig, SplitConfig, _first_line_record
from .sharegpt_clean import POLICY
from .sharegpt_read import INVALID_JSON, first_json_record, iter_json_array, iter_json_lines, iter_parquet
from .sharegpt_rows import Rows

TOOL_TURN = POLICY + "tool_turn"
NON_TEXT = POLICY + "non_text_content"
# Roles of tool use in the layouts in use (OpenAI's tool/function, Llama 3's ipython, LLaMA-Factory's
# function_call/observation, Glaive's function-call/function-response): such a conversation cannot be
# written as human/gpt turns.
TOOL_ROLES = frozenset({"tool", "function", "function_call", "function-call", "function_response", "function-response",
                        "tool_call", "tool_calls", "tool_response", "observation", "ipython"})
LAYOUTS = {"messages": ("role", "content"), "conversations": ("from", "value")}
# Output columns a record cannot bring: the build makes them (ids, turns, the recipe's source name).
NOT_KEEPABLE = frozenset({"id", "conversations", "messages", "recipe_source"})


def keepable_columns() -> list[str]:
    return [name for name in OUTPUT_SCHEMA.names if name not in NOT_KEEPABLE]


class ChatConfig(ShareGPTConfig):
    adapter: Literal["chat"] = Field(description="Any chat dataset: `messages` (role/content) or `conversations` (from/value).")
    format: Literal["auto", "messages", "conversations"] = Field(
        "auto",
        description="Which column holds the turns: `messages` or `conversations`; `auto` finds the one the file has.",
    )
    column: str | None = Field(
        None, min_length=1, description="The column holding the turns when it has another name (e.g. `conversation`)."
    )
    id_column: str = Field("id", min_length=1, description="The column holding a record's id, if the files have one "
                           "(used to drop repeated ids).")
    keep_columns: list[str] | dict[str, str] = Field(
        default_factory=list,
        description="Columns of the records written to the output column of the same name (a list), or "
        "{record column: output column}: e.g. [source, template_id, template_type, num_shots] to read a flan-mini "
        "build back. Null values stay null where the output column allows it (in `source` they get the label).",
    )
    # ShareGPT's page-specific repairs are off by default: an HTML answer in a chat dataset is content.
    clean_html: bool = Field(False, description="Convert replies stored as a web page's HTML into Markdown (as ShareGPT).")
    remove_artefacts: bool = Field(False, description="Remove the ChatGPT page's UI text (as ShareGPT).")
    drop_error_replies: bool = Field(False, description="Cut a conversation before a ChatGPT error reply (as ShareGPT).")
    dedup_first_exchange: bool = Field(
        False, description="Drop a conversation whose first exchange repeats an earlier one (off: few-shot rows of a "
        "flan-mini build share their first exemplar)."
    )
    split_conversations: SplitConfig = Field(
        default_factory=lambda: SplitConfig(max_length=None),
        description="Split conversations longer than a budget into pieces (default: no splitting).",
    )

    @field_validator("keep_columns")
    @classmethod
    def _known_outputs(cls, value):
        targets = value.values() if isinstance(value, dict) else value
        allowed = keepable_columns()
        unknown = [name for name in targets if name not in allowed]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))} is not an output column that can be kept; "
                             f"expected any of: {', '.join(allowed)}")
        if len(set(targets)) != len(list(targets)):
            raise ValueError("an output column is named twice")
        return value

    @property
    def kept(self) -> dict[str, str]:
        """Record column -> output column."""
        keep = self.keep_columns
        return dict(keep) if isinstance(keep, dict) else {name: name for name in keep}


class ChatAdapter(ShareGPTAdapter):
    name = "chat"
    config_model = ChatConfig
    license = None  # every dataset has its own: the recipe's `license`

    config: ChatConfig

    def __init__(self, config: ChatConfig, base_dir: Path | None = None, facts: dict | None = None):
        super().__init__(config, base_dir, facts)
        types = {field.name: field.type for field in OUTPUT_SCHEMA}
        self.output_types = {output: types[output] for output in config.kept.values()}
        # Kept values travel as fields named by their output column (none clashes with ShareGPT's fields).
        self.fields = {**ShareGPTAdapter.fields, **self.output_types}

    # -- layout ----------------------------------------------------------------------------------
    def column_map(self, file: InputFile, fmt: str) -> dict[str, str | None]:
        """Finds the turns column from the file's columns (Parquet schema, or the first JSON record)."""
        if fmt == "parquet":
            names = set(formats.parquet_columns(file.path))
        else:
            first = first_json_record(file.path) if fmt == "json" else _first_line_record(file.path)
            if first is not None and not isinstance(first, dict):
                raise SourceError(f"{file.display}: not a chat file: its records are {type(first).__name__}s, expected objects")
            names = set(first) if first is not None else None
        column = self._turns_column(file, names)
        if names is not None:
            missing = [name for name in self.config.kept if name not in names]
            if missing:
                raise SourceError(f"{file.display}: keep_columns names {', '.join(map(repr, missing))}, which the records "
                                  f"do not have (found: {', '.join(sorted(names))})")
        if self.config.split_conversations.unit == "tokens":
            self.splitter.load_tokenizer()
        return {"id": self.config.id_column, "conversations": column}

    def _turns_column(self, file: InputFile, names: set[str] | None) -> str:
        config = self.config
        wanted = [config.column] if config.column else [config.format] if config.format != "auto" else list(LAYOUTS)
        if names is None:  # an empty file: nothing to detect
            return wanted[0]
        present = [name for name in wanted if name in names]
        if len(present) == 1:
            return present[0]
        found = ", ".join(sorted(names)) or "nothing"
        if present:
            raise SourceError(f"{file.display}: has both `messages` and `conversations` columns; say which holds the "
                              f"turns with format: messages or format: conversations")
        if config.column or config.format != "auto":
            raise SourceError(f"{file.display}: no `{wanted[0]}` column holding the turns (found: {found})")
        raise SourceError(f"{file.display}: not a chat file: no `messages` (role/content) or `conversations` (from/value) "
                          f"column (found: {found}); name the turns column with `column:`")

    # -- reading ---------------------------------------------------------------------------------
    def _parse(self, file: InputFile, stats: Counter) -> pa.Table:
        fmt = formats.detect_format(file.path)
        columns = self.column_map(file, fmt)
        if fmt == "json":
            records = iter_json_array(file.path)
        elif fmt == "jsonl":
            records = iter_json_lines(file.path)
        else:
            records = _parquet_records(file.path, [columns["id"], columns["conversations"], "plugins", *self.config.kept],
                                       columns["conversations"])
        # The kept columns ride along as ShareGPT's extra columns (a conversation's pieces share its values).
        rows = Rows(ShareGPTAdapter.fields, extra=list(self.output_types))
        for index, record in records:
            stats["conversations:read"] += 1
            self._add_chat_record(rows, index, record, columns, stats)
        table = rows.table()
        for output, values in rows.extra.items():
            table = table.append_column(output, pa.array(values, self.output_types[output]))
        return table

    def _add_chat_record(self, rows: Rows, index: int, record, columns: dict, stats: Counter) -> None:
        """The record in ShareGPT's form, handed to the ShareGPT adapter; chat-only drops are decided here."""
        kept: dict = {}
        rows.carry(kept)
        if record is INVALID_JSON or not isinstance(record, dict):
            return self._add_record(rows, index, record, stats)
        record_id = record.get(columns["id"])
        shown_id = record_id if isinstance(record_id, str) else None
        for name, output in self.config.kept.items():
            value = record.get(name)
            if not _fits(value, self.output_types[output]):
                return rows.reject(index, shown_id, f"wrong_type:{name}")
            kept[output] = value
        column = columns["conversations"]
        turns = record.get(column)
        if turns is None:
            return rows.reject(index, shown_id, f"missing:{column}")
        if not isinstance(turns, list):
            return rows.reject(index, shown_id, f"wrong_type:{column}")
        converted = []
        for turn in turns:
            role, value = _turn(turn)
            if isinstance(role, str) and (role.strip().lower() in TOOL_ROLES or (isinstance(turn, dict) and turn.get("tool_calls"))):
                return rows.reject(index, shown_id, TOOL_TURN)
            if isinstance(value, list):
                value = _text_of(value)
                if value is None:
                    return rows.reject(index, shown_id, NON_TEXT)
            converted.append({"from": role, "value": value})  # malformed turns are ShareGPT's to reject
        self._add_record(rows, index, {"id": record_id, "conversations": converted, "plugins": record.get("plugins")}, stats)

    # -- output ----------------------------------------------------------------------------------
    def source_column(self, table: pa.Table) -> pa.Array:
        default = super().source_column(table)
        if "source" not in self.output_types:
            return default
        return pc.if_else(table.column("source").is_null(), default, table.column("source")).combine_chunks()

    def output_columns(self, table: pa.Table, computed: dict[str, pa.Array]) -> dict[str, pa.Array]:
        """The kept columns. Nulls stay null where the output column allows them; elsewhere the computed
        value fills them (`source`: the label, as source_column gives it)."""
        out = {}
        for name in self.output_types:
            values = table.column(name).combine_chunks()
            if not OUTPUT_SCHEMA.field(name).nullable and values.null_count:
                values = pc.coalesce(values, computed[name])
            out[name] = values
        return out

    def describe(self) -> dict:
        config = self.config
        settings = {"format": config.format + (f" (column {config.column})" if config.column else "")}
        if config.kept:
            settings["keep_columns"] = ", ".join(k if k == v else f"{k} -> {v}" for k, v in config.kept.items())
        return {**settings, **super().describe()}


def _parquet_records(path: Path, names: list[str], turns_column: str):
    """Records of a Parquet file, as iter_parquet gives them, with the turns read column-wise when they are
    plain strings: Arrow's to_pylist of list<struct> builds every turn's dict slowly; the two string columns
    flattened once are read about three times faster, and the per-row work is left to the cleaning."""
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
    schema = parquet.schema_arrow
    kind = schema.field(turns_column).type if turns_column in schema.names else None
    if not (kind is not None and pa.types.is_list(kind) and pa.types.is_struct(kind.value_type)
            and all(pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in kind.value_type)):
        yield from iter_parquet(path, names)  # content as parts, or anything unusual: row by row
        return
    present = [name for name in names if name in schema.names]
    others = [name for name in present if name != turns_column]
    keys = [f.name for f in kind.value_type]
    index = 0
    for batch in parquet.iter_batches(batch_size=4096, columns=present):
        column = batch.column(turns_column)
        offsets = column.offsets.to_pylist()
        valid = column.is_valid().to_pylist()
        fields = [column.values.field(key).to_pylist() for key in keys]  # offsets index the whole values array
        present_turns = column.values.is_valid().to_pylist()
        rest = batch.select(others).to_pylist()
        for row in range(batch.num_rows):
            record = rest[row]
            if valid[row]:
                start, end = offsets[row], offsets[row + 1]
                record[turns_column] = [dict(zip(keys, values)) if ok else None
                                        for ok, *values in zip(present_turns[start:end], *(f[start:end] for f in fields))]
            else:
                record[turns_column] = None
            yield index, record
            index += 1


def _turn(turn) -> tuple[object, object]:
    """(role, content) of a turn in either layout; (None, None) when it is neither."""
    if not isinstance(turn, Mapping):
        return None, None
    for role_key, value_key in LAYOUTS.values():
        if role_key in turn:
            return turn.get(role_key), turn.get(value_key)
    return None, None


def _text_of(parts: list) -> str | None:
    """The text of content given as parts ([{"type": "text", "text": ...}, ...]); None if a part is not text."""
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            return None
    return "\n".join(texts)


def _fits(value, kind: pa.DataType) -> bool:
    """Whether a kept value can be stored in its output column (null always can)."""
    if value is None:
        return True
    if pa.types.is_string(kind):
        return isinstance(value, str)
    if pa.types.is_integer(kind):
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        bits = kind.bit_width - (0 if pa.types.is_unsigned_integer(kind) else 1)
        low = 0 if pa.types.is_unsigned_integer(kind) else -(1 << bits)
        return low <= value < (1 << bits)
    try:
        pa.scalar(value, kind)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return False
    return True
