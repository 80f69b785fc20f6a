"""Experiments: the one training loop, tasks, sweeps, the results store and reproductions.

* :mod:`~anisoada.experiments.loop` — :func:`train` and the :class:`Task` protocol every
  experiment implements (logistic regression here; GPT-2 instruction tuning in
  :mod:`anisoada.experiments.lm`), with :class:`Callback` hooks, checkpoints and schedules;
* :class:`LogisticTask` — logistic regression with K learning rates as the lanes of one run;
* :func:`run_sweep` — datasets × optimizers × batch sizes × learning rates × seeds, resumable,
  with best-learning-rate selection and grid extension (:func:`load_sweep_config` reads TOML);
* :class:`ResultsStore` — tidy parquet rows, ``run.json`` provenance, ``.npz`` vectors;
* :func:`reproductions` — the targets of ``anisoada reproduce`` (``logreg``, …).
"""

from anisoada.experiments.callbacks import Checkpointer, RowLogger, load_checkpoint
from anisoada.experiments.config import load_sweep_config, sweep_config_from_dict
from anisoada.experiments.datasets import DatasetSpec, LogisticData, load_dataset
from anisoada.experiments.logistic import LogisticTask, sample_rows
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
from anisoada.experiments.reproduce import Reproduction, ReproductionOutput, reproductions
from anisoada.experiments.schedules import LRSchedule
from anisoada.experiments.store import ResultsStore, provenance
from anisoada.experiments.sweep import (
    LRGrid,
    OptimizerSpec,
    SweepConfig,
    SweepResult,
    derive_seed,
    run_sweep,
    select_best,
)

__all__ = [
    "Budget",
    "Callback",
    "Checkpointer",
    "DatasetSpec",
    "LRGrid",
    "LRSchedule",
    "LogisticData",
    "LogisticTask",
    "OptimizerSpec",
    "QuadraticTask",
    "Reproduction",
    "ReproductionOutput",
    "ResultsStore",
    "RowLogger",
    "SweepConfig",
    "SweepResult",
    "Task",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "derive_seed",
    "load_checkpoint",
    "load_dataset",
    "load_sweep_config",
    "provenance",
    "reproductions",
    "run_sweep",
    "sample_rows",
    "select_best",
    "sweep_config_from_dict",
    "train",
]
