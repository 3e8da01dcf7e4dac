"""Sources rendered side by side in forked processes (Linux), each result handed back as a memory-mapped Arrow file.

Rendering is per-row Python (Jinja, few-shot assembly), so threads would share one core. A forked child
inherits the source's selected rows, its compiled templates and its tokenizer without pickling any of them,
and renders in its own main thread, where the template sandbox's time limit (a timer signal) works as it
does here. The child writes its table as an Arrow IPC file in a scratch folder beside the output; this
process maps it and unlinks it at once, so the rendered text lives in the page cache rather than on this
process's heap (the kernel can drop and re-read those pages under memory pressure).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import sys
import tempfile
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from ..errors import FlanMiniError


def can_fork() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def _child(task: Callable, args: tuple, path: Path) -> None:
    """In the forked process: run ``task(*args)`` -> (table, *extras); the table to ``path`` as IPC, the extras
    (or the error) pickled beside it."""
    try:
        table, *extras = task(*args)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        outcome = ("ok", extras)
    except BaseException as error:  # noqa: BLE001 (everything goes back to the parent, which raises it)
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001 (an error that does not travel goes back as its text)
            text = str(error) if isinstance(error, FlanMiniError) else f"{type(error).__name__}: {error}"
            error = FlanMiniError(text)
        outcome = ("error", error, traceback.format_exc())
    Path(f"{path}.outcome").write_bytes(pickle.dumps(outcome))


def _collect(process, path: Path, name: str) -> tuple:
    process.join()
    outcome_file = Path(f"{path}.outcome")
    if process.exitcode != 0 or not outcome_file.exists():
        raise FlanMiniError(f"render: the process rendering source {name!r} ended with exit code "
                            f"{process.exitcode} before handing back its rows (killed, or out of memory?)")
    outcome = pickle.loads(outcome_file.read_bytes())
    outcome_file.unlink()
    if outcome[0] == "error":
        error = outcome[1]
        if isinstance(error, FlanMiniError):
            raise error
        raise FlanMiniError(f"render: source {name!r} failed in its render process:\n{outcome[2]}") from error
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()  # zero-copy: the rows stay in the mapping
    path.unlink()
    return (table, *outcome[1])


def render_forked(task: Callable, jobs: Iterable[tuple[str, tuple]], workers: int, near: Path) -> Iterator[tuple]:
    """Yield ``task(*args)`` for every (name, args) job in order, running up to ``workers`` jobs at once, each in a
    process forked when its turn comes (so it sees the job's arguments as they are then). ``task`` returns
    (Arrow table, *picklable extras). Scratch files go in a hidden folder created beside ``near`` and removed
    at the end. A job that fails raises its error here, naming the job."""
    context = multiprocessing.get_context("fork")
    scratch = Path(tempfile.mkdtemp(prefix=".flan-mini-render-", dir=near))
    running: deque = deque()
    try:
        for number, (name, args) in enumerate(jobs):
            if len(running) >= workers:
                yield _collect(*running.popleft())
            path = scratch / f"{number}.arrow"
            process = context.Process(target=_child, args=(task, args, path), name=f"flan-mini render {name}")
            with _quiet_tokenizers():
                process.start()
            running.append((process, path, name))
            del args  # the child has its copy; this process may free the selected rows once the caller does
        while running:
            yield _collect(*running.popleft())
    finally:
        for process, _, _ in running:  # the caller stopped early (an error): no orphan keeps rendering
            process.kill()
            process.join()
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _quiet_tokenizers():
    """Hugging Face tokenizers turn their thread pool off in a forked child, with a warning on stderr unless
    TOKENIZERS_PARALLELISM is set; set it (for the fork only) so each child tokenises quietly on its own core."""
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = before if before is not None else "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TOKENIZERS_PARALLELISM"]


def scratch_parent(folder: Path) -> Path:
    """Where render's scratch folder goes: beside the build's temporary output folder (same disk as the output)."""
    parent = Path(folder).parent
    return parent if os.access(parent, os.W_OK) else Path(tempfile.gettempdir())
