"""A stochastic anisotropic quadratic as a run kind of the one sweep (``anisoada demo``).

``f(w) = ½ Σ_j L_j (w_j − w*_j)²`` with ``L_j = L_max (j+1)^(−a)``, one-sample Gaussian noise
``σ_j = σ_max (j+1)^(−b)`` and ``inf f = 0`` (:meth:`anisoada.data.StochasticQuadratic.power_law`):
every constant of the paper's bounds is known exactly, and a run takes milliseconds. The runs
start at ``w_1 = w* + 1`` and report the exact optimality gap ``loss = f(w) − inf f``; K learning
rates train as the lanes of one run on the same noise draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from anisoada.experiments.optimizers import OptimizerSpec
from anisoada.experiments.runs.base import (
    ProblemSpecBase,
    RunOutput,
    RunSettings,
    SingleProcessRun,
    run_rows,
    spec_from_table,
)
from anisoada.experiments.tasks.quadratic import QuadraticTask

__all__ = ["MAX_QUADRATIC_DIM", "QuadraticRun", "QuadraticSpec"]

#: The largest dimension a quadratic may have: each lane keeps a few float64 vectors of ``d``
#: entries (weights, gradient, noise, optimizer state), already gigabytes at ``10^8``.
MAX_QUADRATIC_DIM = 100_000_000


@dataclass(frozen=True)
class QuadraticSpec(ProblemSpecBase["QuadraticRun"]):
    """A power-law stochastic quadratic (see the module docstring).

    Args:
        name: Label in results tables.
        dim: Dimension ``d``.
        smoothness_exponent: ``a`` in ``L_j ∝ (j+1)^(−a)`` (0: isotropic).
        noise_exponent: ``b`` in ``σ_j ∝ (j+1)^(−b)``.
        max_smoothness: ``L_max``.
        max_noise: ``σ_max``.
    """

    kind: ClassVar[str] = "quadratic"
    lanes: ClassVar[bool] = True

    name: str = "quadratic"
    dim: int = 1000
    smoothness_exponent: float = 1.5
    noise_exponent: float = 1.0
    max_smoothness: float = 1.0
    max_noise: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"quadratic dim must be a positive integer; got {self.dim!r}")
        if self.dim > MAX_QUADRATIC_DIM:
            raise ValueError(
                f"quadratic dim {self.dim} is above {MAX_QUADRATIC_DIM} (each learning rate "
                f"keeps several float64 vectors of dim entries, {self.dim * 8 / 1e9:.3g} GB "
                "each); lower dim"
            )
        for field in ("smoothness_exponent", "noise_exponent", "max_smoothness", "max_noise"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"quadratic {field} must be a number; got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"quadratic {field} must be a finite number; got {value!r}")
        for field in ("smoothness_exponent", "noise_exponent"):
            if getattr(self, field) < 0:
                raise ValueError(
                    f"quadratic {field} must be >= 0 (0: isotropic); got {getattr(self, field)!r}"
                )
        if not (self.max_smoothness > 0 and self.max_noise >= 0):
            raise ValueError("quadratic max_smoothness must be > 0 and max_noise >= 0")

    @property
    def stream_key(self) -> str:
        return self.name

    def problem(self) -> Any:
        """The :class:`anisoada.data.StochasticQuadratic`."""
        from anisoada.data import StochasticQuadratic

        return StochasticQuadratic.power_law(
            self.dim,
            smoothness_exponent=self.smoothness_exponent,
            noise_exponent=self.noise_exponent,
            L_max=self.max_smoothness,
            sigma_max=self.max_noise,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "smoothness_exponent": self.smoothness_exponent,
            "noise_exponent": self.noise_exponent,
            "max_smoothness": self.max_smoothness,
            "max_noise": self.max_noise,
        }

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> QuadraticSpec:
        """Inverse of :meth:`to_dict`: a ``[[problems]]`` table with ``kind = "quadratic"``."""
        return spec_from_table(cls, table, where)

    def stand_in(self) -> str | None:
        return "a synthetic quadratic with exact constants, not a learning problem"

    def reference_loss(self) -> float | None:
        """``inf f = 0``, attained at ``w*``."""
        return 0.0

    def validate(
        self, optimizers: Sequence[OptimizerSpec], batch_sizes: Sequence[int], settings: RunSettings
    ) -> None:
        if settings.budget.epochs is not None:
            raise ValueError("a quadratic problem has no training set: give samples or steps")
        for batch_size in batch_sizes:
            settings.budget.num_steps(batch_size)

    def _run_class(self) -> type[QuadraticRun]:
        return QuadraticRun


@dataclass(frozen=True)
class QuadraticRun(SingleProcessRun[QuadraticSpec]):
    """K learning rates of one (quadratic, optimizer, batch size, seed), as lanes."""

    def _train_run(self) -> RunOutput:
        problem = self.problem.problem()
        # w_1 = w* + 1: the same start for every optimizer, lr and batch size.
        task = QuadraticTask.from_problem(
            problem, initial=np.asarray(problem.minimiser) + 1.0, lanes=len(self.lrs)
        )
        result, steps = self._train(task)
        rows = run_rows(self, result).rename(columns={"loss": "train_loss"})
        f_initial = float(problem.loss(np.asarray(problem.minimiser) + 1.0))
        return RunOutput(rows, result, {"steps_budget": steps, "f_initial": f_initial})
