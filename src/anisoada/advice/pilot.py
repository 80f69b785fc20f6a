"""The empirical pilot: a cheap stand-in for the full tuned sweep, run through the one sweep engine.

At each batch size ``M`` the pilot runs SGD, AdaGrad and AdaGrad-Norm in two stages:

1. **search** — the whole learning-rate grid as the lanes of one run per optimizer, one seed,
   for a fraction ``search_fraction`` of the budget (at least ``min_search_steps`` steps, never
   more than the budget), with one grid extension where the best rate is at an edge;
2. **confirm** — at the *full* budget, the searched rate and its neighbour on the side the
   longer horizon moves it to (the extrapolation to the budget): for SGD the grid point below
   (``bracket_sgd``: a constant step that suits a short run is too large for a long one, whose
   noise floor it sets), for AdaGrad and AdaGrad-Norm the point above (``bracket_adaptive``:
   their effective step ``η/√(Σ_s g_s²)`` shrinks like ``η/√t``, so a longer run needs a larger
   ``η``; on the design set the short search chose AdaGrad's rate a half-decade below the full
   sweep's in most cells). The better of the two is chosen on the first seed and run alone on
   the remaining seeds (``seeds`` in all), with the sweep's selection rule and its paired
   verdict (:mod:`anisoada.experiments.verdict`).

The pilot's seeds are drawn from ``base_seed`` (default 1000), so its mini-batches are
independent of a full sweep's (base seed 0): a pilot that agrees with a sweep does so on other
samples.

**Cost**, stated as sample-lanes: each run costs the samples it processed times the learning
rates it trained side by side (a lane costs a column of the products; a run of one rate per
process costs the same per rate). The full tuned sweep it stands for is ``grid points × seeds
× budget`` per (optimizer, batch size) before any extension — a lower bound on the real sweep's
cost, so the printed fraction is an upper bound. Wall time is reported beside it (small runs
carry a fixed per-step overhead, so the wall-time fraction is larger).
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
from anisoada.experiments.runs import ProblemSpec
from anisoada.experiments.selection import SelectionRule, seed_scores
from anisoada.experiments.verdict import GAP_FLOOR
from anisoada.train import Budget

__all__ = [
    "PilotCell",
    "PilotResult",
    "PilotSettings",
    "run_pilot",
    "run_seconds",
    "sample_lanes",
]

#: The three methods the pilot compares (registry keys).
PILOT_OPTIMIZERS = ("sgd", "adagrad", "adagrad_norm")


@dataclass(frozen=True)
class PilotSettings:
    """How the pilot is cut (see the module docstring).

    Attributes:
        grid: Learning rates of the search stage (default: the reproduction sweeps' grid,
            10^-3 … 10^2 at two per decade), extended at most ``grid.max_extensions`` times.
        search_fraction: Budget fraction of the search stage.
        min_search_steps: Fewest steps of a search run (capped at the budget's steps).
        bracket_sgd: Multipliers of SGD's searched rate tried at the full budget.
        bracket_adaptive: The same for AdaGrad and AdaGrad-Norm.
        seeds: Seeds of the confirm stage (the paired verdict's sample size).
        base_seed: Seed the pilot's streams derive from.
        evaluations: Evaluation points per run.
        reference_seeds: Seeds of the full tuned sweep the cost is compared with.
    """

    grid: LRGrid = field(
        default_factory=lambda: LRGrid(low=1e-3, high=1e2, per_decade=2, max_extensions=1)
    )
    search_fraction: float = 0.15
    min_search_steps: int = 3
    bracket_sgd: tuple[float, ...] = (10**-0.5, 1.0)
    bracket_adaptive: tuple[float, ...] = (1.0, 10**0.5)
    seeds: int = 3
    base_seed: int = 1000
    evaluations: int = 20
    reference_seeds: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.search_fraction <= 1:
            raise ValueError(f"search_fraction must be in (0, 1]; got {self.search_fraction!r}")
        if self.seeds < 2:
            raise ValueError(
                f"the pilot needs at least 2 seeds for a paired test; got {self.seeds}"
            )
        for bracket in (self.bracket_sgd, self.bracket_adaptive):
            if not bracket or any(not b > 0 for b in bracket):
                raise ValueError(f"a bracket must hold positive multipliers; got {bracket!r}")

    def bracket(self, optimizer: str) -> tuple[float, ...]:
        """The multipliers tried at the full budget for an optimizer (registry key)."""
        return self.bracket_sgd if optimizer == "sgd" else self.bracket_adaptive


@dataclass(frozen=True)
class PilotCell:
    """The pilot's evidence at one batch size for one optimizer against SGD.

    ``log_ratios`` are the per-seed ``log((f_A − f*)/(f_SGD − f*))`` at the confirmed rates
    (losses when ``f*`` is unknown); ``verdict`` is the pilot's own paired test
    (:func:`~anisoada.experiments.verdict.compare_to_baseline`).
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

    def to_dict(self) -> dict[str, Any]:
        return {
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
        """The stored vectors of the reference run (AdaGrad, seed 0, smallest batch size)."""
        if self.reference_run is None:
            return None
        from anisoada.experiments.store import ResultsStore

        root, run_id = self.reference_run
        try:
            return ResultsStore(root).read_vectors(run_id)
        except FileNotFoundError:
            return None

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
    """Seconds the runs in ``rows`` took when they trained (their ``run.json`` wall times).

    Unlike the elapsed time of a sweep, this does not shrink when stored runs are reused.
    """
    from anisoada.experiments.store import ResultsStore

    if rows.empty:
        return 0.0
    store = ResultsStore(root)
    return float(sum(store.read_info(str(run_id)).get("wall_time", 0.0)
                     for run_id in rows["run_id"].unique()))  # fmt: skip


def sample_lanes(rows: pd.DataFrame) -> float:
    """Sample-lanes of the runs in ``rows``: per run, its last ``samples`` × its lanes."""
    if rows.empty:
        return 0.0
    per_run = rows.groupby("run_id").agg(samples=("samples", "max"), lanes=("lr", "nunique"))
    return float((per_run["samples"] * per_run["lanes"]).sum())


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
        jobs: Worker processes.
        progress: Show progress bars.
    """
    started = time.perf_counter()
    settings = PilotSettings() if settings is None else settings
    out = Path(out)
    rule = SelectionRule()
    grid_points = len(settings.grid.values())
    total_samples = budget.samples_for(n_train)
    cells: list[PilotCell] = []
    cost = 0.0
    seconds = 0.0
    reference = 0.0
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
        specs = tuple(OptimizerSpec.create(name) for name in optimizers)
        search = run_sweep(
            SweepConfig(
                name=f"pilot-search-{batch_size}",
                problems=(problem,),
                optimizers=specs,
                batch_sizes=(batch_size,),
                budget=Budget(samples=search_steps * batch_size),
                lr_grid=settings.grid,
                seeds=1,
                base_seed=settings.base_seed,
                evaluations=min(settings.evaluations, search_steps),
            ),
            out / f"search_{batch_size}",
            jobs=jobs,
            progress=progress,
        )
        searched = {}
        for record in search.selection.to_dict("records"):
            best = float(record["best_lr"])
            if not math.isfinite(best):
                best = float(record["lr_min"])  # every rate diverged: start from the lowest
            searched[str(record["optimizer"])] = best
        confirm_specs = tuple(
            replace(
                spec,
                lr_grid=LRGrid.explicit(
                    sorted({searched[spec.label] * b for b in settings.bracket(spec.name)})
                ),
            )
            for spec in specs
        )
        confirm = run_sweep(
            SweepConfig(
                name=f"pilot-confirm-{batch_size}",
                problems=(problem,),
                optimizers=confirm_specs,
                batch_sizes=(batch_size,),
                budget=budget if total_samples is None else Budget(samples=samples),
                seeds=settings.seeds,
                tuning_seeds=1,
                base_seed=settings.base_seed + 1,
                evaluations=settings.evaluations,
            ),
            out / f"confirm_{batch_size}",
            jobs=jobs,
            progress=progress,
        )
        selections.append(confirm.selection)
        spent = sample_lanes(search.rows) + sample_lanes(confirm.rows)
        full = float(len(specs) * grid_points * settings.reference_seeds * samples)
        cost += spent
        seconds += run_seconds(out / f"search_{batch_size}", search.rows)
        seconds += run_seconds(out / f"confirm_{batch_size}", confirm.rows)
        reference += full
        per_size[int(batch_size)] = {
            "sample_lanes": spent,
            "reference_sample_lanes": full,
            "fraction": spent / full,
            "search_steps": float(search_steps),
            "steps": float(steps),
            "wall_time": time.perf_counter() - size_started,
        }
        f_star = _reference(confirm.references, problem.name)
        scores = seed_scores(confirm.rows, confirm.selection, rule)
        chosen = {
            str(r["optimizer"]): float(r["best_lr"]) for r in confirm.selection.to_dict("records")
        }
        verdicts = confirm.verdicts
        if reference_run is None and "adagrad" in chosen:
            picked = confirm.rows[
                (confirm.rows["optimizer"] == "adagrad")
                & (confirm.rows["seed"] == 0)
                & (confirm.rows["lr"] == chosen["adagrad"])
            ]
            if len(picked):
                reference_run = (str(out / f"confirm_{batch_size}"), str(picked["run_id"].iloc[0]))
        for name in optimizers[1:]:
            log_ratios = _log_ratios(scores, name, optimizers[0], f_star)
            row = verdicts[verdicts["optimizer"] == name] if len(verdicts) else verdicts
            record = row.iloc[0].to_dict() if len(row) else {}
            cells.append(
                PilotCell(
                    batch_size=int(batch_size),
                    optimizer=name,
                    log_ratios=tuple(log_ratios),
                    ratio=float(record.get("ratio", math.nan)),
                    ratio_low=float(record.get("ratio_low", math.nan)),
                    ratio_high=float(record.get("ratio_high", math.nan)),
                    p_value=float(record.get("p_value", math.nan)),
                    verdict=str(record.get("verdict", "no verdict")),
                    lrs={k: chosen.get(k, math.nan) for k in (name, optimizers[0])},
                    search_lrs={k: searched.get(k, math.nan) for k in (name, optimizers[0])},
                )
            )
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
