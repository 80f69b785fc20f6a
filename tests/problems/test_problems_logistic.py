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
