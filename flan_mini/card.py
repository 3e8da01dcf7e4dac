"""The data card: README.md (Hub YAML header + Markdown body) and its figures, generated from a built folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from .card_header import CARD_DIR, _card_settings, _licence_of, _load_notes, _note_key, card_data
from .errors import FlanMiniError

TEMPLATE_FILE = "dataset_card.md.j2"
CARD_FILE = "README.md"
COMPOSITION_PNG = "composition.png"
LENGTHS_PNG = "lengths.png"
CARD_FILES = (CARD_FILE, COMPOSITION_PNG, LENGTHS_PNG)

DEFAULT_DESCRIPTION = (
    "An instruction-tuning mixture in the style of FLAN-MINI (Flacuna, arXiv 2307.02053): templated FLAN "
    "Collection tasks, code problems and chat data in one conversational format, built with flan-mini from a "
    "declarative recipe."
)


def _cell(value) -> str:
    """Make a value safe inside a Markdown table cell: no pipes or newlines break the row."""
    if value is None or value == "":
        return "–"
    return re.sub(r"\s*\n\s*", " ", str(value)).replace("|", "\\|")


def _size(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:,} {unit}" if unit == "B" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    return str(nbytes)


def _environment():
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(CARD_DIR)), undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
    )
    env.filters.update(
        cell=_cell,
        n=lambda v: "–" if v is None else f"{int(v):,}",
        f1=lambda v: "–" if v is None else f"{v:,.1f}",
        pct=lambda v: "–" if v is None else f"{100 * v:.1f}%",
        size=_size,
    )
    return env


def _check_counts(manifest: dict, stats) -> None:
    for source, counted in zip(manifest["sources"], stats.sources):
        if source.get("written") is not None and int(source["written"]) != counted.rows:
            raise FlanMiniError(
                f"manifest.json: sources[{source['name']}].written is {source['written']} but the shards hold "
                f"{counted.rows} rows with recipe_source={source['name']!r}; the folder is inconsistent, rebuild it."
            )


def _licence_rows(manifest: dict, notes: dict) -> list[dict]:
    licences: dict[str, list[str]] = {}
    for source in manifest["sources"]:
        licences.setdefault(_licence_of(source), []).append(source["name"])
    rows = []
    for lid, names in licences.items():
        known = notes["licences"].get(lid, {"name": lid, "note": "See the publisher's terms."})
        rows.append({"id": lid, "name": known["name"], "note": " ".join(known["note"].split()), "sources": names})
    return rows


def _limitations(manifest: dict, sources: list[dict], notes: dict, unit: str = "characters") -> list[str]:
    """Known gaps of this build, from its own numbers first, then from what its sources are."""
    found = []
    for s in sources:
        if s["shortfall"] and s["requested"] is not None:
            found.append(f"`{s['name']}` delivered {s['shortfall']:,} fewer rows than the recipe requested "
                         f"({s['written']:,} of {s['requested']:,}).")
    if not manifest.get("dedup"):
        found.append("No deduplication ran: repeated or near-identical examples may remain.")
    decontam = manifest.get("decontamination")
    if not decontam:
        found.append("No benchmark decontamination is recorded for this build: check overlap with your evaluation "
                     "sets (e.g. HumanEval, MBPP, MMLU) before reporting results.")
    else:
        checked = ", ".join(b["name"] for b in decontam.get("benchmarks") or [])
        found.append(f"Decontamination checked only {checked}, by word n-gram overlap: paraphrased or translated "
                     "benchmark items, and items too short to compare, are not found.")
    generated = [s["name"] for s in manifest["sources"]
                 if (key := _note_key(s, notes)) and notes["sources"][key].get("machine_generated")]
    if generated:
        found.append(f"Responses in {', '.join(f'`{n}`' for n in generated)} were written by language models "
                     "and may be wrong, biased or unsafe; nobody reviewed them for this build.")
    if any(s.get("adapter") == "flan" for s in manifest["sources"]):
        found.append("FLAN rows inherit the label noise and templates of the FLAN Collection; few-shot prompts "
                     "inline exemplars from the same task, so they are much longer than responses.")
    if unit == "characters":
        found.append("Lengths are counted in characters; token counts depend on the tokenizer you train with "
                     "(name one in the recipe's `card.tokenizer` to count tokens).")
    return found


def _dedup_summary(dedup: dict | None) -> dict | None:
    """The manifest's `dedup` block (written by flan_mini.dedup.report) in the terms a reader needs."""
    if not dedup:
        return None
    p = dedup.get("parameters") or {}
    shingle = p.get("shingle") or {}
    params = [
        ("threshold (Jaccard)", p.get("threshold")),
        ("MinHash permutations", p.get("num_perm")),
        ("LSH bands x rows", f"{p['bands']} x {p['rows']}" if p.get("bands") else None),
        ("shingles", f"{shingle['kind']} {shingle['size']}-grams" if shingle else None),
        ("text compared", p.get("compare")),
        ("scope", p.get("scope")),
        ("kept in a cluster", ("source priority " + ", ".join(p["keep"]) + ", then " if p.get("keep") else "") + "selection order"
         if "keep" in p else None),
    ]
    sizes = sorted((dedup.get("cluster_sizes") or {}).items(), key=lambda item: int(item[0]))
    return {
        "params": [(k, v) for k, v in params if v is not None],
        "totals": {k: dedup.get(k) for k in ("rows_in", "exact", "near", "kept", "clusters")},
        "cluster_sizes": ", ".join(f"{size} rows: {count:,}" for size, count in sizes) or None,
        "clusters_file": (dedup.get("clusters_file") or {}).get("path"),
        # How pairs were decided: builds before exact mode used the MinHash estimate; verify off accepts any pair.
        "mode": p.get("mode", "datasketch") if p.get("verify", True) else "unverified",
    }


def _context(manifest: dict, stats, repo_id: str | None, header: str) -> dict:
    """Everything the Jinja body shows, as plain values (formatting is left to the template's filters)."""
    notes = _load_notes()
    settings = _card_settings(manifest)
    created = manifest.get("created_by") or {}
    total_written = max(stats.rows, 1)
    sources = []
    for source, counted in zip(manifest["sources"], stats.sources):
        origin = source.get("origin") or {}
        if origin.get("repo_id"):
            where = f"[{origin['repo_id']}](https://huggingface.co/datasets/{origin['repo_id']})"
        elif origin.get("kind") == "url":
            where = f"`{_cell(origin.get('path'))}`"
        else:
            where = f"local: `{_cell(origin.get('path'))}`"
        removed = source.get("removed") or {}
        rejected = source.get("rejected") or {}
        requested = source.get("requested")
        sources.append({
            "name": source["name"], "adapter": source.get("adapter"), "label": source.get("label"),
            "origin": where, "revision": origin.get("revision"), "licence": _licence_of(source),
            "requested": requested, "written": counted.rows, "share": counted.rows / total_written,
            "shortfall": source.get("shortfall") or max((requested or 0) - counted.rows, 0),
            "rows_read": source.get("rows_read"), "rows_filtered": source.get("rows_filtered"),
            "rejected": ", ".join(f"{k}: {v:,}" for k, v in sorted(rejected.items())) or None,
            "usable": source.get("usable"), "selected": source.get("selected"),
            "dedup_exact": removed.get("dedup_exact", 0), "dedup_near": removed.get("dedup_near", 0),
        })
    templates = []
    for counted in stats.sources + [stats.total]:
        top = ", ".join(f"{k} ({v:,})" for k, v in list(counted.templates.items())[:3])
        templates.append({
            "name": counted.name, "distinct_sources": counted.distinct_sources, "count": len(counted.templates),
            "top": top or None, "zero_shot": counted.zero_shot, "few_shot": counted.few_shot,
            "zero_share": counted.zero_shot / max(counted.rows, 1), "few_share": counted.few_shot / max(counted.rows, 1),
            "untemplated": counted.untemplated, "mean_shots": counted.mean_shots,
            "types": ", ".join(f"{k}: {v:,}" for k, v in counted.template_types.items()) or None,
        })
    dedup = _dedup_summary(manifest.get("dedup"))
    from .decontam.report import card_context
    from .task_distribution import card_rows as task_distribution_rows
    messages = (manifest.get("output") or {}).get("format") == "messages"
    return {
        "card_data": header,
        "fmt": {"name": "messages", "prompt_role": "user", "response_role": "assistant"} if messages
        else {"name": "conversations", "prompt_role": "human", "response_role": "gpt"},
        "title": settings.get("pretty_name") or manifest["name"],
        "description": " ".join(
            str(settings.get("description") or manifest.get("description") or DEFAULT_DESCRIPTION).split()
        ),
        "rows": stats.rows, "split": manifest["output"]["split"],
        "shard_count": len(manifest["output"]["shards"]), "download_size": manifest["output"]["bytes"],
        "build": {
            "version": created.get("version", "?"), "python": created.get("python", "?"),
            "packages": ", ".join(f"{k} {v}" for k, v in (created.get("packages") or {}).items()) or None,
            "recipe_path": manifest["recipe"].get("path"), "recipe_sha256": manifest["recipe"].get("sha256"),
            "seed": manifest.get("seed"), "command": manifest.get("command") or "flan-mini build <recipe>",
        },
        "repo_id": repo_id,
        # LLaMA-Factory's dataset_info.json key in the card's snippet: the repo's (or build's) name as an identifier
        "dataset_key": re.sub(r"\W+", "_", (repo_id or manifest["name"]).split("/")[-1]).strip("_").lower() or "flan_mini",
        "sources": sources,
        "total": {
            "requested": sum(s["requested"] or 0 for s in sources), "written": stats.rows,
            "shortfall": sum(s["shortfall"] or 0 for s in sources),
        },
        "templates": templates,
        "task_distributions": task_distribution_rows(manifest),
        "dedup": dedup,
        "decontamination": card_context(manifest.get("decontamination")),
        "lengths": stats.sources + [stats.total],
        "mixed_licences": len({_licence_of(s) for s in manifest["sources"]}) > 1,
        "licences": _licence_rows(manifest, notes),
        "source_notes": [
            {"name": s["name"], "note": " ".join(notes["sources"][key]["note"].split())}
            for s in manifest["sources"] if (key := _note_key(s, notes))
        ],
        "limitations": _limitations(manifest, sources, notes, stats.unit),
        "length_unit": stats.unit, "tokenizer": settings.get("tokenizer"),
        "figures": {"composition": COMPOSITION_PNG, "lengths": LENGTHS_PNG},
    }


def render_card(manifest: dict, stats, *, repo_id: str | None = None) -> str:
    """README.md's text: the YAML header from DatasetCardData and the Jinja body from data_cards/."""
    from huggingface_hub import DatasetCard

    from .manifest import portable

    manifest = portable(manifest)  # the card is published: no path of the building machine in it
    header = card_data(manifest, stats, repo_id).to_yaml()
    text = _environment().get_template(TEMPLATE_FILE).render(**_context(manifest, stats, repo_id, header))
    text = re.sub(r"\n{3,}", "\n\n", text)  # conditionals leave blank runs; Markdown does not need them
    DatasetCard(text)  # parses the header back, so a malformed card fails here and not on the Hub
    return text


def write_card(folder: Path, *, repo_id: str | None = None, record_in: dict | None = None) -> Path:
    """Write README.md, composition.png and lengths.png into a built folder; return the README path.

    Reads manifest.json and streams the shards (one row group at a time) for the statistics. The folder must be
    consistent (manifest lists exactly the shards present, with matching sizes and sha256). The three files are
    written under temporary names and renamed together at the end, so a failure leaves the old card in place.
    `record_in`: the build's manifest (to be written again), which gets the statistics the card's text shows
    as `card_stats`, so that `push` can re-render the card without reading the shards.
    """
    from .manifest import check_folder
    from .plots import composition_chart, length_histogram

    folder = Path(folder)
    manifest, shards = check_folder(folder)
    names = [s["name"] for s in manifest["sources"]]
    stats = _stats(manifest, shards)
    text = render_card(manifest, stats, repo_id=repo_id)
    if record_in is not None:
        from .card_stats import stats_record

        record_in["card_stats"] = stats_record(stats)
    staged = {name: folder / f".{name}.tmp" for name in CARD_FILES}
    try:
        composition_chart(names, [s.get("requested") for s in manifest["sources"]],
                          [s.rows for s in stats.sources], staged[COMPOSITION_PNG])
        messages = manifest["output"].get("format") == "messages"
        length_histogram(names, stats.lengths, staged[LENGTHS_PNG],
                         role_names=("user", "assistant") if messages else ("human", "gpt"), unit=stats.unit)
        staged[CARD_FILE].write_text(text, encoding="utf-8", newline="\n")
        for name, temporary in staged.items():
            os.replace(temporary, folder / name)
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
    return folder / CARD_FILE


def _stats(manifest: dict, shards: list[Path]):
    """The shards' statistics, with lengths in tokens when the recipe's `card.tokenizer` names one."""
    from .card_stats import compute_stats

    tokenizer = _card_settings(manifest).get("tokenizer")
    counter = None
    if tokenizer:
        from .card_tokens import token_counter

        counter = token_counter(tokenizer)
    stats = compute_stats(shards, [s["name"] for s in manifest["sources"]], counter)
    _check_counts(manifest, stats)
    return stats


def _recorded_stats(manifest: dict):
    """The card statistics the build recorded in the manifest, or None (none recorded, or not readable)."""
    from .card_stats import stats_from_record

    record = manifest.get("card_stats")
    if not isinstance(record, dict):
        return None
    try:
        stats = stats_from_record(record)
    except (KeyError, TypeError, ValueError):  # a hand-edited or foreign record: the shards are the truth
        return None
    _check_counts(manifest, stats)
    return stats


def refresh_card(folder: Path, *, repo_id: str, manifest: dict | None = None) -> bool:
    """Re-render README.md for the repo it is about to be published to (figures do not depend on the repo).
    Returns whether the text changed; the folder must be consistent, as for ``write_card``. `manifest`: the
    folder's, already checked against its shards (``hub.verify_folder``), so they are not hashed again. The
    statistics are the ones the build recorded in the manifest (`card_stats`, the same text byte for byte);
    only a folder without them (an older build) has its shards read again."""
    from .manifest import check_folder

    folder = Path(folder)
    if manifest is None:
        manifest, shards = check_folder(folder)
    else:
        shards = [folder / shard["path"] for shard in manifest["output"]["shards"]]
    text = render_card(manifest, _recorded_stats(manifest) or _stats(manifest, shards), repo_id=repo_id)
    path = folder / CARD_FILE
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    staged = folder / f".{CARD_FILE}.tmp"
    staged.write_text(text, encoding="utf-8", newline="\n")
    os.replace(staged, path)
    return True


@click.command("card")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo-id", default=None, metavar="ORG/NAME", help="Hub id to show in the card's loading snippet.")
def card_command(folder: Path, repo_id: str | None) -> None:
    """Write the data card (README.md) and its figures for a built dataset FOLDER."""
    if repo_id is not None:
        from .publish_config import check_repo_id

        check_repo_id(repo_id)
    path = write_card(folder, repo_id=repo_id)
    click.echo(f"wrote {path} ({COMPOSITION_PNG}, {LENGTHS_PNG})")
