"""Hessian-vector products, Hutchinson diagonal and power iteration against dense Hessians."""

import numpy as np
import pytest
import torch
from measure_reference import (
    QuadraticWithNoise,
    balanced_signs,
    exact_hessian,
    logistic_loss_fn,
    logistic_model,
    mean_loss,
    mlp_problem,
    mse_loss,
)

from anisoada.measure import (
    hessian_vector_product,
    hutchinson_diagonal,
    logistic_hessian_diagonal,
    top_hessian_eigenvalue,
)


@pytest.fixture(scope="module")
def mlp():
    model, batch = mlp_problem(n=12)
    return model, batch, exact_hessian(model, mse_loss, batch)


@pytest.mark.parametrize("method", ["forward", "reverse", "auto"])
def test_hvp_matches_dense_hessian(mlp, method):
    model, batch, hessian = mlp
    v = torch.randn(
        hessian.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    product = hessian_vector_product(model, mse_loss, batch, v, method=method)
    np.testing.assert_allclose(product.numpy(), (hessian @ v).numpy(), rtol=1e-10, atol=1e-12)
    chunked = hessian_vector_product(model, mse_loss, batch, v, method=method, data_chunk_size=5)
    np.testing.assert_allclose(chunked.numpy(), product.numpy(), rtol=1e-11, atol=1e-13)
    as_dict = hessian_vector_product(
        model, mse_loss, batch, {n: torch.ones_like(p) for n, p in model.named_parameters()}
    )
    np.testing.assert_allclose(
        torch.cat([t.reshape(-1) for t in as_dict.values()]).numpy(),
        hessian.sum(1).numpy(),
        rtol=1e-10,
        atol=1e-12,
    )


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    L = np.array([3.0, 0.5, 7.0, 1e-3])
    model = QuadraticWithNoise(L, np.ones(4), np.zeros(4), np.ones(4))
    estimate = hutchinson_diagonal(model, mean_loss, balanced_signs(8, 4), n_probes=3)
    np.testing.assert_allclose(estimate.diagonal.numpy(), L, rtol=1e-13)
    np.testing.assert_allclose(estimate.standard_error.numpy(), 0.0, atol=1e-13)


def test_hutchinson_converges_to_the_exact_diagonal_at_the_stated_rate(mlp):
    model, batch, hessian = mlp
    exact = torch.diagonal(hessian)
    off_diagonal = (hessian.square().sum(1) - exact.square()).sqrt()
    errors = {}
    for probes in (25, 1600):
        estimate = hutchinson_diagonal(model, mse_loss, batch, n_probes=probes, seed=probes)
        error = (estimate.diagonal - exact).abs()
        predicted = off_diagonal / np.sqrt(probes)  # std of the mean of P probes, exactly
        # Five predicted standard deviations bounds every coordinate (21 of them) comfortably.
        assert torch.all(error <= 5 * predicted + 1e-12), (error / predicted).max()
        # The reported standard error estimates the predicted one.
        ratio = estimate.standard_error[predicted > 0] / predicted[predicted > 0]
        assert 0.5 < float(ratio.median()) < 1.5
        errors[probes] = float(error.mean())
    # 64× more probes: the error shrinks by ≈ 8 (√64); demand at least 3.
    assert errors[25] / errors[1600] > 3


def test_hutchinson_on_logistic_regression_approaches_the_closed_form():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 5))
    y = np.where(rng.random(30) < 0.5, -1.0, 1.0)
    w = rng.normal(size=5)
    batch = (torch.tensor(X), torch.tensor(y))
    estimate = hutchinson_diagonal(logistic_model(X, w), logistic_loss_fn, batch, n_probes=2000)
    exact = logistic_hessian_diagonal(X, y, w)
    # Error within 5 standard errors (reported, consistent with the off-diagonal mass).
    assert np.all(np.abs(estimate.diagonal.numpy() - exact) <= 5 * estimate.standard_error.numpy())


def test_power_iteration_finds_the_top_eigenvalue(mlp):
    model, batch, hessian = mlp
    eigenvalues = torch.linalg.eigvalsh(hessian)
    estimate = top_hessian_eigenvalue(model, mse_loss, batch, max_iterations=2000, tol=1e-13)
    assert estimate.converged
    assert estimate.value == pytest.approx(float(eigenvalues[-1]), rel=1e-6)
    # The vector is an eigenvector: ‖Hv − λv‖ small.
    residual = hessian @ estimate.vector - estimate.value * estimate.vector
    assert float(residual.norm()) < 1e-3 * abs(estimate.value)


class _FixedQuadratic(torch.nn.Module):
    def __init__(self, hessian):
        super().__init__()
        self.register_buffer("hessian", hessian)
        self.w = torch.nn.Parameter(torch.ones(hessian.shape[0], dtype=torch.float64))

    def forward(self, x):
        return 0.5 * self.w @ self.hessian @ self.w + x.sum(-1) * 0.0


def test_power_iteration_shifts_past_a_dominant_negative_eigenvalue():
    q, _ = torch.linalg.qr(
        torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    )
    hessian = q @ torch.diag(torch.tensor([-5.0, 0.3, 1.0, 2.0], dtype=torch.float64)) @ q.T
    model = _FixedQuadratic(hessian)
    estimate = top_hessian_eigenvalue(
        model,
        lambda m, b: m(b).mean(),
        torch.zeros(2, 1, dtype=torch.float64),
        max_iterations=3000,
        tol=1e-14,
    )
    assert estimate.value == pytest.approx(2.0, rel=1e-6)


def test_bad_arguments_name_themselves(mlp):
    model, batch, _ = mlp
    with pytest.raises(ValueError, match="Invalid method"):
        hutchinson_diagonal(model, mse_loss, batch, method="sideways")
    with pytest.raises(ValueError, match="Invalid n_probes"):
        hutchinson_diagonal(model, mse_loss, batch, n_probes=1)
    with pytest.raises(ValueError, match="vector must have shape"):
        hessian_vector_product(model, mse_loss, batch, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="Invalid max_iterations"):
        top_hessian_eigenvalue(model, mse_loss, batch, max_iterations=0)
