"""Worker processes kept warm across the sweeps of one reproduction target.

A sweep asks its executor to train each round (the base grid, every extension of it, the
confirmation seeds) as a separate list of runs. The local executor starts ``jobs`` fresh
``spawn`` workers for each list and trains a list of one run in its own process. For the LM
target that is three start-ups per sweep — each worker importing torch and ``transformers`` and
preparing the instruction data again, ≈ 6 s of CPU — plus the vocabulary audit's runs trained
one after the other in the main process. :class:`WarmPool` starts the workers once and keeps
them for every round and for the audit, so each worker prepares its data once and a round of
one run, or the audit's two, trains in warm workers side by side.

The runs are the same runs with the same identities; a run's numbers do not depend on which
process trains it, or after which other runs (each run seeds its own initialisation and data
order, and runs that prefer one CPU thread set it themselves).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Generator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import TracebackType

from anisoada.experiments.executors import ExecutorBase, LogFn, RunFailure, execute_run
from anisoada.experiments.runs.base import RunSpec

__all__ = ["WarmPool"]


def _one_share_of_threads(threads: int) -> None:
    """Worker initialiser: ``threads`` torch threads (the machine's cores over the workers)."""
    import torch

    torch.set_num_threads(threads)


class WarmPool(ExecutorBase):
    """``jobs`` spawned worker processes that train every list of runs given to :meth:`run`
    until :meth:`close` (or the end of a ``with`` block).

    The workers start on the first list. A worker that dies fails the runs it had not finished,
    as with the local executor, and the next list starts fresh workers.

    Args:
        jobs: worker processes (at least 2; one job trains in the calling process instead).
    """

    def __init__(self, jobs: int) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 2:
            raise ValueError(f"a pool of workers needs jobs >= 2; got {jobs!r}")
        self.jobs = jobs
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers: nothing new starts; what is training finishes, and the workers
        exit in the background (the caller does not wait for their teardown)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _workers(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_one_share_of_threads,
                initargs=(max(1, (os.cpu_count() or 1) // self.jobs),),
            )
        return self._pool

    def _results(
        self, runs: Sequence[RunSpec], root: Path, log: LogFn | None
    ) -> Generator[RunFailure | None, None, None]:
        try:
            pending = self._submit(runs, root, log)
        except BrokenProcessPool:  # a worker died between two lists: start fresh ones
            self._retire()
            pending = self._submit(runs, root, log)
        for future in concurrent.futures.as_completed(pending):
            yield self._outcome(future, pending[future])

    def _submit(
        self, runs: Sequence[RunSpec], root: Path, log: LogFn | None
    ) -> dict[concurrent.futures.Future[RunFailure | None], str]:
        workers = self._workers()
        return {workers.submit(execute_run, run, str(root), log): run.run_id for run in runs}

    def _retire(self) -> None:
        """Drop a broken pool without waiting for it; the next list gets fresh workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _outcome(
        self, future: concurrent.futures.Future[RunFailure | None], run_id: str
    ) -> RunFailure | None:
        """The run's failure or ``None``; a dead worker fails the run and retires the pool."""
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            self._retire()
            return RunFailure(run_id, f"worker process died: {error}")
        return future.result()
