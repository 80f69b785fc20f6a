"""MeasurementSummary: scalars, the npz + json format, validation, and `anisoada bound --from`."""

import json

import numpy as np
import pytest
from measure_reference import QuadraticWithNoise, balanced_signs, mean_loss

from anisoada.cli import main
from anisoada.measure import (
    SUMMARY_FORMAT,
    EnvelopeFit,
    MeasurementSummary,
    load_summary,
    summary_paths,
)
from anisoada.measure.summarize import summarize_model


def _summary(**overrides):
    fields = {
        "L": np.array([1.0, 4.0, 0.5, 2.5]),
        "sigma": np.array([0.3, 0.0, 1.2, 0.4]),
        "lambda_max": 3.0,
        "hessian_diagonal": np.array([1.0, -0.5, 0.25, 2.0]),
        "block_names": ("w", "b"),
        "block_sizes": (3, 1),
        "conventions": {"L": "test vector"},
        "provenance": {"task": "unit"},
    }
    fields.update(overrides)
    return MeasurementSummary(**fields)


def test_scalars_are_the_norms_and_ratios():
    s = _summary()
    L, sigma = s.L, s.sigma
    expected = {
        "d": 4,
        "L_l1": 8.0,
        "L_linf": 4.0,
        "lambda_max": 3.0,
        "sigma_l1": 1.9,
        "sigma_l2": float(np.linalg.norm(sigma)),
        "rho_L": 8.0 / (4 * 4.0),
        "rho_sigma": 1.9 / (2.0 * float(np.linalg.norm(sigma))),
    }
    assert s.scalars() == pytest.approx(expected, rel=1e-15)
    assert np.array_equal(L, [1.0, 4.0, 0.5, 2.5])
    zero_noise = _summary(sigma=np.zeros(4))
    assert zero_noise.scalars()["rho_sigma"] is None  # 0/0: undefined, stored as null


def test_save_and_load_round_trip(tmp_path):
    s = _summary().with_block_envelopes(
        {
            "w": EnvelopeFit(0.5, 2.0, 0.99, 0.995, 100, 0, 1.0),
            "pooled": EnvelopeFit(0.7, 3.0, 0.99, 0.99, 150, 0, 1.0),
        },
        conventions={"L0_L1": "unit test"},
    )
    npz_path, json_path = s.save(tmp_path / "sub" / "run.v1")
    assert (npz_path.name, json_path.name) == ("run.v1.npz", "run.v1.json")
    document = json.loads(json_path.read_text())
    assert document["format"] == SUMMARY_FORMAT and document["npz"] == "run.v1.npz"
    assert document["d"] == 4 and document["L_l1"] == 8.0 and document["lambda_max"] == 3.0
    assert document["L0_l1"] == pytest.approx(3 * 0.5 + 0.7) and document["L1_linf"] == 3.0
    assert document["conventions"] == {"L": "test vector", "L0_L1": "unit test"}
    with np.load(npz_path, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == sorted(
            ["L", "sigma", "hessian_diagonal", "block_names", "block_sizes", "L0", "L1"]
        )
        assert arrays["L"].dtype == np.float64
        # Unpooled blocks get their own envelope, the rest the pooled one.
        assert arrays["L0"].tolist() == [0.5, 0.5, 0.5, 0.7]
    for given in (tmp_path / "sub" / "run.v1", npz_path, json_path):
        loaded = load_summary(given)
        assert loaded.scalars() == s.scalars()
        for name in ("L", "sigma", "hessian_diagonal", "L0", "L1"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(s, name))
        assert loaded.block_names == ("w", "b") and loaded.block_sizes == (3, 1)
        assert (loaded.L0_pooled, loaded.L1_pooled) == (0.7, 3.0)
        assert loaded.provenance["task"] == "unit"


def test_bound_command_reads_the_summary(tmp_path, capsys):
    npz_path, _ = _summary().save(tmp_path / "m")
    assert main(["bound", "--from", str(npz_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["d"] == 4
    assert printed["norms"]["L_l1"] == 8.0 and printed["norms"]["sigma_l1"] == pytest.approx(1.9)
    assert printed["inputs"]["lambda_max"] == 3.0  # from the JSON sibling


def test_invalid_summaries_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="sigma must have d=4"):
        _summary(sigma=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        _summary(L=np.array([1.0, -1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="non-finite"):
        _summary(L=np.array([1.0, np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="sum to d=4"):
        _summary(block_sizes=(2, 1))
    with pytest.raises(ValueError, match="together"):
        _summary(L0=np.ones(4))
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        load_summary(tmp_path / "missing")
    npz_path, json_path = _summary().save(tmp_path / "x")
    json_path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a measurement summary"):
        load_summary(npz_path)
    assert summary_paths("a/b.json") == summary_paths("a/b")


@pytest.mark.parametrize("smoothness", ["hutchinson", "secant"])
def test_summarize_model_recovers_known_L_sigma_and_lambda_max(smoothness):
    L = np.array([4.0, 0.5, 2.0, 9.0])
    sigma = np.array([1.0, 0.1, 3.0, 0.0])
    model = QuadraticWithNoise(L, sigma, np.zeros(4), np.array([1.0, -1.0, 0.5, 2.0]))
    summary = summarize_model(
        model,
        mean_loss,
        balanced_signs(16, 4),
        smoothness=smoothness,
        n_probes=3,
        power_iterations=200,
    )
    # ∇²f = diag(L): the Hessian diagonal, every secant and the top eigenvalue are exact.
    np.testing.assert_allclose(summary.L, L, rtol=1e-10)
    np.testing.assert_allclose(summary.hessian_diagonal, L, rtol=1e-12)
    np.testing.assert_allclose(summary.sigma, sigma, rtol=1e-12, atol=1e-14)
    assert summary.lambda_max == pytest.approx(9.0, rel=1e-4)
    assert summary.block_names == ("w",) and summary.block_sizes == (4,)
    assert (
        summary.conventions["L"]
        .lower()
        .startswith({"hutchinson": "|hutchinson", "secant": "max"}[smoothness])
    )


def test_per_block_norms_are_written_with_the_summary(tmp_path):
    summary = _summary()
    blocks = summary.per_block()
    # Block "w" = coordinates 0..2: L = (1, 4, 0.5), σ = (0.3, 0, 1.2); block "b" = coordinate 3.
    assert [b["block"] for b in blocks] == ["w", "b"]
    w, b = blocks
    assert w["size"] == 3 and w["L_l1"] == pytest.approx(5.5) and w["L_linf"] == 4.0
    assert w["rho_L"] == pytest.approx(5.5 / (3 * 4.0))
    assert w["sigma_l1"] == pytest.approx(1.5)
    assert w["sigma_l2"] == pytest.approx(np.sqrt(0.09 + 1.44))
    assert w["rho_sigma"] == pytest.approx(1.5 / (np.sqrt(3) * np.sqrt(1.53)))
    assert b["rho_L"] == pytest.approx(1.0) and b["rho_sigma"] == pytest.approx(1.0)
    _, json_path = summary.save(tmp_path / "s")
    assert json.loads(json_path.read_text())["blocks"] == blocks
    assert _summary(block_names=None, block_sizes=None).per_block() == []


_X = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [0.5, 0.0, 1.0]])
_Y = np.array([1.0, -1.0, 1.0, -1.0])


def _with(value, row, column):
    changed = _X.copy()
    changed[row, column] = value
    return changed


@pytest.mark.parametrize(
    ("X", "y", "w", "error", "message"),
    [
        (_with(np.nan, 1, 2), _Y, np.zeros(3), ValueError, "X holds 1 NaN or infinite"),
        (_with(1e308, 0, 0), _Y, np.zeros(3), ValueError, "up to 1e+308 in magnitude"),
        (np.zeros((0, 3)), _Y[:0], np.zeros(3), ValueError, "X is empty (shape (0, 3))"),
        (np.zeros((4, 3)), _Y, np.zeros(3), ValueError, "is all zeros"),
        (_X.tolist(), _Y, np.zeros(3), TypeError, "numpy array or a scipy sparse matrix"),
        (_X[0], _Y, np.zeros(3), ValueError, "X must be a 2-D (rows, features) matrix"),
        (_X[None], _Y, np.zeros(3), ValueError, "got shape (1, 4, 3)"),
        (_X * 1j, _Y, np.zeros(3), ValueError, "X must hold real numbers; got dtype complex128"),
        (_X, _Y, np.full(3, np.nan), ValueError, "w must be finite; entry 0 is nan"),
        (_X, _Y, np.full(3, 1e308), ValueError, "X @ w would overflow"),
        (_X, _Y, np.zeros(2), ValueError, "w must be 3 weights"),
        (_X, _Y, None, TypeError, "w must be a vector of numbers"),
        (_X, _Y[:3], np.zeros(3), ValueError, "y must be 4 labels"),
        (_X, np.array(["1", "-1", "1", "-1"]), np.zeros(3), TypeError, "y must be a vector of"),
        (_X, np.array([1.0, np.nan, 1.0, -1.0]), np.zeros(3), ValueError, "found [-1.0, 1.0, nan]"),
    ],
)
def test_summarize_logistic_checks_its_inputs_up_front(X, y, w, error, message):
    # Each of these ended in ArpackError, an overflow warning and inf, or an internal error.
    from anisoada.measure import summarize_logistic

    with pytest.raises(error) as caught:
        summarize_logistic(X, y, w)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_summarize_logistic_accepts_dense_sparse_and_integer_features_alike():
    import scipy.sparse as sp

    from anisoada.measure import summarize_logistic
    from anisoada.problems import logistic_smoothness

    w = np.array([0.5, -0.25, 1.0])
    dense = summarize_logistic(_X, _Y, w)
    np.testing.assert_allclose(dense.L, logistic_smoothness(_X), rtol=1e-15)
    sparse = summarize_logistic(sp.csr_matrix(_X), _Y.tolist(), w.tolist())
    np.testing.assert_allclose(sparse.sigma, dense.sigma, rtol=1e-12)
    assert sparse.lambda_max == pytest.approx(dense.lambda_max, rel=1e-9)
    integral = summarize_logistic((_X * 2).astype(np.int64), _Y, w / 2)
    np.testing.assert_allclose(integral.L, 4 * dense.L, rtol=1e-15)


def test_summarize_logistic_names_the_data_of_its_provenance():
    from anisoada.measure import summarize_logistic

    with pytest.raises(ValueError, match=r"^data big\.svm: X holds values up to 1e\+308"):
        summarize_logistic(_with(1e308, 0, 0), _Y, np.zeros(3), provenance={"data": "big.svm"})
