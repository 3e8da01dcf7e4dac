"""The FLAN 2022 collection in its public export layouts (Open-Orca/FLAN, DataProvenanceInitiative, SirNeural).

All layouts carry the already-templated `inputs` / `targets` plus metadata, under different names:

| layout                                   | files                                   | task name    | source / type columns              |
|------------------------------------------|-----------------------------------------|--------------|------------------------------------|
| Open-Orca/FLAN                           | `{submix}_{zsopt..}_data/part.N.parquet`| `_task_name` | `_task_source`, `_template_type`, `_template_idx` (may be absent) |
| DataProvenanceInitiative/*_submix_original | `data/train-*.parquet`               | `task_name`  | `task_source`, `template_type`     |
| SirNeural/flan_v2                        | `{submix}_{zs,fs}_{opt,noopt}_train.jsonl.gz` | `task` | none: taken from the file name     |
| chiayewken/flan-v2                       | parquet                                 | `task_name`  | `source`/`target` hold the text    |

Where a layout has no task_source / template_type column, the file or folder name says it
(`flan_zsopt_data`, `cot_fs_opt_train.jsonl.gz`). Variants are normalised here and nowhere else.

DPI and chiayewken exports are FLAN's mixture already; Open-Orca and SirNeural hold the full generation.
How each is drawn (a mixed export keeps its task distribution; caps and FLAN 2022's weights apply to the
full collection only) is worked out here from flan_mix.py's definitions.
"""

from __future__ import annotations

import fnmatch
import re
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, PositiveInt

from ..errors import SourceError
from . import formats
from .base import Adapter, SourceConfig, all_of
from .files import InputFile
from .kinds import FlanPassthrough
from .flan_mix import FLAN2022_TASK_CAPS, MIXED, WEIGHT_SCALE, flan2022_weights, layout_kind

TASK_SOURCES = ("Flan2021", "P3", "NIv2", "CoT", "Dialog")
TEMPLATE_TYPES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")
TaskSource = Literal["Flan2021", "P3", "NIv2", "CoT", "Dialog"]
TemplateType = Literal["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"]

# Submix tokens used in export file names -> task_source.
_SUBMIX = {"flan2021": "Flan2021", "flan": "Flan2021", "t0": "P3", "niv2": "NIv2", "cot": "CoT", "dialog": "Dialog"}
_NAME_WITH_TYPE = re.compile(r"(?<![a-z0-9])(flan2021|flan|t0|niv2|cot|dialog)_(zs|fs)_?(opt|noopt)(?![a-z])")
_NAME_SUBMIX_ONLY = re.compile(r"(?<![a-z0-9])(flan2021|t0|niv2|cot|dialog)_submix")

# Candidate column names per field, in order of preference.
_ALIASES = {
    "inputs": ("inputs", "input"),
    "targets": ("targets", "target"),
    "task_name": ("_task_name", "task_name", "task"),
    "task_source": ("_task_source", "task_source"),
    "template_type": ("_template_type", "template_type"),
    "template_idx": ("_template_idx", "template_idx"),
}


class FlanConfig(SourceConfig):
    adapter: Literal["flan"] = Field(description="The FLAN 2022 collection (already templated inputs/targets).")
    task_sources: list[TaskSource] | None = Field(
        None, min_length=1, description="Keep rows of these FLAN submixes (Flan2021, P3, NIv2, CoT, Dialog)."
    )
    template_types: list[TemplateType] | None = Field(
        None, min_length=1, description="Keep rows of these template types (zs_opt, zs_noopt, fs_opt, fs_noopt)."
    )
    include_tasks: list[str] | None = Field(None, min_length=1, description="Keep only tasks whose name matches one of these globs.")
    exclude_tasks: list[str] | None = Field(None, min_length=1, description="Drop tasks whose name matches one of these globs.")
    task_caps: Literal["flan2022"] | PositiveInt | dict[TaskSource, PositiveInt] | None = Field(
        None,
        description=(
            "For a full-collection export (Open-Orca/FLAN, SirNeural/flan_v2): examples-proportional mixing with "
            "a per-task cap. `flan2022` is FLAN 2022's whole definition: its caps per submix (Flan2021 30000, P3 "
            "20000, NIv2 5000, CoT 100000, Dialog 200000), the template types of each submix weighed equally, "
            "input inversions at 0.3, the submixes at 0.40/0.32/0.20/0.05/0.03; a number caps every task, a "
            "mapping caps per submix (tasks weigh min(rows, cap), nothing else). Not applied to an export that "
            "is FLAN's mixture already (validate warns). Default: no caps (uniform over rows)."
        ),
    )
    already_mixed: bool | None = Field(
        None,
        description=(
            "Whether the files are FLAN's mixture already (DataProvenanceInitiative *_submix_original, "
            "chiayewken/flan-v2): draws then keep its task distribution and task_caps do not apply. "
            "Default: from the layout (true for those exports, false for Open-Orca/FLAN and SirNeural/flan_v2)."
        ),
    )


def submix_from_name(text: str) -> tuple[str | None, str | None]:
    """(task_source, template_type) as far as a file path names them.

    'flan_zsopt_data/part.0.parquet' -> ('Flan2021', 'zs_opt'); 'cot_fs_noopt_train.jsonl.gz' -> ('CoT', 'fs_noopt');
    'DataProvenanceInitiative/t0_submix_original/...' -> ('P3', None).
    """
    lowered = text.lower()
    if match := _NAME_WITH_TYPE.search(lowered):
        return _SUBMIX[match.group(1)], f"{match.group(2)}_{match.group(3)}"
    if match := _NAME_SUBMIX_ONLY.search(lowered):
        return _SUBMIX[match.group(1)], None
    return None, None


def _canonical_template_type(value: str) -> str:
    """'zsopt' / 'ZS_OPT' / 'zs-opt' -> 'zs_opt'; unknown values pass through unchanged."""
    squeezed = re.sub(r"[^a-z]", "", value.lower())
    for canonical in TEMPLATE_TYPES:
        if squeezed == canonical.replace("_", ""):
            return canonical
    return value


class FlanAdapter(Adapter):
    name = "flan"
    config_model = FlanConfig
    extensions = (".parquet", ".jsonl", ".jsonl.gz")
    fields: ClassVar[dict[str, pa.DataType]] = {
        "inputs": pa.string(),
        "targets": pa.string(),
        "task_name": pa.string(),
        "task_source": pa.string(),
        "template_type": pa.string(),
        "template_idx": pa.int64(),
    }
    required = ("inputs", "targets", "task_name")
    template_family = "flan"
    kind = FlanPassthrough("template_type")
    license = None  # the collection mixes many datasets' licences

    config: FlanConfig

    @property
    def mixed(self) -> bool | None:
        """Whether the files are FLAN's mixture already: the recipe's say, else what `prepare` found."""
        return self.config.already_mixed if self.config.already_mixed is not None else self.facts.get("mixed")

    @property
    def layout(self) -> str | None:
        """MIXED / FULL as the files show it (found by `prepare`)."""
        return self.facts.get("layout")

    def column_map(self, file: InputFile, fmt: str) -> dict[str, str | None]:
        if fmt == "json":
            raise SourceError(f"{file.display}: FLAN exports are Parquet or JSON Lines files, not a single JSON array")
        present = formats.record_keys(file.path, fmt) or set()
        mapping = {field: next((c for c in names if c in present), None) for field, names in _ALIASES.items()}
        if mapping["inputs"] is None and "source" in present and mapping["targets"] is not None:
            mapping["inputs"] = "source"  # chiayewken/flan-v2 calls the templated input `source`
        missing = [field for field in ("inputs", "targets", "task_name") if mapping[field] is None]
        if missing:
            expected = "; ".join(f"{f}: one of {', '.join(_ALIASES[f])}" for f in missing)
            raise SourceError(
                f"{file.display}: not a FLAN export layout: no column for {expected} (found: {', '.join(sorted(present)) or 'none'})"
            )
        return mapping

    def skip_file(self, file: InputFile) -> bool:
        task_source, template_type = submix_from_name(file.display)
        if self.config.task_sources and task_source and task_source not in self.config.task_sources:
            return True
        return bool(self.config.template_types and template_type and template_type not in self.config.template_types)

    def scan_fields(self) -> tuple[str, ...]:
        # task_name always: the input's task distribution is reported next to the output's.
        return (*(field for field in ("task_source", "template_type") if self._needs(field)), "task_name")

    # -- mixing: a mixed export keeps its distribution; caps apply to the full collection only ---------
    def prepare(self, files: list[InputFile]) -> FlanAdapter:
        """Work out, before the scan, whether the files are FLAN's mixture already (see flan_mix.py)."""
        if self.config.already_mixed is not None:
            return self
        kinds = set()
        for file in files:
            if not self.skip_file(file):
                fmt = formats.detect_format(file.path)
                self.column_map(file, fmt)  # refuses a file that is not a FLAN export
                kinds.add(layout_kind(formats.record_keys(file.path, fmt) or set(), file.display))
        if len(kinds - {None}) > 1:
            raise SourceError(
                f"source {self.config.name!r}: mixes files of an already-mixed FLAN export with files of the full "
                "collection; make them two sources, or say which with already_mixed: true / false"
            )
        return self.with_facts(mixed=kinds == {MIXED}, layout=next(iter(kinds - {None}), None))

    def mixing(self) -> str | None:
        """How rows are drawn: 'stratified' (a mixed export: proportional to each task's rows), 'flan2022'
        (FLAN 2022's mixture over a full collection), 'capped' (tasks weigh min(rows, cap)), None (uniform)."""
        if self.mixed:
            return "stratified"
        if self.config.task_caps == "flan2022":
            return "flan2022"
        return "capped" if self.config.task_caps is not None else None

    def mixing_warnings(self) -> list[str]:
        """What validate warns about the caps, given the layout (of the files, or else of the path's name)."""
        layout = self.layout or layout_kind(None, self.config.path)
        mixed = self.config.already_mixed if self.config.already_mixed is not None else (layout == MIXED if layout else None)
        if mixed and self.config.task_caps is not None:
            return [
                "task_caps are not applied: this export is FLAN's mixture already (FLAN's per-task caps and "
                "template-type weights made it), so rows are drawn uniformly, keeping its task distribution. "
                "Remove task_caps, or set already_mixed: false if these files are the full collection"
            ]
        if mixed is False and self.config.task_caps is None:
            return [
                "this is the full FLAN collection and no task_caps are set: rows are drawn uniformly, so the "
                "largest tasks dominate; `task_caps: flan2022` mixes it as FLAN 2022 does"
            ]
        return []

    def _needs(self, field: str) -> bool:
        mixing = self.mixing()
        if field == "task_source":
            return bool(self.config.task_sources) or mixing == "flan2022" or (mixing == "capped" and isinstance(self.config.task_caps, dict))
        return bool(self.config.template_types) or mixing == "flan2022"

    def normalise(self, batch: pa.RecordBatch, file: InputFile) -> pa.RecordBatch:
        name_source, name_type = submix_from_name(file.display)
        for field, from_name in (("task_source", name_source), ("template_type", name_type)):
            index = batch.schema.get_field_index(field)
            if index < 0:
                continue
            column = batch.column(index)
            if column.null_count == len(column) and len(column):
                if from_name is None and self._needs(field):
                    raise SourceError(
                        f"{file.display}: has no {field} column and its name does not say which FLAN "
                        f"{'submix' if field == 'task_source' else 'template type'} it holds (e.g. flan_zsopt_data/, "
                        f"cot_fs_opt_train.jsonl.gz); the recipe's filters or caps need it"
                    )
                column = pa.array([from_name] * len(column), pa.string())
            elif field == "template_type" and len(column):
                column = _map_values(column, _canonical_template_type)
            batch = batch.set_column(index, field, column)
        return batch

    def row_filter(self, batch: pa.RecordBatch) -> pa.Array | None:
        config = self.config
        masks = []
        if config.task_sources:
            masks.append(pc.is_in(batch.column("task_source"), pa.array(config.task_sources)))
        if config.template_types:
            masks.append(pc.is_in(batch.column("template_type"), pa.array(config.template_types)))
        if config.include_tasks or config.exclude_tasks:
            names = batch.column("task_name")
            unique = pc.unique(names).drop_null().to_pylist()
            kept = [
                t for t in unique
                if (not config.include_tasks or any(fnmatch.fnmatchcase(t, g) for g in config.include_tasks))
                and not any(fnmatch.fnmatchcase(t, g) for g in (config.exclude_tasks or ()))
            ]
            masks.append(pc.is_in(names, pa.array(kept, pa.string())))
        return all_of(masks)

    def scan_facts(self, batch: pa.RecordBatch) -> dict | None:
        """Caps per submix: each task's submix (task name -> task_source), for group_cap / group_weights."""
        if self.mixing() is None or not self._needs("task_source"):
            return None
        names = batch.column("task_name")
        pairs = pa.Table.from_arrays([names, batch.column("task_source")], ["n", "s"]).group_by(["n", "s"]).aggregate([])
        learnt: dict = {}
        for name, source in zip(pairs.column("n").to_pylist(), pairs.column("s").to_pylist()):
            learnt.setdefault(name, source)
        return learnt

    def group_column(self, batch: pa.RecordBatch) -> pa.Array | None:
        mixing = self.mixing()
        if mixing is None:
            return None
        names = batch.column("task_name")
        if mixing == "flan2022":  # FLAN mixes each template type separately: one group per (type, task)
            return pc.binary_join_element_wise(batch.column("template_type"), names, "|")
        return names

    def needs_counts(self) -> bool:
        return self.mixing() in ("stratified", "flan2022")

    def tally_column(self, batch: pa.RecordBatch) -> pa.Array | None:
        return batch.column("task_name")

    def _task_of(self, group: str) -> str:
        return group.split("|", 1)[1] if self.mixing() == "flan2022" else group

    def group_cap(self, group: str, learnt: dict) -> int | None:
        caps = self.config.task_caps
        if caps is None or self.mixed:
            return None
        if isinstance(caps, int):
            return caps
        table = FLAN2022_TASK_CAPS if caps == "flan2022" else caps
        return table.get(learnt.get(self._task_of(group)))

    def group_weights(self, groups: list[str], rows: list[int], learnt: dict) -> tuple[list[int], list[int]] | None:
        mixing = self.mixing()
        if mixing == "stratified":  # each task's share of the export, exactly: uniform over rows, no sampling noise
            return list(rows), list(rows)
        if mixing != "flan2022":
            return None
        keys = [(learnt.get(self._task_of(g), ""), g.split("|", 1)[0], self._task_of(g)) for g in groups]
        weights = flan2022_weights(keys, rows, FLAN2022_TASK_CAPS)
        upper = [min(n, FLAN2022_TASK_CAPS.get(s, n)) for (s, _, _), n in zip(keys, rows)]
        return [round(w * WEIGHT_SCALE) for w in weights], upper

    def source_column(self, table: pa.Table) -> pa.Array:
        return table.column("task_name")

    def describe(self) -> dict:
        config = self.config
        return {
            key: value
            for key, value in {
                "task_sources": config.task_sources,
                "template_types": config.template_types,
                "include_tasks": config.include_tasks,
                "exclude_tasks": config.exclude_tasks,
                "task_caps": FLAN2022_TASK_CAPS if config.task_caps == "flan2022" else config.task_caps,
                "already_mixed": config.already_mixed if config.already_mixed is not None else self.mixed,
                "mixing": self.mixing() if self.mixed is not None or config.already_mixed is not None else None,
            }.items()
            if value is not None
        }


def _map_values(column: pa.Array, function) -> pa.Array:
    """Apply `function` to each distinct value (columnar: one call per distinct value, not per row)."""
    encoded = column.dictionary_encode() if not pa.types.is_dictionary(column.type) else column
    dictionary = encoded.dictionary.to_pylist()
    mapped = [function(v) if v is not None else None for v in dictionary]
    if mapped == dictionary:
        return column
    indices = encoded.indices
    return pa.array(np.asarray(mapped, dtype=object), pa.string()).take(indices)
