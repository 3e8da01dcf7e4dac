"""Every registered adapter through the shared test kit (kit.py), on small files in its real published format."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flan_mini.errors import RecipeError, SourceError
from flan_mini.recipe import load_recipe
from flan_mini.sources import registry
from flan_mini.sources.alpaca import AlpacaAdapter, AlpacaConfig
from flan_mini.sources.apps import AppsAdapter, AppsConfig
from flan_mini.sources.base import Adapter
from flan_mini.sources.chat import ChatAdapter, ChatConfig
from flan_mini.sources.code_contests import CodeContestsAdapter, CodeContestsConfig
from flan_mini.sources.code_search_net import CodeSearchNetAdapter, CodeSearchNetConfig
from flan_mini.sources.files import resolve_local
from flan_mini.sources.flan import FlanAdapter, FlanConfig
from flan_mini.sources.sharegpt import ShareGPTAdapter, ShareGPTConfig

from ..fixtures.chat_data import write_slimorca_json, write_tulu_jsonl
from ..fixtures.code_samples import APPS
from ..fixtures.formats import write_alpaca_json, write_apps_jsonl, write_sirneural_flan
from ..fixtures.sharegpt_data import QUIRKS, sample_records, write_sharegpt_json, write_sharegpt_jsonl
from .example_adapter import DollyAdapter, DollyConfig, QAAdapter, QAConfig
from .kit import check_adapter

SAMPLE = Path(__file__).resolve().parents[2] / "recipes" / "sample_data"


def local(adapter: Adapter, folder: Path, data_files=None, split: str = "train"):
    return resolve_local(str(folder), data_files, split, folder, adapter.extensions).files


def flan(tmp_path):
    adapter = FlanAdapter(FlanConfig(name="f", adapter="flan", path=".", n=5, task_caps="flan2022"))
    return adapter, local(adapter, SAMPLE / "flan" / "openorca")


def flan_jsonl(tmp_path):  # SirNeural's layout, with a line that is not JSON
    write_sirneural_flan(tmp_path, "cot_zs_opt_train.jsonl.gz", [
        {"inputs": f"Q{i}", "targets": f"A{i}", "task_name": f"cot_task_{i % 3}"} for i in range(12)], raw_lines={4: "{not json"})
    adapter = FlanAdapter(FlanConfig(name="f", adapter="flan", path=".", n=5, task_caps=7))
    return adapter, local(adapter, tmp_path) + local(adapter, SAMPLE / "flan" / "sirneural")


def alpaca(tmp_path):
    write_alpaca_json(tmp_path / "a.json", [{"instruction": "Say hi", "input": "", "output": "hi"},
                                           {"instruction": "", "input": "", "output": "blank instruction"},
                                           {"instruction": "Add", "input": "1 2", "output": None}, "not an object"])
    adapter = AlpacaAdapter(AlpacaConfig(name="a", adapter="alpaca", path=".", n=5))
    return adapter, local(adapter, tmp_path) + local(adapter, SAMPLE / "code_alpaca") + local(adapter, SAMPLE / "alpaca_gpt4")


def code_contests(tmp_path):
    adapter = CodeContestsAdapter(CodeContestsConfig(name="c", adapter="code_contests", path=".", n=5, max_per_problem=2))
    data = SAMPLE / "code_contests"
    return adapter, local(adapter, data, "data/train-*.parquet") + local(adapter, data, "data/valid-*.parquet", "validation")


def apps(tmp_path):
    write_apps_jsonl(tmp_path / "train.jsonl", APPS)
    adapter = AppsAdapter(AppsConfig(name="p", adapter="apps", path=".", n=5, max_per_problem=2))
    return adapter, local(adapter, tmp_path) + local(adapter, SAMPLE / "apps", "train.jsonl")


def code_search_net(tmp_path):
    adapter = CodeSearchNetAdapter(CodeSearchNetConfig(name="s", adapter="code_search_net", path=".", n=5,
                                                       languages=["python", "go"]))
    return adapter, local(adapter, SAMPLE / "code_search_net", "*/final/jsonl/train/*.jsonl.gz")


def sharegpt(tmp_path):
    records = list(QUIRKS.values()) + sample_records(random.Random(3), ordinary=10)
    write_sharegpt_json(tmp_path / "b.json", records[::2])
    write_sharegpt_jsonl(tmp_path / "a.jsonl", records[1::2] + records[:4])  # repeats across the files
    adapter = ShareGPTAdapter(ShareGPTConfig(name="g", adapter="sharegpt", path=".", n=5, split_conversations={"max_length": 300}))
    return adapter, local(adapter, tmp_path) + local(adapter, SAMPLE / "sharegpt")


def chat(tmp_path):
    write_tulu_jsonl(tmp_path / "tulu.jsonl")
    write_slimorca_json(tmp_path / "slim.json")
    adapter = ChatAdapter(ChatConfig(name="h", adapter="chat", path=".", n=5))
    return adapter, local(adapter, tmp_path)


CASES = {"flan": flan, "alpaca": alpaca, "code_contests": code_contests, "apps": apps,
         "code_search_net": code_search_net, "sharegpt": sharegpt, "chat": chat}


def test_every_registered_adapter_has_a_case():
    assert sorted(CASES) == registry.names()


@pytest.mark.parametrize("name", sorted(CASES))
def test_adapter_keeps_the_contract(name, tmp_path):
    adapter, files = CASES[name](tmp_path)
    assert type(adapter) is registry.adapter_class(name) and len(files) >= 2
    check_adapter(adapter, files)


@pytest.mark.parametrize("case", [flan_jsonl, alpaca, apps, sharegpt, chat])
def test_malformed_rows_are_rejects_not_errors(case, tmp_path):
    adapter, files = case(tmp_path)
    assert check_adapter(adapter, files)  # some rows were rejected, with reasons, and the contract held


def test_a_new_adapter_from_the_docstring_and_the_kit(tmp_path):
    lines = [{"instruction": "Name a colour", "context": "", "response": "Blue", "category": "open_qa"},
             {"instruction": "Summarise", "context": "A long text.", "response": "", "category": "summarization"},
             {"instruction": "Who?", "context": "", "response": "Ada", "category": "open_qa"}]
    (tmp_path / "dolly.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + "{broken\n")
    (tmp_path / "more.jsonl").write_text(json.dumps(lines[0] | {"response": "Red"}) + "\n")
    adapter = DollyAdapter(DollyConfig(name="d", adapter="dolly", path=".", n=1, categories=["open_qa"]))
    reasons = check_adapter(adapter, local(adapter, tmp_path))
    assert reasons == {"empty:response": 1, "invalid_json": 1}


def test_overriding_read_is_refused():
    with pytest.raises(TypeError, match="override read_records"):
        type("Bad", (Adapter,), {"read": lambda self, *a: iter(())})


def test_unknown_adapter_names_suggest_the_closest():
    with pytest.raises(SourceError, match=r"unknown adapter 'alpacca'.*did you mean 'alpaca'\?"):
        registry.adapter_class("alpacca")
    assert "alpacca" not in registry.ADAPTERS and "alpaca" in registry.ADAPTERS


def test_register_adds_a_lazily_imported_adapter(monkeypatch):
    monkeypatch.setattr(registry, "_TARGETS", dict(registry._TARGETS))
    monkeypatch.setattr(registry, "_LOADED", {})
    registry.register("dolly", "tests.sources.example_adapter:DollyAdapter")
    assert registry.adapter_class("dolly") is DollyAdapter and "dolly" in registry.names()
    with pytest.raises(ValueError, match="registered already"):
        registry.register("dolly", "somewhere.else:Dolly")


def test_help_and_listing_adapters_import_none_of_their_modules():
    code = ("import sys\nfrom flan_mini.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "from flan_mini.sources import ADAPTERS\nnames = sorted(ADAPTERS)\nassert 'alpaca' in ADAPTERS\n"
            "print([m for m in sys.modules if m.split('.')[-1] in names])\n"
            "ADAPTERS['alpaca']\nprint([m for m in sys.modules if m.split('.')[-1] in names])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-2:] == ["[]", "['flan_mini.sources.alpaca']"]  # imported when asked for only


def test_a_misspelt_adapter_in_a_recipe_names_its_line_and_the_closest_name(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nseed: 1\nsources:\n  - name: a\n    adapter: alpacca\n    path: data\n    n: 1\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    assert any(f"{recipe}:5" in p and "unknown adapter 'alpacca'" in p and "did you mean 'alpaca'?" in p
               for p in caught.value.problems)


class _IgnoresWanted(AlpacaAdapter):
    def read_records(self, file, wanted, fields, stats):
        return super().read_records(file, None, fields, stats)


class _Remembers(AlpacaAdapter):
    def normalise(self, batch, file):  # state carried from one read to the next
        self.reads = getattr(self, "reads", 0) + 1
        return batch if self.reads == 1 else batch.slice(1)


@pytest.mark.parametrize("broken", [_IgnoresWanted, _Remembers])
def test_the_kit_catches_a_broken_adapter(broken, tmp_path):
    adapter, files = alpaca(tmp_path)
    with pytest.raises(AssertionError):
        check_adapter(broken(adapter.config), files)


def test_the_docstring_example_adapter_keeps_the_contract(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n{"question": "?", "answer": " "}\n')
    (tmp_path / "b.json").write_text('[{"question": "Capital of France?", "answer": "Paris"}, {"answer": "no question"}]')
    adapter = QAAdapter(QAConfig(name="qa", adapter="qa", path=".", n=1))
    assert check_adapter(adapter, local(adapter, tmp_path)) == {"empty:answer": 1, "missing:question": 1}
