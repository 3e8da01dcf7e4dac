"""The ShareGPT adapter: every quirk of the real files, the three file forms, one parse per build, exact fetches, builds."""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from flan_mini.errors import RecipeError, SourceError
from flan_mini.sources.base import read_file
from flan_mini.recipe import load_recipe
from flan_mini.rejects import reject_reasons
import flan_mini.sample as sample_module
from flan_mini.sample import select_source
from flan_mini.shards import read_shards
from flan_mini.sources import sharegpt as sharegpt_module
from flan_mini.sources.files import resolve_local
from flan_mini.sources.sharegpt import ShareGPTAdapter, ShareGPTConfig
from flan_mini.sources.sharegpt_rows import PIECE_BITS
from flan_mini.sources.sharegpt_clean import _CODE
from flan_mini.sources.sharegpt_read import iter_json_array

from .conftest import run_cli, write_recipe
from .fixtures.sharegpt_data import (
    EXPECTED,
    QUIRKS,
    chat,
    sample_records,
    write_sample_sharegpt,
    write_sharegpt_json,
    write_sharegpt_jsonl,
    write_sharegpt_parquet,
)


def adapter(path, **options) -> ShareGPTAdapter:
    return ShareGPTAdapter(ShareGPTConfig(name="sharegpt", adapter="sharegpt", path=str(path), n=1, **options))


def files(source, path):
    inputs = resolve_local(str(path), None, "train", path if path.is_dir() else path.parent, source.extensions)
    return inputs.files


def read_all(source, path) -> pa.Table:
    return read_counted(source, path)[0]


def read_counted(source, path) -> tuple[pa.Table, Counter]:
    """Every row of the files, and the adapter's counters; repeats judged across the files, as the selection does."""
    inputs = files(source, path)
    source = source.surveyed(inputs, [source.survey_file(f) for f in inputs])
    stats = Counter()
    return pa.Table.from_batches([b for f in inputs for b in source.read(f, stats=stats)]), stats


def outcome_by_record(table: pa.Table) -> dict[int, object]:
    """Record index -> its drop reason, or its turns (pieces joined back together)."""
    out: dict[int, object] = {}
    for row in table.to_pylist():
        if row["_reject"]:
            out[row["record"]] = row["_reject"]
        else:
            out.setdefault(row["record"], []).extend((t["from"], t["value"]) for t in row["conversations"])
    return out


# ------------------------------------------------------------------------------------------ quirks


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_every_quirk_is_handled_as_expected(tmp_path, form):
    records = list(QUIRKS.values())
    path = write_sharegpt_json(tmp_path / "sg.json", records) if form == "json" else write_sharegpt_jsonl(tmp_path / "sg.jsonl", records)
    source = adapter(tmp_path)
    outcome = outcome_by_record(read_all(source, tmp_path))
    assert path.exists() and len(outcome) == len(QUIRKS)
    for index, name in enumerate(QUIRKS):
        assert outcome[index] == EXPECTED[name], name


_TAG = re.compile(r"</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>")
_PAGE_MARKUP = re.compile(r"</[A-Za-z][\w-]*\s*>|<[A-Za-z][\w-]*\s[^<>]*=[^<>]*>")  # closing tags, tags with attributes


def leaked_markup(turns: list[tuple[str, str]]) -> list[str]:
    """HTML tags outside code in replies, page markup outside code in questions (a user asking about `<div>`
    writes content), and the copy button's text anywhere."""
    found = []
    for role, value in turns:
        prose = _CODE.sub(" ", value)  # fenced blocks and inline code removed
        found += (_TAG if role == "gpt" else _PAGE_MARKUP).findall(prose)
        if "Copy code" in value or "Copied!" in value:
            found.append("Copy code")
    return found


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_no_html_or_copy_code_survives_in_any_output_row(tmp_path, form):
    records = list(QUIRKS.values()) + sample_records(random.Random(5))
    write = write_sharegpt_json if form == "json" else write_sharegpt_jsonl
    write(tmp_path / f"sg.{form}", records)
    source = adapter(tmp_path, dedup_first_exchange=False)
    table, stats = read_counted(source, tmp_path)
    kept = [row for row in table.to_pylist() if not row["_reject"]]
    assert len(kept) > 40
    for row in kept:
        turns = [(t["from"], t["value"]) for t in row["conversations"]]
        assert leaked_markup(turns) == [], (row["id"], turns)
    assert stats["values:html_converted"] >= 3 and stats["values:copy_code_header_fixed"] >= 4
    # The check itself finds what it is meant to find.
    assert leaked_markup([("gpt", "<p>x</p>")]) and leaked_markup([("gpt", "```\npythonCopy codex\n```")])
    assert leaked_markup([("human", '<div class="x">q</div>')]) and not leaked_markup([("human", "Center a <div>?")])
    assert not leaked_markup([("gpt", "```html\n<p>x</p>\n```\nand `<b>`")])


def test_drops_are_rejects_with_their_reason_and_kept_rows_pass_the_content_check(tmp_path):
    write_sharegpt_json(tmp_path / "sg.json", list(QUIRKS.values()))
    source = adapter(tmp_path)
    batch = read_all(source, tmp_path).combine_chunks().to_batches()[0]
    reasons = reject_reasons(batch, source).to_pylist()
    expected_drops = sorted(v for v in EXPECTED.values() if isinstance(v, str))
    assert sorted(r for r in reasons if r) == expected_drops
    # Policy drops are told apart from malformed records by their prefix.
    assert {r for r in reasons if r and not r.startswith("policy:")} == {
        "not_an_object", "wrong_type:conversations", "missing:conversations", "malformed_turn", "wrong_type:id"}
    kept = batch.filter(pa.array([r is None for r in reasons]))
    assert kept.column("conversations").null_count == 0 and kept.column("content_hash").null_count == 0


def test_ids_are_kept_and_split_ids_are_separate_conversations(tmp_path):
    write_sharegpt_json(tmp_path / "sg.json", list(QUIRKS.values()))
    table = read_all(adapter(tmp_path), tmp_path)
    kept = table.filter(table.column("_reject").is_null())
    ids = kept.column("id").to_pylist()
    assert {"aBcSplt_0", "aBcSplt_4", "12345"} <= set(ids) and None in ids  # `no_id` keeps a null id
    assert ids.count("nRm4lQ2_0") == 1  # its duplicate was dropped


def test_dedup_options(tmp_path):
    write_sharegpt_json(tmp_path / "sg.json", list(QUIRKS.values()))
    outcome = outcome_by_record(read_all(adapter(tmp_path, dedup_first_exchange=False, drop_plugins=False), tmp_path))
    names = list(QUIRKS)
    assert outcome[names.index("duplicate_first_exchange")] == [
        ("human", "What is the capital of  France?"), ("gpt", "Paris."), ("human", "And of Spain?"), ("gpt", "Madrid.")]
    assert outcome[names.index("plugins")] == [("human", "Weather in Oslo?"), ("gpt", "It is 3°C and cloudy.")]
    assert outcome[names.index("duplicate_id")] == "policy:duplicate_id"  # ids are always unique


def test_a_dropped_first_copy_does_not_shadow_a_good_second_one(tmp_path):
    records = [{"id": "x", "conversations": chat("q", "")}, {"id": "x", "conversations": chat("q", "a")}]
    write_sharegpt_json(tmp_path / "sg.json", records)
    assert outcome_by_record(read_all(adapter(tmp_path), tmp_path)) == {0: "policy:empty_turn", 1: [("human", "q"), ("gpt", "a")]}


# Copies across files: "a" twice (different content), the exchange q/a twice (different ids, same
# text up to whitespace, one of them split), and a broken copy of "c" that must not shadow the good one.
REPEATS = [
    {"id": "a", "conversations": chat("q", "a")},
    {"id": "a", "conversations": chat("q2", "a2")},
    {"id": "b", "conversations": chat(" q ", "a", "more?", "x" * 300)},
    {"id": "c", "conversations": chat("q3", "")},
    {"id": "c", "conversations": chat("q3", "a3")},
]


def kept_and_dropped(table: pa.Table) -> tuple[list, dict]:
    """What was kept ((id, piece turns), sorted) and how many were dropped per reason: no file positions."""
    kept = sorted((row["id"], str(row["conversations"])) for row in table.to_pylist() if not row["_reject"])
    return kept, dict(Counter(r for r in table.column("_reject").to_pylist() if r))


@pytest.mark.parametrize("layout", [
    [("all.json", [0, 1, 2, 3, 4])],
    [("part1.json", [0, 3]), ("part2.json", [1, 2, 4])],
    [("part1.json", [4, 2, 1]), ("part2.json", [3, 0])],  # the same split, files' names swapped
    [("z.jsonl", [2]), ("m.json", [1, 4]), ("a.json", [0, 3])],
])
def test_which_copy_is_kept_depends_on_content_not_on_file_names_or_order(tmp_path, layout):
    expected_path = tmp_path / "expected"
    write_sharegpt_json(expected_path / "all.json", REPEATS)
    expected = kept_and_dropped(read_all(adapter(expected_path, split_conversations={"max_length": 100}), expected_path))
    folder = tmp_path / "layout"
    for name, indexes in layout:
        write = write_sharegpt_jsonl if name.endswith(".jsonl") else write_sharegpt_json
        write(folder / name, [REPEATS[i] for i in indexes])
    source = adapter(folder, split_conversations={"max_length": 100})
    table, stats = read_counted(source, folder)
    assert kept_and_dropped(table) == expected
    kept, dropped = expected
    heads = [row for row in table.to_pylist() if row["part"] == 0]  # one per kept conversation
    assert [row["id"] for row in heads].count("a") == 1  # one "a", whichever its content orders first
    assert [row["conversations"][0]["value"] for row in heads].count("q") == 1  # q/a once, from "a" or "b"
    assert ("c", str([{"from": "human", "value": "q3"}, {"from": "gpt", "value": "a3"}])) in kept
    assert dropped.pop("policy:empty_turn") == 1 and set(dropped) <= {"policy:duplicate_id", "policy:duplicate_exchange"}
    assert len(heads) + sum(dropped.values()) == 4
    # A dropped split conversation is one reject row at its record's ordinal; counts cover kept ones only.
    rejected = table.filter(table.column("_reject").is_valid())
    assert rejected.column("part").null_count == rejected.num_rows and (rejected.column("_ordinal").to_numpy() % (1 << PIECE_BITS) == 0).all()
    assert stats["conversations:kept"] == len(heads) and stats["pieces"] == len(kept)


def test_builds_do_not_depend_on_how_records_are_spread_over_files(tmp_path):
    records = sample_records(random.Random(8)) + REPEATS
    random.Random(2).shuffle(records)
    layouts = {"one": [("sg.json", records)],
               "split": [("b.json", records[::2]), ("a.jsonl", records[1::2])],
               "renamed": [("a.json", records[1::2][::-1]), ("z.json", records[::2])]}
    kept = None
    shards = {}
    for label, layout in layouts.items():
        root = tmp_path / label
        data = root / "data" / "sharegpt"
        for name, part in layout:
            (write_sharegpt_jsonl if name.endswith(".jsonl") else write_sharegpt_json)(data / name, part)
        if kept is None:  # every kept piece is written, so the selection is the same in every layout
            table = read_all(adapter(data, split_conversations={"max_length": 2000}), data)
            kept = table.column("_reject").null_count
        recipe = write_recipe(root, SHAREGPT_RECIPE.replace("ShareGPT_V3_unfiltered_cleaned_split.json", "")
                              .replace("n: 20", f"n: {kept}").replace("0.6", "0.9").replace("{extra}", ""))
        result = run_cli("build", recipe, "--out", root / "out", "--quiet")
        assert result.exit_code == 0, result.output
        shards[label] = [p.read_bytes() for p in sorted((root / "out" / "data").glob("*.parquet"))]
    assert shards["one"] and shards["one"] == shards["split"] == shards["renamed"]


def test_content_filters(tmp_path):
    write_sharegpt_json(tmp_path / "sg.json", list(QUIRKS.values()))
    outcome = outcome_by_record(read_all(adapter(tmp_path, blocked_phrases=["OpenAI"], max_non_latin_share=0.3), tmp_path))
    names = list(QUIRKS)
    assert outcome[names.index("mentions_openai")] == "policy:blocked_phrase"
    assert outcome[names.index("chinese")] == outcome[names.index("korean")] == "policy:non_latin"
    assert isinstance(outcome[names.index("french")], list)  # Latin script passes


# ---------------------------------------------------------------------------------------- splitting


def long_conversation(exchanges: int, size: int) -> list[dict]:
    return chat(*[f"{'q' if i % 2 == 0 else 'a'}{i}:" + "x" * size for i in range(2 * exchanges)])


def test_long_conversations_become_pieces_with_stable_ordinals(tmp_path):
    records = [{"id": "short", "conversations": chat("q", "a")}, {"id": "long", "conversations": long_conversation(7, 100)}]
    write_sharegpt_json(tmp_path / "sg.json", records)
    source = adapter(tmp_path, split_conversations={"max_length": 450})
    table, stats = read_counted(source, tmp_path)
    long = table.filter(pa.compute.equal(table.column("id"), "long")).to_pylist()
    # 7 exchanges of ~210 characters, at most 450 a piece: 2 + 2 + 2 + 1 exchanges.
    assert [r["part"] for r in long] == [0, 1, 2, 3] and [r["first_turn"] for r in long] == [0, 4, 8, 12]
    assert [r["_ordinal"] for r in long] == [(1 << PIECE_BITS) | p for p in range(4)]
    joined = [(t["from"], t["value"]) for r in long for t in r["conversations"]]
    assert joined == [(t["from"], t["value"]) for t in records[1]["conversations"]]  # nothing lost, last pair kept
    for row in long:
        turns = row["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2) and turns
        assert sum(len(t["value"]) for t in turns) <= 450
    assert stats["conversations:split"] == 1 and stats["pieces"] == 5
    assert len(set(table.column("content_hash").to_pylist())) == 5  # each piece its own identity


def test_over_long_exchanges_are_kept_whole_and_splitting_can_be_off(tmp_path):
    write_sharegpt_json(tmp_path / "sg.json", [{"id": "big", "conversations": long_conversation(3, 1000)}])
    source = adapter(tmp_path, split_conversations={"max_length": 500, "turn_overhead": 6})
    table, stats = read_counted(source, tmp_path)
    assert table.num_rows == 3 and stats["pieces:over_budget"] == 3
    assert read_all(adapter(tmp_path, split_conversations={"max_length": None}), tmp_path).num_rows == 1


def test_token_budget_with_a_local_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(["one two three four five"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    (tmp_path / "tok").mkdir()
    tokenizer.save(str(tmp_path / "tok" / "tokenizer.json"))
    # Each exchange: 3 + 3 words = 6 tokens, far fewer than its characters.
    turns = chat(*["one two three"] * 8)
    write_sharegpt_json(tmp_path / "data" / "sg.json", [{"id": "t", "conversations": turns}])
    split = {"max_length": 12, "unit": "tokens", "tokenizer": "tok"}
    source = adapter(tmp_path / "data", split_conversations=split)
    source.base_dir = tmp_path  # a relative tokenizer path is relative to the recipe's folder
    file = files(source, tmp_path / "data")[0]
    source.column_map(file, "json")
    parts = [r["part"] for r in pa.Table.from_batches(list(source.read(file))).to_pylist()]
    assert parts == [0, 1]  # 4 exchanges of 6 tokens, 2 a piece
    assert read_all(adapter(tmp_path / "data", split_conversations={"max_length": 12}), tmp_path / "data").num_rows == 4
    missing = adapter(tmp_path / "data", split_conversations={**split, "tokenizer": "no/such/tokenizer.json"})
    with pytest.raises(SourceError, match="split_conversations.tokenizer 'no/such/tokenizer.json': no tokenizer.json"):
        missing.column_map(file, "json")


def byte_level_tokenizer(folder, special=("<unk>", "<s>", "</s>")):
    """A small byte-level BPE tokenizer, trained in milliseconds, with LLaMA's special tokens: no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [" ".join(TOPIC_WORDS) * 3, "USER: ASSISTANT: A chat between a curious user and an assistant."] * 20
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=list(special),
                                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return tokenizer


TOPIC_WORDS = "the model answers each question about plants rivers code and numbers with care".split()


def test_pieces_fit_the_training_length_in_the_chat_format(tmp_path):
    from finetune.conversation import ASSISTANT, USER, VICUNA_V1_1

    tokenizer = byte_level_tokenizer(tmp_path / "tok")
    rng = random.Random(7)
    records = []
    for index in range(12):
        values = [" ".join(rng.choices(TOPIC_WORDS, k=rng.randint(3, 60))) for _ in range(2 * rng.randint(1, 9))]
        records.append({"id": f"c{index}", "conversations": chat(*values)})
    write_sharegpt_json(tmp_path / "data" / "sg.json", records)
    budget = 300
    split = {"max_length": budget, "unit": "tokens", "tokenizer": str(tmp_path / "tok"), "chat_format": "vicuna_v1.1"}
    source = adapter(tmp_path / "data", split_conversations=split)
    file = files(source, tmp_path / "data")[0]
    source.column_map(file, "json")
    everything, stats = read_file(source, file)
    pieces = [r for r in everything.to_pylist() if not r["_reject"]]

    def trained_length(turns):  # what the trainer tokenises: BOS + the whole rendered piece, system prompt included
        text, _ = VICUNA_V1_1.render([(USER if t["from"] == "human" else ASSISTANT, t["value"]) for t in turns])
        return 1 + len(tokenizer.encode(text, add_special_tokens=False).ids)

    lengths = [trained_length(p["conversations"]) for p in pieces]
    single = [len(p["conversations"]) == 2 for p in pieces]
    assert all(length <= budget for length, alone in zip(lengths, single) if not alone)
    assert stats.get("pieces:over_budget", 0) == sum(length > budget for length in lengths)
    assert len(pieces) > len(records) and max(lengths) > budget * 0.6  # it did split, and pieces are not tiny
    # Without the format, the same budget counts only the turns' text: fewer, longer pieces, some over the length.
    plain = adapter(tmp_path / "data", split_conversations={**split, "chat_format": None})
    plain.column_map(file, "json")
    plain_pieces = [r for r in pa.Table.from_batches(list(plain.read(file))).to_pylist() if not r["_reject"]]
    assert len(plain_pieces) < len(pieces)
    assert any(trained_length(p["conversations"]) > budget for p in plain_pieces if len(p["conversations"]) > 2)
    assert "in the vicuna_v1.1 format" in source.describe()["split_conversations"]


def test_a_budget_the_system_prompt_fills_is_an_error_and_formats_are_checked(tmp_path):
    byte_level_tokenizer(tmp_path / "tok")
    write_sharegpt_json(tmp_path / "data" / "sg.json", [{"id": "a", "conversations": chat("q", "a")}])
    split = {"max_length": 10, "unit": "tokens", "tokenizer": str(tmp_path / "tok"), "chat_format": "vicuna_v1.1"}
    source = adapter(tmp_path / "data", split_conversations=split)
    file = files(source, tmp_path / "data")[0]
    with pytest.raises(SourceError, match="leaves no room for turns: the vicuna_v1.1 system prompt alone takes"):
        list(source.read(file))
    with pytest.raises(ValueError, match="unknown chat_format 'chatml'; expected one of: vicuna_v1.1"):
        adapter(tmp_path, split_conversations={**split, "chat_format": "chatml"})


# ------------------------------------------------------------------------------------- reading, cache


def test_the_file_is_parsed_once_per_build_and_fetches_return_exactly_the_wanted_rows(tmp_path, monkeypatch):
    records = sample_records(random.Random(3))
    write_sharegpt_json(tmp_path / "sg.json", records)
    source = adapter(tmp_path, split_conversations={"max_length": 2000})
    parses = []
    original = sharegpt_module.iter_json_array
    monkeypatch.setattr(sharegpt_module, "iter_json_array", lambda path: parses.append(path) or original(path))
    file = files(source, tmp_path)[0]
    everything = pa.Table.from_batches(list(source.read(file, fields=())))
    assert everything.column_names == ["_ordinal", "_reject"]
    ordinals = everything.column("_ordinal").to_numpy()
    assert (np.diff(ordinals) > 0).all()
    wanted = np.sort(np.random.default_rng(1).choice(ordinals, 20, replace=False))
    got = pa.Table.from_batches(list(source.read(file, wanted)))
    assert got.column("_ordinal").to_numpy().tolist() == wanted.tolist()
    assert got.column_names == [*ShareGPTAdapter.fields, "_ordinal", "_reject"]
    # Ordinals that do not exist are not invented: the selection notices the file changed.
    absent = np.array([ordinals[0] + 1, ordinals[-1] + 5])
    assert pa.Table.from_batches(list(source.read(file, absent)), schema=got.schema).num_rows == 0
    assert len(parses) == 1


def test_selection_through_the_adapter(tmp_path):
    write_sharegpt_json(tmp_path / "sg.json", sample_records(random.Random(4)))
    source = ShareGPTAdapter(ShareGPTConfig(name="sharegpt", adapter="sharegpt", path=str(tmp_path), n=15, max_reject_rate=0.9))
    selection = select_source(source, files(source, tmp_path), seed=5)
    table = selection.table
    assert table.num_rows == 15 and table.column("conversations").null_count == 0
    rejected = selection.counts.rejected
    assert rejected["policy:duplicate_id"] == 1 and rejected["not_an_object"] == 1
    assert selection.counts.rows_examined == 15  # kept pieces pass the content check: nothing replaced
    again = select_source(ShareGPTAdapter(source.config), files(source, tmp_path), seed=5).table
    assert again.column("content_hash").to_pylist() == table.column("content_hash").to_pylist()


def test_a_file_changed_during_the_build_is_an_error(tmp_path, monkeypatch):
    path = write_sharegpt_json(tmp_path / "sg.json", [{"id": "a", "conversations": chat("q", "a")}])
    source = adapter(tmp_path)
    scan = sample_module.scan_file

    def scan_then_change(*job):  # the file changes between the selection's scan and its fetch
        result = scan(*job)
        write_sharegpt_json(path, [{"id": "a", "conversations": chat("q", "changed answer")}])
        return result

    monkeypatch.setattr(sample_module, "scan_file", scan_then_change)
    with pytest.raises(SourceError, match="changed while the build was reading it"):
        select_source(source, files(source, tmp_path), seed=1)


def test_parquet_and_gzipped_mirrors_read_like_the_json_array(tmp_path):
    records = [r for r in QUIRKS.values() if isinstance(r, dict) and isinstance(r.get("conversations"), list)
               and all(isinstance(t, dict) and isinstance(t.get("value"), str) for t in r["conversations"])
               and isinstance(r.get("id", ""), str) and "plugins" not in r
               and "\\ud83d" not in json.dumps(r)]  # Parquet cannot hold a lone surrogate
    write_sharegpt_json(tmp_path / "a" / "sg.json", records)
    write_sharegpt_parquet(tmp_path / "b" / "train-00000-of-00001.parquet", records)
    (tmp_path / "c").mkdir()
    with gzip.open(tmp_path / "c" / "sg.json.gz", "wt", encoding="utf-8") as handle:
        json.dump(records, handle)
    tables = [read_all(adapter(tmp_path / d), tmp_path / d).drop_columns(["_ordinal"]) for d in "abc"]
    assert tables[0].num_rows == len(records)
    assert tables[0].to_pylist() == tables[1].to_pylist() == tables[2].to_pylist()


def test_a_file_that_is_not_sharegpt_is_reported_before_reading(tmp_path):
    (tmp_path / "alpaca.json").write_text(json.dumps([{"instruction": "x", "output": "y"}]))
    source = adapter(tmp_path)
    with pytest.raises(SourceError, match=r"alpaca.json: not a ShareGPT file: its records have no `conversations` \(found: instruction, output\)"):
        source.column_map(files(source, tmp_path)[0], "json")


# -------------------------------------------------------------------------------- streamed JSON array


def _nasty_records(rng: np.random.Generator, count: int) -> list:
    pieces = ["plain", "with ] bracket", "comma, here", 'quote " inside', "back\\slash", "über ünïcödé", "emoji 🎉",
              "new\nline", "{not: json}", "", "\t tab"]
    records = []
    for index in range(count):
        kind = index % 5
        if kind == 0:
            records.append({"id": f"r{index}", "conversations": chat(*rng.choice(pieces, 4).tolist())})
        elif kind == 1:
            records.append(int(rng.integers(-10**12, 10**12)))
        elif kind == 2:
            records.append([1.5e10, None, True, {"nested": [[], {}]}])
        elif kind == 3:
            records.append("x" * int(rng.integers(0, 3000)))
        else:
            records.append({"deep": {"a": [{"b": "]" * 50}] * 3}})
    return records


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("window", [1, 7, 64, 4096])
def test_streamed_array_equals_json_loads(tmp_path, indent, window):
    records = _nasty_records(np.random.default_rng(window), 60)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records, indent=indent, ensure_ascii=window % 2 == 0), encoding="utf-8")
    assert [value for _, value in iter_json_array(path, window_bytes=window)] == records


@pytest.mark.parametrize("text, message", [
    ('{"id": 1}', r"expected a JSON array"),
    ('[{"id": 1}, {"id": 2}', r"not valid JSON in record 2|expected ',' or '\]' after record 1"),
    ('[{"id": 1} {"id": 2}]', r"expected ',' or '\]' after record 0"),
    ('[{"id": 1}, {"id": 2,}]', r"not valid JSON in record 1"),
    ('[{"id": 1}] extra', r"text after the array's closing"),
    ('[1, 2, ]', r"not valid JSON in record 2"),
])
def test_broken_arrays_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SourceError, match=message):
        list(iter_json_array(path, window_bytes=4))


def test_empty_array_and_byte_order_mark(tmp_path):
    (tmp_path / "a.json").write_bytes(b"\xef\xbb\xbf  [ ]\n")
    assert list(iter_json_array(tmp_path / "a.json")) == []
    (tmp_path / "b.json").write_bytes(b"[\xff]")
    with pytest.raises(SourceError, match="not valid UTF-8"):
        list(iter_json_array(tmp_path / "b.json"))


# ----------------------------------------------------------------------------------- recipes, builds


SHAREGPT_RECIPE = """
    name: chat
    seed: 11
    sources:
      - name: sharegpt
        adapter: sharegpt
        path: data/sharegpt/ShareGPT_V3_unfiltered_cleaned_split.json
        n: 20
        max_reject_rate: 0.6
        split_conversations: {max_length: 2000}
        {extra}
"""


def test_recipe_options_are_validated(tmp_path):
    path = write_recipe(tmp_path, """
        name: chat
        sources:
          - name: sharegpt
            adapter: sharegpt
            path: data.json
            n: 20
            system_turns: keep
            split_conversations: {unit: tokens}
            dedup: yes
    """)
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    text = str(error.value)
    assert "sources[0].system_turns: Input should be 'prepend', 'drop' or 'reject'" in text
    assert "sources[0].split_conversations: unit: tokens needs a tokenizer" in text
    assert "sources[0].dedup: unknown key 'dedup'" in text


def test_build_end_to_end(tmp_path):
    write_sample_sharegpt(tmp_path / "data", random.Random(20230706))
    recipe = write_recipe(tmp_path, SHAREGPT_RECIPE.replace("{extra}", ""))
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    table = read_shards(tmp_path / "out")
    assert table.num_rows == 20 and set(table.column("template_type").to_pylist()) == {"chat"}
    assert set(table.column("source").to_pylist()) == {"sharegpt"}
    for turns in table.column("conversations").to_pylist():
        assert len(turns) >= 2 and [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
        assert all(t["value"].strip() for t in turns)
        assert leaked_markup([(t["from"], t["value"]) for t in turns]) == []
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = manifest["sources"][0]
    drops = [v for v in EXPECTED.values() if isinstance(v, str)]
    assert sum(entry["rejected"].values()) == len(drops)
    assert entry["rejected"]["policy:duplicate_exchange"] == 1 and entry["rejected"]["malformed_turn"] == 2
    assert all(e["excerpt"].startswith(("id=", "record=")) for e in entry["reject_examples"])
    assert entry["settings"]["split_conversations"] == "at 2,000 chars"
    again = run_cli("build", recipe, "--out", tmp_path / "again", "--quiet")
    assert again.exit_code == 0
    first = sorted((tmp_path / "out" / "data").glob("*.parquet"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in sorted((tmp_path / "again" / "data").glob("*.parquet"))]


def test_rows_carry_extra_columns_onto_every_row():
    """The seam the chat adapter keeps columns through: each piece and drop takes the last carried values."""
    from flan_mini.sources.sharegpt import ShareGPTAdapter
    from flan_mini.sources.sharegpt_rows import Rows

    rows = Rows(ShareGPTAdapter.fields, extra=["source", "num_shots"])
    rows.carry({"source": "a", "num_shots": 2})
    rows.piece(0, "x", 0, 0, [("human", "hi"), ("gpt", "hello")])
    rows.piece(0, "x", 1, 2, [("human", "more"), ("gpt", "sure")])
    rows.carry({"source": "b"})
    rows.reject(1, "y", "malformed_turn")
    assert rows.extra == {"source": ["a", "a", "b"], "num_shots": [2, 2, None]}
    assert rows.table().num_rows == 3
