"""A stochastic anisotropic quadratic as a :class:`~anisoada.experiments.Task`.

Small, exact and fast: the loop's tests and examples use it, and it is the simplest template
for writing a task.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["QuadraticTask"]


class QuadraticTask:
    """``f(w) = ½ Σ_j h_j (w_j − w*_j)²`` with additive gradient noise, as a training task.

    One example ``ξ ~ N(0, diag(s²))`` has loss ``f(w) + ⟨ξ, w⟩``, so its gradient is
    ``∇f(w) + ξ``: unbiased, with per-coordinate noise standard deviation ``s_j`` (assumption
    A5 with ``σ = s``), and smoothness vector ``L = h`` (A2). A batch is a ``(b, d)`` tensor
    of noise draws; the loss is the mean over its rows. ``evaluate`` returns the exact
    ``loss = f(w) − f(w*) = f(w)``.

    Args:
        curvatures: ``h`` (positive), one per coordinate.
        noise: ``s`` per coordinate (scalar broadcast; 0 = deterministic gradients).
        minimiser: ``w*`` (default zeros).
        initial: ``w_1`` (default ones).

    Example:
        >>> task = QuadraticTask(curvatures=[1.0, 4.0], initial=[2.0, 1.0])
        >>> task.evaluate()["loss"]
        4.0
    """

    def __init__(
        self,
        curvatures: Sequence[float],
        *,
        noise: float | Sequence[float] = 0.0,
        minimiser: Sequence[float] | None = None,
        initial: Sequence[float] | None = None,
    ) -> None:
        self.curvatures = torch.as_tensor(curvatures, dtype=torch.float64)
        if self.curvatures.ndim != 1 or not bool((self.curvatures > 0).all()):
            raise ValueError(f"curvatures must be a vector of positive numbers; got {curvatures}")
        d = self.curvatures.numel()
        self.noise = torch.broadcast_to(torch.as_tensor(noise, dtype=torch.float64), (d,)).clone()
        if bool((self.noise < 0).any()):
            raise ValueError(f"noise must be >= 0; got {noise}")
        self.minimiser = torch.zeros(d, dtype=torch.float64)
        if minimiser is not None:
            self.minimiser = torch.as_tensor(minimiser, dtype=torch.float64).reshape(d)
        start = torch.ones(d, dtype=torch.float64) if initial is None else initial
        self.weight_vector = torch.nn.Parameter(torch.as_tensor(start, dtype=torch.float64).clone())

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight_vector]

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
                batch_size, self.curvatures.numel(), generator=generator, dtype=torch.float64
            )
            draws = draws * self.noise
            yield list(torch.split(draws, micro_batch_size))
            step += 1

    def _objective(self) -> torch.Tensor:
        return 0.5 * (self.curvatures * (self.weight_vector - self.minimiser) ** 2).sum()

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        return self._objective() + (batch.mean(dim=0) * self.weight_vector).sum()

    def weight(self, batch: torch.Tensor) -> float:
        return float(batch.shape[0])

    def evaluate(self) -> Mapping[str, Any]:
        with torch.no_grad():
            return {"loss": float(self._objective())}

    def state_dict(self) -> dict[str, Any]:
        return {"weight": self.weight_vector.detach().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            self.weight_vector.copy_(state["weight"])
