"""Run independent shard tasks serially, in a local process pool, or on Ray.

Shards are generated independently, each from its own generator, so the executor never changes
the data: only how fast it is made.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

from mmbench.errors import ExecutorError, MMBenchError

__all__ = ["EXECUTORS", "check_run_options", "run_tasks"]

EXECUTORS = ("process", "serial", "ray")


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    num_workers: int = 1,
    executor: str = "process",
    progress: bool | None = None,
    desc: str = "",
) -> list[Any]:
    """Run ``fn(*task)`` for every task; return the results in task order.

    Args:
        fn: a module-level (picklable) function.
        tasks: argument tuples.
        num_workers: local processes (``process``) or concurrent Ray tasks (``ray``).
        executor: ``"process"`` (local pool; in-process when ``num_workers == 1``), ``"serial"``
            or ``"ray"`` (needs ``pip install 'mmbench[ray]'``; workers must see the cache path,
            i.e. a shared filesystem on a cluster).
        progress: show a progress bar (``None``: only on a terminal).
    """
    check_run_options(num_workers=num_workers, executor=executor, progress=progress)
    from tqdm.auto import tqdm

    disable = (not _isatty()) if progress is None else not progress
    bar = tqdm(total=len(tasks), desc=desc, unit="shard", disable=disable)
    try:
        if executor == "ray":
            return _run_ray(fn, tasks, num_workers, bar)
        if executor == "serial" or num_workers == 1 or len(tasks) <= 1:
            results = []
            for task in tasks:
                results.append(fn(*task))
                bar.update()
            return results
        return _run_pool(fn, tasks, num_workers, bar)
    finally:
        bar.close()


def check_run_options(*, num_workers: Any, executor: Any, progress: Any) -> None:
    """Raise :class:`ExecutorError` unless the options are ones :func:`run_tasks` accepts.

    Callers that may not reach :func:`run_tasks` (``load`` on a cache hit) check up front, so a
    bad option fails the same way whether or not the data is cached.
    """
    if not isinstance(executor, str) or executor not in EXECUTORS:
        from mmbench.errors import did_you_mean

        raise ExecutorError(
            f"Unknown executor {executor!r}.{did_you_mean(str(executor), EXECUTORS)} Choose one of {list(EXECUTORS)}."
        )
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ExecutorError(f"num_workers must be a positive integer, got {num_workers!r}.")
    if progress is not None and not isinstance(progress, bool):
        raise ExecutorError(f"progress must be True, False or None (only on a terminal), got {progress!r}.")


def _isatty() -> bool:
    import sys

    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def _single_threaded_blas() -> None:
    """Worker initializer: one BLAS thread per process, or N workers × M BLAS threads oversubscribe
    the cores (measured here: 2 workers with 2 OpenBLAS threads each ran slower than 1 worker)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    threadpool_limits(limits=1)


def _run_pool(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], num_workers: int, bar: Any) -> list[Any]:
    # "spawn" keeps workers free of the parent's threads and locks (torch, BLAS pools).
    ctx = multiprocessing.get_context("spawn")
    results: list[Any] = [None] * len(tasks)
    workers = min(num_workers, len(tasks), os.cpu_count() or num_workers)
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_single_threaded_blas) as pool:
        futures = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
        try:
            for future in cf.as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except MMBenchError:
                    raise
                except cf.process.BrokenProcessPool as exc:
                    raise ExecutorError(
                        "A worker process died (killed, out of memory, or started from a script "
                        "without an `if __name__ == \"__main__\":` guard, which spawned workers need). "
                        "Add the guard, or build with num_workers=1."
                    ) from exc
                except Exception as exc:
                    raise ExecutorError(f"Task {i} ({tasks[i][1:3]}) failed in a worker process: {exc!r}") from exc
                bar.update()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return results


def _run_ray(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], num_workers: int, bar: Any) -> list[Any]:
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError(
            "executor='ray' needs Ray, which is not installed. Install it with "
            "`pip install 'mmbench[ray]'`, or use executor='process'."
        ) from exc
    if not ray.is_initialized():
        ray.init(num_cpus=num_workers, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    remote = ray.remote(fn)
    pending = {remote.remote(*task): i for i, task in enumerate(tasks)}
    results: list[Any] = [None] * len(tasks)
    waiting = list(pending)
    try:
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                i = pending[ref]
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise _ray_failure(exc, i, tasks[i]) from exc
                bar.update()
    except BaseException:
        for ref in waiting:  # stop the rest: their shards would be thrown away
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        raise
    return results


def _ray_failure(exc: BaseException, index: int, task: tuple[Any, ...]) -> MMBenchError:
    """An :class:`ExecutorError` naming the shard and the worker's own exception.

    Ray wraps a task's exception in ``RayTaskError`` (its ``cause`` is the original); a dead
    worker or node gives other ``RayError`` subclasses, which are reported as they are.
    """
    cause = getattr(exc, "cause", None) or exc
    where = f"task {index} ({task[1]!r} shard {task[2]})" if len(task) >= 3 else f"task {index}"
    if isinstance(cause, MMBenchError):
        hint = "The error is in the dataset or its config; fix it, then build again."
    else:
        hint = ("Build with executor='process' to see the full traceback locally, or check the "
                "Ray worker logs (a killed worker or node usually means it ran out of memory).")
    return ExecutorError(f"{where.capitalize()} failed on a Ray worker: {cause!r}. {hint}")
