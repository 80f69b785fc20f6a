"""`anisoada measure` and `anisoada smoothness-check` end to end."""

import json

import numpy as np
import pytest

from anisoada.cli import main
from anisoada.data import make_sparse_logistic
from anisoada.measure import (
    load_summary,
    logistic_gradient,
    logistic_hessian_diagonal,
    logistic_noise,
    logistic_smoothness,
)
from anisoada.measure.smoothness_check import SmoothnessCheckResult

SYNTHETIC = ["--synthetic-n", "600", "--synthetic-d", "40", "--density", "0.2", "--seed", "3"]


def test_measure_logreg_synthetic_writes_the_closed_forms(tmp_path, capsys):
    stem = tmp_path / "syn"
    assert main(["measure", "--task", "logreg", "--out", str(stem), *SYNTHETIC]) == 0
    assert "rho_L" in capsys.readouterr().out
    problem = make_sparse_logistic(600, 40, density=0.2, seed=3)
    summary = load_summary(stem)
    zero = np.zeros(40)
    np.testing.assert_allclose(summary.L, logistic_smoothness(problem.X), rtol=1e-14)
    np.testing.assert_allclose(summary.sigma, logistic_noise(problem.X, problem.y, zero))
    np.testing.assert_allclose(
        summary.hessian_diagonal, logistic_hessian_diagonal(problem.X, problem.y, zero)
    )
    assert summary.provenance["point"] == "zero" and summary.provenance["n"] == 600


def test_measure_logreg_at_the_optimum_and_at_a_given_point(tmp_path):
    stem = tmp_path / "opt"
    assert (
        main(["measure", "--task", "logreg", "--out", str(stem), "--at", "optimum", *SYNTHETIC])
        == 0
    )
    summary = load_summary(stem)
    assert summary.provenance["gradient_linf_at_point"] < 1e-6
    w = np.linspace(-1, 1, 40)
    np.save(tmp_path / "w.npy", w)
    stem = tmp_path / "given"
    args = ["measure", "--task", "logreg", "--out", str(stem), "--at", str(tmp_path / "w.npy")]
    assert main([*args, *SYNTHETIC]) == 0
    problem = make_sparse_logistic(600, 40, density=0.2, seed=3)
    np.testing.assert_allclose(load_summary(stem).sigma, logistic_noise(problem.X, problem.y, w))
    assert load_summary(stem).provenance["gradient_linf_at_point"] == pytest.approx(
        np.abs(logistic_gradient(problem.X, problem.y, w)).max()
    )


def test_measure_bad_point_is_a_one_line_error(tmp_path, capsys):
    args = ["measure", "--task", "logreg", "--out", str(tmp_path / "x"), "--at", "nowhere.npy"]
    assert main([*args, *SYNTHETIC]) == 2
    assert "nowhere.npy" in capsys.readouterr().err


@pytest.mark.real_data
def test_measure_a9a_reproduces_the_known_constants(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("ANISOADA_DATA", str(tmp_path / "home"))  # parse cache goes here
    stem = tmp_path / "a9a"
    dataset = str(shared_data / "libsvm" / "a9a.xz")
    assert main(["measure", "--task", "logreg", "--dataset", dataset, "--out", str(stem)]) == 0
    scalars = json.loads((tmp_path / "a9a.json").read_text())
    assert scalars["d"] == 123
    # The numbers: SGD's best ℓ2 constant ≈ 1.6 against ‖L‖_∞ ≈ 3.3 on a9a.
    assert scalars["lambda_max"] == pytest.approx(1.5719, abs=1e-3)
    assert scalars["L_linf"] == pytest.approx(3.3052, abs=1e-3)
    assert scalars["lambda_max"] < scalars["L_linf"]


LM = ["--examples", "4", "--max-length", "96", "--seed", "1", "--device", "cpu"]


def test_measure_lm_and_smoothness_check_on_tiny_gpt2(tmp_path, capsys):
    check = tmp_path / "check"
    args = ["smoothness-check", "--out", str(check), "--steps", "2", *LM]
    assert main([*args, "--coordinates-per-tensor", "3", "--perturbation-radius", "1e-3"]) == 0
    result = SmoothnessCheckResult.load(check)
    assert result.config.steps == 2 and result.losses.size == 3
    assert (tmp_path / "check.png").stat().st_size > 10_000
    assert result.provenance["preset"] == "tiny" and result.provenance["n_examples"] == 4
    n_tensors = len(result.block_names)
    assert result.x.size + result.n_skipped == 3 * n_tensors * (2 + 3)
    (tmp_path / "check.png").unlink()
    assert main(["smoothness-check", "--out", str(check), "--replot"]) == 0
    assert (tmp_path / "check.png").is_file()

    stem = tmp_path / "lm"
    assert (
        main(
            [
                "measure",
                "--task",
                "lm",
                "--out",
                str(stem),
                *LM,
                "--probes",
                "2",
                "--power-iterations",
                "3",
                "--envelope-from",
                str(check),
            ]
        )
        == 0
    )
    summary = load_summary(stem)
    assert summary.d == sum(result.block_sizes)
    assert summary.block_names == result.block_names
    assert summary.provenance["task"] == "lm" and summary.provenance["compact_vocabulary"]
    assert summary.provenance["objective"].startswith("response-token mean")
    # Each coordinate carries its tensor's envelope from the smoothness check.
    first = result.fits.get(result.block_names[0], result.fits["pooled"])
    assert summary.L0[0] == first.L0 and summary.L1[0] == first.L1
    assert np.all(summary.sigma >= 0) and summary.sigma.max() > 0
