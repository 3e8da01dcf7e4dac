"""FLAN 2022's mixture as its code defines it: which exports are mixed already, and the weights that mix a full one.

From google-research/FLAN, flan/v2:
- `mixtures.py` DEFAULT_MIXTURE_MAX_EXAMPLES: per-task caps (FLAN 30000, T0 20000, CoT 100000, NIv2 5000,
  Dialog 200000). Each template-type mixture (`flan_zsopt`, ...) weighs its tasks by min(examples, cap)
  (seqio.mixing_rate_num_examples with `maximum`). CoT and Dialog mixtures hold two submixtures, the tasks and
  their input inversions (CoT-II, Dialog-II: task names ending `_ii`), at rates 1 and 0.3.
- `run_example.py`: `flan2021_submix` and `t0_submix` weigh their four template types equally (25% each);
  `cot_submix`, `dialog_submix` and `niv2_submix` take only zs_opt and fs_opt (50% each). `flan2022_submix`
  weighs the submixes flan2021 0.40, t0 0.32, niv2 0.20, cot 0.05, dialog 0.03.

So a row of task k, template type t, submix s is drawn with probability
    rate(s) / sum(rates) * 1 / |types(s)| * inv(k) / sum(inv) * min(rows(k, t), cap(s)) / sum_k' min(rows(k', t), cap(s))
where the sums run over what the source holds, and inv(k) is 0.3 for an input-inversion task, else 1.

Exports. Open-Orca/FLAN (`{submix}_{type}_data/part.N.parquet`, ~378M rows) and SirNeural/flan_v2
(`{submix}_{zs,fs}_{opt,noopt}_train.jsonl.gz`) hold the full generation, before this mixing. The
DataProvenanceInitiative (formerly conceptofmind) `*_submix_original` exports are its output: flan2021 has
5,362,361 rows, close to the ~6.1M its capped rates sum to, against ~175M uncapped. chiayewken/flan-v2
(23.2M rows over all submixes, against ~378M in the full generation) is taken to be mixed as well: its size
can only come from capped sampling (an inference: its card says nothing). Drawing from a mixed export keeps
its distribution; capping it again would mix FLAN twice.
"""

from __future__ import annotations

from collections import Counter

FLAN2022_TASK_CAPS = {"Flan2021": 30_000, "P3": 20_000, "NIv2": 5_000, "CoT": 100_000, "Dialog": 200_000}
SUBMIX_RATES = {"Flan2021": 0.40, "P3": 0.32, "NIv2": 0.20, "CoT": 0.05, "Dialog": 0.03}
ALL_TYPES = ("zs_opt", "fs_opt", "zs_noopt", "fs_noopt")
SUBMIX_TYPES = {"Flan2021": ALL_TYPES, "P3": ALL_TYPES, "NIv2": ALL_TYPES[:2], "CoT": ALL_TYPES[:2], "Dialog": ALL_TYPES[:2]}
INVERSION_RATE = 0.3  # CoT-II and Dialog-II against 1 for CoT and Dialog
INVERTED_SUBMIXES = ("CoT", "Dialog")
# Weights are apportioned as integers; this scale keeps ~15 significant digits of each float weight.
WEIGHT_SCALE = 2**50

MIXED, FULL = "mixed", "full"


def layout_kind(columns: set[str] | None, name: str) -> str | None:
    """MIXED, FULL, or None (cannot tell) for a FLAN file (or Hub id) from its columns and its name."""
    lowered = name.lower()
    if columns:
        if "_task_name" in columns:  # Open-Orca/FLAN's seqio passthrough names
            return FULL
        if "task" in columns and "task_name" not in columns:  # SirNeural/flan_v2
            return FULL
        if "task_name" in columns:  # DataProvenanceInitiative, chiayewken
            return MIXED
    if "submix_original" in lowered or "chiayewken/flan-v2" in lowered:
        return MIXED
    if "open-orca/flan" in lowered or "sirneural/flan_v2" in lowered or "philschmid/flanv2" in lowered:
        return FULL
    return None


def is_inversion(task: str) -> bool:
    """CoT-II / Dialog-II tasks: `cot_esnli_ii`, `stream_qed_ii`, `wiki_dialog_ii`, `qrecc_ii`."""
    return task.endswith("_ii") or task.endswith("_input_inversion")


def flan2022_weights(groups: list[tuple[str, str, str]], rows: list[int], caps: dict[str, int]) -> list[float]:
    """FLAN 2022's sampling weight of each (task_source, template_type, task) group, summing to 1.

    Example: Flan2021 zs_opt tasks a (50,000 rows) and b (10,000), cap 30,000, and zs_noopt task a (50,000):
    the two template types weigh 1/2 each; within zs_opt, a and b weigh 30,000 : 10,000 -> 3/8 and 1/8;
    zs_noopt a takes 1/2. A group of a type its submix does not mix (NIv2 zs_noopt) weighs 0.
    """
    capped = [min(n, caps.get(s, n)) for (s, _, _), n in zip(groups, rows)]
    mixture = Counter()  # (source, type, inverted) -> sum of capped rows
    inverted_present: dict[tuple[str, str], set[bool]] = {}
    types_present: dict[str, set[str]] = {}
    for (source, ttype, task), c in zip(groups, capped):
        if ttype not in SUBMIX_TYPES.get(source, ()) or c <= 0:
            continue
        inv = source in INVERTED_SUBMIXES and is_inversion(task)
        mixture[source, ttype, inv] += c
        inverted_present.setdefault((source, ttype), set()).add(inv)
        types_present.setdefault(source, set()).add(ttype)
    rate_total = sum(SUBMIX_RATES[s] for s in types_present)
    weights = []
    for (source, ttype, task), c in zip(groups, capped):
        inv = source in INVERTED_SUBMIXES and is_inversion(task)
        if not mixture.get((source, ttype, inv)):
            weights.append(0.0)
            continue
        parts = inverted_present[source, ttype]
        inv_share = (INVERSION_RATE if inv else 1.0) / sum(INVERSION_RATE if p else 1.0 for p in parts)
        weights.append(SUBMIX_RATES[source] / rate_total / len(types_present[source]) * inv_share * c / mixture[source, ttype, inv])
    return weights
