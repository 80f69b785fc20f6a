"""The logistic-regression reproduction on a tiny problem: tables, Table 2 values, figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anisoada.experiments import DatasetSpec, LRGrid, OptimizerSpec, SweepConfig, load_dataset
from anisoada.problems.logistic import (
    logistic_gradient,
    logistic_lambda_max,
    logistic_noise,
    logistic_smoothness,
)
from anisoada.reproduce import ReproductionOutput, reproductions, run_reproductions
from anisoada.reproduce.logreg import preset_config, ratio_winner, results_table, run_logreg
from anisoada.train import Budget

TINY = (
    DatasetSpec.create("tiny", "synthetic", {"n": 300, "n_test": 100, "d": 20, "density": 0.15}),
    DatasetSpec.create(
        "tiny-rotated",
        "rotated",
        {"n": 300, "n_test": 100, "d": 20, "density": 0.15},
        stream="tiny",
    ),
)


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory):
    out = tmp_path_factory.mktemp("logreg")
    config = SweepConfig(
        name="tiny",
        problems=TINY,
        optimizers=tuple(OptimizerSpec.create(n) for n in ("sgd", "adagrad", "adagrad_norm")),
        batch_sizes=(8, 64),
        lr_grid=LRGrid(low=0.01, high=10.0, per_decade=1, max_extensions=1),
        budget=Budget(epochs=2.0),
        evaluations=3,
        seeds=2,
    )
    return run_logreg("quick", out, progress=False, config=config), out


def test_outputs_are_tables_and_the_report_draws_the_figures(reproduction, tmp_path):
    from anisoada.report.figures import logreg_figures

    output, out = reproduction
    for name in ("results", "table2", "predicted_vs_observed"):
        assert (out / f"{name}.csv").is_file()
    # The target stores tables only; figures are the report's, drawn from those tables.
    assert not list(out.glob("**/*.png")) and not list(out.glob("*.md"))
    assert set(output.tables.values()) == {out / "results.csv", out / "predicted_vs_observed.csv"}
    drawn = logreg_figures(out, tmp_path / "figures")
    # best-vs-batch, predicted-vs-observed, and curves + sensitivity per dataset.
    assert len(drawn) == 2 + 2 * len(TINY)
    for path in drawn.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "reproduction.json").read_text())
    assert record["target"] == "logreg"
    assert set(record["stand_in"]) == {"tiny", "tiny-rotated"}


def test_table2_equals_the_closed_forms(reproduction):
    _, out = reproduction
    table2 = pd.read_csv(out / "table2.csv").set_index("dataset")
    for spec in TINY:
        data = load_dataset(spec)
        X, y = data.X, data.y
        L = logistic_smoothness(X)
        row = table2.loc[spec.name]
        assert row["L_l1"] == pytest.approx(L.sum(), rel=1e-12)
        assert row["L_linf"] == pytest.approx(L.max(), rel=1e-12)
        assert row["lambda_max"] == pytest.approx(logistic_lambda_max(X), rel=1e-6)
        assert row["rho_L"] == pytest.approx(L.sum() / (L.size * L.max()), rel=1e-12)
        sigma = logistic_noise(X, y, np.zeros(X.shape[1]))
        assert row["sigma_l1_init"] == pytest.approx(sigma.sum(), rel=1e-12)
        assert row["sigma_l2_init"] == pytest.approx(np.linalg.norm(sigma), rel=1e-12)
        w_star = np.load(out / "measure" / f"{spec.name}_minimiser.npz")["w_star"]
        assert np.abs(logistic_gradient(X, y, w_star)).max() < 1e-7
        sigma_opt = logistic_noise(X, y, w_star)
        assert row["sigma_l1_opt"] == pytest.approx(sigma_opt.sum(), rel=1e-9)
        assert row["D_inf"] == pytest.approx(np.abs(w_star).max(), rel=1e-12)
        # ρ_L ≤ 1 with equality iff isotropic; the rotation makes L less anisotropic here.
        assert 0 < row["rho_L"] <= 1
    assert table2.loc["tiny", "rho_L"] < table2.loc["tiny-rotated", "rho_L"]


def test_results_table_is_consistent_with_the_selection_and_the_verdicts(reproduction):
    _, out = reproduction
    results = pd.read_csv(out / "results.csv")
    selection = pd.read_parquet(out / "sweep" / "selection.parquet")
    verdicts = pd.read_csv(out / "sweep" / "verdicts.csv")
    f_star = pd.read_csv(out / "table2.csv").set_index("dataset")["f_star"]
    references = pd.read_csv(out / "sweep" / "references.csv").set_index("dataset")["f_star"]
    # The sweep's f* and Table 2's are the same L-BFGS optimum.
    assert references.to_dict() == pytest.approx(f_star.to_dict(), rel=1e-12)
    for row in results.to_dict("records"):
        mine = selection[
            (selection["dataset"] == row["dataset"])
            & (selection["batch_size"] == row["batch_size"])
        ].set_index("optimizer")
        assert row["sgd_loss"] == mine.loc["sgd", "train_loss"]
        assert row["sgd_loss_min"] <= row["sgd_loss"] <= row["sgd_loss_max"]
        verdict = verdicts[
            (verdicts["dataset"] == row["dataset"])
            & (verdicts["batch_size"] == row["batch_size"])
            & (verdicts["optimizer"] == "adagrad")
        ].iloc[0]
        # The winner is the paired verdict of AdaGrad against SGD, stored as a key or "tie".
        assert row["winner"] == verdict["verdict"] and row["winner"] in ("adagrad", "sgd", "tie")
        assert row["adagrad_vs_sgd"] == pytest.approx(verdict["ratio"], rel=1e-12)
        if row["winner"] == "adagrad":
            assert row["adagrad_vs_sgd_high"] < 1
        # f* is the minimum: no tuned run is below it (up to the solver's tolerance).
        assert mine["train_loss"].min() >= f_star[row["dataset"]] - 1e-9
    comparison = pd.read_csv(out / "predicted_vs_observed.csv")
    assert len(comparison) == len(results)
    assert comparison["observed"].to_numpy() == pytest.approx(results["adagrad_vs_sgd"].to_numpy())
    assert list(comparison["observed_winner"]) == list(results["winner"])


def test_winners_of_ratios_are_not_applicable_when_the_ratio_is_nan():
    assert [ratio_winner(r) for r in (0.3, 1.0, 4.0)] == ["adagrad", "sgd", "sgd"]
    assert ratio_winner(float("nan")) == "n/a"
    assert ratio_winner(float("inf")) == "n/a"


def test_results_table_loops_over_the_sweeps_optimizers_and_handles_divergence():
    nan = float("nan")
    selection = pd.DataFrame(
        {
            "dataset": ["p"] * 4,
            "batch_size": [8, 8, 16, 16],
            "optimizer": ["sgd", "adagrad-optax", "sgd", "adagrad-optax"],
            "train_loss": [0.5, 0.4, nan, nan],
            "best_lr": [0.1, 1.0, nan, nan],
            "test_accuracy": [0.8, 0.9, nan, nan],
            "at_edge": [False, True, True, True],
        }
    )
    table2 = pd.DataFrame({"dataset": ["p"], "f_star": [0.25]})
    verdicts = pd.DataFrame(
        {
            "dataset": ["p"],
            "batch_size": [8],
            "optimizer": ["adagrad-optax"],
            "baseline": ["sgd"],
            "ratio": [0.6],
            "ratio_low": [0.5],
            "ratio_high": [0.7],
            "verdict": ["adagrad-optax"],
        }
    )
    results = results_table(selection, verdicts, table2, ["sgd", "adagrad-optax"])
    assert list(results["winner"]) == ["adagrad-optax", "no verdict"]
    assert results.loc[0, "adagrad-optax_vs_sgd_high"] == 0.7
    assert results.loc[0, "adagrad-optax_gap"] == pytest.approx(0.15)
    assert results.loc[0, "sgd_lr"] == 0.1
    assert "adagrad_vs_sgd" not in results  # no optimizer labelled "adagrad"


def test_rerun_reuses_everything(reproduction):
    output, out = reproduction
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("sweep/runs/*/run.json")}
    again = run_logreg("quick", out, progress=False, config=_config_of(out))
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again.summary == output.summary


def _config_of(out):
    from anisoada.experiments import load_sweep_config

    # The sweep's own resolved configuration, read back from the TOML it wrote.
    return load_sweep_config(out / "sweep" / "sweep.toml")


def test_registry_and_presets():
    assert "logreg" in reproductions()
    quick = preset_config("quick")
    assert [(d.name, d.source) for d in quick.problems] == [
        ("a9a", "libsvm"),
        ("synthetic", "synthetic"),
        ("rotated", "rotated"),
    ]
    assert quick.seeds >= 3 and quick.budget.samples == 48_000
    assert {o.name for o in quick.optimizers} == {"sgd", "adagrad", "adagrad_norm"}
    paper = preset_config("paper")
    assert paper.batch_sizes[0] == 8 and paper.batch_sizes[-1] == 4096
    assert [d.name for d in paper.problems][:2] == ["a9a", "w8a"]
    assert paper.seeds >= 5
    with pytest.raises(ValueError, match="preset"):
        preset_config("huge")
    with pytest.raises(ValueError, match="unknown reproduction target"):
        run_reproductions(["nope"], "quick", "unused")


def _reproduce_args(*argv):
    from anisoada.cli import build_parser

    return build_parser().parse_args(["reproduce", *argv])


def test_under_torchrun_only_the_lm_target_runs_and_only_rank_0_reports(
    monkeypatch, tmp_path, capsys
):
    import anisoada.reproduce as reproduce_module
    from anisoada.cli.sweep import _run_reproduce

    calls = []

    def fake_run(names, preset, out, *, jobs, progress):
        calls.append((names, progress))
        return [ReproductionOutput("lm", preset, Path(out) / "lm", 1.0, {}, "LM SUMMARY")]

    monkeypatch.setattr(reproduce_module, "run_reproductions", fake_run)
    monkeypatch.setattr("anisoada.report.build_report", lambda out: pytest.fail("rank 1 report"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    for targets in ([], ["all"], ["logreg"], ["lm", "theory"]):
        with pytest.raises(ValueError, match="without torchrun"):
            _run_reproduce(_reproduce_args(*targets, "--out", str(tmp_path)))
    assert calls == []
    # Rank 1 trains but neither prints nor builds the report.
    assert _run_reproduce(_reproduce_args("lm", "--out", str(tmp_path))) == 0
    assert calls == [(["lm"], False)]
    assert capsys.readouterr().out == ""
    # Rank 0 prints the summary and builds the report.
    monkeypatch.setenv("RANK", "0")
    built = []
    monkeypatch.setattr(
        "anisoada.report.build_report",
        lambda out: built.append(out) or type("P", (), {"html": out, "markdown": out})(),
    )
    assert _run_reproduce(_reproduce_args("lm", "--out", str(tmp_path))) == 0
    assert "LM SUMMARY" in capsys.readouterr().out
    assert built == [tmp_path]
    # Without torchrun every target is allowed.
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    assert _run_reproduce(_reproduce_args("logreg", "--no-report", "--out", str(tmp_path))) == 0
    assert calls[-1] == (["logreg"], True)
