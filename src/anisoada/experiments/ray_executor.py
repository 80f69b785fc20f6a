"""Runs of a sweep as Ray tasks: the cluster executor of the one sweep engine.

:class:`RayExecutor` implements :class:`~anisoada.experiments.executors.Executor`. The driver
(the process that calls :func:`~anisoada.experiments.run_sweep`) reads the store, decides what is
left, submits each run as one Ray task that declares the run's
:class:`~anisoada.experiments.runs.Resources` (``num_cpus``; ``num_gpus`` for LM runs on a GPU,
so a GPU cluster packs one run per GPU), and advances the progress bar as tasks finish.

**Who writes: the workers.** A task trains its run and writes it into the store itself, as a
local pool worker does (every file atomic, ``run.json`` last), so a run is either complete or
redone, and the rows equal the local executor's. On several nodes the output directory must be
one shared file system mounted at the same absolute path on every node and on the driver; the
data (``$ANISOADA_DATA``, LIBSVM files, GPT-2 weights) must be readable at the same paths, and
the same anisoada installed.

**A worker that dies mid-run** (killed, out of memory, its node lost): the driver removes the
temporary files the dead attempt left in the run's directory, appends the attempt to
``runs/<run_id>/retries.json`` (and to :attr:`RayExecutor.retried`) and submits the run again, at
most ``max_retries`` times; after that the run is recorded as failed (``failed.json``) and the
next invocation of the sweep retries it. A run that raises is recorded as failed with its
message and the others go on, as with the local executor.

Ray is imported when a :class:`RayExecutor` is made, not before: ``pip install 'anisoada[ray]'``.
"""

from __future__ import annotations

import collections
import datetime
import importlib
import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anisoada._io import remove_temporary_files, write_json
from anisoada.experiments.executors import (
    ExecutorBase,
    ExtraNotInstalledError,
    LogFn,
    RunFailure,
    execute_run,
)
from anisoada.experiments.runs.base import RunSpec
from anisoada.experiments.store import ResultsStore

__all__ = ["RETRIES_FILE", "RayExecutor", "RunRetry", "import_ray"]

#: Per run directory: the attempts whose worker died (a JSON list of :class:`RunRetry`).
RETRIES_FILE = "retries.json"


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error that names the extra to install.

    Raises:
        ExtraNotInstalledError: Ray is not installed.
    """
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ExtraNotInstalledError(
            "the ray executor needs Ray, which is not installed: pip install 'anisoada[ray]'",
            name="ray",
        ) from None


@dataclass(frozen=True)
class RunRetry:
    """An attempt of a run whose worker died: the run, the attempt (1: the first) and why."""

    run_id: str
    attempt: int
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "attempt": self.attempt, "error": self.error}


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class RayExecutor(ExecutorBase):
    """Each run one Ray task, on a Ray cluster or a local Ray instance (see the module docstring).

    Tasks are named ``run:<run_id>`` (what ``ps``, ``ray list tasks`` and the dashboard show).
    Ray is connected to on the first :meth:`run` and stays connected for the sweep's later rounds
    (and later sweeps of this process); :meth:`close` disconnects (and stops a local instance
    started here). When this process is already connected to Ray, that instance is used.

    Args:
        address: ``None``: start a local Ray instance on this machine (``num_cpus`` cores, all
            by default); ``"auto"``: the cluster this machine belongs to (``ray start`` was run
            here); ``"HOST:PORT"``: the cluster whose head listens there (``ray://HOST:PORT``:
            through Ray Client).
        num_cpus: Cores of the local instance (only with ``address=None``).
        max_retries: Times a run is submitted again after its worker died (0: never).
        max_in_flight: Runs submitted to Ray at once, at most (``None``: every run; Ray queues
            them until resources free up). A cap leaves the rest of a shared cluster to others.

    Raises:
        ExtraNotInstalledError: Ray is not installed (``pip install 'anisoada[ray]'``).
        ValueError: an invalid argument.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        max_retries: int = 2,
        max_in_flight: int | None = None,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"Ray address must be 'auto' or HOST:PORT; got {address!r}")
        if num_cpus is not None and address is not None:
            raise ValueError("num_cpus sizes a local Ray instance; a cluster has its own size")
        if num_cpus is not None and (
            isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1
        ):
            raise ValueError(f"num_cpus must be a positive integer; got {num_cpus!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0; got {max_retries!r}")
        limit = max_in_flight
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"max_in_flight must be a positive integer; got {limit!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.max_in_flight = max_in_flight
        #: Every attempt of this executor's runs whose worker died, in the order seen.
        self.retried: list[RunRetry] = []
        self._ray = import_ray()
        self._task: Any = None
        self._started_ray = False

    def _connect(self) -> Any:
        ray = self._ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False}
            if self.address is None:
                options["num_cpus"] = self.num_cpus
            else:
                options["address"] = self.address
            ray.init(**options)
            self._started_ray = True
        if self._task is None:
            # Retries are the driver's (below), so that each one is recorded.
            self._task = ray.remote(max_retries=0)(execute_run)
        return ray

    def close(self) -> None:
        """Disconnect from Ray if this executor connected (a local instance stops with it)."""
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._started_ray = False
        self._task = None

    def _results(
        self, runs: Sequence[RunSpec], root: Path, log: LogFn | None
    ) -> Generator[RunFailure | None, None, None]:
        """One Ray task per run; a run fails when it raised, or when its worker died in each of
        ``1 + max_retries`` attempts."""
        ray = self._connect()
        died = (
            ray.exceptions.WorkerCrashedError,
            ray.exceptions.NodeDiedError,
            ray.exceptions.OutOfMemoryError,
            ray.exceptions.ObjectLostError,
        )
        store = ResultsStore(root)
        # Workers may run in another directory (or on another node): give them the full path.
        location = str(Path(root).resolve())
        attempts: dict[str, int] = {}
        pending: dict[Any, RunSpec] = {}
        waiting = collections.deque(runs)
        limit = self.max_in_flight or len(runs)

        def submit(run: RunSpec) -> None:
            attempts[run.run_id] = attempts.get(run.run_id, 0) + 1
            resources = run.resources
            task = self._task.options(
                name=f"run:{run.run_id}",
                num_cpus=resources.num_cpus,
                num_gpus=resources.num_gpus,
            )
            pending[task.remote(run, location, log)] = run

        def fill() -> None:
            while waiting and len(pending) < limit:
                submit(waiting.popleft())

        try:
            fill()
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                run = pending.pop(ready)
                try:
                    failure = ray.get(ready)
                except died as error:
                    retry = RunRetry(run.run_id, attempts[run.run_id], _one_line(error))
                    self._record_retry(store, retry)
                    if retry.attempt <= self.max_retries:
                        if log is not None:
                            log(f"run {run.run_id}: {retry.error}; attempt {retry.attempt + 1}")
                        submit(run)
                        continue
                    failure = RunFailure(
                        run.run_id,
                        f"its worker died in each of {retry.attempt} attempts: {retry.error}",
                    )
                except ray.exceptions.RayError as error:
                    # Not the run's own exception (execute_run returns those): e.g. the run
                    # could not be unpickled on the worker.
                    failure = RunFailure(run.run_id, _one_line(error), traceback=str(error))
                yield failure
                fill()
        finally:
            for ref in pending:
                # Interrupted (Ctrl-C): stop what is still queued or training.
                ray.cancel(ref)

    def _record_retry(self, store: ResultsStore, retry: RunRetry) -> None:
        """Clear the dead attempt's temporary files, append it to ``retries.json``."""
        directory = store.run_dir(retry.run_id)
        # The attempt's process is gone and the run is not resubmitted yet: nothing writes here.
        remove_temporary_files(directory)
        path = directory / RETRIES_FILE
        history = json.loads(path.read_text()) if path.is_file() else []
        history.append({**retry.to_dict(), "time": datetime.datetime.now(datetime.UTC).isoformat()})
        write_json(path, history)
        self.retried.append(retry)
