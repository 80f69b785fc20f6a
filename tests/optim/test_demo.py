"""``anisoada demo``: the AdaGrad-vs-SGD table on an anisotropic quadratic."""

from __future__ import annotations

import csv

from anisoada.cli import main
from anisoada.optim._cli import DemoConfig, run_demo


def test_demo_command_prints_the_table_and_writes_the_csv(tmp_path, capsys) -> None:
    status = main(
        ["demo", "--dim", "200", "--samples", "2048", "--batch-sizes", "16", "256",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "adagrad" in printed and "sgd" in printed and "best lr" in printed
    with (tmp_path / "demo.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["batch_size"]), r["optimizer"]) for r in rows] == [
        (16, "adagrad"), (16, "sgd"), (256, "adagrad"), (256, "sgd"),
    ]  # fmt: skip
    assert [int(r["steps"]) for r in rows] == [128, 128, 8, 8]  # N = M·T


def test_adagrad_beats_tuned_sgd_on_the_anisotropic_problem_at_every_batch_size() -> None:
    # The paper's claim on a problem where it must hold: L_j ∝ j^-1.5 (ρ_L ≈ 2.6/d).
    config = DemoConfig(dim=200, sample_budget=2048, batch_sizes=(8, 256))
    rows = {(r.batch_size, r.optimizer): r for r in run_demo(config)}
    for batch_size in config.batch_sizes:
        adagrad, sgd = rows[batch_size, "adagrad"], rows[batch_size, "sgd"]
        assert adagrad.best_lr in config.lr_grid and sgd.best_lr in config.lr_grid
        assert adagrad.final_loss < 0.5 * sgd.final_loss < 0.5 * sgd.initial_loss


def test_demo_rejects_a_batch_larger_than_the_budget(capsys) -> None:
    assert main(["demo", "--samples", "64", "--batch-sizes", "128"]) == 2
    assert "batch size value: 128" in capsys.readouterr().err
