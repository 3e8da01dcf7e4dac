"""Progress of long stages: a bar (rows per second, ETA) on a terminal, plain log lines otherwise, or nothing.

    reporter = Reporter.for_stream(sys.stderr, quiet=False)
    with reporter.task("select flan2021", total=5_362_361, unit="rows") as task:
        for batch in batches:
            task.update(batch.num_rows)
    reporter.log("flan-mini: writing the data card")

On a terminal the bar is tqdm's. Elsewhere (CI logs, files) a line is written when a task starts, every
`interval` seconds while it runs, and when it ends: `select flan2021: 1,200,000 / 5,362,361 rows (1.1M rows/s,
ETA 4s)`.

A build also says how far it is as a whole (`expect_sources`): one line above the stage bars on a terminal, or a
line each time a source is selected: `build: 2/4 sources, 12,000 / 20,000 rows, 14s elapsed, ETA 9s`.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, TextIO


def _rate(count: float, seconds: float) -> str:
    per_second = count / seconds if seconds > 0 else 0.0
    for divisor, suffix in ((1e6, "M"), (1e3, "k")):
        if per_second >= divisor:
            return f"{per_second / divisor:.1f}{suffix}"
    return f"{per_second:.0f}"


class _Lines:
    """A task reported as log lines: at the start, every `interval` seconds, and at the end."""

    def __init__(self, write: Callable[[str], None], name: str, total: int | None, unit: str, interval: float):
        self.write, self.name, self.total, self.unit, self.interval = write, name, total, unit, interval
        self.count = 0
        self.started = self.last = time.monotonic()
        self.write(f"{name}: started" + (f" ({total:,} {unit})" if total else ""))

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.write(self._status(now))

    def _status(self, now: float) -> str:
        elapsed = now - self.started
        done = f"{self.count:,}" + (f" / {self.total:,}" if self.total else "")
        eta = ""
        if self.total and self.count and self.count < self.total:
            eta = f", ETA {((self.total - self.count) * elapsed / self.count):.0f}s"
        return f"{self.name}: {done} {self.unit} ({_rate(self.count, elapsed)} {self.unit}/s{eta})"

    def close(self) -> None:
        now = time.monotonic()
        self.write(f"{self.name}: done, {self.count:,} {self.unit} in {now - self.started:.1f}s "
                   f"({_rate(self.count, now - self.started)} {self.unit}/s)")


class _Bar:
    def __init__(self, stream: TextIO, name: str, total: int | None, unit: str, position: int = 0):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=name, unit=f" {unit}", unit_scale=True, file=stream, leave=False,
                        dynamic_ncols=True, position=position)
        self.count = 0

    def update(self, n: int = 1) -> None:
        self.count += n
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


class _Silent:
    count = 0

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Reporter:
    """Where a build says what it is doing. `mode`: 'bar' (terminal), 'lines' or 'quiet'."""

    def __init__(self, mode: str = "lines", stream: TextIO | None = None, interval: float = 10.0):
        self.mode, self.stream, self.interval = mode, stream or sys.stderr, interval
        self._overall: _Overall | None = None

    def expect_sources(self, requested: dict[str, int]) -> None:
        """Track the whole build: each source is done when its `fetch <name>` task ends."""
        if self.mode != "quiet":
            self._overall = _Overall(requested, self.log, self.stream if self.mode == "bar" else None)

    @classmethod
    def for_stream(cls, stream: TextIO, *, quiet: bool = False) -> Reporter:
        if quiet:
            return cls("quiet", stream)
        return cls("bar" if getattr(stream, "isatty", lambda: False)() else "lines", stream)

    def log(self, message: str) -> None:
        if self.mode != "quiet":
            print(message, file=self.stream, flush=True)

    @contextmanager
    def task(self, name: str, total: int | None = None, unit: str = "rows"):
        if self.mode == "quiet":
            task = _Silent()
        elif self.mode == "bar":
            task = _Bar(self.stream, name, total, unit, position=1 if self._overall else 0)
        else:
            task = _Lines(self.log, name, total, unit, self.interval)
        try:
            yield task
        finally:
            task.close()
            if self._overall is not None and name.startswith("fetch "):
                self._overall.source_done(name[len("fetch "):], task.count)

    def __call__(self, message: str) -> None:  # a Reporter can stand where a plain `log` callable is expected
        self.log(message)


class _Overall:
    """Sources selected and rows gathered over the whole build, with an ETA from the rate so far."""

    def __init__(self, requested: dict[str, int], log: Callable[[str], None], stream: TextIO | None):
        self.requested, self.log = dict(requested), log
        self.total = sum(self.requested.values())
        self.done: dict[str, int] = {}
        self.started = time.monotonic()
        self.bar = None
        if stream is not None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc="build", unit=" rows", unit_scale=True, file=stream, position=0,
                            dynamic_ncols=True, leave=False, postfix=f"0/{len(self.requested)} sources")

    def source_done(self, name: str, rows: int) -> None:
        if name not in self.requested or name in self.done:
            return
        self.done[name] = min(rows, self.requested[name]) if rows else self.requested[name]
        if self.bar is not None:
            self.bar.set_postfix_str(f"{len(self.done)}/{len(self.requested)} sources")
            self.bar.update(self.done[name])
            if len(self.done) == len(self.requested):
                self.bar.close()
        else:
            self.log(self.line())

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rows = sum(self.done.values())
        eta = ""
        if 0 < rows < self.total:
            eta = f", ETA {(self.total - rows) * elapsed / rows:.0f}s"
        return (f"build: {len(self.done)}/{len(self.requested)} sources, {rows:,} / {self.total:,} rows, "
                f"{elapsed:.0f}s elapsed{eta}")


# Below this many rows a build is a sample or a smoke test: the hint suggests finetune/configs/tiny-cpu.yaml (a
# tiny random model, about a minute on the CPU); a 13B run on a few hundred rows would be a mistake. At FLAN-MINI's
# size (1.34M rows) it suggests the paper's run, flacuna-13b.yaml.
SMOKE_ROWS = 10_000


def training_config(rows: int) -> str:
    """The shipped fine-tuning config that fits a build of `rows` rows (a path relative to the repository)."""
    return "finetune/configs/" + ("tiny-cpu.yaml" if rows < SMOKE_ROWS else "flacuna-13b.yaml")


def next_steps(folder, manifest: dict, repo_id: str | None = None) -> str:
    """What to do with a finished build: the commands to load, push and train on it (with the training config
    that fits its size)."""
    where = repo_id or str(folder)
    load = (f'python -c "from datasets import load_dataset; print(load_dataset(\'{repo_id}\', split=\'train\'))"'
            if repo_id else
            f'python -c "from datasets import load_dataset; print(load_dataset(\'{folder}\', split=\'train\'))"')
    lines = ["", "next:", f"  load   {load}"]
    if repo_id is None:
        lines.append(f"  push   flan-mini push {folder} --repo-id ORG/NAME")
    lines.append(f"  train  flan-mini finetune {training_config(manifest['output']['rows'])} --dataset {where}")
    return "\n".join(lines)


QUIET = Reporter("quiet")
