"""The data card: README.md (Hub YAML header + Markdown body) and its figures, generated from a built folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
import pyarrow as pa
import yaml

from .errors import FlanMiniError
from .paths import data_folder

CARD_DIR = data_folder("data_cards")
TEMPLATE_FILE = "dataset_card.md.j2"
NOTES_FILE = "licences.yaml"
CARD_FILE = "README.md"
COMPOSITION_PNG = "composition.png"
LENGTHS_PNG = "lengths.png"
CARD_FILES = (CARD_FILE, COMPOSITION_PNG, LENGTHS_PNG)

# The Hub's size buckets (huggingface_hub.DatasetCardData's documented values), as (upper bound, label).
SIZE_CATEGORIES = [
    (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T"),
]
MIXED_LICENCE_NAME = "per-source-licences"  # the Hub wants license_name in [a-z0-9-.] with `license: other`
DEFAULT_DESCRIPTION = (
    "An instruction-tuning mixture in the style of FLAN-MINI (Flacuna, arXiv 2307.02053): templated FLAN "
    "Collection tasks, code problems and chat data in one conversational format, built with flan-mini from a "
    "declarative recipe."
)


def size_category(rows: int) -> str:
    for bound, label in SIZE_CATEGORIES:
        if rows < bound:
            return label
    return "n>1T"


_PRIMITIVES = {
    pa.string(): "string", pa.large_string(): "large_string", pa.bool_(): "bool",
    pa.int8(): "int8", pa.int16(): "int16", pa.int32(): "int32", pa.int64(): "int64",
    pa.uint8(): "uint8", pa.uint16(): "uint16", pa.uint32(): "uint32", pa.uint64(): "uint64",
    pa.float16(): "float16", pa.float32(): "float32", pa.float64(): "float64",
}


def _feature(name: str | None, arrow_type: pa.DataType) -> dict:
    """One entry of `dataset_info.features` in the YAML form `datasets` parses (``Features._from_yaml_list``).

    e.g. list<struct<from: string, value: string>> ->
         {"name": "conversations", "list": [{"name": "from", "dtype": "string"}, {"name": "value", ...}]}
    The old FLAN-MINI card wrote ``dtype: list`` here, which `datasets` cannot parse.
    """
    entry = {"name": name} if name is not None else {}
    if arrow_type in _PRIMITIVES:
        return {**entry, "dtype": _PRIMITIVES[arrow_type]}
    if pa.types.is_struct(arrow_type):
        return {**entry, "struct": [_feature(f.name, f.type) for f in arrow_type]}
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        inner = _feature(None, arrow_type.value_type)
        # A list of structs is written as the struct's field list; a list of a primitive as its dtype.
        return {**entry, "list": inner.get("struct", inner.get("dtype", inner))}
    raise FlanMiniError(f"column {name!r}: Arrow type {arrow_type} has no data-card feature mapping")


def features_yaml(schema: pa.Schema) -> list[dict]:
    return [_feature(field.name, field.type) for field in schema]


def _load_notes() -> dict:
    with open(CARD_DIR / NOTES_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _card_settings(manifest: dict) -> dict:
    """Optional `card:` section of the resolved recipe (pretty_name, description, language, tags).

    The description falls back to the manifest's top-level `description` (the recipe's), then to a default.
    """
    resolved = (manifest.get("recipe") or {}).get("resolved") or {}
    return resolved.get("card") or {}


def _licence_of(source: dict) -> str:
    return (source.get("license") or "unknown").strip().lower()


def licence_metadata(sources: list[dict]) -> dict:
    """YAML licence keys: the one shared id, or `other` + license_name/license_details when the parts differ.

    e.g. [apache-2.0, cc-by-nc-4.0] -> {"license": "other", "license_name": "per-source-licences",
         "license_details": "Each row keeps its source's licence: flan2021: apache-2.0; alpaca: cc-by-nc-4.0."}
    """
    ids = [_licence_of(s) for s in sources]
    if len(set(ids)) == 1 and ids[0] != "other":
        return {"license": ids[0]}
    details = "; ".join(f"{s['name']}: {lid}" for s, lid in zip(sources, ids))
    return {
        "license": "other",
        "license_name": MIXED_LICENCE_NAME,
        "license_details": f"Each row keeps the licence of its source (recipe_source column): {details}. "
        "See the card's Licences section.",
    }


def _note_key(source: dict, notes: dict) -> str | None:
    for key in (source.get("label"), source.get("adapter"), source.get("name")):
        if key and key in notes["sources"]:
            return key
    return None


def card_data(manifest: dict, stats):
    """The YAML header as a ``huggingface_hub.DatasetCardData``; features come from the shards' own schema."""
    from huggingface_hub import DatasetCardData

    settings = _card_settings(manifest)
    notes = _load_notes()
    sources = manifest["sources"]
    split = manifest["output"]["split"]
    language = settings.get("language") or ["en"]
    languages = [language] if isinstance(language, str) else list(language)
    for source in sources:
        key = _note_key(source, notes)
        for extra in (notes["sources"][key].get("languages", []) if key else []):
            if extra not in languages:
                languages.append(extra)
    origins = [s["origin"]["repo_id"] for s in sources if (s.get("origin") or {}).get("repo_id")]
    tags = ["instruction-tuning", "flan", "flan-mini"] + [t for t in settings.get("tags", []) if t]
    return DatasetCardData(
        pretty_name=settings.get("pretty_name") or manifest["name"],
        language=languages,
        **licence_metadata(sources),
        task_categories=["text-generation"],
        size_categories=[size_category(stats.rows)],
        # "extended|<id>" is the Hub's convention for a dataset derived from another Hub dataset.
        source_datasets=[f"extended|{r}" for r in dict.fromkeys(origins)] or None,
        tags=list(dict.fromkeys(tags)),
        configs=[{"config_name": "default", "data_files": [{"split": split, "path": f"data/{split}-*"}]}],
        dataset_info={
            "features": features_yaml(stats.schema),
            "splits": [{"name": split, "num_bytes": stats.num_bytes, "num_examples": stats.rows}],
            "download_size": manifest["output"]["bytes"],
            "dataset_size": stats.num_bytes,
        },
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


def _limitations(manifest: dict, sources: list[dict], notes: dict) -> list[str]:
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
    found.append("Lengths are counted in characters; token counts depend on the tokenizer you train with.")
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
    return {
        "card_data": header,
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
        "sources": sources,
        "total": {
            "requested": sum(s["requested"] or 0 for s in sources), "written": stats.rows,
            "shortfall": sum(s["shortfall"] or 0 for s in sources),
        },
        "templates": templates,
        "dedup": dedup,
        "decontamination": card_context(manifest.get("decontamination")),
        "lengths": stats.sources + [stats.total],
        "mixed_licences": len({_licence_of(s) for s in manifest["sources"]}) > 1,
        "licences": _licence_rows(manifest, notes),
        "source_notes": [
            {"name": s["name"], "note": " ".join(notes["sources"][key]["note"].split())}
            for s in manifest["sources"] if (key := _note_key(s, notes))
        ],
        "limitations": _limitations(manifest, sources, notes),
        "figures": {"composition": COMPOSITION_PNG, "lengths": LENGTHS_PNG},
    }


def render_card(manifest: dict, stats, *, repo_id: str | None = None) -> str:
    """README.md's text: the YAML header from DatasetCardData and the Jinja body from data_cards/."""
    from huggingface_hub import DatasetCard

    header = card_data(manifest, stats).to_yaml()
    text = _environment().get_template(TEMPLATE_FILE).render(**_context(manifest, stats, repo_id, header))
    text = re.sub(r"\n{3,}", "\n\n", text)  # conditionals leave blank runs; Markdown does not need them
    DatasetCard(text)  # parses the header back, so a malformed card fails here and not on the Hub
    return text


def write_card(folder: Path, *, repo_id: str | None = None) -> Path:
    """Write README.md, composition.png and lengths.png into a built folder; return the README path.

    Reads manifest.json and streams the shards (one row group at a time) for the statistics. The folder must be
    consistent (manifest lists exactly the shards present, with matching sizes and sha256). The three files are
    written under temporary names and renamed together at the end, so a failure leaves the old card in place.
    """
    from .card_stats import compute_stats
    from .manifest import check_folder
    from .plots import composition_chart, length_histogram

    folder = Path(folder)
    manifest, shards = check_folder(folder)
    names = [s["name"] for s in manifest["sources"]]
    stats = compute_stats(shards, names)
    _check_counts(manifest, stats)
    text = render_card(manifest, stats, repo_id=repo_id)
    staged = {name: folder / f".{name}.tmp" for name in CARD_FILES}
    try:
        composition_chart(names, [s.get("requested") for s in manifest["sources"]],
                          [s.rows for s in stats.sources], staged[COMPOSITION_PNG])
        length_histogram(names, stats.lengths, staged[LENGTHS_PNG])
        staged[CARD_FILE].write_text(text, encoding="utf-8", newline="\n")
        for name, temporary in staged.items():
            os.replace(temporary, folder / name)
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
    return folder / CARD_FILE


@click.command("card")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo-id", default=None, metavar="ORG/NAME", help="Hub id to show in the card's loading snippet.")
def card_command(folder: Path, repo_id: str | None) -> None:
    """Write the data card (README.md) and its figures for a built dataset FOLDER."""
    path = write_card(folder, repo_id=repo_id)
    click.echo(f"wrote {path} ({COMPOSITION_PNG}, {LENGTHS_PNG})")
