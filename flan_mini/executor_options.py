"""The `--executor` / `--ray-address` options shared by build, dedup and decontaminate, and the executor they open."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click


def executor_options(command: Callable) -> Callable:
    """Add `--executor {local,ray}` and `--ray-address ADDR` to a click command (parameters `executor_name`,
    `ray_address`)."""
    command = click.option(
        "--ray-address", "ray_address", metavar="ADDR",
        help="Join the Ray cluster at ADDR (host:port, as `ray start --head` prints) instead of starting a local "
             "one. Needs --executor ray.")(command)
    return click.option(
        "--executor", "executor_name", type=click.Choice(["local", "ray"]), default="local",
        help="Where the independent tasks run: this process's threads, or a Ray cluster (a local one unless "
             "--ray-address; pip install 'flan-mini[ray]'). The output is the same either way.")(command)


@contextmanager
def open_executor(name: str, address: str | None, workers: int | None) -> Iterator:
    """The executor the options name, closed (a local cluster stopped) when the command ends. Local: None, so
    each stage keeps its own default (its threads or processes)."""
    if name == "local" and not address:
        yield None
        return
    from .executor import make_executor  # noqa: PLC0415

    try:
        executor = make_executor(name, workers=workers, address=address)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        yield executor
    finally:
        executor.close()
