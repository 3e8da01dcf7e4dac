"""The Ray executor: a stage's tasks as Ray tasks on a local cluster it starts, or on a cluster it joins.

Same contract as `LocalExecutor` (executor.py): `map(fn, jobs)` yields `fn(*job)` in submission order, so
the driver merges exactly what it would merge locally and the output bytes do not depend on the cluster.
Ray is an optional extra (`pip install 'flan-mini[ray]'`), imported only here and only when asked for.

- Without an address, a local cluster is started on loopback (no dashboard, `workers` CPUs) and stopped
  by `close()`. With one, the cluster is joined (and never stopped: it is not ours).
- A task whose worker process dies (killed, out of memory) is retried `retries` times by Ray; then the
  map raises a FlanMiniError naming the task. An exception raised by the task itself is re-raised as is.
- On start, every node must run the driver's versions of the libraries that decide the output bytes.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import FlanMiniError

INSTALL_HINT = "pip install 'flan-mini[ray]'"
# The libraries whose versions decide the output bytes (Arrow's writer, numpy's sorts and hashes, xxhash keys,
# Jinja rendering) and flan-mini itself: a node running others could write different bytes.
CHECKED = ("pyarrow", "numpy", "xxhash", "jinja2", "flan-mini")
# Pending tasks per CPU: enough to keep every CPU busy while the driver consumes results in order.
INFLIGHT_PER_CPU = 2
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def import_ray():
    """`ray`, or a FlanMiniError saying how to install it."""
    try:
        import ray  # noqa: PLC0415 (optional extra)
    except ImportError:
        raise FlanMiniError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def loopback_only() -> None:
    """Keep a cluster started from this process on 127.0.0.1.

    On Linux Ray resolves "127.0.0.1" to the machine's network address (node IP, bootstrap address), so a
    local cluster would listen on the network. Ray's switch for "single machine" mode is read from this
    environment variable when Ray is imported; it is also set on the imported constant, and the variable is
    inherited by the processes the cluster starts.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if sys.modules.get("ray") is not None:
        from ray._private import ray_constants  # noqa: PLC0415

        ray_constants.ENABLE_RAY_CLUSTER = False


def local_versions() -> dict[str, str]:
    """This process's versions of the CHECKED libraries, and Python's (pickles cross between processes)."""
    versions = {name: importlib.metadata.version(name) for name in CHECKED}
    versions["python"] = "{}.{}".format(*sys.version_info[:2])
    return versions


def _is_local(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    return host in LOCAL_HOSTS


class RayExecutor:
    """Tasks as Ray tasks; see the module docstring."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, *, retries: int = 3,
                 check_versions: bool = True):
        if address is None or _is_local(address):
            loopback_only()
        ray = import_ray()
        self._ray = ray
        self.retries = retries
        # True when this executor connected the process: close() disconnects it (and stops a cluster it started).
        self._connected = False
        if ray.is_initialized():
            # This process is already connected (a notebook, the test suite's cluster): use that connection.
            current = ray.get_runtime_context().gcs_address
            if address is not None and not _same_address(address, current):
                raise FlanMiniError(f"--ray-address {address}: this process is already connected to the Ray "
                                    f"cluster at {current}")
            self.address = current
        elif address is None:
            import logging  # noqa: PLC0415

            # "local" rather than None: None would join any Ray instance found running on this machine.
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False)
            self._connected = True
            self.address = None
        else:
            import logging  # noqa: PLC0415

            try:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise FlanMiniError(f"--ray-address {address}: cannot join the Ray cluster ({exc}). Start one "
                                    "with `ray start --head` and pass the address it prints") from None
            self._connected = True
            self.address = address
        try:
            nodes = self.nodes()
            self.workers = max(1, int(sum(node["Resources"].get("CPU", 0) for node in nodes)))
            self._nodes = len(nodes)
            if check_versions:
                check_nodes(self, local_versions())
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------------- the protocol

    def map(self, fn: Callable, jobs: Iterable[tuple], *, inflight: int | None = None) -> Iterator[Any]:
        """`fn(*job)` as one Ray task per job, yielded in submission order, at most `inflight` pending."""
        ray = self._ray
        # Ray makes tasks of plain functions only: anything else callable (a functools.partial) travels as an argument.
        plain = inspect.isfunction(fn)
        remote = ray.remote(fn if plain else _apply).options(num_cpus=1, max_retries=self.retries,
                                                             retry_exceptions=False)
        limit = max(1, inflight or INFLIGHT_PER_CPU * self.workers)
        pending: deque = deque()  # (index, job, ref)
        try:
            for index, job in enumerate(jobs):
                pending.append((index, job, remote.remote(*job) if plain else remote.remote(fn, *job)))
                while len(pending) >= limit:
                    yield self._result(fn, *pending.popleft())
            while pending:
                yield self._result(fn, *pending.popleft())
        finally:
            for _, _, ref in pending:  # an error (or a consumer that stopped early): no task left running
                ray.cancel(ref, force=False)

    def _result(self, fn: Callable, index: int, job: tuple, ref) -> Any:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.RayTaskError as exc:
            # The task raised: the same exception as a local run (a FlanMiniError stays one, with its message).
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.OutOfMemoryError,
                exceptions.TaskCancelledError, exceptions.ObjectLostError) as exc:
            raise FlanMiniError(
                f"Ray task {describe_task(fn, index, job)} failed after {self.retries} retr"
                f"{'y' if self.retries == 1 else 'ies'}: {type(exc).__name__}: {_first_line(exc)}. Nothing was "
                "written into place; look for the cause in the cluster's logs (e.g. memory: lower --workers)"
            ) from None

    def share(self, value: Any) -> Any:
        """Put once in the object store; a task given the handle as an argument receives the value."""
        return self._ray.put(value)

    def submit(self, fn: Callable, jobs: Iterable[tuple], *, returns: int = 1,
               inflight: int | None = None) -> Iterator[Any]:
        """One Ray task per job with `returns` results in the object store: yields their ObjectRefs (a tuple
        of them when `returns` > 1) in submission order; a new task is submitted only when fewer than
        `inflight` are running, so a generator of jobs is consumed (and its arguments copied) gradually."""
        ray = self._ray
        plain = inspect.isfunction(fn)
        remote = ray.remote(fn if plain else _apply).options(num_cpus=1, max_retries=self.retries,
                                                             retry_exceptions=False, num_returns=returns)
        limit = max(1, inflight or INFLIGHT_PER_CPU * self.workers)
        running: list = []  # one ref per running task (its first result)
        for job in jobs:
            refs = remote.remote(*job) if plain else remote.remote(fn, *job)
            refs = tuple(refs) if returns > 1 else refs
            running.append(refs[0] if returns > 1 else refs)
            while len(running) >= limit:
                _, running = ray.wait(running, num_returns=1, fetch_local=False)
            yield refs

    def fetch(self, handle: Any) -> Any:
        """`ray.get`, with a task's failure reported as `map` reports it."""
        return self._result(_fetch_of, 0, (handle,), handle)

    def describe(self) -> dict:
        return {"name": self.name, "address": self.address or "local", "nodes": self._nodes, "cpus": self.workers,
                "workers": self.workers}

    def nodes(self) -> list[dict]:
        return [node for node in self._ray.nodes() if node.get("Alive")]

    def close(self) -> None:
        if self._connected and self._ray.is_initialized():
            # Disconnects this driver; for a cluster we started, that also stops it (ray.init's own processes).
            self._ray.shutdown()
        self._connected = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _apply(fn: Callable, *args) -> Any:
    return fn(*args)


def _fetch_of(handle):
    """The name a failed `fetch` is reported under (the task's own error names what it ran)."""


def _same_address(given: str, current: str) -> bool:
    """Ray reports a loopback cluster under the address it was given or under the machine's: same port suffices."""
    host, _, port = given.rpartition(":")
    chost, _, cport = current.rpartition(":")
    return port == cport and (host == chost or _is_local(host))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def describe_task(fn: Callable, index: int, job: tuple) -> str:
    """`name #index (arguments)`, each argument shortened: enough to tell which file or shard it was."""
    parts = []
    for arg in job:
        if isinstance(arg, (str, int, float, bool)) or arg is None:
            text = repr(arg)
        elif hasattr(arg, "num_rows"):
            text = f"<{type(arg).__name__} of {arg.num_rows:,} rows>"
        elif hasattr(arg, "__len__"):
            text = f"<{type(arg).__name__} of {len(arg):,}>"
        else:
            text = f"<{type(arg).__name__}>"
        parts.append(text if len(text) <= 80 else text[:77] + "...")
    return f"{getattr(fn, '__name__', repr(fn))} #{index} ({', '.join(parts)})"


def check_nodes(executor: RayExecutor, expected: dict[str, str]) -> None:
    """Run `local_versions` once on every alive node; fail naming each node and library that differs."""
    ray = executor._ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: PLC0415

    probe = ray.remote(local_versions)
    nodes = executor.nodes()
    refs = [probe.options(num_cpus=0, max_retries=executor.retries,
                          scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote()
            for node in nodes]
    problems = []
    for node, found in zip(nodes, ray.get(refs)):
        for name, version in expected.items():
            if found.get(name) != version:
                problems.append(f"node {node.get('NodeManagerAddress')} ({node['NodeID'][:8]}) has {name} "
                                f"{found.get(name)}, this machine {version}")
    if problems:
        raise FlanMiniError("the Ray cluster's nodes must run the same versions as this machine (they decide the "
                            "output's bytes):\n  " + "\n  ".join(problems)
                            + "\n  install the same versions on every node (pip install -e '.[ray]' from the same "
                            "checkout), then retry")
