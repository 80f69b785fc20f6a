"""``anisoada demo``: the AdaGrad-vs-SGD table on an anisotropic quadratic, through the sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anisoada.cli import main
from anisoada.cli.demo import DemoConfig, demo_sweep
from anisoada.experiments import run_sweep


def test_demo_command_prints_the_table_and_keeps_the_sweep(tmp_path, capsys) -> None:
    status = main(
        ["demo", "--dim", "200", "--samples", "2048", "--batch-sizes", "16", "256",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "adagrad" in printed and "sgd" in printed and "best lr" in printed
    selection = pd.read_csv(tmp_path / "selection.csv")
    assert sorted(zip(selection["batch_size"], selection["optimizer"])) == [
        (16, "adagrad"), (16, "sgd"), (256, "adagrad"), (256, "sgd"),
    ]  # fmt: skip
    rows = pd.read_parquet(tmp_path / "results.parquet")
    assert set(rows.groupby("batch_size")["step"].max().items()) == {(16, 128), (256, 8)}  # N=MT


def test_adagrad_beats_tuned_sgd_on_the_anisotropic_problem_at_every_batch_size(tmp_path) -> None:
    # The paper's claim on a problem where it must hold: L_j ∝ (j+1)^-1.5 (ρ_L ≈ 2.6/d).
    config = DemoConfig(dim=200, sample_budget=2048, batch_sizes=(8, 256))
    sweep = demo_sweep(config)
    result = run_sweep(sweep, tmp_path, progress=False)
    best = result.selection.set_index(["batch_size", "optimizer"])
    initial = 0.5 * float(np.sum(sweep.problems[0].problem().L))  # f(w* + 1)
    assert result.rows.loc[result.rows["step"] == 0, "train_loss"].to_numpy() == pytest.approx(
        initial
    )
    for batch_size in config.batch_sizes:
        adagrad = best.loc[(batch_size, "adagrad"), "train_loss"]
        sgd = best.loc[(batch_size, "sgd"), "train_loss"]
        assert adagrad < 0.5 * sgd < 0.5 * initial
        assert not best.loc[(batch_size, "adagrad"), "at_edge"]


def test_demo_rejects_a_batch_larger_than_the_budget(capsys) -> None:
    assert main(["demo", "--samples", "64", "--batch-sizes", "128"]) == 2
    assert "less than one step at batch size 128" in capsys.readouterr().err
