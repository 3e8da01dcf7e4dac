"""The stage contract: a stage is a function of its input data and the build context returning (output, Stats).

In the spirit of datatrove's `run(data, rank, world_size)`: every stage has the one signature
`run(data, context) -> (output, stats)`, so `build()` is a list of stages run by one loop (`run_stages`),
which times each and reports what it did. A stage never writes into its input: it returns new data, and
its input is freed when the loop moves on. `Stats` of the tasks a stage splits its work into add up with
`+` (as datatrove's `Stats.__add__`), so per-file or per-worker counts merge into the stage's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..executor import Executor
from ..peak_memory import PeakMemory, release_freed_memory
from ..progress import Reporter

if TYPE_CHECKING:
    from ..decontam.stage import Decontaminator
    from ..plan import Plan


@dataclass
class Stats:
    """What a stage (or one task of it) did: rows in, rows out, rows removed by reason.

    Removal reasons keep their first-seen order and their zero counts (a stage that checked and removed
    nothing says so), which is why this is not a `Counter` (whose `+` drops zeros).
    """

    rows_in: int = 0
    rows_out: int = 0
    removed: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Stats) -> Stats:
        removed = dict(self.removed)
        for reason, count in other.removed.items():
            removed[reason] = removed.get(reason, 0) + count
        return Stats(self.rows_in + other.rows_in, self.rows_out + other.rows_out, removed)

    def __radd__(self, other):  # sum(stats) starts from 0
        return self if other == 0 else NotImplemented

    def summary(self) -> str:
        """e.g. `1,200 rows in, 1,180 out (dedup_near 20)`."""
        removed = ", ".join(f"{reason} {count:,}" for reason, count in self.removed.items() if count)
        return f"{self.rows_in:,} rows in, {self.rows_out:,} out" + (f" ({removed})" if removed else "")


@dataclass(frozen=True)
class Context:
    """What every stage may read besides its data: the plan, where tasks run, where output goes."""

    plan: Plan
    executor: Executor
    reporter: Reporter
    folder: Path  # the temporary output folder (atomic.py); renamed into place after the last stage
    workers: int | None = None  # width of the stages that still run their own pools (dedup, decontamination)
    decontaminator: Decontaminator | None = None  # loaded before any work: a bad benchmark fails the build first
    checksums: Any = None  # a Future of {input path: sha256}, computed beside the stages (`build`)

    @property
    def seed(self) -> int:
        return self.plan.seed

    @property
    def recipe(self):
        return self.plan.recipe


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Any, Context], tuple[Any, Stats]]


@dataclass
class StagesRun:
    """What `run_stages` measured: per stage, in order, its seconds, its stats and this process's peak resident
    bytes while it ran (peak_memory.py; `exact_memory` False: each figure is the process's peak so far)."""

    seconds: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Stats] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)
    exact_memory: bool = True


def run_stages(stages: Iterable[Stage], data: Any, context: Context) -> tuple[Any, StagesRun]:
    """Run `stages` in order, each on the previous one's output; returns the last output and what each stage
    took. Reports a line per stage (quiet reporters print nothing)."""
    run = StagesRun()
    probe = PeakMemory()
    for stage in stages:
        probe.start()
        clock = time.perf_counter()
        data, run.stats[stage.name] = stage.run(data, context)  # rebinding `data` lets the stage's input go
        run.seconds[stage.name] = time.perf_counter() - clock
        run.peak_bytes[stage.name] = probe.peak()
        release_freed_memory()  # so the next stage's peak does not stack on this one's freed garbage
        context.reporter.log(f"flan-mini: {stage.name}: {run.stats[stage.name].summary()} in "
                             f"{run.seconds[stage.name]:.2f}s, peak {run.peak_bytes[stage.name] / 2**30:.2f} GiB")
    run.exact_memory = probe.exact
    return data, run
