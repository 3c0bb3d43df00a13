"""Where a sweep's trials run: in this process, in a local process pool, or as Ray Tune trials.

Every runner takes the same jobs (``(params, folder)`` pairs) and calls ``on_done(record)`` as
each trial finishes, with the record ``run_trial`` returns, so results and files have the same
form whichever ran them.

* ``run_inline``: one after another in this process (``workers=1``).
* ``run_local``: a ``ProcessPoolExecutor`` of spawned workers. Each worker's BLAS may use
  ``cores // workers`` threads: the thread variables (``OMP_NUM_THREADS`` ...) are set while
  the pool starts its workers, which read them when NumPy loads, and ``threadpoolctl`` (when
  installed) enforces the same limit once NumPy is loaded. Workers ignore Ctrl-C; the parent
  cancels the pending trials, stops the running ones and raises ``KeyboardInterrupt``.
* ``run_ray``: a ``ray.tune.Tuner`` whose trainable runs the same ``run_trial`` and reports
  every epoch's metrics to Tune, so the ASHA scheduler (``scheduler="asha"``) can stop
  unpromising trials early. Ray is imported only here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from chainrule.sweep.trial import run_trial, write_json

Job = tuple[dict[str, Any], str]
OnDone = Callable[[dict[str, Any]], None]
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
RAY_MISSING = "--ray needs Ray Tune: pip install 'chainrule[sweep]' (or pip install 'ray[tune]')"
_limits: Any = None  # the worker's threadpoolctl limiter, kept alive for the worker's lifetime


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, cores() // max(1, workers))


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP threads at ``threads`` in this process (env for libraries not yet loaded, threadpoolctl now)."""
    global _limits
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the variables alone hold for a BLAS loaded after this point
        return
    _limits = threadpool_limits(limits=threads)


def blas_threads() -> list[int]:
    """The thread count of each BLAS/OpenMP pool loaded in this process (needs threadpoolctl)."""
    import numpy  # noqa: F401  (loads the BLAS, so there is something to inspect)
    from threadpoolctl import threadpool_info

    return [int(pool["num_threads"]) for pool in threadpool_info()]


def _init_worker(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    limit_threads(threads)


@contextlib.contextmanager
def _thread_environment(threads: int) -> Iterator[None]:
    """Set the thread variables while workers are spawned (they read them when NumPy loads), then restore."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --------------------------------------------------------------------- in this process, and a process pool
def run_inline(jobs: Sequence[Job], on_done: OnDone) -> None:
    for params, folder in jobs:
        on_done(run_trial(params, folder))


def run_local(jobs: Sequence[Any], workers: int, on_done: OnDone, task: Callable[..., Any] = run_trial) -> None:
    """Run ``task(*job)`` for each job on ``workers`` spawned processes, calling ``on_done`` with each result.

    On Ctrl-C (or any error) the pending jobs are cancelled, the workers stopped, and the error raised.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    threads = threads_per_worker(workers)
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent; a fresh BLAS per worker
    with _thread_environment(threads):
        executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,))
        try:
            pending = {executor.submit(task, *job) for job in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_done(future.result())
        except BrokenProcessPool:
            _stop(executor)
            raise RuntimeError(
                "a sweep worker process ended abruptly (killed, out of memory, or started from a script that "
                'calls chainrule.sweep with workers > 1 outside `if __name__ == "__main__":`)'
            ) from None
        except BaseException:
            _stop(executor)
            raise
        executor.shutdown(wait=True)


def _stop(executor: Any) -> None:
    """Cancel what has not started and end the workers now (the running trials write only temporary folders)."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


# --------------------------------------------------------------------- Ray Tune
def _ray_trial(config: dict[str, Any], jobs: Sequence[Job]) -> None:
    """The Tune trainable: the same trial code, every epoch's logs reported to Tune (ASHA decides on them)."""
    from ray import tune

    limit_threads(1)
    params, folder = jobs[config["index"]]

    def report(epoch: int, logs: dict[str, float]) -> None:
        tune.report({**logs, "epoch": epoch})

    run_trial(params, folder, report)


def _collected(job: Job, index: int, error: str | None, last: dict[str, Any] | None) -> dict[str, Any]:
    """The record of a Ray trial: the one its folder holds, or a "failed"/"stopped" one written now."""
    from chainrule.sweep.trial import summary

    params, folder = job
    path = Path(folder) / "metrics.json"
    if path.is_file():
        return summary(json.loads(path.read_text()))
    record: dict[str, Any] = {"id": Path(folder).name, "params": params, "status": "failed", "error": error}
    if error is None:  # ended by the scheduler (ASHA) before its last epoch: its latest scores, no model
        last = last or {}
        record.update(status="stopped", epochs=int(last.get("epoch", 0)))
        record.update({k: v for k, v in last.items() if k.startswith("val_") and isinstance(v, (int, float))})
    record.update(folder=str(folder), model=None)
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return record


def run_ray(
    jobs: Sequence[Job],
    on_done: OnDone,
    *,
    address: str | None,
    workers: int | None,
    scheduler: str,
    metric: str,
    mode: str,
    storage: Path,
) -> None:
    """Run ``jobs`` as Ray Tune trials on the cluster at ``address`` (a local one when None, or the running one)."""
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
    except ImportError:
        raise ImportError(RAY_MISSING) from None

    reported: set[int] = set()

    def finish(index: int, error: str | None, last: dict[str, Any] | None) -> None:
        if index not in reported:
            reported.add(index)
            on_done(_collected(jobs[index], index, error, last))

    class Reporter(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            finish(trial.config["index"], None, trial.last_result)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            finish(trial.config["index"], f"RayTrialError: trial {trial.trial_id} failed", trial.last_result)

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the quiet reporter: verbose=0 means silent
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        epochs = max(int(params["epochs"]) for params, _ in jobs)
        # NOTE: max_t is one past the last epoch: ASHA stops a trial that reaches max_t at once, which would
        # kill a trial that trained every epoch before it saved its model.
        asha = ASHAScheduler(max_t=epochs + 1, grace_period=1, reduction_factor=2) if scheduler == "asha" else None
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_ray_trial, jobs=list(jobs)), {"cpu": 1}),
            param_space={"index": tune.grid_search(list(range(len(jobs))))},
            tune_config=tune.TuneConfig(
                metric=metric, mode=mode, scheduler=asha, max_concurrent_trials=workers or None
            ),
            run_config=tune.RunConfig(
                name="tune", storage_path=str(storage.resolve()), verbose=0, callbacks=[Reporter()]
            ),
        )
        # NOTE: Tune draws a summary box on stdout even at verbose=0; stdout is for the sweep's own table.
        with contextlib.redirect_stdout(sys.stderr):
            grid = tuner.fit()
        for result in grid:
            error = f"{type(result.error).__name__}: {result.error}" if result.error else None
            finish(result.config["index"], error, result.metrics)
    finally:
        if started:
            ray.shutdown()


__all__ = ["RAY_MISSING", "blas_threads", "cores", "limit_threads", "run_inline", "run_local", "run_ray"]
