"""``reproduce lm``: Table 4 from the stored sweep and the report's Figure 2, traced to rows."""

from __future__ import annotations

import dataclasses
import json
import warnings

import matplotlib
import matplotlib.axes
import numpy as np
import pandas as pd
import pytest

import anisoada.experiments.runs.language_model as lm_runs
from anisoada.experiments import LRGrid
from anisoada.report.figures import figure2
from anisoada.reproduce import reproductions
from anisoada.reproduce.lm import QUICK, lm_table, paper_config, run_lm_reproduction
from anisoada.train import Budget


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm_reproduction")
    (spec,) = QUICK.problems
    spec = dataclasses.replace(
        spec,
        data=dataclasses.replace(spec.data, n_train=64, n_eval=16, max_length=96),
        noise_microbatches=2,  # micro-batches of 8 at batch 16, of 16 at batch 32
    )
    sgd, adagrad = QUICK.optimizers
    sweep = dataclasses.replace(
        QUICK,
        problems=(spec,),
        optimizers=(
            dataclasses.replace(sgd, lr_grid=LRGrid.explicit([0.3])),
            dataclasses.replace(adagrad, lr_grid=LRGrid.explicit([0.01, 0.03])),
        ),
        batch_sizes=(16, 32),
        budget=Budget(samples=64),
        evaluations=2,
    )
    # jobs=2: the runs train in two worker processes (the CPU path of `reproduce --jobs`).
    result = run_lm_reproduction("quick", out, sweep=sweep, progress=False, jobs=2)
    return out, result, sweep


def test_table4_holds_the_stored_final_losses_of_the_tuned_runs(reproduced):
    out, result, _ = reproduced
    table = pd.read_csv(out / "table4.csv")
    rows = pd.read_parquet(out / "sweep" / "results.parquet")
    assert sorted(zip(table["batch_size"], table["optimizer"])) == [
        (16, "adagrad"),
        (16, "sgd"),
        (32, "adagrad"),
        (32, "sgd"),
    ]
    # QUICK tunes on seed 0 and confirms at seed 1: only the chosen rate has seed 1's runs.
    assert set(rows.loc[rows["seed"] == 1, "lr"]) <= set(table["best_lr"])
    tuning = rows[rows["seed"] == 0].sort_values("step")
    for record in table.to_dict("records"):
        runs = tuning[
            (tuning["optimizer"] == record["optimizer"])
            & (tuning["batch_size"] == record["batch_size"])
        ]
        # Tail loss: the mean of the last 3 evaluations after the first (2 here: 2 evaluations).
        tails = runs.groupby("lr")["train_loss"].apply(lambda x: x.to_numpy()[1:][-3:].mean())
        assert record["best_lr"] == pytest.approx(tails.idxmin())
        chosen = rows[
            (rows["optimizer"] == record["optimizer"])
            & (rows["batch_size"] == record["batch_size"])
            & np.isclose(rows["lr"], record["best_lr"])
        ].sort_values("step")
        per_seed = chosen.groupby("seed")["train_loss"].apply(lambda x: x.to_numpy()[1:].mean())
        assert record["seeds"] == 2
        assert record["train_loss"] == pytest.approx(per_seed.mean(), rel=1e-12)
        assert (record["train_loss_min"], record["train_loss_max"]) == pytest.approx(
            (per_seed.min(), per_seed.max()), rel=1e-12
        )
        finals = chosen.groupby("seed")["train_loss"].last()
        assert record["final_train_loss"] == pytest.approx(finals.mean(), rel=1e-12)
        assert record["noise_k"] == 2  # the same k at both batch sizes
        if record["optimizer"] == "adagrad":
            assert record["verdict"] in ("adagrad", "sgd", "tie", "no verdict")
            assert record["verdict"] == "no verdict" or record["ratio_vs_sgd"] > 0
        sgd = table[(table["optimizer"] == "sgd") & (table["batch_size"] == record["batch_size"])]
        expected_gap = record["train_loss"] - float(sgd["train_loss"].iloc[0])
        assert record["gap_vs_sgd"] == pytest.approx(expected_gap, abs=1e-12, nan_ok=True)
        assert 0 < record["rho_sigma"] <= 1  # ‖σ‖₁ ≤ √d ‖σ‖₂ always
        tried = {"sgd": (0.3, 0.3, 1), "adagrad": (0.01, 0.03, 2)}[record["optimizer"]]
        assert (record["lr_min"], record["lr_max"], record["lrs_tried"]) == pytest.approx(tried)
        assert record["initialisation"] == "random init"
    # Steps follow the shared sample budget: 64 examples = 4 steps at 16, 2 steps at 32.
    assert set(rows.groupby("batch_size")["step"].max().items()) == {(16, 4), (32, 2)}
    assert table["lr_min"].dtype == np.float64 and table["lrs_tried"].dtype == np.int64
    assert "AdaGrad" in result.summary and set(result.files) == {
        "table4.csv",
        "vocabulary_audit.csv",
    }
    record = json.loads((out / "reproduction.json").read_text())
    assert "synthetic instructions" in record["stand_in"]
    assert "compact vocabulary" in record["stand_in"]


def test_figure_table_and_rerun_use_stored_results_only(reproduced, monkeypatch, tmp_path):
    out, first, sweep = reproduced

    def no_training(*args, **kwargs):
        raise AssertionError("nothing here may train")

    monkeypatch.setattr(lm_runs, "train", no_training)
    lines = []
    original_plot = matplotlib.axes.Axes.plot

    def recording_plot(axis, x, y, *args, **kwargs):
        lines.append((axis, kwargs.get("label", ""), list(x), list(y)))
        return original_plot(axis, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording_plot)
    path = figure2(out, tmp_path / "figure2.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Figure 2's training line (mean over seeds) ends at Table 4's final train loss.
    table = pd.read_csv(out / "table4.csv")
    train_lines = [line for line in lines if "train (at the parameters)" in line[1]]
    assert len(train_lines) == len(table) == 4
    for axis, label, x, y in train_lines:
        size = int(axis.get_title().removeprefix("batch size "))
        name = "adagrad" if label.startswith("AdaGrad") else "sgd"
        row = table[(table["batch_size"] == size) & (table["optimizer"] == name)].iloc[0]
        assert y[-1] == pytest.approx(row["final_train_loss"], rel=1e-12) and x[-1] == 64
    pd.testing.assert_frame_equal(lm_table(out), pd.read_csv(out / "table4.csv"), check_dtype=False)
    again = run_lm_reproduction("quick", out, sweep=sweep, progress=False)  # reuses every run
    assert again.summary == first.summary
    noise = pd.read_parquet(out / "sweep" / "noise.parquet")
    assert {"layer", "sigma_l1", "sigma_l2", "d"} <= set(noise.columns)
    assert np.all(noise["sigma_l1"] >= noise["sigma_l2"] - 1e-12)


def test_lm_target_is_registered_and_the_paper_preset_needs_alpaca(tmp_path, monkeypatch):
    assert reproductions()["lm"].run is run_lm_reproduction
    monkeypatch.setenv("ANISOADA_DATA", str(tmp_path))
    monkeypatch.delenv("ANISOADA_ALPACA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"alpaca_data\.json"):
        paper_config()
    (tmp_path / "alpaca").mkdir()
    (tmp_path / "alpaca" / "alpaca_data.json").write_text("[]")
    with warnings.catch_warnings():  # whether GPT-2 is cached here is tested below
        warnings.simplefilter("ignore", UserWarning)
        config = paper_config()
    (spec,) = config.problems
    assert spec.model == "gpt2" and config.batch_sizes == (256, 512)
    assert spec.data.n_eval == 1000  # as the module docstring says


def test_paper_preset_falls_back_to_a_labelled_random_init_without_local_weights(
    tmp_path, monkeypatch
):
    import huggingface_hub

    from anisoada.models import build_gpt2
    from anisoada.reproduce import lm as lm_reproduce

    monkeypatch.setenv("ANISOADA_ALPACA", str(tmp_path / "alpaca_data.json"))
    (tmp_path / "alpaca_data.json").write_text("[]")
    monkeypatch.delenv("ANISOADA_GPT2_WEIGHTS", raising=False)
    cache = tmp_path / "empty_hf_home"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache / "hub"))
    with pytest.warns(UserWarning, match="RANDOM initialisation of the GPT-2 124M"):
        config = paper_config()
    (spec,) = config.problems
    assert spec.weights is None and spec.model == "gpt2"
    assert spec.stand_in_for == "openai-community/gpt2"
    sweep_dir = tmp_path / "out" / "sweep"
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "sweep.json").write_text(json.dumps({"config": config.to_dict()}))
    label = lm_reproduce._initialisation(sweep_dir)
    assert label == "random init (stand-in for openai-community/gpt2)"

    # Weights in the cache (laid out as huggingface_hub does) are used, without a warning.
    snapshot = cache / "hub" / "models--openai-community--gpt2" / "snapshots" / ("b" * 40)
    build_gpt2("tiny").model.save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("b" * 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = paper_config()
    assert found.problems[0].weights == "openai-community/gpt2"
    assert found.problems[0].stand_in_for is None
    # An explicitly named directory is taken as given (building fails loudly if it is absent).
    monkeypatch.setenv("ANISOADA_GPT2_WEIGHTS", str(tmp_path / "mine"))
    assert paper_config().problems[0].weights == str(tmp_path / "mine")


def test_vocabulary_audit_splits_each_lead_into_used_and_unused_tokens(reproduced):
    """The compact sweep's audit: full-vocabulary runs from one initialisation at the tuned
    rates, the loss split exactly into the tokens that occur and the mass on the others."""
    out, _, _ = reproduced
    audit = pd.read_csv(out / "vocabulary_audit.csv")
    rows = pd.read_parquet(out / "vocabulary_audit" / "results.parquet")
    assert sorted(audit["optimizer"]) == ["adagrad", "sgd"]
    # One initialisation: both optimizers' step-0 evaluations are the same numbers.
    first = rows[rows["step"] == 0].set_index("optimizer")
    assert first.loc["sgd", "train_loss"] == first.loc["adagrad", "train_loss"]
    assert first.loc["sgd", "train_loss_unused"] > 0  # a random init spreads mass everywhere
    # The rates are those the compact sweep tuned at its smallest batch size.
    selection = pd.read_parquet(out / "sweep" / "selection.parquet")
    smallest = selection[selection["batch_size"] == selection["batch_size"].min()]
    tuned = dict(zip(smallest["optimizer"], smallest["best_lr"], strict=True))
    for row in audit.to_dict("records"):
        assert row["lr"] == pytest.approx(tuned[row["optimizer"]])
        assert row["train_loss_used"] == pytest.approx(
            row["train_loss"] - row["train_loss_unused"], abs=1e-12
        )
    adagrad = audit.set_index("optimizer").loc["adagrad"]
    sgd = audit.set_index("optimizer").loc["sgd"]
    assert adagrad["lead"] == pytest.approx(sgd["train_loss"] - adagrad["train_loss"])
    assert adagrad["unused_share"] == pytest.approx(adagrad["lead_unused"] / adagrad["lead"])
    assert sgd["lead"] == 0
