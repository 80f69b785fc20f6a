"""The one training loop of anisoada, with its callbacks, schedules and data-parallel helpers.

* :func:`train` and the :class:`Task` protocol every experiment implements (logistic regression,
  a stochastic quadratic, GPT-2 instruction tuning, a user's own PyTorch model, and the
  full-batch Adam run of the Figure 1 smoothness check all go through it);
* :class:`Budget`, :class:`TrainConfig`, :class:`TrainState`, :class:`TrainResult`;
* :class:`Callback` hooks, :class:`Checkpointer` / :func:`load_checkpoint` (exact resume) and
  :class:`RowLogger`;
* :class:`LRSchedule` — constant, linear or cosine decay with warm-up;
* :class:`DistributedContext`, :func:`init_distributed`, :class:`GradientAllReduce` — data
  parallelism under ``torchrun`` without a DDP wrapper.

This layer knows nothing about sweeps, stores or measurements.
"""

from anisoada.train.callbacks import Checkpointer, RowLogger, load_checkpoint
from anisoada.train.config import Budget, TrainConfig
from anisoada.train.distributed import (
    DistributedContext,
    GradientAllReduce,
    init_distributed,
    shutdown_distributed,
)
from anisoada.train.loop import Callback, Task, TrainResult, TrainState, train
from anisoada.train.schedules import SCHEDULE_KINDS, LRSchedule

__all__ = [
    "SCHEDULE_KINDS",
    "Budget",
    "Callback",
    "Checkpointer",
    "DistributedContext",
    "GradientAllReduce",
    "LRSchedule",
    "RowLogger",
    "Task",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "init_distributed",
    "load_checkpoint",
    "shutdown_distributed",
    "train",
]
