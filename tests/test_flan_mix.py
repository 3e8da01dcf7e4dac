"""FLAN's mixture kept once: a mixed export keeps its task distribution; caps and template-type weights shape
only a full collection, as FLAN 2022 defines them; validate warns about caps on a mixed export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from flan_mini.recipe import load_recipe
from flan_mini.sample import select_source
from flan_mini.sources.files import resolve_local
from flan_mini.sources.flan import FlanAdapter, FlanConfig
from flan_mini.sources.flan_mix import flan2022_weights, layout_kind
from flan_mini.task_distribution import task_distribution, total_variation

from .conftest import REPO, run_cli
from .fixtures.formats import write_dpi_flan, write_openorca_flan

PAPER_RECIPE = REPO / "recipes" / "flan_mini.yaml"


def rows(count: int, task: str, source: str = "Flan2021", ttype: str = "zs_opt") -> list[dict]:
    return [{"inputs": f"{task} question {i}", "targets": f"answer {i}", "task_name": task, "task_source": source,
             "template_type": ttype} for i in range(count)]


def paper_settings(name: str) -> dict:
    """The paper recipe's settings of one FLAN source, as the recipe file gives them."""
    config = next(s for s in load_recipe(PAPER_RECIPE).recipe.sources if s.name == name)
    return config.model_dump(exclude={"path", "data_files", "n", "revision"}, exclude_none=True)


def select(folder: Path, n: int, seed: int = 3, **settings):
    config = FlanConfig(**{"name": "src", "adapter": "flan", **settings, "path": str(folder), "n": n})
    adapter = FlanAdapter(config)
    files = resolve_local(str(folder), None, "train", folder, adapter.extensions).files
    return adapter.prepare(files), select_source(adapter, files, seed=seed)  # the adapter as the selection prepares it


def heavy_tailed_dpi(folder: Path) -> dict[str, int]:
    """A DPI-layout Flan2021 export whose task sizes fall off like FLAN's: one task holds half the rows."""
    sizes = {"big_task": 6000, **{f"task_{i:02d}": max(12, int(3000 / (i + 1) ** 1.2)) for i in range(30)}}
    data = [row for task, size in sizes.items() for row in rows(size, task, ttype=("zs_opt", "fs_noopt")[len(task) % 2])]
    write_dpi_flan(folder, data)
    return sizes


def test_a_mixed_export_keeps_its_task_distribution_with_the_paper_settings(tmp_path):
    sizes = heavy_tailed_dpi(tmp_path)
    settings = paper_settings("flan2021")
    adapter, selection = select(tmp_path, n=1500, **settings)
    written = selection.table.column("task_name")
    distribution = task_distribution(selection.counts.tallied, written)
    assert adapter.mixed and selection.counts.tallied == sizes
    assert distribution["total_variation"] < 0.02 and distribution["tasks_written"] == len(sizes)
    # Capping this export again (FLAN's 30,000 scaled to the fixture's size) takes rows from the big task.
    _, twice = select(tmp_path, n=1500, **{**settings, "task_caps": 1000, "already_mixed": False})
    assert total_variation(sizes, task_distribution(sizes, twice.table.column("task_name"))["written"]) > 0.2


def test_a_mixed_draw_is_uniform_over_rows(tmp_path):
    write_dpi_flan(tmp_path, rows(30, "a") + rows(70, "b"))
    hits = np.zeros(100)
    for seed in range(150):
        _, selection = select(tmp_path, n=10, seed=seed)
        for text in selection.table.column("inputs").to_pylist():
            hits[int(text.split()[-1]) + (30 if text.startswith("b ") else 0)] += 1
    # Each row is chosen with probability 0.1: 15 times in 150 draws, sd ~3.7; tasks keep 3 and 7 rows exactly.
    assert hits.sum() == 1500 and hits.min() >= 3 and hits.max() <= 30
    assert hits[:30].sum() == 150 * 3


def test_flan2022_caps_and_template_types_shape_a_full_collection(tmp_path):
    # NIv2 in Open-Orca's layout: one task over FLAN's NIv2 cap (5,000), one under; a zs_noopt folder that
    # FLAN's niv2 submix does not mix (run_example.py takes zs_opt and fs_opt, 50% each).
    for folder, ttype in (("niv2_zsopt_data", "zs_opt"), ("niv2_fsopt_data", "fs_opt"), ("niv2_zsnoopt_data", "zs_noopt")):
        write_openorca_flan(tmp_path, folder, rows(12_000, "task001_big", "NIv2", ttype) + rows(1_000, "task002_small", "NIv2", ttype))
    adapter, selection = select(tmp_path, n=600, task_caps="flan2022")
    # Each type takes 300; within it the tasks weigh min(rows, 5000): 5000 : 1000 -> 250 and 50.
    assert adapter.mixing() == "flan2022"
    assert selection.quotas == {"zs_opt|task001_big": 250, "zs_opt|task002_small": 50, "fs_opt|task001_big": 250,
                                "fs_opt|task002_small": 50, "zs_noopt|task001_big": 0, "zs_noopt|task002_small": 0}
    table = selection.table.group_by(["template_type", "task_name"]).aggregate([("inputs", "count")])
    got = {f"{t}|{k}": c for t, k, c in zip(*(table.column(i).to_pylist() for i in range(3)))}
    assert got == {k: v for k, v in selection.quotas.items() if v}


def test_flan2022_weights_follow_the_submix_rates_and_input_inversions():
    groups = [("CoT", "zs_opt", "cot_gsm8k"), ("CoT", "zs_opt", "cot_esnli_ii"), ("CoT", "fs_opt", "cot_gsm8k"),
              ("Flan2021", "zs_opt", "glue/cola:2.0.0"), ("Flan2021", "zs_noopt", "glue/cola:2.0.0")]
    weights = flan2022_weights(groups, [50, 50, 200_000, 10, 10], {"CoT": 100_000, "Flan2021": 30_000})
    cot, flan = 0.05 / 0.45, 0.40 / 0.45  # run_example.py's rates, over the submixes present
    assert weights == pytest.approx([cot / 2 / 1.3, cot / 2 * 0.3 / 1.3, cot / 2, flan / 2, flan / 2])
    assert sum(weights) == pytest.approx(1.0)


def test_layouts_know_whether_they_are_mixed():
    assert layout_kind({"inputs", "targets", "task_name", "task_source", "template_type"}, "data/train-0.parquet") == "mixed"
    assert layout_kind({"inputs", "targets", "_task_name"}, "flan_zsopt_data/part.0.parquet") == "full"
    assert layout_kind({"inputs", "targets", "task"}, "cot_zs_opt_train.jsonl.gz") == "full"
    assert layout_kind(None, "DataProvenanceInitiative/t0_submix_original") == "mixed"
    assert layout_kind(None, "Open-Orca/FLAN") == "full"


def test_validate_warns_about_caps_on_a_mixed_export(tmp_path):
    write_dpi_flan(tmp_path / "dpi", rows(20, "a"))
    write_openorca_flan(tmp_path / "orca", "t0_zsopt_data", rows(20, "b", "P3"))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: r\nsources:\n"
        "  - {name: mixed, adapter: flan, path: dpi, n: 5, task_caps: flan2022}\n"
        "  - {name: full, adapter: flan, path: orca, n: 5, task_caps: flan2022}\n"
        "  - {name: ok, adapter: flan, path: dpi, n: 5}\n"
        "  - {name: uncapped, adapter: flan, path: orca, n: 5}\n"
        "  - {name: forced, adapter: flan, path: dpi, n: 5, task_caps: 10, already_mixed: false}\n"
    )
    result = run_cli("validate", recipe)
    assert result.exit_code == 0
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "r.yaml:3  sources[0].task_caps: task_caps are not applied" in warnings[0]
    assert "r.yaml:6  sources[3].adapter: this is the full FLAN collection and no task_caps are set" in warnings[1]
    # The paper recipe reads the DPI exports and asks for no caps.
    paper = run_cli("validate", PAPER_RECIPE)
    assert paper.exit_code == 0 and "warning:" not in paper.output


def test_manifest_and_card_report_each_flan_sources_task_distribution(sample_build):
    import json

    manifest = json.loads((sample_build / "manifest.json").read_text())
    sources = {s["name"]: s for s in manifest["sources"]}
    dist = sources["flan2021"]["task_distribution"]
    assert sources["flan2021"]["settings"]["mixing"] == "stratified" and dist["total_variation"] < 0.02
    assert sum(dist["written"].values()) == sources["flan2021"]["written"]
    assert sum(dist["read"].values()) == sources["flan2021"]["usable"]
    assert "task_distribution" not in sources["gpt4_alpaca"]
    card = (sample_build / "README.md").read_text()
    assert "## FLAN task distribution" in card and "**flan2021** (stratified)" in card
    assert f"total variation distance {dist['total_variation']:.4f}" in card
