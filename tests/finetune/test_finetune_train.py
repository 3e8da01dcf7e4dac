"""Training the tiny config end to end on CPU: loss, outputs, reload, generation, determinism, the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from .conftest import FLACUNA_CONFIG, REPO, TINY_CONFIG, tiny_overrides

from finetune.commands import finetune_command, generate_command
from finetune.conversation import VICUNA_V1_1
from finetune.encode import encode_batch
from finetune.train import run, verify_adapter
from flan_mini.errors import FlanMiniError

KNOWN = [{"from": "human", "value": "Name the capital of Peru."}, {"from": "gpt", "value": "It is Lima."}]


def read_metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_loss_decreases(tiny_run):
    losses = [(e["step"], e["loss"]) for e in read_metrics(tiny_run.output_dir) if "loss" in e]
    steps = [s for s, _ in losses]
    assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == 30
    first, last = losses[0][1], losses[-1][1]
    assert last < first - 0.1, losses
    summary = tiny_run.summary
    assert summary["first_logged_loss"] == {"step": 1, "loss": first}
    assert summary["last_logged_loss"] == {"step": 30, "loss": last}
    assert summary["eval_loss"]["loss"] < first  # held-out rows improved too
    assert summary["steps"] == 30 and summary["seconds_per_step"]["median"] > 0


def test_outputs_form_a_complete_adapter_folder(tiny_run, built):
    out = tiny_run.output_dir
    for name in ("adapter_config.json", "adapter_model.safetensors", "conversation_format.json", "README.md",
                 "training_config.json", "train_summary.json", "tokenizer.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    assert not (out / ".final.partial").exists()
    summary = json.loads((out / "train_summary.json").read_text())
    trainable = summary["parameters"]["trainable"]
    assert summary["adapter_values"] == trainable == verify_adapter(out, trainable)
    import hashlib

    manifest_sha = hashlib.sha256((built / "manifest.json").read_bytes()).hexdigest()
    assert summary["dataset"]["manifest_sha256"] == manifest_sha
    outcomes = summary["data"]["outcomes"]
    assert sum(outcomes.values()) == 120 and outcomes.get("truncated_at_turn", 0) > 0  # reported, not hidden
    card = (out / "README.md").read_text()
    for fact in (manifest_sha, "vicuna_v1.1", VICUNA_V1_1.sha256(), str(tiny_run.tmp / "base"), '"r": 8',
                 '"alpha": 16.0', '"learning_rate": 0.02', '"max_length": 64', "truncated_at_turn",
                 "library_name: peft"):
        assert fact in card, fact
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_run.tmp / "base")


def test_the_saved_adapter_reloads_and_reproduces_the_logits(tiny_run):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tiny_run.output_dir
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = torch.tensor([encode_batch([KNOWN], tokenizer, VICUNA_V1_1, 64)["input_ids"][0].tolist()])
    trained = tiny_run.model.eval()
    with torch.no_grad():
        expected = trained(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(str(tiny_run.tmp / "base"))
        plain = base(input_ids=ids).logits
        reloaded = PeftModel.from_pretrained(base, str(out)).eval()
        got = reloaded(input_ids=ids).logits
    assert torch.equal(got, expected)
    assert not torch.allclose(plain, expected)  # the adapter does change the model


def test_the_tokenizer_saved_with_the_adapter_carries_the_format(tiny_run):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_run.output_dir))
    messages = [{"role": "user", "content": "Hi"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<s>" + VICUNA_V1_1.render_prompt([("user", "Hi")])


def test_generate_answers_in_the_recorded_format(tiny_run):
    result = CliRunner().invoke(
        generate_command, [str(tiny_run.output_dir), "Name the capital of Peru.", "--max-new-tokens", "6"]
    )
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(
        generate_command, [str(tiny_run.output_dir), "Name the capital of Peru.", "--max-new-tokens", "6"]
    )
    assert result.stdout == again.stdout  # greedy decoding is deterministic
    assert result.stdout.strip() and result.stdout.count("\n") == 1


def test_same_config_and_seed_give_the_same_adapter_bytes(tiny_run, built, tmp_path):
    overrides = tiny_overrides(tiny_run.tmp, built, **{"output.dir": str(tmp_path / "again")})
    second = run(TINY_CONFIG, overrides, log=lambda _: None)
    first_bytes = (tiny_run.output_dir / "adapter_model.safetensors").read_bytes()
    assert (second.output_dir / "adapter_model.safetensors").read_bytes() == first_bytes
    losses = [e.get("loss") for e in read_metrics(second.output_dir)]
    assert losses == [e.get("loss") for e in read_metrics(tiny_run.output_dir)]


def test_a_finished_run_is_not_overwritten_by_accident(tiny_run, built):
    with pytest.raises(FlanMiniError, match="already holds a finished run"):
        run(TINY_CONFIG, tiny_overrides(tiny_run.tmp, built), log=lambda _: None)


def test_an_empty_or_partial_adapter_fails_loudly(tmp_path):
    import torch
    from safetensors.torch import save_file

    with pytest.raises(FlanMiniError, match="were not written"):
        verify_adapter(tmp_path, 10)
    save_file({}, str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(FlanMiniError, match="holds no weights"):
        verify_adapter(tmp_path, 10)
    save_file({"a": torch.zeros(0, 8)}, str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(FlanMiniError, match="holds no weights"):
        verify_adapter(tmp_path, 10)
    save_file({"a": torch.ones(2, 3)}, str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(FlanMiniError, match="holds 6 values but the model has 10"):
        verify_adapter(tmp_path, 10)
    assert verify_adapter(tmp_path, 6) == 6


def test_dry_run_counts_the_flacuna_adapter():
    result = CliRunner().invoke(finetune_command, [str(FLACUNA_CONFIG), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "trainable     6,553,600 (0.0503%)" in result.output
    assert "parameters    13,022,417,920 total" in result.output
    assert "2 per device x 16 accumulation x 4 device(s) = 128" in result.output
    assert "(80 modules)" in result.output


def test_cli_trains_the_tiny_config_and_resumes(tmp_path, built):
    args = [
        str(TINY_CONFIG), "--dataset", str(built), "--output-dir", str(tmp_path / "out"),
        "--set", f"base_model.path={tmp_path / 'base'}", "--set", f"dataset.cache_dir={tmp_path / 'cache'}",
        "--set", "training.max_length=64", "--set", "training.max_steps=4", "--set", "training.save_steps=2",
    ]
    result = CliRunner().invoke(finetune_command, args)
    assert result.exit_code == 0, result.output
    assert "built a tiny random base model" in result.output and "done: 4 steps" in result.output
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    resumed = CliRunner().invoke(finetune_command, [*args[:-4], "--set", "training.max_steps=6", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["steps"] == 6
    # The resumed run appended to the same log (loss every 5 steps, and at step 1).
    assert [e["step"] for e in read_metrics(tmp_path / "out") if "loss" in e] == [1, 5]
    assert summary["first_logged_loss"]["step"] == 1 and summary["last_logged_loss"]["step"] == 5


def test_commands_import_no_heavy_library():
    code = (
        "import sys, finetune.commands, finetune.config, finetune.conversation\n"
        "print([m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_reports_user_errors_without_a_traceback(tmp_path):
    missing = tmp_path / "nope.yaml"
    out = subprocess.run([sys.executable, "-m", "finetune", "finetune", str(missing)], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip() == f"flan-mini: error: config has 1 problem:\n  {missing}: config file not found"


def test_batch_padding_never_reaches_the_loss():
    from finetune.train import PadCollator

    batch = PadCollator(pad_id=0)([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
        {"input_ids": [5], "labels": [-100]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [-100, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert np.all(batch["labels"].numpy()[batch["attention_mask"].numpy() == 0] == -100)


def test_unknown_lora_targets_fail_with_the_layers_that_exist():
    from finetune.config import load_config
    from finetune.model import dry_run

    config = load_config(TINY_CONFIG, {"lora.target_modules": ["qproj"]}, require_dataset=False)
    with pytest.raises(FlanMiniError, match=r"\['qproj'\] not found.*'q_proj'.*'v_proj'"):
        dry_run(config, TINY_CONFIG.parent)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"load_in_8bit": True}, "needs a CUDA GPU and the `bitsandbytes` package"),
        ({"precision": "fp16"}, "fp16 needs a CUDA GPU"),
    ],
)
def test_precisions_this_machine_cannot_run_are_refused_before_loading(tiny_run, settings, message):
    from finetune.config import BaseModelSection, Location
    from finetune.model import load_base_model

    section = BaseModelSection(path=str(tiny_run.tmp / "base"), **settings)
    with pytest.raises(FlanMiniError, match=message):
        load_base_model(section, Location(section.path, tiny_run.tmp), use_cpu=True)


def test_config_maps_onto_the_trainers_arguments(tmp_path):
    from finetune.config import load_config
    from finetune.train import _training_arguments

    flacuna = load_config(FLACUNA_CONFIG, {"training.use_cpu": True, "base_model.precision": "fp32"},
                          require_dataset=False)
    args = _training_arguments(flacuna, tmp_path, has_eval=True)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 16)
    assert (args.learning_rate, args.lr_scheduler_type.value, args.num_train_epochs, args.max_steps) == (
        2e-5, "cosine", 1, -1)
    assert args.get_warmup_steps(10_418) == 3000
    assert args.eval_strategy.value == "epoch" and (args.save_steps, args.save_total_limit) == (1000, 20)
    ratio = load_config(FLACUNA_CONFIG, {"training.warmup": {"ratio": 0.0001}, "training.use_cpu": True,
                                         "base_model.precision": "fp32"}, require_dataset=False)
    # The original script's ratio: 2 warm-up steps of the ~10.4K in one epoch at batch 128.
    assert _training_arguments(ratio, tmp_path, has_eval=True).get_warmup_steps(10_418) == 2
    tiny = load_config(TINY_CONFIG, {"training.eval_steps": 5}, require_dataset=False)
    args = _training_arguments(tiny, tmp_path, has_eval=True)
    assert (args.max_steps, args.eval_strategy.value, args.eval_steps, args.save_strategy.value) == (30, "steps", 5, "no")
    assert _training_arguments(tiny, tmp_path, has_eval=False).eval_strategy.value == "no"


def test_the_run_records_its_tokenizer(tiny_run):
    out = tiny_run.output_dir
    recorded = json.loads((out / "tokenization.json").read_text())
    assert recorded == tiny_run.summary["tokenizer"]
    assert (recorded["mode"], recorded["class"], recorded["source"]) == ("fast", "TokenizersBackend", str(tiny_run.tmp / "base"))
    assert any(line.startswith(f"tokenizer: {tiny_run.tmp / 'base'}, mode fast") for line in tiny_run.logs)
    assert f"| tokenizer | `{tiny_run.tmp / 'base'}`, mode `fast` (TokenizersBackend) |" in (out / "README.md").read_text()


def test_a_transformers_pipeline_on_the_adapter_folder_uses_its_chat_template(tiny_run):
    import transformers

    from finetune.encode import encode_prompt

    out = str(tiny_run.output_dir)
    pipe = transformers.pipeline("text-generation", model=out, tokenizer=out)
    assert pipe.tokenizer.chat_template == VICUNA_V1_1.chat_template()
    messages = [{"role": "user", "content": "Name the capital of Peru."}]
    ids = pipe.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert ids["input_ids"] == encode_prompt([("user", messages[0]["content"])], pipe.tokenizer, VICUNA_V1_1)
    answer = pipe(messages, max_new_tokens=4, do_sample=False)[0]["generated_text"]
    assert answer[:1] == messages and answer[1]["role"] == "assistant"
    with pytest.raises(Exception, match="unknown role"):
        pipe([{"role": "bot", "content": "Hi"}], max_new_tokens=2)


def test_generate_says_when_the_model_produces_no_text(tiny_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    # A base whose output layer is zero scores every token alike, so greedy decoding emits <unk> (id 0), which
    # decodes to nothing: an empty reply that must be reported, not printed as a blank line.
    base = AutoModelForCausalLM.from_pretrained(str(tiny_run.tmp / "base"))
    with torch.no_grad():
        base.lm_head.weight.zero_()
    base.save_pretrained(tmp_path / "silent")
    result = CliRunner().invoke(generate_command, [
        str(tiny_run.output_dir), "Hi", "--base", str(tmp_path / "silent"), "--max-new-tokens", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    message = "flan-mini: no reply text: the model generated 3 token(s) that decode to nothing visible"
    assert message in result.stderr.splitlines()


def test_it_learns_the_replies_through_the_mask(tmp_path, make_built):
    """A handful of rows, many passes: the loss on assistant tokens falls to at most half its first value, so
    gradients reach the LoRA weights through the label mask."""
    from .conftest import conversations

    built = make_built(tmp_path / "data", convs=conversations(8))
    result = run(TINY_CONFIG, tiny_overrides(tmp_path, built, **{
        "dataset.eval_share": 0.0, "training.learning_rate": 0.02, "training.max_steps": 40,
        "training.warmup": {"steps": 0}, "training.scheduler": "constant", "training.per_device_batch": 8,
        "training.gradient_accumulation": 1, "training.logging_steps": 5, "lora.dropout": 0.0,
    }), log=lambda _: None)
    losses = [e["loss"] for e in read_metrics(result.output_dir) if "loss" in e]
    assert result.summary["data"]["train"]["label_tokens"] < result.summary["data"]["train"]["tokens"] / 2
    assert losses[-1] <= losses[0] / 2, losses


def test_inspect_out_needs_inspect(tmp_path):
    result = CliRunner().invoke(finetune_command, [str(TINY_CONFIG), "--inspect-out", str(tmp_path / "t.jsonl")])
    assert result.exit_code == 2 and "--inspect-out" in result.output and "needs --inspect N" in result.output
    assert not (tmp_path / "t.jsonl").exists()
