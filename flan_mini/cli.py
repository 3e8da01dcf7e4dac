"""The `flan-mini` command line: parse, call one library function, print, exit code.

Library modules are imported inside the commands, so `flan-mini --help` stays fast and never
imports torch, transformers, peft or datasets.
"""

from __future__ import annotations

import os
import re
import sys

import click

from . import __version__
from .errors import FlanMiniError
from .executor_options import executor_options, open_executor


# Exit statuses, the same for every command: 0 success, 1 an error (a message, no traceback), 2 a usage error
# (click's), 3 `decontaminate --fail-on-match` found matches, 130 interrupted by Ctrl-C (128 + SIGINT).
EXIT_ERROR, EXIT_USAGE, EXIT_MATCHES, EXIT_INTERRUPTED = 1, 2, 3, 130


class _Group(click.Group):
    """Prints FlanMiniError as `flan-mini: error: ...` (no traceback) and exits 1; Ctrl-C exits 130; other errors
    are bugs and keep their traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FlanMiniError as exc:
            click.echo(f"flan-mini: error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        except (KeyboardInterrupt, click.Abort):
            click.echo("\nflan-mini: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Exit status: 0 ok, 1 error, 2 usage error, 3 decontaminate --fail-on-match found matches, "
                    "130 interrupted.")
@click.version_option(__version__, prog_name="flan-mini")
def main() -> None:
    """Build FLAN-MINI-style instruction-tuning datasets from declarative recipes.

    \b
    Start with:
      flan-mini build recipes/sample.yaml --out build/sample
    """


def _format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), *(line(r) for r in rows)])


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--check-hub", is_flag=True, help="Also resolve Hub and URL sources (needs the Hub or a populated HF cache; URLs need their store).")
def validate(recipe: str, check_hub: bool) -> None:
    """Check RECIPE without reading data: structure, paths, globs, templates. Prints the resolved plan."""
    from .plan import describe_plan, make_plan
    from .recipe import load_recipe

    plan = make_plan(load_recipe(recipe), resolve_hub_sources=check_hub)
    click.echo("\n".join(describe_plan(plan)))
    click.echo(f"\n{recipe}: ok")


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), help="Output folder.", show_default="the recipe's output.folder")
@click.option("--seed", type=click.IntRange(min=0), help="Override the recipe's seed.")
@click.option("--dry-run", is_flag=True, help="Print the resolved plan without reading data or writing anything.")
@click.option("-q", "--quiet", is_flag=True, help="Only print errors and the output folder.")
@click.option("--no-push", is_flag=True, help="Do not push to the Hub even if the recipe has a publish: section.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              show_default="the machine's cores",
              help="Width of every parallel stage (dedup processes, decontamination threads). The output does not depend on it.")
@executor_options
def build(recipe: str, out: str | None, seed: int | None, dry_run: bool, quiet: bool, no_push: bool, workers: int | None,
          executor_name: str, ray_address: str | None) -> None:
    """Build the dataset RECIPE describes: Parquet shards in the Hub's layout plus manifest.json."""
    from .pipeline import build as run_build
    from .progress import Reporter
    from .plan import describe_plan, make_plan
    from .recipe import load_recipe

    plan = make_plan(load_recipe(recipe), out=out, seed=seed, resolve_hub_sources=not dry_run)
    if dry_run:
        click.echo("\n".join(describe_plan(plan)))
        click.echo("\ndry run: nothing read, nothing written")
        return
    reporter = Reporter.for_stream(sys.stderr, quiet=quiet)
    reporter.expect_sources({source.config.name: source.config.n for source in plan.sources})
    with open_executor(executor_name, ray_address, workers) as executor:
        result = run_build(
            plan,
            reporter=reporter,
            push=not no_push,
            workers=workers or os.cpu_count() or 1,
            executor=executor,
        )
    manifest = result.manifest
    if not quiet:
        from .rejects import POLICY

        def split(rejected: dict) -> tuple[dict, dict]:
            policy = {k[len(POLICY):]: v for k, v in rejected.items() if k.startswith(POLICY)}
            return {k: v for k, v in rejected.items() if not k.startswith(POLICY)}, policy

        rows = []
        for s in manifest["sources"]:
            bad, policy = split(s["rejected"])
            rows.append([s["name"], f"{s['requested']:,}", f"{s['rows_read']:,}", f"{s['rows_filtered'] + sum(policy.values()):,}",
                         f"{sum(bad.values()):,}", f"{sum(s['removed'].values()):,}", f"{s['written']:,}"])
        total = manifest["output"]["rows"]
        rows.append(["total", f"{sum(s['requested'] for s in manifest['sources']):,}", "", "", "", "", f"{total:,}"])
        click.echo(_format_table(rows, ["source", "requested", "read", "filtered", "malformed", "removed", "written"]))
        for s in manifest["sources"]:
            bad, policy = split(s["rejected"])
            if bad:
                click.echo(f"{s['name']}: malformed rows skipped: {', '.join(f'{k} {v:,}' for k, v in bad.items())} (examples in manifest.json)")
            if policy:
                click.echo(f"{s['name']}: filtered by the adapter's cleaning: {', '.join(f'{k} {v:,}' for k, v in policy.items())}")
            if s["shortfall"]:
                click.echo(f"{s['name']}: short by {s['shortfall']:,} rows (accept_shortfall is set)")
        shards = manifest["output"]["shards"]
        click.echo(
            f"wrote {total:,} rows in {len(shards)} shard{'s' if len(shards) != 1 else ''} "
            f"({manifest['output']['bytes'] / 1e6:,.1f} MB) in {manifest['stages']['total']:.1f}s"
        )
    if result.push is not None:
        click.echo(result.push.summary())
    if not quiet:
        from .progress import next_steps

        click.echo(next_steps(result.out_dir, manifest, result.push.repo_id if result.push else None))
    click.echo(str(result.out_dir))


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--source", "source_name", required=True, help="The recipe source to preview (its `name`).")
@click.option("-n", "count", type=click.IntRange(min=1), default=3, show_default=True, help="How many examples.")
@click.option("--seed", type=click.IntRange(min=0), help="Override the recipe's seed.")
@click.option("--mode", type=click.Choice(["zs", "fs"]), show_default="the recipe's share", help="Force zero-shot or few-shot.")
@click.option("--task", help="Only rows of this task (e.g. code_to_docstring).")
@click.option("--template", help="Render with this template or few-shot pattern id only.")
def preview(recipe: str, source_name: str, count: int, seed: int | None, mode: str | None, task: str | None, template: str | None) -> None:
    """Render a few examples of one source of RECIPE, turn by turn, with their template ids. Writes nothing."""
    from .preview import format_examples
    from .preview import preview as run_preview
    from .recipe import load_recipe

    examples = run_preview(load_recipe(recipe), source_name, count, seed=seed, mode=mode, task=task, template=template)
    click.echo(format_examples(examples), nl=False)


def _register_feature_commands() -> None:
    """Commands defined next to their feature (they import only click at module level)."""
    from finetune.commands import finetune_command, generate_command

    from .card import card_command
    from .decontam.command import decontaminate_command
    from .dedup.command import dedup_command
    from .hub import push_command

    for command in (card_command, push_command, dedup_command, decontaminate_command, finetune_command, generate_command):
        main.add_command(command)


# One example per command, shown at the end of its --help.
EXAMPLES = {
    "validate": "flan-mini validate recipes/sample.yaml",
    "build": "flan-mini build recipes/sample.yaml --out build/sample",
    "preview": "flan-mini preview recipes/sample.yaml --source flan2021 -n 2 --mode fs",
    "card": "flan-mini card build/sample --repo-id my-org/flan-mini-sample",
    "push": "flan-mini push build/sample --repo-id my-org/flan-mini-sample --private",
    "dedup": "flan-mini dedup build/sample build/sample-dedup --threshold 0.8",
    "decontaminate": "flan-mini decontaminate build/sample --benchmark humaneval --fail-on-match",
    "finetune": "flan-mini finetune finetune/configs/flacuna-13b.yaml --dataset build/sample --dry-run",
    "generate": "flan-mini generate runs/adapter \"Summarise: the cat sat on the mat.\"",
}
# Defaults written into help texts ("(default: X)", "Default X.", "; default: X"), moved to click's one form.
_DEFAULT_IN_HELP = re.compile(r"\s*(?:\(default:?\s+([^)]*)\)|;?\s*\b[Dd]efault:?\s+([^;]+?)\.?\s*$)")


class _Option(click.Option):
    """An option whose default is described in words shows it as `[default: the machine's cores]`, the way click
    shows literal defaults, rather than click's `[default: (the machine's cores)]`."""

    def get_help_extra(self, ctx):
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str) and "default" in extra:
            extra["default"] = self.show_default
        return extra


def _conventions(command: click.Command) -> None:
    """Every command's help ends with an example, and shows each option's default one way: `[default: X]`."""
    if command.name in EXAMPLES:
        command.epilog = f"\b\nExample:\n  {EXAMPLES[command.name]}"
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        param.__class__ = _Option if type(param) is click.Option else param.__class__
        match = _DEFAULT_IN_HELP.search(param.help or "")
        if match:
            param.help = (param.help[:match.start()] + param.help[match.end():]).strip() or None
            if param.help and not param.help.endswith("."):
                param.help += "."
            param.show_default = (match.group(1) or match.group(2)).strip()
        elif param.default not in (None, False, ()) and not param.show_default and not param.multiple:
            param.show_default = True


_register_feature_commands()
for _command in main.commands.values():
    _conventions(_command)


if __name__ == "__main__":
    main()
