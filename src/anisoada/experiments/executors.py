"""Where a sweep's runs execute: the executor interface and its local implementations.

The one sweep engine hands an executor a list of runs (:class:`~anisoada.experiments.runs.RunSpec`)
and a store root; the executor trains each (``run.execute(root)``, which writes the run into the
store itself, atomically, ``run.json`` last) and returns the runs that raised. A run that raises
is recorded as failed with its message and does not stop the others; interrupting the sweep
(Ctrl-C, a killed process) loses at most the runs in flight, which a re-run redoes.

* :class:`LocalExecutor` — this process (``jobs=1``) or a pool of ``jobs`` worker processes;
* :class:`CollectiveExecutor` — every ``torchrun`` process trains every run together (data
  parallel); rank 0 decides what is left and writes;
* :class:`~anisoada.experiments.ray_executor.RayExecutor` — each run a Ray task on a cluster (or
  a local Ray instance), in its own module so that nothing imports ``ray`` unless it is chosen.

:func:`default_executor` makes the one a sweep names (``executor = "local"`` or ``"ray"``).
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import multiprocessing
import os
import traceback
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from anisoada.experiments.runs.base import RunSpec
from anisoada.train import DistributedContext

__all__ = [
    "EXECUTORS",
    "CollectiveExecutor",
    "Executor",
    "ExecutorBase",
    "ExtraNotInstalledError",
    "LocalExecutor",
    "RunFailure",
    "default_executor",
    "execute_run",
]

#: The executors a sweep can name (``SweepConfig.executor``, ``--executor``).
EXECUTORS = ("local", "ray")

_T = TypeVar("_T")
LogFn = Callable[[str], None]


class ExtraNotInstalledError(ImportError, ValueError):
    """An optional dependency is missing; the message names the extra that installs it.

    A ``ValueError`` too, so the command line reports it as a usage error (one line, status 2).
    """


@dataclass(frozen=True)
class RunFailure:
    """A run that raised: its id, the one-line error and the traceback."""

    run_id: str
    error: str
    traceback: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "error": self.error, "traceback": self.traceback}


@runtime_checkable
class Executor(Protocol):
    """Runs a sweep's runs (see the module docstring)."""

    @property
    def is_main(self) -> bool:
        """Whether this process reads the store, decides and writes the sweep's tables."""
        ...

    def share(self, value: _T) -> _T:
        """The main process's ``value``, returned in every participating process."""
        ...

    def run(
        self,
        runs: Sequence[RunSpec],
        root: Path,
        *,
        progress: bool = True,
        desc: str = "",
        log: LogFn | None = None,
    ) -> list[RunFailure]:
        """Train every run into the store at ``root``; return those that raised."""
        ...


def execute_run(run: RunSpec, root: str | Path, log: LogFn | None = None) -> RunFailure | None:
    """Train one run into the store; a raised exception becomes a :class:`RunFailure`.

    Module-level (picklable), so worker processes and cluster tasks can call it.
    """
    try:
        run.execute(Path(root), log=log)
    except Exception as error:
        return RunFailure(
            run_id=run.run_id,
            error=f"{type(error).__name__}: {error}".splitlines()[0],
            traceback=traceback.format_exc(),
        )
    return None


def _set_worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ExecutorBase(abc.ABC):
    """What the executors here share: one progress bar over the runs as they finish, the failures
    collected (never raised, so the other runs finish), and the defaults of a driver that is this
    one process (:attr:`is_main`, :meth:`share`).

    A subclass yields one item per finished run from ``_results``: its :class:`RunFailure`, or
    ``None``. ``shows_progress`` is false for one that draws no bar.
    """

    shows_progress: ClassVar[bool] = True

    @property
    def is_main(self) -> bool:
        return True

    def share(self, value: _T) -> _T:
        return value

    def run(
        self,
        runs: Sequence[RunSpec],
        root: Path,
        *,
        progress: bool = True,
        desc: str = "",
        log: LogFn | None = None,
    ) -> list[RunFailure]:
        """Train every run into the store at ``root``; return those that failed."""
        from tqdm.auto import tqdm

        if not runs:
            return []
        failures: list[RunFailure] = []
        shown = progress and self.shows_progress
        bar = tqdm(total=len(runs), desc=desc, unit="run", disable=not shown, leave=False)
        try:
            # closing: an interruption stops what is in flight before the bar goes.
            with contextlib.closing(self._results(runs, root, log)) as results:
                for failure in results:
                    if failure is not None:
                        failures.append(failure)
                    bar.update()
        finally:
            bar.close()
        return failures

    @abc.abstractmethod
    def _results(
        self, runs: Sequence[RunSpec], root: Path, log: LogFn | None
    ) -> Generator[RunFailure | None, None, None]:
        """Train ``runs`` into the store at ``root``, yielding per finished run its failure or
        ``None``."""


class LocalExecutor(ExecutorBase):
    """This process, or ``jobs`` worker processes (``spawn``) on this machine.

    Each worker uses ``cpu_count // jobs`` torch threads (runs that prefer one thread, such as
    the logistic ones, set it themselves). A worker that dies (killed, out of memory) fails the
    runs it had not finished; they are redone by the next sweep invocation.
    """

    def __init__(self, jobs: int = 1) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be a positive integer; got {jobs!r}")
        self.jobs = jobs

    def _results(
        self, runs: Sequence[RunSpec], root: Path, log: LogFn | None
    ) -> Generator[RunFailure | None, None, None]:
        if self.jobs == 1 or len(runs) <= 1:
            for run in runs:
                yield execute_run(run, root, log)
            return
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_set_worker_threads,
            initargs=(threads,),
        ) as pool:
            futures = {pool.submit(execute_run, run, str(root), log): run for run in runs}
            for future in concurrent.futures.as_completed(futures):
                try:
                    failure = future.result()
                except concurrent.futures.process.BrokenProcessPool as error:
                    failure = RunFailure(futures[future].run_id, f"worker process died: {error}")
                yield failure


class CollectiveExecutor(ExecutorBase):
    """Every process of a ``torchrun`` job trains every run together (data parallel).

    Rank 0 reads the store and decides (its answers are broadcast with :meth:`share`); the runs
    execute in the same order on every rank. A run that raises stops the job on every rank
    (collective training cannot skip a run on one rank only). No progress bar (one per rank
    would interleave).
    """

    shows_progress: ClassVar[bool] = False

    def __init__(self, context: DistributedContext) -> None:
        self.context = context

    @property
    def is_main(self) -> bool:
        return self.context.is_main

    def share(self, value: _T) -> _T:
        return self.context.broadcast_object(value)

    def _results(
        self, runs: Sequence[RunSpec], root: Path, log: LogFn | None
    ) -> Generator[RunFailure | None, None, None]:
        for run in runs:
            run.execute(root, context=self.context, log=log)
            yield None


def default_executor(
    jobs: int = 1,
    context: DistributedContext | None = None,
    *,
    kind: str = "local",
    ray_address: str | None = None,
) -> Any:
    """The executor a sweep names.

    ``kind="local"``: :class:`CollectiveExecutor` under a multi-process ``context``, else a
    :class:`LocalExecutor` of ``jobs`` processes. ``kind="ray"``: a
    :class:`~anisoada.experiments.ray_executor.RayExecutor` on the cluster at ``ray_address``
    (``None``: a local Ray instance of this machine's cores); the cluster's size and each run's
    declared resources set the parallelism, so ``jobs`` must stay 1.

    Raises:
        ValueError: an unknown kind, or a combination that cannot work (``jobs > 1`` under
            ``torchrun`` or with Ray, Ray under ``torchrun``).
        ExtraNotInstalledError: ``kind="ray"`` without the ``ray`` extra.
    """
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; use one of {list(EXECUTORS)}")
    distributed = context is not None and context.distributed
    if kind == "ray":
        if distributed:
            raise ValueError(
                "the ray executor trains each run in its own Ray task; under torchrun use the "
                "local executor (or run the sweep without torchrun, one GPU per run)"
            )
        if jobs != 1:
            raise ValueError(
                "jobs sets the local pool's size; with the ray executor the cluster's size and "
                "each run's resources decide how many runs train at once"
            )
        from anisoada.experiments.ray_executor import RayExecutor

        return RayExecutor(ray_address)
    if ray_address is not None:
        raise ValueError("a Ray address needs the ray executor (executor = 'ray')")
    if distributed:
        if jobs != 1:
            raise ValueError("jobs > 1 starts separate processes; under torchrun use jobs=1")
        assert context is not None
        return CollectiveExecutor(context)
    return LocalExecutor(jobs)
