"""The card's YAML header: `datasets` reads the folder through it, and its features equal the shards'."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import DatasetCard

from flan_mini.card_header import features_yaml, licence_metadata, size_category
from flan_mini.errors import FlanMiniError
from flan_mini.shards import OUTPUT_SCHEMA, shard_paths


def _header(folder) -> dict:
    return DatasetCard.load(folder / "README.md").data.to_dict()


@pytest.fixture
def offline_datasets(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    return datasets, tmp_path / "datasets_cache"


def test_load_dataset_reads_the_folder_through_the_cards_config(built, offline_datasets):
    datasets, cache = offline_datasets
    loaded = datasets.load_dataset(str(built), cache_dir=str(cache))
    shards = pa.concat_tables(pq.read_table(p) for p in shard_paths(built))
    assert list(loaded) == ["train"]
    train = loaded["train"]
    assert train.num_rows == shards.num_rows
    # The card's features (not inferred ones) are what `datasets` used, and they equal the shards' own.
    header_features = datasets.Features._from_yaml_list(_header(built)["dataset_info"]["features"])
    assert train.features == header_features
    assert header_features == datasets.Features.from_arrow_schema(pq.read_schema(shard_paths(built)[0]))
    # datasets checks num_examples against what it read and records num_bytes itself: both agree with the card.
    split = _header(built)["dataset_info"]["splits"][0]
    assert train.info.splits["train"].num_examples == split["num_examples"]
    assert train.info.splits["train"].num_bytes == split["num_bytes"]
    assert sorted(train["id"]) == sorted(shards.column("id").to_pylist())
    first = train[0]["conversations"]
    assert first[0]["from"] == "human" and first[-1]["from"] == "gpt"


def test_datasets_rejects_a_card_that_disagrees_with_the_shards(built, offline_datasets):
    # Guards the test above: a wrong count in the card must make loading fail, so agreement means something.
    datasets, cache = offline_datasets
    card = (built / "README.md").read_text()
    rows = _header(built)["dataset_info"]["splits"][0]["num_examples"]
    (built / "README.md").write_text(card.replace(f"num_examples: {rows}", f"num_examples: {rows - 1}"))
    with pytest.raises(datasets.exceptions.NonMatchingSplitsSizesError):
        datasets.load_dataset(str(built), cache_dir=str(cache))


def test_datasets_follows_the_cards_configs_and_features(built, offline_datasets):
    # Shows the header is what `datasets` reads (not inference from the files): narrowing the config's data_files
    # and widening one feature's dtype both show up in what it loads.
    datasets, cache = offline_datasets
    card = (built / "README.md").read_text()
    first_shard_rows = pq.ParquetFile(shard_paths(built)[0]).metadata.num_rows
    narrowed = card.replace("path: data/train-*", "path: data/train-00000-*").replace(
        f"num_examples: {_header(built)['dataset_info']['splits'][0]['num_examples']}",
        f"num_examples: {first_shard_rows}")
    narrowed = narrowed.replace("- name: num_shots\n    dtype: int32", "- name: num_shots\n    dtype: int64")
    assert narrowed.count("data/train-00000-*") == 1 and "dtype: int64" in narrowed
    (built / "README.md").write_text(narrowed)
    train = datasets.load_dataset(str(built), cache_dir=str(cache), split="train")
    all_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in shard_paths(built))
    assert train.num_rows == first_shard_rows < all_rows
    assert train.features["num_shots"] == datasets.Value("int64")


def test_features_yaml_parses_to_the_output_schema_and_avoids_the_flan_mini_bug():
    import datasets

    entries = features_yaml(OUTPUT_SCHEMA)
    conversations = next(e for e in entries if e["name"] == "conversations")
    assert conversations == {"name": "conversations", "list": [{"name": "from", "dtype": "string"},
                                                               {"name": "value", "dtype": "string"}]}
    assert datasets.Features._from_yaml_list(entries) == datasets.Features.from_arrow_schema(OUTPUT_SCHEMA)
    # What declare-lab/flan-mini's card says, and why the Hub viewer fails on it.
    with pytest.raises(TypeError, match="list_"):
        datasets.Features._from_yaml_list([{"name": "conversations", "dtype": "list"}])


def test_features_yaml_round_trips_other_arrow_types():
    import datasets

    schema = pa.schema([
        ("tags", pa.list_(pa.string())), ("score", pa.float32()), ("ok", pa.bool_()), ("n", pa.int64()),
        ("meta", pa.struct([("lang", pa.string()), ("len", pa.int32())])), ("big", pa.large_string()),
    ])
    assert datasets.Features._from_yaml_list(features_yaml(schema)) == datasets.Features.from_arrow_schema(schema)
    with pytest.raises(FlanMiniError, match="map<string, int32>"):
        features_yaml(pa.schema([("counts", pa.map_(pa.string(), pa.int32()))]))


def test_header_fields(built):
    header = _header(built)
    assert header["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    # The Hub's licence filter finds every standard id; sharegpt's terms make it `other` too, with a name and link.
    assert header["license"] == ["apache-2.0", "cc-by-nc-4.0", "cc-by-4.0", "other"]
    assert header["license_name"] == "per-source-licences"
    assert header["license_link"] == "https://huggingface.co/datasets/flan-mini/sample#licences"
    for piece in ("flan2021: apache-2.0", "alpaca_gpt4: cc-by-nc-4.0", "code_contests: cc-by-4.0", "sharegpt: other"):
        assert piece in header["license_details"]
    assert header["size_categories"] == ["n<1K"]
    assert header["task_categories"] == ["text-generation"]
    assert header["language"] == ["en", "code"]  # code_contest's notes add `code`
    assert header["source_datasets"] == ["extended|DataProvenanceInitiative/flan2021_submix_original",
                                         "extended|vicgalle/alpaca-gpt4"]
    assert header["pretty_name"] == "sample"
    info = header["dataset_info"]
    assert info["download_size"] == sum(p.stat().st_size for p in shard_paths(built))
    assert info["dataset_size"] == info["splits"][0]["num_bytes"]
    # The header is plain YAML the Hub can read (no Python tags).
    text = (built / "README.md").read_text()
    assert yaml.safe_load(text.split("---\n")[1]) == header


def test_licence_metadata():
    one = [{"name": "a", "license": "mit"}, {"name": "b", "license": "MIT"}]
    assert licence_metadata(one) == {"license": "mit"}
    two = [{"name": "a", "license": "apache-2.0"}, {"name": "b", "license": "cc-by-nc-4.0"}]
    assert licence_metadata(two) == {"license": ["apache-2.0", "cc-by-nc-4.0"]}
    mixed = licence_metadata([{"name": "a", "license": "mit"}, {"name": "b", "license": None}], "org/x")
    assert mixed["license"] == ["mit", "other"] and "a: mit; b: unknown" in mixed["license_details"]
    assert mixed["license_link"] == "https://huggingface.co/datasets/org/x#licences"
    # A single source with non-standard terms still needs a license_name (and link) for the Hub.
    alone = licence_metadata([{"name": "sharegpt", "license": "other"}])
    assert alone["license"] == "other" and alone["license_name"] and alone["license_link"]
    assert licence_metadata([{"name": "x", "license": None}]) == {"license": "unknown"}


@pytest.mark.parametrize("rows, label", [(0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"),
                                          (1_340_153, "1M<n<10M"), (99_999_999, "10M<n<100M")])
def test_size_category(rows, label):
    assert size_category(rows) == label
