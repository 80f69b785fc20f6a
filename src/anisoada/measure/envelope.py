"""Affine upper envelopes ``y ≤ L0 + L1·x`` for generalized smoothness (assumption A3).

Given points ``(x_i, y_i)`` with ``x_i = |∂_j f(w)|`` and ``y_i`` a local smoothness measurement
(e.g. a secant ratio), A3 asks for ``L0, L1 ≥ 0`` with ``y ≤ L0 + L1 x``. Measurements are noisy
and heavy-tailed, so the envelope covers a chosen fraction ``q`` of the points rather than all.

Formulation (``λ = 1/(n(1 − q))``):

    minimise  L0 + L1·x̄  +  λ Σ_i (y_i − L0 − L1 x_i)_+     over L0, L1 ≥ 0,

the mean height of the line over the data (the "area under the line" for the empirical
distribution of ``x``) plus a hinge price for every point left above it. Expanding the check loss
shows this is exactly quantile regression at level ``q`` (divided by ``n(1 − q)``), constrained
to non-negative coefficients, and for ``q = 1`` it is the hard-covering linear programme
"minimise the area subject to covering every point". For fixed ``L1`` the optimal ``L0`` is the
``⌈nq⌉``-th smallest residual ``y_i − L1 x_i`` (clipped at 0), so **at least a fraction q of the
points is always covered**; what is left, a convex function of ``L1`` alone, is minimised by golden
section search. Cost ``O(n)`` per step (``np.partition``), exact up to the search tolerance.

References:
    Koenker & Bassett (1978), "Regression quantiles"; Zhang, He, Sra, Jadbabaie (2020), "Why
    gradient clipping accelerates training" (the ``(L0, L1)`` condition); Liu, Pan, Zhang (2025).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["EnvelopeFit", "envelope_objective", "fit_envelope", "fit_envelopes"]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
# A slope contributing less than this fraction of max(y) over the data counts as zero.
_NEGLIGIBLE = 1e-15
# Slopes are searched below this (a point needs x < y·1e-300 to ask for more).
_MAX_SLOPE = 1e300
_ITERATIONS = 300


@dataclasses.dataclass(frozen=True)
class EnvelopeFit:
    """An affine envelope ``y ≤ L0 + L1·x`` and how well it covers its points.

    Attributes:
        L0: intercept (≥ 0).
        L1: slope (≥ 0).
        coverage: the fraction ``q`` the fit was asked to cover.
        covered_fraction: fraction of the fitted points with ``y ≤ L0 + L1 x`` (≥ ``coverage``).
        n_points: points used (finite, non-negative ``x`` and ``y``).
        n_dropped: points ignored because ``x`` or ``y`` was ``nan``/``inf``.
        objective: value of the minimised objective (see the module docstring).
    """

    L0: float
    L1: float
    coverage: float
    covered_fraction: float
    n_points: int
    n_dropped: int
    objective: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray | float:
        """The envelope ``L0 + L1·x``."""
        return self.L0 + self.L1 * np.asarray(x, dtype=np.float64)

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def envelope_objective(
    x: np.ndarray, y: np.ndarray, L0: float, L1: float, *, coverage: float
) -> float:
    """``L0 + L1·x̄ + Σ_i (y_i − L0 − L1 x_i)_+ / (n(1 − q))`` (infinite if ``q = 1`` and a point
    is left above the line): the quantity :func:`fit_envelope` minimises."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    excess = np.maximum(y - L0 - L1 * x, 0.0)
    area = L0 + L1 * float(x.mean())
    if coverage >= 1.0:
        # Points above the line by more than rounding make a q = 1 envelope infeasible.
        slack = 1e-12 * max(1.0, float(np.abs(y).max()))
        return area if not np.any(excess > slack) else math.inf
    return area + float(excess.sum()) / (x.size * (1.0 - coverage))


def fit_envelope(
    x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float], *, coverage: float = 0.99
) -> EnvelopeFit:
    """Fit the affine upper envelope ``y ≤ L0 + L1·x`` covering at least a fraction ``coverage``.

    See the module docstring for the objective. ``nan``/``inf`` points (e.g. skipped secants) are
    dropped and counted.

    Args:
        x: abscissae ``≥ 0`` (e.g. gradient magnitudes).
        y: ordinates ``≥ 0`` (e.g. secant ratios).
        coverage: ``q ∈ (0, 1]``; 1 gives the tightest envelope over every point.

    Returns:
        :class:`EnvelopeFit`.

    Example:
        >>> x = np.array([0.0, 1.0, 2.0, 3.0])
        >>> fit = fit_envelope(x, 1.0 + 2.0 * x, coverage=1.0)
        >>> round(fit.L0, 9), round(fit.L1, 9), fit.covered_fraction
        (1.0, 2.0, 1.0)
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"Invalid coverage: {coverage!r}; use a fraction in (0, 1].")
    x_all = np.asarray(x, dtype=np.float64).reshape(-1)
    y_all = np.asarray(y, dtype=np.float64).reshape(-1)
    if x_all.shape != y_all.shape:
        raise ValueError(f"x and y must have the same length; got {x_all.size} and {y_all.size}")
    finite = np.isfinite(x_all) & np.isfinite(y_all)
    xs, ys = x_all[finite], y_all[finite]
    if xs.size == 0:
        raise ValueError("no finite (x, y) points to fit an envelope to")
    if xs.min() < 0 or ys.min() < 0:
        raise ValueError("envelope points must be non-negative (|gradient|, smoothness ratio)")
    rank = max(1, math.ceil(coverage * xs.size - 1e-9))  # the ⌈nq⌉-th smallest residual

    def best_intercept(slope: float) -> float:
        residual = ys - slope * xs
        return max(0.0, float(np.partition(residual, rank - 1)[rank - 1]))

    mean_x = float(xs.mean())
    penalty = 0.0 if coverage >= 1.0 else 1.0 / (xs.size * (1.0 - coverage))

    def cost(slope: float) -> float:
        # For q = 1 the intercept covers every point by construction; evaluating the hinge there
        # would only see rounding (and envelope_objective would call it infeasible).
        intercept = best_intercept(slope)
        if not penalty:
            return intercept + slope * mean_x
        excess = np.maximum(ys - slope * xs - intercept, 0.0)
        return intercept + slope * mean_x + penalty * float(excess.sum())

    positive = xs > 0
    with np.errstate(over="ignore"):
        ratios = ys[positive] / xs[positive]
    slope_cap = min(float(ratios.max()), _MAX_SLOPE) if ratios.size else 0.0
    best_slope, best_cost = 0.0, cost(0.0)
    if slope_cap > 0:
        # Past slope_cap every point with x > 0 is covered with L0 = 0, so a larger slope only
        # adds area: the minimiser lies in [0, slope_cap]. The objective is convex in L1, hence
        # unimodal in log L1, where golden section keeps relative precision across decades.
        # Below slope_floor the slope moves the line by < 1e-15 of the largest y anywhere on the
        # data, which L1 = 0 (compared separately) represents.
        slope_floor = _NEGLIGIBLE * float(ys.max()) / float(xs.max())
        # A floor that underflows to 0 (y values near the smallest float) starts at the cap.
        lower = min(slope_floor, slope_cap) if slope_floor > 0 else slope_cap
        lo, hi = math.log(lower), math.log(slope_cap)
        a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
        fa, fb = cost(math.exp(a)), cost(math.exp(b))
        for _ in range(_ITERATIONS):
            if fa <= fb:
                hi, b, fb = b, a, fa
                a = hi - _GOLDEN * (hi - lo)
                fa = cost(math.exp(a))
            else:
                lo, a, fa = a, b, fb
                b = lo + _GOLDEN * (hi - lo)
                fb = cost(math.exp(b))
            if hi - lo < 1e-13:
                break
        for s in (lo, a, b, hi):
            c = cost(math.exp(s))
            if c < best_cost:
                best_slope, best_cost = math.exp(s), c
    intercept = best_intercept(best_slope)
    # Same arithmetic as the intercept's choice, so that the ⌈nq⌉ guarantee survives rounding.
    covered = float(np.mean(ys - best_slope * xs <= intercept))
    return EnvelopeFit(
        L0=intercept,
        L1=best_slope,
        coverage=coverage,
        covered_fraction=covered,
        n_points=int(xs.size),
        n_dropped=int((~finite).sum()),
        objective=best_cost,
    )


def fit_envelopes(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    coverage: float = 0.99,
    min_points: int = 2,
) -> dict[str, EnvelopeFit]:
    """One envelope per group (e.g. per parameter tensor) and one pooled over all points.

    Args:
        x, y: points as in :func:`fit_envelope`.
        groups: integer group of each point (e.g. the block number of its coordinate).
        names: name of each group number (default ``"0"``, ``"1"``, …).
        coverage: fraction each envelope must cover.
        min_points: groups with fewer finite points get no fit (absent from the result).

    Returns:
        ``{"pooled": fit, name: fit, ...}``.
    """
    x, y = np.asarray(x, np.float64).reshape(-1), np.asarray(y, np.float64).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if not x.size == y.size == groups.size:
        raise ValueError(
            f"x, y, groups must have equal lengths; got {x.size}, {y.size}, {groups.size}"
        )
    fits = {"pooled": fit_envelope(x, y, coverage=coverage)}
    finite = np.isfinite(x) & np.isfinite(y)
    for g in np.unique(groups):
        mask = groups == g
        if int((mask & finite).sum()) < min_points:
            continue
        name = names[int(g)] if names is not None else str(g)
        fits[name] = fit_envelope(x[mask], y[mask], coverage=coverage)
    return fits
