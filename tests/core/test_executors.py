"""run_tasks: results in task order, a callback per finished task, failures named by describe."""

from __future__ import annotations

import pytest

from mmbench.core.executors import run_tasks
from mmbench.errors import ExecutorError


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * 10


@pytest.mark.parametrize("workers", [1, 2])
def test_results_in_order_and_a_callback_per_task(workers: int) -> None:
    seen: list[tuple[int, int]] = []
    out = run_tasks(pow, [(2, 3), (3, 2), (4, 2)], num_workers=workers, progress=False, on_result=lambda i, r: seen.append((i, r)))
    assert out == [8, 9, 16] and sorted(seen) == [(0, 8), (1, 9), (2, 16)]


def test_a_failed_task_is_named() -> None:
    with pytest.raises(ExecutorError, match=r"run #3 failed in a worker process: ValueError\('three'\)"):
        run_tasks(_fail_on_three, [(1,), (2,), (3,)], num_workers=2, progress=False, describe=lambda i, task: f"run #{task[0]}")


def _killed_on_two(x: int) -> int:
    if x == 2:  # the worker dies as if killed from outside (OOM killer, a stray kill)
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_a_worker_killed_from_outside_fails_the_run_instead_of_hanging() -> None:
    import threading

    outcome: list[BaseException | list[int]] = []

    def go() -> None:
        try:
            outcome.append(run_tasks(_killed_on_two, [(1,), (2,), (3,)], num_workers=2, progress=False))
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "run_tasks hung after a worker process was killed"
    assert isinstance(outcome[0], ExecutorError), outcome


def _worker_env(delay: float) -> tuple[str, str]:
    import os
    import time

    time.sleep(delay)  # long enough that both workers take tasks
    return os.environ["MMBENCH_NUM_WORKERS"], os.environ["MMBENCH_WORKER_INDEX"]


def test_each_pool_worker_knows_its_index(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing
    import os

    from mmbench.core import executors

    out = run_tasks(_worker_env, [(0.2,)] * 4, num_workers=2, progress=False)
    assert {n for n, _ in out} == {"2"} and {i for _, i in out} <= {"0", "1"}
    # each worker start takes the next index from the pool's shared counter
    monkeypatch.setenv("MMBENCH_WORKER_INDEX", "")  # restored (unset) after the test
    monkeypatch.setenv("MMBENCH_NUM_WORKERS", "")
    slots, calls = multiprocessing.get_context("spawn").Value("i", 0), []
    for _ in range(2):
        executors._init_worker(2, slots, lambda: calls.append(os.environ["MMBENCH_WORKER_INDEX"]), ())
    assert calls == ["0", "1"] and slots.value == 2
