"""The ``theory`` and ``smoothness`` reproduction targets: values traced to their inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from report_fixtures import LM_TABLE4, TINY_SMOOTHNESS, lm_noise_expected

from anisoada.measure.summary import load_summary
from anisoada.reproduce import reproductions
from anisoada.reproduce.logreg import preset_config
from anisoada.reproduce.smoothness import run_smoothness
from anisoada.reproduce.theory import run_theory
from anisoada.theory import predict, table1


def test_targets_are_registered_with_theory_after_what_it_reads():
    names = list(reproductions())
    assert {"smoothness", "theory"} <= set(names)
    assert names.index("theory") > max(names.index("logreg"), names.index("lm"))


def _measured(root, name):
    measure = root / "logreg" / "measure"
    init, optimum = (
        load_summary(measure / f"{name}_init.npz"),
        load_summary(measure / f"{name}_optimum.npz"),
    )
    row = pd.read_csv(root / "logreg" / "table2.csv").set_index("dataset").loc[name]
    return init.L, np.maximum(init.sigma, optimum.sigma), row


@pytest.mark.parametrize("name", ["synthetic", "rotated"])
def test_predictions_are_the_bounds_at_the_stored_measurements(stored_results, name):
    L, sigma, row = _measured(stored_results, name)
    budget = 2.0 * row["n"]  # TINY_SWEEP: 2 epochs
    expected = predict(
        L=L,
        sigma=sigma,
        batch_sizes=[4, 32],
        budget=budget,
        D_inf=row["D_inf"],
        lambda_max=row["lambda_max"],
    ).set_index(["batch_size", "variant"])
    stored = pd.read_csv(stored_results / "theory" / f"predicted_{name}.csv")
    assert stored["budget"].unique().tolist() == [budget]
    assert stored["batch_size"].min() == 1.0 and stored["batch_size"].max() == budget
    stored = stored.set_index(["batch_size", "variant"])
    for key in expected.index:
        for column in ("bias", "noise", "bound", "ratio_to_sgd", "ratio_to_sgd_lambda_max"):
            assert stored.loc[key, column] == pytest.approx(expected.loc[key, column], rel=1e-12)
    # The logreg target evaluates the same bound ratio by its own path.
    comparison = pd.read_csv(stored_results / "logreg" / "predicted_vs_observed.csv")
    for record in comparison[comparison["dataset"] == name].to_dict("records"):
        ratio = stored.loc[(float(record["batch_size"]), "adagrad"), "ratio_to_sgd"]
        assert ratio == pytest.approx(record["predicted_box"], rel=1e-12)


@pytest.mark.parametrize("name", ["synthetic", "rotated"])
def test_measured_rates_are_the_anisotropy_ratios(stored_results, name):
    """In the box framing (D₂ = √d·D∞) the convex bias and noise ratios are ρ_L and ρ_σ."""
    L, sigma, row = _measured(stored_results, name)
    rates = pd.read_csv(stored_results / "theory" / f"rates_{name}.csv")
    adagrad = rates[(rates["setting"] == "convex") & (rates["variant"] == "adagrad")].iloc[0]
    assert adagrad["bias_ratio"] == pytest.approx(L.sum() / (L.size * L.max()), rel=1e-12)
    assert adagrad["bias_ratio"] == pytest.approx(row["rho_L"], rel=1e-12)
    rho_sigma = sigma.sum() / (np.sqrt(sigma.size) * np.linalg.norm(sigma))
    assert adagrad["noise_ratio"] == pytest.approx(rho_sigma, rel=1e-12)


def test_table1_files_are_the_theory_renderings(stored_results):
    theory = stored_results / "theory"
    assert (theory / "table1.md").read_text() == table1("markdown")
    assert (theory / "table1.html").read_text() == table1("html")
    assert (theory / "table1.tex").read_text() == table1("latex")
    symbolic = pd.read_csv(theory / "table1.csv")
    assert list(symbolic["method"][:3]) == ["AdaGrad", "SGD", "AdaGrad-Norm"]
    assert symbolic["rate"][0] == "‖L‖₁D∞²/T + ‖σ‖₁D∞/√(MT)"


def test_lm_noise_table_is_rho_sigma_of_the_tuned_runs(stored_results):
    table = pd.read_csv(stored_results / "theory" / "lm_noise.csv")
    assert len(table) == len(LM_TABLE4) * 2
    expected = lm_noise_expected()
    for record in table.to_dict("records"):
        first, last = expected[record["layer"]]
        assert record["rho_sigma_first"] == pytest.approx(first, rel=1e-12)
        assert record["rho_sigma_last"] == pytest.approx(last, rel=1e-12)
        assert record["rho_sigma_mean"] == pytest.approx((first + last) / 2, rel=1e-12)
        assert record["noise_ratio_ceiling"] == pytest.approx(np.sqrt((first + last) / 2))
        assert record["steps"] == 2


def test_theory_without_logreg_uses_the_exact_synthetic_problem(tmp_path):
    from anisoada.data import make_sparse_logistic
    from anisoada.experiments import DatasetSpec, load_dataset
    from anisoada.experiments.runs.logistic import SYNTHETIC_DEFAULTS

    output = run_theory("quick", tmp_path / "theory", progress=False)
    record = json.loads((tmp_path / "theory" / "reproduction.json").read_text())
    assert record["fallback_synthetic"] and "embedded synthetic" in record["notes"][0]
    assert "note: no stored logreg measurements" in output.summary
    (problem,) = record["problems"]
    assert problem["stand_in"] and problem["budget"] == preset_config("quick").budget.samples
    # Closed forms, written out densely: L_j = (1/(4n)) Σ_k |(XᵀX)_jk|; at w = 0 a sample's
    # gradient is −y_i x_i / 2, and σ_j is its population standard deviation over the rows.
    data = load_dataset(DatasetSpec.create("synthetic", "synthetic"))
    X, y = data.X.toarray(), data.y
    L = np.abs(X.T @ X).sum(axis=1) / (4 * X.shape[0])
    sigma = (-0.5 * y[:, None] * X).std(axis=0)
    assert problem["L_l1"] == pytest.approx(L.sum(), rel=1e-12)
    assert problem["L_linf"] == pytest.approx(L.max(), rel=1e-12)
    assert problem["sigma_l1"] == pytest.approx(sigma.sum(), rel=1e-10)
    assert problem["sigma_l2"] == pytest.approx(np.linalg.norm(sigma), rel=1e-10)
    # The generator's own options (the sizes, the twin's rotation and the test metrics are the
    # data set's, not the generator's).
    generator = ("d", "exponent", "density", "label_noise", "margin_std", "seed")
    options = {k: SYNTHETIC_DEFAULTS[k] for k in generator}
    planted = make_sparse_logistic(
        SYNTHETIC_DEFAULTS["n"] + SYNTHETIC_DEFAULTS["n_test"], **options
    ).w_star
    assert problem["D_inf"] == pytest.approx(np.abs(planted).max(), rel=1e-15)
    assert (tmp_path / "theory" / "predicted_synthetic.csv").is_file()
    assert not list((tmp_path / "theory").glob("**/*.png"))  # figures are the report's
    assert not (tmp_path / "theory" / "lm_noise.csv").exists()


def test_smoothness_envelope_table_is_the_stored_fits(stored_results):
    smoothness = stored_results / "smoothness"
    document = json.loads((smoothness / "figure1.json").read_text())
    table = pd.read_csv(smoothness / "envelope.csv").set_index("tensor")
    assert list(table.index) == list(document["envelope"])  # pooled first, then each tensor
    for name, fit in document["envelope"].items():
        assert table.loc[name, "L0"] == fit["L0"] and table.loc[name, "L1"] == fit["L1"]
        assert table.loc[name, "covered_fraction"] >= fit["coverage"]
    record = json.loads((smoothness / "reproduction.json").read_text())
    assert record["stand_in"] == [
        "a randomly initialised 'tiny' GPT-2, not the pretrained 124M model",
        "synthetic instructions, not Stanford Alpaca",
        "a softmax over the tokens the subset uses (compact vocabulary)",
    ]
    assert record["n_points"] == document["n_points"] and record["reused"] is False


def test_smoothness_reuses_stored_points_and_reruns_for_new_settings(stored_results, tmp_path):
    import dataclasses

    out = tmp_path / "smoothness"
    shutil.copytree(stored_results / "smoothness", out)
    before = np.load(out / "figure1.npz")["y"]
    run_smoothness("quick", out, settings=TINY_SMOOTHNESS, progress=False)
    record = json.loads((out / "reproduction.json").read_text())
    assert record["reused"] is True
    np.testing.assert_array_equal(np.load(out / "figure1.npz")["y"], before)

    fewer = dataclasses.replace(TINY_SMOOTHNESS, steps=2)
    run_smoothness("quick", out, settings=fewer, progress=False)
    record = json.loads((out / "reproduction.json").read_text())
    assert record["reused"] is False
    assert np.load(out / "figure1.npz")["losses"].size == 3  # steps + 1 full gradients


def test_smoothness_paper_preset_says_where_alpaca_goes(tmp_path, monkeypatch):
    monkeypatch.setenv("ANISOADA_ALPACA", str(tmp_path / "alpaca_data.json"))
    with pytest.raises(FileNotFoundError, match="ANISOADA_ALPACA"):
        run_smoothness("paper", tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="preset must be one of"):
        run_smoothness("huge", tmp_path / "out", progress=False)
