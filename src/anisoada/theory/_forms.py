"""What an evaluated bound is, and the two forms every bound of :mod:`~anisoada.theory.bounds` has.

The smooth convex bounds are ``c_bias·ℓ·D²/T + c_noise·s·D/√(M·T)`` and the ℓ1-stationarity bounds
``c_bias·√(dΔℓ/T) + c_noise·(d²Δℓs²/(M·T))^{1/4}``, each method with its own smoothness constant
``ℓ``, noise level ``s`` and dimension factor ``d``; :class:`Bound` keeps the two terms apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from anisoada.theory import _validate

__all__ = ["Bound"]

CONVEX_CRITERION = "E f(w̄_T) − f*"
STATIONARITY_CRITERION = "(1/T) Σ_t E‖∇f(w_t)‖_1"


@dataclass(frozen=True)
class Bound:
    """One evaluated convergence bound, kept as its separate terms (up to absolute constants).

    Attributes:
        method: Optimizer key, as in ``anisoada.optim.OPTIMIZERS``: ``"adagrad"``, ``"sgd"`` or
            ``"adagrad_norm"``.
        setting: ``"convex"``, ``"nonconvex"``, ``"generalized"`` (the (L0, L1) case) or
            ``"nonsmooth"`` (Duchi et al.'s bound).
        theorem: The result the formula transcribes, with its PAPER.md tag.
        criterion: The quantity that is bounded (optimality gap or average ℓ1 gradient norm).
        smoothness: Which smoothness constant entered the bias term, e.g. ``"‖L‖_1"``,
            ``"‖L‖_∞"`` or ``"λ_max"``.
        bias: The term that survives without noise.
        noise: The term proportional to a norm of ``σ`` (0 for the nonsmooth bound).
        batch_size: ``M``.
        iterations: ``T``.
        step_size: The step size the bound is tuned for, up to the same absolute constants.
        bias_exponent: ``p`` such that, at a fixed sample budget, ``bias ∝ M**p``.
        l1_term: The part of ``bias + noise`` that comes from ``‖L1‖`` (generalized bound only;
            0 otherwise). It is already included in ``bias`` and ``noise``.
        step_size_ceiling: The largest step size the analysis allows (``∝ 1/‖L1‖_∞`` in the
            generalized bound; ``inf`` otherwise).
    """

    method: str
    setting: str
    theorem: str
    criterion: str
    smoothness: str
    bias: float
    noise: float
    batch_size: float
    iterations: float
    step_size: float
    bias_exponent: float
    l1_term: float = 0.0
    step_size_ceiling: float = math.inf

    @property
    def total(self) -> float:
        """The bound itself, ``bias + noise``."""
        return self.bias + self.noise

    @property
    def samples(self) -> float:
        """The number of samples used, ``N = M·T``."""
        return self.batch_size * self.iterations

    @property
    def dominant(self) -> str:
        """``"bias"`` or ``"noise"``: the larger term (ties go to ``"noise"``)."""
        return "bias" if self.bias > self.noise else "noise"

    @property
    def critical_batch_size(self) -> float:
        """Batch size at which bias and noise are equal, at this bound's sample budget ``N``.

        At fixed ``N`` the noise term does not depend on ``M`` and the bias term is
        ``bias(M) = bias·(M'/M)**p`` with ``p = bias_exponent``, so the closed form is

            M* = M · (noise / bias) ** (1/p).

        Below ``M*`` the noise term dominates and a larger batch costs (almost) nothing; above it
        the bias term dominates and the bound grows with ``M``. ``inf`` when the bias is zero,
        ``0`` when the noise is zero (every batch size is bias-dominated). The value is not
        clipped to ``[1, N]``.
        """
        if self.bias == 0:
            return math.inf
        if self.noise == 0:
            return 0.0
        return self.batch_size * (self.noise / self.bias) ** (1.0 / self.bias_exponent)

    def as_dict(self) -> dict[str, Any]:
        """All fields plus ``total``, ``samples``, ``dominant`` and ``critical_batch_size``."""
        row = asdict(self)
        row.update(
            total=self.total,
            samples=self.samples,
            dominant=self.dominant,
            critical_batch_size=self.critical_batch_size,
        )
        return row


#: Per setting: the bounded quantity, and ``p`` such that ``bias ∝ M**p`` at a fixed budget.
SETTINGS: dict[str, tuple[str, float]] = {
    "convex": (CONVEX_CRITERION, 1.0),
    "nonconvex": (STATIONARITY_CRITERION, 0.5),
    "generalized": (STATIONARITY_CRITERION, 0.5),
    "nonsmooth": (CONVEX_CRITERION, 0.5),
}


def divide(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with ``x/0 = inf`` (a zero constant allows any step size)."""
    return numerator / denominator if denominator > 0 else math.inf


def uniform_norms(
    L: np.ndarray, sigma: np.ndarray, lambda_max: float | None
) -> tuple[float, str, float]:
    """SGD's one smoothness constant ``ℓ`` with its label, and ``‖σ‖_2``.

    ``ℓ = ‖L‖_∞`` (the A2 framing) or the measured ``λ_max`` when given.
    """
    sigma_l2 = float(np.linalg.norm(sigma))
    if lambda_max is None:
        return float(L.max()), "‖L‖_∞", sigma_l2
    return _validate.positive("lambda_max", lambda_max), "λ_max", sigma_l2


def measured(theorem: str, lambda_max: float | None) -> str:
    return theorem if lambda_max is None else theorem + ", λ_max"


def convex_terms(
    smoothness: float, noise: float, D: float, M: float, T: float, c_bias: float, c_noise: float
) -> tuple[float, float]:
    """``(c_bias·ℓ·D²/T, c_noise·s·D/√(M·T))``: the form of every smooth convex bound here."""
    return c_bias * smoothness * D**2 / T, c_noise * noise * D / math.sqrt(M * T)


def nonconvex_terms(
    smoothness: float,
    noise: float,
    delta: float,
    M: float,
    T: float,
    c_bias: float,
    c_noise: float,
    d: int = 1,
) -> tuple[float, float]:
    """``(c_bias·√(dΔℓ/T), c_noise·(d²Δℓs²/(M·T))^{1/4})``: every ℓ1-stationarity bound here.

    ``d = 1`` with AdaGrad's ℓ1 norms; the dimension for an ℓ2 rate turned into ℓ1 stationarity
    by ``‖x‖_1 ≤ √d·‖x‖_2``.
    """
    return (
        c_bias * math.sqrt(d * delta * smoothness / T),
        c_noise * (d**2 * delta * smoothness * noise**2 / (M * T)) ** 0.25,
    )


def bound_of(
    method: str,
    setting: str,
    theorem: str,
    smoothness: str,
    terms: tuple[float, float],
    M: float,
    T: float,
    step_size: float,
) -> Bound:
    criterion, bias_exponent = SETTINGS[setting]
    return Bound(
        method=method,
        setting=setting,
        theorem=theorem,
        criterion=criterion,
        smoothness=smoothness,
        bias=terms[0],
        noise=terms[1],
        batch_size=M,
        iterations=T,
        step_size=float(step_size),
        bias_exponent=bias_exponent,
    )
