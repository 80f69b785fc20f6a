"""Experiments: tasks, kinds of run, the one sweep engine, its executors and the results store.

* :mod:`~anisoada.experiments.tasks` — what the one training loop (:func:`anisoada.train.train`)
  trains: :class:`LogisticTask`, :class:`QuadraticTask`, :class:`LanguageModelTask`;
* :mod:`~anisoada.experiments.runs` — the kinds of run a sweep schedules: a problem spec
  (:class:`DatasetSpec`, :class:`QuadraticSpec`, :class:`LMSpec`) makes run specs
  (:class:`LogisticRun`, :class:`QuadraticRun`, :class:`LMRun`);
* :func:`run_sweep` / :class:`SweepConfig` — problems × optimizers × batch sizes × learning
  rates × seeds, resumable, with the one selection rule (:func:`select_best`) and the one
  grid-extension rule (:class:`LRGrid`); :func:`load_sweep_config` reads TOML and
  :func:`dump_sweep_config` writes it back;
* :class:`LocalExecutor`, :class:`CollectiveExecutor` — where runs execute;
* :class:`ResultsStore` — tidy parquet rows, ``run.json`` provenance, ``.npz`` vectors.
"""

from anisoada.experiments.config import (
    dump_sweep_config,
    load_sweep_config,
    sweep_config_from_dict,
    sweep_config_toml,
)
from anisoada.experiments.executors import (
    CollectiveExecutor,
    Executor,
    LocalExecutor,
    RunFailure,
)
from anisoada.experiments.grid import LRGrid
from anisoada.experiments.optimizers import OptimizerSpec, build_optimizer, parse_optimizer_options
from anisoada.experiments.runs import (
    PROBLEM_KINDS,
    DatasetSpec,
    LMRun,
    LMSpec,
    LogisticData,
    LogisticRun,
    ProblemSpec,
    QuadraticRun,
    QuadraticSpec,
    RunSettings,
    RunSpec,
    derive_seed,
    load_dataset,
)
from anisoada.experiments.selection import final_rows, lr_scores, select_best
from anisoada.experiments.store import ResultsStore, provenance
from anisoada.experiments.sweep import SweepConfig, SweepFailedError, SweepResult, run_sweep
from anisoada.experiments.tasks import (
    LanguageModelTask,
    LayerNoiseMonitor,
    LogisticTask,
    QuadraticTask,
    sample_rows,
)

__all__ = [
    "PROBLEM_KINDS",
    "CollectiveExecutor",
    "DatasetSpec",
    "Executor",
    "LMRun",
    "LMSpec",
    "LRGrid",
    "LanguageModelTask",
    "LayerNoiseMonitor",
    "LocalExecutor",
    "LogisticData",
    "LogisticRun",
    "LogisticTask",
    "OptimizerSpec",
    "ProblemSpec",
    "QuadraticRun",
    "QuadraticSpec",
    "QuadraticTask",
    "ResultsStore",
    "RunFailure",
    "RunSettings",
    "RunSpec",
    "SweepConfig",
    "SweepFailedError",
    "SweepResult",
    "build_optimizer",
    "derive_seed",
    "dump_sweep_config",
    "final_rows",
    "load_dataset",
    "load_sweep_config",
    "lr_scores",
    "parse_optimizer_options",
    "provenance",
    "run_sweep",
    "sample_rows",
    "select_best",
    "sweep_config_from_dict",
    "sweep_config_toml",
]
