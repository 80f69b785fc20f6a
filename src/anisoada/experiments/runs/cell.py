"""A cell run: every (optimizer, seed, learning rate) of one (logistic problem, batch size) at once.

A sweep's ordinary logistic run (:class:`~anisoada.experiments.runs.LogisticRun`) trains the
learning rates of one (problem, optimizer, batch size, seed) as lanes. A :class:`CellRun` trains
all the lanes of a *cell* — the (problem, batch size) — in one pass of the training loop: one
weight block per optimizer (an :class:`~anisoada.experiments.bundle.OptimizerBundle` steps them
together) and one mini-batch stream per seed, the stream the ordinary run at that seed draws
(:class:`~anisoada.experiments.tasks.cell.CellTask`). Its rows are those of the ordinary runs of
its lanes — the same identity columns, steps and losses, to the last bit (tested) — with its own
``run_id``. What is shared is the work around the arithmetic: one loop step, one batch draw and
one product pair per step for every optimizer and seed, one evaluation pass per evaluation point.

Where it pays: at small batches a step of a few-hundred-column problem costs microseconds of
arithmetic and tens of microseconds of calls around it, so a cell of 3 optimizers × 3 seeds
costs about as much as 2–3 ordinary runs, not 9 (the advice pilot's full-budget stage is a cell
run). For wide problems (``d`` in the tens of thousands) the arithmetic dominates and the
saving is small.

With the settings' ``tail_evaluations`` only the last evaluation points of the usual cadence
(and the initial one) are computed: what the selection rule reads, for runs whose curves no
table draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from anisoada.experiments.optimizers import OptimizerSpec, build_optimizer
from anisoada.experiments.runs.base import (
    OneProcessRun,
    RunClock,
    RunOutput,
    RunSettings,
    derive_seed,
    lane_rows,
)
from anisoada.experiments.runs.logistic import DatasetSpec, load_dataset
from anisoada.experiments.store import provenance
from anisoada.experiments.tasks.logistic import LOSS_ARITHMETIC
from anisoada.train import Budget, TrainConfig, TrainResult, train

__all__ = ["CellLane", "CellRun"]


@dataclass(frozen=True, order=True)
class CellLane:
    """One lane of a cell: an optimizer (by its position among the cell's optimizers), a seed
    index and a learning rate."""

    optimizer: int
    seed: int
    lr: float


@dataclass(frozen=True)
class CellRun(OneProcessRun):
    """Every lane of one (logistic problem, batch size), trained in one pass.

    Attributes:
        problem: The data set.
        batch_size: Examples per step.
        optimizers: The cell's optimizers (a lane names one by position).
        lanes: The lanes, in any order (stored sorted: by optimizer, seed, then rate).
        settings: Budget, evaluations (and tail evaluations), divergence factor and base seed
            (a sweep's).
    """

    kind: ClassVar[str] = "cell"
    threads: ClassVar[str] = "torch+blas"

    problem: DatasetSpec
    batch_size: int
    optimizers: tuple[OptimizerSpec, ...]
    lanes: tuple[CellLane, ...]
    settings: RunSettings

    def __post_init__(self) -> None:
        if not self.lanes:
            raise ValueError("a cell run needs at least one lane")
        lanes = tuple(sorted(set(self.lanes)))
        if len(lanes) != len(self.lanes):
            raise ValueError("a cell run's lanes must be distinct")
        if any(not 0 <= lane.optimizer < len(self.optimizers) for lane in lanes):
            raise ValueError("a cell lane names an optimizer the cell does not have")
        object.__setattr__(self, "lanes", lanes)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seed indices of the cell's streams, ascending."""
        return tuple(sorted({lane.seed for lane in self.lanes}))

    def run_seed(self, seed: int) -> int:
        """The mini-batch stream of a seed index: the ordinary run's (same derivation)."""
        return derive_seed(self.settings.base_seed, self.problem.stream_key, self.batch_size, seed)

    def identity(self) -> dict[str, Any]:
        """Everything that determines the run's rows."""
        budget = self.settings.budget
        identity: dict[str, Any] = {
            "kind": self.kind,
            "dataset": self.problem.to_dict(),
            "batch_size": self.batch_size,
            "lanes": [
                {
                    "optimizer": self.optimizers[lane.optimizer].identity(),
                    "seed": lane.seed,
                    "run_seed": self.run_seed(lane.seed),
                    "lr": lane.lr,
                }
                for lane in self.lanes
            ],
            "budget_samples": budget.samples,
            "budget_epochs": budget.epochs,
            "evaluations": self.settings.evaluations,
            "tail_evaluations": self.settings.tail_evaluations,
            "divergence_factor": self.settings.divergence_factor,
            "loss_arithmetic": LOSS_ARITHMETIC,
        }
        if budget.steps is not None:
            identity["budget_steps"] = budget.steps
        return identity

    def _train_run(self) -> RunOutput:
        from anisoada.experiments.bundle import OptimizerBundle
        from anisoada.experiments.tasks.cell import CellTask

        data = load_dataset(self.problem)
        n_train = data.X.shape[0]
        seeds = self.seeds
        used = sorted({lane.optimizer for lane in self.lanes})
        blocks = [[lane for lane in self.lanes if lane.optimizer == g] for g in used]
        task = CellTask(
            data.X,
            data.y,
            blocks=[[seeds.index(lane.seed) for lane in block] for block in blocks],
            stream_seeds=[self.run_seed(seed) for seed in seeds],
            X_test=data.X_test,
            y_test=data.y_test,
        )
        optimizer = OptimizerBundle(
            [
                build_optimizer(self.optimizers[g], [param], [lane.lr for lane in block])
                for g, param, block in zip(used, task.parameters(), blocks)
            ]
        )
        budget = (
            Budget(samples=self.settings.budget.samples_for(n_train))
            if self.settings.budget.steps is None
            else self.settings.budget
        )
        steps = budget.num_steps(self.batch_size)
        every, first = self.settings.evaluation_steps(steps)
        config = TrainConfig(
            batch_size=self.batch_size,
            budget=budget,
            seed=self.run_seed(seeds[0]),
            eval_every=every,
            eval_from=first,
            divergence_factor=self.settings.divergence_factor,
        )
        result = train(task, optimizer, config)
        ordered = [lane for block in blocks for lane in block]
        lanes = [
            {
                "optimizer": self.optimizers[lane.optimizer].label,
                "seed": lane.seed,
                "lr": lane.lr,
                "status": status,
                "steps": lane_steps,
            }
            for lane, status, lane_steps in zip(ordered, result.status, result.steps)
        ]
        vectors = {
            "weights": task.weights(),
            "lrs": np.array([lane.lr for lane in ordered]),
            "seeds": np.array([lane.seed for lane in ordered]),
            "optimizers": np.array([self.optimizers[lane.optimizer].label for lane in ordered]),
        }
        fields = {
            "lanes": lanes,
            "steps_budget": steps,
            "n_train": n_train,
            "dataset_description": data.description,
        }
        return RunOutput(self._rows(result, ordered, n_train), result, fields, vectors)

    def _record(self, started: RunClock, output: RunOutput) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "unit": self.identity(),
            **output.fields,
            **started.elapsed(),
            "provenance": provenance(),
        }

    def _rows(self, result: TrainResult, ordered: Sequence[CellLane], n_train: int) -> pd.DataFrame:
        """The loop's rows with each lane's identity columns: an ordinary run's columns."""
        specs = [self.optimizers[lane.optimizer] for lane in ordered]
        labels = np.array([spec.label for spec in specs], dtype=object)
        names = np.array([spec.name for spec in specs], dtype=object)
        options = np.array([spec.options_json for spec in specs], dtype=object)
        samples = np.array([row["samples"] for row in result.rows])
        return lane_rows(
            result,
            lambda lanes: {
                "dataset": self.problem.name,
                "optimizer": labels[lanes],
                "optimizer_name": names[lanes],
                "optimizer_options": options[lanes],
                "batch_size": self.batch_size,
                "seed": np.array([lane.seed for lane in ordered])[lanes],
                "lr": np.array([lane.lr for lane in ordered])[lanes],
            },
            extra={"epoch": samples / n_train},
            run_id=self.run_id,
        )
