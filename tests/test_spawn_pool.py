"""Fresh worker processes: results in job order, errors raised as themselves, a killed worker reported, no re-import
of the caller's __main__ (a script without a main guard still works)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from flan_mini.errors import SourceError
from flan_mini.spawn_pool import SpawnPool, WorkerDied


def square_and_pid(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


def fail_with(message: str) -> None:
    raise SourceError(message)


def die() -> None:
    os._exit(3)


def chatty(value: int) -> int:
    print("noise on stdout that must not corrupt the answers")
    return value


def test_results_come_back_in_job_order_from_other_processes():
    with SpawnPool(2) as pool:
        results = list(pool.map(square_and_pid, [(n,) for n in range(12)]))
    assert [value for value, _ in results] == [n * n for n in range(12)]
    assert os.getpid() not in {pid for _, pid in results}


def test_an_error_in_a_worker_is_raised_as_itself_and_the_pool_goes_on():
    with SpawnPool(1) as pool:
        with pytest.raises(SourceError, match="broken row 7"):
            list(pool.map(fail_with, [("broken row 7",)]))
        assert list(pool.map(chatty, [(5,)])) == [5]


def test_a_worker_that_dies_is_reported():
    with pytest.raises(WorkerDied, match="exit code 3"):
        with SpawnPool(1) as pool:
            list(pool.map(die, [()]))


def test_a_script_without_a_main_guard_can_use_the_pool(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        from flan_mini.spawn_pool import SpawnPool
        from tests.test_spawn_pool import square_and_pid
        with SpawnPool(2) as pool:
            print(sum(value for value, _ in pool.map(square_and_pid, [(n,) for n in range(5)])))
    """))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=root,
                          env={**os.environ, "PYTHONPATH": root})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "30"
