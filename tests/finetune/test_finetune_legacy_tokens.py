"""Vicuna's exact tokens on the genuine LLaMA tokenizer: ids and trained spans against FastChat's preprocess
run over transformers' legacy sentencepiece LLaMA tokenizer, whatever files the base ships."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from finetune.commands import finetune_command
from finetune.config import BaseModelSection
from finetune.conversation import VICUNA_V1_1
from finetune.encode import DROPPED_SPECIAL_TOKEN, IGNORE, OK, encode_batch, encode_prompt
from finetune.spm import model_proto_from_tokenizer_json
from finetune.tokenizer import load_training_tokenizer

from .conftest import TINY_CONFIG, write_built_folder


def conv(*turns):
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": text} for i, text in enumerate(turns)]


SINGLE = conv("What is the capital of Peru?", "Lima.")
MULTI = conv("Add 2 and 3.", "2 + 3 = 5.", "And times 4?", "20.", "Thanks!", "You are welcome.")
CODE = conv(
    "Fix the indentation:\ndef total(xs):\nreturn sum(xs)",
    "```python\ndef total(xs):\n    total = 0\n    for x in xs:\n        total += x\n\treturn total  \n```",
    "Now in Go.",
    "func total(xs []int) int {\n\tt := 0\n\tfor _, x := range xs {\n\t\tt += x\n\t}\n\treturn t\n}",
)
NON_LATIN = conv("日本の首都はどこですか？", "東京です。", "Как дела? 😀 مرحبا", "Хорошо, спасибо! 👍 ✓")
SPACES = conv("  leading spaces and trailing   ", "   indented reply\n\n\n  with blank lines   ")
WITH_ASSISTANT = conv("Continue this log: USER: hi ASSISTANT: hello", "USER: how are you? ASSISTANT: fine")
WITH_EOS = conv("Repeat after me: </s>", "</s>")
LEGACY_ROWS = {"single": SINGLE, "multi": MULTI, "code": CODE, "non_latin": NON_LATIN, "spaces": SPACES}


def fastchat_preprocess(conversation, tokenizer):
    """FastChat's train.py ``preprocess`` for vicuna_v1.1, re-implemented from its description: render the
    prompt (ADD_COLON_TWO, sep " ", sep2 "</s>"), tokenise it whole, mask the BOS, and per "</s>"-round mask the
    tokens of everything up to " ASSISTANT: " (its length in tokens minus BOS and the trailing space piece);
    a round length mismatch masks the whole row."""
    roles = {"human": "USER", "gpt": "ASSISTANT"}
    seps = [" ", "</s>"]
    text = VICUNA_V1_1.system + seps[0]
    for i, turn in enumerate(conversation):
        text += f"{roles[turn['from']]}: {turn['value']}{seps[i % 2]}"
    ids = tokenizer(text).input_ids
    labels = list(ids)
    sep = " ASSISTANT: "
    cur = 1
    labels[:cur] = [IGNORE] * cur
    for rou in text.split("</s>"):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        instruction = len(tokenizer(parts[0] + sep).input_ids) - 2
        labels[cur : cur + instruction] = [IGNORE] * len(labels[cur : cur + instruction])
        cur += len(tokenizer(rou).input_ids)
    labels[cur:] = [IGNORE] * len(labels[cur:])
    if cur != len(ids):
        labels = [IGNORE] * len(ids)
    return ids, labels


def assert_same_tokens(ours, expected, tokenizer, what):
    """Token by token, naming the first position that differs and the pieces around it."""
    ours, expected = [int(i) for i in ours], [int(i) for i in expected]
    if ours == expected:
        return
    first = next((i for i, (a, b) in enumerate(zip(ours, expected)) if a != b), min(len(ours), len(expected)))
    pieces = tokenizer.convert_ids_to_tokens
    raise AssertionError(
        f"{what} differ at position {first} (lengths {len(ours)} vs {len(expected)}): "
        f"ours {pieces(ours[max(0, first - 3):first + 3])} vs legacy {pieces(expected[max(0, first - 3):first + 3])}"
    )


def load(folder, mode="auto"):
    return load_training_tokenizer(BaseModelSection(path=str(folder), tokenizer_mode=mode), folder)


@pytest.fixture(scope="module", params=["llama_model_only", "llama_json_only", "llama_both"])
def llama_tokenizer(request):
    return load(request.getfixturevalue(request.param))


def test_the_rebuilt_model_gives_llama_cpp_reference_ids(llama_dir, llama_json_only):
    import sentencepiece

    cases = json.loads((llama_dir / "reference_cases.json").read_text(encoding="utf-8"))
    genuine = sentencepiece.SentencePieceProcessor(model_file=str(llama_dir / "tokenizer.model"))
    rebuilt = sentencepiece.SentencePieceProcessor()
    rebuilt.LoadFromSerializedProto(model_proto_from_tokenizer_json(llama_json_only / "tokenizer.json"))
    assert len(cases) > 40
    for text, ids in cases:
        assert genuine.encode(text) == ids, text
        assert rebuilt.encode(text) == ids, text


def test_the_vocabulary_rebuilt_from_tokenizer_json_encodes_like_the_genuine_model(llama_dir, llama_json_only):
    import sentencepiece

    genuine = sentencepiece.SentencePieceProcessor(model_file=str(llama_dir / "tokenizer.model"))
    rebuilt = sentencepiece.SentencePieceProcessor()
    rebuilt.LoadFromSerializedProto(model_proto_from_tokenizer_json(llama_json_only / "tokenizer.json"))
    rng = np.random.default_rng(0)
    alphabet = list("abcdefghijklmnopqrstuvwxyz ABC.,:;()[]{}=+-*/_#'\"\n\t0123456789") + [
        "    ", "  ", "\n    ", "é", "ß", "日本", "語", "дела", "😀", "👍", "مرحبا", "\u00a0"]
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(1, 60)))) for _ in range(400)]
    texts += [turn["value"] for row in LEGACY_ROWS.values() for turn in row]
    for text in texts:
        assert rebuilt.encode(text) == genuine.encode(text), repr(text)


@pytest.mark.parametrize("name", sorted(LEGACY_ROWS))
def test_ids_and_trained_tokens_equal_fastchats_legacy_ones(llama_tokenizer, legacy_llama, name):
    assert llama_tokenizer.mode == "spm"
    row = LEGACY_ROWS[name]
    out = encode_batch([row], llama_tokenizer, VICUNA_V1_1, 100_000)
    assert out["status"] == [OK]
    ids, labels = fastchat_preprocess(row, legacy_llama)
    assert any(label != IGNORE for label in labels)  # the oracle found every round (no mismatch)
    assert_same_tokens(out["input_ids"][0], ids, legacy_llama, "ids")
    assert_same_tokens(out["labels"][0], labels, legacy_llama, "labels")


def test_after_each_reply_the_next_turn_starts_a_new_sentencepiece_word(llama_tokenizer, legacy_llama):
    out = encode_batch([MULTI], llama_tokenizer, VICUNA_V1_1, 100_000)
    pieces = legacy_llama.convert_ids_to_tokens([int(i) for i in out["input_ids"][0]])
    after_eos = [pieces[i + 1 : i + 4] for i, p in enumerate(pieces[:-1]) if p == "</s>"]
    assert after_eos == [["\u2581US", "ER", ":"]] * 2  # not "USER": the legacy tokenizer's dummy prefix
    code = encode_batch([CODE], llama_tokenizer, VICUNA_V1_1, 100_000)
    code_pieces = legacy_llama.convert_ids_to_tokens([int(i) for i in code["input_ids"][0]])
    # The line "    total = 0": sentencepiece's `▁▁▁ ▁total`, not the `▁▁▁▁ total` of a merge-ranked BPE.
    windows = [code_pieces[i : i + 3] for i in range(len(code_pieces) - 2)]
    assert ["<0x0A>", "\u2581\u2581\u2581", "\u2581total"] in windows


def test_assistant_in_the_text_keeps_legacy_ids_and_trains_on_the_replies_only(llama_tokenizer, legacy_llama):
    out = encode_batch([WITH_ASSISTANT], llama_tokenizer, VICUNA_V1_1, 100_000)
    assert out["status"] == [OK]
    ids, labels = np.asarray(out["input_ids"][0]), np.asarray(out["labels"][0])
    legacy_ids, legacy_labels = fastchat_preprocess(WITH_ASSISTANT, legacy_llama)
    assert_same_tokens(ids, legacy_ids, legacy_llama, "ids")
    # FastChat splits rounds on " ASSISTANT: ", so the text's own one breaks its mask; ours follows the turns.
    assert legacy_labels != labels.tolist()
    # Every token of the prompt (up to and including "ASSISTANT:") is masked, every later one trained.
    prompt = legacy_llama(VICUNA_V1_1.render_prompt([("user", WITH_ASSISTANT[0]["value"])])).input_ids
    assert ids[: len(prompt)].tolist() == prompt
    assert (labels[: len(prompt)] == IGNORE).all() and (labels[len(prompt) :] == ids[len(prompt) :]).all()
    assert legacy_llama.decode(ids[len(prompt) :].tolist()) == WITH_ASSISTANT[1]["value"] + "</s>"


def test_a_literal_end_of_sequence_token_in_the_text_drops_the_row(llama_tokenizer):
    out = encode_batch([WITH_EOS, SINGLE], llama_tokenizer, VICUNA_V1_1, 100_000)
    assert out["status"] == [DROPPED_SPECIAL_TOKEN, OK]


def test_a_prompt_is_encoded_as_its_training_prefix(llama_tokenizer, legacy_llama):
    turns = [("user", "Add 2 and 3."), ("assistant", "2 + 3 = 5."), ("user", "And times 4?")]
    prompt = encode_prompt(turns, llama_tokenizer, VICUNA_V1_1)
    ids, _ = fastchat_preprocess(MULTI[:4], legacy_llama)
    text = VICUNA_V1_1.render_prompt(turns)
    assert prompt == legacy_llama(text).input_ids
    assert ids[: len(prompt)] == prompt


def test_inspect_writes_legacy_ids_and_labels_without_loading_weights(tmp_path, llama_model_only, legacy_llama):
    rows = [SINGLE, MULTI, CODE, NON_LATIN, SPACES, WITH_ASSISTANT, WITH_EOS] * 3
    built = write_built_folder(tmp_path / "data", convs=rows)
    out = tmp_path / "t.jsonl"
    result = CliRunner().invoke(finetune_command, [
        str(TINY_CONFIG), "--dataset", str(built), "--set", f"base_model.tokenizer={llama_model_only}",
        "--set", f"base_model.path={tmp_path / 'base'}", "--set", f"dataset.cache_dir={tmp_path / 'cache'}",
        "--inspect", "200", "--inspect-out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "base").exists()  # tokenizer only: no model was built or loaded
    assert "mode spm" in result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    by_id = {f"row-{i}": row for i, row in enumerate(rows)}
    assert 15 <= len(written) < len(rows)  # the evaluation rows are held out, as in training
    checked = 0
    for entry in written:
        assert set(entry) == {"id", "input_ids", "labels"}
        row = by_id[entry["id"]]
        if row is WITH_EOS:
            assert entry["input_ids"] == entry["labels"] == []
            continue
        ids, labels = fastchat_preprocess(row, legacy_llama)
        if row is WITH_ASSISTANT:
            assert entry["input_ids"] == ids
            continue
        assert (entry["input_ids"], entry["labels"]) == (ids, labels), entry["id"]
        checked += 1
    assert checked >= 10
    # The printout marks the trained spans in the text and in the tokens.
    assert "ASSISTANT:\u27e6 Lima.</s>\u27e7" in result.output
    assert "</s>(2)\u27e7 \u2581US(3148) ER(1001) :(29901)" in result.output


def test_a_run_on_llama_tokens_records_them_and_generates_with_them(tmp_path, llama_model_only, legacy_llama):
    """A tiny LLaMA-vocabulary base trained two steps on legacy ids; the adapter carries tokenizer.model and the
    mode, and `flan-mini generate` prompts with the training prefix."""
    from finetune.generate import generate, load_adapter
    from finetune.train import run

    from .conftest import tiny_overrides

    built = write_built_folder(tmp_path / "data", convs=[SINGLE, MULTI, CODE, NON_LATIN] * 2)
    result = run(TINY_CONFIG, tiny_overrides(tmp_path, built, **{
        "base_model.tokenizer": str(llama_model_only), "training.max_steps": 2, "training.max_length": 256,
        "dataset.eval_share": 0.0,
    }), log=lambda _: None)
    out = result.output_dir
    recorded = json.loads((out / "tokenization.json").read_text())
    assert recorded["mode"] == "spm" and recorded["vocab_size"] == 32000
    assert recorded["sentencepiece_model"] == "tokenizer.model" and (out / "tokenizer.model").is_file()
    assert "mode `spm`" in (out / "README.md").read_text()
    assert json.loads((tmp_path / "base" / "tiny_base.json").read_text())["vocab_size"] == 32000
    loaded = load_adapter(out)
    assert loaded.tokenizer.mode == "spm"
    prompt = encode_prompt([("user", "What is the capital of Peru?")], loaded.tokenizer, VICUNA_V1_1)
    assert prompt == fastchat_preprocess(SINGLE, legacy_llama)[0][: len(prompt)]
    reply = generate(loaded, "What is the capital of Peru?", max_new_tokens=3)
    assert reply.new_tokens >= 1


def test_a_tokenizer_json_that_is_not_sentencepiece_style_is_refused(tiny_tokenizer, tmp_path):
    from finetune.tokenizer import choose_mode
    from flan_mini.errors import FlanMiniError

    tiny_tokenizer.save_pretrained(tmp_path)  # byte-level BPE: no byte fallback, no ▁ words
    assert choose_mode(tmp_path, "auto") == "fast"
    with pytest.raises(FlanMiniError, match="not a sentencepiece-style BPE tokenizer.*tokenizer_mode: fast"):
        load(tmp_path, "spm")


def test_a_vocabulary_whose_merges_disagree_with_its_ids_is_refused(llama_json_only, tmp_path):
    from flan_mini.errors import FlanMiniError

    data = json.loads((llama_json_only / "tokenizer.json").read_text(encoding="utf-8"))
    merges = data["model"]["merges"]
    merges[0], merges[5000] = merges[5000], merges[0]  # no longer ranked by the pieces' ids
    (tmp_path / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(FlanMiniError, match="merges rank"):
        model_proto_from_tokenizer_json(tmp_path / "tokenizer.json")
