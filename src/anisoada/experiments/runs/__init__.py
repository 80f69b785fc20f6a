"""The kinds of run the one sweep engine schedules (see :mod:`.base` for the protocols).

* ``"logistic"`` — :class:`DatasetSpec` / :class:`LogisticRun`: logistic regression on a LIBSVM
  set, a synthetic power-law problem or its rotated twin, K learning rates as lanes;
* ``"quadratic"`` — :class:`QuadraticSpec` / :class:`QuadraticRun`: a stochastic quadratic with
  exact constants (``anisoada demo``);
* ``"lm"`` — :class:`LMSpec` / :class:`LMRun`: GPT-2 instruction tuning, one lr per run,
  data parallel under ``torchrun``;
* ``"module"`` — :class:`ModuleSpec` / :class:`ModuleRun`: a user's own PyTorch problem
  (``module:function`` returning a model factory, a mean-reduced loss and the data), one lr
  per run.

:data:`PROBLEM_KINDS` maps a ``kind`` (the key of a sweep file's ``[[problems]]`` table) to its
spec class; each class reads its own table with ``from_table``.
"""

from anisoada.experiments.runs.base import (
    ProblemSpec,
    Resources,
    RunSettings,
    RunSpec,
    derive_seed,
    identity_hash,
    spec_from_table,
)
from anisoada.experiments.runs.language_model import LMRun, LMSpec, prepared_lm_data
from anisoada.experiments.runs.logistic import (
    DATASET_SOURCES,
    DatasetSpec,
    LogisticData,
    LogisticRun,
    dataset_optimum,
    load_dataset,
)
from anisoada.experiments.runs.module import ModuleRun, ModuleSpec
from anisoada.experiments.runs.quadratic import QuadraticRun, QuadraticSpec

#: Run kinds by the ``kind`` key of a ``[[problems]]`` table.
PROBLEM_KINDS: dict[
    str, type[DatasetSpec] | type[QuadraticSpec] | type[LMSpec] | type[ModuleSpec]
] = {
    DatasetSpec.kind: DatasetSpec,
    QuadraticSpec.kind: QuadraticSpec,
    LMSpec.kind: LMSpec,
    ModuleSpec.kind: ModuleSpec,
}

__all__ = [
    "DATASET_SOURCES",
    "PROBLEM_KINDS",
    "DatasetSpec",
    "LMRun",
    "LMSpec",
    "LogisticData",
    "LogisticRun",
    "ModuleRun",
    "ModuleSpec",
    "ProblemSpec",
    "QuadraticRun",
    "QuadraticSpec",
    "Resources",
    "RunSettings",
    "RunSpec",
    "dataset_optimum",
    "derive_seed",
    "identity_hash",
    "load_dataset",
    "prepared_lm_data",
    "spec_from_table",
]
