"""The paper's convergence bounds as pure functions, each split into its bias and noise terms.

Every function here evaluates a bound **up to absolute constants**: the shapes and the norms are
those of the paper's bounds table (see ``PAPER.md``), the constants are not known, so each one is a
named keyword parameter with default 1 (``c_bias``, ``c_noise``, ...). Comparisons between methods
assume equal constants unless you pass others.

Conventions (all functions):

* ``M`` is the batch size and the stochastic gradient is the **mean** over the batch, so the noise
  variance of coordinate ``j`` is ``σ_j²/M``; ``T`` is the number of iterations and ``N = M·T`` the
  number of samples. Pass ``T`` or the sample budget ``N`` (exactly one); both may be real numbers
  ``≥ 1``.
* ``L`` (smoothness, assumption A2), ``sigma`` (noise standard deviations, A5), ``L0``, ``L1``
  (generalized smoothness, A3) and ``G`` (gradient bounds) are vectors with one non-negative entry
  per coordinate.
* ``D_inf`` and ``D_2`` are the ℓ∞ and ℓ2 diameters of the feasible set; ``delta`` is
  ``Δ = f(w_1) − inf f``.

The "bias" term is the one that remains without noise (it decays like a power of ``1/T``);
the "noise" term is the one proportional to a norm of ``σ``. At a fixed sample budget ``N``
every noise term here is independent of ``M`` while the bias term grows like
``M**bias_exponent``; the batch size at which the two are equal is
:attr:`Bound.critical_batch_size`.

References:
    Liu, Pan, Zhang. "AdaGrad under Anisotropic Smoothness." ICLR 2025, arXiv:2406.15244.
    Duchi, Hazan, Singer. "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization." JMLR 12, 2011.
    Ghadimi, Lan. "Stochastic First- and Zeroth-Order Methods for Nonconvex Stochastic
    Programming." SIAM J. Optim. 23(4), 2013.
    Levy, Yurtsever, Cevher. "Online Adaptive Methods, Universality and Acceleration."
    NeurIPS 2018.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from numpy.typing import ArrayLike

from anisoada.theory import _validate
from anisoada.theory._forms import (
    Bound,
    bound_of,
    convex_terms,
    divide,
    measured,
    nonconvex_terms,
    uniform_norms,
)

__all__ = [
    "Bound",
    "convex_adagrad_bound",
    "convex_adagrad_norm_bound",
    "convex_sgd_bound",
    "generalized_adagrad_bound",
    "nonconvex_adagrad_bound",
    "nonconvex_adagrad_norm_bound",
    "nonconvex_sgd_bound",
    "nonsmooth_adagrad_bound",
]


_F = TypeVar("_F", bound=Callable[..., Any])

#: What each parameter means in every bound that takes it: :func:`_documented` writes the
#: ``Args:`` sections from this table, so that a shared parameter is described once.
_ARGS: dict[str, str] = {
    "L": "Smoothness vector (A2), shape ``(d,)``.",
    "sigma": "Per-coordinate noise standard deviation of one sample (A5), shape ``(d,)``.",
    "D_inf": "ℓ∞ diameter of the feasible set.",
    "D_2": "ℓ2 diameter of the feasible set.",
    "delta": "Initial suboptimality ``Δ = f(w_1) − inf f``.",
    "M": "Batch size.",
    "T": "Number of iterations (give ``T`` or ``N``).",
    "N": "Sample budget ``M·T`` (give ``T`` or ``N``).",
    "lambda_max": "Measured ℓ2 smoothness constant; replaces ``‖L‖_∞`` when given.",
    "c_bias": "Absolute constant of the bias term.",
    "c_noise": "Absolute constant of the noise term.",
}


def _documented(**own: str) -> Callable[[_F], _F]:
    """Put a bound's ``Args:`` section where its docstring has the line ``{args}``.

    One entry per parameter, in signature order: the text given in ``own`` (what is particular to
    this bound), else the shared one of :data:`_ARGS`. A parameter described nowhere fails at
    import, so the section cannot fall behind the signature.
    """

    def document(function: _F) -> _F:
        lines = ["Args:"]
        for name in inspect.signature(function).parameters:
            entry = textwrap.wrap(f"{name}: {own.get(name) or _ARGS[name]}", width=92)
            lines += [" " * 8 + entry[0]] + [" " * 12 + more for more in entry[1:]]
        if function.__doc__:  # None under ``python -OO``
            function.__doc__ = function.__doc__.replace("{args}", "\n".join(lines))
        return function

    return document


@_documented()
def convex_adagrad_bound(
    L: ArrayLike,
    sigma: ArrayLike,
    *,
    D_inf: float,
    M: float,
    T: float | None = None,
    N: float | None = None,
    c_bias: float = 1.0,
    c_noise: float = 1.0,
) -> Bound:
    """Convex AdaGrad (paper, Theorem 4.1), up to absolute constants; ℓ1 norms of ``L`` and ``σ``.

    For convex ``f`` on a set of ℓ∞ diameter ``D_∞`` (A1), anisotropic smoothness ``L`` (A2) and
    noise ``σ`` (A5), projected diagonal AdaGrad with ``η = D_∞`` and the averaged iterate gives

        E f(w̄_T) − f* ≲ c_bias·‖L‖_1·D_∞²/T + c_noise·‖σ‖_1·D_∞/√(M·T).

    Norms [paper]: ``‖L‖_1``, ``‖σ‖_1`` and ``D_∞``; the form of the sum is [recon].

    {args}

    Returns:
        The :class:`Bound`, ``step_size = D_∞`` (option I of the paper's Algorithm 1).

    Example:
        >>> b = convex_adagrad_bound([1.0, 3.0], [2.0, 2.0], D_inf=2.0, M=4, T=16)
        >>> b.bias, b.noise  # 4·4/16, 4·2/√64
        (1.0, 1.0)

    References:
        Liu, Pan, Zhang (ICLR 2025), Theorem 4.1.
    """
    L, sigma = _validate.vectors(L=L, sigma=sigma)
    D_inf, M, T = _validate.scalars(("D_inf", D_inf), M, T, N, c_bias=c_bias, c_noise=c_noise)
    terms = convex_terms(float(L.sum()), float(sigma.sum()), D_inf, M, T, c_bias, c_noise)
    theorem = "Thm 4.1 [paper norms, recon form]"
    return bound_of("adagrad", "convex", theorem, "‖L‖_1", terms, M, T, step_size=D_inf)


@_documented(L="Smoothness vector (A2), shape ``(d,)``; only ``max(L)`` is used.")
def convex_sgd_bound(
    L: ArrayLike,
    sigma: ArrayLike,
    *,
    D_2: float,
    M: float,
    T: float | None = None,
    N: float | None = None,
    lambda_max: float | None = None,
    c_bias: float = 1.0,
    c_noise: float = 1.0,
) -> Bound:
    """Convex projected SGD (paper, Eq. 6), up to absolute constants; ``‖L‖_∞`` (or ``λ_max``), ℓ2.

    With one step size SGD only sees a uniform smoothness constant ``ℓ`` and the ℓ2 noise level:

        E f(w̄_T) − f* ≲ c_bias·ℓ·D_2²/T + c_noise·‖σ‖_2·D_2/√(M·T),

    where ``ℓ = ‖L‖_∞`` — the paper's framing: under A2, ``diag(L) ⪯ ‖L‖_∞·I`` — or, if
    ``lambda_max`` is given, the measured ℓ2 constant ``λ_max = sup_w λ_max(∇²f(w))``, which is
    at most ``‖L‖_∞`` and often far below it (the harder comparison for AdaGrad). The tuned step
    size is ``η = min(1/ℓ, D_2·√M/(‖σ‖_2·√T))``.

    Norms [paper]: ``‖L‖_∞``, ``‖σ‖_2``, ``D_2``; the form is the standard [recon] one.

    {args}

    Returns:
        The :class:`Bound`; ``smoothness`` says which constant was used.

    Example:
        >>> b = convex_sgd_bound([1.0, 3.0], [3.0, 4.0], D_2=2.0, M=4, T=16)
        >>> b.bias, b.noise  # 3·4/16, 5·2/8
        (0.75, 1.25)

    References:
        Liu, Pan, Zhang (ICLR 2025), Eq. (6); Lan, "An optimal method for stochastic composite
        optimization", Math. Program. 133, 2012.
    """
    L, sigma = _validate.vectors(L=L, sigma=sigma)
    D_2, M, T = _validate.scalars(("D_2", D_2), M, T, N, c_bias=c_bias, c_noise=c_noise)
    smoothness, label, sigma_l2 = uniform_norms(L, sigma, lambda_max)
    step = min(divide(1.0, smoothness), divide(D_2 * math.sqrt(M), sigma_l2 * math.sqrt(T)))
    terms = convex_terms(smoothness, sigma_l2, D_2, M, T, c_bias, c_noise)
    theorem = measured("Eq. 6 [paper norms, recon form]", lambda_max)
    return bound_of("sgd", "convex", theorem, label, terms, M, T, step)


@_documented(L="Smoothness vector (A2), shape ``(d,)``; only ``max(L)`` is used.")
def convex_adagrad_norm_bound(
    L: ArrayLike,
    sigma: ArrayLike,
    *,
    D_2: float,
    M: float,
    T: float | None = None,
    N: float | None = None,
    lambda_max: float | None = None,
    c_bias: float = 1.0,
    c_noise: float = 1.0,
) -> Bound:
    """Convex AdaGrad-Norm, up to absolute constants; same form and norms as SGD (Eq. 6).

    AdaGrad-Norm adapts one scalar step size, so its guarantee has SGD's dimension factors:

        E f(w̄_T) − f* ≲ c_bias·ℓ·D_2²/T + c_noise·‖σ‖_2·D_2/√(M·T),

    with ``ℓ = ‖L‖_∞`` or the measured ``λ_max``, and step size ``η = D_2`` (no tuning to ``ℓ``
    or ``σ`` needed — the adaptivity that AdaGrad shares).

    Norms: ``‖L‖_∞``, ``‖σ‖_2``, ``D_2`` [paper: "SGD (and AdaGrad-Norm)"]; form [recon].

    {args}

    Returns:
        The :class:`Bound`.

    Example:
        >>> convex_adagrad_norm_bound([1.0, 3.0], [3.0, 4.0], D_2=2.0, M=4, N=64).total
        2.0

    References:
        Levy, Yurtsever, Cevher (NeurIPS 2018); Liu, Pan, Zhang (ICLR 2025), Section 4.
    """
    L, sigma = _validate.vectors(L=L, sigma=sigma)
    D_2, M, T = _validate.scalars(("D_2", D_2), M, T, N, c_bias=c_bias, c_noise=c_noise)
    smoothness, label, sigma_l2 = uniform_norms(L, sigma, lambda_max)
    theorem = measured("AdaGrad-Norm, Eq. 6 form [recon]", lambda_max)
    terms = convex_terms(smoothness, sigma_l2, D_2, M, T, c_bias, c_noise)
    return bound_of("adagrad_norm", "convex", theorem, label, terms, M, T, step_size=D_2)


@_documented()
def nonconvex_adagrad_bound(
    L: ArrayLike,
    sigma: ArrayLike,
    *,
    delta: float,
    M: float,
    T: float | None = None,
    N: float | None = None,
    c_bias: float = 1.0,
    c_noise: float = 1.0,
) -> Bound:
    """Nonconvex AdaGrad, ℓ1 stationarity (paper, Theorem 4.3), up to constants and log factors.

    Under A2 and A5, unprojected diagonal AdaGrad with ``η = √(Δ/‖L‖_1)`` gives

        (1/T) Σ_t E‖∇f(w_t)‖_1 ≲ c_bias·√(Δ‖L‖_1/T) + c_noise·(Δ‖L‖_1‖σ‖_1²/(M·T))^{1/4}.

    Norms [paper]: ``‖L‖_1``, ``‖σ‖_1``, stationarity in ℓ1; the form is [recon] (logarithmic
    factors of the analysis are not modelled).

    {args}

    Returns:
        The :class:`Bound`.

    Example:
        >>> b = nonconvex_adagrad_bound([1.0, 3.0], [1.0, 1.0], delta=4.0, M=1, T=16)
        >>> b.bias, b.noise  # √(16/16), (16·4/16)^{1/4}
        (1.0, 1.4142135623730951)

    References:
        Liu, Pan, Zhang (ICLR 2025), Theorem 4.3.
    """
    L, sigma = _validate.vectors(L=L, sigma=sigma)
    delta, M, T = _validate.scalars(("delta", delta), M, T, N, c_bias=c_bias, c_noise=c_noise)
    L_l1 = float(L.sum())
    terms = nonconvex_terms(L_l1, float(sigma.sum()), delta, M, T, c_bias, c_noise)
    theorem, step = "Thm 4.3 [paper norms, recon form]", math.sqrt(divide(delta, L_l1))
    return bound_of("adagrad", "nonconvex", theorem, "‖L‖_1", terms, M, T, step)


@_documented(
    L="Smoothness vector (A2), shape ``(d,)``; sets ``d`` and, without ``lambda_max``, ``ℓ``."
)
def nonconvex_sgd_bound(
    L: ArrayLike,
    sigma: ArrayLike,
    *,
    delta: float,
    M: float,
    T: float | None = None,
    N: float | None = None,
    lambda_max: float | None = None,
    c_bias: float = 1.0,
    c_noise: float = 1.0,
) -> Bound:
    """Nonconvex SGD in ℓ1 stationarity (the paper's comparison to Thm 4.3), up to constants.

    SGD's classical ℓ2-stationarity rate ``√(Δℓ/T) + (Δℓ‖σ‖_2²/(MT))^{1/4}`` (Ghadimi & Lan), with
    step size ``η = min(1/ℓ, √(ΔM/(ℓT‖σ‖_2²)))``, converted with ``‖x‖_1 ≤ √d‖x‖_2``:

        (1/T) Σ_t E‖∇f(w_t)‖_1 ≲ c_bias·√(dΔℓ/T) + c_noise·(d²Δℓ‖σ‖_2²/(M·T))^{1/4},

    where ``ℓ = ‖L‖_∞`` (paper's framing under A2) or the measured ``λ_max`` when given.

    Norms [paper]: ``‖L‖_∞``, ``‖σ‖_2`` and the dimension ``d``; the form is [recon].

    {args}

    Returns:
        The :class:`Bound`.

    Example:
        >>> b = nonconvex_sgd_bound([1.0, 2.0], [0.0, 1.0], delta=4.0, M=1, T=16)
        >>> b.bias, b.noise  # √(2·4·2/16), (4·4·2·1/16)^{1/4}
        (1.0, 1.189207115002721)

    References:
        Ghadimi, Lan (SIAM J. Optim. 2013); Liu, Pan, Zhang (ICLR 2025), Section 4.
    """
    L, sigma = _validate.vectors(L=L, sigma=sigma)
    delta, M, T = _validate.scalars(("delta", delta), M, T, N, c_bias=c_bias, c_noise=c_noise)
    smoothness, label, sigma_l2 = uniform_norms(L, sigma, lambda_max)
    step = min(divide(1.0, smoothness), math.sqrt(divide(delta * M, smoothness * T * sigma_l2**2)))
    terms = nonconvex_terms(smoothness, sigma_l2, delta, M, T, c_bias, c_noise, d=L.size)
    theorem = measured("SGD ℓ2 rate ×√d [recon]", lambda_max)
    return bound_of("sgd", "nonconvex", theorem, label, terms, M, T, step)


@_documented()
def nonconvex_adagrad_norm_bound(
    L: ArrayLike,
    sigma: ArrayLike,
    *,
    delta: float,
    M: float,
    T: float | None = None,
    N: float | None = None,
    lambda_max: float | None = None,
    c_bias: float = 1.0,
    c_noise: float = 1.0,
) -> Bound:
    """Nonconvex AdaGrad-Norm in ℓ1 stationarity, up to constants; same form as SGD's.

    A single adaptive step size gives SGD's dimension factors (the paper's "SGD (and
    AdaGrad-Norm)" column), here with step size ``η = √(Δ/ℓ)``:

        (1/T) Σ_t E‖∇f(w_t)‖_1 ≲ c_bias·√(dΔℓ/T) + c_noise·(d²Δℓ‖σ‖_2²/(M·T))^{1/4},

    with ``ℓ = ‖L‖_∞`` or the measured ``λ_max``.

    Norms: ``‖L‖_∞``, ``‖σ‖_2``, ``d`` [paper]; form [recon], logarithmic factors not modelled.

    {args}

    Returns:
        The :class:`Bound`.

    Example:
        >>> nonconvex_adagrad_norm_bound([1.0, 2.0], [0.0, 0.0], delta=4.0, M=1, T=16).total
        1.0

    References:
        Ward, Wu, Bottou, "AdaGrad stepsizes", JMLR 2020; Liu, Pan, Zhang (ICLR 2025), Section 4.
    """
    L, sigma = _validate.vectors(L=L, sigma=sigma)
    delta, M, T = _validate.scalars(("delta", delta), M, T, N, c_bias=c_bias, c_noise=c_noise)
    smoothness, label, sigma_l2 = uniform_norms(L, sigma, lambda_max)
    theorem = measured("AdaGrad-Norm, SGD form [recon]", lambda_max)
    terms = nonconvex_terms(smoothness, sigma_l2, delta, M, T, c_bias, c_noise, d=L.size)
    step = math.sqrt(divide(delta, smoothness))
    return bound_of("adagrad_norm", "nonconvex", theorem, label, terms, M, T, step)


@_documented(
    L0="Constant part of the generalized smoothness (A3), shape ``(d,)``.",
    L1="Gradient-proportional part of the generalized smoothness (A3), shape ``(d,)``.",
    c_bias="Absolute constant of the ``L0`` bias term.",
    c_noise="Absolute constant of the ``L0`` noise term.",
    c_l1="Absolute constant of the ``‖L1‖`` terms.",
    c_ceiling="Absolute constant of the step-size ceiling ``c_ceiling/‖L1‖_∞``.",
)
def generalized_adagrad_bound(
    L0: ArrayLike,
    L1: ArrayLike,
    sigma: ArrayLike,
    *,
    delta: float,
    M: float,
    T: float | None = None,
    N: float | None = None,
    c_bias: float = 1.0,
    c_noise: float = 1.0,
    c_l1: float = 1.0,
    c_ceiling: float = 1.0,
) -> Bound:
    """Nonconvex AdaGrad under generalized (L0, L1) smoothness (paper, Theorem 5.3) [recon].

    What PAPER.md records (a row of its [recon] bounds table; the assumption A3 with two vectors
    ``L0``, ``L1`` is [paper]): Theorem 5.3 has Theorem 4.3's form with ``L`` replaced by ``L0``, an
    extra term in ``‖L1‖`` and a step-size ceiling of order ``1/‖L1‖_∞``. The detailed form below
    is our reconstruction [recon], not a transcription: under
    A3 the descent-lemma term ``½ Σ_j L1_j |∂_j f| η² g_j²/v_j`` is absorbed by the descent term
    only if ``η ≤ c_ceiling/‖L1‖_∞``; tuning ``η = min(√(Δ/‖L0‖_1), c_ceiling/‖L1‖_∞)`` replaces
    Theorem 4.3's ``√(Δ‖L‖_1)`` by ``A = √(Δ‖L0‖_1) + Δ‖L1‖_∞``, and the bound
    ``A/√T + √(A‖σ‖_1)/(MT)^{1/4}`` is, up to a factor √2,

        (1/T) Σ_t E‖∇f(w_t)‖_1 ≲ c_bias·√(Δ‖L0‖_1/T) + c_noise·(Δ‖L0‖_1‖σ‖_1²/(MT))^{1/4}
                                + c_l1·[Δ‖L1‖_∞/√T + (Δ‖L1‖_∞‖σ‖_1/√(MT))^{1/2}].

    The first bracketed part is added to ``bias`` and the second to ``noise`` (they scale the same
    way in ``M`` and ``T``); their sum is reported as ``l1_term``. With ``L1 = 0`` this is exactly
    :func:`nonconvex_adagrad_bound` with ``L = L0``. Up to absolute constants and log factors.

    Norms: ``‖L0‖_1``, ``‖σ‖_1`` [paper]; ``‖L1‖_∞`` [recon, from the step-size ceiling].

    {args}

    Returns:
        The :class:`Bound`, with ``l1_term`` and ``step_size_ceiling`` filled in.

    Example:
        >>> b = generalized_adagrad_bound([1.0, 3.0], [0.5, 0.25], [1.0, 1.0], delta=4.0, M=1, T=16)
        >>> b.l1_term, b.step_size_ceiling  # 4·0.5/4 + (4·0.5·2/4)^{1/2}, 1/0.5
        (1.5, 2.0)

    References:
        Liu, Pan, Zhang (ICLR 2025), Theorem 5.3; Zhang, He, Sra, Jadbabaie, "Why gradient clipping
        accelerates training", ICLR 2020 (the scalar (L0, L1) condition).
    """
    L0, L1, sigma = _validate.vectors(L0=L0, L1=L1, sigma=sigma)
    constants = {"c_bias": c_bias, "c_noise": c_noise, "c_l1": c_l1, "c_ceiling": c_ceiling}
    delta, M, T = _validate.scalars(("delta", delta), M, T, N, **constants)
    L0_l1, L1_linf, sigma_l1 = float(L0.sum()), float(L1.max()), float(sigma.sum())
    bias, noise = nonconvex_terms(L0_l1, sigma_l1, delta, M, T, c_bias, c_noise)
    l1_bias = c_l1 * delta * L1_linf / math.sqrt(T)
    l1_noise = c_l1 * math.sqrt(delta * L1_linf * sigma_l1 / math.sqrt(M * T))
    ceiling = divide(c_ceiling, L1_linf)
    step = min(math.sqrt(divide(delta, L0_l1)), ceiling)
    terms = (bias + l1_bias, noise + l1_noise)
    bound = bound_of(
        "adagrad", "generalized", "Thm 5.3 [recon]", "‖L0‖_1, ‖L1‖_∞", terms, M, T, step
    )
    return replace(bound, l1_term=l1_bias + l1_noise, step_size_ceiling=ceiling)


@_documented(
    G="Per-coordinate bound on the stochastic gradients' root mean square, shape ``(d,)``.",
    c_bias="Absolute constant (``√2`` in Duchi et al.'s regret bound).",
)
def nonsmooth_adagrad_bound(
    G: ArrayLike,
    *,
    D_inf: float,
    M: float,
    T: float | None = None,
    N: float | None = None,
    c_bias: float = 1.0,
) -> Bound:
    """Classical nonsmooth convex AdaGrad (Duchi, Hazan & Singer 2011), up to absolute constants.

    Diagonal AdaGrad's regret is at most ``√2·D_∞·Σ_j ‖g_{1:T,j}‖_2``; if every stochastic
    gradient satisfies ``E g_{t,j}² ≤ G_j²`` — a bound that a mini-batch mean does **not** improve,
    since it also holds for the full gradient — online-to-batch conversion gives

        E f(w̄_T) − f* ≲ c_bias·D_∞·‖G‖_1/√T = c_bias·D_∞·‖G‖_1·√(M/N).

    This is the bound the paper contrasts with: at a fixed sample budget ``N`` it grows like
    ``√M``, so the analysis predicts that large batches slow AdaGrad down. It has no separate noise
    term (``noise = 0``; the whole bound is reported as ``bias``, which scales like ``M^{1/2}`` at
    fixed ``N``, and ``critical_batch_size = 0``).

    Norms: ``‖G‖_1`` and ``D_∞`` (the classical result; its form here is [recon]).

    {args}

    Returns:
        The :class:`Bound`, ``step_size = D_∞``.

    Example:
        >>> nonsmooth_adagrad_bound([1.0, 3.0], D_inf=0.5, M=16, N=256).total  # 0.5·4/√16
        0.5

    References:
        Duchi, Hazan, Singer (JMLR 2011), regret bound of diagonal AdaGrad; Liu, Pan, Zhang
        (ICLR 2025), Section 1.
    """
    [G] = _validate.vectors(G=G)
    D_inf, M, T = _validate.scalars(("D_inf", D_inf), M, T, N, c_bias=c_bias)
    terms = (c_bias * D_inf * float(G.sum()) / math.sqrt(T), 0.0)
    theorem = "Duchi et al. 2011 [recon]"
    return bound_of("adagrad", "nonsmooth", theorem, "none (‖G‖_1)", terms, M, T, step_size=D_inf)
