"""Curvature of any ``torch.nn.Module`` through Hessian-vector products.

* :func:`hessian_vector_product` — ``∇²f(w) v`` without forming ``∇²f``;
* :func:`hutchinson_diagonal` — the Hessian diagonal, ``diag(∇²f) = E_z[z ⊙ ∇²f z]`` for
  Rademacher ``z`` (a *diagonal proxy* of the smoothness vector ``L``: A2 needs
  ``diag(L) ⪰ ∇²f``, which the diagonal alone does not give when coordinates interact);
* :func:`top_hessian_eigenvalue` — ``λ_max(∇²f(w))`` by power iteration, the local ℓ2 smoothness
  constant that SGD's step size has to respect (compare with ``‖L‖_∞``).

All take ``loss_fn(model, batch) -> mean loss`` and measure at the model's current parameters,
which are never modified. Logistic regression has closed forms in :mod:`anisoada.problems.logistic`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from anisoada.measure._functional import FlatObjective, LossFn, StreamingMoments, chunks
from anisoada.measure.layout import ParameterLayout

__all__ = [
    "EigenEstimate",
    "HessianDiagonal",
    "hessian_vector_product",
    "hutchinson_diagonal",
    "top_hessian_eigenvalue",
]

_METHODS = ("auto", "forward", "reverse")


@dataclasses.dataclass(frozen=True)
class HessianDiagonal:
    """A Hutchinson estimate of ``diag ∇²f(w)``.

    Attributes:
        diagonal: ``(d,)`` float64 estimate (can be negative where ``f`` is locally concave).
        standard_error: ``(d,)`` float64, the sample standard deviation of ``z_j (∇²f z)_j`` over
            the probes divided by ``√n_probes``; its expectation is ``√(Σ_{k≠j} H_jk² / P)``.
        n_probes: number of Rademacher probes ``P``.
        layout: which coordinates belong to which parameter tensor.
    """

    diagonal: torch.Tensor
    standard_error: torch.Tensor
    n_probes: int
    layout: ParameterLayout

    def per_block(self) -> dict[str, torch.Tensor]:
        """The diagonal split into ``{parameter name: tensor of the parameter's shape}``."""
        return self.layout.unflatten(self.diagonal)


@dataclasses.dataclass(frozen=True)
class EigenEstimate:
    """The algebraically largest Hessian eigenvalue found by power iteration.

    Attributes:
        value: the eigenvalue estimate (a Rayleigh quotient, hence ≤ the true ``λ_max``).
        vector: ``(d,)`` unit eigenvector estimate in layout order.
        n_iterations: Hessian-vector products spent (both phases, see
            :func:`top_hessian_eigenvalue`).
        converged: whether the relative change of the Rayleigh quotient fell below ``tol``.
        layout: which coordinates belong to which parameter tensor.
    """

    value: float
    vector: torch.Tensor
    n_iterations: int
    converged: bool
    layout: ParameterLayout


def hessian_vector_product(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batch: Any,
    vector: torch.Tensor | Mapping[str, torch.Tensor],
    *,
    method: str = "auto",
    data_chunk_size: int | None = None,
    parameter_names: Sequence[str] | None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """``∇²f(w) v`` at the model's current parameters ``w``.

    ``f(w) = loss_fn(model, batch)``. Double backward (``method="reverse"``) and
    forward-over-reverse (``"forward"``, ``jvp`` of ``grad``) each cost a few gradient
    evaluations; ``"auto"`` tries double backward and falls back to forward mode for operators
    without a double backward.

    Args:
        model: any ``torch.nn.Module``.
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean loss over the batch's samples.
        batch: tensor or tuple/list/dict of tensors, leading dimension = samples.
        vector: flat ``(d,)`` tensor in :class:`ParameterLayout` order, or ``{name: tensor}``.
        method: ``"auto"``, ``"forward"`` or ``"reverse"``.
        data_chunk_size: process the batch in pieces of this many samples (bounds memory).
        parameter_names: differentiate only these parameters (default: all trainable ones).

    Returns:
        ``∇²f(w) v`` in the same form as ``vector`` (flat tensor or dict).

    Example:
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
        >>> loss = lambda m, b: 0.5 * m(b).square().mean()   # ∇²f = xᵀx
        >>> hessian_vector_product(model, loss, x, torch.tensor([1.0, 0.0], dtype=torch.float64))
        tensor([1., 2.], dtype=torch.float64)
    """
    objective = FlatObjective(
        model, loss_fn, batch, parameter_names=parameter_names, data_chunk_size=data_chunk_size
    )
    as_dict = isinstance(vector, Mapping)
    flat = objective.layout.flatten(vector) if isinstance(vector, Mapping) else vector
    if flat.shape != objective.point.shape:
        raise ValueError(
            f"vector must have shape ({objective.layout.d},) (one entry per trainable parameter "
            f"coordinate); got {tuple(flat.shape)}"
        )
    flat = flat.to(objective.point)
    product, _ = _hvp(objective, flat, _check_method(method))
    return objective.layout.unflatten(product) if as_dict else product


def hutchinson_diagonal(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    n_probes: int = 100,
    seed: int = 0,
    probe_chunk_size: int = 8,
    method: str = "auto",
    data_chunk_size: int | None = None,
    parameter_names: Sequence[str] | None = None,
) -> HessianDiagonal:
    """Hutchinson's estimate of the Hessian diagonal from Rademacher probes.

    With ``z ∈ {−1, +1}^d`` uniform, ``E[z_j (Hz)_j] = H_jj`` and
    ``Var[z_j (Hz)_j] = Σ_{k≠j} H_jk²``, so the average over ``P`` probes has error
    ``O(√(Σ_{k≠j} H_jk² / P))`` per coordinate (reported as ``standard_error``); it is exact for
    any ``P`` when ``H`` is diagonal. Probes are processed ``probe_chunk_size`` at a time (one
    gradient graph per chunk, or one vmapped ``jvp``) and averaged in float64.

    Args:
        model: any ``torch.nn.Module`` (measured at its current parameters, in its current mode).
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean loss over the batch's samples.
        batch: tensor or tuple/list/dict of tensors, leading dimension = samples.
        n_probes: number of probes ``P`` (≥ 2, for the standard error).
        seed: seed of the probes (a private generator; global RNG untouched).
        probe_chunk_size: probes per HVP batch (memory grows with it for ``method="forward"``).
        method: HVP method, ``"auto"``, ``"forward"`` or ``"reverse"``.
        data_chunk_size: process the batch in pieces of this many samples.
        parameter_names: measure only these parameters (default: all trainable ones).

    Returns:
        :class:`HessianDiagonal`.

    Example:
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
        >>> loss = lambda m, b: 0.5 * m(b).square().mean()   # ∇²f = diag(0.5, 4.5)
        >>> hutchinson_diagonal(model, loss, x, n_probes=4).diagonal
        tensor([0.5000, 4.5000], dtype=torch.float64)

    References:
        Hutchinson (1990), "A stochastic estimator of the trace of the influence matrix";
        Bekas, Kokiopoulou, Saad (2007), "An estimator for the diagonal of a matrix";
        Yao et al. (2021), "AdaHessian".
    """
    if not isinstance(n_probes, int) or n_probes < 2:
        raise ValueError(f"Invalid n_probes: {n_probes!r}; use an integer ≥ 2.")
    method = _check_method(method)
    objective = FlatObjective(
        model, loss_fn, batch, parameter_names=parameter_names, data_chunk_size=data_chunk_size
    )
    point = objective.point
    generator = torch.Generator(device=point.device).manual_seed(seed)
    moments = StreamingMoments()
    for start, stop in chunks(n_probes, probe_chunk_size):
        probes = _rademacher((stop - start, point.numel()), generator, point)
        products, method = _hvp(objective, probes, method)
        moments.add_batch([(probes * products).to(torch.float64)])
    (mean,) = moments.mean
    (m2,) = moments.m2
    standard_error = (m2 / (n_probes - 1) / n_probes).sqrt()
    return HessianDiagonal(mean, standard_error, n_probes, objective.layout)


def top_hessian_eigenvalue(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    max_iterations: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
    method: str = "auto",
    data_chunk_size: int | None = None,
    parameter_names: Sequence[str] | None = None,
) -> EigenEstimate:
    """``λ_max(∇²f(w))`` by power iteration on Hessian-vector products.

    Power iteration ``v ← Hv/‖Hv‖`` converges to the eigenvalue of largest *magnitude*, with the
    Rayleigh quotient ``vᵀHv`` as estimate and geometric rate ``|λ_2/λ_1|``. If that eigenvalue
    is negative (a saddle dominated by negative curvature), a second run on the shifted operator
    ``H − λ_1 I`` (positive semidefinite, top eigenvalue ``λ_max − λ_1``) recovers the
    algebraically largest one. Stops when the quotient changes by less than ``tol`` relatively.

    Args:
        model: any ``torch.nn.Module`` (measured at its current parameters, in its current mode).
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean loss over the batch's samples.
        batch: tensor or tuple/list/dict of tensors, leading dimension = samples.
        max_iterations: HVPs allowed per phase.
        tol: relative change of the Rayleigh quotient that counts as converged.
        seed: seed of the random start vector.
        method: HVP method, ``"auto"``, ``"forward"`` or ``"reverse"``.
        data_chunk_size: process the batch in pieces of this many samples.
        parameter_names: measure only these parameters (default: all trainable ones).

    Returns:
        :class:`EigenEstimate` (check ``converged``; the estimate is a lower bound either way).

    Example:
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
        >>> loss = lambda m, b: 0.5 * m(b).square().mean()   # ∇²f = diag(0.5, 4.5)
        >>> round(top_hessian_eigenvalue(model, loss, x, tol=1e-12).value, 8)
        4.5

    References:
        Golub & Van Loan, "Matrix Computations", §8.2 (power method); Yao et al. (2020),
        "PyHessian: Neural networks through the lens of the Hessian".
    """
    if not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"Invalid max_iterations: {max_iterations!r}; use a positive integer.")
    if not tol > 0:
        raise ValueError(f"Invalid tol: {tol!r}; use a positive number.")
    method = _check_method(method)
    objective = FlatObjective(
        model, loss_fn, batch, parameter_names=parameter_names, data_chunk_size=data_chunk_size
    )
    generator = torch.Generator(device=objective.point.device).manual_seed(seed)
    start = torch.randn(
        objective.point.shape,
        generator=generator,
        dtype=objective.point.dtype,
        device=objective.point.device,
    )
    state = {"method": method}

    def apply(v: torch.Tensor, shift: float) -> torch.Tensor:
        product, state["method"] = _hvp(objective, v, state["method"])
        return product - shift * v

    value, vector, used, converged = _power_iteration(apply, start, 0.0, max_iterations, tol)
    if value < 0:
        shifted, vector, extra, converged = _power_iteration(
            apply, start, value, max_iterations, tol
        )
        value, used = shifted + value, used + extra
    return EigenEstimate(value, vector, used, converged, objective.layout)


def _power_iteration(
    apply: Callable[[torch.Tensor, float], torch.Tensor],
    start: torch.Tensor,
    shift: float,
    max_iterations: int,
    tol: float,
) -> tuple[float, torch.Tensor, int, bool]:
    v = start / start.norm()
    value, previous = math.nan, v
    for iteration in range(1, max_iterations + 1):
        previous = v
        hv = apply(v, shift)
        new_value = float(torch.dot(v.double(), hv.double()))
        if abs(new_value - value) <= tol * abs(new_value):
            return new_value, v, iteration, True  # v's own Rayleigh quotient is new_value
        norm = hv.norm()
        if norm == 0:
            return 0.0, v, iteration, True
        v = hv / norm
        value = new_value
    return value, previous, max_iterations, False


def _rademacher(
    shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor
) -> torch.Tensor:
    bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return (bits * 2 - 1).to(like.dtype)


def _check_method(method: str) -> str:
    if method not in _METHODS:
        raise ValueError(f"Invalid method {method!r}; use one of {_METHODS}.")
    return method


def _hvp(objective: FlatObjective, vector: torch.Tensor, method: str) -> tuple[torch.Tensor, str]:
    """HVP(s) and the method that worked (``"auto"`` resolves on first use).

    ``"auto"`` tries double backward first: on the models measured here it was as fast as
    forward-over-reverse or faster, and forward mode costs a one-time start-up of several
    seconds per process (torch scripts its forward-mode decompositions on first use)."""
    if method != "auto":
        return objective.hvp(objective.point, vector, method=method), method
    try:
        return objective.hvp(objective.point, vector, method="reverse"), "reverse"
    except torch.OutOfMemoryError:
        # Forward mode needs more memory, not less: the real error must surface.
        raise
    except (NotImplementedError, RuntimeError):
        # Some operators lack a double backward; forward-over-reverse needs only their jvp.
        return objective.hvp(objective.point, vector, method="forward"), "forward"
