"""Closed-form logistic quantities against brute force (float64)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from anisoada.problems.logistic import (
    logistic_gradient,
    logistic_hessian_diagonal,
    logistic_lambda_max,
    logistic_loss,
    logistic_noise,
    logistic_smoothness,
)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    n, d = 60, 7
    dense = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.5)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    w = rng.normal(size=d)
    return dense, y, w


def _per_sample_grads(dense, y, w):
    X = torch.tensor(dense)
    wt = torch.tensor(w, requires_grad=True)
    rows = []
    for i in range(X.shape[0]):
        loss = torch.nn.functional.softplus(-y[i] * (X[i] @ wt))
        (g,) = torch.autograd.grad(loss, wt)
        rows.append(g.numpy())
    return np.stack(rows)


@pytest.mark.parametrize("sparse", [False, True])
def test_loss_gradient_noise_match_autograd(problem, sparse):
    dense, y, w = problem
    X = sp.csr_matrix(dense) if sparse else dense
    grads = _per_sample_grads(dense, y, w)
    expected_loss = np.mean(np.log1p(np.exp(-y * (dense @ w))))
    assert logistic_loss(X, y, w) == pytest.approx(expected_loss, rel=1e-13)
    np.testing.assert_allclose(logistic_gradient(X, y, w), grads.mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(logistic_noise(X, y, w), grads.std(0), rtol=1e-10, atol=1e-14)


def test_hessian_diagonal_and_majorant(problem):
    dense, y, w = problem
    wt = torch.tensor(w)
    X = torch.tensor(dense)
    hessian = torch.autograd.functional.hessian(
        lambda v: torch.nn.functional.softplus(-torch.tensor(y) * (X @ v)).mean(), wt
    ).numpy()
    np.testing.assert_allclose(logistic_hessian_diagonal(dense, y, w), np.diag(hessian), rtol=1e-12)
    L = logistic_smoothness(sp.csr_matrix(dense))
    np.testing.assert_allclose(L, logistic_smoothness(dense), rtol=1e-12)
    # diag(L) - H must be positive semidefinite at this w and at the worst case X^T X / 4n.
    assert np.linalg.eigvalsh(np.diag(L) - hessian).min() > -1e-12
    assert np.linalg.eigvalsh(np.diag(L) - dense.T @ dense / (4 * len(y))).min() > -1e-12
    lam = logistic_lambda_max(sp.csr_matrix(dense))
    assert lam == pytest.approx(np.linalg.eigvalsh(dense.T @ dense)[-1] / (4 * len(y)), rel=1e-8)
    assert lam <= L.max() + 1e-12


def test_vectorised_weights_give_one_loss_per_column(problem):
    dense, y, w = problem
    W = np.stack([w, 2 * w, -w], axis=1)
    losses = logistic_loss(dense, y, W)
    assert losses.shape == (3,)
    assert losses[1] == pytest.approx(logistic_loss(dense, y, 2 * w), rel=1e-14)
    np.testing.assert_allclose(
        logistic_gradient(dense, y, W)[:, 2], logistic_gradient(dense, y, -w)
    )


def test_shape_mismatch_names_argument(problem):
    dense, y, w = problem
    with pytest.raises(ValueError, match="y must have shape"):
        logistic_loss(dense, y[:-1], w)
    with pytest.raises(ValueError, match="w must have 7 rows"):
        logistic_gradient(dense, y, w[:-1])


def test_noise_sums_duplicate_sparse_entries_before_squaring(problem):
    dense, y, w = problem
    X = sp.csr_matrix(dense)
    # The same matrix with every stored value split into two halves (non-canonical CSR).
    split = sp.csr_matrix(
        (np.repeat(X.data / 2, 2), np.repeat(X.indices, 2), X.indptr * 2), shape=X.shape
    )
    assert not split.has_canonical_format
    np.testing.assert_allclose(logistic_noise(split, y, w), logistic_noise(dense, y, w), rtol=1e-12)
    assert not split.has_canonical_format  # the caller's matrix is left as it was


def test_newton_optimum_matches_lbfgs_on_sparse_and_dense_data():
    """Newton (the default at d ≤ 2000) and L-BFGS-B agree on f* and w* of a strictly convex
    problem, on sparse and dense features; the gradient test is met."""
    from scipy.optimize import minimize

    from anisoada.problems.logistic import logistic_optimum

    rng = np.random.default_rng(3)
    n, d = 400, 12
    X = sp.random(n, d, density=0.4, random_state=4, format="csr")
    w_true = rng.normal(size=d)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-(X @ w_true))), 1.0, -1.0)
    reference = minimize(
        lambda w: (float(logistic_loss(X, y, w)), logistic_gradient(X, y, w)),
        np.zeros(d),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 10_000},
    )
    for features in (X, X.toarray()):
        optimum = logistic_optimum(features, y)
        assert optimum.converged and optimum.message.startswith("Newton")
        assert optimum.gradient_linf <= 1e-9
        assert optimum.iterations < 30
        np.testing.assert_allclose(optimum.f_star, reference.fun, rtol=1e-12)
        np.testing.assert_allclose(optimum.w, reference.x, atol=1e-6)


def test_separable_data_stops_at_a_tiny_loss_and_a_growing_w():
    """Separable data: the search stops where the gradient test is met, at a tiny f and a large w
    (f* = 0 is not attained; ‖w‖ grows as the tolerance tightens)."""
    from anisoada.problems.logistic import logistic_optimum

    X = np.array([[1.0, 0.5], [2.0, -0.3], [-1.0, 0.2], [-1.5, -0.4]])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    optimum = logistic_optimum(X, y)
    assert optimum.f_star < 1e-6
    assert np.linalg.norm(optimum.w) > 10
    tighter = logistic_optimum(X, y, gtol=1e-12)
    assert np.linalg.norm(tighter.w) > np.linalg.norm(optimum.w)
    assert tighter.f_star < optimum.f_star


def test_wide_problems_take_the_same_newton_steps_in_the_row_space(monkeypatch):
    # More columns than rows but a finite minimiser: each row a_i also appears as −a_i/2 with
    # the same label, so the pair's loss log(1 + e^{−m}) + log(1 + e^{m/2}) has a finite best
    # margin m* = 2 log u with u³ − u − 2 = 0 (where s(−m) = s(m/2)/2, u = e^{m/2}), and 30
    # independent rows in 90 dimensions can all take it. The d × d Newton and the row-space
    # Newton reach the same w*.
    import anisoada.problems.logistic as module

    rng = np.random.default_rng(3)
    A = rng.normal(size=(30, 90))
    X = np.vstack([A, -0.5 * A])
    y = np.tile(np.where(rng.random(30) < 0.5, 1.0, -1.0), 2)
    full = module.logistic_optimum(X, y)
    monkeypatch.setattr(module, "_NEWTON_MAX_COLUMNS", 60)  # 90 columns, 60 rows: row space
    wide = module.logistic_optimum(X, y)
    assert full.converged and wide.converged and "row space" in wide.message
    margins = y * (X @ wide.w)
    u = max(root.real for root in np.roots([1.0, 0.0, -1.0, -2.0]) if abs(root.imag) < 1e-12)
    np.testing.assert_allclose(margins[:30], 2 * np.log(u), rtol=1e-12)
    assert wide.f_star == pytest.approx(full.f_star, rel=1e-14)
    # (the d × d run stopped at ‖∇f‖_∞ = 6e-10 with margins 1e-8 from the root)
    np.testing.assert_allclose(X @ wide.w, X @ full.w, rtol=1e-7)
    # They differ off the row space only: the d × d solve (condition ~1e10 from its tiny
    # damping) lets ~1e-6 leak into X's null space; the row-space w* is the minimum-norm one.
    _, singular, rows = np.linalg.svd(X, full_matrices=False)
    basis = rows[singular > 1e-10 * singular[0]].T  # the 30-dimensional row space
    np.testing.assert_allclose(basis @ (basis.T @ wide.w), wide.w, atol=1e-12)
    projected = basis @ (basis.T @ full.w)
    np.testing.assert_allclose(wide.w, projected, atol=1e-7 * np.abs(wide.w).max())
