"""Coordinate secants, coordinate sampling and per-block aggregation."""

import itertools

import numpy as np
import pytest
import torch
from measure_reference import (
    QuadraticWithNoise,
    balanced_signs,
    logistic_loss_fn,
    logistic_model,
    mean_loss,
)

from anisoada.measure import (
    ParameterLayout,
    SecantMaximum,
    aggregate_by_block,
    coordinate_secants,
    logistic_smoothness,
    sample_coordinates,
    secant_smoothness,
)


def _quadratic_gradient(hessian, b):
    return lambda w: hessian @ w + b


def test_secants_are_exact_on_a_diagonal_quadratic_for_any_move():
    rng = np.random.default_rng(0)
    h = rng.uniform(0.1, 10, size=50)
    grad = _quadratic_gradient(np.diag(h), rng.normal(size=50))
    w, w2 = rng.normal(size=50), rng.normal(size=50)
    secants = coordinate_secants(w, grad(w), w2, grad(w2))
    np.testing.assert_allclose(secants.ratio.numpy(), h, rtol=1e-10)
    np.testing.assert_allclose(secants.gradient_magnitude.numpy(), np.abs(grad(w)), rtol=1e-15)
    assert secants.n_skipped == 0 and secants.n_measured == 50


def test_secants_on_a_coupled_quadratic():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    hessian = a @ a.T - 2 * np.eye(4)  # indefinite, coupled
    grad = _quadratic_gradient(hessian, rng.normal(size=4))
    w = rng.normal(size=4)
    # Moving one coordinate measures exactly |H_jj|.
    for j in range(4):
        w2 = w.copy()
        w2[j] += 0.37
        secants = coordinate_secants(w, grad(w), w2, grad(w2))
        assert secants.ratio[j] == pytest.approx(abs(hessian[j, j]), rel=1e-10)
        assert secants.n_skipped == 3
    # Equal-size moves of every sign pattern: the maximum is the row sum Σ_k |H_jk|.
    tracker = SecantMaximum(4)
    for signs in itertools.product([-1.0, 1.0], repeat=4):
        w2 = w + 0.01 * np.array(signs)
        tracker.update(coordinate_secants(w, grad(w), w2, grad(w2)))
    np.testing.assert_allclose(tracker.estimate().numpy(), np.abs(hessian).sum(1), rtol=1e-9)
    assert tracker.n_pairs == 16 and tracker.n_skipped == 0


def test_move_thresholds_skip_and_count():
    w = torch.tensor([1.0, 1.0, 100.0, 5.0], dtype=torch.float64)
    w2 = w + torch.tensor([1e-3, 1e-9, 1e-3, 0.0], dtype=torch.float64)
    g, g2 = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    plain = coordinate_secants(w, g, w2, g2)
    assert plain.moved.tolist() == [True, True, True, False]  # no move is always skipped
    absolute = coordinate_secants(w, g, w2, g2, min_move=1e-6)
    assert absolute.moved.tolist() == [True, False, True, False] and absolute.n_skipped == 2
    relative = coordinate_secants(w, g, w2, g2, min_relative_move=1e-4)
    assert relative.moved.tolist() == [True, False, False, False]
    assert torch.isnan(relative.ratio[1:]).all() and relative.ratio[0] == pytest.approx(1e3)
    with pytest.raises(ValueError, match="thresholds"):
        coordinate_secants(w, g, w2, g2, min_move=-1.0)


def test_secant_smoothness_recovers_L_on_a_quadratic_model():
    L = np.array([4.0, 0.5, 2.0])
    model = QuadraticWithNoise(L, np.ones(3), np.zeros(3), np.array([1.0, -2.0, 0.5]))
    result = secant_smoothness(
        model, mean_loss, balanced_signs(4, 3), radius=0.1, n_perturbations=3
    )
    np.testing.assert_allclose(result.L.numpy(), L, rtol=1e-10)
    assert result.n_measured.tolist() == [3, 3, 3] and result.n_skipped == 0
    # The model is never modified.
    np.testing.assert_allclose(model.w.detach().numpy(), [1.0, -2.0, 0.5])


def test_secant_smoothness_stays_below_the_logistic_majorant():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 6)) * (rng.random((40, 6)) < 0.5)
    y = np.where(rng.random(40) < 0.5, -1.0, 1.0)
    model = logistic_model(X, rng.normal(size=6))
    result = secant_smoothness(
        model, logistic_loss_fn, (torch.tensor(X), torch.tensor(y)), radius=0.5, n_perturbations=20
    )
    majorant = logistic_smoothness(X)
    # Every secant ratio is |Σ_k H̄_jk z_k z_j| ≤ Σ_k |H̄_jk| ≤ Σ_k |XᵀX|_jk/(4n).
    assert np.all(result.L.numpy() <= majorant * (1 + 1e-12))
    assert np.all(result.L.numpy() > 0)


def test_coordinate_sampling_is_seeded_and_stratified():
    layout = ParameterLayout(("emb", "ln", "w"), ((1000, 8), (8,), (8, 8)))
    sample = sample_coordinates(layout, per_block=16, seed=3)
    assert sample.index.numel() == 16 + 8 + 16
    assert torch.equal(sample.index, torch.sort(sample.index).values)
    assert sample.index.unique().numel() == sample.index.numel()
    assert torch.bincount(sample.block).tolist() == [16, 8, 16]
    assert torch.equal(sample.block, layout.block_of(sample.index))
    again = sample_coordinates(layout, per_block=16, seed=3)
    other = sample_coordinates(layout, per_block=16, seed=4)
    assert torch.equal(sample.index, again.index) and not torch.equal(sample.index, other.index)
    uniform = sample_coordinates(layout, total=500, seed=0)
    assert uniform.index.unique().numel() == 500
    # Uniform sampling represents blocks in proportion to size: the embedding holds 99%.
    assert int((uniform.block == 0).sum()) > 450
    with pytest.raises(ValueError, match="exactly one"):
        sample_coordinates(layout, per_block=2, total=3)
    with pytest.raises(ValueError, match="Invalid total"):
        sample_coordinates(layout, total=layout.d + 1)


def test_aggregate_by_block_matches_numpy():
    layout = ParameterLayout(("a", "b"), ((2, 3), (4,)))
    values = np.arange(10, dtype=float)
    table = aggregate_by_block(values, layout)
    assert table["block"].tolist() == ["a", "b"]
    assert table["l1"].tolist() == [15.0, 30.0]
    assert table["max"].tolist() == [5.0, 9.0]
    assert table["l2"].tolist() == pytest.approx([np.sqrt(55.0), np.sqrt(36 + 49 + 64 + 81)])
    sampled = aggregate_by_block(np.array([1.0, np.nan, 3.0]), layout, index=np.array([0, 6, 9]))
    assert sampled["measured"].tolist() == [1, 1]
    # From a sample, l1 is estimated as size × mean.
    assert sampled["l1"].tolist() == [6.0, 12.0]
