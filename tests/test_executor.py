"""The local executor: results in submission order whatever finishes first, bounded in flight."""

import threading
import time

import pytest

from flan_mini.executor import LocalExecutor, make_executor


def _slow_square(value: int, delay: float) -> int:
    time.sleep(delay)
    return value * value


def test_results_come_in_submission_order_not_finishing_order():
    jobs = [(i, 0.02 * (5 - i)) for i in range(6)]  # the first jobs finish last
    assert list(LocalExecutor(3).map(_slow_square, jobs)) == [i * i for i in range(6)]
    assert list(LocalExecutor(1).map(_slow_square, jobs)) == [i * i for i in range(6)]


def test_tasks_in_flight_are_bounded():
    running, peak, lock = [0], [0], threading.Lock()

    def task(_):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1

    consumed = 0
    for _ in LocalExecutor(2).map(task, [(i,) for i in range(20)], inflight=3):
        consumed += 1
    assert consumed == 20 and peak[0] <= 2


def test_unknown_executor_and_stray_address_are_refused():
    with pytest.raises(ValueError, match="unknown executor 'spark'"):
        make_executor("spark")
    with pytest.raises(ValueError, match="--ray-address needs --executor ray"):
        make_executor("local", address="127.0.0.1:6379")


def test_ray_not_installed_says_how_to_install_it(monkeypatch, tmp_path):
    import sys

    from flan_mini.errors import FlanMiniError

    from .conftest import SAMPLE_RECIPE, run_cli

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(FlanMiniError, match=r"pip install 'flan-mini\[ray\]'"):
        make_executor("ray")
    result = run_cli("build", SAMPLE_RECIPE, "--out", tmp_path / "out", "--executor", "ray")
    assert result.exit_code == 1 and "pip install 'flan-mini[ray]'" in result.output
    assert not (tmp_path / "out").exists()


def test_ray_address_without_the_ray_executor_is_a_usage_error(tmp_path):
    from .conftest import SAMPLE_RECIPE, run_cli

    result = run_cli("build", SAMPLE_RECIPE, "--out", tmp_path / "out", "--ray-address", "127.0.0.1:6379")
    assert result.exit_code == 2 and "--ray-address needs --executor ray" in result.output


def _pair(value: int) -> tuple[int, int]:
    return value, -value


def test_local_submit_gives_the_values_as_handles():
    executor = LocalExecutor(2)
    assert list(executor.submit(_slow_square, [(3, 0.0), (4, 0.0)])) == [9, 16]
    handles = list(executor.submit(_pair, [(1,), (2,)], returns=2))
    assert handles == [(1, -1), (2, -2)] and executor.fetch(handles[1][0]) == 2
    with pytest.raises(TypeError, match="_slow_square was submitted with returns=2 but returned int"):
        list(executor.submit(_slow_square, [(3, 0.0)], returns=2))
