"""ShareGPT conversations: read once per build, cleaned, de-duplicated, split into pieces that fit a budget.

Published as one JSON array of `{"id", "conversations": [{"from", "value"}, ...]}` (optional
`model`, `plugins` keys; ids of already split files end in `_<first turn>`), e.g.
anon8231489123/ShareGPT_Vicuna_unfiltered's ShareGPT_V3_unfiltered_cleaned_split.json (673 MB);
JSON Lines and Parquet mirrors of the same records are read too.

A file is parsed once per build: the first read (the selection scan) streams the records of
every file of the source, cleans each conversation (sharegpt_clean.py), splits it (measured by
sharegpt_split.py), drops repeats across the files (sharegpt_dedup.py) and keeps the resulting
Arrow tables on the adapter; the fetch of the chosen rows then takes them from those tables
instead of parsing the files again. One output row per piece:

- `_ordinal` = record index * 2**16 + piece number: stable, so a piece is found again by it, and
  a changed split budget only moves the pieces of the conversations it re-splits;
- a dropped conversation is one row with `_reject` set to its reason, counted by the selection,
  never written. Malformed records get reader reasons (`not_an_object`, `invalid_json`,
  `missing:conversations`, `wrong_type:conversations`, `wrong_type:id`, `malformed_turn`); data
  policy drops are prefixed `policy:` (unknown_role, not_alternating, no_exchange, empty_turn,
  error_reply, duplicate_id, duplicate_exchange, plugins, blocked_phrase, non_latin, system_turn).

Repeats (a known id, a known first exchange) are judged among the conversations that survive
cleaning, in content order, so which copy is kept depends on neither file names nor file order,
and a broken copy does not shadow a good one. Turn-level repairs are counted in `stats()`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field

from ..errors import SourceError
from ..shards import TURN
from . import formats
from .base import Adapter, SourceConfig
from .files import InputFile
from .formats import ORDINAL, REJECT
from .utf8 import repair_surrogates
from .sharegpt_clean import (
    POLICY,
    CleanOptions,
    clean_conversation,
    first_exchange_key,
)
from .sharegpt_dedup import HIDDEN, drop_repeats, repeated_records
from .sharegpt_read import INVALID_JSON, first_json_record, iter_json_array, iter_json_lines, iter_parquet
from .sharegpt_rows import PIECE_BITS, Rows, piece_hash, to_int64
from .sharegpt_split import SplitConfig, Splitter, describe_split

PLUGINS = POLICY + "plugins"
TOO_MANY_PIECES = POLICY + "too_many_pieces"


class ShareGPTConfig(SourceConfig):
    adapter: Literal["sharegpt"] = Field(description="ShareGPT-format conversations (id, conversations: from/value).")
    system_turns: Literal["prepend", "drop", "reject"] = Field(
        "prepend",
        description="System turns: `prepend` their text to the next human turn, `drop` them, or `reject` the "
        "whole conversation.",
    )
    clean_html: bool = Field(True, description="Turn replies stored as the ChatGPT page's HTML into Markdown, and "
                             "remove the page's <div>/<span> remnants from Markdown replies (outside code).")
    remove_artefacts: bool = Field(True, description="Remove the page's UI text: a leading '2 / 2' counter, 'Copy code' "
                                   "in code fences, empty 'Copy code' blocks, 'Copy12 chars / 3 words'.")
    drop_error_replies: bool = Field(True, description="Cut a conversation before a reply that is a ChatGPT error "
                                     "message ('Too many requests in 1 hour. Try again later.', ...).")
    dedup_first_exchange: bool = Field(True, description="Drop a conversation whose first question and first answer "
                                       "(whitespace-insensitive) repeat an earlier kept one.")
    drop_plugins: bool = Field(True, description="Drop conversations with a non-empty `plugins` key (plugin calls "
                               "are not in the turns, so the replies lack their context).")
    blocked_phrases: list[str] = Field(
        default_factory=list,
        description="Drop a conversation if any turn contains one of these (case-insensitive), e.g. "
        "[openai, chatgpt] as FastChat's cleaner does. Default: none.",
    )
    max_non_latin_share: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Drop a conversation if more than this share of its letters are in non-Latin scripts (CJK, "
        "Cyrillic, Arabic, ...). A script filter, not language identification: French or German pass. Default: off.",
    )
    split_conversations: SplitConfig = Field(
        default_factory=SplitConfig, description="How conversations longer than a budget are split into pieces."
    )


class ShareGPTAdapter(Adapter):
    piece_bits = PIECE_BITS  # rows are pieces of conversations
    name = "sharegpt"
    config_model = ShareGPTConfig
    extensions = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".parquet")
    fields: ClassVar[dict[str, pa.DataType]] = {
        "id": pa.string(),  # the record's id as published (null when it has none)
        "record": pa.int64(),  # the record's position in its file
        "part": pa.int32(),  # piece number within the conversation (0 when not split)
        "first_turn": pa.int32(),  # index of the piece's first turn in the cleaned conversation
        "content_hash": pa.int64(),  # xxh3-64 of the piece's turns: its identity
        "conversations": pa.list_(TURN),
    }
    required = ("conversations",)
    key_fields = ("content_hash",)
    source_id_field = "id"  # the record's id as published (pieces of one conversation share it)
    conversation_field = "conversations"
    license = "apache-2.0"  # as tagged on the Hub; the content is user-shared ChatGPT output

    config: ShareGPTConfig

    def __init__(self, config: ShareGPTConfig, base_dir: Path | None = None):
        super().__init__(config, base_dir)
        self.options = CleanOptions(
            system_turns=config.system_turns,
            clean_html=config.clean_html,
            remove_artefacts=config.remove_artefacts,
            drop_error_replies=config.drop_error_replies,
            blocked_phrases=tuple(p.lower() for p in config.blocked_phrases if p),
            max_non_latin_share=config.max_non_latin_share,
        )
        self._tables: dict[Path, tuple[tuple[int, int], pa.Table]] = {}
        self._files: list[InputFile] = []  # the source's files (from `prepare`): repeats are judged across them
        self._stats: Counter = Counter()
        self._splitter: Splitter | None = None

    # -- layout ----------------------------------------------------------------------------------
    def column_map(self, file: InputFile, fmt: str) -> dict[str, str | None]:
        """Checks the file holds ShareGPT records (reading only its first record) and that the tokenizer loads."""
        if fmt == "parquet":
            names = set(formats.parquet_columns(file.path))
        else:
            first = first_json_record(file.path) if fmt == "json" else _first_line_record(file.path)
            names = set(first) if isinstance(first, dict) else None
        if names is not None and "conversations" not in names:
            raise SourceError(
                f"{file.display}: not a ShareGPT file: its records have no `conversations` "
                f"(found: {', '.join(sorted(names)) or 'nothing'}); expected id, conversations: [{{from, value}}, ...]"
            )
        if self.config.split_conversations.unit == "tokens":
            self.splitter.load_tokenizer()
        return {"id": "id", "conversations": "conversations"}

    @property
    def splitter(self) -> Splitter:
        if self._splitter is None:  # made on first use: base_dir (for a relative tokenizer path) is known by then
            self._splitter = Splitter(self.config.split_conversations, self.base_dir)
        return self._splitter

    # -- reading ---------------------------------------------------------------------------------
    def read(self, file: InputFile, wanted: np.ndarray | None = None, fields: tuple[str, ...] | None = None) -> Iterator[pa.RecordBatch]:
        table = self.parsed(file)
        names = list(self.fields) if fields is None else list(fields)
        table = table.select([*names, ORDINAL, REJECT])
        if wanted is not None:
            ordinals = table.column(ORDINAL).to_numpy()
            positions = np.searchsorted(ordinals, wanted).clip(max=max(len(ordinals) - 1, 0))
            found = positions[ordinals[positions] == wanted] if len(ordinals) else positions[:0]
            table = table.take(pa.array(found))
        yield from table.to_batches(max_chunksize=formats.BATCH_ROWS)

    def prepare(self, files: list[InputFile]) -> None:
        self._files = list(files)

    def parsed(self, file: InputFile) -> pa.Table:
        """The file's pieces and dropped records (adapter fields + `_ordinal`, `_reject`), parsed on first use.

        The first use parses every file of the source (those given to `prepare`; a file not among
        them is judged on its own), since whether a record repeats another depends on all of them.
        """
        if file.path not in self._tables:
            group = [f for f in self._files if f.path not in self._tables and not self.skip_file(f)]
            if file.path not in {f.path for f in group}:
                group = [file]
            group.sort(key=lambda f: str(f.path))  # only breaks ties between copies identical in content and id
            signatures = [_signature(f) for f in group]
            tables = [self._parse(f) for f in group]
            for index, repeats in enumerate(repeated_records(tables)):
                schema = pa.schema([f for f in tables[index].schema if f.name not in HIDDEN])
                batches = drop_repeats(tables[index].to_batches(), repeats, self._stats)
                self._tables[group[index].path] = (signatures[index], pa.Table.from_batches(batches, schema))
        seen, table = self._tables[file.path]
        if seen != _signature(file):
            raise SourceError(f"{file.display}: changed while the build was reading it")
        return table

    def scan_fields(self) -> tuple[str, ...]:
        # Free here (the table is in memory), and it puts the id and record number of each dropped
        # conversation into the manifest's reject examples.
        return ("id", "record")

    def _parse(self, file: InputFile) -> pa.Table:
        fmt = formats.detect_format(file.path)
        if fmt == "json":
            records = iter_json_array(file.path)
        elif fmt == "jsonl":
            records = iter_json_lines(file.path)
        else:
            records = iter_parquet(file.path, ["id", "conversations", "plugins"])
        rows = Rows(self.fields)
        for index, record in records:
            self._stats["conversations:read"] += 1
            record, repaired = repair_surrogates(record)  # half emoji ("\ud83d"): U+FFFD, counted
            if repaired:
                self._stats["conversations:lone_surrogates_repaired"] += 1
            self._add_record(rows, index, record)
        return rows.table()

    def _add_record(self, rows: Rows, index: int, record) -> None:
        if record is INVALID_JSON:
            return rows.reject(index, None, "invalid_json")
        if not isinstance(record, dict):
            return rows.reject(index, None, "not_an_object")
        record_id = record.get("id")
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            record_id = str(record_id)
        elif record_id is not None and not isinstance(record_id, str):
            return rows.reject(index, None, "wrong_type:id")
        conversation = record.get("conversations")
        if conversation is None:
            return rows.reject(index, record_id, "missing:conversations")
        if not isinstance(conversation, list):
            return rows.reject(index, record_id, "wrong_type:conversations")
        turns = []
        for turn in conversation:
            role, value = (turn.get("from"), turn.get("value")) if isinstance(turn, dict) else (None, None)
            if not (isinstance(role, str) and isinstance(value, str)):
                return rows.reject(index, record_id, "malformed_turn")
            turns.append((role, value))
        if self.config.drop_plugins and record.get("plugins"):
            return rows.reject(index, record_id, PLUGINS)

        cleaned, reason = clean_conversation(turns, self.options, self._stats)
        if reason:
            return rows.reject(index, record_id, reason)
        # Repeats are dropped once every file is parsed (sharegpt_dedup.py); these are their keys.
        order = piece_hash(cleaned)
        exchange = None
        if self.config.dedup_first_exchange:
            question, answer = first_exchange_key(cleaned)
            exchange = to_int64(xxhash.xxh3_64_intdigest(f"{question}\x00{answer}".encode("utf-8", "surrogatepass")))

        pieces = self.splitter.pieces(cleaned)
        if len(pieces) >= 1 << PIECE_BITS:
            return rows.reject(index, record_id, TOO_MANY_PIECES)
        for part, (start, end, over) in enumerate(pieces):
            rows.piece(index, record_id, part, 2 * start, cleaned[2 * start : 2 * end], order=order, exchange=exchange,
                       over_budget=over, digest=order if len(pieces) == 1 else None)

    # -- reporting -------------------------------------------------------------------------------
    def close(self) -> None:
        self._tables.clear()  # the parsed files (hundreds of MB for the real V3 file)

    def stats(self) -> dict[str, int]:
        """Counts over every record parsed so far: conversations read / kept / split, pieces, turn repairs."""
        return dict(sorted(self._stats.items()))

    def describe(self) -> dict:
        config, split = self.config, self.config.split_conversations
        settings = {
            "system_turns": config.system_turns,
            "clean_html": config.clean_html,
            "remove_artefacts": config.remove_artefacts,
            "drop_error_replies": config.drop_error_replies,
            "dedup_first_exchange": config.dedup_first_exchange,
            "drop_plugins": config.drop_plugins,
            "split_conversations": describe_split(split),
        }
        if config.blocked_phrases:
            settings["blocked_phrases"] = config.blocked_phrases
        if config.max_non_latin_share is not None:
            settings["max_non_latin_share"] = config.max_non_latin_share
        return settings


def _signature(file: InputFile) -> tuple[int, int]:
    stat = file.path.stat()
    return stat.st_size, stat.st_mtime_ns


def _first_line_record(path: Path):
    for _, record in iter_json_lines(path):
        return record
    return None
