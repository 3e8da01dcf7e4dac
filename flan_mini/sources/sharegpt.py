"""ShareGPT conversations: read once per build, cleaned, de-duplicated, split into pieces that fit a budget.

Published as one JSON array of `{"id", "conversations": [{"from", "value"}, ...]}` (optional
`model`, `plugins` keys; ids of already split files end in `_<first turn>`), e.g.
anon8231489123/ShareGPT_Vicuna_unfiltered's ShareGPT_V3_unfiltered_cleaned_split.json (673 MB);
JSON Lines and Parquet mirrors of the same records are read too.

A file is parsed once per build: the selection's survey (one task per file) streams its records,
cleans each conversation (sharegpt_clean.py: a pure function of the record), splits it (measured by
sharegpt_split.py) and keeps the resulting Arrow table in a module-level cache keyed by the file's
identity (path, size, mtime) and the adapter's settings; the driver then judges repeats across the
files (sharegpt_dedup.py) and hands them to the adapter as a fact, so reading a file (scan, fetch) is
a function of (settings, repeats, file) that takes the parsed table from the cache (or parses again,
on another machine). One output row per piece:

- `_ordinal` = record index * 2**16 + piece number: stable, so a piece is found again by it, and
  a changed split budget only moves the pieces of the conversations it re-splits;
- a dropped conversation is one row with `_reject` set to its reason, counted by the selection,
  never written. Malformed records get reader reasons (`not_an_object`, `invalid_json`,
  `missing:conversations`, `wrong_type:conversations`, `wrong_type:id`, `malformed_turn`); data
  policy drops are prefixed `policy:` (unknown_role, not_alternating, no_exchange, empty_turn,
  error_reply, duplicate_id, duplicate_exchange, plugins, blocked_phrase, non_latin, system_turn).

Repeats (a known id, a known first exchange) are judged among the conversations that survive
cleaning, in content order, so which copy is kept depends on neither file names nor file order,
and a broken copy does not shadow a good one. Turn-level repairs are counted in a full read's
`stats` (the manifest's `adapter_stats`).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field

from ..errors import SourceError
from ..file_hashes import remembered_sha256
from ..shards import TURN
from . import formats
from .base import Adapter, SourceConfig
from .files import InputFile, file_fingerprint
from .kinds import ReadyConversations
from .formats import ORDINAL, REJECT
from . import parse_cache
from .sharegpt_clean import (
    POLICY,
    CleanOptions,
    clean_conversation,
    first_exchange_key,
)
from .sharegpt_dedup import EXCHANGE, HIDDEN, ORDER, drop_repeats, repeated_records
from .sharegpt_read import INVALID_JSON, first_json_record, iter_json_array, iter_json_lines, iter_parquet
from .sharegpt_rows import PIECE_BITS, Rows, piece_hash, to_int64
from .sharegpt_parse import TOO_MANY_PIECES, add_rows, parse_records  # noqa: F401 (TOO_MANY_PIECES: re-exported)
from .sharegpt_split import SplitConfig, Splitter, describe_split

PLUGINS = POLICY + "plugins"


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
    kind = ReadyConversations("conversations")
    survey = True  # repeats are judged across the source's files before the scan
    license = "apache-2.0"  # as tagged on the Hub; the content is user-shared ChatGPT output

    config: ShareGPTConfig

    def __init__(self, config: ShareGPTConfig, base_dir: Path | None = None, facts: dict | None = None):
        super().__init__(config, base_dir, facts)
        self.options = CleanOptions(
            system_turns=config.system_turns,
            clean_html=config.clean_html,
            remove_artefacts=config.remove_artefacts,
            drop_error_replies=config.drop_error_replies,
            blocked_phrases=tuple(p.lower() for p in config.blocked_phrases if p),
            max_non_latin_share=config.max_non_latin_share,
        )

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
        return _splitter(self.config.split_conversations, self.base_dir)

    # -- reading ---------------------------------------------------------------------------------
    def read_records(self, file: InputFile, wanted: np.ndarray | None, fields: dict, stats: Counter) -> Iterator[pa.RecordBatch]:
        parsed, parse_stats = self.parsed(file)
        counted = Counter()
        repeats = self._repeats_of(file, parsed)
        columns = [*fields, ORDINAL, REJECT]
        if wanted is None:  # the counters of a full read: what parsing and the repeats left
            batches = list(drop_repeats(parsed.to_batches(), repeats, counted))
            stats.update(parse_stats)
            stats.update(counted)
            schema = pa.schema([f for f in parsed.schema if f.name not in HIDDEN])
            yield from pa.Table.from_batches(batches, schema).select(columns).to_batches(max_chunksize=formats.BATCH_ROWS)
            return
        # The wanted rows batch by batch (ordinals ascend through the file): a take over the whole table would
        # first join each column's chunks, copying every conversation (600 MiB for ShareGPT V3) to pick a few.
        # The batches are read from the cache entry one at a time rather than through its mapping, whose pages
        # would stay in this process's resident memory until the selection ends.
        read = parse_cache.read_batches(self._entry_key(file))
        wanted = np.asarray(wanted, np.int64)
        for batch in drop_repeats(read if read is not None else parsed.to_batches(), repeats, counted):
            ordinals = batch.column(ORDINAL).to_numpy()
            if not len(ordinals):
                continue
            within = wanted[np.searchsorted(wanted, ordinals[0]):np.searchsorted(wanted, ordinals[-1], side="right")]
            positions = np.searchsorted(ordinals, within)
            found = positions[ordinals[positions] == within]
            if len(found):
                yield batch.select(columns).take(pa.array(found))

    def _repeats_of(self, file: InputFile, parsed: pa.Table) -> dict[int, str]:
        """Record -> reason for the file's repeats: as the survey judged them across the source's files, or
        (a file read without a survey) among its own records."""
        judged = self.facts.get("repeats", {}).get(file.display)
        return judged if judged is not None else repeated_records([parsed])[0]

    def parsed(self, file: InputFile) -> tuple[pa.Table, Counter]:
        """The file's pieces and dropped records (adapter fields + `_ordinal`, `_reject` + the hidden
        de-duplication columns) and the parse's counters: parsed once per machine into the parse cache
        (parse_cache.py, keyed by the file's content and these settings), then read memory-mapped."""
        before = _signature(file)
        key = self._entry_key(file)

        def unchanged() -> None:
            if _signature(file) != before:
                raise SourceError(f"{file.display}: changed while the build was reading it")

        with _lock(key):
            entry = _OPEN.get(key) or parse_cache.load(key)
            if entry is None:
                stats = Counter()
                parsed = self._parse(file, stats)
                schema, batches = (parsed.schema, parsed.to_batches()) if isinstance(parsed, pa.Table) else parsed
                entry = parse_cache.store(key, schema, batches, stats, check=unchanged)
            unchanged()
            _OPEN[key] = entry
            _KEYS.setdefault(str(file.path), set()).add(key)
        return entry

    def _entry_key(self, file: InputFile) -> str:
        return parse_cache.entry_key(remembered_sha256(file.path), self._parse_settings())

    def _parse_settings(self) -> dict:
        """Everything besides the file's bytes that shapes the parsed table: part of its cache key."""
        split = self.config.split_conversations
        tokenizer = None
        if split.unit == "tokens":
            import tokenizers

            text = self.splitter.load_tokenizer().to_str()
            tokenizer = [hashlib.sha256(text.encode()).hexdigest(), tokenizers.__version__]
        generic = set(SourceConfig.model_fields)
        return {
            "adapter": f"{type(self).__module__}.{type(self).__qualname__}",
            "config": self.config.model_dump(mode="json", exclude=generic),
            "tokenizer": tokenizer,
            "code": _code_digest(),
        }

    # -- the survey: repeats across files --------------------------------------------------------
    def survey_file(self, file: InputFile) -> tuple[int, pa.Table]:
        """(content fingerprint, the first piece of each surviving conversation: record, id, dedup keys)."""
        parsed, _ = self.parsed(file)
        heads = parsed.select(["part", "record", "id", ORDER, EXCHANGE])  # first: a filter copies every column it has
        return file_fingerprint(file), heads.filter(pc.fill_null(pc.equal(heads.column("part"), 0), False))

    def surveyed(self, files: list[InputFile], results: list) -> ShareGPTAdapter:
        """The adapter knowing each file's repeats. Files are ordered by content (fingerprint), so the
        judgement depends on no file name; the path only orders copies identical in content."""
        order = sorted(range(len(files)), key=lambda i: (results[i][0], str(files[i].path)))
        judged = repeated_records([results[i][1] for i in order])
        return self.with_facts(repeats={files[i].display: repeats for i, repeats in zip(order, judged)})

    def release(self, files: list[InputFile]) -> None:
        """Drop this process's handles on the files' cached tables (the entries stay on disk)."""
        with _LOCK:
            for file in files:
                for key in _KEYS.pop(str(file.path), ()):
                    _OPEN.pop(key, None)

    def scan_fields(self) -> tuple[str, ...]:
        # Free here (the table is in memory), and it puts the id and record number of each dropped
        # conversation into the manifest's reject examples.
        return ("id", "record")

    def _parse(self, file: InputFile, stats: Counter) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The parsed table's schema and record batches, made block by block as the file is read
        (sharegpt_parse.py). A subclass may return a whole pa.Table instead (chat.py)."""
        fmt = formats.detect_format(file.path)
        if fmt == "json":
            records = iter_json_array(file.path)
        elif fmt == "jsonl":
            records = iter_json_lines(file.path)
        else:
            records = iter_parquet(file.path, ["id", "conversations", "plugins"])
        return parse_records(self, records, stats)

    def _add_record(self, rows: Rows, index: int, record, stats: Counter) -> None:
        """One record's rows at once (chat.py's records, one by one)."""
        item = self._prepare(index, record, stats)
        add_rows(rows, [item], self.splitter.pieces_many([item[3]]) if item[2] is None else [])

    def _prepare(self, index: int, record, stats: Counter) -> tuple:
        """(index, id, reject reason or None, cleaned turns, order key, first-exchange key) of one record."""
        if record is INVALID_JSON:
            return index, None, "invalid_json", None, None, None
        if not isinstance(record, dict):
            return index, None, "not_an_object", None, None, None
        record_id = record.get("id")
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            record_id = str(record_id)
        elif record_id is not None and not isinstance(record_id, str):
            return index, None, "wrong_type:id", None, None, None
        conversation = record.get("conversations")
        if conversation is None:
            return index, record_id, "missing:conversations", None, None, None
        if not isinstance(conversation, list):
            return index, record_id, "wrong_type:conversations", None, None, None
        turns = []
        for turn in conversation:
            role, value = (turn.get("from"), turn.get("value")) if isinstance(turn, dict) else (None, None)
            if not (isinstance(role, str) and isinstance(value, str)):
                return index, record_id, "malformed_turn", None, None, None
            turns.append((role, value))
        if self.config.drop_plugins and record.get("plugins"):
            return index, record_id, PLUGINS, None, None, None

        cleaned, reason = clean_conversation(turns, self.options, stats)
        if reason:
            return index, record_id, reason, None, None, None
        # Repeats are dropped once every file is parsed (sharegpt_dedup.py); these are their keys.
        order = piece_hash(cleaned)
        exchange = None
        if self.config.dedup_first_exchange:
            question, answer = first_exchange_key(cleaned)
            exchange = to_int64(xxhash.xxh3_64_intdigest(f"{question}\x00{answer}".encode("utf-8", "surrogatepass")))
        return index, record_id, None, cleaned, order, exchange

    # -- reporting -------------------------------------------------------------------------------
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


# This process's handles on mapped parse cache entries (key -> (table, counters)), and each path's keys; emptied by
# `release` after selecting. The bytes are the page cache's, not this process's.
_OPEN: dict[str, tuple[pa.Table, Counter]] = {}
_KEYS: dict[str, set[str]] = {}
_LOCK = threading.Lock()
_KEY_LOCKS: dict[str, threading.Lock] = {}


def _lock(key: str) -> threading.Lock:
    """One lock per entry: two threads wanting the same file parse it once."""
    with _LOCK:
        return _KEY_LOCKS.setdefault(key, threading.Lock())


# The modules whose code shapes the parsed table: a change to any of them is a new cache key.
_PARSE_MODULES = ("sharegpt", "sharegpt_clean", "sharegpt_html", "sharegpt_read", "sharegpt_rows", "sharegpt_split",
                  "sharegpt_parse", "sharegpt_dedup", "chat", "utf8")


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in [*(here / f"{name}.py" for name in _PARSE_MODULES), here.parent / "token_bound.py",
                 here.parent / "lengths.py", here.parent.parent / "finetune" / "conversation.py"]:
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


@functools.lru_cache(maxsize=16)
def _splitter(split: SplitConfig, base_dir: Path | None) -> Splitter:
    """One splitter (and tokenizer) per settings in this process: a pure function of them."""
    return Splitter(split, base_dir)


def _signature(file: InputFile) -> tuple[int, int]:
    stat = file.path.stat()
    return stat.st_size, stat.st_mtime_ns


def _first_line_record(path: Path):
    for _, record in iter_json_lines(path):
        return record
    return None
