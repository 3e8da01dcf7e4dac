"""Executors for the tests: one that pickles every task and result (as a cluster would), and the Ray one."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest

from flan_mini.executor import LocalExecutor


class PicklingExecutor(LocalExecutor):
    """Not "local": stages take their cluster path. Every task, its arguments and its result go through pickle,
    so a closure, an open file or a shared mutable object fails here as it would on Ray; `calls` counts
    tasks per function and `shared` the values handed to `share`."""

    name = "pickling"

    def __init__(self, workers: int = 2):
        super().__init__(workers)
        self.calls: Counter = Counter()
        self.shared = 0
        self.arguments: dict[str, list] = {}

    def map(self, fn, jobs, *, inflight=None):
        def run(blob: bytes) -> bytes:
            task, job = pickle.loads(blob)
            return pickle.dumps(task(*job))

        def pickled():
            for job in jobs:
                self.calls[fn.__name__] += 1
                self.arguments.setdefault(fn.__name__, []).append(job)
                yield (pickle.dumps((fn, job)),)

        for result in super().map(run, pickled(), inflight=inflight):
            yield pickle.loads(result)

    def share(self, value):
        self.shared += 1
        return pickle.loads(pickle.dumps(value))


def ray_executor(request):
    """The Ray executor on the suite's session cluster (the `ray_cluster` fixture of tests/conftest.py);
    the test is skipped where Ray, the fixture or flan_mini.executor_ray are missing."""
    pytest.importorskip("ray")
    pytest.importorskip("flan_mini.executor_ray")
    try:
        cluster = request.getfixturevalue("ray_cluster")
    except pytest.FixtureLookupError:
        pytest.skip("no ray_cluster fixture in tests/conftest.py")
    if hasattr(cluster, "map"):
        return cluster
    from flan_mini.executor import make_executor

    address = cluster if isinstance(cluster, str) else getattr(cluster, "address", None)
    return make_executor("ray", address=address)
