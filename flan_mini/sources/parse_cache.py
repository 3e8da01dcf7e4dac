"""Parsed source files kept on disk as Arrow IPC files keyed by content, and read back memory-mapped.

A file that is costly to parse (ShareGPT's 660 MB JSON array: cleaning, token counts) is parsed once per
machine: the table is written, batch by batch as the parse makes it, to `<folder>/parsed/<key>.arrow`, where
the key is a hash of the file's bytes (sha256) and of every setting that shapes the table (the adapter's
settings, its tokenizer's own hash, the parsing code itself, FORMAT). Later reads map the file (pa.memory_map):
its bytes live in the page cache, not in the process heap, and a warm build costs a hash of the input.

The folder is $FLAN_MINI_CACHE if set, else $XDG_CACHE_HOME/flan-mini, else ~/.cache/flan-mini. Entries are
never changed in place, only added or replaced by a new file: deleting the folder (or any entry) is always safe,
even during a build (a process mapping an entry keeps its copy), but an entry must not be truncated or
rewritten in place while a build maps it. An entry is written under a temporary name and renamed when
complete, and ends with an empty batch carrying the parse's counters: a file without that trailer or its
footer (truncated, corrupt) is ignored and rewritten.

The folder is bounded: after an entry is written, the least recently used entries (by modification time, which a
read refreshes) are deleted until the entries together take at most $FLAN_MINI_PARSE_CACHE_SIZE (default 10GB;
`500MB`, `20GiB` ...). The entry just written stays even when it alone is larger. Entries pile up otherwise: every
new tokenizer, split setting, file version or flan-mini release parses afresh (~640 MB for ShareGPT V3).
Temporary files a killed writer left (untouched for an hour) are deleted too.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from ..cache_dir import ENV, cache_folder
from ..errors import FlanMiniError, SourceError

FORMAT = 1  # of the entries; part of every key
_TRAILER = b"flan_mini_counters"
SIZE_ENV = "FLAN_MINI_PARSE_CACHE_SIZE"
DEFAULT_SIZE = "10GB"
STALE_SECONDS = 3600  # a temporary file untouched this long has no writer left (a writer adds to it as it parses)


def entry_key(content: str, settings: dict) -> str:
    """The entry's name: a hash of the content's hash, the settings (JSON-able) and FORMAT."""
    text = json.dumps({"format": FORMAT, "content": content, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_path(key: str) -> Path:
    return cache_folder("parsed") / f"{key}.arrow"


def load(key: str) -> tuple[pa.Table, Counter] | None:
    """The cached table (memory-mapped) and counters, or None when there is no complete entry."""
    path = entry_path(key)
    try:
        reader = ipc.open_file(pa.memory_map(str(path)))
        count = reader.num_record_batches
        if count == 0:
            return None
        trailer, metadata = reader.get_batch_with_custom_metadata(count - 1)
        if trailer.num_rows or metadata is None or _TRAILER not in metadata:
            return None
        counters = Counter(json.loads(metadata[_TRAILER]))
        table = pa.Table.from_batches([reader.get_batch(i) for i in range(count - 1)], reader.schema)
        table.validate()
        _mark_used(path)
        return table, counters
    except FileNotFoundError:
        return None
    except (pa.ArrowException, OSError, ValueError, KeyError):  # truncated or corrupt: parsed again, rewritten
        return None


def read_batches(key: str) -> Iterator[pa.RecordBatch] | None:
    """The entry's record batches read one at a time into memory (not mapped: a caller that keeps only a few rows
    of each holds one batch, not every page it touched), or None when there is no such file."""
    try:
        source = pa.OSFile(str(entry_path(key)))
        reader = ipc.open_file(source)
    except (OSError, pa.ArrowException):
        return None
    return _batches_of(source, reader)


def _batches_of(source, reader) -> Iterator[pa.RecordBatch]:
    with source:
        for index in range(reader.num_record_batches - 1):  # the last one is the counters' trailer
            yield reader.get_batch(index)


def store(key: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch], counters: Counter,
          check: Callable[[], None] = lambda: None) -> tuple[pa.Table, Counter]:
    """Write the batches (consumed as they come) and then `counters` (complete once the batches are) as the entry,
    and return it read back memory-mapped. `check` runs before the entry is published (it may raise: the parse
    was of a file that changed). A folder that cannot be written keeps the table in memory instead, with a warning.
    """
    size_limit()  # a bad setting fails now, not after the parse
    path = entry_path(key)
    temporary = path.with_name(f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = pa.OSFile(str(temporary), "wb")
    except (OSError, pa.ArrowException) as exc:
        warnings.warn(f"parse cache folder {path.parent} cannot be written ({exc}); keeping the parsed table in "
                      f"memory (set {ENV} to a writable folder)", stacklevel=2)
        table = pa.Table.from_batches(list(batches), schema)
        check()
        return table, counters
    try:
        with sink, ipc.new_file(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
            trailer = json.dumps(dict(sorted(counters.items()))).encode()
            writer.write_batch(_empty(schema), custom_metadata={_TRAILER: trailer})
        check()
        os.replace(temporary, path)
    except (OSError, pa.ArrowException) as exc:
        temporary.unlink(missing_ok=True)
        raise SourceError(f"cannot write the parse cache entry {path} ({exc}); free some space there or set {ENV} "
                          "to another folder") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    try:
        evict(keep=path)
    except OSError:  # an unlistable folder: the entries stay, the build goes on
        pass
    entry = load(key)
    if entry is None:
        raise SourceError(f"the parse cache entry {path} just written cannot be read back")
    return entry


def size_limit() -> int:
    """The most bytes the entries may take together: $FLAN_MINI_PARSE_CACHE_SIZE (pydantic's ByteSize: `10GB`,
    `500MiB`, a number of bytes), else DEFAULT_SIZE."""
    from pydantic import ByteSize, TypeAdapter, ValidationError

    text = os.environ.get(SIZE_ENV, "").strip() or DEFAULT_SIZE
    try:
        return int(TypeAdapter(ByteSize).validate_python(text))
    except ValidationError:
        raise FlanMiniError(f"{SIZE_ENV}={text!r}: expected a size such as 10GB, 500MiB or a number of bytes") from None


def evict(keep: Path) -> list[Path]:
    """Delete the least recently used entries beside `keep` until all take at most `size_limit()`, and temporary
    files no writer touched for STALE_SECONDS; returns what was deleted. Races with other builds are harmless: a
    file already gone is skipped, and a build that maps a deleted entry keeps its copy (POSIX)."""
    limit, now, removed = size_limit(), time.time(), []
    entries = []
    for path in keep.parent.iterdir():
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        if path.name.endswith(".tmp") and path.name.startswith("."):
            if now - status.st_mtime > STALE_SECONDS and _unlink(path):
                removed.append(path)
        elif path.suffix == ".arrow":
            entries.append((status.st_mtime_ns, path.name, status.st_size, path))
    total = sum(size for _, _, size, _ in entries)
    for _, _, size, path in sorted(entries):  # oldest use first
        if total <= limit:
            break
        if path != keep and _unlink(path):
            removed.append(path)
            total -= size
    return removed


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:  # gone already, or a folder we may read but not change (the entries stay)
        return False


def _mark_used(path: Path) -> None:
    """Record a read as a use (the modification time orders eviction; access times are often not kept)."""
    try:
        os.utime(path)
    except OSError:  # a read-only cache folder still serves reads
        pass


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], field.type) for field in schema], schema=schema)
