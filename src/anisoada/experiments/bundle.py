"""Several optimizers stepped as one: the lanes of different optimizers in one run.

A cell run (:mod:`anisoada.experiments.runs.cell`) trains the lanes of several optimizers side by
side, one weight block per optimizer. :class:`OptimizerBundle` makes those optimizers one
``torch.optim.Optimizer`` for the training loop: one param group holding every block, whose
``lr`` is the K lanes' learning rates (block by block), so the loop reads and schedules the
learning rate of every lane as it does for a single optimizer with lanes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["OptimizerBundle"]


class OptimizerBundle(torch.optim.Optimizer):
    """Optimizers over disjoint parameters, stepped together.

    Each optimizer must have one param group whose ``lr`` is a tensor of its lanes' rates
    (:func:`~anisoada.experiments.optimizers.build_optimizer` with a sequence of rates). The
    bundle's one group holds every parameter and the concatenated rates; a schedule that sets
    the bundle's ``lr`` (the training loop does, every step, when it has one) is handed to each
    optimizer, slice by slice, before it steps.

    Example:
        >>> from anisoada.experiments.optimizers import OptimizerSpec, build_optimizer
        >>> a = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
        >>> b = torch.zeros(3, 1, dtype=torch.float64, requires_grad=True)
        >>> bundle = OptimizerBundle([
        ...     build_optimizer(OptimizerSpec.create("sgd"), [a], [0.1, 1.0]),
        ...     build_optimizer(OptimizerSpec.create("adagrad"), [b], [0.5])])
        >>> bundle.param_groups[0]["lr"].tolist()
        [0.1, 1.0, 0.5]
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        if not optimizers:
            raise ValueError("an optimizer bundle needs at least one optimizer")
        rates = []
        params: list[torch.Tensor] = []
        for optimizer in optimizers:
            if len(optimizer.param_groups) != 1 or not isinstance(
                optimizer.param_groups[0]["lr"], torch.Tensor
            ):
                raise ValueError(
                    "each optimizer of a bundle needs one param group with a tensor of lane "
                    "learning rates"
                )
            group = optimizer.param_groups[0]
            rates.append(group["lr"].reshape(-1))
            params.extend(group["params"])
        self.optimizers = list(optimizers)
        self._widths = [int(rate.numel()) for rate in rates]
        super().__init__(params, {"lr": torch.cat(rates)})
        self._distributed = self.param_groups[0]["lr"]

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Step every optimizer (after handing each its slice of a changed ``lr``).

        Hooks and profiler ranges belong to the optimizers themselves (each runs its own),
        so the bundle adds no wrapper of its own around them.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rates = self.param_groups[0]["lr"]
        if rates is not self._distributed:
            rates = torch.as_tensor(rates, dtype=self._distributed.dtype).reshape(-1)
            offset = 0
            for optimizer, width in zip(self.optimizers, self._widths):
                optimizer.param_groups[0]["lr"] = rates[offset : offset + width].clone()
                offset += width
            self._distributed = self.param_groups[0]["lr"]
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Each optimizer's ``zero_grad`` (the bundle's parameters are theirs)."""
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """Each optimizer's state dict, in order, and the bundle's rates."""
        return {
            "optimizers": [optimizer.state_dict() for optimizer in self.optimizers],
            "lr": self.param_groups[0]["lr"],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict["optimizers"]
        if len(saved) != len(self.optimizers):
            raise ValueError(
                f"the saved bundle holds {len(saved)} optimizers; this one {len(self.optimizers)}"
            )
        for optimizer, state in zip(self.optimizers, saved):
            optimizer.load_state_dict(state)
        self.param_groups[0]["lr"] = state_dict["lr"]


# torch.optim.Optimizer.__init__ wraps a class's ``step`` in its hook/profiler wrapper unless
# the step is marked as hooked: the bundle's optimizers run theirs, one wrapper per step is
# enough (and at small batches the wrapper costs as much as a step).
OptimizerBundle.step.__dict__["hooked"] = True
