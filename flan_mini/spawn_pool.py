"""Worker processes started fresh (`python -m flan_mini.spawn_worker`), running top-level functions over jobs in order.

Why not `multiprocessing`: its fork start copies the build's memory and leaves Hugging Face `tokenizers`
single-threaded in the child (it was used in the parent), and its spawn and forkserver starts import the caller's
`__main__` module again, which breaks any script that calls the build without an `if __name__ == "__main__"`
guard. A worker here is a plain `python -m` child of this interpreter (same sys.path, same environment): it reads
pickled (function, arguments) from its stdin and writes pickled results to a private copy of its stdout, so
nothing a library prints can corrupt the stream. Arguments and results should be small: bulk data goes through
files.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class WorkerDied(RuntimeError):
    """A worker process ended without answering (killed, out of memory, crashed)."""


class _Worker:
    def __init__(self):
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p or "." for p in sys.path)}
        self.process = subprocess.Popen([sys.executable, "-m", "flan_mini.spawn_worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=environment)

    def call(self, fn: Callable, args: tuple) -> Any:
        try:
            pickle.dump((fn, args), self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
            status, value = pickle.load(self.process.stdout)
        except (EOFError, BrokenPipeError, pickle.UnpicklingError, OSError):
            code = self.process.wait()
            raise WorkerDied(f"a worker process ended without answering (exit code {code})") from None
        if status == "error":
            raise value
        return value

    def close(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


class SpawnPool:
    """`processes` fresh worker processes; `map(fn, jobs)` runs fn(*job) on them and yields the results in order."""

    def __init__(self, processes: int):
        self.workers = [_Worker() for _ in range(max(1, processes))]
        self._idle: queue.Queue = queue.Queue()
        for worker in self.workers:
            self._idle.put(worker)
        self._failed = False

    def call(self, fn: Callable, *args) -> Any:
        """fn(*args) on the next idle worker (waiting for one); callable from several threads at once."""
        worker = self._idle.get()
        try:
            return worker.call(fn, args)
        except WorkerDied:
            self._failed = True
            raise
        finally:
            self._idle.put(worker)

    def map(self, fn: Callable, jobs: Iterable[tuple]) -> Iterator[Any]:
        with ThreadPoolExecutor(max_workers=len(self.workers)) as threads:
            futures = [threads.submit(self.call, fn, *job) for job in jobs]
            try:
                for future in futures:
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()

    def close(self, kill: bool = False) -> None:
        """Stop the workers (at once with `kill`; else each finishes its job); a second call does nothing."""
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.close(kill=kill or self._failed)

    def __enter__(self) -> SpawnPool:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(kill=kind is not None)
