"""Learning-rate schedules: a multiplier of the initial learning rate per optimizer step.

The loop sets ``lr_t = initial_lr · schedule(t)`` for the 0-based step ``t``. A schedule is a
frozen dataclass (so a sweep can record it in ``run.json`` and send it to a worker process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SCHEDULE_KINDS", "LRSchedule"]

SCHEDULE_KINDS = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """Constant, linear-decay or cosine-decay multiplier with optional linear warm-up.

    With warm-up length ``W``, total steps ``T``, final ratio ``r`` and progress
    ``p = (t − W) / (T − W)`` after the warm-up:

    * warm-up (``t < W``): ``(t + 1) / W``;
    * ``"constant"``: ``1``;
    * ``"linear"``: ``1 − (1 − r)·p``;
    * ``"cosine"``: ``r + (1 − r)·(1 + cos(π p)) / 2``.

    ``p`` is clipped to ``[0, 1]``, so steps past ``T`` keep the final ratio.

    Args:
        kind: One of :data:`SCHEDULE_KINDS`.
        warmup_steps: Length ``W`` of the linear warm-up (0: none).
        total_steps: ``T``; required for ``"linear"`` and ``"cosine"``.
        final_ratio: ``r``, the multiplier reached at step ``T``.

    Example:
        >>> schedule = LRSchedule("cosine", warmup_steps=2, total_steps=6, final_ratio=0.1)
        >>> [round(schedule(t), 3) for t in range(7)]
        [0.5, 1.0, 1.0, 0.868, 0.55, 0.232, 0.1]
    """

    kind: str = "constant"
    warmup_steps: int = 0
    total_steps: int | None = None
    final_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"schedule kind must be one of {SCHEDULE_KINDS}; got {self.kind!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0; got {self.warmup_steps!r}")
        needs_total = self.kind != "constant"
        if needs_total and (self.total_steps is None or self.total_steps <= self.warmup_steps):
            raise ValueError(
                f"a {self.kind} schedule needs total_steps > warmup_steps "
                f"({self.warmup_steps}); got total_steps={self.total_steps!r}"
            )
        if not 0.0 <= self.final_ratio <= 1.0:
            raise ValueError(f"final_ratio must be in [0, 1]; got {self.final_ratio!r}")

    def __call__(self, step: int) -> float:
        """The learning-rate multiplier at 0-based ``step``."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        assert self.total_steps is not None
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        if self.kind == "linear":
            return 1.0 - (1.0 - self.final_ratio) * progress
        return self.final_ratio + (1.0 - self.final_ratio) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )
