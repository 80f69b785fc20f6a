"""One call from a problem to its :class:`~anisoada.measure.summary.MeasurementSummary`.

* :func:`summarize_logistic` — logistic regression, every quantity in closed form;
* :func:`summarize_model` — any ``torch.nn.Module`` + ``loss_fn``: per-sample noise, Hutchinson
  Hessian diagonal, power-iteration ``λ_max`` and either the Hessian diagonal's magnitude or
  perturbation secants as ``L``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from anisoada import problems
from anisoada.measure._functional import LossFn
from anisoada.measure.hessian import hutchinson_diagonal, top_hessian_eigenvalue
from anisoada.measure.noise import gradient_noise
from anisoada.measure.secant import secant_smoothness
from anisoada.measure.summary import MeasurementSummary
from anisoada.problems.logistic import Matrix

__all__ = ["SMOOTHNESS_SOURCES", "summarize_logistic", "summarize_model"]

#: How :func:`summarize_model` obtains ``L``.
SMOOTHNESS_SOURCES = ("hutchinson", "secant")

#: The largest ``n·d·max|x|²`` a logistic summary accepts: ``XᵀX`` and its row sums stay well
#: inside float64 (``≈ 1.8e308``), with room for the sums of the closed forms.
_LARGEST_GRAM = 1e300


def summarize_logistic(
    X: Matrix,
    y: np.ndarray,
    w: np.ndarray,
    *,
    provenance: Mapping[str, Any] | None = None,
) -> MeasurementSummary:
    """Closed-form summary of logistic regression at the point ``w``.

    * ``L`` — the valid A2 majorant ``L_j = Σ_k |(XᵀX)_jk| / (4n)``
      (:func:`~anisoada.problems.logistic_smoothness`), independent of ``w``;
    * ``hessian_diagonal`` — the exact ``[∇²f(w)]_jj`` at ``w``;
    * ``sigma`` — the exact one-sample noise at ``w`` (population variance over the rows);
    * ``lambda_max`` — ``λ_max(XᵀX/(4n))``, SGD's tightest ℓ2 constant valid for every ``w``.

    Args:
        X: ``(n, d)`` features (dense or scipy sparse).
        y: ``(n,)`` labels in ``{−1, +1}``.
        w: ``(d,)`` point at which ``σ`` and the Hessian diagonal are measured.
        provenance: extra JSON-serialisable record (data source, how ``w`` was chosen); its
            ``"data"`` entry, when a string, names the data in the errors below.

    Returns:
        :class:`MeasurementSummary`.

    Raises:
        TypeError: ``X`` is not a numpy array or scipy sparse matrix, or ``y``/``w`` do not hold
            numbers.
        ValueError: ``X`` is not a non-empty 2-D real matrix of finite values small enough for
            ``XᵀX`` to stay finite, ``y`` is not ``n`` labels in ``{−1, +1}``, or ``w`` is not
            ``d`` finite numbers.
    """
    source = (provenance or {}).get("data")
    try:
        largest = _check_features(X)
        y = _numeric_vector("y", y, int(X.shape[0]), "labels, one per row of X")
        labels = np.unique(y)  # sorted, NaN last
        if not np.isin(labels, [-1.0, 1.0]).all():
            raise ValueError(f"y must hold labels in {{-1, +1}}; found {labels[:5].tolist()}")
    except ValueError as error:
        if isinstance(source, str) and source:
            raise ValueError(f"data {source}: {error}") from None
        raise
    w = _numeric_vector("w", w, int(X.shape[1]), "weights, one per column of X")
    bad = np.flatnonzero(~np.isfinite(w))
    if bad.size:
        raise ValueError(
            f"w must be finite; entry {int(bad[0])} is {w[bad[0]]} ({bad.size} non-finite entries)"
        )
    # |<x_i, w>| ≤ d·max|x|·max|w| must stay finite for the loss and the noise at w.
    if not float(np.abs(w).max()) * largest * X.shape[1] < _LARGEST_GRAM:
        raise ValueError(
            f"w holds values up to {float(np.abs(w).max()):.3g} in magnitude: X @ w would "
            "overflow float64; measure at a smaller w"
        )
    record = {
        "task": "logreg",
        "n": int(X.shape[0]),
        "nnz": int(X.nnz) if sp.issparse(X) else int(np.count_nonzero(X)),
        "loss_at_point": float(problems.logistic_loss(X, y, w)),
        "gradient_linf_at_point": float(np.abs(problems.logistic_gradient(X, y, w)).max()),
        **(provenance or {}),
    }
    return MeasurementSummary(
        L=problems.logistic_smoothness(X),
        sigma=problems.logistic_noise(X, y, w),
        lambda_max=problems.logistic_lambda_max(X),
        hessian_diagonal=problems.logistic_hessian_diagonal(X, y, w),
        conventions={
            "loss": "mean logistic loss (1/n) sum_i log(1 + exp(-y_i <x_i, w>))",
            "L": "valid A2 majorant: row sums of |X^T X| / (4n), for every w",
            "sigma": "std of one uniformly drawn row's gradient coordinate at w "
            "(population variance over the n rows)",
            "hessian_diagonal": "exact diag of the Hessian at w",
            "lambda_max": "top eigenvalue of X^T X / (4n): tightest l2 constant for every w",
        },
        provenance=record,
    )


def _check_features(X: Any) -> float:
    """``max |x_ij|`` of an ``X`` as :func:`summarize_logistic` needs it, or an error saying
    what is wrong."""
    if not (isinstance(X, np.ndarray) or bool(sp.issparse(X))):
        raise TypeError(f"X must be a numpy array or a scipy sparse matrix; got {type(X).__name__}")
    if len(X.shape) != 2:
        raise ValueError(f"X must be a 2-D (rows, features) matrix; got shape {X.shape}")
    n, d = X.shape
    if n == 0 or d == 0:
        raise ValueError(f"X is empty (shape {X.shape}); give at least one row and one feature")
    if X.dtype.kind not in "iuf":
        raise ValueError(f"X must hold real numbers; got dtype {X.dtype}")
    values = np.asarray(X.data if bool(sp.issparse(X)) else X, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(
            f"X holds {int(values.size - finite.sum())} NaN or infinite value(s); remove those "
            "rows or features, or impute them"
        )
    largest = float(np.abs(values).max()) if values.size else 0.0
    if largest == 0.0:
        raise ValueError(
            f"X (shape {X.shape}) is all zeros: the loss does not depend on w; give features"
        )
    if 2 * math.log10(largest) + math.log10(n) + math.log10(d) > math.log10(_LARGEST_GRAM):
        raise ValueError(
            f"X holds values up to {largest:.3g} in magnitude: XᵀX would overflow float64 at "
            f"n={n}, d={d}; rescale the features (e.g. to [-1, 1])"
        )
    return largest


def _numeric_vector(name: str, value: Any, length: int, what: str) -> np.ndarray:
    """``value`` as a float64 vector of ``length`` entries, or an error naming ``name``."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a vector of numbers ({what}); got {array.dtype} values")
    if array.shape != (length,):
        raise ValueError(f"{name} must be {length} {what}; got shape {array.shape}")
    return array.astype(np.float64)


def summarize_model(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    smoothness: str = "hutchinson",
    n_probes: int = 32,
    power_iterations: int = 50,
    secant_radius: float = 1e-3,
    secant_perturbations: int = 8,
    chunk_size: int | None = 16,
    data_chunk_size: int | None = None,
    seed: int = 0,
    parameter_names: Sequence[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> MeasurementSummary:
    """Summary of any model at its current parameters over the fixed ``batch``.

    * ``sigma`` — exact per-sample gradients (:func:`gradient_noise`, population variance);
    * ``hessian_diagonal`` — Hutchinson with ``n_probes`` Rademacher probes;
    * ``L`` — ``|hessian_diagonal|`` (``smoothness="hutchinson"``, a diagonal proxy: A2 needs
      ``diag(L) ⪰ ∇²f``, which the diagonal does not give) or the largest perturbation secant
      (``"secant"``: approaches the row-sum majorant ``Σ_k |H_jk|`` from below);
    * ``lambda_max`` — power iteration on Hessian-vector products.

    Args:
        model: any ``torch.nn.Module`` (its current mode is used; ``eval()`` for no dropout).
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean loss over the batch's samples.
        batch: the fixed samples (tensor or tuple/list/dict of tensors).
        smoothness: ``"hutchinson"`` or ``"secant"``.
        n_probes: Hutchinson probes.
        power_iterations: HVPs allowed per power-iteration phase.
        secant_radius, secant_perturbations: for ``smoothness="secant"``.
        chunk_size: samples per vmapped per-sample-gradient call.
        data_chunk_size: samples per piece for HVPs and gradients.
        seed: seed of probes, perturbations and the power-iteration start.
        parameter_names: measure only these parameters.
        provenance: extra JSON-serialisable record.

    Returns:
        :class:`MeasurementSummary` with per-tensor ``block_names``/``block_sizes``.
    """
    if smoothness not in SMOOTHNESS_SOURCES:
        raise ValueError(f"Invalid smoothness {smoothness!r}; use one of {SMOOTHNESS_SOURCES}.")
    noise = gradient_noise(
        model, loss_fn, batch, chunk_size=chunk_size, parameter_names=parameter_names
    )
    diagonal = hutchinson_diagonal(
        model,
        loss_fn,
        batch,
        n_probes=n_probes,
        seed=seed,
        data_chunk_size=data_chunk_size,
        parameter_names=parameter_names,
    )
    eigen = top_hessian_eigenvalue(
        model,
        loss_fn,
        batch,
        max_iterations=power_iterations,
        seed=seed,
        data_chunk_size=data_chunk_size,
        parameter_names=parameter_names,
    )
    if smoothness == "hutchinson":
        L = diagonal.diagonal.abs()
        L_convention = (
            f"|Hutchinson estimate of diag Hessian| ({n_probes} Rademacher probes): a diagonal "
            "proxy at this point, not a certified A2 majorant"
        )
    else:
        secants = secant_smoothness(
            model,
            loss_fn,
            batch,
            radius=secant_radius,
            n_perturbations=secant_perturbations,
            seed=seed,
            data_chunk_size=data_chunk_size,
            parameter_names=parameter_names,
        )
        L = torch.nan_to_num(secants.L, nan=0.0)
        L_convention = (
            f"max over {secant_perturbations} Rademacher perturbations of radius {secant_radius} "
            "of |d_j f(w + r z) - d_j f(w)| / r: a lower estimate of the row-sum majorant "
            f"sum_k |H_jk| ({secants.n_skipped} coordinate-pairs skipped)"
        )
    layout = noise.layout
    record = {
        "task": "model",
        "n_samples": noise.n_observations,
        "lambda_max_converged": eigen.converged,
        "lambda_max_iterations": eigen.n_iterations,
        "hutchinson_probes": n_probes,
        "hutchinson_mean_standard_error": float(diagonal.standard_error.mean()),
        "seed": seed,
        **(provenance or {}),
    }
    return MeasurementSummary(
        L=L.double().cpu().numpy(),
        sigma=noise.sigma.cpu().numpy(),
        lambda_max=float(eigen.value),
        hessian_diagonal=diagonal.diagonal.cpu().numpy(),
        block_names=layout.names,
        block_sizes=layout.sizes,
        conventions={
            "loss": "mean over samples of loss_fn on one sample",
            "L": L_convention,
            "sigma": noise.convention,
            "hessian_diagonal": f"Hutchinson estimate, {n_probes} Rademacher probes",
            "lambda_max": "power iteration on Hessian-vector products at this point "
            f"({'converged' if eigen.converged else 'NOT converged'} after "
            f"{eigen.n_iterations} products)",
        },
        provenance=record,
    )
