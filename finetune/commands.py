"""Click commands ``finetune`` and ``generate``; torch, transformers and peft load only inside their bodies."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flan_mini.errors import FlanMiniError


def _absolute_if_local(value: str) -> str:
    """Command-line paths are relative to the working directory (config-file paths are relative to the file)."""
    from .config import Location

    where = Location(value, Path.cwd())
    return str(where.path) if where.is_local else value  # a Hub id stays as it is


TRAINING_PACKAGES = ("torch", "transformers", "peft", "accelerate")


def require_training_packages() -> None:
    """Fail with what to install, instead of an ImportError deep inside, when the `train` extra is missing."""
    import importlib.util

    missing = [name for name in TRAINING_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise FlanMiniError(
            f"training needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed. Install "
            "torch first (the CPU or CUDA build you want, e.g. `pip install torch==2.13.0`), then `pip install -e '.[train]'`."
        )


def _parse_set(values: tuple[str, ...]) -> dict:
    import yaml

    overrides = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE (e.g. training.max_steps=5), got {item!r}", param_hint="--set")
        overrides[key.strip()] = yaml.safe_load(raw)
    return overrides


@click.command("finetune")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Build the model on the meta device (no weights) and print parameter counts.")
@click.option("--dataset", help="Override dataset.path: a built folder (relative to the working directory) or a Hub id.")
@click.option("--output-dir", help="Override output.dir (relative to the working directory).")
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE",
    help="Override any config value, e.g. --set training.max_steps=5 (paths as in the file: relative to it).",
)
@click.option("--overwrite", is_flag=True, help="Replace a finished run in the output folder.")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in the output folder.")
@click.option(
    "--inspect", "inspect_rows", type=click.IntRange(1), metavar="N",
    help="Encode the first N training rows exactly as training will, print them with the trained tokens marked "
    "⟦like this⟧, and exit (loads the tokenizer only).",
)
@click.option(
    "--inspect-out", type=click.Path(dir_okay=False, path_type=Path),
    help='With --inspect: also write the rows as JSON Lines {"id", "input_ids", "labels"} (labels -100: not trained).',
)
def finetune_command(config, dry_run, dataset, output_dir, settings, overwrite, resume, inspect_rows, inspect_out):
    """Train a LoRA adapter on a built dataset, as described by CONFIG (YAML).

    The shipped configs are finetune/configs/flacuna-13b.yaml (the paper's run) and tiny-cpu.yaml (an offline
    smoke run on a tiny random model). Multi-GPU: torchrun --nproc_per_node N -m finetune finetune CONFIG.
    """
    require_training_packages()
    from .config import load_config

    overrides = _parse_set(settings)
    if dataset:
        overrides["dataset.path"] = _absolute_if_local(dataset)
    if output_dir:
        overrides["output.dir"] = str(Path(output_dir).expanduser().resolve())
    if inspect_out and not inspect_rows:
        raise click.BadParameter("needs --inspect N", param_hint="--inspect-out")
    if inspect_rows:
        from .inspection import inspect_rows as encode_rows, show_row, write_jsonl

        tokenizer, rows = encode_rows(config, overrides, inspect_rows, log=click.echo)
        click.echo(tokenizer.summary_line())
        for row in rows:
            click.echo(show_row(tokenizer, row))
        if inspect_out:
            write_jsonl(rows, inspect_out)
            click.echo(f"wrote {len(rows)} rows to {inspect_out}")
        return
    if dry_run:
        from .model import dry_run as run_dry

        parsed = load_config(config, overrides, require_dataset=False)
        report = run_dry(parsed, config.parent)
        click.echo(f"{config}: dry run, no weights loaded")
        for line in report.lines:
            click.echo(f"  {line}")
        return
    from .train import run

    result = run(config, overrides, overwrite=overwrite, resume=resume, log=click.echo)
    summary = result.summary
    if summary:
        first, last = summary["first_logged_loss"], summary["last_logged_loss"]
        click.echo(
            f"done: {summary['steps']} steps, loss {first['loss']:.4f} (step {first['step']}) -> "
            f"{last['loss']:.4f} (step {last['step']}), {summary['seconds_per_step']['median']:.4f} s/step"
        )


@click.command("generate")
@click.argument("adapter", type=click.Path(file_okay=False, path_type=Path))
@click.argument("prompt")
@click.option("--base", help="Base model (Hub id or folder); default: the one recorded with the adapter.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--temperature", type=click.FloatRange(0.0), default=0.0, show_default=True, help="0 decodes greedily.")
@click.option("--top-k", type=click.IntRange(0), default=0, show_default=True, help="0 disables top-k when sampling.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda:0")
def generate_command(adapter, prompt, base, max_new_tokens, temperature, top_k, seed, device):
    """Answer PROMPT with the base model plus ADAPTER, in the conversation format recorded with the adapter."""
    require_training_packages()
    from .generate import generate, load_adapter

    loaded = load_adapter(adapter, base=base, device=device)
    reply = generate(loaded, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)
    # An empty reply is said on stderr, so stdout stays exactly the reply for scripts.
    if reply.text:
        click.echo(reply.text)
    else:
        click.echo(f"flan-mini: {reply.shown()}", err=True)


@click.group()
def cli():
    """flan-mini's reference LoRA trainer (the same commands as `flan-mini finetune` and `flan-mini generate`)."""


cli.add_command(finetune_command)
cli.add_command(generate_command)


def main(argv: list[str] | None = None) -> None:
    """Run the group, printing user-facing errors without a traceback (as the flan-mini CLI does)."""
    try:
        cli.main(args=argv, prog_name="python -m finetune", standalone_mode=False)
    except FlanMiniError as exc:
        click.echo(f"flan-mini: error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
