"""Exact and near-duplicate removal with MinHash LSH (datasketch's definitions, computed columnar).

Modules, in pipeline order: config (the recipe's `dedup:` section), texts (which text is compared),
flan_mini.textnorm (normalisation), shingle (tokens to shingle hashes and exact keys), minhash (signatures),
lsh (bands and candidate pairs), sketch (batches on N processes, two passes), verify (exact Jaccard of
candidate pairs on their shingle sets), clusters (union-find and keepers),
report (clusters table and stats), stage (`dedup_table`), folder (`dedup_folder`), command (`flan-mini dedup`).

Names are imported lazily, so `from flan_mini.dedup.command import dedup_command` stays cheap for `--help`.
"""

from __future__ import annotations

_EXPORTS = {
    "DedupConfig": "config",
    "dedup_config": "config",
    "DedupResult": "stage",
    "dedup_table": "stage",
    "dedup_folder": "folder",
    "dedup_command": "command",
    "write_clusters": "report",
    "manifest_removed": "report",
    "manifest_entry": "report",
    "take_kept": "stage",
    "CLUSTERS_FILE": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
