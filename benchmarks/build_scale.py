"""FLAN-MINI at scale: `flan-mini build` on synthetic sources of real size, with dedup, at 0.1M, 0.5M and 1.34M rows.

Generates once (cached under benchmarks/.cache/scale/, about 6 GB, several minutes) sources in the real
published layouts with realistic sizes and lengths:
- FLAN 2022 in the DataProvenanceInitiative layout, one folder per submix: Flan2021 2M rows, P3 1.5M, NIv2 2M,
  CoT 0.2M (1,700 tasks with Zipf-like sizes; zero-shot inputs 0.2-0.5 KB, few-shot 1-2 KB);
- CodeContests: 13,328 problems with ~25 solutions each (Hub Parquet, solutions as parallel lists);
- APPS: 5,000 problems with ~20 solutions each (train.jsonl, JSON in strings);
- CodeSearchNet: 300,000 functions in 3 languages (the raw jsonl.gz layout);
- GPT4-Alpaca 52,002 rows (Hub Parquet with `text`), Code-Alpaca 20,022 (JSON array);
- ShareGPT: 94,000 conversations of several KB (the V3 JSON array, ~660 MB; benchmarks/sharegpt.py's file).
Then runs the paper's recipe (recipes/flan_mini.yaml's sources and options, pointed at these files) with a
dedup stage, each size in a fresh `flan-mini build` process, and prints wall time per stage and in total,
rows per second, the peak RSS of the build process, each stage's peak RSS (the manifest's `memory`), and the peak
of the memory the build's whole process tree holds at one time (the sum of each process's PSS, sampled every
0.2 s: forked workers share pages with the build process, and PSS charges each shared page once in total).

Each run is compared with the previous figures for its size and workers in benchmarks/build_scale_previous.json
(committed; where and how each was measured is recorded with it): a "x previous" line per run gives the ratio of
every stage's time and peak. `--save-previous` replaces those figures with this run's.

    python benchmarks/build_scale.py                     # 0.1M, 0.5M and 1.34M rows, 2 workers
    python benchmarks/build_scale.py --sizes 1.34 --workers 1 2   # output identical for both (checked)
    python benchmarks/build_scale.py --sizes 1.34 --save-previous  # record this run as the figures to beat
    python benchmarks/build_scale.py --sizes 1.34 --cold  # every build with an empty parse cache

ShareGPT's parse (about 50 s of tokenising on 2 cores) is cached per machine (`FLAN_MINI_CACHE`): without `--cold`
the first build pays it and later ones read the cache, so the line above the table says which.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.proc_memory import proc_kib

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "scale"
PAPER = 1_340_153
PREVIOUS = ROOT / "benchmarks" / "build_scale_previous.json"
STAGES = ["select", "render", "dedup", "decontaminate", "pick", "shuffle", "write", "reports", "card"]

FLAN = {  # recipe source -> (task_source, rows)
    "flan2021": ("Flan2021", 2_000_000),
    "p3": ("P3", 1_500_000),
    "niv2": ("NIv2", 2_000_000),
    "cot": ("CoT", 200_000),
}


class Text:
    """Fast synthetic text: random slices of a large pool of pseudo-words."""

    def __init__(self, seed: int, size: int = 32 << 20):
        self.rng = np.random.default_rng(seed)
        syllables = ["ka", "lo", "mi", "tra", "ven", "sol", "der", "ni", "qu", "bo", "pel", "sta", "ri", "um", "gho", "fa"]
        words = ["".join(self.rng.choice(syllables, self.rng.integers(1, 4))) for _ in range(5000)]
        self.pool = " ".join(words[i] for i in self.rng.integers(0, len(words), size // 5))[:size]

    def __call__(self, low: int, high: int) -> str:
        n = int(self.rng.integers(low, high))
        start = int(self.rng.integers(0, len(self.pool) - n))
        return self.pool[start : start + n].strip() or "x"


def _done(folder: Path) -> bool:
    return (folder / ".done").exists()


def _mark(folder: Path) -> None:
    (folder / ".done").write_text("ok")
    print(f"  generated {folder.relative_to(CACHE)}", file=sys.stderr, flush=True)


def generate_flan() -> None:
    import benchmarks.select as flan_source  # the selection benchmark's generator (DPI layout)

    for seed, (name, (task_source, rows)) in enumerate(FLAN.items()):
        folder = CACHE / f"flan_{name}" / "data"
        if not (folder / "done.json").exists():
            files = math.ceil(rows / 500_000)
            flan_source.generate(folder, files=files, rows_per_file=rows // files, task_sources=(task_source,), seed=100 + seed)
            print(f"  generated flan_{name}", file=sys.stderr, flush=True)


def generate_code_contests(problems: int = 13_328) -> None:
    from tests.fixtures.formats import code_contests_row, write_code_contests

    folder = CACHE / "code_contests"
    if _done(folder):
        return
    text = Text(7)
    rng = text.rng
    for part, start in enumerate(range(0, problems, 2000)):
        rows = []
        for i in range(start, min(problems, start + 2000)):
            count = int(rng.poisson(25))
            languages = rng.choice([1, 2, 3, 4], count, p=[0.1, 0.4, 0.4, 0.1]).tolist()
            solutions = [(lang, "import sys\n" + text(300, 1500)) for lang in languages]
            rows.append(code_contests_row(f"{i}_A. Problem {i}", text(800, 3000), solutions,
                                          public_tests=[(text(5, 60) + "\n", text(2, 20) + "\n")]))
        write_code_contests(folder, rows, shard_name=f"train-{part:05d}-of-00007.parquet", row_group_size=500)
    _mark(folder)


def generate_apps(problems: int = 5_000) -> None:
    from tests.fixtures.formats import apps_row, write_apps_jsonl

    folder = CACHE / "apps"
    if _done(folder):
        return
    text = Text(8)
    rows = []
    for i in range(problems):
        solutions = [text(200, 1200) for _ in range(int(text.rng.poisson(20)))]
        call_based = i % 10 == 0
        io = {"inputs": [[1, 2]], "outputs": [3], "fn_name": "solve"} if call_based else {"inputs": ["1\n"], "outputs": ["1\n"]}
        rows.append(apps_row(i, text(600, 2500), solutions, io, starter_code="def solve(a, b):" if call_based else ""))
    write_apps_jsonl(folder / "train.jsonl", rows)
    _mark(folder)


def generate_code_search_net(functions: int = 300_000) -> None:
    from tests.fixtures.formats import csn_row, write_csn_jsonl

    folder = CACHE / "code_search_net"
    if _done(folder):
        return
    text = Text(9)
    for language in ("python", "java", "go"):
        for part in range(functions // 3 // 50_000):
            rows = []
            for i in range(50_000):
                doc = text(40, 300)
                name = f"f{part}_{i}"
                if language == "python":
                    code = f'def {name}(value):\n    """{doc}"""\n    # {text(10, 60)}\n    return {text(40, 400)!r}\n'
                else:
                    code = f"/** {doc} */\nfunc {name}(value int) int {{\n    // {text(10, 60)}\n    return {len(doc)}\n}}\n"
                rows.append(csn_row(language, "owner/repo", f"src/{name}.x", name, code, doc, "train"))
            write_csn_jsonl(folder, language, "train", rows, index=part)
    _mark(folder)


def generate_alpaca() -> None:
    from tests.fixtures.formats import write_alpaca_json, write_alpaca_parquet

    folder = CACHE / "alpaca"
    if _done(folder):
        return
    text = Text(10)
    rows = lambda count: [{"instruction": text(30, 200), "input": text(20, 300) if i % 5 < 2 else "",  # noqa: E731
                           "output": text(100, 1500)} for i in range(count)]
    write_alpaca_parquet(folder / "gpt4", rows(52_002))
    write_alpaca_json(folder / "code" / "code_alpaca_20k.json", rows(20_022))
    _mark(folder)


def generate_sharegpt() -> Path:
    import benchmarks.sharegpt as sharegpt_source

    sharegpt_source.generate()
    sharegpt_source.train_tokenizer()
    return sharegpt_source.FILE


def write_recipe(scale: float, workers: int, sharegpt_file: Path, tokenizer: Path) -> Path:
    """recipes/flan_mini.yaml's sources and options, pointed at the synthetic files, n scaled, with dedup; token
    budgets counted with benchmarks/sharegpt.py's offline BPE tokenizer (the recipe's Hub tokenizers need a network)."""
    recipe = yaml.safe_load((ROOT / "recipes" / "flan_mini.yaml").read_text())
    local = {
        "flan2021": {"path": str(CACHE / "flan_flan2021"), "data_files": "data/*.parquet"},
        "p3": {"path": str(CACHE / "flan_p3"), "data_files": "data/*.parquet"},
        "niv2": {"path": str(CACHE / "flan_niv2"), "data_files": "data/*.parquet"},
        "cot": {"path": str(CACHE / "flan_cot"), "data_files": "data/*.parquet"},
        "code_search": {"path": str(CACHE / "code_search_net"), "data_files": None, "revision": None},
        "code_contests": {"path": str(CACHE / "code_contests"), "data_files": "data/train-*.parquet"},
        "apps": {"path": str(CACHE / "apps"), "data_files": "train.jsonl"},
        "gpt4_alpaca": {"path": str(CACHE / "alpaca" / "gpt4"), "data_files": "data/*.parquet"},
        "code_alpaca": {"path": str(CACHE / "alpaca" / "code" / "code_alpaca_20k.json"), "data_files": None},
        "sharegpt": {"path": str(sharegpt_file), "data_files": None},
    }
    for source in recipe["sources"]:
        source.update(local[source["name"]])
        for key in [k for k, v in source.items() if v is None]:
            del source[key]
        source["n"] = max(1, round(source["n"] * scale))
        source["max_reject_rate"] = 0.2
        for option in ("fewshot", "split_conversations"):
            if isinstance(source.get(option), dict) and "tokenizer" in source[option]:
                source[option]["tokenizer"] = str(tokenizer)
        if source["name"] in ("gpt4_alpaca", "code_alpaca"):
            # Taken whole in the paper's recipe: nothing can replace the rows dedup removes.
            source["accept_shortfall"] = True
    recipe["dedup"] = {"threshold": 0.8, "num_perm": 128, "oversample": 0.05, "workers": workers}
    recipe["output"] = {"shard_size": "256MB"}
    path = CACHE / f"recipe-{scale:.4f}-{workers}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


class TreeMemory:
    """The peak, over 0.2 s samples, of the summed PSS of a process and all its descendants (forked workers)."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psutil

        while not self.stop.wait(0.2):
            try:
                pids = [self.root.pid] + [child.pid for child in self.root.children(recursive=True)]
            except psutil.Error:  # the build has ended
                return
            self.peak = max(self.peak, sum(proc_kib(f"/proc/{pid}/smaps_rollup", ("Pss",)) for pid in pids) * 1024)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.peak


def run(recipe: Path, out: Path, workers: int, cold: bool) -> dict:
    """One `flan-mini build` in a fresh process: its wall time, peak RSS, its process tree's peak PSS and the
    manifest's stage times. `cold`: with an empty parse cache of its own (deleted afterwards)."""
    if out.exists():
        shutil.rmtree(out)
    environment = dict(os.environ)
    empty_cache = Path(tempfile.mkdtemp(prefix="parse-cache-", dir=CACHE)) if cold else None
    if empty_cache is not None:
        environment["FLAN_MINI_CACHE"] = str(empty_cache)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    command = [sys.executable, "-m", "flan_mini", "build", str(recipe), "--out", str(out), "--workers", str(workers), "-q"]
    build = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    tree = TreeMemory(build.pid)
    _, stderr = build.communicate()
    wall = time.perf_counter() - start
    tree_peak = tree.finish()
    if empty_cache is not None:
        shutil.rmtree(empty_cache, ignore_errors=True)
    if build.returncode:
        raise SystemExit(f"build failed:\n{stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    manifest = json.loads((out / "manifest.json").read_text())
    return {"rows": manifest["output"]["rows"], "wall": wall, "peak_mib": max(peak, before) / 1024,
            "tree_pss_mib": tree_peak / 2**20,
            "stages": manifest["stages"], "shards": [s["sha256"] for s in manifest["output"]["shards"]],
            "stage_peak_mib": manifest.get("memory", {}).get("peak_rss_mib", {}),
            "dedup": (manifest.get("dedup") or {}).get("exact", 0) + (manifest.get("dedup") or {}).get("near", 0)}


def _key(size: float, workers: int) -> str:
    return f"{size}M rows, {workers} workers"


def _ratio(now, before):
    return now / before if now is not None and before else None


def _row(values: dict, spec: str) -> str:
    """One figure per stage in STAGES order, blank for a stage that did not run."""
    return " ".join(f"{format(values[s], spec):>8}" if values.get(s) is not None else f"{'':>8}" for s in STAGES)


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "an unknown commit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.5, 1.34], help="output sizes, millions of rows")
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="--workers values to run each size with")
    parser.add_argument("--cold", action="store_true", help="run every build with an empty parse cache (ShareGPT parsed afresh)")
    parser.add_argument("--keep", action="store_true", help="keep the built folders under benchmarks/.cache/scale/")
    parser.add_argument("--save-previous", action="store_true",
                        help=f"record this run's figures in {PREVIOUS.name} as the ones the next run compares with")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generate_flan()
    generate_code_contests()
    generate_apps()
    generate_code_search_net()
    generate_alpaca()
    sharegpt_file = generate_sharegpt()
    from benchmarks.sharegpt import TOKENIZER as tokenizer
    print(f"sources ready in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    results = []
    for size in args.sizes:
        scale = 1.0 if abs(size - 1.34) < 1e-9 else size * 1e6 / PAPER
        for workers in args.workers:
            out = CACHE / f"out-{size}-{workers}"
            result = run(write_recipe(scale, workers, sharegpt_file, tokenizer), out, workers, args.cold)
            results.append((size, workers, result))
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
    previous = json.loads(PREVIOUS.read_text()) if PREVIOUS.exists() else {}
    print("parse cache: empty for every build (--cold)" if args.cold else
          "parse cache: the machine's (the first build that parses ShareGPT fills it; later ones read it)")
    print("seconds per stage, and the build process's peak RSS (MiB) per stage; tree PSS: the peak of all its processes together")
    print(f"{'rows out':>10} {'workers':>7} {'':>8} " + " ".join(f"{s[:8]:>8}" for s in STAGES)
          + f" {'total s':>8} {'rows/s':>8} {'peak RSS MiB':>12} {'tree PSS MiB':>12} {'dups':>6}")
    for size, workers, r in results:
        print(f"{r['rows']:>10,} {workers:>7} {'seconds':>8} " + _row(r["stages"], ".1f")
              + f" {r['wall']:>8.1f} {r['rows'] / r['wall']:>8,.0f} {r['peak_mib']:>12,.0f}"
              + f" {r['tree_pss_mib']:>12,.0f} {r['dedup']:>6,}")
        if r["stage_peak_mib"]:
            print(f"{'':>10} {'':>7} {'peak MiB':>8} " + _row(r["stage_peak_mib"], ",.0f"))
        if (before := previous.get(_key(size, workers))) is not None:
            times = {s: _ratio(r["stages"].get(s), before["stages"].get(s)) for s in STAGES}
            print(f"{'':>10} {'':>7} {'x prev s':>8} " + _row(times, ".2f") + f" {r['wall'] / before['wall']:>8.2f}"
                  f" {'':>8} {r['peak_mib'] / before['peak_mib']:>12.2f}"
                  + (f" {r['tree_pss_mib'] / before['tree_pss_mib']:>12.2f}" if before.get("tree_pss_mib") else ""))
            if r["stage_peak_mib"] and before.get("stage_peak_mib"):
                peaks = {s: _ratio(r["stage_peak_mib"].get(s), before["stage_peak_mib"].get(s)) for s in STAGES}
                print(f"{'':>10} {'':>7} {'x prev M':>8} " + _row(peaks, ".2f"))
            print(f"{'':>10} {'':>7} previous: {before['measured']}")
    if args.save_previous:
        for size, workers, r in results:
            previous[_key(size, workers)] = {
                "wall": round(r["wall"], 1), "peak_mib": round(r["peak_mib"]), "tree_pss_mib": round(r["tree_pss_mib"]),
                "stages": {s: round(v, 1) for s, v in r["stages"].items()}, "stage_peak_mib": r["stage_peak_mib"],
                "measured": f"build_scale.py --sizes {size} --workers {workers} at {_commit()}, "
                            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            }
        PREVIOUS.write_text(json.dumps(previous, indent=2) + "\n")
        print(f"saved as the previous figures: {PREVIOUS.relative_to(ROOT)}")
    by_size: dict = {}
    for size, workers, r in results:
        by_size.setdefault(size, set()).add(tuple(r["shards"]))
    for size, digests in by_size.items():
        if len(args.workers) > 1:
            print(f"{size}M rows: output {'identical' if len(digests) == 1 else 'DIFFERS'} across workers {args.workers}")
        for shards in sorted(digests):  # to compare builds across code versions
            print(f"{size}M rows: shard sha256 " + " ".join(shards))


if __name__ == "__main__":
    main()
