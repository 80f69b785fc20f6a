"""Binary logistic regression, the paper's convex test problem: closed forms and the optimum.

Conventions (used everywhere in anisoada): labels ``y_i ∈ {−1, +1}``, rows ``x_i`` of a dense or
sparse ``X ∈ R^{n×d}``, and the **mean**-reduced loss

    f(w) = (1/n) Σ_i ℓ_i(w),    ℓ_i(w) = log(1 + exp(−y_i ⟨x_i, w⟩)).

Per-sample gradients are ``∇ℓ_i(w) = c_i x_i`` with ``c_i = −y_i · s(−y_i ⟨x_i, w⟩)`` and the
logistic sigmoid ``s``; the Hessian is ``∇²f(w) = Xᵀ diag(p_i (1 − p_i)) X / n`` with
``p_i = s(⟨x_i, w⟩)``.
Everything here is computed with sparse products; no per-sample gradient matrix is formed.
This module is a leaf: the data layer (synthetic problems carry their exact constants), the
measurement layer (summaries) and the experiments (training tasks, Table 2) all use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, cast

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit

if TYPE_CHECKING:
    # scipy-stubs declares shape, ``.T`` and ``@`` on ``_spbase``, the base of every sparse matrix
    # and array; its public ``spmatrix``/``sparray`` are bare markers without them.
    from scipy.sparse._base import _spbase

__all__ = [
    "LogisticOptimum",
    "logistic_gradient",
    "logistic_hessian_diagonal",
    "logistic_lambda_max",
    "logistic_loss",
    "logistic_noise",
    "logistic_optimum",
    "logistic_smoothness",
]

if TYPE_CHECKING:
    Matrix: TypeAlias = np.ndarray | _spbase
else:
    Matrix = np.ndarray | sp.spmatrix | sp.sparray


def _check(X: Matrix, y: np.ndarray, w: np.ndarray | None = None) -> None:
    n, d = X.shape
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match X; got {y.shape}")
    if w is not None and w.shape[0] != d:
        raise ValueError(f"w must have {d} rows to match X's {d} columns; got shape {w.shape}")


def _squared(X: Matrix) -> Matrix:
    """Elementwise square, keeping sparsity.

    Squares the stored values and reuses the index arrays (20× faster than ``X.multiply(X)`` on
    a9a); duplicate entries are summed first, since ``(a + b)² ≠ a² + b²``.
    """
    if not sp.issparse(X):
        return np.square(X)
    X = sp.csr_matrix(X)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return sp.csr_matrix((np.square(X.data), X.indices, X.indptr), shape=X.shape)


def logistic_loss(X: Matrix, y: np.ndarray, w: np.ndarray) -> np.ndarray | float:
    """Mean logistic loss ``f(w) = (1/n) Σ_i log(1 + exp(−y_i ⟨x_i, w⟩))``.

    ``w`` may be a vector ``(d,)`` or a matrix ``(d, K)`` of K weight vectors (one loss each).
    Computed as ``−log s(y_i ⟨x_i, w⟩)`` for stability at large margins.
    """
    _check(X, y, w)
    margins = y.reshape(-1, *([1] * (w.ndim - 1))) * (X @ w)
    return -log_expit(margins).mean(axis=0)


def _coefficients(X: Matrix, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``c_i = −y_i s(−y_i ⟨x_i, w⟩)`` so that ``∇ℓ_i(w) = c_i x_i``."""
    yy = y.reshape(-1, *([1] * (w.ndim - 1)))
    return -yy * expit(-yy * (X @ w))


def logistic_gradient(X: Matrix, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Full gradient ``∇f(w) = Xᵀ c / n`` (``w`` of shape ``(d,)`` or ``(d, K)``)."""
    _check(X, y, w)
    return np.asarray(X.T @ _coefficients(X, y, w)) / X.shape[0]


def logistic_noise(X: Matrix, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-coordinate gradient-noise standard deviation ``σ_j`` of one sample at ``w``.

    Convention: one sample ``ξ`` drawn uniformly from the n rows, mean-reduced loss, so

        σ_j² = Var_i[∂_j ℓ_i(w)] = (1/n) Σ_i c_i² x_ij² − (∂_j f(w))²,

    the population variance over the dataset (assumption A5 with batch size 1; a mini-batch mean
    of M samples drawn with replacement has variance ``σ_j²/M``). Computed as a sparse product of
    ``X∘X`` with ``c²``; cost ≈ two gradient evaluations.
    """
    _check(X, y, w)
    if w.ndim != 1:
        raise ValueError(f"w must be a vector of shape (d,); got shape {w.shape}")
    c = _coefficients(X, y, w)
    n = X.shape[0]
    second_moment = np.asarray(_squared(X).T @ np.square(c)) / n
    mean = np.asarray(X.T @ c) / n
    return np.sqrt(np.maximum(second_moment - np.square(mean), 0.0))


def logistic_hessian_diagonal(X: Matrix, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Hessian diagonal ``[∇²f(w)]_jj = (1/n) Σ_i p_i(1 − p_i) x_ij²``.

    With ``w=None`` returns its supremum over all ``w``, ``(1/n) Σ_i x_ij² / 4`` (since
    ``p(1 − p) ≤ 1/4``) — the "diagonal proxy" of the smoothness vector. It bounds each
    coordinate's curvature but is **not** a valid A2 constant in general: A2 needs
    ``diag(L) ⪰ ∇²f``, which the diagonal alone does not give when features are correlated.
    """
    _check(X, y, w)
    n = X.shape[0]
    weights = np.full(n, 0.25) if w is None else (lambda p: p * (1.0 - p))(expit(np.asarray(X @ w)))
    return np.asarray(_squared(X).T @ weights) / n


def logistic_smoothness(X: Matrix) -> np.ndarray:
    """A valid anisotropic smoothness vector ``L`` (assumption A2) for logistic regression.

    ``L_j = (1/(4n)) Σ_k |(XᵀX)_jk|``, the row sums of ``|XᵀX|/(4n)``. Since
    ``∇²f(w) ⪯ XᵀX/(4n)`` for every ``w`` and, for any symmetric ``A``,
    ``diag(Σ_k |A_jk|) − A`` is diagonally dominant hence ⪰ 0, we get ``∇²f(w) ⪯ diag(L)``
    everywhere. For one-hot / non-negative features (all LIBSVM binary sets here)
    ``|XᵀX| = XᵀX`` and ``L = Xᵀ(X 1)/(4n)`` is one sparse product.
    """
    n = X.shape[0]
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if X.nnz == 0 or X.data.min() >= 0:
            # Non-negative features: |XᵀX| = XᵀX, so the row sums are Xᵀ(X·1) — no Gram matrix.
            return np.asarray(X.T @ (X @ np.ones(X.shape[1]))).ravel() / (4.0 * n)
        gram = abs(X.T @ X)
        return np.asarray(gram.sum(axis=1)).ravel() / (4.0 * n)
    return np.abs(X.T @ X).sum(axis=1) / (4.0 * n)


def logistic_lambda_max(X: Matrix, *, tol: float = 1e-8) -> float:
    """Top eigenvalue of ``XᵀX/(4n)``, the tightest ℓ2 smoothness constant valid for every ``w``.

    This is SGD's best uniform constant (``∇²f(w) ⪯ λ_max I``); it is at most ``‖L‖_∞`` of
    :func:`logistic_smoothness` and often far below it. Computed by Lanczos (``eigsh``) on the
    ``d×d`` Gram operator, never forming ``XᵀX`` for sparse ``X``.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    n, d = X.shape
    if d <= 2:
        if sp.issparse(X):
            # sparse @ sparse is sparse: scipy-stubs widen the product to "sparse | ndarray"
            gram = np.asarray(cast("_spbase", X.T @ X).todense())
        else:
            gram = np.asarray(X.T @ X)
        return float(np.linalg.eigvalsh(gram)[-1]) / (4.0 * n)
    op = LinearOperator((d, d), matvec=lambda v: np.asarray(X.T @ (X @ v)), dtype=np.float64)
    top = eigsh(op, k=1, which="LA", tol=tol, return_eigenvectors=False)
    return float(top[0]) / (4.0 * n)


@dataclass(frozen=True)
class LogisticOptimum:
    """The result of :func:`logistic_optimum`.

    Attributes:
        w: The final iterate ``w*`` (shape ``(d,)``).
        f_star: ``f(w*)``.
        gradient_linf: ``‖∇f(w*)‖_∞`` — how stationary ``w*`` is.
        iterations: L-BFGS iterations taken.
        converged: Whether ``‖∇f(w*)‖_∞ ≤ gtol`` was reached (or L-BFGS reported success).
        message: L-BFGS's own termination message.
    """

    w: np.ndarray
    f_star: float
    gradient_linf: float
    iterations: int
    converged: bool
    message: str


# Newton's method forms the d × d Hessian: cheap up to a few thousand columns, L-BFGS beyond.
_NEWTON_MAX_COLUMNS = 2_000
_NEWTON_MAX_ITERATIONS = 60


def logistic_optimum(
    X: Matrix, y: np.ndarray, *, gtol: float = 1e-9, max_iterations: int = 20_000
) -> LogisticOptimum:
    """The unregularised logistic minimiser ``w* = argmin f`` from ``w = 0``.

    Up to 2,000 columns: damped Newton steps ``(∇²f + δI) p = −∇f`` with a backtracking
    (Armijo) line search, ``δ = 10⁻¹⁰ · tr ∇²f / d`` (so collinear or empty columns, common in
    one-hot LIBSVM sets, leave the system solvable). It reaches ``‖∇f‖_∞ ≤ 10⁻⁹`` in tens of
    iterations where L-BFGS takes over a thousand (a9a: 12 vs 1,352). A wider problem with at
    most 2,000 rows takes the same Newton steps in the row space of ``X``
    (:func:`_row_space_optimum`: text data, a few hundred rows and tens of thousands of
    features). Wider and longer problems, and any Newton run that does not converge within 60
    iterations, go to L-BFGS-B from ``w = 0``.

    Separable (or nearly separable) data has no finite minimiser: ``f → 0`` along a separating
    direction and ``‖w‖`` grows without bound. The search then stops at a large ``w`` with a tiny
    ``f``; the returned ``f_star`` is still accurate, but ``w`` (and any distance computed from
    it) is that of the stopping point. ``converged`` says whether the gradient test was met.

    Args:
        X: ``(n, d)`` features (dense or scipy sparse).
        y: ``(n,)`` labels in ``{−1, +1}``.
        gtol: Stop when the largest gradient coordinate is at most this.
        max_iterations: L-BFGS iteration limit.

    Returns:
        :class:`LogisticOptimum`.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
        >>> y = np.array([1.0, -1.0, 1.0, -1.0])
        >>> optimum = logistic_optimum(X, y)
        >>> optimum.converged, bool(optimum.gradient_linf <= 1e-9)
        (True, True)
    """
    from scipy.optimize import minimize

    _check(X, y)
    n, d = X.shape
    newton = None
    if d <= _NEWTON_MAX_COLUMNS:
        newton = _newton_optimum(X, y, gtol=gtol)
    elif n <= _NEWTON_MAX_COLUMNS:
        newton = _row_space_optimum(X, y, gtol=gtol)
    if newton is not None:
        return newton

    def loss_and_gradient(w: np.ndarray) -> tuple[float, np.ndarray]:
        return float(logistic_loss(X, y, w)), logistic_gradient(X, y, w)

    result = minimize(
        loss_and_gradient,
        np.zeros(X.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iterations, "maxcor": 30, "gtol": gtol, "ftol": 1e-15},
    )
    gradient_linf = float(np.abs(logistic_gradient(X, y, result.x)).max())
    return LogisticOptimum(
        w=result.x,
        f_star=float(result.fun),
        gradient_linf=gradient_linf,
        iterations=int(result.nit),
        converged=bool(result.success) or gradient_linf <= gtol,
        message=str(result.message),
    )


def _row_space_optimum(X: Matrix, y: np.ndarray, *, gtol: float) -> LogisticOptimum | None:
    """Newton for a wide ``X`` (``d > n``) in an orthonormal basis of its row space.

    From ``w = 0`` every gradient ``Xᵀr/n`` lies in the row space, so the minimiser Newton (or
    gradient descent) reaches does too. With ``XXᵀ = UΛUᵀ`` (the eigenvalues above
    ``10⁻¹² λ_max``: duplicate rows leave zeros), ``Q = XᵀUΛ^{-1/2}`` has orthonormal columns
    and ``⟨x_i, Qc⟩ = (UΛ^{1/2}c)_i``: the problem in ``c`` is logistic regression on the
    ``n × r`` design ``Z = UΛ^{1/2}``, solved by :func:`_newton_optimum` (``‖∇_c f‖_∞ ≤
    gtol/√r``, so that ``‖∇_w f‖_∞ ≤ ‖∇_w f‖_2 = ‖∇_c f‖_2 ≤ gtol``), then ``w* = Qc*``.
    """
    gram = np.asarray(sp.csr_matrix(X @ X.T).toarray()) if sp.issparse(X) else X @ np.asarray(X).T
    values, vectors = np.linalg.eigh(gram)
    keep = values > 1e-12 * max(float(values.max()), 1e-300)
    if not keep.any():
        return None
    values, vectors = values[keep], vectors[:, keep]
    reduced = _newton_optimum(vectors * np.sqrt(values), y, gtol=gtol / math.sqrt(keep.sum()))
    if reduced is None:
        return None
    w = np.asarray(X.T @ (vectors @ (reduced.w / np.sqrt(values)))).ravel()
    gradient_linf = float(np.abs(logistic_gradient(X, y, w)).max())
    return LogisticOptimum(
        w,
        float(logistic_loss(X, y, w)),
        gradient_linf,
        reduced.iterations,
        gradient_linf <= gtol,
        f"Newton in the {int(keep.sum())}-dimensional row space: gradient test met",
    )


def _newton_optimum(X: Matrix, y: np.ndarray, *, gtol: float) -> LogisticOptimum | None:
    """Damped Newton from ``w = 0`` (see :func:`logistic_optimum`); ``None`` if it stalls."""
    import scipy.linalg

    n, d = X.shape
    w = np.zeros(d)
    loss = float(logistic_loss(X, y, w))
    for iteration in range(_NEWTON_MAX_ITERATIONS + 1):
        gradient = logistic_gradient(X, y, w)
        gradient_linf = float(np.abs(gradient).max())
        if gradient_linf <= gtol:
            return LogisticOptimum(
                w, loss, gradient_linf, iteration, True, "Newton: gradient test met"
            )
        if iteration == _NEWTON_MAX_ITERATIONS:
            return None
        p = expit(np.asarray(X @ w).ravel())
        curvature = p * (1.0 - p)
        # ∇²f = Xᵀ diag(p(1 − p)) X / n, scaling the columns of Xᵀ (5× faster than scaling
        # the rows of X on a9a, for sparse X).
        if sp.issparse(X):
            scaled = X.T.multiply(curvature[None, :])
            hessian = np.asarray(sp.csr_matrix(scaled @ X).toarray()) / n
        else:
            dense = np.asarray(X)
            hessian = (dense.T * curvature) @ dense / n
        hessian[np.diag_indices(d)] += 1e-10 * max(float(np.trace(hessian)) / d, 1e-300)
        try:
            step = -scipy.linalg.solve(hessian, gradient, assume_a="pos")
        except (np.linalg.LinAlgError, ValueError):
            return None
        slope = float(gradient @ step)
        if not slope < 0:
            return None
        size = 1.0
        candidate = w + step
        candidate_loss = float(logistic_loss(X, y, candidate))
        while candidate_loss > loss + 1e-4 * size * slope:
            size /= 2
            if size < 1e-10:
                return None
            candidate = w + size * step
            candidate_loss = float(logistic_loss(X, y, candidate))
        w, loss = candidate, candidate_loss
    return None
