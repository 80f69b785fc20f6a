"""The one sweep engine: problems × optimizers × batch sizes × learning rates × seeds.

Every kind of run — logistic regression, the demo's quadratic, GPT-2 instruction tuning — goes
through :func:`run_sweep`. A sweep (:class:`SweepConfig`) is a set of problems
(:class:`~anisoada.experiments.runs.ProblemSpec`), optimizers with their options and
learning-rate grids, batch sizes and seeds, all at one budget (samples by default, so larger
batches take fewer steps). For each (problem, optimizer, batch size) the best learning rate is
chosen by the one selection rule (:mod:`anisoada.experiments.selection`); when it sits at an edge
of the rates tried, the grid is extended by the one extension rule (:class:`LRGrid`) and the new
rates are run.

Work is cut into runs (:class:`~anisoada.experiments.runs.RunSpec`): a problem whose runs take
lanes trains all the learning rates of a (problem, optimizer, batch size, seed) in one pass when
``vectorize`` is on, one run per rate otherwise; with ``cells`` on, a problem that has cell runs
trains every optimizer, seed and rate of a round at one batch size in one pass
(:mod:`anisoada.experiments.runs.cell`: the same rows, fewer passes). A run's id is a hash of
everything that determines its results, so re-running a sweep skips stored runs, and a sweep
killed at any moment and re-run ends with exactly the rows of an uninterrupted one. Runs execute
on an :class:`~anisoada.experiments.executors.Executor` (this process, a local pool, every
``torchrun`` rank together, or a cluster).

Outputs under ``out``: ``sweep.json`` (the resolved configuration and provenance),
``sweep.toml`` (the same configuration, accepted back by ``anisoada sweep``),
``runs/<run_id>/`` (one directory per run), and at the end ``results.parquet`` (every row),
``selection.parquet`` / ``selection.csv`` and the problems' extra tables (e.g. ``noise.parquet``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anisoada._io import write_json
from anisoada.experiments.executors import EXECUTORS, Executor, RunFailure, default_executor
from anisoada.experiments.grid import LRGrid
from anisoada.experiments.optimizers import OptimizerSpec
from anisoada.experiments.runs import ProblemSpec, RunSettings, RunSpec
from anisoada.experiments.runs.base import CellProblem
from anisoada.experiments.selection import SelectionRule, run_scores, seed_scores, select_best
from anisoada.experiments.store import ResultsStore, provenance
from anisoada.experiments.verdict import compare_to_baseline
from anisoada.schema import GROUP_COLUMNS, IDENTITY_COLUMNS, SELECTION_COLUMNS, files
from anisoada.train import Budget, DistributedContext

__all__ = ["MAX_SWEEP_RUNS", "SweepConfig", "SweepFailedError", "SweepResult", "run_sweep"]

GroupKey = tuple[str, str, int]

#: The most runs a sweep may declare (problems × optimizers × batch sizes × seeds × learning
#: rates of the first round): far beyond what any machine trains, and small enough that a typo
#: (``seeds = 1000000000``) is refused at once instead of listing runs until memory runs out.
MAX_SWEEP_RUNS = 1_000_000


@dataclass(frozen=True)
class SweepConfig:
    """A whole sweep, built once at the edge (TOML file or CLI) and frozen.

    Args:
        name: Label of the sweep.
        problems: The problem axis (data sets, models): any :class:`ProblemSpec`.
        optimizers: The optimizers, each with its options and (optionally) its own lr grid.
        batch_sizes: Examples per optimizer step.
        budget: Samples, epochs or steps per run (:class:`anisoada.train.Budget`).
        lr_grid: Learning rates to try first and how far to extend them (optimizers without
            their own grid).
        seeds: Number of seeds (seed indices ``0 … seeds−1``).
        base_seed: The one seed every run's seed derives from.
        evaluations: Evaluation points per run besides the initial one.
        vectorize: Train all learning rates of a (problem, optimizer, batch size, seed) as the
            lanes of one run, where the problem supports lanes.
        cells: Train every (optimizer, seed, learning rate) of a round at one (problem, batch
            size) as the lanes of one cell run, where the problem has cell runs (the rows are
            those of the ordinary runs; what changes is the number of passes).
        tail_evaluations: Compute only the last this many evaluation points of each run's
            cadence (the selection rule reads its window and the point before it); ``None``
            evaluates at every point, as the curves of a report need.
        divergence_factor: A run diverges when its mini-batch loss exceeds this multiple of its
            first one (``None``: only NaN/inf).
        selection: The selection rule's tail window and stability tolerance
            (:class:`~anisoada.experiments.selection.SelectionRule`).
        tuning_seeds: Choose learning rates on the first ``tuning_seeds`` seeds only; the other
            seeds run at the chosen rates alone (confirmation runs: far cheaper when runs take
            no lanes). ``None``: every seed tunes.
        baseline: The optimizer label every other one is compared with in the verdicts
            (default: the first optimizer named ``sgd``, else the first one).
        executor: Where the runs execute when :func:`run_sweep` is given no executor:
            ``"local"`` (this process or a local pool) or ``"ray"`` (Ray tasks; needs the
            ``ray`` extra). It changes no result.
        ray_address: The Ray cluster of the ``"ray"`` executor: ``"auto"`` or ``HOST:PORT``
            (``None``: start a local Ray instance).
    """

    name: str
    problems: tuple[ProblemSpec, ...]
    optimizers: tuple[OptimizerSpec, ...]
    batch_sizes: tuple[int, ...]
    budget: Budget
    lr_grid: LRGrid = field(default_factory=LRGrid)
    seeds: int = 1
    base_seed: int = 0
    evaluations: int = 20
    vectorize: bool = True
    cells: bool = False
    tail_evaluations: int | None = None
    divergence_factor: float | None = 100.0
    selection: SelectionRule = field(default_factory=SelectionRule)
    tuning_seeds: int | None = None
    baseline: str | None = None
    executor: str = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"sweep name must be a non-empty string; got {self.name!r}")
        for label, values in (
            ("problems", self.problems),
            ("optimizers", self.optimizers),
            ("batch_sizes", self.batch_sizes),
        ):
            if not isinstance(values, tuple) or not values:
                raise ValueError(f"sweep {self.name!r} needs at least one entry in {label}")
        for batch_size in self.batch_sizes:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"batch sizes must be positive integers; got {batch_size!r}")
        for label, names in (
            ("problem name", [p.name for p in self.problems]),
            ("optimizer label", [o.label for o in self.optimizers]),
            ("batch size", list(self.batch_sizes)),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {label}s in sweep {self.name!r}: {names}")
        if not isinstance(self.budget, Budget):
            raise ValueError(f"budget must be a Budget; got {self.budget!r}")
        if not isinstance(self.lr_grid, LRGrid):
            raise ValueError(f"lr_grid must be an LRGrid; got {self.lr_grid!r}")
        for label, value, minimum in (
            ("seeds", self.seeds, 1),
            ("evaluations", self.evaluations, 1),
            ("base_seed", self.base_seed, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{label} must be an integer >= {minimum}; got {value!r}")
        for label, flag in (("vectorize", self.vectorize), ("cells", self.cells)):
            if not isinstance(flag, bool):
                raise ValueError(f"{label} must be true or false; got {flag!r}")
        tail = self.tail_evaluations
        if tail is not None and (
            isinstance(tail, bool)
            or not isinstance(tail, int)
            or not self.selection.window < tail <= self.evaluations
        ):
            raise ValueError(
                f"tail_evaluations must be an integer above the selection window "
                f"({self.selection.window}) and at most evaluations ({self.evaluations}); "
                f"got {tail!r}"
            )
        factor = self.divergence_factor
        if factor is not None and (
            isinstance(factor, bool) or not isinstance(factor, int | float) or not factor > 1
        ):
            raise ValueError(f"divergence_factor must be a number > 1 (or none); got {factor!r}")
        if not isinstance(self.selection, SelectionRule):
            raise ValueError(f"selection must be a SelectionRule; got {self.selection!r}")
        runs = self.first_round_runs
        if runs > MAX_SWEEP_RUNS:
            raise ValueError(
                f"sweep {self.name!r} would make {runs} runs (problems × optimizers × batch sizes "
                f"× seeds × learning rates), more than {MAX_SWEEP_RUNS}; lower seeds, or give "
                "fewer batch sizes, optimizers or learning rates"
            )
        tuning = self.tuning_seeds
        if tuning is not None and (
            isinstance(tuning, bool) or not isinstance(tuning, int) or not 1 <= tuning <= self.seeds
        ):
            raise ValueError(
                f"tuning_seeds must be an integer from 1 to seeds ({self.seeds}); got {tuning!r}"
            )
        labels = [o.label for o in self.optimizers]
        if self.baseline is not None and self.baseline not in labels:
            raise ValueError(
                f"baseline {self.baseline!r} is not an optimizer label; use one of {labels}"
            )
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; use one of {list(EXECUTORS)}")
        address = self.ray_address
        if address is not None and (self.executor != "ray" or not isinstance(address, str)):
            raise ValueError(
                f"ray_address {address!r} is for the ray executor (executor = 'ray'; "
                "--executor ray): 'auto' or HOST:PORT"
            )

    @property
    def settings(self) -> RunSettings:
        """What every run shares."""
        return RunSettings(
            budget=self.budget,
            evaluations=self.evaluations,
            divergence_factor=self.divergence_factor,
            base_seed=self.base_seed,
            tail_evaluations=self.tail_evaluations,
        )

    @property
    def baseline_label(self) -> str:
        """The optimizer the verdicts compare every other one with."""
        if self.baseline is not None:
            return self.baseline
        sgd = [o.label for o in self.optimizers if o.name == "sgd"]
        return sgd[0] if sgd else self.optimizers[0].label

    @property
    def tuning(self) -> int:
        """Seeds that choose the learning rates."""
        return self.seeds if self.tuning_seeds is None else self.tuning_seeds

    def grid(self, optimizer: OptimizerSpec) -> LRGrid:
        """The learning-rate grid of an optimizer (its own, else the sweep's)."""
        return optimizer.lr_grid or self.lr_grid

    @property
    def first_round_runs(self) -> int:
        """Runs of one learning rate each before any extension:
        ``problems × batch sizes × seeds × Σ_optimizers |grid|``."""
        rates = sum(len(self.grid(optimizer).values()) for optimizer in self.optimizers)
        return len(self.problems) * len(self.batch_sizes) * self.seeds * rates

    def validate(self) -> None:
        """Every problem's checks, before anything is read or trained."""
        for problem in self.problems:
            problem.validate(self.optimizers, self.batch_sizes, self.settings)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (recorded in ``sweep.json``); :mod:`anisoada.experiments.config` writes the
        same content as TOML."""
        return {
            "name": self.name,
            "problems": [{"kind": p.kind, **p.to_dict()} for p in self.problems],
            "optimizers": [o.to_dict() for o in self.optimizers],
            "batch_sizes": list(self.batch_sizes),
            "budget": self.budget.to_dict(),
            "lr_grid": self.lr_grid.to_dict(),
            "seeds": self.seeds,
            "base_seed": self.base_seed,
            "evaluations": self.evaluations,
            "vectorize": self.vectorize,
            "cells": self.cells,
            "tail_evaluations": self.tail_evaluations,
            "divergence_factor": self.divergence_factor,
            "selection": self.selection.to_dict(),
            "tuning_seeds": self.tuning_seeds,
            "baseline": self.baseline,
            "executor": self.executor,
            "ray_address": self.ray_address,
        }


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: every row, the selection, the extra tables and where they are stored.

    ``verdicts`` holds, per (problem, batch size, optimizer), the paired comparison with the
    baseline (:mod:`anisoada.experiments.verdict`), ``references`` each problem's ``f*``,
    ``tables`` the problems' extra tables by name (e.g. ``"noise"``), ``failures`` the runs that
    raised (empty for a complete sweep).
    """

    rows: pd.DataFrame
    selection: pd.DataFrame
    root: Path
    wall_time: float
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    failures: tuple[RunFailure, ...] = ()
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    references: pd.DataFrame = field(default_factory=pd.DataFrame)


class SweepFailedError(RuntimeError):
    """Some runs raised; the others finished and every table was written.

    The message is one line: how many runs failed (of ``runs``, when known), the first one's
    reason without Python's class names or ``[Errno N]`` (:func:`failure_reason`), and where
    its details are.

    Attributes:
        result: The :class:`SweepResult` of what did finish.
        runs: Runs the sweep made (``None``: unknown).
    """

    def __init__(self, result: SweepResult, runs: int | None = None) -> None:
        self.result = result
        self.runs = runs
        failed = len({failure.run_id for failure in result.failures})
        first = result.failures[0]
        if runs is not None and failed >= runs:
            what = f"every run failed ({failed} of {runs}; nothing is stored)"
        elif runs is not None:
            what = f"{failed} of {runs} runs failed (the others finished and are stored)"
        else:
            what = f"{failed} run(s) failed (the others finished and are stored)"
        super().__init__(
            f"{what}; first: run {first.run_id}: {self.reason} — details in "
            f"{result.root / 'runs' / first.run_id / 'failed.json'}; re-run the sweep to retry"
        )

    @property
    def reason(self) -> str:
        """The first failed run's reason, as a user reads it (:func:`failure_reason`)."""
        return failure_reason(self.result.failures[0].error)


# "OSError: [Errno 28] No space left on device: '/out/runs/x'" and the like: the one line a run
# failure records (class name, then the exception's text).
_CLASS_PREFIX = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt):(?: |$)"
)
_OS_ERROR = re.compile(r"^\[Errno -?\d+\] (?P<reason>[^:]*)(?:: (?P<file>'.*'|\".*\"))?$")


def failure_reason(error: str) -> str:
    """A run failure's one line (``"ClassName: text"``) as a user reads it: the class name
    dropped, an ``OSError``'s ``[Errno N] reason: 'file'`` as ``file: reason``.

    Example:
        >>> failure_reason("OSError: [Errno 28] No space left on device: '/out/runs/1'")
        '/out/runs/1: no space left on device'
        >>> failure_reason("ValueError: a budget of 4 samples is less than one step")
        'a budget of 4 samples is less than one step'
    """
    text = _CLASS_PREFIX.sub("", error.strip(), count=1).strip()
    if not text:
        return "an error with no message"
    match = _OS_ERROR.match(text)
    if match is None:
        return text
    reason = match["reason"]
    reason = reason[:1].lower() + reason[1:]
    return f"{match['file'][1:-1]}: {reason}" if match["file"] else reason


def _round_runs(
    config: SweepConfig,
    specs: dict[GroupKey, tuple[ProblemSpec, OptimizerSpec, int]],
    pending: Sequence[tuple[GroupKey, Sequence[float]]],
    seeds: Sequence[int],
) -> list[RunSpec]:
    """The runs of one round: ``pending`` learning rates of each group at ``seeds``.

    A problem with cell runs (and ``cells`` on) gets one run per batch size holding every
    pending (optimizer, seed, rate); otherwise each (optimizer, seed) gets one run of its rates
    as lanes (``vectorize``, where the problem has lanes) or one run per rate.
    """
    runs: list[RunSpec] = []
    cells: dict[tuple[str, int], list[tuple[OptimizerSpec, int, float]]] = {}
    for key, lrs in pending:
        problem, optimizer, batch_size = specs[key]
        if config.cells and isinstance(problem, CellProblem):
            cell = cells.setdefault((problem.name, batch_size), [])
            cell += [(optimizer, seed, float(lr)) for seed in seeds for lr in lrs]
            continue
        chunks = [tuple(lrs)] if config.vectorize and problem.lanes else [(lr,) for lr in lrs]
        runs += [
            problem.make_run(optimizer, batch_size, chunk, seed, config.settings)
            for seed in seeds
            for chunk in chunks
        ]
    problems = {problem.name: problem for problem in config.problems}
    for (name, batch_size), lanes in cells.items():
        problem = problems[name]
        assert isinstance(problem, CellProblem)
        runs.append(problem.make_cell_run(config.optimizers, batch_size, lanes, config.settings))
    return runs


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    jobs: int = 1,
    executor: Executor | None = None,
    context: DistributedContext | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run (or finish) a sweep into ``out``; returns every row and the selection.

    Runs already stored under ``out`` are not run again. Rounds: the base grid of every group,
    then, as long as some group's best learning rate is at an edge of what it has tried (and it
    has extensions left), that group's next grid values.

    Args:
        config: The sweep.
        out: Output directory (created).
        jobs: Worker processes of the default local executor (1: this process).
        executor: Where runs execute (default: the one ``config.executor`` names — a
            :class:`LocalExecutor` with ``jobs``, or every ``torchrun`` rank together when
            ``context`` is distributed; or a Ray executor at ``config.ray_address``).
        context: The data-parallel context under ``torchrun``.
        progress: Show a progress bar of runs.
        log: Called with one line per evaluation point by runs that log (LM runs).

    Returns:
        The :class:`SweepResult` (on ``torchrun`` ranks other than 0 its tables are empty).

    Raises:
        SweepFailedError: some runs raised (after every table was written).
    """
    if not isinstance(config, SweepConfig):
        raise TypeError(f"run_sweep needs a SweepConfig; got {type(config).__name__}")
    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"run_sweep needs out as a path; got {type(out).__name__}")
    started = time.perf_counter()
    config.validate()
    if executor is None:
        executor = default_executor(
            jobs, context, kind=config.executor, ray_address=config.ray_address
        )
    root = Path(out)
    store = ResultsStore(root)
    if executor.is_main:
        from anisoada.experiments.config import dump_sweep_config

        store.prepare()
        write_json(
            root / files.SWEEP_JSON, {"config": config.to_dict(), "provenance": provenance()}
        )
        dump_sweep_config(config, root / files.SWEEP_TOML)

    specs: dict[GroupKey, tuple[ProblemSpec, OptimizerSpec, int]] = {
        (problem.name, optimizer.label, batch_size): (problem, optimizer, batch_size)
        for problem in config.problems
        for optimizer in config.optimizers
        for batch_size in config.batch_sizes
    }
    tried = {key: list(config.grid(spec[1]).values()) for key, spec in specs.items()}
    extensions = {key: {"up": 0, "down": 0} for key in specs}
    tuning_seeds = list(range(config.tuning))
    pending: list[tuple[GroupKey, list[float]]] = [(key, tried[key]) for key in specs]
    all_runs: list[RunSpec] = []
    failures: list[RunFailure] = []
    round_index = 0
    confirming = False
    while pending:
        seeds = tuning_seeds if not confirming else list(range(config.tuning, config.seeds))
        runs = _round_runs(config, specs, pending, seeds)
        all_runs += runs
        desc = f"{config.name} " + ("confirmation seeds" if confirming else f"round {round_index}")
        failures += _execute(executor, store, runs, root, progress, desc, log)
        pending = []
        if executor.is_main and not confirming:
            # Extensions are decided on the tuning seeds (every stored run so far).
            rows = store.read_rows(run.run_id for run in all_runs)
            best = select_best(rows, config.selection) if len(rows) else pd.DataFrame()
            for record in best.to_dict("records"):
                key = (record["dataset"], record["optimizer"], int(record["batch_size"]))
                done = sum(extensions[key].values())
                step = config.grid(specs[key][1]).next_extension(
                    record["best_lr"], tried[key], done
                )
                if step is None:
                    continue
                direction, new_lrs = step
                extensions[key][direction] += 1
                tried[key] = sorted([*tried[key], *new_lrs])
                pending.append((key, list(new_lrs)))
            if not pending and config.tuning < config.seeds:
                # The grid is settled: the remaining seeds run at each group's chosen rate.
                confirming = True
                pending = [
                    ((r["dataset"], r["optimizer"], int(r["batch_size"])), [float(r["best_lr"])])
                    for r in best.to_dict("records")
                    if np.isfinite(r["best_lr"])
                ]
        confirming = bool(executor.share(confirming))
        pending = executor.share(pending)
        round_index += 1

    if not executor.is_main:
        return SweepResult(pd.DataFrame(), pd.DataFrame(), root, time.perf_counter() - started)
    run_ids = list(dict.fromkeys(run.run_id for run in all_runs))
    rows = store.read_rows(run_ids)
    if len(rows):
        rows = rows.sort_values([*IDENTITY_COLUMNS, "step"], kind="stable").reset_index(drop=True)
    selection = _selection_table(rows, extensions, config)
    references = pd.DataFrame.from_records(
        [
            {"dataset": problem.name, "f_star": problem.reference_loss()}
            for problem in config.problems
        ]
    )
    verdicts = pd.DataFrame()
    if len(selection):
        scores = seed_scores(rows, selection, config.selection)
        known = {r["dataset"]: r["f_star"] for r in references.to_dict("records")}
        verdicts = compare_to_baseline(
            scores,
            {
                name: (None if value is None or pd.isna(value) else float(value))
                for name, value in known.items()
            },
            baseline=config.baseline_label,
            optimizers=[o.label for o in config.optimizers],
        )
    store.write_table(files.RESULTS, rows)
    store.write_table(files.SCORES, run_scores(rows, config.selection))
    store.write_table(files.SELECTION, selection, csv=True)
    store.write_table(files.REFERENCES, references, csv=True)
    store.write_table(files.VERDICTS, verdicts, csv=True)
    tables = {}
    for name in sorted({table for problem in config.problems for table in problem.extra_tables}):
        tables[name] = store.read_run_tables(name, run_ids)
        store.write_table(name, tables[name])
    result = SweepResult(
        rows=rows,
        selection=selection,
        root=root,
        wall_time=time.perf_counter() - started,
        tables=tables,
        failures=tuple(failures),
        verdicts=verdicts,
        references=references,
    )
    if failures:
        raise SweepFailedError(result, runs=len(run_ids))
    return result


def _execute(
    executor: Executor,
    store: ResultsStore,
    runs: Sequence[RunSpec],
    root: Path,
    progress: bool,
    desc: str,
    log: Callable[[str], None] | None,
) -> list[RunFailure]:
    """Run what is not stored yet (the main process decides), record what raised."""
    todo_ids = executor.share(
        [run.run_id for run in runs if not store.is_complete(run.run_id)]
        if executor.is_main
        else None
    )
    assert todo_ids is not None  # the main process's list, in every process
    todo = set(todo_ids)
    failures = executor.run(
        [run for run in runs if run.run_id in todo], root, progress=progress, desc=desc, log=log
    )
    if executor.is_main:
        for failure in failures:
            store.write_failure(failure.run_id, failure.to_dict())
    return failures


def _selection_table(
    rows: pd.DataFrame, extensions: dict[GroupKey, dict[str, int]], config: SweepConfig
) -> pd.DataFrame:
    if not len(rows):
        return pd.DataFrame(columns=list(GROUP_COLUMNS))
    tuning = config.tuning if config.tuning < config.seeds else None
    selection = select_best(rows, config.selection, tuning_seeds=tuning)
    if selection.empty:
        return selection
    keys = [
        (r.dataset, r.optimizer, int(r.batch_size))
        for r in selection[list(GROUP_COLUMNS)].itertuples()
    ]
    selection["extensions_up"] = [extensions[key]["up"] for key in keys]
    selection["extensions_down"] = [extensions[key]["down"] for key in keys]
    selection["at_edge"] = [
        bool(np.isnan(r.best_lr) or r.best_lr in (r.lr_min, r.lr_max))
        for r in selection.itertuples()
    ]
    return selection[[column for column in SELECTION_COLUMNS if column in selection]]
