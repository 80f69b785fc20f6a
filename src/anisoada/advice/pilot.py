"""The empirical pilot: a cheap stand-in for the full tuned sweep, run through the one sweep engine.

At each batch size ``M`` the pilot runs SGD, AdaGrad and AdaGrad-Norm in two stages:

1. **search** — each optimizer's learning rates on one seed, for a fraction
   ``search_fraction`` of the budget's steps (at least ``min_search_steps``, never more than the
   budget): at the smallest batch size the whole grid, at each larger one a window of
   ``window`` half-decades on either side of the rate confirmed at the batch size before (SGD's
   best rate grows with the batch until the step is stability-bound, AdaGrad's changes little:
   the window holds both), with grid extensions where the best rate is at an edge;
2. **confirm** — at the *full* budget, on ``seeds`` seeds (independent of the search's and of
   any sweep's), a bracket around each searched rate, shifted the way a longer horizon moves the
   best rate (the extrapolation to the budget): for SGD the searched rate and the grid point
   below (``bracket_sgd``: a constant step that suits a short run is too large for a long one,
   whose noise floor it sets), for AdaGrad the rate and the point above (``bracket_adagrad``:
   its effective step ``η/√(Σ_s g_s²)`` shrinks like ``η/√t``, so a longer run needs a larger
   ``η``; on the design set the short search chose AdaGrad's rate a half-decade below the full
   sweep's in most cells). The rate of each optimizer is then chosen among
   its bracket by the sweep's own selection rule (the tail loss averaged over the seeds; where
   no rate of a bracket is stable on every seed, the bracket is extended a half-decade down,
   once) and the seeds' paired log ratios at the chosen rates are the pilot's evidence
   (:mod:`anisoada.experiments.verdict`). AdaGrad-Norm, whose comparison with SGD is evidence
   and not the verdict, is compared at the search stage only (its tuned rate against SGD's on
   the search's seed, at the search's horizon): a third optimizer in the full-budget stage would
   cost a third of its price again.

Where the problem allows it (logistic regression), each stage at a batch size is **one cell
run** (:mod:`anisoada.experiments.runs.cell`): every optimizer, seed and rate as a lane of one
pass, each lane's numbers those of its ordinary run. Only the last ``tail_evaluations``
evaluation points of the usual cadence are computed — what the selection rule reads — and only
the training loss (a LIBSVM set's test split is left out: nothing here reads test metrics).

**Cost.** Two measures, both printed:

* *sample-lanes* — per run, the samples it processed times the lanes it trained (a lane costs
  its share of the products and of the update, whichever way runs are cut), against the full
  tuned sweep's ``optimizers × grid points × seeds × budget`` per batch size before any
  extension (a lower bound on the sweep, so the fraction is an upper bound);
* *CPU seconds* of the runs (each run's ``run.json``), against the measured sweep where one
  was run (:mod:`anisoada.reproduce.prediction`).

The pilot's seeds derive from ``base_seed`` (default 1000), so its mini-batches are independent
of a full sweep's (base seed 0): a pilot that agrees with a sweep does so on other samples.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anisoada.experiments import LRGrid, OptimizerSpec, SweepConfig, run_sweep
from anisoada.experiments.runs import DatasetSpec, ProblemSpec
from anisoada.experiments.runs.base import CellProblem
from anisoada.experiments.selection import SelectionRule, seed_scores
from anisoada.experiments.verdict import GAP_FLOOR
from anisoada.train import Budget

__all__ = [
    "PILOT_OPTIMIZERS",
    "PilotCell",
    "PilotResult",
    "PilotSettings",
    "run_pilot",
    "run_seconds",
    "sample_lanes",
]

#: The three methods the pilot compares (registry keys), the baseline first.
PILOT_OPTIMIZERS = ("sgd", "adagrad", "adagrad_norm")

#: Most seeds a pilot takes (each is a lane of every full-budget run; more is a typo).
MAX_SEEDS = 100

#: The methods of the full-budget stage (the verdict's two).
CONFIRMED_OPTIMIZERS = ("sgd", "adagrad")


@dataclass(frozen=True)
class PilotSettings:
    """How the pilot is cut (see the module docstring).

    Attributes:
        grid: Learning rates of the search stage (default: the reproduction sweeps' grid,
            10^-3 … 10^2 at two per decade), extended at most ``grid.max_extensions`` times.
        search_fraction: Fraction of the budget's steps the search stage trains.
        min_search_steps: Fewest steps of a search run (capped at the budget's steps).
        window: Half-decades on either side of the previous batch size's confirmed rate that a
            later batch size searches.
        bracket_sgd, bracket_adagrad: Multipliers of each optimizer's searched rate tried at
            the full budget.
        seeds: Seeds of the confirm stage (the paired verdict's sample size).
        base_seed: Seed the pilot's streams derive from.
        evaluations: The evaluation cadence (points per run, as a sweep's ``evaluations``).
        tail_evaluations: How many of the last points of that cadence are computed.
        reference_seeds: Seeds of the full tuned sweep the cost is compared with.
    """

    grid: LRGrid = field(
        default_factory=lambda: LRGrid(low=1e-3, high=1e2, per_decade=2, max_extensions=1)
    )
    search_fraction: float = 0.1
    min_search_steps: int = 2
    window: int = 2
    bracket_sgd: tuple[float, ...] = (10**-0.5, 1.0)
    bracket_adagrad: tuple[float, ...] = (1.0, 10**0.5)
    seeds: int = 3
    base_seed: int = 1000
    evaluations: int = 20
    tail_evaluations: int = 4
    reference_seeds: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.search_fraction <= 1:
            raise ValueError(f"search_fraction must be in (0, 1]; got {self.search_fraction!r}")
        if self.window < 1:
            raise ValueError(f"window must be at least one half-decade; got {self.window}")
        if not 2 <= self.seeds <= MAX_SEEDS:
            raise ValueError(
                f"the pilot takes from 2 seeds (a paired test) to {MAX_SEEDS}; got {self.seeds}"
            )
        for bracket in (self.bracket_sgd, self.bracket_adagrad):
            if not bracket or any(not b > 0 for b in bracket):
                raise ValueError(f"a bracket must hold positive multipliers; got {bracket!r}")
        if self.tail_evaluations < 2:
            raise ValueError(
                "tail_evaluations must be at least 2 (the selection rule's stability test "
                f"compares consecutive points); got {self.tail_evaluations}"
            )

    def bracket(self, optimizer: str) -> tuple[float, ...]:
        """The multipliers tried at the full budget for an optimizer (registry key)."""
        return self.bracket_sgd if optimizer == "sgd" else self.bracket_adagrad

    def search_grid(self, previous: float | None) -> LRGrid:
        """The search stage's grid: the whole grid, or the window around ``previous``."""
        if previous is None or not math.isfinite(previous):
            return self.grid
        rates = [previous * 10 ** (k / 2) for k in range(-self.window, self.window + 1)]
        return LRGrid.explicit(rates, max_extensions=self.grid.max_extensions + 1)

    def confirm_grid(self, optimizer: str, searched: float) -> LRGrid:
        """The confirm stage's bracket around a searched rate; where none of it can be selected
        (unstable or diverged on some seed) it is extended once, by its own ratio, downwards (a
        one-rate bracket cannot be)."""
        rates = sorted({searched * b for b in self.bracket(optimizer)})
        return LRGrid.explicit(rates, max_extensions=1, extend_at_edges=False)


@dataclass(frozen=True)
class PilotCell:
    """The pilot's evidence at one batch size for one optimizer against SGD.

    ``log_ratios`` are the per-seed ``log((f_A − f*)/(f_SGD − f*))`` at the confirmed rates
    (losses when ``f*`` is unknown); ``verdict`` is the pilot's own paired test
    (:func:`~anisoada.experiments.verdict.compare_to_baseline`). A ``"search"`` cell (AdaGrad-Norm)
    holds the one seed of the search stage at its horizon, and no test.
    """

    batch_size: int
    optimizer: str
    log_ratios: tuple[float, ...]
    ratio: float
    ratio_low: float
    ratio_high: float
    p_value: float
    verdict: str
    lrs: dict[str, float]
    search_lrs: dict[str, float]
    stage: str = "confirm"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "log_ratios": list(self.log_ratios),
            "ratio": self.ratio,
            "ratio_low": self.ratio_low,
            "ratio_high": self.ratio_high,
            "p_value": self.p_value,
            "verdict": self.verdict,
            "lrs": self.lrs,
            "search_lrs": self.search_lrs,
        }


@dataclass(frozen=True)
class PilotResult:
    """The pilot at every batch size, with its cost."""

    cells: tuple[PilotCell, ...]
    cost_sample_lanes: float
    reference_sample_lanes: float
    wall_time: float
    run_seconds: float
    per_batch_size: dict[int, dict[str, float]]
    selection: pd.DataFrame
    reference_run: tuple[str, str] | None = None

    def reference_vectors(self) -> dict[str, np.ndarray] | None:
        """The weights of the reference run (AdaGrad, first seed, smallest batch size)."""
        if self.reference_run is None:
            return None
        from anisoada.experiments.store import ResultsStore

        root, run_id = self.reference_run
        try:
            vectors = ResultsStore(root).read_vectors(run_id)
        except FileNotFoundError:
            return None
        return vectors

    @property
    def cost_fraction(self) -> float:
        """Pilot sample-lanes over the full tuned sweep's (an upper bound, see the module)."""
        return self.cost_sample_lanes / self.reference_sample_lanes

    def cell(self, batch_size: int, optimizer: str = "adagrad") -> PilotCell | None:
        for cell in self.cells:
            if cell.batch_size == batch_size and cell.optimizer == optimizer:
                return cell
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cells": [cell.to_dict() for cell in self.cells],
            "cost_sample_lanes": self.cost_sample_lanes,
            "reference_sample_lanes": self.reference_sample_lanes,
            "cost_fraction": self.cost_fraction,
            "wall_time": self.wall_time,
            "run_seconds": self.run_seconds,
            "per_batch_size": {str(k): v for k, v in self.per_batch_size.items()},
        }


def run_seconds(root: str | Path, rows: pd.DataFrame) -> float:
    """CPU seconds the runs in ``rows`` took when they trained (their ``run.json``; the wall
    time where a record has no CPU time).

    Unlike the elapsed time of a sweep, this does not shrink when stored runs are reused, and
    unlike wall time it does not grow when other processes share the machine.
    """
    from anisoada.experiments.store import ResultsStore

    if rows.empty:
        return 0.0
    store = ResultsStore(root)
    total = 0.0
    for run_id in rows["run_id"].unique():
        info = store.read_info(str(run_id))
        total += float(info.get("cpu_time", info.get("wall_time", 0.0)))
    return total


def sample_lanes(rows: pd.DataFrame) -> float:
    """Sample-lanes of the runs in ``rows``: per run, its last ``samples`` × its lanes.

    A lane is one (optimizer, seed, learning rate) of a run: an ordinary run's lanes are its
    rates, a cell run's every optimizer, seed and rate it trains.
    """
    if rows.empty:
        return 0.0
    lanes = rows.drop_duplicates(["run_id", "optimizer", "seed", "lr"]).groupby("run_id").size()
    samples = rows.groupby("run_id")["samples"].max()
    return float((samples * lanes.reindex(samples.index)).sum())


def run_pilot(
    problem: ProblemSpec,
    batch_sizes: Sequence[int],
    budget: Budget,
    out: str | Path,
    *,
    n_train: int | None,
    settings: PilotSettings | None = None,
    optimizers: Sequence[str] = PILOT_OPTIMIZERS,
    jobs: int = 1,
    progress: bool = False,
) -> PilotResult:
    """Run the two-stage pilot (module docstring) of ``problem`` into ``out``.

    Args:
        problem: Any sweep problem (a LIBSVM or synthetic dataset, a user's module problem).
        batch_sizes: Batch sizes to advise on.
        budget: The full budget a run would get (samples, epochs or steps).
        out: Directory of the pilot's sweeps (re-running reuses them).
        n_train: Training rows (for an epoch budget).
        settings: The pilot's cut.
        optimizers: Registry keys, ``"sgd"`` first (the baseline).
        jobs: Worker processes (problems without cell runs only: a cell stage is one run).
        progress: Show progress bars.
    """
    started = time.perf_counter()
    settings = PilotSettings() if settings is None else settings
    out = Path(out)
    if isinstance(problem, DatasetSpec):
        problem = problem.training_only()  # the pilot reads training losses only
    if isinstance(problem, CellProblem):
        jobs = 1  # a stage is one cell run: a pool would only add its start-up
    rule = SelectionRule()
    grid_points = len(settings.grid.values())
    total_samples = budget.samples_for(n_train)
    specs = tuple(OptimizerSpec.create(name) for name in optimizers)
    cells: list[PilotCell] = []
    confirmed: dict[str, float] = {}  # each optimizer's rate at the previous batch size
    cost = seconds = reference = 0.0
    per_size: dict[int, dict[str, float]] = {}
    selections = []
    reference_run: tuple[str, str] | None = None
    for batch_size in sorted(batch_sizes):
        size_started = time.perf_counter()
        if total_samples is None:  # a step budget
            assert budget.steps is not None
            steps, samples = budget.steps, budget.steps * batch_size
        else:
            steps, samples = budget.num_steps(batch_size, n_train), total_samples
        search_steps = min(
            steps, max(settings.min_search_steps, math.ceil(settings.search_fraction * steps))
        )
        search_specs = tuple(
            replace(spec, lr_grid=settings.search_grid(confirmed.get(spec.label))) for spec in specs
        )
        search = _stage(
            f"pilot-search-{batch_size}", problem, search_specs, batch_size,
            Budget(samples=search_steps * batch_size), settings, seeds=1,
            base_seed=settings.base_seed, out=out / f"search_{batch_size}", jobs=jobs,
            progress=progress,
        )  # fmt: skip
        searched = {}
        for record in search.selection.to_dict("records"):
            best = float(record["best_lr"])
            if not math.isfinite(best):
                best = float(record["lr_min"])  # every rate diverged: start from the lowest
            searched[str(record["optimizer"])] = best
        confirm_specs = tuple(
            replace(spec, lr_grid=settings.confirm_grid(spec.name, searched[spec.label]))
            for spec in specs
            if spec.name in CONFIRMED_OPTIMIZERS
        )
        confirm = _stage(
            f"pilot-confirm-{batch_size}", problem, confirm_specs, batch_size,
            budget if total_samples is None else Budget(samples=samples), settings,
            seeds=settings.seeds, base_seed=settings.base_seed + 1,
            out=out / f"confirm_{batch_size}", jobs=jobs, progress=progress,
        )  # fmt: skip
        selections.append(confirm.selection)
        spent = sample_lanes(search.rows) + sample_lanes(confirm.rows)
        full = float(len(specs) * grid_points * settings.reference_seeds * samples)
        spent_seconds = run_seconds(out / f"search_{batch_size}", search.rows) + run_seconds(
            out / f"confirm_{batch_size}", confirm.rows
        )
        cost += spent
        seconds += spent_seconds
        reference += full
        per_size[int(batch_size)] = {
            "sample_lanes": spent,
            "reference_sample_lanes": full,
            "fraction": spent / full,
            "run_seconds": spent_seconds,
            "search_steps": float(search_steps),
            "steps": float(steps),
            "wall_time": time.perf_counter() - size_started,
        }
        chosen = {
            str(r["optimizer"]): float(r["best_lr"]) for r in confirm.selection.to_dict("records")
        }
        confirmed = {name: lr for name, lr in {**searched, **chosen}.items() if math.isfinite(lr)}
        if reference_run is None and "adagrad" in chosen:
            reference_run = _reference_run(confirm, out / f"confirm_{batch_size}", chosen)
        for name in optimizers[1:]:
            stage, rates = (confirm, chosen) if name in CONFIRMED_OPTIMIZERS else (search, searched)
            cell = _pilot_cell(
                stage, rule, batch_size, name, optimizers[0],
                lrs={k: rates.get(k, math.nan) for k in (name, optimizers[0])},
                search_lrs={k: searched.get(k, math.nan) for k in (name, optimizers[0])},
                confirmed=name in CONFIRMED_OPTIMIZERS, problem=problem.name,
            )  # fmt: skip
            cells.append(cell)
    selection = pd.concat(selections, ignore_index=True) if selections else pd.DataFrame()
    return PilotResult(
        cells=tuple(cells),
        cost_sample_lanes=cost,
        reference_sample_lanes=reference,
        wall_time=time.perf_counter() - started,
        run_seconds=seconds,
        per_batch_size=per_size,
        selection=selection,
        reference_run=reference_run,
    )


def _pilot_cell(
    stage: Any,
    rule: SelectionRule,
    batch_size: int,
    name: str,
    baseline: str,
    *,
    lrs: dict[str, float],
    search_lrs: dict[str, float],
    confirmed: bool,
    problem: str,
) -> PilotCell:
    """One optimizer against the baseline at one batch size, from a stage's sweep."""
    f_star = _reference(stage.references, problem)
    log_ratios = tuple(
        _log_ratios(seed_scores(stage.rows, stage.selection, rule), name, baseline, f_star)
    )
    verdicts = stage.verdicts
    row = verdicts[verdicts["optimizer"] == name] if confirmed and len(verdicts) else None
    record = row.iloc[0].to_dict() if row is not None and len(row) else {}
    ratio = math.exp(log_ratios[0]) if not confirmed and log_ratios else math.nan
    return PilotCell(
        batch_size=int(batch_size),
        optimizer=name,
        log_ratios=log_ratios,
        ratio=float(record.get("ratio", ratio)),
        ratio_low=float(record.get("ratio_low", math.nan)),
        ratio_high=float(record.get("ratio_high", math.nan)),
        p_value=float(record.get("p_value", math.nan)),
        verdict=str(record.get("verdict", "no verdict" if confirmed else "search only")),
        lrs=lrs,
        search_lrs=search_lrs,
        stage="confirm" if confirmed else "search",
    )


def _stage(
    name: str,
    problem: ProblemSpec,
    specs: Sequence[OptimizerSpec],
    batch_size: int,
    budget: Budget,
    settings: PilotSettings,
    *,
    seeds: int,
    base_seed: int,
    out: Path,
    jobs: int,
    progress: bool,
) -> Any:
    """One stage of the pilot at one batch size: a sweep of cell runs (where the problem has
    them), tail evaluations only."""
    return run_sweep(
        SweepConfig(
            name=name,
            problems=(problem,),
            optimizers=tuple(specs),
            batch_sizes=(batch_size,),
            budget=budget,
            lr_grid=settings.grid,
            seeds=seeds,
            base_seed=base_seed,
            evaluations=settings.evaluations,
            tail_evaluations=settings.tail_evaluations,
            cells=True,
        ),
        out,
        jobs=jobs,
        progress=progress,
    )


def _reference_run(confirm: Any, root: Path, chosen: dict[str, float]) -> tuple[str, str] | None:
    """The run holding AdaGrad's first seed at its chosen rate (its weights: the reference
    point of a model's evidence)."""
    rows = confirm.rows
    picked = rows[
        (rows["optimizer"] == "adagrad")
        & (rows["seed"] == rows["seed"].min())
        & (rows["lr"] == chosen["adagrad"])
    ]
    return (str(root), str(picked["run_id"].iloc[0])) if len(picked) else None


def _reference(references: pd.DataFrame, name: str) -> float | None:
    if references.empty:
        return None
    values = references.loc[references["dataset"] == name, "f_star"]
    if values.empty or pd.isna(values.iloc[0]):
        return None
    return float(values.iloc[0])


def _log_ratios(
    scores: pd.DataFrame, optimizer: str, baseline: str, f_star: float | None
) -> list[float]:
    """Per seed ``log(g_A / g_B)`` with the verdicts' gap floor (losses without ``f*``)."""
    if scores.empty:
        return []
    wide = scores.pivot_table(index="seed", columns="optimizer", values="tail_loss")
    if optimizer not in wide or baseline not in wide:
        return []
    pair = wide[[optimizer, baseline]].dropna()
    mine = pair[optimizer].to_numpy(dtype=float)
    theirs = pair[baseline].to_numpy(dtype=float)
    floor = 0.0
    if f_star is not None:
        mine, theirs = mine - f_star, theirs - f_star
        floor = GAP_FLOOR * max(1.0, abs(f_star))
    if floor == 0.0 and ((mine <= 0).any() or (theirs <= 0).any()):
        return []
    low = floor if floor else 0.0
    return np.log(np.maximum(mine, low) / np.maximum(theirs, low)).tolist()
