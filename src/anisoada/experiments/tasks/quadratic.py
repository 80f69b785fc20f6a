"""A stochastic anisotropic quadratic as a :class:`~anisoada.train.Task`, with lanes.

Small, exact and fast: the loop's tests use it, ``anisoada demo`` sweeps it, and it is the
simplest template for writing a task. The problem itself — ``f``, ``L``, ``σ``, ``w*`` — is
:class:`anisoada.data.StochasticQuadratic`; this module only adds the training stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from anisoada.data import StochasticQuadratic

__all__ = ["QuadraticTask"]


class QuadraticTask:
    """``f(w) = ½ Σ_j L_j (w_j − w*_j)²`` with additive gradient noise, as a training task.

    One example ``ζ ~ N(0, I)`` has loss ``f(w) + ⟨σ ⊙ ζ, w⟩``, so its gradient is
    ``∇f(w) + σ ⊙ ζ``: unbiased, with per-coordinate noise standard deviation ``σ_j`` (assumption
    A5, tight) and smoothness vector ``L`` (A2, tight). A batch is a ``(b, d)`` tensor of draws;
    the loss is the mean over its rows. The draws of step ``t`` come from a generator seeded by
    ``(seed, t)``, so micro-batching and resuming change nothing, and every lane (K weight
    columns, e.g. K learning rates) sees the same draws. ``evaluate`` returns the exact
    ``loss = f(w) − inf f = f(w)`` per lane.

    Args:
        curvatures: ``L`` (positive), one per coordinate.
        noise: ``σ`` per coordinate (scalar broadcast; 0 = deterministic gradients).
        minimiser: ``w*`` (default zeros).
        initial: ``w_1`` (default ones).
        lanes: K, the number of independent weight columns.

    Example:
        >>> task = QuadraticTask(curvatures=[1.0, 4.0], initial=[2.0, 1.0])
        >>> task.evaluate()["loss"]
        4.0
    """

    def __init__(
        self,
        curvatures: Sequence[float] | np.ndarray,
        *,
        noise: float | Sequence[float] | np.ndarray = 0.0,
        minimiser: Sequence[float] | np.ndarray | None = None,
        initial: Sequence[float] | np.ndarray | None = None,
        lanes: int = 1,
    ) -> None:
        L = np.asarray(curvatures, dtype=np.float64)
        if L.ndim != 1 or not bool((L > 0).all()):
            raise ValueError(f"curvatures must be a vector of positive numbers; got {curvatures}")
        sigma = np.broadcast_to(np.asarray(noise, dtype=np.float64), L.shape).copy()
        self.problem = StochasticQuadratic(
            L=L,
            sigma=sigma,
            minimiser=None if minimiser is None else np.asarray(minimiser, dtype=np.float64),
        )
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer; got {lanes!r}")
        self.lanes = lanes
        self._L = torch.from_numpy(np.array(self.problem.L))[:, None]
        self._sigma = torch.from_numpy(np.array(self.problem.sigma))
        self._minimiser = torch.from_numpy(np.array(self.problem.minimiser))[:, None]
        start = np.ones(L.size) if initial is None else np.asarray(initial, dtype=np.float64)
        if start.shape != L.shape:
            raise ValueError(f"initial must have shape {L.shape}; got {start.shape}")
        weights = torch.from_numpy(np.repeat(start[:, None], lanes, axis=1))
        self.weight_matrix = torch.nn.Parameter(weights)

    @classmethod
    def from_problem(
        cls,
        problem: StochasticQuadratic,
        *,
        initial: Sequence[float] | np.ndarray | None = None,
        lanes: int = 1,
    ) -> QuadraticTask:
        """The task of a :class:`~anisoada.data.StochasticQuadratic` (Gaussian noise)."""
        if problem.noise_kind != "gaussian":
            raise ValueError("QuadraticTask draws Gaussian examples; use noise_kind='gaussian'")
        return cls(
            problem.L,
            noise=problem.sigma,
            minimiser=problem.minimiser,
            initial=initial,
            lanes=lanes,
        )

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight_matrix]

    def batches(
        self, *, seed: int, batch_size: int, micro_batch_size: int, start_step: int
    ) -> Iterator[Sequence[torch.Tensor]]:
        step = start_step
        while True:
            # One generator per step: the stream at step s does not depend on where it started.
            generator = torch.Generator().manual_seed(
                int(np.random.SeedSequence([seed, step]).generate_state(1)[0])
            )
            draws = torch.randn(
                batch_size, self._sigma.numel(), generator=generator, dtype=torch.float64
            )
            yield list(torch.split(draws * self._sigma, micro_batch_size))
            step += 1

    def _objective(self) -> torch.Tensor:
        return 0.5 * (self._L * (self.weight_matrix - self._minimiser) ** 2).sum(dim=0)

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        losses = self._objective() + batch.mean(dim=0) @ self.weight_matrix
        return losses[0] if self.lanes == 1 else losses

    def weight(self, batch: torch.Tensor) -> float:
        return float(batch.shape[0])

    def evaluate(self) -> Mapping[str, Any]:
        with torch.no_grad():
            losses = self._objective().numpy().copy()
        return {"loss": float(losses[0]) if self.lanes == 1 else losses}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weight_matrix.detach().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            self.weight_matrix.copy_(state["weights"])
