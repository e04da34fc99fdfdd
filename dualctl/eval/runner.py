"""Run ablation jobs in worker processes, record each result as it lands, skip finished ones.

The episode itself is run by an *episode factory*: a module-level function named
``"package.module:function"`` that takes a JSON-able ``setup`` dict and returns a callable
``Job -> EpisodeResult``. Each worker process imports it and calls it once (so models load once
per worker), then runs episodes. Jobs and results cross the process boundary as plain dicts of
str/int/float, never as pickled objects. Only the parent writes the results file.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dualctl.errors import DualctlError
from dualctl.eval.results import EpisodeResult, Job, ResultsStore

log = logging.getLogger(__name__)

EpisodeFn = Callable[[Job], EpisodeResult]

_worker_episode: EpisodeFn | None = None


class AblationError(DualctlError):
    """Some episodes raised instead of finishing; they are not recorded and a rerun retries them."""


def make_jobs(
    tasks: Sequence[str],
    arms: Sequence[str],
    splits: Sequence[str],
    episodes: int,
    seed: int,
    videos_per_arm: int = 0,
) -> list[Job]:
    """Every (task, arm, split, seed) job; episode i has seed ``seed + i`` in every arm.

    Ordered episode index first, so an interrupted run has about as many episodes in every cell.
    Videos go to the first split's ``videos_per_arm`` lowest seeds.
    """
    return [
        Job(task, arm, split, seed + i, record_video=(split == splits[0] and i < videos_per_arm))
        for i in range(episodes)
        for split in splits
        for task in tasks
        for arm in arms
    ]


def load_factory(path: str) -> Callable[[dict], EpisodeFn]:
    """Import ``"package.module:function"``."""
    module_name, sep, name = path.partition(":")
    if not sep:
        raise ValueError(f"episode factory {path!r}: expected 'package.module:function'")
    return getattr(importlib.import_module(module_name), name)


def _init_worker(factory: str, setup: dict) -> None:
    global _worker_episode
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _worker_episode = load_factory(factory)(setup)


def exit_with_parent(parent_pid: int, period_s: float = 1.0, exit_now=os._exit) -> None:
    """Ends this worker once its parent has gone (killed by a signal, the pool never shut it
    down): an orphaned worker would keep running episodes nobody records, on the same cores a
    rerun needs. Polls every ``period_s`` s."""
    while os.getppid() == parent_pid:
        time.sleep(period_s)
    exit_now(1)


def _run_in_worker(job: dict) -> dict:
    if _worker_episode is None:
        raise RuntimeError("worker used before _init_worker")
    return dataclasses.asdict(_worker_episode(Job(**job)))


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]ablate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )


def _describe(result: EpisodeResult) -> str:
    outcome = "ok" if result.success else (result.failure_reason or "fail")
    return f"{result.task}/{result.arm}/{result.split}/{result.seed}: {outcome}"


def run_jobs(
    jobs: Sequence[Job],
    store: ResultsStore,
    factory: str,
    setup: dict,
    workers: int = 1,
    show_progress: bool = True,
) -> list[EpisodeResult]:
    """Run every job not yet in ``store``; append each result as soon as it finishes.

    ``workers`` == 1 runs in this process (for debugging); more use a spawn-started pool.
    Raises :class:`AblationError` at the end if any episode raised (the rest are kept).
    """
    pending = [job for job in jobs if not store.done(job.key)]
    log.info(
        "%d of %d episodes already done; %d to run",
        len(jobs) - len(pending),
        len(jobs),
        len(pending),
    )
    failures: list[str] = []
    with _progress() as progress:
        bar = progress.add_task("", total=len(pending), visible=show_progress)

        def record(result: EpisodeResult) -> None:
            store.add(result)
            progress.update(bar, advance=1, description=_describe(result))

        if workers == 1:
            episode = load_factory(factory)(setup)
            for job in pending:
                record(episode(job))
        else:
            failures = _run_pool(pending, factory, setup, workers, record)
    if failures:
        raise AblationError(
            f"{len(failures)} episodes raised (first: {failures[0]}); they are not recorded, "
            "fix the cause and rerun the same command to run just those"
        )
    return store.results()


def _run_pool(
    pending: Sequence[Job],
    factory: str,
    setup: dict,
    workers: int,
    record: Callable[[EpisodeResult], None],
) -> list[str]:
    failures = []
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(factory, setup)
    )
    try:
        futures: dict[Future, Job] = {
            pool.submit(_run_in_worker, dataclasses.asdict(j)): j for j in pending
        }
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in finished:
                job = futures[future]
                error = future.exception()
                if error is not None:
                    log.error("episode %s raised %r", job.key, error)
                    failures.append(f"{job.key}: {error!r}")
                    continue
                record(EpisodeResult(**future.result()))
    except BaseException:
        # Ctrl-C (or a failure here): drop queued episodes and return at once; the episodes in
        # flight are lost (a rerun redoes them), finished ones are already on disk.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return failures
