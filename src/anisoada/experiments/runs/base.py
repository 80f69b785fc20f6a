"""What the one sweep engine needs from a kind of run: the two protocols and their shared parts.

A sweep is problems × optimizers × batch sizes × learning rates × seeds. Each *problem* (a sweep
axis entry: a LIBSVM data set, a synthetic problem, instruction data with a GPT-2, a user's own
PyTorch model) is a :class:`ProblemSpec`; for one (optimizer, batch size, seed) and a set of
learning rates it makes a :class:`RunSpec`, the unit of work the engine schedules, stores and
resumes. Adding a kind of run is writing these two classes; nothing in the engine changes.

Seeds: every run's data stream is seeded by :func:`derive_seed` from ``(base_seed,
stream_key, batch_size, seed index)`` — shared by every optimizer and learning rate at that
(problem, batch size, seed), so they are compared on the same samples.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import json
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd

from anisoada.experiments.optimizers import OptimizerSpec, build_optimizer
from anisoada.experiments.store import ResultsStore, provenance
from anisoada.train import Budget, DistributedContext, Task, TrainConfig, TrainResult, train

__all__ = [
    "CellProblem",
    "OneProcessRun",
    "ProblemSpec",
    "ProblemSpecBase",
    "Resources",
    "RunOutput",
    "RunSettings",
    "RunSpec",
    "SingleProcessRun",
    "derive_seed",
    "identity_hash",
    "lane_rows",
    "spec_from_table",
    "thread_policy",
]


@dataclass(frozen=True)
class RunSettings:
    """What every run of a sweep shares, whatever its kind.

    Attributes:
        budget: Samples, epochs or steps per run (:class:`anisoada.train.Budget`).
        evaluations: Evaluation points per run besides the initial one.
        divergence_factor: A run diverges when its mini-batch loss exceeds this multiple of its
            first one (or is NaN/inf); ``None`` checks only for NaN/inf.
        base_seed: The one seed every run's seeds derive from.
        tail_evaluations: Compute only the last this many evaluation points of the cadence
            (and the initial one): what the selection rule reads, for runs whose curves no
            table draws (``None``: every point).
    """

    budget: Budget
    evaluations: int = 20
    divergence_factor: float | None = 100.0
    base_seed: int = 0
    tail_evaluations: int | None = None

    def evaluation_steps(self, steps: int) -> tuple[int, int]:
        """``(eval_every, eval_from)`` of the loop for a run of ``steps`` steps.

        The cadence is ``max(1, steps // evaluations)``; with ``tail_evaluations = k`` the
        evaluations start at the ``k``-th last point of it (multiples of the cadence, and the
        final step), so the kept points are exactly those of a run that evaluated everywhere.

        Example:
            >>> RunSettings(Budget(steps=100), tail_evaluations=3).evaluation_steps(100)
            (5, 90)
        """
        every = max(1, steps // self.evaluations)
        tail = self.tail_evaluations
        if tail is None:
            return every, 0
        points = sorted({*range(every, steps + 1, every), steps})
        return every, points[-tail] if tail < len(points) else 0


@dataclass(frozen=True)
class Resources:
    """What one run occupies while it trains (for executors that place runs on a cluster)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0


@runtime_checkable
class RunSpec(Protocol):
    """One unit of work the engine schedules, stores and resumes.

    Usually an optimizer with one or more learning rates at a batch size and a seed
    (:class:`RunOfLanes`); a cell run (:class:`~anisoada.experiments.runs.cell.CellRun`)
    holds several optimizers and seeds. ``run_id`` is a hash of everything that determines the
    results (:meth:`identity`), so a re-run sweep skips stored runs. :meth:`execute` trains the
    run and writes it into the store at ``root`` with
    :meth:`~anisoada.experiments.ResultsStore.write_run` — rows with the columns of
    :data:`anisoada.schema.IDENTITY_COLUMNS`, ``step`` and the metrics; ``run.json`` last — or
    writes nothing at all (an interrupted run is simply redone, or resumed from its checkpoint).
    """

    # Read-only members (properties): the run kinds are frozen dataclasses.
    @property
    def run_id(self) -> str: ...

    def identity(self) -> dict[str, Any]: ...

    @property
    def resources(self) -> Resources: ...

    def execute(
        self,
        root: Path,
        *,
        context: DistributedContext | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None: ...


@runtime_checkable
class RunOfLanes(RunSpec, Protocol):
    """A run of one optimizer with one or more learning rates at a batch size and a seed.

    Its ``problem`` is its kind's own spec class (a read-only member may be narrowed).
    """

    @property
    def problem(self) -> ProblemSpec: ...

    @property
    def optimizer(self) -> OptimizerSpec: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def seed(self) -> int: ...

    @property
    def lrs(self) -> tuple[float, ...]: ...


@runtime_checkable
class ProblemSpec(Protocol):
    """One entry of a sweep's problem axis (a ``[[problems]]`` table of a sweep file).

    Attributes:
        kind: The run kind (``"logistic"``, ``"quadratic"``, ``"lm"``, ``"module"``), the
            ``kind`` key of its TOML table.
        name: Its label in results tables (the ``dataset`` column).
        lanes: Whether several learning rates can train as the lanes of one run.
        extra_tables: Per-run tables besides the rows (``runs/<id>/<name>.parquet``) that the
            sweep concatenates into ``<name>.parquet`` (e.g. the LM's per-layer ``noise``).
        distributed: Whether its runs can train data-parallel under ``torchrun``.

    ``reference_loss()`` is the objective's minimum ``f*`` when it is known (the verdicts then
    compare optimality gaps ``f − f*``), else ``None`` (they compare losses).
    """

    kind: ClassVar[str]
    lanes: ClassVar[bool]
    extra_tables: ClassVar[tuple[str, ...]]
    distributed: ClassVar[bool]

    @property
    def name(self) -> str: ...

    @property
    def stream_key(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    def validate(
        self, optimizers: Sequence[OptimizerSpec], batch_sizes: Sequence[int], settings: RunSettings
    ) -> None: ...

    def make_run(
        self,
        optimizer: OptimizerSpec,
        batch_size: int,
        lrs: Sequence[float],
        seed: int,
        settings: RunSettings,
    ) -> RunSpec: ...

    def stand_in(self) -> str | None: ...

    def reference_loss(self) -> float | None: ...


@runtime_checkable
class CellProblem(ProblemSpec, Protocol):
    """A problem with cell runs: every (optimizer, seed, learning rate) of one batch size as the
    lanes of one run (:mod:`anisoada.experiments.runs.cell`), whose rows are those of the
    ordinary runs of its lanes."""

    def make_cell_run(
        self,
        optimizers: Sequence[OptimizerSpec],
        batch_size: int,
        lanes: Sequence[tuple[OptimizerSpec, int, float]],
        settings: RunSettings,
    ) -> RunSpec: ...


def derive_seed(base_seed: int, *parts: int | str) -> int:
    """A 32-bit seed determined by ``base_seed`` and ``parts`` (strings hashed with CRC-32).

    Example:
        >>> derive_seed(0, "a9a", 64, 0) == derive_seed(0, "a9a", 64, 0)
        True
    """
    entropy = [int(base_seed)] + [
        zlib.crc32(part.encode()) if isinstance(part, str) else int(part) for part in parts
    ]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def identity_hash(identity: Mapping[str, Any], length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``identity`` as canonical JSON."""
    payload = json.dumps(dict(identity), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


_Spec = TypeVar("_Spec")


def spec_from_table(cls: type[_Spec], table: Mapping[str, Any], where: str) -> _Spec:
    """``cls(**table)`` for a frozen dataclass, with one-line errors that name ``where``.

    Unknown keys are refused (listing the known ones); a wrong type that the class's own
    validation does not catch is reported as a ``ValueError`` too.
    """
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table; got {table!r}")
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(known)}")
    try:
        return cls(**table)
    except (TypeError, AttributeError) as error:
        raise ValueError(f"{where}: invalid value ({error})") from None
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


_Problem = TypeVar("_Problem", bound=ProblemSpec)
_Run = TypeVar("_Run", bound=RunOfLanes)
#: A run class as make_run calls it: ``(problem, optimizer, batch_size, seed, lrs, settings)``.
_RunClass = Callable[[Any, OptimizerSpec, int, int, tuple[float, ...], RunSettings], _Run]


class ProblemSpecBase(abc.ABC, Generic[_Run]):
    """What the problem specs share besides their own fields: the defaults of the
    :class:`ProblemSpec` class constants (no extra tables, one process) and :meth:`make_run`.

    A subclass sets ``kind`` and ``lanes`` and says which run class it makes
    (:meth:`_run_class`).
    """

    kind: ClassVar[str]
    lanes: ClassVar[bool]
    extra_tables: ClassVar[tuple[str, ...]] = ()
    distributed: ClassVar[bool] = False

    @abc.abstractmethod
    def _run_class(self) -> _RunClass[_Run]:
        """The run class :meth:`make_run` builds."""

    def make_run(
        self,
        optimizer: OptimizerSpec,
        batch_size: int,
        lrs: Sequence[float],
        seed: int,
        settings: RunSettings,
    ) -> _Run:
        """The run of ``lrs`` at one batch size and seed index: the lanes of one run when the kind
        has lanes, else exactly one learning rate."""
        if not self.lanes and len(lrs) != 1:
            raise ValueError(f"a {self.kind} problem trains one learning rate per run (no lanes)")
        rates = tuple(float(lr) for lr in lrs)
        return self._run_class()(self, optimizer, batch_size, seed, rates, settings)


class RunOutput(NamedTuple):
    """What a trained single-process run leaves for the store: its rows, the loop's result, the
    extra fields of its ``run.json`` and its vectors (``vectors.npz``; ``None``: none)."""

    rows: pd.DataFrame
    result: TrainResult
    fields: dict[str, Any]
    vectors: dict[str, np.ndarray] | None = None


@contextlib.contextmanager
def thread_policy(threads: str) -> Iterator[None]:
    """Run the body under a thread policy, restoring torch's thread count afterwards.

    ``"any"``: the process's settings; ``"torch"``: one torch thread; ``"torch+blas"``: one torch
    thread and one BLAS/OpenMP thread (threadpoolctl).
    """
    if threads == "any":
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if threads == "torch+blas":
            import threadpoolctl

            with threadpoolctl.threadpool_limits(1):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(previous)


class OneProcessRun(abc.ABC):
    """A run identified by the hash of its :meth:`identity` that trains in one process on one
    CPU: what :class:`SingleProcessRun` and the cell run share.

    :meth:`execute` trains in this process under the thread policy :attr:`threads`
    (:func:`thread_policy`) and writes the run into the store: ``_train_run()`` returns what
    the store keeps (:class:`RunOutput`), ``_record`` its ``run.json``.
    """

    #: ``"any"``: the process's thread settings; ``"torch"``: one torch thread; ``"torch+blas"``:
    #: one torch thread and one BLAS/OpenMP thread. Small problems lose more to thread pools
    #: than they gain (5-10x on 2 cores); parallelism comes from running runs side by side.
    threads: ClassVar[str] = "any"

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that determines the run's rows (hashed into :attr:`run_id`)."""

    def execute(
        self,
        root: Path,
        *,
        context: DistributedContext | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """Train and store the run, in this process (``context`` and ``log`` are not used)."""
        with thread_policy(self.threads):
            started = RunClock(own_thread=self.threads == "torch+blas")
            output = self._train_run()
            record = self._record(started, output)
            ResultsStore(root).write_run(self.run_id, output.rows, record, output.vectors)

    @abc.abstractmethod
    def _train_run(self) -> RunOutput:
        """Train the run in this process; what the store keeps of it."""

    @abc.abstractmethod
    def _record(self, started: RunClock, output: RunOutput) -> dict[str, Any]:
        """The run's ``run.json``."""

    @property
    def run_id(self) -> str:
        """Hash of :meth:`identity`."""
        return identity_hash(self.identity())

    @property
    def resources(self) -> Resources:
        return Resources(num_cpus=1.0)


@dataclass(frozen=True)
class SingleProcessRun(OneProcessRun, Generic[_Problem]):
    """What the run kinds that train in one process share (logistic, quadratic, a user's module).

    The identity of a (problem, optimizer, batch size, seed, learning rates, settings), its hash
    as the run id, one CPU as the resources, the data stream's seed, the loop's configuration,
    and :meth:`execute`: train in this process (with the thread policy :attr:`threads`) and
    write the run into the store. A subclass implements ``_train_run()``, which trains the run
    (:meth:`_train`) and returns what the store keeps (:class:`RunOutput`).
    """

    problem: _Problem
    optimizer: OptimizerSpec
    batch_size: int
    seed: int
    lrs: tuple[float, ...]
    settings: RunSettings

    def identity(self) -> dict[str, Any]:
        """Everything that determines the run's numbers."""
        return {
            "kind": self.problem.kind,
            "problem": self.problem.to_dict(),
            "optimizer": self.optimizer.identity(),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "lrs": list(self.lrs),
            **settings_identity(self.settings),
        }

    @property
    def data_seed(self) -> int:
        """Seed of the mini-batch stream (shared by every optimizer and lr at the batch size)."""
        stream = self.problem.stream_key
        return derive_seed(self.settings.base_seed, stream, self.batch_size, self.seed)

    def _record(self, started: RunClock, output: RunOutput) -> dict[str, Any]:
        return run_record(self, started, output.result, **output.fields)

    def _train(self, task: Task, n_train: int | None = None) -> tuple[TrainResult, int]:
        """Train ``task`` through the one loop; the result and the number of steps.

        The run's optimizer at its learning rates (as lanes when the kind has lanes); the sweep's
        budget (samples or epochs of ``n_train`` rows, or steps); the data stream of
        :attr:`data_seed`; ``settings.evaluations`` evaluations.
        """
        lrs = self.lrs if self.problem.lanes else self.lrs[0]
        optimizer = build_optimizer(self.optimizer, task.parameters(), lrs)
        budget = self.settings.budget
        if n_train is not None and budget.steps is None:
            budget = Budget(samples=budget.samples_for(n_train))
        steps = budget.num_steps(self.batch_size)
        every, first = self.settings.evaluation_steps(steps)
        config = TrainConfig(
            batch_size=self.batch_size,
            budget=budget,
            seed=self.data_seed,
            eval_every=every,
            eval_from=first,
            divergence_factor=self.settings.divergence_factor,
        )
        return train(task, optimizer, config), steps


def settings_identity(settings: RunSettings) -> dict[str, Any]:
    """The shared settings as they enter a run's identity (``tail_evaluations`` only when set,
    so the ids of runs that evaluate everywhere are those they always had)."""
    identity: dict[str, Any] = {
        "budget": settings.budget.to_dict(),
        "evaluations": settings.evaluations,
        "divergence_factor": settings.divergence_factor,
        "base_seed": settings.base_seed,
    }
    if settings.tail_evaluations is not None:
        identity["tail_evaluations"] = settings.tail_evaluations
    return identity


def run_rows(
    run: RunOfLanes,
    result: TrainResult,
    *,
    scheduled_lr: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """A run's stored rows: the loop's rows with the identity columns in front.

    Columns: ``dataset, optimizer, optimizer_name, optimizer_options, batch_size, seed, lr``
    (:data:`anisoada.schema.IDENTITY_COLUMNS` and the optimizer's key and options), the loop's
    ``step, samples, train_time, batch_loss`` and metrics, ``extra``, ``status`` and ``run_id``.
    ``lr`` is the lane's learning rate; with ``scheduled_lr`` the loop's per-row learning rate
    (the schedule's value) is kept as ``current_lr``, otherwise dropped (it equals ``lr``).
    """
    return lane_rows(
        result,
        lambda lanes: {
            "dataset": run.problem.name,
            "optimizer": run.optimizer.label,
            "optimizer_name": run.optimizer.name,
            "optimizer_options": run.optimizer.options_json,
            "batch_size": run.batch_size,
            "seed": run.seed,
            "lr": np.asarray(run.lrs)[lanes],
        },
        current_lr=scheduled_lr,
        extra=extra,
        run_id=run.run_id,
    )


def lane_rows(
    result: TrainResult,
    identity: Callable[[np.ndarray], Mapping[str, Any]],
    *,
    current_lr: bool = False,
    extra: Mapping[str, Any] | None = None,
    run_id: str,
) -> pd.DataFrame:
    """The loop's rows as a table: ``identity(lanes)`` in front (scalars, or one value per row
    given each row's lane), the loop's columns without ``lane`` (``lr`` kept as ``current_lr``
    or dropped), ``extra``, each row's lane ``status`` and ``run_id``.

    Built as one set of columns and one ``DataFrame`` call: inserting columns one at a time
    into a frame made from the row dicts cost about 2 ms a run, a third of a short run's fixed
    cost (same columns, order and dtypes).
    """
    rows = result.rows
    keys = rows[0].keys() if rows else ()
    if rows and all(row.keys() == keys for row in rows):
        loop = {key: [row[key] for row in rows] for key in keys}
    else:  # rows with differing keys (or none): pandas aligns them, missing values as NaN
        frame = pd.DataFrame(rows)
        loop = {key: frame[key] for key in frame.columns}
    lanes = np.asarray(loop.pop("lane"), dtype=np.intp)
    columns: dict[str, Any] = dict(identity(lanes))
    for key, values in loop.items():
        if key != "lr":
            columns[key] = values
        elif current_lr:
            columns["current_lr"] = values
    columns.update(extra or {})
    columns["status"] = np.asarray(result.status, dtype=object)[lanes]
    columns["run_id"] = run_id
    return pd.DataFrame(columns)


def run_record(
    run: RunOfLanes, started: RunClock, result: TrainResult, **fields: Any
) -> dict[str, Any]:
    """A run's ``run.json``: id, kind, identity, per-lane status and steps, ``fields``, the wall
    and CPU seconds since ``started`` and provenance."""
    return {
        "run_id": run.run_id,
        "kind": run.problem.kind,
        "unit": run.identity(),
        "status": dict(zip(map(str, run.lrs), result.status)),
        "steps": dict(zip(map(str, run.lrs), result.steps)),
        **fields,
        **started.elapsed(),
        "provenance": provenance(),
    }


@dataclass(frozen=True)
class RunClock:
    """When a run started, by the wall clock and by CPU time.

    A run records both (``wall_time``, ``cpu_time``): the wall clock is what a user waits, the
    CPU time what the run cost whatever else shared the machine — the figure cost comparisons
    read (:mod:`anisoada.advice.pilot`).

    Whose CPU time: with ``own_thread`` the calling thread's (``time.thread_time``), for a run
    that does all its work on that thread — one that trains under a one-thread policy
    (:func:`thread_policy` ``"torch+blas"``). Other threads of the process are then not the
    run's: a BLAS pool still spinning after earlier multi-threaded work of the process (OpenBLAS
    threads busy-wait for a while after a call), an allocator's background thread. Counting
    them charged up to 50 ms to whichever run came next. Otherwise the whole process's
    (``time.process_time``): a run that may use several threads. ``cpu_clock`` in the record
    says which (``"thread"`` or ``"process"``).
    """

    own_thread: bool = False
    wall: float = field(default_factory=time.perf_counter)
    cpu: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cpu", self._cpu_now())

    def _cpu_now(self) -> float:
        return time.thread_time() if self.own_thread else time.process_time()

    def elapsed(self) -> dict[str, Any]:
        """``{"wall_time": …, "cpu_time": …}`` in seconds since the start, and the CPU clock
        read (``"cpu_clock"``)."""
        return {
            "wall_time": time.perf_counter() - self.wall,
            "cpu_time": self._cpu_now() - self.cpu,
            "cpu_clock": "thread" if self.own_thread else "process",
        }
