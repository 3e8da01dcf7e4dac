"""Sources rendered side by side in fresh worker processes (spawn_pool.py), rows in and out as Arrow IPC files.

Rendering is per-row Python (Jinja, few-shot assembly), so threads would share one core. A worker gets a source's
selected rows as a file written here (memory-mapped there) and its render spec's plain description (the spec is
rebuilt once per process), and renders in its own main thread, where the template sandbox's time limit works as it
does here. It writes the rendered table beside the rows; this process maps that file and unlinks it, so the
rendered text lives in the page cache rather than on this process's heap.

Workers are fresh processes, not forks: Hugging Face `tokenizers` runs single-threaded in a child forked after the
parent used it, and few-shot pruning tokenises heavily (rendering in forks measured about 2x slower than here).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import FlanMiniError
from ..peak_memory import release_freed_memory
from ..spawn_pool import SpawnPool, WorkerDied

SMALL_COLUMN_BYTES = 1 << 30  # joined into one chunk below this (a string column's offsets allow 2 GiB)


def render_file(adapter, description, rows_path: str, seed: int, out_path: str) -> tuple[dict, dict]:
    """In a worker: render the rows in `rows_path` (render.render_table) into `out_path`; (failed masks, stats)."""
    from .render import render_table

    table = ipc.open_file(pa.memory_map(rows_path)).read_all()
    out, failed, stats = render_table(adapter, description, table, seed)
    out = _aligned(out)
    try:
        with pa.OSFile(out_path, "wb") as sink, ipc.new_file(sink, out.schema) as writer:
            writer.write_table(out)
    except (OSError, pa.ArrowException) as exc:
        raise FlanMiniError(f"render: cannot write {adapter.config.name!r}'s rendered rows to {out_path} ({exc}); free "
                            f"some space there, or render in the build's own process with --workers 1") from None
    return failed, stats


def _aligned(table: pa.Table) -> pa.Table:
    """The table with its small columns in one chunk each. An IPC file cuts every column where any column has a
    chunk boundary: the bookkeeping columns (chunked as the selection read them) would cut the text into dozens of
    chunks, and the write stage gathers each row group from every chunk it touches."""
    columns = [column if column.num_chunks <= 1 or column.nbytes >= SMALL_COLUMN_BYTES
               else pa.chunked_array([column.combine_chunks()], column.type) for column in table.columns]
    return pa.Table.from_arrays(columns, schema=table.schema)


def render_in_processes(jobs: list[tuple], names: list[str], costs: list[float], workers: int,
                        near: Path) -> Iterator[tuple[pa.Table, dict, dict]]:
    """render_table's result for each job (adapter, spec description, selected rows, seed), in job order, rendered
    on `workers` processes, the costliest jobs first (so the longest does not start last). Every job's rows are
    written for the workers first and dropped from `jobs`, so this process holds none of them while the workers
    render (they map theirs). Scratch files go in a hidden folder beside `near`, removed at the end. A failing
    source raises its error here; a worker that dies names its source."""
    scratch = Path(tempfile.mkdtemp(prefix=".flan-mini-render-", dir=near))
    pool = None
    try:
        for k, (adapter, description, table, seed) in enumerate(jobs):
            _write(table, scratch / f"{k}.rows.arrow", names[k], scratch)
            jobs[k] = (adapter, description, None, seed)
            del table
        release_freed_memory()
        pool = SpawnPool(min(workers, len(jobs)))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

    def run(k: int) -> tuple[pa.Table, dict, dict]:
        adapter, description, _, seed = jobs[k]
        rows_path, out_path = scratch / f"{k}.rows.arrow", scratch / f"{k}.out.arrow"
        try:
            failed, stats = pool.call(render_file, adapter, description, str(rows_path), seed, str(out_path))
        except WorkerDied as exc:
            raise FlanMiniError(f"render: the process rendering source {names[k]!r} died ({exc}): killed, or out "
                                f"of memory? --workers 1 renders in the build's own process") from None
        finally:
            rows_path.unlink(missing_ok=True)
        rendered = ipc.open_file(pa.memory_map(str(out_path))).read_all()  # zero-copy: the rows stay in the mapping
        out_path.unlink()
        return rendered, failed, stats

    failed_early = True
    try:
        with ThreadPoolExecutor(max_workers=len(pool.workers), thread_name_prefix="render-feed") as threads:
            futures = {k: threads.submit(run, k) for k in sorted(range(len(jobs)), key=lambda k: (-costs[k], k))}
            try:
                for k in range(len(futures)):
                    yield futures[k].result()
                failed_early = False
            finally:
                if failed_early:  # an error, or the caller stopped: no worker goes on rendering
                    for future in futures.values():
                        future.cancel()
                    pool.close(kill=True)
    finally:
        pool.close(kill=failed_early)
        shutil.rmtree(scratch, ignore_errors=True)


def _write(table: pa.Table, path: Path, name: str, scratch: Path) -> None:
    try:
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    except (OSError, pa.ArrowException) as exc:
        raise FlanMiniError(f"render: cannot write source {name!r}'s rows for its worker in {scratch} ({exc}); free "
                            f"some space there, or render in the build's own process with --workers 1") from None


def scratch_parent(folder: Path) -> Path:
    """Where render's scratch folder goes: beside the build's temporary output folder (same disk as the output)."""
    parent = Path(folder).parent
    return parent if os.access(parent, os.W_OK) else Path(tempfile.gettempdir())
