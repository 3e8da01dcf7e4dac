"""Where a stage's independent tasks run: this process's threads (local) or a Ray cluster (executor_ray.py).

A stage hands the executor a top-level function and one argument tuple per task (a file, a batch, a
shard); the executor returns the results in submission order, so what the driver merges, and hence
the output, never depends on which worker ran what or when it finished. Arguments and results must
be picklable for Ray: plain data, Arrow tables, numpy arrays, pydantic configs; never open files or
compiled templates (rebuild those inside the task from plain data).

`share(value)` hands a large read-only value (a benchmark index) to every task once: tasks receive it
as an argument; locally it is the value itself.

`submit(fn, jobs, returns=k)` is `map` for results that feed other tasks: it yields handles, in submission
order, on results that stay where they were made (Ray's object store), so that a later task given a handle as
an argument receives the value and the driver never holds it; `fetch(handle)` gets a value (a small one, such
as per-batch counts). With `returns=k` the task returns k values and each job yields k handles (a tuple), so
each can go to a different task (one per partition). Locally a handle is the value itself.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol


class Executor(Protocol):
    name: str  # "local" or "ray"
    workers: int  # how many tasks run at once (local) or the cluster's CPUs (ray)

    def map(self, fn: Callable, jobs: Iterable[tuple], *, inflight: int | None = None) -> Iterator[Any]:
        """`fn(*job)` for every job, yielded in submission order, at most `inflight` tasks pending at once."""

    def share(self, value: Any) -> Any:
        """A handle on `value` that tasks receive as an argument (put once, read by every task)."""

    def submit(self, fn: Callable, jobs: Iterable[tuple], *, returns: int = 1,
               inflight: int | None = None) -> Iterator[Any]:
        """Handles on `fn(*job)` for every job (a tuple of `returns` handles when `returns` > 1), in submission
        order, at most `inflight` tasks running at once; the values stay out of this process."""

    def fetch(self, handle: Any) -> Any:
        """The value behind a handle `submit` or `share` gave."""

    def describe(self) -> dict:
        """What the manifest records about where the build ran (not part of the output's identity)."""

    def close(self) -> None:
        """Release what the executor holds (threads, a cluster it started)."""


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1 << 10))


class LocalExecutor:
    """Tasks on this process's threads (Arrow, numpy, hashlib and zlib release the GIL); one worker runs them inline."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, int(workers)) if workers else default_workers()

    def map(self, fn: Callable, jobs: Iterable[tuple], *, inflight: int | None = None) -> Iterator[Any]:
        if self.workers <= 1:
            for job in jobs:
                yield fn(*job)
            return
        limit = max(1, inflight or 2 * self.workers)  # bounded: results are held until their turn
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            pending: deque = deque()
            for job in jobs:
                pending.append(pool.submit(fn, *job))
                while len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def share(self, value: Any) -> Any:
        return value

    def submit(self, fn: Callable, jobs: Iterable[tuple], *, returns: int = 1,
               inflight: int | None = None) -> Iterator[Any]:
        for result in self.map(fn, jobs, inflight=inflight):  # self.map: a subclass's map applies here too
            yield _unpack(fn, result, returns)

    def fetch(self, handle: Any) -> Any:
        return handle

    def describe(self) -> dict:
        return {"name": self.name, "workers": self.workers}

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unpack(fn: Callable, result: Any, returns: int) -> Any:
    """A task's result as `submit` yields it: the value, or its `returns` values as a tuple."""
    if returns == 1:
        return result
    if not isinstance(result, tuple) or len(result) != returns:
        raise TypeError(f"{getattr(fn, '__name__', fn)} was submitted with returns={returns} but returned "
                        f"{type(result).__name__} of {len(result) if isinstance(result, tuple) else 1} values")
    return result


def make_executor(name: str = "local", *, workers: int | None = None, address: str | None = None) -> Executor:
    """The executor a command's `--executor` names; Ray is imported only when asked for."""
    if name == "local":
        if address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        from .executor_ray import RayExecutor  # noqa: PLC0415 (ray is an optional extra, imported on demand)

        return RayExecutor(address=address, workers=workers)
    raise ValueError(f"unknown executor {name!r}: expected local or ray")
