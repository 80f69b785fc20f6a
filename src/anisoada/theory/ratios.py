"""Anisotropy ratios and the AdaGrad/SGD ratio of each bound term.

Each ratio is at most 1, and smaller means more anisotropic, hence more advantage for AdaGrad:

    ρ_L = ‖L‖_1 / (d·‖L‖_∞)       ∈ [1/d, 1]
    ρ_σ = ‖σ‖_1 / (√d·‖σ‖_2)      ∈ [1/√d, 1]
    ρ_D = D_2 / (√d·D_∞)          ∈ [1/√d, 1]

The AdaGrad/SGD ratios of the bound terms (equal absolute constants, ``‖L‖_∞`` for SGD) are
[paper, PAPER.md]: convex bias ``ρ_L/ρ_D²``, convex noise ``ρ_σ/ρ_D``; nonconvex bias ``√ρ_L`` and
noise ``(ρ_L·ρ_σ²)^{1/4}``. All three ratios equal 1 for isotropic vectors and a box-shaped set.

References:
    Liu, Pan, Zhang. "AdaGrad under Anisotropic Smoothness." ICLR 2025, Sections 4–5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from anisoada.theory import _validate

__all__ = ["TermRatios", "rho_D", "rho_L", "rho_sigma", "term_ratios"]


def rho_L(L: ArrayLike) -> float:
    """Smoothness anisotropy ``ρ_L = ‖L‖_1/(d·‖L‖_∞) ∈ [1/d, 1]``.

    1 when all ``L_j`` are equal; ``1/d`` when one coordinate carries all the curvature. It is the
    AdaGrad/SGD ratio of the nonconvex bias term squared, and of the convex bias term on a box.

    Args:
        L: Smoothness vector (A2), shape ``(d,)``, with at least one positive entry.

    Returns:
        ``ρ_L``.

    Example:
        >>> rho_L([1.0, 1.0, 1.0, 5.0])  # 8 / (4·5)
        0.4

    References:
        Liu, Pan, Zhang (ICLR 2025), Section 4.
    """
    return _anisotropy("L", L, lambda v: v.size * float(v.max()))


def rho_sigma(sigma: ArrayLike) -> float:
    """Noise anisotropy ``ρ_σ = ‖σ‖_1/(√d·‖σ‖_2) ∈ [1/√d, 1]``.

    1 when all ``σ_j`` are equal; ``1/√d`` when a single coordinate is noisy.

    Args:
        sigma: Per-coordinate noise standard deviation (A5), shape ``(d,)``, not all zero.

    Returns:
        ``ρ_σ``.

    Example:
        >>> rho_sigma([3.0, 4.0, 0.0, 0.0])  # 7 / (2·5)
        0.7

    References:
        Liu, Pan, Zhang (ICLR 2025), Section 4.
    """
    return _anisotropy("sigma", sigma, lambda v: math.sqrt(v.size) * math.sqrt(float((v**2).sum())))


def rho_D(D_inf: float, D_2: float, d: int) -> float:
    """Feasible-set anisotropy ``ρ_D = D_2/(√d·D_∞) ∈ [1/√d, 1]``.

    1 for a box (the natural set of an ℓ∞ analysis); ``1/√d`` for a segment along an axis.

    Args:
        D_inf: ℓ∞ diameter of the feasible set.
        D_2: ℓ2 diameter of the feasible set; must satisfy ``D_∞ ≤ D_2 ≤ √d·D_∞``.
        d: Dimension.

    Returns:
        ``ρ_D``.

    Example:
        >>> rho_D(1.0, 2.0, 16)
        0.5

    References:
        Liu, Pan, Zhang (ICLR 2025), Section 4.
    """
    d = _dimension(d)
    D_inf, D_2 = _validate.diameters(D_inf, D_2, d)
    return D_2 / (math.sqrt(d) * D_inf)


@dataclass(frozen=True)
class TermRatios:
    """AdaGrad/SGD ratio of each bound term (< 1: AdaGrad's term is smaller).

    Attributes:
        setting: ``"convex"`` or ``"nonconvex"``.
        smoothness: SGD's smoothness constant, ``"‖L‖_∞"`` or ``"λ_max"``.
        bias: Ratio of the bias terms.
        noise: Ratio of the noise terms (``nan`` when both noise terms vanish, ``σ = 0``).
    """

    setting: str
    smoothness: str
    bias: float
    noise: float


def term_ratios(
    L: ArrayLike,
    sigma: ArrayLike,
    *,
    setting: Literal["convex", "nonconvex"],
    D_inf: float | None = None,
    D_2: float | None = None,
    lambda_max: float | None = None,
) -> TermRatios:
    """AdaGrad/SGD ratio of the bias and of the noise terms, with equal absolute constants.

    Convex (Thm 4.1 over Eq. 6), with ``ℓ = ‖L‖_∞`` or the measured ``λ_max``::

        bias:  ‖L‖_1·D_∞² / (ℓ·D_2²)      (= ρ_L/ρ_D² when ℓ = ‖L‖_∞)
        noise: ‖σ‖_1·D_∞ / (‖σ‖_2·D_2)    (= ρ_σ/ρ_D)

    Nonconvex, ℓ1 stationarity (Thm 4.3 over SGD's ℓ2 rate times √d)::

        bias:  √(‖L‖_1 / (d·ℓ))                        (= √ρ_L)
        noise: (‖L‖_1·‖σ‖_1² / (d²·ℓ·‖σ‖_2²))^{1/4}     (= (ρ_L·ρ_σ²)^{1/4})

    The ratios do not depend on ``M``, ``T`` or ``Δ``: they compare the dimension factors only.
    With ``ℓ = ‖L‖_∞`` the nonconvex ratios are at most 1; the convex ones are too on a box
    (``D_2 = √d·D_∞``, the default), but on a thin set ``ρ_D < 1`` penalises AdaGrad.

    Args:
        L: Smoothness vector (A2), shape ``(d,)``, with at least one positive entry.
        sigma: Per-coordinate noise standard deviation, shape ``(d,)``.
        setting: ``"convex"`` or ``"nonconvex"``.
        D_inf: ℓ∞ diameter (convex only; required there).
        D_2: ℓ2 diameter (convex only; default ``√d·D_∞``, a box).
        lambda_max: Measured ℓ2 smoothness constant for SGD instead of ``‖L‖_∞``.

    Returns:
        The :class:`TermRatios`.

    Example:
        >>> r = term_ratios([1.0, 1.0, 1.0, 5.0], [1.0, 0.0, 0.0, 0.0], setting="nonconvex")
        >>> round(r.bias**2, 12), round(r.noise**4, 12)  # ρ_L, ρ_L·ρ_σ² = 0.4·0.25
        (0.4, 0.1)

    References:
        Liu, Pan, Zhang (ICLR 2025), Sections 4.1–4.2.
    """
    L, sigma = _validate.vector("L", L), _validate.vector("sigma", sigma)
    d = _validate.same_length(("L", L), ("sigma", sigma))
    if L.max() == 0:
        raise ValueError("term ratios are undefined for L = 0 (both bias terms vanish)")
    if lambda_max is None:
        smoothness, label = float(L.max()), "‖L‖_∞"
    else:
        smoothness, label = _validate.positive("lambda_max", lambda_max), "λ_max"
    L_l1 = float(L.sum())
    sigma_l1 = float(sigma.sum())
    sigma_l2 = math.sqrt(float((sigma**2).sum()))
    sigma_ratio = sigma_l1 / sigma_l2 if sigma_l2 > 0 else math.nan
    if setting == "convex":
        if D_inf is None:
            raise ValueError("D_inf is required for the convex setting")
        D_inf, D_2 = _validate.diameters(D_inf, D_2, d)
        bias = L_l1 * D_inf**2 / (smoothness * D_2**2)
        noise = sigma_ratio * D_inf / D_2
    elif setting == "nonconvex":
        bias = math.sqrt(L_l1 / (d * smoothness))
        noise = (L_l1 * sigma_ratio**2 / (d**2 * smoothness)) ** 0.25
    else:
        raise ValueError(f"setting must be 'convex' or 'nonconvex'; got {setting!r}")
    return TermRatios(setting=setting, smoothness=label, bias=bias, noise=noise)


def _anisotropy(name: str, value: ArrayLike, largest: Callable[[np.ndarray], float]) -> float:
    """``‖v‖_1 / largest(v)``: the ℓ1 norm of the vector over the most it can be for ``v``'s other
    norm (``d·‖v‖_∞`` or ``√d·‖v‖_2``); undefined (0/0) for ``v = 0``."""
    vector = _validate.vector(name, value)
    bound = largest(vector)
    if bound == 0:
        raise ValueError(
            f"rho_{name} is undefined for {name} = 0 (0/0); {name} needs a positive entry"
        )
    return float(vector.sum()) / bound


def _dimension(d: int) -> int:
    try:
        valid = not isinstance(d, bool) and int(d) == d and d >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"d must be a positive integer (the dimension); got {d!r}")
    return int(d)
