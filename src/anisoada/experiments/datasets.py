"""Datasets of the logistic-regression experiments, named by a frozen, hashable spec.

Three sources:

* ``"synthetic"`` — :func:`anisoada.data.make_sparse_logistic`, a sparse problem with power-law
  feature frequencies (strongly anisotropic smoothness and noise); a held-out test split is
  generated with it. Needs no files.
* ``"rotated"`` — the same problem after :func:`anisoada.data.rotated_twin`: identical spectrum
  (SGD cannot tell the difference), coordinate structure destroyed (AdaGrad's advantage should
  vanish). The control experiment.
* ``"libsvm"`` — a LIBSVM binary set via :func:`anisoada.data.load_libsvm` (``a9a``, ``w8a``, …),
  with its official test split when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

__all__ = ["DATASET_SOURCES", "DatasetSpec", "LogisticData", "load_dataset"]

DATASET_SOURCES = ("synthetic", "rotated", "libsvm")

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
}


class LogisticData(NamedTuple):
    """Training and (optional) test data of one logistic-regression problem."""

    X: Any
    y: np.ndarray
    X_test: Any
    y_test: np.ndarray | None
    description: str


@dataclass(frozen=True)
class DatasetSpec:
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
        if self.source in ("synthetic", "rotated"):
            unknown = sorted(set(dict(self.options)) - set(SYNTHETIC_DEFAULTS))
            if unknown:
                raise ValueError(
                    f"unknown option(s) {unknown} for synthetic dataset {self.name!r}; "
                    f"known: {sorted(SYNTHETIC_DEFAULTS)}"
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
        return {"dataset": self.name, "test": True}[key]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (as in a TOML ``[[datasets]]`` table)."""
        payload = {"name": self.name, "source": self.source, **dict(self.options)}
        if self.stream:
            payload["stream"] = self.stream
        return payload


@lru_cache(maxsize=8)
def load_dataset(spec: DatasetSpec) -> LogisticData:
    """Materialise a dataset (cached per process, since every run of a sweep reuses it)."""
    if spec.source == "libsvm":
        return _load_libsvm(spec)
    from anisoada.data import make_sparse_logistic, rotated_twin

    n, n_test = int(spec.option("n")), int(spec.option("n_test"))
    problem = make_sparse_logistic(
        n + n_test,
        int(spec.option("d")),
        exponent=float(spec.option("exponent")),
        density=float(spec.option("density")),
        label_noise=float(spec.option("label_noise")),
        margin_std=float(spec.option("margin_std")),
        seed=int(spec.option("seed")),
    )
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


def _load_libsvm(spec: DatasetSpec) -> LogisticData:
    from anisoada.data import libsvm_available, load_libsvm

    name = str(spec.option("dataset"))
    train = load_libsvm(name)
    X, y = sp.csr_matrix(train.X), np.asarray(train.y, dtype=np.float64)
    X_test = y_test = None
    if spec.option("test") and libsvm_available(name, split="test"):
        test = load_libsvm(name, split="test", n_features=X.shape[1])
        X_test, y_test = sp.csr_matrix(test.X), np.asarray(test.y, dtype=np.float64)
    held_out = "no test split" if X_test is None else f"n_test={X_test.shape[0]}"
    return LogisticData(
        X=X,
        y=y,
        X_test=X_test,
        y_test=y_test,
        description=f"LIBSVM {name}: n={X.shape[0]}, {held_out}, d={X.shape[1]}",
    )
