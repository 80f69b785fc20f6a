"""Experiments: the one training loop, tasks, sweeps, the results store and reproductions.

See :mod:`anisoada.experiments.loop` for the :class:`Task` protocol every experiment
implements (logistic regression here, the GPT-2 instruction-tuning task in
:mod:`anisoada.experiments.lm`).
"""

from anisoada.experiments.callbacks import Checkpointer, RowLogger, load_checkpoint
from anisoada.experiments.loop import (
    Budget,
    Callback,
    Task,
    TrainConfig,
    TrainResult,
    TrainState,
    train,
)
from anisoada.experiments.quadratic import QuadraticTask
from anisoada.experiments.schedules import LRSchedule

__all__ = [
    "Budget",
    "Callback",
    "Checkpointer",
    "LRSchedule",
    "QuadraticTask",
    "RowLogger",
    "Task",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "load_checkpoint",
    "train",
]
