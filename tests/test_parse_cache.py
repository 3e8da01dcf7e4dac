"""The parse cache's folder stays bounded: least recently used entries go first, the one just written stays."""

from __future__ import annotations

import os
import time
from collections import Counter

import pyarrow as pa
import pytest

from flan_mini.cache_dir import cache_folder
from flan_mini.errors import FlanMiniError
from flan_mini.sources import parse_cache

SCHEMA = pa.schema([("text", pa.string())])


def put(key: str, chars: int = 1000) -> int:
    """Store an entry of about `chars` bytes; its size on disk."""
    table = pa.table({"text": ["x" * chars]}, schema=SCHEMA)
    parse_cache.store(key, SCHEMA, table.to_batches(), Counter(rows=1))
    return parse_cache.entry_path(key).stat().st_size


def present() -> set[str]:
    return {path.stem for path in cache_folder("parsed").glob("*.arrow")}


def aged(key: str, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(parse_cache.entry_path(key), (when, when))


def test_the_least_recently_used_entries_go_once_the_folder_passes_its_size(monkeypatch):
    size = put("a")
    put("b")
    aged("a", 30)
    aged("b", 20)
    assert parse_cache.load("a") is not None  # a read is a use: "a" is now the newest of the two
    monkeypatch.setenv(parse_cache.SIZE_ENV, str(2 * size + size // 2))
    put("c")
    assert present() == {"a", "c"}
    put("d")
    assert present() == {"c", "d"}


def test_the_entry_just_written_stays_even_above_the_size(monkeypatch):
    put("small", 10)
    monkeypatch.setenv(parse_cache.SIZE_ENV, "1KB")
    put("large", 5000)
    assert present() == {"large"} and parse_cache.load("large") is not None


def test_the_default_size_keeps_every_small_entry(monkeypatch):
    monkeypatch.delenv(parse_cache.SIZE_ENV, raising=False)
    for key in "abcde":
        put(key)
    assert present() == set("abcde") and parse_cache.size_limit() == 10 * 1000**3


def test_a_dead_writers_temporary_file_is_removed_and_a_live_ones_kept():
    folder = cache_folder("parsed")
    folder.mkdir(parents=True, exist_ok=True)
    dead, live = folder / ".k1.123.abcd.tmp", folder / ".k2.456.ef01.tmp"
    dead.write_bytes(b"partial")
    live.write_bytes(b"partial")
    when = time.time() - parse_cache.STALE_SECONDS - 60
    os.utime(dead, (when, when))
    put("a")
    assert not dead.exists() and live.exists()


@pytest.mark.parametrize("text", ["lots", "-5GB", "10 parsecs"])
def test_a_bad_size_setting_is_an_error_naming_it_before_anything_is_written(monkeypatch, text):
    monkeypatch.setenv(parse_cache.SIZE_ENV, text)
    with pytest.raises(FlanMiniError, match=f"{parse_cache.SIZE_ENV}=.*expected a size"):
        put("a")
    assert not cache_folder("parsed").exists() or not any(cache_folder("parsed").iterdir())
