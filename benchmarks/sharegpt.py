"""ShareGPT benchmark: parse + clean + split a ShareGPT_V3-sized JSON array, then select FLAN-MINI's 60K pieces.

Generates (once, cached under benchmarks/.cache/) a synthetic file shaped like
ShareGPT_V3_unfiltered_cleaned_split.json: ~94K records, ~670 MB, one JSON array written with
indent 2 and non-ASCII characters as UTF-8. Turns follow the real file's rough shape (1-12
exchanges, questions of ~300 characters, answers of ~1.5 KB), with its quirks at low rates: CJK
conversations, emoji and curly quotes, code fences (some with "Copy code" artefacts), raw HTML
replies, "2 / 2" counters, leading gpt / trailing human turns, empty turns, error replies,
repeated first exchanges, duplicate ids.

Each measurement runs in a fresh process and reports wall time and peak RSS:
- `json.load`: the plain standard-library parse of the whole file, for reference;
- `adapter`: the adapter's streamed parse + cleaning + splitting into its cached Arrow table;
- `select`: `select_source` for n pieces (scan, then fetch), which parses once and reuses the table.

`adapter` and `select` run twice by default (`--cache cold warm`): with an empty parse cache (the parse is
done and written to it, sources/parse_cache.py) and then with the entry the first run left (read memory-mapped).
The cache is a temporary folder, removed at the end.

    python benchmarks/sharegpt.py                      # all three, n = 60,000, split at 8192 chars
    python benchmarks/sharegpt.py --only adapter select --max-length 2048
    python benchmarks/sharegpt.py --only adapter --tokens --max-length 1280   # the paper recipe's split

`--tokens` counts the budget in tokens of a byte-level BPE tokenizer trained on the synthetic text (8,000
tokens, cached beside the file; a stand-in for LLaMA's, no download), in the Vicuna v1.1 format with its
system prompt, as recipes/flan_mini.yaml does.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: see benchmarks/_path.py)

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CACHE = ROOT / "benchmarks" / ".cache" / "sharegpt"
FILE = CACHE / "ShareGPT_V3_synthetic.json"
RECORDS = 94_000


def _pool(rng: random.Random, size: int) -> str:
    syllables = ["ka", "lo", "mi", "tra", "ven", "sol", "der", "ni", "qu", "bo", "pel", "sta", "ri", "um", "the", "and"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(5000)]
    text = []
    total = 0
    while total < size:
        sentence = " ".join(rng.choices(words, k=rng.randint(5, 20))).capitalize() + ". "
        if rng.random() < 0.1:
            sentence += "\n\n"
        text.append(sentence)
        total += len(sentence)
    return "".join(text)


def _length(rng: random.Random, median: float) -> int:
    return max(2, min(int(rng.lognormvariate(0, 0.9) * median), 30_000))


def generate() -> None:
    """Write the cached file if it is not there yet (about a minute)."""
    if FILE.exists():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = random.Random(53_000)
    pool = _pool(rng, 32 << 20)
    cjk = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(200_000))

    def text(median: float) -> str:
        n = _length(rng, median)
        start = rng.randrange(0, len(pool) - n)
        value = pool[start : start + n]
        r = rng.random()
        if r < 0.12:
            value = value.replace(". ", "\u2019s \u201cquoted\u201d \U0001F600 ", 2)
        elif r < 0.14:
            value = value + "\n\n```python\ndef f(x):\n    return x * 2\n```\n"
        elif r < 0.145:
            value = "Here:\n\n```\npythonCopy codeprint('hi')\n```"
        return value

    records = []
    for index in range(RECORDS):
        exchanges = min(12, 1 + int(rng.expovariate(1 / 2.3)))
        if rng.random() < 0.03:  # a CJK conversation
            values = []
            for _ in range(2 * exchanges):
                n = _length(rng, 150)
                start = rng.randrange(0, len(cjk) - n)
                values.append(cjk[start : start + n])
        else:
            values = [text(265 if i % 2 == 0 else 1330) for i in range(2 * exchanges)]
        turns = [{"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)]
        r = rng.random()
        if r < 0.01:
            turns.insert(0, {"from": "gpt", "value": "Hello! How can I help you today?"})
        elif r < 0.02:
            turns.append({"from": "human", "value": text(100)})
        elif r < 0.025:
            turns[-1]["value"] = ""
        elif r < 0.027:
            turns[1]["value"] = "Too many requests in 1 hour. Try again later."
        elif r < 0.032:
            turns[1]["value"] = '<div class="markdown prose w-full break-words"><p>' + text(800) + "</p><ul><li>a</li><li>b</li></ul></div>"
        elif r < 0.037:
            turns[0]["value"] = "1 / 1" + turns[0]["value"]
        elif r < 0.047 and records:  # repeats an earlier conversation's first exchange
            turns[:2] = [dict(t) for t in rng.choice(records)["conversations"][:2]]
        record_id = f"{rng.getrandbits(40):010x}_0" if rng.random() > 0.003 or not records else records[-1]["id"]
        records.append({"id": record_id, "conversations": turns})
    with open(FILE, "w", encoding="utf-8") as handle:
        json.dump(records, handle, indent=2, ensure_ascii=False)
    print(f"  generated {FILE.name}: {len(records):,} records, {FILE.stat().st_size / 1e6:,.0f} MB", file=sys.stderr, flush=True)


TOKENIZER = CACHE / "bpe-8000" / "tokenizer.json"


def train_tokenizer() -> None:
    """A byte-level BPE tokenizer with LLaMA's special tokens, trained on the file's first 8 MB (once)."""
    if TOKENIZER.exists():
        return
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    with open(FILE, encoding="utf-8") as handle:
        sample = handle.read(8 << 20)
    lines = [sample[i : i + 4096] for i in range(0, len(sample), 4096)]
    tokenizer.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=8000, special_tokens=["<unk>", "<s>", "</s>"],
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    TOKENIZER.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(TOKENIZER))


def table_digest(table) -> str:
    """A short hash of what the parse decided (every row's ordinal, piece hash, reject reason, first turn), to
    compare runs and versions."""
    import hashlib

    digest = hashlib.sha256()
    for name in ["_ordinal", "content_hash", "_reject", "first_turn"]:
        digest.update(repr(table.column(name).to_pylist()).encode())
    return digest.hexdigest()[:16]


def measure(kind: str, n: int, max_length: int | None, tokens: bool = False) -> dict:
    """Run in a fresh process; return wall time and peak RSS of one kind of work."""
    from flan_mini.sources.files import resolve_local
    from flan_mini.sources.sharegpt import ShareGPTAdapter, ShareGPTConfig

    result: dict = {"kind": kind}
    start = time.perf_counter()
    if kind == "json.load":
        with open(FILE, "rb") as handle:
            data = json.load(handle)
        result["records"] = len(data)
    else:
        split = {"max_length": max_length}
        if tokens:
            split.update(unit="tokens", tokenizer=str(TOKENIZER), chat_format="vicuna_v1.1")
        config = ShareGPTConfig(name="sharegpt", adapter="sharegpt", path=str(FILE), n=n,
                                split_conversations=split, max_reject_rate=1.0)
        adapter = ShareGPTAdapter(config)
        files = resolve_local(str(FILE), None, "train", CACHE, adapter.extensions).files
        if kind == "adapter":
            table, stats = adapter.parsed(files[0])
            result["table_mib"] = table.nbytes / 2**20
            result["rows"] = table.num_rows
            result["stats"] = dict(sorted(stats.items()))
            result["digest"] = table_digest(table)
            parts = table.column("part").to_pylist()
            result["pieces"] = len(parts) - parts.count(None)
            result["kept"], result["split"] = parts.count(0), parts.count(1)
        else:
            from flan_mini.sample import select_source

            selection = select_source(adapter, files, seed=1234)
            result["rows"] = selection.counts.rows_read
            result["selected"] = selection.table.num_rows
            result["scan_seconds"] = selection.counts.scan_seconds
            result["fetch_seconds"] = selection.counts.fetch_seconds
            result["rejected"] = dict(selection.counts.rejected)
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["json.load", "adapter", "select"], default=["json.load", "adapter", "select"])
    parser.add_argument("--n", type=int, default=60_000, help="pieces to select (FLAN-MINI takes 60K)")
    parser.add_argument("--max-length", type=int, default=8192, help="split budget in characters (0: no splitting)")
    parser.add_argument("--tokens", action="store_true", help="budget in tokens, Vicuna v1.1 format (see above)")
    parser.add_argument("--cache", nargs="+", choices=["cold", "warm"], default=["cold", "warm"],
                        help="parse cache states to measure adapter/select with (cold: empty; warm: as the last run left it)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    max_length = args.max_length or None
    if args.child:
        print(json.dumps(measure(args.child, args.n, max_length, args.tokens)))
        return
    generate()
    if args.tokens:
        train_tokenizer()
    size_mb = FILE.stat().st_size / 1e6
    unit = "tokens (vicuna_v1.1 format)" if args.tokens else "characters"
    print(f"file: {FILE.name}, {size_mb:,.0f} MB, {RECORDS:,} records; split at {max_length or 'no'} {unit}; n = {args.n:,}")
    print(f"{'work':<10} {'cache':<6} {'seconds':>8} {'MB/s':>6} {'peak RSS MiB':>13}  details")
    with tempfile.TemporaryDirectory(prefix="flan-mini-bench-cache-") as folder:
        for kind in args.only:
            for state in ["-"] if kind == "json.load" else args.cache:
                _run(kind, state, args, size_mb, folder)


def _run(kind: str, state: str, args, size_mb: float, folder: str) -> None:
    env = dict(os.environ, FLAN_MINI_CACHE=folder)
    if state == "cold":
        for entry in Path(folder).glob("parsed/*.arrow"):
            entry.unlink()
    command = [sys.executable, __file__, "--child", kind, "--n", str(args.n), "--max-length", str(args.max_length),
               *(["--tokens"] if args.tokens else [])]
    r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1])
    if kind == "json.load":
        details = f"{r['records']:,} records"
    elif kind == "adapter":
        details = (f"{r['rows']:,} rows ({r['pieces']:,} pieces of {r['kept']:,} conversations, {r['split']:,} split, "
                   f"repeats included); table {r['table_mib']:,.0f} MiB, digest {r['digest']}")
    else:
        details = (f"scan {r['scan_seconds']:.1f}s (parse included), fetch {r['fetch_seconds']:.2f}s, "
                   f"{r['selected']:,} selected of {r['rows']:,} rows; rejected {sum(r['rejected'].values()):,}")
    print(f"{kind:<10} {state:<6} {r['seconds']:>8.1f} {size_mb / r['seconds']:>6.0f} {r['peak_rss_mib']:>13,.0f}  {details}",
          flush=True)


if __name__ == "__main__":
    main()
