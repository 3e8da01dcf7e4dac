"""The `flan-mini dedup IN OUT` click command: options to a DedupConfig, one call, a per-source table."""

from __future__ import annotations

from pathlib import Path

import click

from ..config_base import workers_option_help
from ..executor_options import executor_options, open_executor


def _mapping(value) -> dict:
    """A file's sub-section that an option adds to (anything but a mapping is replaced, and the option's value checked)."""
    return value if isinstance(value, dict) else {}


@click.command("dedup")
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file with the dedup settings (a recipe's dedup: section, or the recipe itself).")
@click.option("--threshold", type=float, help="Jaccard threshold in (0, 1). Default 0.8.")
@click.option("--num-perm", type=int, help="MinHash permutations. Default 128.")
@click.option("--mode", type=click.Choice(["exact", "datasketch"]),
              help="exact: recall-tuned bands, pairs decided on the exact Jaccard of the shingle sets; "
              "datasketch: datasketch's MinHashLSH semantics (estimated Jaccard). Default: exact.")
@click.option("--bands", type=int, help="LSH bands (with --rows; bands x rows = num-perm).")
@click.option("--rows", type=int, help="LSH rows per band (with --bands).")
@click.option("--column", "columns", multiple=True,
              help="Text column(s) to compare, joined by newlines. Default: the conversations column.")
@click.option("--compare", type=click.Choice(["conversation", "prompt", "response"]),
              help="Which conversation turns are compared. Default: conversation.")
@click.option("--shingle", type=click.Choice(["word", "char"]), help="Shingle kind. Default: word.")
@click.option("--ngram", type=int, help="Shingle size in words or characters. Default 5.")
@click.option("--code", is_flag=True, default=None, help="Code-aware normalisation (comments removed, operators kept).")
@click.option("--scope", type=click.Choice(["global", "source"]), help="Across all rows, or within each recipe_source.")
@click.option("--keep", "keep", multiple=True, help="recipe_source names in keep priority order (repeatable).")
@click.option("--workers", type=int, help=workers_option_help("dedup"))
@click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists.")
@executor_options
def dedup_command(in_dir, out_dir, config_path, threshold, num_perm, mode, bands, rows, columns, compare, shingle, ngram,
                  code, scope, keep, workers, overwrite, executor_name, ray_address):
    """Remove exact and near duplicates (MinHash LSH) from the Parquet shards in IN_DIR.

    Writes the kept rows to OUT_DIR/data/{split}-*.parquet (same columns), the clusters to
    OUT_DIR/reports/dedup_clusters.parquet and the counts to OUT_DIR/dedup_report.json.
    """
    from ..config_base import Where, section_from_file
    from .config import dedup_config
    from .folder import dedup_folder

    section, located, prefix = section_from_file(config_path, "dedup") if config_path else ({}, None, ("dedup",))
    overrides = {"threshold": threshold, "num_perm": num_perm, "mode": mode, "bands": bands, "rows": rows, "compare": compare,
                 "scope": scope, "workers": workers}
    given = [(k,) for k, v in overrides.items() if v is not None]
    section.update({k: v for k, v in overrides.items() if v is not None})
    if keep:
        section["keep"] = list(keep)
        given.append(("keep",))
    if shingle or ngram:
        section["shingle"] = {**_mapping(section.get("shingle")), **({"kind": shingle} if shingle else {}),
                              **({"size": ngram} if ngram else {})}
        given += [("shingle", "kind")] * bool(shingle) + [("shingle", "size")] * bool(ngram)
    if code:
        section["normalize"] = {**_mapping(section.get("normalize")), "mode": "code"}
        given.append(("normalize", "mode"))
    # Problems name the file's line, or the command line for a value an option set.
    where = Where(located, command_line=[(*prefix, *key) for key in given], file=config_path)
    config = dedup_config(section, where, prefix)
    with open_executor(executor_name, ray_address, workers) as executor:
        on = {"executor": executor} if executor is not None else {}  # local: dedup's own forked processes
        report = dedup_folder(in_dir, out_dir, config, columns=list(columns) or None, overwrite=overwrite, **on)
    for split, entry in report["splits"].items():
        click.echo(format_stats(entry["stats"], title=f"{split}: {entry['rows_in']:,} rows in, {entry['rows_out']:,} kept"))
    click.echo(f"wrote {out_dir}/data/, {out_dir}/{report['clusters']['path']} ({report['clusters']['rows']:,} rows), "
               f"{out_dir}/dedup_report.json in {report['seconds']:.1f} s")


def format_stats(stats: dict, title: str = "") -> str:
    """A short per-source table of a dedup stats dict (also used by the build's summary)."""
    params = stats["parameters"]
    lines = [title] if title else []
    lines.append(
        f"threshold {params['threshold']} ({params.get('mode', 'exact')} mode), {params['num_perm']} permutations"
        f" = {params['bands']} bands x {params['rows']} rows, {params['shingle']['kind']} {params['shingle']['size']}-grams, "
        f"compare {params['compare']}, scope {params['scope']}"
    )
    width = max([len("source"), len("total"), *(len(name) for name in stats["sources"])])
    lines.append(f"  {'source':<{width}}  {'rows in':>10}  {'exact':>8}  {'near':>8}  {'kept':>10}")
    rows = list(stats["sources"].items()) + [("total", stats)]
    for name, counts in rows:
        lines.append(
            f"  {name:<{width}}  {counts['rows_in']:>10,}  {counts['exact']:>8,}  {counts['near']:>8,}  {counts['kept']:>10,}"
        )
    sizes = ", ".join(f"{count:,} of size {size}" for size, count in stats["cluster_sizes"].items())
    lines.append(f"  clusters: {stats['clusters']:,}" + (f" (sizes: {sizes})" if sizes else ""))
    skipped = [f"{stats[k]:,} {k.replace('_', ' ')}" for k in ("skipped_empty", "truncated", "invalid_utf8") if stats[k]]
    if skipped:
        lines.append("  " + ", ".join(skipped))
    return "\n".join(lines)
