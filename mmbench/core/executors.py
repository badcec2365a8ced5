"""Run independent tasks serially, in a local process pool, or on Ray; stop them cleanly on a signal.

Shards are generated independently, each from its own generator, so the executor never changes
the data: only how fast it is made. ``reproduce`` runs its training runs through the same
executor (one process per run).

Signals: SIGINT or SIGTERM sent to the main process alone (as ``timeout``, ``kill`` or a job
scheduler does) stop the pool: its workers get SIGTERM, then SIGKILL after a short grace period,
and are reaped before the ``KeyboardInterrupt`` reaches the caller, so the caller's clean-up
(removing temporary shard files) runs after no worker can write any more, and no process outlives
the command. :func:`interrupt_on_signals` turns SIGTERM into ``KeyboardInterrupt`` for that.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mmbench.errors import ExecutorError, MMBenchError

__all__ = ["EXECUTORS", "Interrupted", "check_run_options", "interrupt_on_signals", "run_tasks"]

EXECUTORS = ("process", "serial", "ray")
#: Seconds a worker gets to exit after SIGTERM before it is killed.
STOP_GRACE_S = 3.0
_BROKEN_HINT = (
    "A worker process died (killed, out of memory, or started from a script without an "
    "`if __name__ == \"__main__\":` guard, which spawned workers need). Add the guard, or build with num_workers=1."
)


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    num_workers: int = 1,
    executor: str = "process",
    progress: bool | None = None,
    desc: str = "",
    unit: str = "shard",
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    describe: Callable[[int, tuple[Any, ...]], str] | None = None,
    broken_hint: str = _BROKEN_HINT,
    on_result: Callable[[int, Any], None] | None = None,
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
        desc, unit: the bar's label and unit.
        initializer, initargs: run in every pool worker first (default: one BLAS thread each).
        describe: ``(index, task) -> text`` naming a task in error messages.
        broken_hint: what to say when a worker process dies.
        on_result: ``on_result(index, result)``, called here as each task finishes (e.g. a log line).

    Raises:
        ExecutorError: a task failed (naming it) or a worker died. ``KeyboardInterrupt`` (SIGINT,
            or SIGTERM under :func:`interrupt_on_signals`) is re-raised once every worker is gone.

    Example:
        >>> run_tasks(pow, [(2, 3), (3, 2)], num_workers=2)
        [8, 9]
    """
    check_run_options(num_workers=num_workers, executor=executor, progress=progress)
    from mmbench.progress import progress_bar

    name = describe or _describe
    bar = progress_bar(len(tasks), desc=desc, unit=unit, progress=progress)

    def finished(index: int, result: Any) -> None:
        bar.update()
        if on_result is not None:
            on_result(index, result)

    try:
        with interrupt_on_signals():  # SIGTERM stops the workers as Ctrl-C does, instead of orphaning them
            if executor == "ray":
                return _run_ray(fn, tasks, num_workers, finished)
            if executor == "serial" or num_workers == 1 or len(tasks) <= 1:
                return _run_here(fn, tasks, finished)
            init = (initializer, initargs) if initializer is not None else (_single_threaded_blas, ())
            return _run_pool(fn, tasks, num_workers, finished, init=init, name=name, broken_hint=broken_hint)
    finally:
        bar.close()


def _run_here(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], finished: Callable[[int, Any], None]) -> list[Any]:
    """The tasks one after another in this process."""
    results = []
    for i, task in enumerate(tasks):
        results.append(fn(*task))
        finished(i, results[-1])
    return results


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


def _describe(index: int, task: tuple[Any, ...]) -> str:
    return f"Task {index} ({task[1:3]})" if len(task) >= 3 else f"Task {index}"


def _single_threaded_blas() -> None:
    """Worker initializer: one BLAS thread per process, or N workers × M BLAS threads oversubscribe
    the cores (measured here: 2 workers with 2 OpenBLAS threads each ran slower than 1 worker)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    threadpool_limits(limits=1)


def _init_worker(workers: int, slots: Any, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    """Pool worker start: say how many workers share the machine (``$MMBENCH_NUM_WORKERS``: e.g.
    the Cycles backend gives each worker's renderer its share of the cores) and which one this is
    (``$MMBENCH_WORKER_INDEX``, 0 … workers − 1: e.g. which cores that share is), then ``initializer``."""
    with slots.get_lock():
        index = slots.value
        slots.value += 1
    os.environ["MMBENCH_NUM_WORKERS"] = str(workers)
    os.environ["MMBENCH_WORKER_INDEX"] = str(index)
    initializer(*initargs)


def _run_pool(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], num_workers: int, finished: Callable[[int, Any], None], *,
              init: tuple[Callable[..., None], tuple[Any, ...]], name: Callable[[int, tuple[Any, ...]], str],
              broken_hint: str) -> list[Any]:
    # "spawn" keeps workers free of the parent's threads and locks (torch, BLAS pools).
    ctx = multiprocessing.get_context("spawn")
    results: list[Any] = [None] * len(tasks)
    workers = min(num_workers, len(tasks), os.cpu_count() or num_workers)
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(workers, ctx.Value("i", 0), *init))
    futures: dict[cf.Future[Any], int] = {}
    try:
        futures.update((pool.submit(fn, *task), i) for i, task in enumerate(tasks))
        for future in cf.as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except MMBenchError:
                raise
            except cf.process.BrokenProcessPool as exc:
                raise ExecutorError(broken_hint) from exc
            except Exception as exc:
                raise ExecutorError(f"{name(i, tasks[i])} failed in a worker process: {exc!r}") from exc
            finished(i, results[i])
    except BaseException:
        with _signals_deferred():
            _stop_pool(pool, list(futures))
        raise
    pool.shutdown(wait=True)
    return results


def _stop_pool(pool: cf.ProcessPoolExecutor, futures: Sequence[cf.Future[Any]]) -> None:
    """Cancel what has not started, stop the workers and reap them.

    Workers get SIGTERM: a task that handles it (training saves its checkpoint) has up to
    :data:`STOP_GRACE_S` to return and its process to exit; then every worker still alive is
    killed (harmless once its task has returned: all its writes are done).
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    cf.wait([f for f in futures if not f.done()], timeout=STOP_GRACE_S)
    for p in processes:  # a worker whose task returned exits by itself: let it, within the grace period
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
    for p in processes:
        with contextlib.suppress(Exception):
            if p.is_alive():
                p.kill()
                p.join(STOP_GRACE_S)
    with contextlib.suppress(Exception):
        pool.shutdown(wait=True)  # the pool's manager thread notices the dead workers and ends


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while workers are being stopped (a second Ctrl-C must not leave orphans)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Interrupted(KeyboardInterrupt):
    """The ``KeyboardInterrupt`` raised for SIGINT or SIGTERM by :func:`interrupt_on_signals`;
    ``signum`` says which (a command exits with ``128 + signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[dict[str, int]]:
    """SIGTERM raises ``KeyboardInterrupt`` (:class:`Interrupted`) as SIGINT does, while the block
    runs (main thread only).

    The yielded dict records the signal number under ``"signal"``. Outside the main thread this
    does nothing (Python delivers signals there).
    """
    state: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: Any) -> None:
        state["signal"] = signum
        raise Interrupted(signum)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run_ray(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], num_workers: int, finished: Callable[[int, Any], None]) -> list[Any]:
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
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                i = pending[ref]
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise _ray_failure(exc, i, tasks[i]) from exc
                finished(i, results[i])
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
