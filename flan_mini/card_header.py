"""The data card's YAML header (huggingface_hub's DatasetCardData): features, licence ids, size, configs."""

from __future__ import annotations

import yaml

from .errors import FlanMiniError
from .paths import data_folder

CARD_DIR = data_folder("data_cards")
NOTES_FILE = "licences.yaml"
# The Hub's size buckets (huggingface_hub.DatasetCardData's documented values), as (upper bound, label).
SIZE_CATEGORIES = [
    (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T"),
]
MIXED_LICENCE_NAME = "per-source-licences"  # the Hub wants license_name in [a-z0-9-.] with `license: other`


def size_category(rows: int) -> str:
    for bound, label in SIZE_CATEGORIES:
        if rows < bound:
            return label
    return "n>1T"


def features_yaml(schema) -> list[dict]:
    """`dataset_info.features` for an Arrow schema, as `datasets` itself writes it (``Features._to_yaml_list``),
    so the card's features are by construction what `datasets` reads from the shards.

    e.g. list<struct<from: string, value: string>> ->
         {"name": "conversations", "list": [{"name": "from", "dtype": "string"}, {"name": "value", ...}]}
    The old FLAN-MINI card wrote ``dtype: list`` here, which `datasets` cannot parse.
    """
    from datasets import Features

    try:
        return Features.from_arrow_schema(schema)._to_yaml_list()
    except (ValueError, TypeError, NotImplementedError) as err:
        raise FlanMiniError(f"the shards' schema has no data-card feature mapping: {err}") from None


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


def licence_metadata(sources: list[dict], repo_id: str | None = None) -> dict:
    """YAML licence keys the Hub's licence filter reads: the list of the sources' licence ids, plus `other` with
    `license_name` and `license_link` when a source's terms have no standard id.

    e.g. [apache-2.0, cc-by-nc-4.0]     -> {"license": ["apache-2.0", "cc-by-nc-4.0"]}
         [apache-2.0, other (sharegpt)] -> {"license": ["apache-2.0", "other"], "license_name": "per-source-licences",
                                            "license_link": "https://huggingface.co/datasets/<repo>#licences"}
    """
    known = set(_load_notes()["licences"]) - {"other", "unknown"}
    ids = list(dict.fromkeys(_licence_of(s) for s in sources))
    standard = [lid for lid in ids if lid in known]
    if len(standard) == len(ids):
        return {"license": standard[0] if len(standard) == 1 else standard}
    if ids == ["unknown"]:
        return {"license": "unknown"}
    details = "; ".join(f"{s['name']}: {_licence_of(s)}" for s in sources)
    return {
        "license": standard + ["other"] if standard else "other",
        "license_name": MIXED_LICENCE_NAME,
        "license_link": f"https://huggingface.co/datasets/{repo_id}#licences" if repo_id else "README.md",
        "license_details": f"Each row keeps the licence of its source (recipe_source column): {details}.",
    }


def _note_key(source: dict, notes: dict) -> str | None:
    for key in (source.get("label"), source.get("adapter"), source.get("name")):
        if key and key in notes["sources"]:
            return key
    return None


def card_data(manifest: dict, stats, repo_id: str | None = None):
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
        **licence_metadata(sources, repo_id),
        task_categories=["text-generation"],
        size_categories=[size_category(stats.rows)],
        # "extended|<id>" is the Hub's convention for a dataset derived from another Hub dataset.
        source_datasets=[f"extended|{r}" for r in dict.fromkeys(origins)] or None,
        tags=list(dict.fromkeys(tags)),
        configs=[{"config_name": "default", "data_files": [{"split": split, "path": f"data/{split}-*"}]}],
        dataset_info={
            "features": stats.features if stats.features is not None else features_yaml(stats.schema),
            "splits": [{"name": split, "num_bytes": stats.num_bytes, "num_examples": stats.rows}],
            "download_size": manifest["output"]["bytes"],
            "dataset_size": stats.num_bytes,
        },
    )
