"""A built folder reads as data: the stage reports sit under reports/, outside everything that reads data/."""

from __future__ import annotations

import json


def test_stage_reports_live_under_reports_and_data_reads_cleanly(sample_build, tmp_path):
    import datasets
    import pandas as pd
    import pyarrow.parquet as pq

    manifest = json.loads((sample_build / "manifest.json").read_text())
    assert manifest["dedup"]["clusters_file"]["path"] == "reports/dedup_clusters.parquet"
    assert manifest["decontamination"]["matches_file"]["path"] == "reports/decontam_matches.parquet"
    top = sorted(p.name for p in sample_build.iterdir())
    assert top == ["README.md", "composition.png", "data", "lengths.png", "manifest.json", "reports"]
    rows = manifest["output"]["rows"]
    shards = sorted((sample_build / "data").glob("**/*.parquet"))
    assert [p.relative_to(sample_build).as_posix() for p in shards] == [s["path"] for s in manifest["output"]["shards"]]
    assert len(pd.read_parquet(sample_build / "data")) == rows
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in shards) == rows
    loaded = datasets.load_dataset("parquet", data_dir=str(sample_build), split="train",
                                   cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == rows and "conversations" in loaded.column_names
    card = (sample_build / "README.md").read_text()
    assert "path: data/train-*" in card and "reports/" not in card.split("---")[1]
