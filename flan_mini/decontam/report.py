"""What decontamination reports: per-benchmark counts and examples (manifest, card, CLI) and the matches file."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..shards import REPORTS_DIR, file_sha256

if TYPE_CHECKING:
    from .stage import Decontaminator, ScanResult

MATCHES_FILE = "decontam_matches.parquet"


def with_flags(matches: pa.Table, *, removed: bool, written_ids: pa.Array | None) -> pa.Table:
    """The matches file's rows: MATCH_SCHEMA plus `removed` (the row was dropped) and `written` (it is in the
    output: only possible when the stage reports and the row made its source's cut)."""
    table = matches.drop_columns([c for c in ("_row",) if c in matches.column_names])
    n = table.num_rows
    if written_ids is None:
        written = pa.array(np.full(n, not removed))
    else:
        written = pc.is_in(table.column("id"), value_set=written_ids) if n else pa.array([], pa.bool_())
    return table.append_column("removed", pa.array(np.full(n, removed), pa.bool_())).append_column("written", written)


def write_matches(table: pa.Table, folder: Path) -> dict:
    """`reports/decontam_matches.parquet` in a dataset folder (outside data/); returns its manifest entry."""
    path = Path(folder) / REPORTS_DIR / MATCHES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return {"path": f"{REPORTS_DIR}/{MATCHES_FILE}", "rows": table.num_rows, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _per_source(table: pa.Table, mask=None) -> dict[str, int]:
    """Distinct rows (ids) per recipe source among the matches (optionally only where `mask`)."""
    if mask is not None:
        table = table.filter(mask)
    if not table.num_rows:
        return {}
    pairs = table.select(["recipe_source", "id"]).group_by(["recipe_source", "id"]).aggregate([])
    counts = pc.value_counts(pc.fill_null(pairs.column("recipe_source").combine_chunks(), "all")).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


def _examples(table: pa.Table, limit: int) -> list[dict]:
    """Up to `limit` matches, one per item first (the first row that matched it), then further rows."""
    if not limit or not table.num_rows:
        return []
    rows = table.select(["id", "recipe_source", "item_id", "share", "matched_ngrams", "item_ngrams", "span"]).to_pylist()
    firsts, seen = [], set()
    for position, row in enumerate(rows):
        if row["item_id"] not in seen:
            seen.add(row["item_id"])
            firsts.append(position)
    rest = sorted(set(range(len(rows))) - set(firsts))
    return [{**rows[i], "share": round(rows[i]["share"], 4)} for i in (firsts + rest)[:limit]]


def summarize(engine: Decontaminator, result: ScanResult, flagged: pa.Table, *, checked_by_source: dict | None = None) -> dict:
    """The manifest's `decontamination` block (without the matches file, added by the caller)."""
    config = engine.config
    index = engine.index
    grams = index.item_grams
    first = np.cumsum([0] + [b.items for b in engine.benchmarks])
    removed_mask = flagged.column("removed") if flagged.num_rows else None
    benchmarks = []
    for position, bench in enumerate(engine.benchmarks):
        own = grams[first[position] : first[position + 1]]
        mine = flagged.filter(pc.equal(flagged.column("benchmark"), bench.name)) if flagged.num_rows else flagged
        benchmarks.append({
            "name": bench.name,
            "reader": bench.reader,
            "origin": bench.origin,
            "inputs": bench.inputs,
            "fields": bench.fields,
            "items": bench.items,
            "items_compared": int((own > 0).sum()),
            "items_too_short": int((own == 0).sum()),
            "repeated_items": bench.repeated_items,
            "ngrams": int(own.sum()),
            "items_matched": int(pc.count_distinct(mine.column("item_id")).as_py()) if mine.num_rows else 0,
            "matches": mine.num_rows,
            "rows_matched": _per_source(mine),
            "rows_removed": _per_source(mine, mine.column("removed")) if mine.num_rows else {},
            "rows_written": _per_source(mine, mine.column("written")) if mine.num_rows else {},
            "examples": _examples(mine, config.max_examples),
        })
    checked = dict(sorted((checked_by_source or result.checked).items()))
    matched = _per_source(flagged)
    removed = _per_source(flagged, removed_mask) if removed_mask is not None else {}
    written = _per_source(flagged, flagged.column("written")) if flagged.num_rows else {}
    sources = {name: {"checked": rows, "matched": matched.get(name, 0), "removed": removed.get(name, 0),
                      "written": written.get(name, 0)} for name, rows in checked.items()}
    return {
        "parameters": {
            "ngram": config.ngram,
            "share": config.share,
            "min_tokens": config.min_tokens,
            "compare": config.compare,
            "action": config.action,
            "normalize": config.normalize.model_dump(),
        },
        "index": {"ngrams": index.stats.grams, "postings": index.stats.postings, "segments": index.stats.segments,
                  "segments_whole": index.stats.short_segments, "segments_too_short": index.stats.dropped_segments},
        "rows_checked": result.rows,
        "rows_matched": sum(matched.values()),
        "rows_removed": sum(removed.values()),
        "rows_written": sum(written.values()),
        "sources": sources,
        "benchmarks": benchmarks,
    }


def format_summary(summary: dict, title: str = "") -> str:
    """A per-benchmark table for the terminal (the command and the build's log)."""
    p = summary["parameters"]
    lines = [title] if title else []
    lines.append(f"{p['ngram']}-grams, an item matches a row holding >= {p['share']:.0%} of its n-grams "
                 f"(segments of {p['min_tokens']}-{p['ngram'] - 1} tokens compared whole), compare {p['compare']}, "
                 f"action {p['action']}; {summary['rows_checked']:,} rows checked")
    width = max([len("benchmark"), *(len(b["name"]) for b in summary["benchmarks"])])
    lines.append(f"  {'benchmark':<{width}}  {'items':>7}  {'compared':>8}  {'matched':>7}  {'rows':>6}  {'removed':>7}  by source")
    for b in summary["benchmarks"]:
        rows = sum(b["rows_matched"].values())
        by_source = ", ".join(f"{k} {v:,}" for k, v in b["rows_matched"].items()) or "-"
        lines.append(f"  {b['name']:<{width}}  {b['items']:>7,}  {b['items_compared']:>8,}  {b['items_matched']:>7,}  "
                     f"{rows:>6,}  {sum(b['rows_removed'].values()):>7,}  {by_source}")
    for b in summary["benchmarks"]:
        for e in b["examples"][:2]:
            span = " ".join(e["span"].split())
            span = span if len(span) <= 100 else span[:97] + "..."
            lines.append(f"  e.g. {b['name']} {e['item_id']} in {e['id']} ({e['share']:.0%}): {span}")
    return "\n".join(lines)


def _span_html(span: str, limit: int = 240) -> str:
    """A span for a Markdown table cell: shortened, HTML-escaped, in <code> (so `*`, `_`, `#` show as written)."""
    text = " ".join(span.split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"<code>{html.escape(text, quote=False)}</code>"


def card_context(entry: dict | None) -> dict | None:
    """The manifest's `decontamination` block in the terms the card's table shows."""
    if not entry:
        return None
    p = entry.get("parameters") or {}
    benchmarks = []
    for b in entry.get("benchmarks") or []:
        origin = b.get("origin") or {}
        where = origin.get("repo_id") or origin.get("path") or "?"
        benchmarks.append({
            "name": b["name"],
            "reader": b.get("reader"),
            "origin": f"{origin.get('kind', '?')}: {where}" + (f"@{origin['revision']}" if origin.get("revision") else ""),
            "splits": ", ".join(origin.get("splits") or []),
            "total": b.get("items"),
            "compared": b.get("items_compared"),
            "too_short": b.get("items_too_short"),
            "matched": b.get("items_matched"),
            "rows": sum((b.get("rows_matched") or {}).values()),
            "removed": sum((b.get("rows_removed") or {}).values()),
            "written": sum((b.get("rows_written") or {}).values()),
            "by_source": ", ".join(f"{k}: {v:,}" for k, v in (b.get("rows_matched") or {}).items()) or None,
            "examples": [{**e, "span_html": _span_html(e.get("span") or "")} for e in b.get("examples") or []],
        })
    return {
        "ngram": p.get("ngram"), "share": p.get("share"), "min_tokens": p.get("min_tokens"),
        "compare": p.get("compare"), "action": p.get("action"),
        "rows_checked": entry.get("rows_checked"), "rows_matched": entry.get("rows_matched"),
        "rows_removed": entry.get("rows_removed"), "rows_written": entry.get("rows_written"),
        "benchmarks": benchmarks,
        "matches_file": (entry.get("matches_file") or {}).get("path"),
    }
