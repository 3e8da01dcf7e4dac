"""ShareGPT parsed in blocks (pieces of many conversations decided at once) and kept in the on-disk parse cache."""

from __future__ import annotations

import random
import shutil
import warnings

import pyarrow as pa
import pytest

from flan_mini.cache_dir import cache_folder
from flan_mini.sources import parse_cache
from flan_mini.sources import sharegpt as sharegpt_module
from flan_mini.sources import sharegpt_parse
from flan_mini.sources.sharegpt_clean import split_points
from flan_mini.sources.sharegpt_split import SplitConfig, Splitter

from .fixtures.sharegpt_data import chat, sample_records, write_sharegpt_json
from .test_sharegpt import adapter, files
from .test_token_bound import byte_level_bpe, words

TOKENS = {"max_length": 300, "unit": "tokens", "tokenizer": "tokenizer.json", "chat_format": "vicuna_v1.1"}


def conversations_around(rng: random.Random, count: int) -> list[list[tuple[str, str]]]:
    """Conversations of 1-6 exchanges whose lengths straddle a 300-token budget (some single exchanges over it)."""
    return [[(role, words(rng, 1, rng.choice([5, 40, 120, 400]))) for _ in range(rng.randint(1, 6)) for role in ("human", "gpt")]
            for _ in range(count)]


@pytest.mark.parametrize("split", [TOKENS, {**TOKENS, "turn_overhead": 3}, {"max_length": 900}])
def test_pieces_of_many_conversations_at_once_are_those_of_one_at_a_time(tmp_path, split):
    byte_level_bpe(False).save(str(tmp_path / "tokenizer.json"))
    conversations = conversations_around(random.Random(11), 250)
    splitter = Splitter(SplitConfig(**split), tmp_path)
    budget = splitter.budget()
    expected = []  # the rule itself: each exchange measured, then the greedy cut
    for turns in conversations:
        lengths = splitter.pair_lengths(turns)
        expected.append([(s, e, e - s == 1 and lengths[s] > budget) for s, e in split_points(lengths, budget)])
    calls = []
    measured = splitter.lengths
    splitter.lengths = lambda texts: calls.append(len(texts)) or measured(texts)
    assert splitter.pieces_many(conversations) == expected
    if split.get("unit") == "tokens":
        assert len(calls) == 1  # one tokenizer call for all of them
    assert [splitter.pieces(turns) for turns in conversations] == expected
    assert any(len(p) > 1 for p in expected) and any(len(p) == 1 for p in expected)
    assert any(over for p in expected for _, _, over in p)


def parse_fresh(source, file):
    """The file parsed with nothing of this process's handles (as another process would)."""
    sharegpt_module._OPEN.clear()
    sharegpt_module._KEYS.clear()
    return source.parsed(file)


def test_block_size_does_not_change_the_table(tmp_path, monkeypatch):
    byte_level_bpe(False).save(str(tmp_path / "tokenizer.json"))
    rng = random.Random(2)
    records = sample_records(rng) + [{"id": f"w{i}", "conversations": chat(*(words(rng, 1, 150) for _ in range(2 * rng.randint(1, 5))))}
                                     for i in range(60)]
    write_sharegpt_json(tmp_path / "data" / "sg.json", records)
    source = adapter(tmp_path / "data", split_conversations=TOKENS, max_reject_rate=1.0)
    source.base_dir = tmp_path
    file = files(source, tmp_path / "data")[0]
    tables = []
    for block_chars, folder in [(1 << 40, "one"), (1, "each"), (3000, "some")]:
        monkeypatch.setattr(sharegpt_parse, "BLOCK_CHARS", block_chars)
        monkeypatch.setenv("FLAN_MINI_CACHE", str(tmp_path / folder))
        tables.append(parse_fresh(source, file))
    (one, stats), *others = tables
    assert one.column("part").to_pylist().count(1) > 3  # conversations were split
    for table, other_stats in others:
        assert table.equals(one) and other_stats == stats


def test_a_file_is_parsed_once_per_machine_and_read_back_mapped(tmp_path, monkeypatch):
    write_sharegpt_json(tmp_path / "data" / "sg.json", sample_records(random.Random(3)))
    source = adapter(tmp_path / "data", split_conversations={"max_length": 2000}, max_reject_rate=1.0)
    file = files(source, tmp_path / "data")[0]
    parses = []
    original = sharegpt_module.iter_json_array
    monkeypatch.setattr(sharegpt_module, "iter_json_array", lambda path: parses.append(path) or original(path))
    table, stats = parse_fresh(source, file)
    entries = list(cache_folder().glob("parsed/*.arrow"))
    assert len(entries) == 1 and not list(cache_folder().glob("parsed/.*.tmp"))
    allocated = pa.total_allocated_bytes()
    again, again_stats = parse_fresh(source, file)
    assert pa.total_allocated_bytes() - allocated < table.nbytes // 4  # mapped, not read into memory
    assert len(parses) == 1 and again.equals(table) and again_stats == stats and stats["conversations:read"] > 0
    # The key is the content and the settings that shape the table, not the path, the row count or the name.
    copy = tmp_path / "elsewhere" / "copy.json"
    copy.parent.mkdir()
    shutil.copy(file.path, copy)
    renamed = adapter(copy.parent, split_conversations={"max_length": 2000}, max_reject_rate=0.5, label="other")
    assert parse_fresh(renamed, files(renamed, copy.parent)[0])[0].equals(table) and len(parses) == 1
    parse_fresh(adapter(tmp_path / "data", split_conversations={"max_length": 1000}), file)
    assert len(parses) == 2 and len(list(cache_folder().glob("parsed/*.arrow"))) == 2
    write_sharegpt_json(file.path, sample_records(random.Random(4)))
    parse_fresh(source, files(source, tmp_path / "data")[0])
    assert len(parses) == 3


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "no trailer"])
def test_a_broken_cache_entry_is_ignored_and_rewritten(tmp_path, monkeypatch, damage):
    write_sharegpt_json(tmp_path / "sg.json", sample_records(random.Random(5)))
    source = adapter(tmp_path, max_reject_rate=1.0)
    file = files(source, tmp_path)[0]
    table, stats = parse_fresh(source, file)
    [entry] = cache_folder().glob("parsed/*.arrow")
    data = entry.read_bytes()
    entry.unlink()  # a new file, as a crashed writer's would be: `table` still maps the old one
    if damage == "truncated":
        entry.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "garbage":
        entry.write_bytes(b"ARROW1" + bytes(random.Random(1).getrandbits(8) for _ in range(len(data))))
    elif damage == "empty":
        entry.write_bytes(b"")
    else:  # a complete Arrow file, but not one this module finished: no counters at its end
        with pa.OSFile(str(entry), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    parses = []
    original = sharegpt_module.iter_json_array
    monkeypatch.setattr(sharegpt_module, "iter_json_array", lambda path: parses.append(path) or original(path))
    again, again_stats = parse_fresh(source, file)
    assert len(parses) == 1 and again.equals(table) and again_stats == stats
    assert parse_cache.load(entry.stem) is not None  # rewritten whole


def test_an_unwritable_cache_folder_keeps_the_table_in_memory(tmp_path, monkeypatch):
    write_sharegpt_json(tmp_path / "sg.json", sample_records(random.Random(6)))
    source = adapter(tmp_path, max_reject_rate=1.0)
    expected = parse_fresh(source, files(source, tmp_path)[0])
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("FLAN_MINI_CACHE", str(tmp_path / "a-file"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = parse_fresh(source, files(source, tmp_path)[0])
    assert got[0].equals(expected[0]) and got[1] == expected[1]
    assert any("cannot be written" in str(w.message) and "FLAN_MINI_CACHE" in str(w.message) for w in caught)


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAN_MINI_CACHE", str(tmp_path / "mine"))
    assert cache_folder() == tmp_path / "mine"
    monkeypatch.delenv("FLAN_MINI_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "flan-mini"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder() == tmp_path / "home" / ".cache" / "flan-mini"
