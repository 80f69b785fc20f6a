"""What a training run is asked to do: its :class:`Budget` and the loop's :class:`TrainConfig`.

Frozen records built once at the edge (command line, TOML) and handed to
:func:`anisoada.train.train`; they validate themselves on construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Budget", "TrainConfig"]


@dataclass(frozen=True)
class Budget:
    """How long to train: optimizer steps, samples (examples) or epochs — exactly one.

    A sample budget ``N`` at batch size ``M`` gives ``T = ⌊N / M⌋`` steps, so larger batches take
    fewer steps — the fair comparison across batch sizes (the paper's ``N = M·T``). An epoch
    budget ``E`` is the sample budget ``N = round(E · n)`` of a training set of ``n`` examples.
    The same vocabulary is used by single runs, sweeps, their TOML files and the command line.

    Example:
        >>> Budget(samples=1000).num_steps(batch_size=64)
        15
        >>> Budget(epochs=2.5).num_steps(batch_size=100, n_train=400)
        10
    """

    steps: int | None = None
    samples: int | None = None
    epochs: float | None = None

    def __post_init__(self) -> None:
        given = self.to_dict()
        if len(given) != 1:
            raise ValueError(
                "a budget needs exactly one of steps, samples or epochs; got "
                + (", ".join(f"{k}={v!r}" for k, v in given.items()) or "none")
            )
        ((name, value),) = given.items()
        if name == "epochs":
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"an epoch budget must be a positive number; got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"an epoch budget must be finite; got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"a {name} budget must be a positive integer; got {value!r}")

    def samples_for(self, n_train: int | None = None) -> int | None:
        """The sample budget ``N`` (``None`` for a step budget); epochs need ``n_train``."""
        if self.samples is not None:
            return self.samples
        if self.epochs is not None:
            if n_train is None:
                raise ValueError("an epoch budget needs the training-set size n_train")
            return max(1, round(self.epochs * n_train))
        return None

    def num_steps(self, batch_size: int, n_train: int | None = None) -> int:
        """Optimizer steps this budget allows at ``batch_size``.

        Raises:
            ValueError: the sample budget is smaller than one batch (no step could be taken;
                recording a run of zero steps, or one oversized step, as finished would hide it).
        """
        if self.steps is not None:
            return self.steps
        samples = self.samples_for(n_train)
        assert samples is not None
        if samples < batch_size:
            raise ValueError(
                f"a budget of {samples} samples is less than one step at batch size "
                f"{batch_size}; raise the budget or lower the batch size"
            )
        return samples // batch_size

    def to_dict(self) -> dict[str, int | float]:
        """``{"samples": N}``, ``{"epochs": E}`` or ``{"steps": T}`` (a TOML ``[budget]`` table)."""
        return {
            name: value
            for name, value in (
                ("steps", self.steps),
                ("samples", self.samples),
                ("epochs", self.epochs),
            )
            if value is not None
        }


@dataclass(frozen=True)
class TrainConfig:
    """Everything the loop itself decides (the task and the optimizer are built outside).

    Attributes:
        batch_size: Examples per optimizer step (the effective batch, ``M``).
        budget: Steps or samples to train for.
        micro_batch_size: Examples per forward/backward; ``None`` means ``batch_size`` (no
            gradient accumulation). Must divide nothing: the last micro-batch may be smaller.
        seed: Seed of the data stream and of torch's global generator (dropout etc.).
        eval_every: Evaluate every this many steps (and always before the first and after the
            last step); ``None`` evaluates only at the start and the end.
        eval_from: Skip the cadence's evaluations before this step (the initial and the final
            one are always made): a run whose scores read only its last points (the
            selection rule's tail window) need not pay for the others.
        clip_norm: Clip the global gradient norm to this value (one lane only).
        divergence_factor: A lane diverges when its mini-batch loss exceeds this multiple of
            its first mini-batch loss; ``None`` checks only for NaN/inf.
    """

    batch_size: int
    budget: Budget
    micro_batch_size: int | None = None
    seed: int = 0
    eval_every: int | None = None
    eval_from: int = 0
    clip_norm: float | None = None
    divergence_factor: float | None = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {self.batch_size!r}")
        micro = self.micro_batch_size
        if micro is not None and (not isinstance(micro, int) or micro < 1):
            raise ValueError(f"micro_batch_size must be a positive integer; got {micro!r}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"eval_every must be a positive integer; got {self.eval_every!r}")
        if (
            isinstance(self.eval_from, bool)
            or not isinstance(self.eval_from, int)
            or (self.eval_from < 0)
        ):
            raise ValueError(f"eval_from must be an integer >= 0; got {self.eval_from!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be positive; got {self.clip_norm!r}")
        factor = self.divergence_factor
        if factor is not None and not factor > 1:
            raise ValueError(f"divergence_factor must be > 1 (or None); got {factor!r}")

    @property
    def num_steps(self) -> int:
        """Optimizer steps of the whole run (the budget must not be in epochs here)."""
        return self.budget.num_steps(self.batch_size)

    @property
    def effective_micro_batch_size(self) -> int:
        """Examples per micro-batch (``batch_size`` when not accumulating)."""
        return min(self.micro_batch_size or self.batch_size, self.batch_size)
