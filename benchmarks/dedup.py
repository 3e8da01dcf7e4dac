"""Benchmark: flan-mini's MinHash LSH dedup against datasketch and rensa on a planted corpus.

    python benchmarks/dedup.py                      # 100k and 1M documents; flan-mini on 1 and 2 workers
    python benchmarks/dedup.py --sizes 20000 --workers 1 2 --methods flan-mini rensa --repeat 3

rensa (a Rust MinHash wheel) is a peer, not a dependency: `pip install rensa` into the venv to include it
(it is skipped, with a note, when missing).

For each size it generates a synthetic corpus of ~500-character documents (Zipf-distributed random words,
split into a human and a gpt turn), 10% of them planted near-duplicates of another document with a known
Jaccard similarity, computed exactly on the same shingles (the same normalisation, word 5-grams, Python
sets). Every method then runs in its own subprocess, from the Parquet file to the set of removed rows, and
the script prints documents per second end to end (the fastest of --repeat runs, taken round-robin), peak memory (the main process's RSS, and PSS summed over it and its workers,
sampled every 100 ms; see PeakMemory), and the quality of the removed documents against the truth (a planted
copy must go when its exact Jaccard to the earlier document is >= threshold and stay otherwise; every
unplanted document must stay):
- precision / recall: pairs within 0.1 of the threshold left out of the score (the figures of earlier runs);
- near recall: of the copies with exact Jaccard in [threshold, threshold + 0.1), the share removed -- the
  pairs real near-duplicates (templated rows, lightly edited answers) are made of;
- strict precision: every removed document scored, none left out: a copy at Jaccard 0.79 removed is an error.

Methods:
- flan-mini: ``dedup_table`` in its default exact mode (bands for recall, pairs verified on the exact
  Jaccard of the shingle sets), on each of --workers; flan-mini-datasketch: its datasketch-parity mode.
- datasketch, as its documentation shows it: per document, Python word 5-grams encoded to bytes,
  ``MinHash.bulk`` (num_perm, seed 1, its default SHA-1 hashing), a ``MinHashLSH`` at the threshold (its
  optimiser's bands x rows) filled in an insertion session, a ``query`` per document, candidates kept when
  ``MinHash.jaccard`` >= threshold, and a union-find whose root is the earliest row.
- rensa: ``RMinHashDeduplicator`` (LSH on, estimated Jaccard >= threshold, rows added in order, a row that
  matches an added one is removed) fed the same Python word 5-grams in batches of 10k, with its own band
  choice (rensa) and with 16 bands, the count flan-mini's exact mode uses (rensa-16).
The peers get the same normalised text as flan-mini (vectorised, so they are, if anything, flattered).
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]

from flan_mini.textnorm import TextNorm, normalize  # noqa: E402

NGRAM = 5
PLANTED_SHARE = 0.10
PROMPT_WORDS = 15
METHODS = ["flan-mini", "flan-mini-datasketch", "rensa", "rensa-16", "datasketch"]


# ---------------------------------------------------------------- corpus


def make_corpus(n: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    """The corpus table (OUTPUT_SCHEMA columns + _order) and the planted pairs (n_pairs x 2 rows, earlier first)."""
    rng = np.random.default_rng(seed)
    vocab_size = 50_000
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 10, vocab_size)
    vocab = np.array(["".join(letters[rng.integers(0, 26, k)]) for k in lengths], dtype=object)
    weights = 1.0 / np.arange(1, vocab_size + 1)
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0

    def draw(size: int) -> np.ndarray:  # Zipf-distributed word ids
        return np.searchsorted(cdf, rng.random(size), side="right")

    n_pairs = int(n * PLANTED_SHARE)
    n_base = n - n_pairs
    words_per_doc = rng.integers(70, 96, n_base)
    word_ids = draw(int(words_per_doc.sum()))
    starts = np.concatenate([[0], np.cumsum(words_per_doc)])
    docs = [word_ids[starts[i] : starts[i + 1]] for i in range(n_base)]

    # Planted copies: a target Jaccard J drawn uniformly from [0.15, 1), or (15%) an exact duplicate after
    # normalisation (same words, different case and punctuation). Replacing a block of m words destroys about
    # m + 4 of the ~80 word 5-grams, so blocks are added until roughly S(1-J)/(1+J) shingles are gone; the
    # exact Jaccard is computed afterwards, so the targets only need to spread the pairs, not be exact.
    bases = rng.choice(n_base, size=n_pairs, replace=False)
    exact = rng.random(n_pairs) < 0.15
    targets = rng.uniform(0.15, 1.0, n_pairs)
    copies = []
    for base, is_exact, target in zip(bases, exact, targets):
        words = docs[base].copy()
        if not is_exact:
            damage = (len(words) - NGRAM + 1) * (1 - target) / (1 + target)
            done = 0.0
            while done < damage or done == 0:
                size = int(rng.integers(1, 9))
                start = int(rng.integers(0, len(words) - size + 1))
                words[start : start + size] = draw(size)
                done += size + NGRAM - 1
        copies.append(words)
    all_docs = docs + copies
    styles = np.concatenate([np.zeros(n_base, dtype=np.int8), np.where(exact, 2, 1).astype(np.int8)])

    # Shuffle positions; _order = position, so the earlier row of a pair is the one a keeper policy keeps.
    position = rng.permutation(n)
    order = np.empty(n, dtype=np.int64)
    order[position] = np.arange(n)
    prompts, responses = [None] * n, [None] * n
    for index in range(n):
        words = vocab[all_docs[index]]
        text = _render(words, styles[index], rng)
        prompts[position[index]] = text[0]
        responses[position[index]] = text[1]
    pairs = np.stack([position[n_base + np.arange(n_pairs)], position[bases]], axis=1)
    pairs.sort(axis=1)
    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    values = pa.array([v for pair in zip(prompts, responses) for v in pair], pa.string())
    roles = pa.array(["human", "gpt"] * n, pa.string())
    turns = pa.StructArray.from_arrays([roles, values], fields=list(turn))
    conversations = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), turns)
    table = pa.table(
        {
            "id": pa.array([f"doc-{i:08d}" for i in range(n)], pa.string()),
            "source": pa.array(["synthetic"] * n, pa.string()),
            "conversations": conversations,
            "recipe_source": pa.array(["synthetic"] * n, pa.string()),
            "template_id": pa.nulls(n, pa.string()),
            "template_type": pa.nulls(n, pa.string()),
            "num_shots": pa.nulls(n, pa.int32()),
            "_order": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    return table, pairs


def _render(words: np.ndarray, style: int, rng) -> tuple[str, str]:
    """A sentence-like prompt and response; style 2 changes case and punctuation only."""
    words = list(words)
    if style == 2:
        words = [w.upper() if i % 3 == 0 else w for i, w in enumerate(words)]
        words[-1] = words[-1] + "!"
    text = " ".join(words[:PROMPT_WORDS]).capitalize() + "?", " ".join(words[PROMPT_WORDS:]).capitalize() + "."
    return text


def exact_jaccard(table: pa.Table, pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard of each pair's word 5-gram sets, on the text flan-mini compares (normalised the same way)."""
    from flan_mini.dedup.texts import TextSpec, compared_text

    rows = np.unique(pairs)
    text = normalize(compared_text(table.take(pa.array(rows)), TextSpec()), TextNorm()).to_pylist()
    shingles = {row: _shingles(t) for row, t in zip(rows.tolist(), text)}
    out = np.empty(len(pairs))
    for index, (a, b) in enumerate(pairs.tolist()):
        sa, sb = shingles[a], shingles[b]
        out[index] = len(sa & sb) / len(sa | sb)
    return out


def _shingles(text: str) -> set:
    tokens = text.split()
    if len(tokens) < NGRAM:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + NGRAM]) for i in range(len(tokens) - NGRAM + 1)}


# ---------------------------------------------------------------- methods (each in its own process)


def run_flan_mini(corpus: Path, threshold: float, num_perm: int, workers: int, mode: str) -> tuple[np.ndarray, dict]:
    from flan_mini.dedup.config import DedupConfig
    from flan_mini.dedup.stage import dedup_table

    table = pq.read_table(corpus)
    result = dedup_table(table, DedupConfig(threshold=threshold, num_perm=num_perm, mode=mode), workers=workers)
    removed = np.flatnonzero(~result.keep.to_numpy(zero_copy_only=False))
    return removed, {k: round(v, 2) for k, v in result.seconds.items()}


def run_rensa(corpus: Path, threshold: float, num_perm: int, bands: int | None) -> tuple[np.ndarray, dict]:
    import rensa

    from flan_mini.dedup.texts import TextSpec, compared_text

    started = time.perf_counter()
    table = pq.read_table(corpus)
    texts = normalize(compared_text(table, TextSpec()), TextNorm()).to_pylist()
    del table
    dedup = rensa.RMinHashDeduplicator(threshold=threshold, num_perm=num_perm, use_lsh=True, num_bands=bands, seed=1)
    added = []
    batch = 10_000
    for lo in range(0, len(texts), batch):
        entries = [(str(key), list(_shingles(text))) for key, text in enumerate(texts[lo : lo + batch], lo)]
        added.extend(dedup.add_pairs(entries))
    removed = np.flatnonzero(~np.asarray(added, dtype=bool))
    return removed, {"all": round(time.perf_counter() - started, 2)}


def run_datasketch(corpus: Path, threshold: float, num_perm: int) -> tuple[np.ndarray, dict]:
    from datasketch import MinHash, MinHashLSH

    from flan_mini.dedup.texts import TextSpec, compared_text

    started = time.perf_counter()
    table = pq.read_table(corpus)
    texts = normalize(compared_text(table, TextSpec()), TextNorm()).to_pylist()
    del table
    shingled = ([s.encode("utf-8") for s in _shingles(t)] for t in texts)
    minhashes = MinHash.bulk(shingled, num_perm=num_perm, seed=1)
    del texts
    sketched = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    with lsh.insertion_session() as session:
        for key, minhash in enumerate(minhashes):
            session.insert(key, minhash, check_duplication=False)
    parent = list(range(len(minhashes)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for key, minhash in enumerate(minhashes):
        for other in lsh.query(minhash):
            if other > key and minhash.jaccard(minhashes[other]) >= threshold:
                a, b = find(key), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    removed = np.array([i for i in range(len(parent)) if find(i) != i], dtype=np.int64)
    done = time.perf_counter()
    return removed, {"sketch": round(sketched - started, 2), "lsh+cluster": round(done - sketched, 2)}


def _pss(pid: int) -> int | None:
    """Proportional set size in bytes (shared pages divided among the processes sharing them), or None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak of the memory of this process plus its children, sampled every 100 ms in a thread.

    Reading PSS walks a process's page tables (about 2 ms per GiB mapped, and forked workers map their
    parent's heap too): sampled every 20 ms, it took a third of the wall time of a 1M-document run on 2 workers.

    Summed RSS would count a forked worker's copy-on-write view of the parent's heap twice, so the sum is of
    PSS (Linux's smaps_rollup), which splits shared pages between the processes that share them; RSS where
    PSS is unavailable.
    """

    def __init__(self):
        import psutil

        self.process = psutil.Process()
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _size(self, process) -> int:
        pss = _pss(process.pid)
        return pss if pss is not None else process.memory_info().rss

    def _run(self):
        children, tick = [], 0
        while not self.stop.is_set():
            try:
                # Listing children scans all of /proc (about 1 ms): every 5th sample, not every one, so the
                # sampler's own CPU stays small beside the work it measures.
                if tick % 5 == 0:
                    children = self.process.children(recursive=True)
                tick += 1
                total = self._size(self.process)
                for child in children:
                    try:
                        total += self._size(child)
                    except Exception:
                        pass
                self.peak = max(self.peak, total)
            except Exception:
                pass
            self.stop.wait(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def child_main(args) -> None:
    with PeakMemory() as memory:
        started = time.perf_counter()
        if args.run == "datasketch":
            removed, parts = run_datasketch(args.corpus, args.threshold, args.num_perm)
        elif args.run.startswith("rensa"):
            bands = int(args.run.split("-")[1]) if "-" in args.run else None
            removed, parts = run_rensa(args.corpus, args.threshold, args.num_perm, bands)
        else:
            mode = "datasketch" if args.run == "flan-mini-datasketch" else "exact"
            removed, parts = run_flan_mini(args.corpus, args.threshold, args.num_perm, args.run_workers, mode)
        seconds = time.perf_counter() - started
    np.save(args.removed, removed)
    print(json.dumps({"seconds": seconds, "peak_memory": memory.peak, "parts": parts, "peak_rss_main": _peak_rss()}))


def _peak_rss() -> int:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that over exec from the
    forked parent, so a child of a big parent would report the parent's size."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------- scoring and the table


def score(removed: np.ndarray, pairs: np.ndarray, jaccard: np.ndarray, n: int, threshold: float) -> dict:
    """Precision and recall of removed documents; pairs within 0.1 of the threshold are not scored."""
    predicted = np.zeros(n, dtype=bool)
    predicted[removed] = True
    truth = np.zeros(n, dtype=bool)
    scored = np.ones(n, dtype=bool)
    ambiguous = np.abs(jaccard - threshold) < 0.1
    scored[pairs[ambiguous].ravel()] = False
    truth[pairs[~ambiguous & (jaccard >= threshold), 1]] = True  # the later row of a duplicate pair goes
    tp = int((predicted & truth & scored).sum())
    fp = int((predicted & ~truth & scored).sum())
    fn = int((~predicted & truth & scored).sum())
    # Near the threshold: the later rows of pairs with exact Jaccard in [threshold, threshold + 0.1).
    near = pairs[(jaccard >= threshold) & (jaccard < threshold + 0.1), 1]
    # Strict: every row scored; a row is rightly removed when it is the later row of a pair at or above it.
    duplicate = np.zeros(n, dtype=bool)
    duplicate[pairs[jaccard >= threshold, 1]] = True
    strict_fp = int((predicted & ~duplicate).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "near_recall": float(predicted[near].mean()) if len(near) else 1.0,
        "strict_precision": 1.0 - strict_fp / predicted.sum() if predicted.sum() else 1.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "strict_fp": strict_fp,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="flan-mini worker counts to run")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS,
                        help="methods to run (flan-mini runs once per --workers)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per method, round-robin; the fastest is reported (datasketch runs once)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the datasketch baseline")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--run-workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--removed", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        child_main(args)
        return

    print(f"machine: {os.cpu_count()} cores; threshold {args.threshold}, num_perm {args.num_perm}, word {NGRAM}-grams")
    has_rensa = importlib.util.find_spec("rensa") is not None
    if not has_rensa and any(m.startswith("rensa") for m in args.methods):
        print("rensa is not installed (pip install rensa): its rows are skipped")
    rows = []
    with tempfile.TemporaryDirectory(prefix="flan-mini-dedup-bench-") as tmp:
        for n in args.sizes:
            started = time.perf_counter()
            table, pairs = make_corpus(n, args.seed)
            jaccard = exact_jaccard(table, pairs)
            corpus = Path(tmp) / f"corpus-{n}.parquet"
            pq.write_table(table, corpus, compression="zstd")
            chars = float(np.mean(_text_lengths(table)))
            del table
            near = np.abs(jaccard - args.threshold) < 0.1
            print(
                f"\n{n:,} documents (mean {chars:.0f} chars), {len(pairs):,} planted pairs: "
                f"{int((jaccard >= args.threshold).sum()):,} at or above the threshold, {int(near.sum()):,} within 0.1 "
                f"of it (not scored); generated in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            methods = [("flan-mini", w) for w in args.workers if "flan-mini" in args.methods]
            methods += [(m, max(args.workers)) for m in ["flan-mini-datasketch"] if m in args.methods]
            methods += [(m, 1) for m in ["rensa", "rensa-16"] if m in args.methods and has_rensa]
            if not args.no_baseline and "datasketch" in args.methods:
                methods.append(("datasketch", 1))
            # Repetitions go round-robin over the methods, so a burst of load from elsewhere on the machine
            # hits them alike; each method's fastest repetition is kept (the datasketch baseline runs once).
            best: dict[tuple[str, int], dict] = {}
            for repetition in range(args.repeat):
                for method, workers in methods:
                    if method == "datasketch" and repetition:
                        continue
                    removed_path = Path(tmp) / "removed.npy"
                    command = [sys.executable, __file__, "--run", method, "--run-workers", str(workers),
                               "--corpus", str(corpus), "--removed", str(removed_path),
                               "--threshold", str(args.threshold), "--num-perm", str(args.num_perm)]
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    report = json.loads(output.strip().splitlines()[-1])
                    # CPU seconds of the run and its workers: steadier than wall time on a shared machine.
                    report["cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                    quality = score(np.load(removed_path), pairs, jaccard, n, args.threshold)
                    row = {"docs": n, "method": method, "workers": workers, **report, **quality}
                    print(_line(row), flush=True)
                    if (method, workers) not in best or row["seconds"] < best[(method, workers)]["seconds"]:
                        best[(method, workers)] = row
            rows.extend(best[key] for key in methods if key in best)
            _ratio(rows, n)
    _table(rows)
    for n in args.sizes:
        _ratio(rows, n)


def _text_lengths(table: pa.Table) -> np.ndarray:
    from flan_mini.dedup.texts import TextSpec, text_bytes

    return text_bytes(table, TextSpec())


def _line(row: dict) -> str:
    return (
        f"  {row['method']:<20} workers={row['workers']}  {row['seconds']:7.1f} s  {row['docs'] / row['seconds']:9,.0f} docs/s"
        f"  cpu {row['cpu']:6.1f} s"
        f"  peak RSS main {row['peak_rss_main'] / 2**30:5.2f} GiB, all processes {row['peak_memory'] / 2**30:5.2f} GiB"
        f"  precision {row['precision']:.4f}  recall {row['recall']:.4f}  near recall {row['near_recall']:.4f}"
        f"  strict precision {row['strict_precision']:.4f}"
        f"  (tp {row['tp']:,} fp {row['fp']:,} fn {row['fn']:,} strict fp {row['strict_fp']:,})  parts {row['parts']}"
    )


def _table(rows: list[dict]) -> None:
    print("\n| documents | method | workers | seconds | docs/s | peak RSS main (GiB) | peak all processes (GiB) "
          "| precision | recall | near recall [t, t+0.1) | strict precision | cpu s | x datasketch |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        base = [r for r in rows if r["docs"] == row["docs"] and r["method"] == "datasketch"]
        speedup = f"{base[0]['seconds'] / row['seconds']:.1f}" if base else "-"
        print(
            f"| {row['docs']:,} | {row['method']} | {row['workers']} | {row['seconds']:.1f} | "
            f"{row['docs'] / row['seconds']:,.0f} | {row['peak_rss_main'] / 2**30:.2f} | "
            f"{row['peak_memory'] / 2**30:.2f} | {row['precision']:.4f} | "
            f"{row['recall']:.4f} | {row['near_recall']:.4f} | {row['strict_precision']:.4f} | {row['cpu']:.1f} | {speedup} |"
        )


def _ratio(rows: list[dict], n: int) -> None:
    """flan-mini's fastest exact-mode run against rensa's fastest, in this run."""
    ours = [r for r in rows if r["docs"] == n and r["method"] == "flan-mini"]
    theirs = [r for r in rows if r["docs"] == n and r["method"].startswith("rensa")]
    if ours and theirs:
        best = min(ours, key=lambda r: r["seconds"])
        peer = min(theirs, key=lambda r: r["seconds"])
        print(f"{n:,} documents: flan-mini ({best['workers']} workers) {n / best['seconds']:,.0f} docs/s = "
              f"{peer['seconds'] / best['seconds']:.1f}x {peer['method']} ({n / peer['seconds']:,.0f} docs/s); "
              f"near recall {best['near_recall']:.3f} vs {peer['near_recall']:.3f}, strict precision "
              f"{best['strict_precision']:.4f} vs {peer['strict_precision']:.4f}", flush=True)


if __name__ == "__main__":
    main()
