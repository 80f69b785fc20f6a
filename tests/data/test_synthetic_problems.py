"""Synthetic problems against their own ground truth: distributions, closed forms, exact oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from anisoada.data import (
    LogisticProblem,
    StochasticQuadratic,
    logistic_problem,
    make_sparse_logistic,
    power_law_frequencies,
    random_orthogonal,
    rotated_twin,
)
from anisoada.data.synthetic import _bernoulli_columns

# ---------------------------------------------------------------------------------------------
# Power-law frequencies and the Bernoulli sampler
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "exponent", "density"),
    [(50, 0.0, 0.2), (1000, 1.0, 0.01), (100, 2.0, 0.3), (7, 3.0, 1.0)],
)
def test_power_law_frequencies_hit_the_density_and_follow_the_power_law(d, exponent, density):
    p = power_law_frequencies(d, exponent=exponent, density=density)
    assert p.shape == (d,)
    assert p.sum() == pytest.approx(density * d, rel=1e-10)
    assert np.all((p > 0) & (p <= 1))
    assert np.all(np.diff(p) <= 1e-15)
    # Below the cap, p_j ∝ (j+1)^(−exponent) exactly.
    free = np.flatnonzero(p < 1.0)
    if free.size >= 2:
        ratios = p[free] * (free + 1.0) ** exponent
        np.testing.assert_allclose(ratios, ratios[0], rtol=1e-12)


def test_power_law_frequencies_cap_at_one_when_the_head_is_saturated():
    p = power_law_frequencies(100, exponent=2.0, density=0.3)
    assert p[0] == 1.0 and p[1] == 1.0  # the head would exceed 1 without the cap
    assert p.sum() == pytest.approx(30.0, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"d": 0, "exponent": 1.0, "density": 0.1}, "d must be a positive integer"),
        ({"d": 10, "exponent": -1.0, "density": 0.1}, "exponent must be"),
        ({"d": 10, "exponent": 1.0, "density": 0.0}, r"density must be in \(0, 1\]"),
        ({"d": 10, "exponent": 1.0, "density": 1.5}, r"density must be in \(0, 1\]; got 1.5"),
    ],
)
def test_power_law_frequencies_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        power_law_frequencies(**kwargs)


@pytest.mark.parametrize("spare", [(6.0, 8), (0.0, 0)])
def test_bernoulli_sampler_has_the_right_marginals_and_independence(spare):
    # spare = (0, 0) forces almost every column through the "top-up" path, which must be exact too.
    n, trials = 400, 60
    p = np.array([0.9, 0.5, 0.2, 0.05, 0.01])
    rng = np.random.default_rng(0)
    counts = np.zeros(p.size)
    joint = 0.0
    for _ in range(trials):
        indptr, rows = _bernoulli_columns(n, p, rng, spare_sigmas=spare[0], spare_gaps=spare[1])
        X = sp.csc_matrix((np.ones(rows.size), rows, indptr), shape=(n, p.size))
        assert X.max() == 1.0  # no duplicate (row, column) entries
        dense = X.toarray()
        counts += dense.sum(0)
        joint += (dense[:, 0] * dense[:, 1]).sum()
        for j in range(p.size):  # rows sorted within every column
            assert np.all(np.diff(rows[indptr[j] : indptr[j + 1]]) > 0)
    total = n * trials
    z = (counts - total * p) / np.sqrt(total * p * (1 - p))
    assert np.all(np.abs(z) < 4.5), z
    pair = p[0] * p[1]
    z_joint = (joint - total * pair) / math.sqrt(total * pair * (1 - pair))
    assert abs(z_joint) < 4.5


# ---------------------------------------------------------------------------------------------
# make_sparse_logistic
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sparse_problem() -> LogisticProblem:
    return make_sparse_logistic(3000, 60, exponent=1.2, density=0.1, label_noise=0.1, seed=3)


def test_sparse_logistic_shapes_types_and_determinism(sparse_problem):
    p = sparse_problem
    assert isinstance(p.X, sp.csr_matrix) and p.X.dtype == np.float64 and p.X.has_sorted_indices
    assert p.X.shape == (3000, 60) and set(np.unique(p.X.data)) == {1.0}
    assert set(np.unique(p.y)) == {-1.0, 1.0}
    again = make_sparse_logistic(3000, 60, exponent=1.2, density=0.1, label_noise=0.1, seed=3)
    assert (again.X != p.X).nnz == 0
    np.testing.assert_array_equal(again.y, p.y)
    np.testing.assert_array_equal(again.w_star, p.w_star)
    other = make_sparse_logistic(3000, 60, exponent=1.2, density=0.1, label_noise=0.1, seed=4)
    assert (other.X != p.X).nnz > 0


def test_sparse_logistic_feature_frequencies_follow_the_power_law(sparse_problem):
    p = sparse_problem
    empirical = np.asarray(p.X.sum(0)).ravel() / p.n
    q = p.feature_probability
    z = (empirical - q) / np.sqrt(q * (1 - q) / p.n + 1e-300)
    assert np.all(np.abs(z[q < 1]) < 5)
    assert p.X.nnz / p.n == pytest.approx(0.1 * 60, rel=0.05)


def test_sparse_logistic_label_noise_and_margin_scale(sparse_problem):
    p = sparse_problem
    margin = p.X @ p.w_star
    decided = margin != 0
    flipped = np.mean(p.y[decided] != np.sign(margin[decided]))
    se = math.sqrt(0.1 * 0.9 / decided.sum())
    assert abs(flipped - 0.1) < 5 * se
    # w*_j ~ N(0, 2²/Σp): the margin has variance Σ_j p_j w*_j²·(…) ≈ 2² on average over draws.
    expected_var = np.sum(p.feature_probability * (1 - p.feature_probability) * p.w_star**2)
    expected_var += np.sum(p.feature_probability * p.w_star) ** 2
    assert np.mean(margin**2) == pytest.approx(expected_var, rel=0.1)
    clean = make_sparse_logistic(3000, 60, exponent=1.2, density=0.1, label_noise=0.0, seed=3)
    m = clean.X @ clean.w_star
    assert np.all(clean.y[m != 0] == np.sign(m[m != 0]))


def test_sparse_logistic_smoothness_is_a_valid_a2_majorant(sparse_problem):
    p = sparse_problem
    dense = p.X.toarray()
    rng = np.random.default_rng(0)
    for scale in (0.0, 0.3, 3.0):
        w = scale * rng.normal(size=p.d)
        s = 1 / (1 + np.exp(-dense @ w))
        hessian = dense.T @ (dense * (s * (1 - s))[:, None]) / p.n
        gap = np.diag(p.smoothness) - hessian
        assert np.linalg.eigvalsh(gap)[0] >= -1e-12
        np.testing.assert_allclose(np.diag(hessian), p.hessian_diagonal(w), rtol=1e-12)
        assert np.all(p.hessian_diagonal(w) <= p.hessian_diagonal_bound + 1e-15)
    np.testing.assert_allclose(p.smoothness, np.abs(dense.T @ dense).sum(1) / (4 * p.n))
    np.testing.assert_allclose(p.hessian_diagonal_bound, (dense**2).sum(0) / (4 * p.n))


def test_sparse_logistic_noise_equals_per_sample_gradient_std(sparse_problem):
    p = sparse_problem
    w = np.random.default_rng(1).normal(size=p.d) * 0.2
    dense = p.X.toarray()
    coefficient = -p.y / (1 + np.exp(p.y * (dense @ w)))
    per_sample = coefficient[:, None] * dense
    np.testing.assert_allclose(p.noise(w), per_sample.std(axis=0), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(p.grad(w), per_sample.mean(0), rtol=1e-10, atol=1e-15)


def test_sparse_logistic_stochastic_grad_is_unbiased_with_noise_over_sqrt_m(sparse_problem):
    p = sparse_problem
    w = np.random.default_rng(2).normal(size=p.d) * 0.2
    rng = np.random.default_rng(5)
    batch, draws = 4, 4000
    samples = np.stack([p.stochastic_grad(w, batch, rng) for _ in range(draws)])
    sigma = p.noise(w)
    z = (samples.mean(0) - p.grad(w)) / (sigma / math.sqrt(batch * draws) + 1e-300)
    assert np.all(np.abs(z) < 5)
    np.testing.assert_allclose(samples.std(0), sigma / math.sqrt(batch), rtol=0.1)


def test_sparse_logistic_is_anisotropic_and_exponent_zero_is_not():
    skewed = make_sparse_logistic(2000, 200, exponent=1.5, density=0.05, seed=0)
    flat = make_sparse_logistic(2000, 200, exponent=0.0, density=0.05, seed=0)

    def rho(L):
        return L.sum() / (L.size * L.max())

    assert rho(skewed.smoothness) < 0.15
    assert rho(flat.smoothness) > 0.8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0, "d": 5}, "n must be a positive integer; got 0"),
        ({"n": 5, "d": 2.5}, "d must be a positive integer; got 2.5"),
        ({"n": 5, "d": 5, "label_noise": 0.7}, r"label_noise must be in \[0, 0.5\]; got 0.7"),
        ({"n": 5, "d": 5, "margin_std": -1.0}, "margin_std must be"),
        ({"n": 5, "d": 5, "density": 0.0}, "density must be"),
    ],
)
def test_sparse_logistic_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_sparse_logistic(**kwargs)


# ---------------------------------------------------------------------------------------------
# logistic_problem and the rotated twin
# ---------------------------------------------------------------------------------------------


def test_logistic_problem_validates_labels_and_shapes():
    X = np.eye(3)
    with pytest.raises(ValueError, match=r"y\[1\] = 0.0"):
        logistic_problem(X, np.array([1.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        logistic_problem(X, np.ones(2))
    with pytest.raises(ValueError, match=r"w_star must have shape \(3,\)"):
        logistic_problem(X, np.ones(3), w_star=np.ones(4))


def test_random_orthogonal_is_orthogonal_and_seeded():
    q = random_orthogonal(30, seed=1)
    np.testing.assert_allclose(q.T @ q, np.eye(30), atol=1e-12)
    np.testing.assert_array_equal(q, random_orthogonal(30, seed=1))
    assert not np.allclose(q, random_orthogonal(30, seed=2))


def test_random_orthogonal_is_haar_first_entry_has_variance_one_over_d():
    # For Haar Q, E[Q_11] = 0 and E[Q_11²] = 1/d; the uncorrected QR has a biased Q_11 sign.
    d = 4
    first = np.array([random_orthogonal(d, seed=s)[0, 0] for s in range(3000)])
    assert abs(first.mean()) < 4 * math.sqrt(1 / d / 3000)
    assert np.mean(first**2) == pytest.approx(1 / d, rel=0.1)


@pytest.fixture(scope="module")
def twins():
    original = make_sparse_logistic(800, 40, exponent=1.5, density=0.1, seed=7)
    return original, rotated_twin(original, seed=11)


def test_rotated_twin_keeps_spectrum_losses_and_noise_norm(twins):
    original, twin = twins
    q = twin.rotation
    np.testing.assert_allclose(q.T @ q, np.eye(40), atol=1e-12)
    assert isinstance(twin.X, np.ndarray)
    np.testing.assert_allclose(twin.X, original.X.toarray() @ q, atol=1e-12)
    np.testing.assert_allclose(twin.w_star, q.T @ original.w_star, atol=1e-12)
    np.testing.assert_array_equal(twin.y, original.y)
    dense = original.X.toarray()
    np.testing.assert_allclose(
        np.linalg.eigvalsh(twin.X.T @ twin.X), np.linalg.eigvalsh(dense.T @ dense), atol=1e-9
    )
    assert twin.lambda_max() == pytest.approx(original.lambda_max(), rel=1e-6)
    w = np.random.default_rng(0).normal(size=40) * 0.3
    assert twin.loss(q.T @ w) == pytest.approx(original.loss(w), rel=1e-12)
    np.testing.assert_allclose(twin.grad(q.T @ w), q.T @ original.grad(w), atol=1e-12)
    # ‖σ‖_2² is the trace of the gradient covariance: rotation invariant. ‖σ‖_1 is not.
    assert np.linalg.norm(twin.noise(q.T @ w)) == pytest.approx(
        np.linalg.norm(original.noise(w)), rel=1e-9
    )


def test_rotated_twin_destroys_coordinate_structure(twins):
    original, twin = twins

    def rho(L):
        return L.sum() / (L.size * L.max())

    assert rho(twin.smoothness) > 2 * rho(original.smoothness)
    # Twin L is still a valid A2 vector.
    s = 1 / (1 + np.exp(-twin.X @ twin.w_star))
    hessian = twin.X.T @ (twin.X * (s * (1 - s))[:, None]) / twin.n
    assert np.linalg.eigvalsh(np.diag(twin.smoothness) - hessian)[0] >= -1e-12
    assert twin.feature_probability is None


def test_sgd_cannot_tell_the_twins_apart_but_adagrad_can(twins):
    original, twin = twins
    q = twin.rotation
    rows_rng = np.random.default_rng(0)
    batches = [rows_rng.integers(0, original.n, size=16) for _ in range(30)]

    def run(problem, start, adaptive):
        w, accumulator = start.copy(), np.zeros_like(start)
        for rows in batches:
            g = logistic_problem(problem.X[rows], problem.y[rows]).grad(w)
            if adaptive:
                accumulator += g * g
                w = w - 0.5 * g / (np.sqrt(accumulator) + 1e-12)
            else:
                w = w - 0.5 * g
        return w

    w1 = np.random.default_rng(3).normal(size=40) * 0.1
    sgd, sgd_twin = run(original, w1, False), run(twin, q.T @ w1, False)
    np.testing.assert_allclose(sgd_twin, q.T @ sgd, atol=1e-10)
    ada, ada_twin = run(original, w1, True), run(twin, q.T @ w1, True)
    assert np.linalg.norm(ada_twin - q.T @ ada) > 1e-2 * np.linalg.norm(ada)


def test_rotated_twin_of_a_twin_composes_rotations_and_refuses_huge_problems(twins):
    original, twin = twins
    twice = rotated_twin(twin, seed=12)
    np.testing.assert_allclose(twice.X, original.X.toarray() @ twice.rotation, atol=1e-10)
    big = make_sparse_logistic(100, 50, seed=0)
    with pytest.raises(ValueError, match="max_dense_entries=1000"):
        rotated_twin(big, seed=0, max_dense_entries=1000)


# ---------------------------------------------------------------------------------------------
# StochasticQuadratic
# ---------------------------------------------------------------------------------------------


def test_quadratic_closed_forms():
    q = StochasticQuadratic(
        L=np.array([4.0, 1.0, 0.0]), sigma=np.array([1.0, 0.5, 2.0]), minimiser=[1.0, -1.0, 3.0]
    )
    w = np.array([2.0, 1.0, 0.0])
    assert q.loss(w) == pytest.approx(0.5 * (4 * 1 + 1 * 4 + 0))
    np.testing.assert_allclose(q.grad(w), [4.0, 2.0, 0.0])
    assert q.loss(q.minimiser) == 0.0
    np.testing.assert_array_equal(q.smoothness, [4.0, 1.0, 0.0])
    np.testing.assert_array_equal(q.noise(w), [1.0, 0.5, 2.0])
    stacked = np.stack([w, q.minimiser], axis=1)
    np.testing.assert_allclose(q.loss(stacked), [4.0, 0.0])
    np.testing.assert_allclose(q.grad(stacked)[:, 0], [4.0, 2.0, 0.0])
    with pytest.raises(ValueError):
        q.L[0] = 5.0  # frozen: the constants cannot be changed behind the oracle's back


@pytest.mark.parametrize("noise_kind", ["gaussian", "rademacher"])
@pytest.mark.parametrize("batch_size", [1, 7])
def test_quadratic_noise_std_is_sigma_over_sqrt_batch(noise_kind, batch_size):
    sigma = np.array([2.0, 0.5, 0.0, 1.0])
    q = StochasticQuadratic(L=np.ones(4), sigma=sigma, noise_kind=noise_kind)
    w = np.array([0.5, -1.0, 2.0, 0.0])
    draws = 40_000
    stacked = np.repeat(w[:, None], draws, axis=1)  # K columns = independent draws
    g = q.stochastic_grad(stacked, batch_size, np.random.default_rng(0))
    expected_std = sigma / math.sqrt(batch_size)
    np.testing.assert_allclose(g.std(1), expected_std, rtol=0.03)
    z = (g.mean(1) - q.grad(w)) / (expected_std / math.sqrt(draws) + 1e-300)
    assert np.all(np.abs(z) < 5)
    assert g[2].min() == g[2].max() == q.grad(w)[2]  # σ_j = 0: that coordinate is exact
    if noise_kind == "rademacher" and batch_size == 1:
        # Bounded noise: each one-sample gradient is exactly ∇f ± σ.
        assert set(np.round((g[0] - q.grad(w)[0]) / sigma[0], 12)) == {-1.0, 1.0}


@pytest.mark.parametrize("noise_kind", ["gaussian", "rademacher"])
def test_quadratic_torch_path_keeps_dtype_and_matches_statistics(noise_kind):
    q = StochasticQuadratic.power_law(
        5, smoothness_exponent=1.0, noise_exponent=0.5, noise_kind=noise_kind
    )
    w = torch.ones(5, 20_000, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    g = q.stochastic_grad(w, 4, generator)
    assert g.dtype == torch.float32 and g.shape == w.shape
    np.testing.assert_allclose(g.std(1).numpy(), q.sigma / 2, rtol=0.04)
    np.testing.assert_allclose(q.grad(w[:, 0]).numpy(), q.L, rtol=1e-6)
    assert float(q.loss(w[:, 0].double())) == pytest.approx(0.5 * q.L.sum())
    again = q.stochastic_grad(w, 4, torch.Generator().manual_seed(0))
    assert torch.equal(g, again)


def test_quadratic_power_law_constants():
    q = StochasticQuadratic.power_law(
        4, smoothness_exponent=2.0, noise_exponent=1.0, L_max=8.0, sigma_max=3.0
    )
    np.testing.assert_allclose(q.L, [8.0, 2.0, 8 / 9, 0.5])
    np.testing.assert_allclose(q.sigma, [3.0, 1.5, 1.0, 0.75])
    iso = StochasticQuadratic.power_law(4, smoothness_exponent=0.0, noise_exponent=0.0)
    np.testing.assert_array_equal(iso.L, np.ones(4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"L": [1.0, -1.0], "sigma": [1.0, 1.0]}, r"L must be finite and >= 0; L\[1\] = -1.0"),
        ({"L": [1.0, 1.0], "sigma": [1.0]}, r"sigma must have the shape of L \(2,\)"),
        ({"L": [1.0, np.nan], "sigma": [1.0, 1.0]}, r"L\[1\] = nan"),
        ({"L": [], "sigma": []}, "non-empty"),
        ({"L": [1.0], "sigma": [1.0], "noise_kind": "cauchy"}, "noise_kind must be"),
        ({"L": [1.0], "sigma": [1.0], "minimiser": [1.0, 2.0]}, "minimiser must be"),
    ],
)
def test_quadratic_rejects_bad_constants(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StochasticQuadratic(**kwargs)


def test_quadratic_rejects_bad_oracle_calls():
    q = StochasticQuadratic(L=np.ones(3), sigma=np.ones(3))
    with pytest.raises(ValueError, match=r"w must have shape \(3,\) or \(3, K\); got \(4,\)"):
        q.grad(np.ones(4))
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got 0"):
        q.stochastic_grad(np.ones(3), 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        q.stochastic_grad(torch.ones(3), 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"numpy\.random\.Generator"):
        q.stochastic_grad(np.ones(3), 1, torch.Generator())
