"""A small built dataset folder (shards + manifest.json in the contract's shape) for the card and hub tests."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flan_mini.shards import OUTPUT_SCHEMA, to_messages, write_shards

# (recipe source name, adapter, label, licence, origin, rows requested, rows written)
SOURCES = [
    ("flan2021", "flan", None, "apache-2.0",
     {"kind": "hub", "path": None, "repo_id": "DataProvenanceInitiative/flan2021_submix_original",
      "revision": "5d1f7a1c0e0b0f6a8d1b6f1f7c0a9b9e2d3c4b5a", "split": "train"}, 60, 60),
    ("alpaca_gpt4", "alpaca", "alpaca_gpt4", "cc-by-nc-4.0",
     {"kind": "hub", "path": None, "repo_id": "vicgalle/alpaca-gpt4", "revision": "main", "split": "train"}, 30, 30),
    ("code_contests", "code_contests", "code_contest", "cc-by-4.0",
     {"kind": "local", "path": "sample_data/code_contests", "repo_id": None, "revision": None, "split": "train"},
     25, 20),
    ("sharegpt", "sharegpt", "sharegpt", "other",
     {"kind": "local", "path": "sample_data/sharegpt", "repo_id": None, "revision": None, "split": "train"}, 25, 25),
]

FLAN_TASKS = ["glue/cola:2.0.0", "super_glue/rte:1.0.2", "anli/r1:0.1.0", "task061_ropes_answer_generation"]
WORDS = ("the model answer question premise hypothesis code function input output value list sort "
         "return string number graph tree because therefore entails sentence").split()


def _text(rng: np.random.Generator, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(low, high))))


def _rows(name: str, label: str | None, count: int, rng: np.random.Generator) -> list[dict]:
    rows = []
    for i in range(count):
        if name == "flan2021":
            few = i % 2 == 1
            opt = "opt" if i % 4 < 2 else "noopt"
            shots = int(rng.integers(1, 4)) if few else 0
            prompt = "\n\n\n".join(
                [f"Q: {_text(rng, 5, 20)}\nA: {_text(rng, 1, 4)}" for _ in range(shots)]
                + [f"Q: {_text(rng, 5, 30)}\nA:"]
            )
            conv = [{"from": "human", "value": prompt}, {"from": "gpt", "value": _text(rng, 1, 5)}]
            rows.append(dict(id=f"identity_flan_{i}", source=FLAN_TASKS[i % len(FLAN_TASKS)], conversations=conv,
                             recipe_source=name, template_id="flan/passthrough",
                             template_type=f"{'fs' if few else 'zs'}_{opt}", num_shots=shots))
        elif name == "sharegpt":
            turns = 2 * int(rng.integers(1, 4))
            conv = [{"from": ("human", "gpt")[t % 2], "value": _text(rng, 3, 60)} for t in range(turns)]
            rows.append(dict(id=f"sharegpt_{i}_0", source=label, conversations=conv, recipe_source=name,
                             template_id=None, template_type=None, num_shots=None))
        else:
            few = i % 3 == 0
            shots = 2 if few else 0
            template = f"{name}/{'fs' if few else 'zs'}_{i % 3}"
            prompt = ("Example:\n" + _text(rng, 5, 15) + "\n\n") * shots + _text(rng, 5, 40)
            conv = [{"from": "human", "value": prompt}, {"from": "gpt", "value": _text(rng, 10, 80)}]
            rows.append(dict(id=f"{label}_{i}", source=label, conversations=conv, recipe_source=name,
                             template_id=template, template_type="fs" if few else "zs", num_shots=shots))
    return rows


def make_built_folder(folder: Path, *, seed: int = 7, target_shard_bytes: int = 1 << 30,
                      dedup: bool = True, fmt: str = "conversations") -> Path:
    """Write shards and a manifest.json exactly in the contract's shape; return the folder."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    rows, source_entries = [], []
    for name, adapter, label, licence, origin, requested, written in SOURCES:
        part = _rows(name, label, written, rng)
        rows.extend(part)
        few = Counter(r["template_type"] for r in part if r["template_type"])
        source_entries.append({
            "name": name, "adapter": adapter, "label": label, "license": licence, "origin": origin,
            "inputs": [{"path": f"{origin['path'] or 'hub'}/part-0.parquet", "bytes": 1234 + written,
                        "sha256": hashlib.sha256(name.encode()).hexdigest()}],
            "requested": requested, "rows_read": written * 5, "rows_filtered": 3,
            "rejected": {"empty:targets": 2, "bad_roles": 1},
            "reject_examples": [{"reason": "empty:targets", "file": "part-0.parquet", "row": 7, "excerpt": "Q: ..."}],
            "usable": written * 5 - 3, "selected": written + 2,
            "removed": {"dedup_exact": 1, "dedup_near": 1} if dedup else {"dedup_exact": 0, "dedup_near": 0},
            "written": written, "shortfall": requested - written,
            "templates": dict(Counter(r["template_id"] for r in part if r["template_id"])),
            "template_types": dict(few),
            "num_shots": {str(k): v for k, v in Counter(r["num_shots"] for r in part if r["num_shots"] is not None).items()},
        })
    order = rng.permutation(len(rows))
    table = pa.Table.from_pylist([rows[i] for i in order], schema=OUTPUT_SCHEMA)
    shards = write_shards(table, folder, target_shard_bytes=target_shard_bytes,
                          transform=to_messages if fmt == "messages" else None)
    clusters_file = None
    if dedup:  # a small clusters file in the dedup stage's layout, listed with its real sha256
        clusters = pa.table({"cluster_id": [0, 0], "id": ["a_1", "a_2"], "is_keeper": [True, False],
                             "similarity": [1.0, 0.9], "reason": ["kept: first in selection order", "near duplicate"]})
        path = folder / "reports" / "dedup_clusters.parquet"
        path.parent.mkdir(exist_ok=True)
        pq.write_table(clusters, path)
        clusters_file = {"path": "reports/dedup_clusters.parquet", "rows": 2, "bytes": path.stat().st_size,
                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    manifest = {
        "format_version": 1,
        "name": "sample",
        "created_by": {"tool": "flan-mini", "version": "0.1.0", "python": "3.11.7",
                       "packages": {"pyarrow": pa.__version__, "polars": "2.1.0", "numpy": np.__version__,
                                    "jinja2": "3.1.6", "datasketch": "2.0.0", "huggingface_hub": "2.4.0",
                                    "datasets": "5.2.0"}},
        "command": "flan-mini build recipes/sample.yaml",
        "recipe": {"path": "recipes/sample.yaml", "sha256": hashlib.sha256(b"recipe").hexdigest(),
                   "resolved": {"name": "sample", "seed": 1234,
                                "sources": [{"name": s[0], "adapter": s[1], "n": s[5]} for s in SOURCES]}},
        "seed": 1234,
        "output": {"format": fmt, "split": "train", "rows": table.num_rows,
                   "bytes": sum(s.bytes for s in shards), "shards": [s.to_dict() for s in shards]},
        "sources": source_entries,
        "dedup": ({"parameters": {"threshold": 0.8, "num_perm": 128, "bands": 9, "rows": 13,
                                  "shingle": {"kind": "word", "size": 5}, "compare": "conversation", "scope": "global",
                                  "keep": None},
                   "rows_in": 40, "exact": 4, "near": 4, "kept": 32, "clusters": 3, "cluster_sizes": {"2": 1, "4": 2},
                   "clusters_file": clusters_file}
                  if dedup else None),
        "stages": {"select": 0.12, "render": 0.05, "dedup": 0.01, "write": 0.03, "total": 0.3},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder
