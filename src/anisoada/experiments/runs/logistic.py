"""Logistic regression as a run kind of the one sweep: its problem spec and its run.

A logistic problem is a data set named by a frozen, hashable :class:`DatasetSpec`; its runs
(:class:`LogisticRun`) train K learning rates at once as the lanes of a ``d × K`` weight matrix
(:class:`~anisoada.experiments.tasks.LogisticTask`): every lane sees the same mini-batches and
the results equal K separate runs to the last bit.

Three sources:

* ``"synthetic"`` — :func:`anisoada.data.make_sparse_logistic`, a sparse problem with power-law
  feature frequencies (strongly anisotropic smoothness and noise); a held-out test split is
  generated with it. Needs no files.
* ``"rotated"`` — the same problem after :func:`anisoada.data.rotated_twin`: identical spectrum
  (SGD cannot tell the difference), coordinate structure destroyed (AdaGrad's advantage should
  vanish). The control experiment.
* ``"libsvm"`` — a LIBSVM binary set via :func:`anisoada.data.load_libsvm_pair`: a registered
  name (``a9a``, ``w8a``, …; its official test split is used when there is one) or any
  LIBSVM/svmlight file, with a test file or a seeded holdout fraction
  (:meth:`DatasetSpec.from_file`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp

from anisoada.experiments.optimizers import OptimizerSpec
from anisoada.experiments.runs.base import (
    ProblemSpecBase,
    RunOutput,
    RunSettings,
    SingleProcessRun,
    run_rows,
)
from anisoada.experiments.tasks.logistic import LOSS_ARITHMETIC, LogisticTask
from anisoada.problems.logistic import LogisticOptimum

if TYPE_CHECKING:
    from anisoada.experiments.runs.cell import CellRun

__all__ = [
    "DATASET_SOURCES",
    "DatasetSpec",
    "LogisticData",
    "LogisticRun",
    "dataset_optimum",
    "load_dataset",
]

DATASET_SOURCES = ("synthetic", "rotated", "libsvm")

#: Options of a ``"libsvm"`` dataset: the registered name or file (``dataset``), whether to use
#: the registered test split (``test``), a test file (``test_file``) or a holdout fraction of the
#: training rows (``holdout``, split with ``holdout_seed``), and the files' sha256 (recorded by
#: :meth:`DatasetSpec.from_file`, so that a changed file is a different dataset).
LIBSVM_OPTIONS = (
    "dataset",
    "test",
    "test_file",
    "holdout",
    "holdout_seed",
    "sha256",
    "test_sha256",
    "test_metrics",
)

#: The largest synthetic problem a spec accepts: rows (``n + n_test``), features (``d``) and
#: expected non-zeros (``rows·d·density``, each about 12 bytes of CSR and copied while it is
#: built). Beyond these the data alone would not fit in a workstation's memory.
MAX_SYNTHETIC_ROWS = 100_000_000
MAX_SYNTHETIC_FEATURES = 100_000_000
MAX_SYNTHETIC_NONZEROS = 1_000_000_000

#: Defaults of the synthetic problem (``make_sparse_logistic`` arguments, the test-set size
#: and, for ``"rotated"``, the rotation's seed).
SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "n": 8000,
    "n_test": 2000,
    "d": 400,
    "exponent": 1.0,
    "density": 0.025,
    "label_noise": 0.05,
    "margin_std": 4.0,
    "seed": 0,
    "rotation_seed": 1,
    "test_metrics": True,
}


class LogisticData(NamedTuple):
    """Training and (optional) test data of one logistic-regression problem."""

    X: Any
    y: np.ndarray
    X_test: Any
    y_test: np.ndarray | None
    description: str


@dataclass(frozen=True)
class DatasetSpec(ProblemSpecBase["LogisticRun"]):
    """A named dataset: its source and the source's options (hashable, JSON-friendly).

    Args:
        name: Label in results tables (e.g. ``"a9a"``, ``"synthetic"``).
        source: One of :data:`DATASET_SOURCES`.
        options: For ``"synthetic"``/``"rotated"``: overrides of :data:`SYNTHETIC_DEFAULTS`;
            for ``"libsvm"``: ``dataset`` (the LIBSVM name, default ``name``) and ``test``
            (use the official test split when available, default true).
        stream: Key of the mini-batch stream (default: ``name``). Datasets with the same
            number of training rows and the same stream key see exactly the same mini-batches
            (row indices) at a given batch size and seed. The rotated twin shares its base
            problem's stream, so that SGD — rotation-equivariant from ``w = 0`` — follows the
            rotated image of the same path and reaches the same losses; any difference between
            the twin and the original is then due to the rotation alone, not to other samples.

    Example:
        >>> spec = DatasetSpec.create("toy", "synthetic", {"n": 500, "d": 50})
        >>> spec.option("n"), spec.option("density")
        (500, 0.025)
    """

    kind: ClassVar[str] = "logistic"
    lanes: ClassVar[bool] = True

    name: str
    source: str = "libsvm"
    options: tuple[tuple[str, Any], ...] = ()
    stream: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"dataset name must be a non-empty string; got {self.name!r}")
        if not isinstance(self.stream, str):
            raise ValueError(
                f"dataset stream must be a string; got {self.stream!r} for dataset {self.name!r}"
            )
        if self.source not in DATASET_SOURCES:
            raise ValueError(
                f"dataset source must be one of {DATASET_SOURCES}; got {self.source!r} "
                f"for dataset {self.name!r}"
            )
        known = SYNTHETIC_DEFAULTS if self.source in ("synthetic", "rotated") else LIBSVM_OPTIONS
        unknown = sorted(set(dict(self.options)) - set(known))
        if unknown:
            raise ValueError(
                f"unknown option(s) {unknown} for {self.source} dataset {self.name!r}; "
                f"known: {sorted(known)}"
            )
        for key, value in self.options:
            problem = _option_problem(self.source, key, value)
            if problem:
                raise ValueError(f"dataset {self.name!r}: option {key} {problem}; got {value!r}")
        options = dict(self.options)
        if "test_file" in options and "holdout" in options:
            raise ValueError(
                f"dataset {self.name!r}: give a test file or a holdout fraction, not both"
            )
        if self.source in ("synthetic", "rotated"):
            self._check_synthetic_size()

    def _check_synthetic_size(self) -> None:
        """A synthetic problem small enough to build: at most :data:`MAX_SYNTHETIC_ROWS` rows,
        :data:`MAX_SYNTHETIC_FEATURES` features and :data:`MAX_SYNTHETIC_NONZEROS` expected
        non-zeros; a rotated twin (dense) at most ``DEFAULT_MAX_DENSE_ENTRIES`` entries."""
        from anisoada.data.synthetic import DEFAULT_MAX_DENSE_ENTRIES

        rows, d = self.option("n") + self.option("n_test"), self.option("d")
        nonzeros = rows * d * self.option("density")
        for what, value, largest, change in (
            ("n + n_test", rows, MAX_SYNTHETIC_ROWS, "n or n_test"),
            ("d", d, MAX_SYNTHETIC_FEATURES, "d"),
            ("its expected non-zeros (n + n_test)·d·density", nonzeros, MAX_SYNTHETIC_NONZEROS,
             "n, n_test, d or density"),
        ):  # fmt: skip
            if value > largest:
                shown = f"{value:.3g}" if isinstance(value, float) else str(value)
                raise ValueError(
                    f"dataset {self.name!r}: {what} = {shown} is above {largest:,} (the data "
                    f"alone would not fit in memory); lower {change}"
                )
        if self.source == "rotated" and rows * d > DEFAULT_MAX_DENSE_ENTRIES:
            raise ValueError(
                f"dataset {self.name!r}: a rotated twin is dense, and (n + n_test)·d = "
                f"{rows * d:,} entries is above {DEFAULT_MAX_DENSE_ENTRIES:,}; lower n, n_test "
                "or d"
            )

    @classmethod
    def create(
        cls,
        name: str,
        source: str = "libsvm",
        options: Mapping[str, Any] | None = None,
        *,
        stream: str = "",
    ) -> DatasetSpec:
        """Build a spec from a plain mapping of options."""
        return cls(
            name=name,
            source=source,
            options=tuple(sorted((options or {}).items())),
            stream=stream,
        )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        name: str = "",
        test: str | os.PathLike[str] | None = None,
        holdout: float | None = None,
        holdout_seed: int = 0,
    ) -> DatasetSpec:
        """A user's LIBSVM/svmlight file (any compression) as a dataset.

        The files' sha256 become options, so a run's identity changes when a file does.

        Args:
            path: The training file.
            name: Label in results tables (default: the file's name without compression
                suffixes).
            test: A test file, aligned to the training file's columns and labels.
            holdout: Hold out this fraction of the training rows as the test set instead.
            holdout_seed: Seed of the holdout split.

        Raises:
            FileNotFoundError: a file does not exist.
        """
        from anisoada.data.libsvm import content_sha256

        train = Path(path)
        if not train.is_file():
            raise FileNotFoundError(f"No such LIBSVM file: {train}")
        options: dict[str, Any] = {"dataset": str(train), "sha256": content_sha256(train)}
        if test is not None:
            test_path = Path(test)
            if not test_path.is_file():
                raise FileNotFoundError(f"No such LIBSVM test file: {test_path}")
            options.update(test_file=str(test_path), test_sha256=content_sha256(test_path))
        if holdout is not None:
            options.update(holdout=holdout, holdout_seed=holdout_seed)
        label = name or _stem(train)
        return cls.create(label, "libsvm", options)

    @property
    def stream_key(self) -> str:
        """The key that seeds this dataset's mini-batch stream (``stream``, else ``name``)."""
        return self.stream or self.name

    def option(self, key: str) -> Any:
        """An option's value, falling back to the source's default."""
        options = dict(self.options)
        if key in options:
            return options[key]
        if self.source in ("synthetic", "rotated"):
            return SYNTHETIC_DEFAULTS[key]
        return {"dataset": self.name, "test": True, "holdout_seed": 0, "test_metrics": True}.get(
            key
        )

    def synthetic_problem(self) -> Any:
        """The :func:`~anisoada.data.make_sparse_logistic` problem (training and test rows,
        before any rotation) of a ``"synthetic"`` or ``"rotated"`` dataset."""
        from anisoada.data import make_sparse_logistic

        if self.source not in ("synthetic", "rotated"):
            raise ValueError(f"dataset {self.name!r} is not synthetic")
        return make_sparse_logistic(
            int(self.option("n")) + int(self.option("n_test")),
            int(self.option("d")),
            exponent=float(self.option("exponent")),
            density=float(self.option("density")),
            label_noise=float(self.option("label_noise")),
            margin_std=float(self.option("margin_std")),
            seed=int(self.option("seed")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (as in a TOML ``[[datasets]]`` table)."""
        payload = {"name": self.name, "source": self.source, **dict(self.options)}
        if self.stream:
            payload["stream"] = self.stream
        return payload

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> DatasetSpec:
        """A ``[[datasets]]`` table: ``name``, ``source``, ``stream`` and the source's options."""
        entry = dict(table)
        if "name" not in entry:
            raise ValueError(f"{where} needs a name; got {entry}")
        name = entry.pop("name")
        source = entry.pop("source", "libsvm")
        stream = entry.pop("stream", "")
        return cls.create(name, source, entry, stream=stream)

    def make_cell_run(
        self,
        optimizers: Sequence[OptimizerSpec],
        batch_size: int,
        lanes: Sequence[tuple[OptimizerSpec, int, float]],
        settings: RunSettings,
    ) -> CellRun:
        """Every ``(optimizer, seed index, lr)`` of ``lanes`` at one batch size in one run."""
        from anisoada.experiments.runs.cell import CellLane, CellRun

        order = list(optimizers)
        return CellRun(
            problem=self,
            batch_size=batch_size,
            optimizers=tuple(order),
            lanes=tuple(CellLane(order.index(spec), seed, lr) for spec, seed, lr in lanes),
            settings=settings,
        )

    def training_only(self) -> DatasetSpec:
        """The same data without test metrics (option ``test_metrics = false``): for runs that
        read only the training loss, such as the advice pilot's. The training rows and columns
        are those of the full spec (a test file can widen the columns), and so is ``f*``.

        Example:
            >>> DatasetSpec.create("a9a", "libsvm").training_only().options
            (('test_metrics', False),)
        """
        return self.with_options(test_metrics=False)

    def with_test_metrics(self) -> DatasetSpec:
        """The spec with test metrics (the ``test_metrics`` option dropped): the data as loaded."""
        options = {k: v for k, v in self.options if k != "test_metrics"}
        return DatasetSpec.create(self.name, self.source, options, stream=self.stream)

    def with_options(self, **options: Any) -> DatasetSpec:
        """The spec with some options set (validated as any)."""
        merged = {**dict(self.options), **options}
        return DatasetSpec.create(self.name, self.source, merged, stream=self.stream)

    def stand_in(self) -> str | None:
        """What stands in for real data (``None`` for a LIBSVM set)."""
        if self.source == "synthetic":
            return "synthetic sparse logistic data, not a LIBSVM dataset"
        if self.source == "rotated":
            return "randomly rotated twin of the synthetic logistic data (the control)"
        return None

    def reference_loss(self) -> float | None:
        """``f*`` of the training set (:func:`dataset_optimum`, L-BFGS; cached per process)."""
        return dataset_optimum(self).f_star

    def validate(
        self, optimizers: Sequence[OptimizerSpec], batch_sizes: Sequence[int], settings: RunSettings
    ) -> None:
        """The budget must allow one step at every batch size, before any run. An epoch budget
        needs the training rows: a synthetic problem's ``n``, or the rows of a LIBSVM file
        (read here, once per process: the runs of this process reuse it)."""
        budget = settings.budget
        if budget.epochs is None:
            for batch_size in batch_sizes:
                budget.num_steps(batch_size)
            return
        n_train = (
            int(self.option("n"))
            if self.source in ("synthetic", "rotated")
            else int(load_dataset(self).X.shape[0])
        )
        for batch_size in batch_sizes:
            try:
                budget.num_steps(batch_size, n_train)
            except ValueError as error:
                raise ValueError(
                    f"dataset {self.name!r}: {budget.epochs:g} epoch(s) of its {n_train} "
                    f"training rows — {error}"
                ) from None

    def _run_class(self) -> type[LogisticRun]:
        return LogisticRun


def load_dataset(spec: DatasetSpec) -> LogisticData:
    """Materialise a dataset (cached per process, since every run of a sweep reuses it; a spec
    without test metrics shares the cache of the one with them and drops its test rows)."""
    data = _materialise(spec.with_test_metrics())
    if spec.option("test_metrics"):
        return data
    return data._replace(
        X_test=None, y_test=None, description=data.description + ", no test metrics"
    )


@lru_cache(maxsize=8)
def _materialise(spec: DatasetSpec) -> LogisticData:
    if spec.source == "libsvm":
        return _load_libsvm(spec)
    from anisoada.data import rotated_twin

    n, n_test = int(spec.option("n")), int(spec.option("n_test"))
    problem = spec.synthetic_problem()
    kind = "sparse power-law logistic problem"
    if spec.source == "rotated":
        problem = rotated_twin(problem, seed=int(spec.option("rotation_seed")))
        kind = "randomly rotated twin of the " + kind
    X, y = problem.X, problem.y
    return LogisticData(
        X=X[:n],
        y=y[:n],
        X_test=X[n:] if n_test else None,
        y_test=y[n:] if n_test else None,
        description=f"{kind}: n={n}, n_test={n_test}, d={X.shape[1]}",
    )


def dataset_optimum(spec: DatasetSpec) -> LogisticOptimum:
    """The minimiser of the mean logistic loss on a dataset's training rows (cached per process,
    shared by the specs that differ only in their test data: :meth:`DatasetSpec.training_only`).

    Separable data has no finite minimiser: L-BFGS then stops with ``converged`` false at a
    large ``w`` and a tiny ``f*`` (see :func:`anisoada.problems.logistic_optimum`).
    """
    return _training_optimum(spec.with_test_metrics())


@lru_cache(maxsize=8)
def _training_optimum(spec: DatasetSpec) -> LogisticOptimum:
    from anisoada.problems.logistic import logistic_optimum

    data = load_dataset(spec)
    return logistic_optimum(data.X, data.y)


def _load_libsvm(spec: DatasetSpec) -> LogisticData:
    from anisoada.data import libsvm_available, load_libsvm_pair
    from anisoada.data.libsvm import LIBSVM_DATASETS, content_sha256

    name = str(spec.option("dataset"))
    for key, path in (("sha256", name), ("test_sha256", spec.option("test_file"))):
        expected = spec.option(key)
        if expected is not None and content_sha256(Path(path)) != expected:
            raise ValueError(
                f"{path} has changed since dataset {spec.name!r} was defined (its sha256 "
                f"differs); give the file a new dataset name, or re-create the sweep"
            )
    test: str | None = spec.option("test_file")
    holdout = spec.option("holdout")
    registered = name in LIBSVM_DATASETS
    if test is None and holdout is None and spec.option("test") and registered:
        test = name if libsvm_available(name, split="test") else None
    train, held_out = load_libsvm_pair(
        name, test, holdout=holdout, seed=int(spec.option("holdout_seed") or 0)
    )
    X, y = sp.csr_matrix(train.X), np.asarray(train.y, dtype=np.float64)
    X_test = y_test = None
    if held_out is not None:
        X_test, y_test = sp.csr_matrix(held_out.X), np.asarray(held_out.y, dtype=np.float64)
    if holdout is not None:
        split = f"{holdout:g} held out (seed {spec.option('holdout_seed')})"
    else:
        split = "no test split" if X_test is None else f"n_test={X_test.shape[0]}"
    label = f"LIBSVM {name}" if registered else f"LIBSVM file {name}"
    return LogisticData(
        X=X,
        y=y,
        X_test=X_test,
        y_test=y_test,
        description=f"{label}: n={X.shape[0]}, {split}, d={X.shape[1]}",
    )


def _stem(path: Path) -> str:
    """``a9a.t.xz`` → ``a9a.t``; ``my.svm.gz`` → ``my.svm``."""
    name = path.name
    for suffix in (".xz", ".gz", ".bz2"):
        name = name.removesuffix(suffix)
    return name


def _option_problem(source: str, key: str, value: Any) -> str | None:
    """What is wrong with one dataset option's value (``None`` when it is fine)."""

    def integer(minimum: int) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"must be an integer >= {minimum}"
        return None

    def number(low: float, high: float, *, open_low: bool = False) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if not (low < value if open_low else low <= value) or not value <= high:
            bracket = "(" if open_low else "["
            return f"must be in {bracket}{low}, {high}]"
        return None

    if source in ("synthetic", "rotated"):
        checks = {
            "n": lambda: integer(2),
            "n_test": lambda: integer(0),
            "d": lambda: integer(1),
            "exponent": lambda: number(0.0, 10.0),
            "density": lambda: number(0.0, 1.0, open_low=True),
            "label_noise": lambda: number(0.0, 0.5),
            "margin_std": lambda: number(0.0, 1e6, open_low=True),
            "seed": lambda: integer(0),
            "rotation_seed": lambda: integer(0),
            "test_metrics": lambda: None if isinstance(value, bool) else "must be true or false",
        }
        return checks[key]()
    if key in ("dataset", "test_file", "sha256", "test_sha256"):
        return None if isinstance(value, str) and value else "must be a non-empty string"
    if key in ("test", "test_metrics"):
        return None if isinstance(value, bool) else "must be true or false"
    if key == "holdout":
        return number(0.0, 1.0, open_low=True) or (None if value < 1 else "must be below 1")
    return integer(0)  # holdout_seed


@dataclass(frozen=True)
class LogisticRun(SingleProcessRun[DatasetSpec]):
    """K learning rates of one (dataset, optimizer, batch size, seed), trained as lanes.

    The arithmetic is small (mini-batch products of a few hundred columns), where BLAS and torch
    thread pools cost far more than they give — 5-10x on 2 cores — so it runs single-threaded.
    """

    threads: ClassVar[str] = "torch+blas"

    @property
    def run_seed(self) -> int:
        """Seed of the mini-batch stream (shared by every optimizer and lr of the cell)."""
        return self.data_seed

    def identity(self) -> dict[str, Any]:
        """Everything that determines the run's rows."""
        budget = self.settings.budget
        identity = {
            "dataset": self.problem.to_dict(),
            "optimizer": self.optimizer.identity(),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "run_seed": self.run_seed,
            "lrs": list(self.lrs),
            "budget_samples": budget.samples,
            "budget_epochs": budget.epochs,
            "evaluations": self.settings.evaluations,
            "divergence_factor": self.settings.divergence_factor,
            "loss_arithmetic": LOSS_ARITHMETIC,
        }
        if budget.steps is not None:
            identity["budget_steps"] = budget.steps
        if self.settings.tail_evaluations is not None:
            identity["tail_evaluations"] = self.settings.tail_evaluations
        return identity

    def _train_run(self) -> RunOutput:
        data = load_dataset(self.problem)
        n_train = data.X.shape[0]
        task = LogisticTask(
            data.X, data.y, lanes=len(self.lrs), X_test=data.X_test, y_test=data.y_test
        )
        result, steps = self._train(task, n_train)
        samples = np.array([row["samples"] for row in result.rows])
        rows = run_rows(self, result, extra={"epoch": samples / n_train})
        fields = {
            "steps_budget": steps,
            "n_train": n_train,
            "dataset_description": data.description,
        }
        vectors = {"weights": task.weights.detach().numpy(), "lrs": np.asarray(self.lrs)}
        return RunOutput(rows, result, fields, vectors)
