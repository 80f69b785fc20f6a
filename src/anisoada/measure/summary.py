"""The measured constants of one problem, stored as ``<stem>.npz`` + ``<stem>.json``.

``<stem>.npz`` holds the per-coordinate float64 vectors:

* ``L`` — smoothness vector ``(d,)``; ``sigma`` — one-sample noise ``(d,)`` (both required);
* ``hessian_diagonal`` ``(d,)`` — optional;
* ``block_names`` (str) and ``block_sizes`` (int64) — optional partition of the ``d`` coordinates
  into parameter tensors, in order (sizes sum to ``d``);
* ``L0``, ``L1`` ``(d,)`` — optional generalized-smoothness vectors (A3), per coordinate; when
  the envelope was fitted per parameter tensor, each coordinate carries its tensor's
  ``(L0, L1)`` (see :meth:`MeasurementSummary.with_block_envelopes`).

``<stem>.json`` holds the scalars the bounds use — ``d``, ``L_l1``, ``L_linf``, ``lambda_max``,
``sigma_l1``, ``sigma_l2``, ``rho_L``, ``rho_sigma`` (and ``L0_l1``, ``L1_linf``,
``L0_pooled``, ``L1_pooled`` when an envelope is present) — plus ``conventions`` (what each
vector means) and ``provenance`` (task, data, point, versions), ``format`` and the ``npz`` file
name. ``null`` stands for an unknown or undefined value.
Read both back with :func:`load_summary`; ``anisoada bound --from <stem>.npz`` reads them too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from anisoada._io import atomic_open, load_npz, package_versions, read_json

__all__ = ["SUMMARY_FORMAT", "MeasurementSummary", "load_summary", "summary_paths"]

SUMMARY_FORMAT = "anisoada-measure-summary/1"


@dataclasses.dataclass(frozen=True, eq=False)
class MeasurementSummary:
    """Per-coordinate smoothness and noise of one problem, with the norms the bounds use.

    Attributes:
        L: ``(d,)`` non-negative smoothness vector (A2 majorant or an estimate; see conventions).
        sigma: ``(d,)`` non-negative one-sample noise standard deviations (A5).
        lambda_max: top Hessian eigenvalue (SGD's best ℓ2 constant), ``None`` if not measured.
        hessian_diagonal: optional ``(d,)`` Hessian diagonal (at the measurement point).
        block_names: optional names of consecutive coordinate blocks (parameter tensors).
        block_sizes: their sizes (sum ``d``); required with ``block_names``.
        L0, L1: optional ``(d,)`` generalized-smoothness vectors (A3).
        L0_pooled, L1_pooled: optional envelope pooled over all coordinates.
        conventions: ``{quantity: what it means}`` (e.g. how ``L`` was obtained).
        provenance: JSON-serialisable record of how the numbers were produced.

    Example:
        >>> s = MeasurementSummary(L=np.array([1.0, 3.0]), sigma=np.array([0.0, 2.0]))
        >>> s.d, s.L_l1, s.rho_L, s.sigma_l2
        (2, 4.0, 0.6666666666666666, 2.0)
    """

    L: np.ndarray
    sigma: np.ndarray
    lambda_max: float | None = None
    hessian_diagonal: np.ndarray | None = None
    block_names: tuple[str, ...] | None = None
    block_sizes: tuple[int, ...] | None = None
    L0: np.ndarray | None = None
    L1: np.ndarray | None = None
    L0_pooled: float | None = None
    L1_pooled: float | None = None
    conventions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        L = _vector("L", self.L, nonnegative=True)
        d = L.size
        object.__setattr__(self, "L", L)
        object.__setattr__(self, "sigma", _vector("sigma", self.sigma, nonnegative=True, d=d))
        if self.hessian_diagonal is not None:
            object.__setattr__(
                self, "hessian_diagonal", _vector("hessian_diagonal", self.hessian_diagonal, d=d)
            )
        if (self.block_names is None) != (self.block_sizes is None):
            raise ValueError("give block_names and block_sizes together (or neither)")
        if self.block_names is not None and self.block_sizes is not None:  # both or neither
            names = tuple(str(n) for n in self.block_names)
            sizes = tuple(int(s) for s in self.block_sizes)
            if len(names) != len(sizes) or sum(sizes) != d or min(sizes, default=1) < 1:
                raise ValueError(
                    f"block_sizes must be positive, one per block name, and sum to d={d}; got "
                    f"{len(names)} names, sizes summing to {sum(sizes)}"
                )
            object.__setattr__(self, "block_names", names)
            object.__setattr__(self, "block_sizes", sizes)
        if (self.L0 is None) != (self.L1 is None):
            raise ValueError("give L0 and L1 together (or neither)")
        for name in ("L0", "L1"):
            if getattr(self, name) is not None:
                object.__setattr__(
                    self, name, _vector(name, getattr(self, name), nonnegative=True, d=d)
                )
        if self.lambda_max is not None and not math.isfinite(self.lambda_max):
            raise ValueError(f"lambda_max must be finite or None; got {self.lambda_max!r}")
        object.__setattr__(self, "conventions", dict(self.conventions))
        object.__setattr__(self, "provenance", dict(self.provenance))

    @property
    def d(self) -> int:
        """Number of coordinates."""
        return int(self.L.size)

    @property
    def L_l1(self) -> float:
        """``‖L‖_1`` (AdaGrad's smoothness constant)."""
        return float(self.L.sum())

    @property
    def L_linf(self) -> float:
        """``‖L‖_∞``."""
        return float(self.L.max())

    @property
    def sigma_l1(self) -> float:
        """``‖σ‖_1`` (AdaGrad's noise constant)."""
        return float(self.sigma.sum())

    @property
    def sigma_l2(self) -> float:
        """``‖σ‖_2`` (SGD's noise constant)."""
        return float(np.linalg.norm(self.sigma))

    @property
    def rho_L(self) -> float:
        """``‖L‖_1/(d‖L‖_∞) ∈ [1/d, 1]``; ``nan`` if ``L = 0``."""
        return self.L_l1 / (self.d * self.L_linf) if self.L_linf > 0 else math.nan

    @property
    def rho_sigma(self) -> float:
        """``‖σ‖_1/(√d‖σ‖_2) ∈ [1/√d, 1]``; ``nan`` if ``σ = 0``."""
        return (
            self.sigma_l1 / (math.sqrt(self.d) * self.sigma_l2) if self.sigma_l2 > 0 else math.nan
        )

    def scalars(self) -> dict[str, float | int | None]:
        """The norms and ratios, JSON-ready (``None`` where undefined)."""
        values = {
            "d": self.d,
            "L_l1": self.L_l1,
            "L_linf": self.L_linf,
            "lambda_max": self.lambda_max,
            "sigma_l1": self.sigma_l1,
            "sigma_l2": self.sigma_l2,
            "rho_L": self.rho_L,
            "rho_sigma": self.rho_sigma,
        }
        if self.L0 is not None and self.L1 is not None:  # both or neither
            values["L0_l1"] = float(self.L0.sum())
            values["L1_linf"] = float(self.L1.max())
        if self.L0_pooled is not None:
            values["L0_pooled"] = self.L0_pooled
            values["L1_pooled"] = self.L1_pooled
        return {k: _json_number(v) for k, v in values.items()}

    def per_block(self) -> list[dict[str, float | int | str | None]]:
        """Norms and ratios of each coordinate block (parameter tensor), JSON-ready.

        Per block ``B``: ``‖L_B‖_1``, ``‖L_B‖_∞``, ``‖σ_B‖_1``, ``‖σ_B‖_2`` and the block's own
        ``ρ_L = ‖L_B‖_1/(|B|‖L_B‖_∞)`` and ``ρ_σ = ‖σ_B‖_1/(√|B|‖σ_B‖_2)``: where in the model
        the anisotropy sits. Empty when the summary has no blocks.
        """
        if self.block_names is None or self.block_sizes is None:  # both or neither
            return []
        rows: list[dict[str, float | int | str | None]] = []
        start = 0
        for name, size in zip(self.block_names, self.block_sizes):
            L, sigma = self.L[start : start + size], self.sigma[start : start + size]
            start += size
            L_l1, L_linf = float(L.sum()), float(L.max()) if size else 0.0
            s_l1, s_l2 = float(sigma.sum()), float(np.linalg.norm(sigma))
            rows.append(
                {
                    "block": name,
                    "size": int(size),
                    "L_l1": L_l1,
                    "L_linf": L_linf,
                    "sigma_l1": s_l1,
                    "sigma_l2": s_l2,
                    "rho_L": _json_number(L_l1 / (size * L_linf) if L_linf > 0 else None),
                    "rho_sigma": _json_number(s_l1 / (np.sqrt(size) * s_l2) if s_l2 > 0 else None),
                }
            )
        return rows

    def with_block_envelopes(
        self, fits: Mapping[str, Any], *, conventions: Mapping[str, str] | None = None
    ) -> MeasurementSummary:
        """A copy whose ``L0``/``L1`` give every coordinate its block's envelope.

        Args:
            fits: ``{block name: fit}`` with attributes ``L0``, ``L1`` (e.g. the ``fits`` of a
                :class:`~anisoada.measure.smoothness_check.SmoothnessCheckResult`); a
                ``"pooled"`` entry is used for blocks without their own fit and stored as
                ``L0_pooled``/``L1_pooled``.
            conventions: extra convention lines (e.g. how the envelope was fitted).
        """
        if self.block_names is None or self.block_sizes is None:  # both or neither
            raise ValueError("per-block envelopes need block_names/block_sizes in the summary")
        pooled = fits.get("pooled")
        L0, L1 = [], []
        for name, size in zip(self.block_names, self.block_sizes):
            fit = fits.get(name, pooled)
            if fit is None:
                raise ValueError(f"no envelope for block {name!r} and no 'pooled' fallback")
            L0.append(np.full(size, fit.L0))
            L1.append(np.full(size, fit.L1))
        return dataclasses.replace(
            self,
            L0=np.concatenate(L0),
            L1=np.concatenate(L1),
            L0_pooled=None if pooled is None else float(pooled.L0),
            L1_pooled=None if pooled is None else float(pooled.L1),
            conventions={**self.conventions, **(conventions or {})},
        )

    def save(self, stem: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<stem>.npz`` and ``<stem>.json`` (each atomically); returns both paths."""
        npz_path, json_path = summary_paths(stem)
        npz_path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"L": self.L, "sigma": self.sigma}
        if self.hessian_diagonal is not None:
            arrays["hessian_diagonal"] = self.hessian_diagonal
        if self.block_names is not None:
            arrays["block_names"] = np.array(self.block_names, dtype=np.str_)
            arrays["block_sizes"] = np.array(self.block_sizes, dtype=np.int64)
        for name in ("L0", "L1"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        with atomic_open(npz_path, "wb") as handle:
            # mypy matches **arrays against savez's keyword allow_pickle: bool (no such key here)
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        document = {
            "format": SUMMARY_FORMAT,
            "npz": npz_path.name,
            **self.scalars(),
            "blocks": self.per_block(),
            "conventions": self.conventions,
            "provenance": {
                "python": platform.python_version(),
                "packages": package_versions("anisoada", "torch", "numpy", "scipy"),
                **self.provenance,
            },
        }
        with atomic_open(json_path) as handle:
            handle.write(json.dumps(document, indent=2, default=_json_default) + "\n")
        return npz_path, json_path


def summary_paths(stem: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(<stem>.npz, <stem>.json)``; a given ``.npz``/``.json`` suffix is stripped first."""
    path = Path(stem)
    if path.suffix in (".npz", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".npz"), path.with_name(path.name + ".json")


def load_summary(path: str | os.PathLike[str]) -> MeasurementSummary:
    """Read a summary written by :meth:`MeasurementSummary.save`.

    Args:
        path: the stem, or either file (``.npz`` or ``.json``); both files must exist.

    Raises:
        FileNotFoundError: a file is missing (the message names it).
        ValueError: the files are not a summary, or disagree with each other.
    """
    npz_path, json_path = summary_paths(path)
    for needed in (npz_path, json_path):
        if not needed.is_file():
            raise FileNotFoundError(
                f"{needed} not found: a measurement summary is the pair <stem>.npz + <stem>.json "
                "(write one with `anisoada measure`)"
            )
    advice = "write it again with `anisoada measure --out STEM`"
    document = read_json(json_path, what="a measurement summary", advice=advice)
    if not isinstance(document, dict) or document.get("format") != SUMMARY_FORMAT:
        document = document if isinstance(document, dict) else {}
        raise ValueError(
            f"{json_path} is not a measurement summary (format {document.get('format')!r}, "
            f"expected {SUMMARY_FORMAT!r})"
        )
    arrays = load_npz(npz_path, what="a measurement summary", advice=advice)
    for required in ("L", "sigma"):
        if required not in arrays:
            raise ValueError(f"{npz_path} lacks the vector {required!r}")
    summary = MeasurementSummary(
        L=arrays["L"],
        sigma=arrays["sigma"],
        lambda_max=document.get("lambda_max"),
        hessian_diagonal=arrays.get("hessian_diagonal"),
        block_names=tuple(arrays["block_names"].tolist()) if "block_names" in arrays else None,
        block_sizes=tuple(arrays["block_sizes"].tolist()) if "block_sizes" in arrays else None,
        L0=arrays.get("L0"),
        L1=arrays.get("L1"),
        L0_pooled=document.get("L0_pooled"),
        L1_pooled=document.get("L1_pooled"),
        conventions=document.get("conventions", {}),
        provenance=document.get("provenance", {}),
    )
    if document.get("d") != summary.d:
        raise ValueError(
            f"{json_path} says d={document.get('d')} but {npz_path} holds {summary.d} coordinates"
        )
    return summary


def _vector(
    name: str, value: Any, *, nonnegative: bool = False, d: int | None = None
) -> np.ndarray:
    array = np.array(value, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{name} must be a non-empty vector")
    if d is not None and array.size != d:
        raise ValueError(f"{name} must have d={d} entries like L; got {array.size}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(
            f"{name} has {bad} non-finite entries; fill or drop unmeasured coordinates first"
        )
    if nonnegative and array.min() < 0:
        raise ValueError(f"{name} must be non-negative; its smallest entry is {array.min()}")
    array.setflags(write=False)
    return array


def _json_number(value: float | int | None) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a summary's JSON")
