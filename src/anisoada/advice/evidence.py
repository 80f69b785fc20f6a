"""The measured evidence behind an advice: constants, validity checks, bound framings, noise scale.

Everything here is measured on the training data of one problem, before any optimizer runs:

* **constants** — the smoothness vector ``L`` (assumption A2), the one-sample noise ``σ``
  (A5, the elementwise maximum of ``σ(w_0)`` and ``σ(w_ref)``: A5 bounds the noise along the
  whole path), ``λ_max`` (SGD's tightest ℓ2 constant) and the distances
  ``D_∞ = ‖w_ref − w_0‖_∞``, ``D_2 = ‖w_ref − w_0‖_2`` from a reference point ``w_ref`` — the
  minimiser for a convex problem (Newton or L-BFGS), the end of a pilot run otherwise;
* **checks** (:class:`Check`) — a failed one is reported, never hidden: the A2 certificate
  ``‖L‖_∞ ≥ λ_max`` (any valid A2 vector satisfies it: ``∇²f ⪯ diag(L)`` gives
  ``λ_max(∇²f) ≤ λ_max(diag L) = ‖L‖_∞``), a finite minimiser (a reference point that
  classifies every training row correctly proves the data separable, hence ``inf f = 0`` is
  not attained), and the
  estimators' convergence (the solver's gradient test, power iteration, Hutchinson error);
* **framings** (:class:`Framing`) — the paper's convex bound ratio AdaGrad/SGD
  (:func:`anisoada.theory.predict`, up to absolute constants) in three readings, each marked
  with whether it is *able* to favour SGD on this problem: a box with SGD's ``‖L‖_∞`` (ratios
  ``ρ_L`` and ``ρ_σ``, both ≤ 1: it can never say SGD), a box with ``λ_max`` (can only when
  ``‖L‖_1 > d·λ_max``, impossible for non-negative features), and the measured distances with
  ``λ_max`` (bias ratio ``‖L‖_1 D_∞² / (λ_max D_2²)``, which exceeds 1 for a sparse ``w_ref``);
* **noise scale** — McCandlish et al.'s simple noise scale ``B_simple = tr Σ / ‖∇f‖²`` with
  ``tr Σ = ‖σ‖_2²`` (one sample), at ``w_0`` and at a point part of the way to ``w_ref``: below it
  a larger batch buys almost proportional progress per step, far above it a larger batch wastes
  samples (the bias term of the bounds dominates);
* **block heterogeneity** — for a model with several parameter blocks, the spread of the blocks'
  mean Hessian diagonal (Zhang et al. 2024: Adam's edge over SGD follows heterogeneity of the
  Hessian across blocks).

References:
    Liu, Pan, Zhang. "AdaGrad under Anisotropic Smoothness." ICLR 2025.
    McCandlish, Kaplan, Amodei et al. "An Empirical Model of Large-Batch Training." 2018.
    Zhang, Chen, Li et al. "Why Transformers Need Adam: A Hessian Perspective." NeurIPS 2024.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Check",
    "Evidence",
    "Framing",
    "block_heterogeneity",
    "check_a2_certificate",
    "check_finite_minimiser",
    "framings",
    "logistic_evidence",
    "module_evidence",
    "noise_scale",
]

#: Status of a check.
PASS, FAIL, WARN, SKIP = "pass", "FAIL", "warn", "n/a"


@dataclass(frozen=True)
class Check:
    """One validity check: its name, status (``pass``/``FAIL``/``warn``/``n/a``) and why."""

    name: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def check_a2_certificate(L_linf: float, lambda_max: float | None, *, rtol: float = 1e-6) -> Check:
    """``‖L‖_∞ ≥ λ_max``: a necessary condition for ``L`` to satisfy A2 (``∇²f ⪯ diag(L)``).

    From ``∇²f ⪯ diag(L)``: ``λ_max(∇²f) ≤ λ_max(diag L) = ‖L‖_∞``. A vector that violates it
    (e.g. a Hutchinson diagonal of a Hessian with large off-diagonal blocks) is not an A2
    constant, and every bound computed from it is invalid.

    Example:
        >>> check_a2_certificate(0.23, 2.46).status
        'FAIL'
    """
    if lambda_max is None or not math.isfinite(lambda_max):
        return Check("A2 certificate ‖L‖_∞ ≥ λ_max", SKIP, "λ_max not measured")
    ok = L_linf >= lambda_max * (1 - rtol)
    relation = "≥" if ok else "<"
    detail = f"‖L‖_∞ = {L_linf:.4g} {relation} λ_max = {lambda_max:.4g}"
    if not ok:
        detail += " — L is not a valid A2 vector; the bounds below are not guarantees"
    return Check("A2 certificate ‖L‖_∞ ≥ λ_max", PASS if ok else FAIL, detail)


def check_finite_minimiser(margins: np.ndarray, converged: bool, gradient_linf: float) -> Check:
    """Whether the (unregularised) logistic loss has a finite minimiser, from ``y_i⟨x_i, w⟩``.

    If some ``w`` has every margin ``y_i⟨x_i, w⟩ > 0``, then ``f(t·w) → 0`` as ``t → ∞`` and the
    infimum 0 is not attained: no finite minimiser, ``D_∞`` and ``D_2`` are those of wherever
    the solver stopped. A solver that stopped without meeting its gradient test is a warning
    (possibly separable along a subset of directions).

    Example:
        >>> check_finite_minimiser(np.array([0.5, 2.0, 1.0]), False, 1e-4).status
        'FAIL'
    """
    name = "finite minimiser"
    if margins.size and bool((margins > 0).all()):
        return Check(
            name,
            FAIL,
            "the reference point separates every training row (all margins > 0): the data are "
            "separable, inf f = 0 is not attained, and D from the optimum is arbitrary",
        )
    if not converged:
        return Check(
            name,
            WARN,
            f"the solver stopped with ‖∇f‖_∞ = {gradient_linf:.2e} (not converged): the data "
            "may be separable along some directions; D is that of the stopping point",
        )
    return Check(name, PASS, f"the solver converged, ‖∇f(w*)‖_∞ = {gradient_linf:.1e}")


@dataclass(frozen=True)
class Framing:
    """The bound ratio AdaGrad/SGD in one reading of the paper's convex bounds.

    Attributes:
        name: ``"box ‖L‖_∞"``, ``"box λ_max"`` or ``"distance λ_max"``.
        description: What it assumes.
        bias_ratio, noise_ratio: AdaGrad/SGD ratio of each bound term (batch-size free).
        can_favour_sgd: Whether any term ratio exceeds 1 — otherwise the framing says AdaGrad
            (or tie) at every batch size by construction, and its "prediction" tests nothing.
        ratios: Per batch size, the ratio of the whole bounds at the budget.
    """

    name: str
    description: str
    bias_ratio: float
    noise_ratio: float
    can_favour_sgd: bool
    ratios: Mapping[int, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "bias_ratio": self.bias_ratio,
            "noise_ratio": self.noise_ratio,
            "can_favour_sgd": self.can_favour_sgd,
            "ratios": {str(k): v for k, v in self.ratios.items()},
        }


def framings(
    L: np.ndarray,
    sigma: np.ndarray,
    *,
    lambda_max: float | None,
    D_inf: float | None,
    D_2: float | None,
    batch_sizes: Sequence[int],
    budget: float,
) -> list[Framing]:
    """The three framings of the convex bounds (see the module docstring).

    Bounds (Thm 4.1 vs Eq. 6, up to absolute constants) at ``N = budget`` samples, batch ``M``::

        AdaGrad: ‖L‖_1 D_∞² M/N + ‖σ‖_1 D_∞/√N        SGD: ℓ D_2² M/N + ‖σ‖_2 D_2/√N

    with ``ℓ = ‖L‖_∞`` or ``λ_max``; a box has ``D_2 = √d·D_∞`` (``D`` then cancels in the
    ratio); the distance framing takes ``D`` from the reference point.
    """
    from anisoada.theory import predict, term_ratios

    d = L.size
    sizes = [float(m) for m in batch_sizes]
    out: list[Framing] = []
    box_inf = 1.0 if not D_inf or not math.isfinite(D_inf) else float(D_inf)
    variants: list[tuple[str, str, dict[str, Any], str]] = [
        ("box ‖L‖_∞", "box W, D_2 = √d·D_∞, SGD with ‖L‖_∞", {"D_inf": box_inf}, "sgd"),
    ]
    if lambda_max is not None and lambda_max > 0:
        variants.append(
            (
                "box λ_max",
                "box W, D_2 = √d·D_∞, SGD with λ_max",
                {"D_inf": box_inf, "lambda_max": lambda_max},
                "sgd_lambda_max",
            )
        )
        if D_inf and D_2 and math.isfinite(D_inf) and math.isfinite(D_2) and D_inf > 0:
            variants.append(
                (
                    "distance λ_max",
                    "D_∞ = ‖w_ref − w_0‖_∞, D_2 = ‖w_ref − w_0‖_2, SGD with λ_max",
                    {"D_inf": float(D_inf), "D_2": float(D_2), "lambda_max": lambda_max},
                    "sgd_lambda_max",
                )
            )
    for name, description, geometry, reference in variants:
        table = predict(L=L, sigma=sigma, batch_sizes=sizes, budget=budget, **geometry)
        adagrad = table[table["variant"] == "adagrad"].set_index("batch_size")
        column = "ratio_to_sgd" if reference == "sgd" else "ratio_to_sgd_lambda_max"
        terms = term_ratios(
            L,
            sigma,
            setting="convex",
            D_inf=geometry["D_inf"],
            D_2=geometry.get("D_2"),
            lambda_max=geometry.get("lambda_max"),
        )
        noise = terms.noise if math.isfinite(terms.noise) else 1.0
        out.append(
            Framing(
                name=name,
                description=description,
                bias_ratio=float(terms.bias),
                noise_ratio=float(noise),
                can_favour_sgd=bool(max(terms.bias, noise) > 1.0 + 1e-12),
                ratios={int(m): float(adagrad.loc[m, column]) for m in sizes},
            )
        )
    del d
    return out


def noise_scale(sigma: np.ndarray, gradient: np.ndarray) -> float:
    """McCandlish et al.'s simple noise scale ``B_simple = tr Σ / ‖∇f‖² = ‖σ‖_2² / ‖∇f‖_2²``.

    ``σ`` is the one-sample per-coordinate noise (so ``tr Σ = Σ_j σ_j²``). At batch sizes well
    below ``B_simple`` the gradient noise dominates a step and doubling the batch nearly halves
    the steps needed; well above it, extra samples per step are mostly wasted.

    Example:
        >>> noise_scale(np.array([3.0, 4.0]), np.array([1.0, 0.0]))
        25.0
    """
    denominator = float(np.square(gradient).sum())
    numerator = float(np.square(sigma).sum())
    return math.inf if denominator == 0 else numerator / denominator


def block_heterogeneity(
    block_names: Sequence[str], block_sizes: Sequence[int], hessian_diagonal: np.ndarray
) -> dict[str, Any] | None:
    """Spread of the Hessian across parameter blocks (None for a single block).

    Per block ``b`` the mean absolute Hessian diagonal ``h_b = mean_{j ∈ b} |H_jj|``; reported
    are ``max_b h_b / min_b h_b`` and the standard deviation of ``log10 h_b`` over blocks (0 for
    homogeneous blocks). A cheap diagonal proxy for the block-spectrum distances of Zhang et
    al. (2024): large values are where a per-coordinate method gains over one step size.
    """
    if len(block_sizes) < 2:
        return None
    bounds = np.cumsum([0, *block_sizes])
    means = np.array(
        [float(np.abs(hessian_diagonal[a:b]).mean()) for a, b in itertools.pairwise(bounds)]
    )
    positive = means[means > 0]
    spread = float(np.std(np.log10(positive))) if positive.size > 1 else 0.0
    ratio = float(positive.max() / positive.min()) if positive.size > 1 else 1.0
    return {
        "blocks": len(block_sizes),
        "max_over_min": ratio,
        "log10_std": spread,
        "block_means": dict(zip(block_names, means.tolist())),
    }


@dataclass(frozen=True)
class Evidence:
    """Everything measured before training (see the module docstring)."""

    d: int
    n: int
    L: np.ndarray
    sigma: np.ndarray
    lambda_max: float | None
    D_inf: float | None
    D_2: float | None
    reference_point: str
    checks: tuple[Check, ...]
    noise_scale_init: float
    noise_scale_mid: float
    block_heterogeneity: dict[str, Any] | None = None
    f_star: float | None = None
    wall_time: float = 0.0
    noise_scale_where: str = "half-way from w_0 to the reference point"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rho_L(self) -> float:
        return float(self.L.sum() / (self.d * self.L.max())) if self.L.max() > 0 else math.nan

    @property
    def rho_sigma(self) -> float:
        norm = float(np.sqrt(np.square(self.sigma).sum()))
        return float(self.sigma.sum() / (math.sqrt(self.d) * norm)) if norm > 0 else math.nan

    @property
    def rho_D(self) -> float:
        if not self.D_inf or self.D_2 is None:
            return math.nan
        return float(self.D_2 / (math.sqrt(self.d) * self.D_inf))

    def to_dict(self) -> dict[str, Any]:
        return {
            "d": self.d,
            "n": self.n,
            "L_l1": float(self.L.sum()),
            "L_linf": float(self.L.max()),
            "lambda_max": self.lambda_max,
            "sigma_l1": float(self.sigma.sum()),
            "sigma_l2": float(np.sqrt(np.square(self.sigma).sum())),
            "rho_L": self.rho_L,
            "rho_sigma": self.rho_sigma,
            "D_inf": self.D_inf,
            "D_2": self.D_2,
            "rho_D": self.rho_D,
            "reference_point": self.reference_point,
            "f_star": self.f_star,
            "noise_scale_init": self.noise_scale_init,
            "noise_scale_mid": self.noise_scale_mid,
            "noise_scale_where": self.noise_scale_where,
            "block_heterogeneity": self.block_heterogeneity,
            "checks": [check.to_dict() for check in self.checks],
            "wall_time": self.wall_time,
            **self.extra,
        }


def logistic_evidence(X: Any, y: np.ndarray, *, optimum: Any | None = None) -> Evidence:
    """The evidence of logistic regression on ``(X, y)``, in closed form (``w_0 = 0``).

    ``L`` is the certified A2 majorant ``Σ_k |(XᵀX)_jk| / (4n)``; ``σ = max(σ(0), σ(w*))``;
    ``w_ref = w*`` by Newton or L-BFGS (``optimum``: a
    :class:`~anisoada.problems.logistic.LogisticOptimum` already computed); the noise scale at
    ``w_0`` and at ``(w_0 + w*)/2``.
    """
    from anisoada.problems.logistic import (
        logistic_gradient,
        logistic_lambda_max,
        logistic_noise,
        logistic_optimum,
        logistic_smoothness,
    )

    started = time.perf_counter()
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    L = logistic_smoothness(X)
    lambda_max = logistic_lambda_max(X)
    if optimum is None:
        optimum = logistic_optimum(X, y)
    w0 = np.zeros(d)
    w_star = np.asarray(optimum.w, dtype=np.float64)
    sigma = np.maximum(logistic_noise(X, y, w0), logistic_noise(X, y, w_star))
    mid = 0.5 * (w0 + w_star)
    b_init = noise_scale(logistic_noise(X, y, w0), logistic_gradient(X, y, w0))
    b_mid = noise_scale(logistic_noise(X, y, mid), logistic_gradient(X, y, mid))
    margins = y * np.asarray(X @ w_star).ravel()
    checks = (
        check_a2_certificate(float(L.max()), lambda_max),
        check_finite_minimiser(margins, bool(optimum.converged), float(optimum.gradient_linf)),
        Check(
            "estimators",
            PASS,
            "L, σ, λ_max in closed form (Lanczos for λ_max); w* by "
            f"{'Newton' if 'Newton' in optimum.message else 'L-BFGS'} "
            f"({optimum.iterations} iterations)",
        ),
    )
    delta = w_star - w0
    return Evidence(
        d=int(d),
        n=int(n),
        L=L,
        sigma=sigma,
        lambda_max=float(lambda_max),
        D_inf=float(np.abs(delta).max()),
        D_2=float(np.linalg.norm(delta)),
        reference_point="w* (the minimiser of the training loss)",
        checks=checks,
        noise_scale_init=b_init,
        noise_scale_mid=b_mid,
        f_star=float(optimum.f_star),
        wall_time=time.perf_counter() - started,
        extra={"training_accuracy_at_reference": float((margins > 0).mean())},
    )


def module_evidence(
    problem: Any,
    *,
    init_seed: int,
    reference: np.ndarray | None,
    samples: int = 256,
    n_probes: int = 16,
    power_iterations: int = 40,
    seed: int = 0,
) -> Evidence:
    """The evidence of a user's PyTorch problem (a ``ModuleProblem``).

    On the first ``samples`` training rows, at the initial weights ``w_0`` (torch seeded with
    ``init_seed`` before the factory): ``σ`` by exact per-sample gradients
    (:func:`~anisoada.measure.gradient_noise`), ``L = |diag ∇²f|`` by Hutchinson with
    ``n_probes`` probes (a diagonal proxy, *not* a certified A2 vector — the A2 certificate
    ``‖L‖_∞ ≥ λ_max`` then often fails and says so), ``λ_max`` by power iteration; ``σ`` is
    also measured at the reference point (the end of a pilot run) and the maximum kept. ``D``
    is ``reference − w_0``; the noise scale is measured at ``w_0`` and at the reference point.
    """
    import torch

    from anisoada.experiments.tasks.module import index_batch, num_samples
    from anisoada.measure import gradient_noise, summarize_model

    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(init_seed)
        model = problem.model_factory()
        n = num_samples(problem.train)
        batch = index_batch(problem.train, torch.arange(min(n, samples)))
        summary = summarize_model(
            model, problem.loss_fn, batch, n_probes=n_probes,
            power_iterations=power_iterations, seed=seed,
        )  # fmt: skip
        noise0 = gradient_noise(model, problem.loss_fn, batch)
        w0 = torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])
        sigma = np.asarray(summary.sigma, dtype=np.float64)
        b_init = noise_scale(noise0.sigma.double().numpy(), noise0.mean_gradient.double().numpy())
        b_ref = math.nan
        D_inf = D_2 = None
        if reference is not None:
            with torch.no_grad():
                torch.nn.utils.vector_to_parameters(
                    torch.as_tensor(reference, dtype=w0.dtype),
                    [p for p in model.parameters() if p.requires_grad],
                )
            noise_ref = gradient_noise(model, problem.loss_fn, batch)
            sigma = np.maximum(sigma, noise_ref.sigma.double().numpy())
            b_ref = noise_scale(
                noise_ref.sigma.double().numpy(), noise_ref.mean_gradient.double().numpy()
            )
            delta = np.asarray(reference, dtype=np.float64) - w0.double().numpy()
            D_inf, D_2 = float(np.abs(delta).max()), float(np.linalg.norm(delta))
    finally:
        torch.set_num_threads(threads)
    record = summary.provenance
    relative_se = float(record.get("hutchinson_mean_standard_error", math.nan)) / max(
        float(np.abs(summary.hessian_diagonal).mean()) if summary.hessian_diagonal is not None
        else math.nan, 1e-300,
    )  # fmt: skip
    converged = bool(record.get("lambda_max_converged", False))
    estimator_ok = converged and relative_se < 0.5
    checks = (
        check_a2_certificate(float(summary.L.max()), summary.lambda_max),
        Check(
            "finite minimiser",
            SKIP if not problem.convex else WARN,
            "nonconvex model: the reference point is the end of a pilot run, not a minimiser"
            if not problem.convex
            else "convex model: the end of a pilot run stands in for the minimiser (not certified)",
        ),
        Check(
            "estimators",
            PASS if estimator_ok else WARN,
            f"power iteration {'converged' if converged else 'NOT converged'} after "
            f"{record.get('lambda_max_iterations')} products; Hutchinson ({n_probes} probes) mean "
            f"standard error / mean |diag| = {relative_se:.2f} on {min(n, samples)} samples",
        ),
    )
    heterogeneity = None
    if summary.block_names is not None and summary.block_sizes is not None:
        assert summary.hessian_diagonal is not None
        heterogeneity = block_heterogeneity(
            summary.block_names, summary.block_sizes, summary.hessian_diagonal
        )
    return Evidence(
        d=summary.d,
        n=int(n),
        L=np.asarray(summary.L, dtype=np.float64),
        sigma=sigma,
        lambda_max=summary.lambda_max,
        D_inf=D_inf,
        D_2=D_2,
        reference_point="the end of the pilot's AdaGrad run (seed 0, smallest batch size)",
        checks=checks,
        noise_scale_init=b_init,
        noise_scale_mid=b_ref,
        block_heterogeneity=heterogeneity,
        wall_time=time.perf_counter() - started,
        noise_scale_where="at the reference point",
    )
