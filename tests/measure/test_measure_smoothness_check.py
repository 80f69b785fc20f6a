"""The Figure 1 core: full-batch Adam trajectory, secant points, envelopes, files, plot."""

import copy

import matplotlib.image
import numpy as np
import pytest
import torch
from measure_reference import QuadraticWithNoise, balanced_signs, mean_loss

from anisoada.measure.smoothness_check import (
    SmoothnessCheckConfig,
    SmoothnessCheckResult,
    plot_smoothness_check,
    run_smoothness_check,
)

L_TRUE = np.array([4.0, 0.5, 2.0, 9.0, 0.01])


class _WithIdleParameter(QuadraticWithNoise):
    """The quadratic plus a parameter the loss never reaches (grad None: Adam never moves it)."""

    def __init__(self):
        super().__init__(L_TRUE, np.full(5, 0.3), np.zeros(5), np.linspace(-1.0, 2.0, 5))
        self.idle = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))


def _reference_adam(model, batch, config):
    """Full-batch Adam written out with torch.optim.Adam directly: losses, final parameters."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
    losses = []
    for t in range(config.steps + 1):
        optimizer.zero_grad()
        loss = mean_loss(model, batch)
        loss.backward()
        losses.append(float(loss.detach()))
        if t < config.steps:
            optimizer.step()
    return np.array(losses), model.w.detach().clone()


def test_secant_points_are_exact_on_a_quadratic_and_skips_are_counted(tmp_path):
    model = _WithIdleParameter()
    batch = balanced_signs(8, 5)
    config = SmoothnessCheckConfig(
        steps=6, lr=0.05, coordinates_per_tensor=10, perturbation_radius=1e-2, coverage=1.0
    )
    expected_losses, expected_w = _reference_adam(model, batch, config)
    result = run_smoothness_check(model, mean_loss, batch, config)

    np.testing.assert_allclose(result.losses, expected_losses, rtol=1e-13)
    torch.testing.assert_close(model.w.detach(), expected_w)  # ends at the last iterate
    assert model.training  # mode restored
    assert result.block_names == ("w", "idle") and result.block_sizes == (5, 3)
    trajectory, perturbed = result.kind == 0, result.kind == 1
    # Consecutive pairs t = 0..5: the 5 quadratic coordinates are measured; the idle parameter
    # never moves (Adam skips parameters without gradient), so its 3 coordinates are skipped.
    assert trajectory.sum() == 6 * 5 and set(result.block[trajectory].tolist()) == {0}
    assert result.skipped[:, 0].tolist() == [3] * 6 + [0]
    # Perturbed pairs t = 0..6 move everything; the idle coordinates have ratio |0 − 0|/r = 0.
    assert perturbed.sum() == 7 * 8 and result.skipped[:, 1].tolist() == [0] * 7
    quadratic = result.block == 0
    np.testing.assert_allclose(result.y[quadratic], L_TRUE[result.coordinate[quadratic]], rtol=1e-9)
    assert np.all(result.y[~quadratic] == 0.0)
    assert sorted(set(result.iteration.tolist())) == list(range(7))
    # x is |∂_j f(w_t)| at the base point: at t = 0, L ⊙ w_0 plus the mean noise term (0 here).
    first = trajectory & (result.iteration == 0)
    w0 = np.linspace(-1.0, 2.0, 5)
    np.testing.assert_allclose(
        result.x[first], np.abs(L_TRUE * w0)[result.coordinate[first]], rtol=1e-12
    )

    npz_path, json_path = result.save(tmp_path / "check")
    assert npz_path.name == "check.npz"
    loaded = SmoothnessCheckResult.load(json_path)
    for name in ("x", "y", "iteration", "coordinate", "block", "kind", "losses", "skipped"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))
    assert loaded.config == config
    assert loaded.fits["pooled"] == result.fits["pooled"]
    assert loaded.fits["pooled"].covered_fraction == 1.0
    png = plot_smoothness_check(result, tmp_path / "check.png")
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 400


def test_chunked_full_gradient_gives_the_same_trajectory():
    batch = balanced_signs(8, 5)
    config = SmoothnessCheckConfig(steps=3, lr=0.05)
    whole = run_smoothness_check(_WithIdleParameter(), mean_loss, batch, config)
    chunked = run_smoothness_check(
        _WithIdleParameter(),
        mean_loss,
        batch,
        SmoothnessCheckConfig(steps=3, lr=0.05, data_chunk_size=3),
    )
    np.testing.assert_allclose(chunked.losses, whole.losses, rtol=1e-13)
    np.testing.assert_allclose(chunked.y, whole.y, rtol=1e-9)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"steps": 0}, "Invalid steps"),
        ({"lr": 0.0}, "Invalid lr"),
        ({"coverage": 1.5}, "Invalid coverage"),
        ({"perturbation_radius": -1.0}, "Invalid perturbation_radius"),
        ({"coordinates_per_tensor": 0}, "Invalid coordinates_per_tensor"),
        # Non-finite, boolean or text values: each compared as a number would pass or crash.
        ({"min_relative_move": float("nan")}, "Invalid min_relative_move: nan"),
        ({"min_move": float("inf")}, "Invalid min_move: inf"),
        ({"lr": float("inf")}, "Invalid lr: inf"),
        ({"lr": "1e-3"}, "Invalid lr: '1e-3'"),
        ({"eps": float("nan")}, "Invalid eps: nan"),
        ({"betas": (0.9, float("nan"))}, "Invalid betas"),
        ({"betas": "ab"}, "Invalid betas"),
        ({"steps": True}, "Invalid steps: True"),
        ({"coverage": float("nan")}, "Invalid coverage: nan"),
        ({"perturbation_radius": float("inf")}, "Invalid perturbation_radius: inf"),
        ({"data_chunk_size": 2.5}, "Invalid data_chunk_size: 2.5"),
        ({"seed": -1}, "Invalid seed: -1"),
    ],
)
def test_config_validation(bad, message):
    with pytest.raises(ValueError, match=message):
        SmoothnessCheckConfig(**bad)


def test_divergence_is_reported():
    model = QuadraticWithNoise(np.array([1e200]), np.zeros(1), np.zeros(1), np.array([1e200]))
    with pytest.raises(ValueError, match="lower lr"):
        run_smoothness_check(model, mean_loss, balanced_signs(2, 1), SmoothnessCheckConfig(steps=2))
