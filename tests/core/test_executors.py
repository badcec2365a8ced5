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
