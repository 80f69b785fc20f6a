"""``reproduce lm``: Figure 2 and Table 4 written from the stored sweep, values traced to rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import anisoada.experiments.lm_run as lm_run
from anisoada.experiments.lm_reproduce import (
    QUICK,
    lm_figure,
    lm_table,
    paper_config,
    run_lm_reproduction,
)
from anisoada.experiments.reproduce import reproductions


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm_reproduction")
    base = dataclasses.replace(
        QUICK.base,
        data=dataclasses.replace(QUICK.base.data, n_train=64, n_eval=16, max_length=96),
        micro_batch_size=8,
        budget_samples=64,
        evaluations=2,
    )
    sweep = dataclasses.replace(
        QUICK,
        base=base,
        batch_sizes=(16, 32),
        lr_grids=(("sgd", (1.0,)), ("adagrad", (0.01, 0.03))),
        max_extensions=0,
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
    finals = rows.sort_values("step").groupby(["optimizer", "batch_size", "lr"]).tail(1)
    for record in table.to_dict("records"):
        candidates = finals[
            (finals["optimizer"] == record["optimizer"])
            & (finals["batch_size"] == record["batch_size"])
        ]
        best = candidates.loc[candidates["train_loss"].idxmin()]
        assert record["best_lr"] == pytest.approx(best["lr"])
        assert record["train_loss"] == pytest.approx(best["train_loss"], rel=1e-12)
        assert record["eval_loss"] == pytest.approx(best["eval_loss"], rel=1e-12)
        sgd = table[(table["optimizer"] == "sgd") & (table["batch_size"] == record["batch_size"])]
        expected_gap = record["train_loss"] - float(sgd["train_loss"].iloc[0])
        assert record["gap_vs_sgd"] == pytest.approx(expected_gap, abs=1e-12)
        assert 0 < record["rho_sigma"] <= 1  # ‖σ‖₁ ≤ √d ‖σ‖₂ always
    # Steps follow the shared sample budget: 64 examples = 4 steps at 16, 2 steps at 32.
    assert set(rows.groupby("batch_size")["step"].max().items()) == {(16, 4), (32, 2)}
    assert "| batch | optimizer | tuned lr |" in (out / "table4.md").read_text()
    assert "AdaGrad" in result.summary and set(result.files) == {
        "table4.csv",
        "table4.md",
        "figure2.png",
    }


def test_figure_table_and_rerun_use_stored_results_only(reproduced, monkeypatch):
    out, _, sweep = reproduced

    def no_training(*args, **kwargs):
        raise AssertionError("nothing here may train")

    monkeypatch.setattr(lm_run, "train", no_training)
    path = lm_figure(out)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pd.testing.assert_frame_equal(lm_table(out), pd.read_csv(out / "table4.csv"), check_dtype=False)
    again = run_lm_reproduction("quick", out, sweep=sweep, progress=False)  # reuses every run
    assert (out / "table4.md").read_text().endswith(again.summary.split("\n\n", 1)[1])
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
    config = paper_config()
    assert config.base.model == "gpt2" and config.batch_sizes == (256, 512)
    assert config.base.weights == "openai-community/gpt2"
