"""Cell runs: every optimizer, seed and rate of a batch size in one pass, with the ordinary rows.

The reference is the sweep without cells (one run per optimizer and seed, rates as lanes), which
earlier tests pin to plain SciPy expressions; a cell run must reproduce its rows to the last bit
(AdaGrad-Norm to a named tolerance, below).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from anisoada.experiments import (
    DatasetSpec,
    LRGrid,
    OptimizerSpec,
    SweepConfig,
    build_optimizer,
    run_sweep,
    sweep_config_from_dict,
)
from anisoada.experiments.bundle import OptimizerBundle
from anisoada.experiments.config import sweep_config_toml
from anisoada.experiments.runs import RunSettings
from anisoada.experiments.runs.cell import CellLane, CellRun
from anisoada.experiments.tasks import LogisticTask
from anisoada.experiments.tasks.cell import CellTask
from anisoada.schema import TIMING_COLUMNS
from anisoada.train import Budget, TrainConfig, train

TOY = DatasetSpec.create("toy", "synthetic", {"n": 400, "n_test": 100, "d": 30, "density": 0.1})
DENSE = DatasetSpec.create("dense", "rotated", {"n": 300, "n_test": 0, "d": 12, "density": 0.3})

#: AdaGrad-Norm's per-column norm is a reduction whose rounding depends on how many columns the
#: parameter has (torch reduces a (d, K) tensor's columns in K-dependent blocks): a lane of a
#: K-column block and the same lane in a block of another width agree to rounding, not bits.
NORM_RTOL = 1e-10


def _config(**overrides):
    base = {
        "name": "cells",
        "problems": (TOY,),
        "optimizers": tuple(OptimizerSpec.create(n) for n in ("sgd", "adagrad", "adagrad_norm")),
        "batch_sizes": (4, 32),
        "lr_grid": LRGrid(low=0.01, high=10.0, per_decade=1, max_extensions=1),
        "budget": Budget(samples=800),
        "evaluations": 8,
        "seeds": 3,
    }
    base.update(overrides)
    return SweepConfig(**base)


def _comparable(rows: pd.DataFrame) -> pd.DataFrame:
    keys = ["dataset", "optimizer", "batch_size", "seed", "lr", "step"]
    rows = rows.drop(columns=[*TIMING_COLUMNS, "run_id"]).sort_values(keys, kind="stable")
    return rows.reset_index(drop=True)


def _assert_same_rows(cells: pd.DataFrame, plain: pd.DataFrame) -> None:
    a, b = _comparable(cells), _comparable(plain)
    assert list(a.columns) == list(b.columns)
    exact = a["optimizer"] != "adagrad_norm"
    pd.testing.assert_frame_equal(a[exact], b[exact], check_exact=True)
    pd.testing.assert_frame_equal(a[~exact], b[~exact], rtol=NORM_RTOL, atol=0.0)


@pytest.mark.parametrize("problem", [TOY, DENSE], ids=["sparse", "dense"])
def test_a_cell_sweep_writes_the_rows_and_selection_of_the_ordinary_sweep(problem, tmp_path):
    # Batch 128 with 3 seeds (384 rows a step) takes the per-stream products, 4 and 32 the joint.
    sizes = {"problems": (problem,), "batch_sizes": (4, 32, 128)}
    plain = run_sweep(_config(**sizes), tmp_path / "plain", progress=False)
    cells = run_sweep(_config(**sizes, cells=True), tmp_path / "cells", progress=False)
    _assert_same_rows(cells.rows, plain.rows)
    pd.testing.assert_frame_equal(cells.selection, plain.selection)
    # One run per batch size and round (the grid extension adds a round), not one per
    # optimizer and seed.
    assert cells.rows["run_id"].nunique() < plain.rows["run_id"].nunique() / 4
    per_run = cells.rows.groupby("run_id")[["optimizer", "seed"]].nunique()
    assert per_run["seed"].eq(3).all()


def test_tail_evaluations_keep_the_last_points_of_the_cadence_with_their_values(tmp_path):
    every = run_sweep(_config(cells=True), tmp_path / "every", progress=False)
    tail = run_sweep(_config(cells=True, tail_evaluations=4), tmp_path / "tail", progress=False)
    # The kept points are the initial one and the last 4 of the cadence (steps 100…200 of 200 at
    # batch 4, a point every 25 steps), with the numbers of the run that evaluated everywhere.
    steps = tail.rows[tail.rows["batch_size"] == 4]["step"].unique()
    assert sorted(steps) == [0, 125, 150, 175, 200] or "diverged" in set(tail.rows["status"])
    keys = ["optimizer", "batch_size", "seed", "lr", "step"]
    merged = tail.rows.merge(every.rows, on=keys, suffixes=("", "_every"))
    assert len(merged) == len(tail.rows)
    np.testing.assert_array_equal(merged["train_loss"], merged["train_loss_every"])
    # What the selection reads is in the tail: the chosen rates are the same.
    pd.testing.assert_frame_equal(
        tail.selection[["optimizer", "batch_size", "best_lr"]],
        every.selection[["optimizer", "batch_size", "best_lr"]],
    )


def test_cell_task_autograd_and_closed_form_agree_and_streams_are_the_ordinary_ones():
    from anisoada.experiments.runs import load_dataset

    data = load_dataset(TOY)
    task = CellTask(data.X, data.y, blocks=[[0, 0, 1], [1]], stream_seeds=[5, 9])
    with torch.no_grad():
        for block in task.blocks:
            block.normal_(generator=torch.Generator().manual_seed(block.shape[1]))
    batch = next(task.batches(seed=0, batch_size=8, micro_batch_size=8, start_step=3))[0]
    losses = task.loss(batch)
    losses.sum().backward()
    autograd = [block.grad.clone() for block in task.blocks]
    for block in task.blocks:
        block.grad = None
    closed = task.accumulate_gradient(batch, 1.0)
    assert torch.equal(losses.detach(), closed)
    for a, b in zip(autograd, (block.grad for block in task.blocks)):
        assert torch.equal(a, b)
        # Contiguous blocks and gradients: the optimizers' fused routes, as an ordinary run's.
        assert a.is_contiguous() and b.is_contiguous()
    assert all(block.is_contiguous() for block in task.blocks)
    # Lane 2 (block 0's last column) is stream 1: an ordinary task on seed 9 gives its numbers.
    single = LogisticTask(data.X, data.y, lanes=1)
    with torch.no_grad():
        single.weights.copy_(task.blocks[0][:, 2:3])
    rows = next(single.batches(seed=9, batch_size=8, micro_batch_size=8, start_step=3))[0]
    assert single.accumulate_gradient(rows, 1.0).item() == closed[2].item()
    assert torch.equal(single.weights.grad[:, 0], task.blocks[0].grad[:, 2])
    with pytest.raises(ValueError, match="whole batches"):
        next(task.batches(seed=0, batch_size=8, micro_batch_size=4, start_step=0))


def test_bundle_hands_a_scheduled_lr_to_each_optimizer_and_round_trips_its_state():
    a = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, 1, dtype=torch.float64, requires_grad=True)
    bundle = OptimizerBundle(
        [
            build_optimizer(OptimizerSpec.create("sgd"), [a], [0.1, 1.0]),
            build_optimizer(OptimizerSpec.create("adagrad"), [b], [0.5]),
        ]
    )
    assert bundle.param_groups[0]["lr"].tolist() == [0.1, 1.0, 0.5]
    a.grad, b.grad = torch.ones(3, 2, dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64)
    bundle.param_groups[0]["lr"] = bundle.param_groups[0]["lr"] * 0.5  # a schedule's step
    bundle.step()
    np.testing.assert_array_equal(a.detach()[0].numpy(), [-0.05, -0.5])
    # AdaGrad's first step: −η g/(√(g²) + ε) = −η (ε = 1e-10 outside the root).
    assert b.detach()[0, 0].item() == pytest.approx(-0.25, rel=1e-9)
    state = bundle.state_dict()
    copy = OptimizerBundle(
        [
            build_optimizer(OptimizerSpec.create("sgd"), [a], [0.1, 1.0]),
            build_optimizer(OptimizerSpec.create("adagrad"), [b], [0.5]),
        ]
    )
    copy.load_state_dict(state)
    assert torch.equal(copy.optimizers[1].state[b]["sum"], bundle.optimizers[1].state[b]["sum"])
    bundle.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="tensor of lane"):
        OptimizerBundle([torch.optim.SGD([a], lr=0.1)])


def test_cell_run_lanes_and_identity():
    settings = RunSettings(budget=Budget(samples=64), evaluations=4)
    specs = (OptimizerSpec.create("sgd"), OptimizerSpec.create("adagrad"))
    run = CellRun(TOY, 8, specs, (CellLane(1, 0, 0.1), CellLane(0, 2, 1.0)), settings)
    assert run.lanes == (CellLane(0, 2, 1.0), CellLane(1, 0, 0.1))  # stored sorted
    assert run.seeds == (0, 2)
    same = CellRun(TOY, 8, specs, (CellLane(0, 2, 1.0), CellLane(1, 0, 0.1)), settings)
    assert run.run_id == same.run_id
    with pytest.raises(ValueError, match="distinct"):
        CellRun(TOY, 8, specs, (CellLane(0, 0, 0.1), CellLane(0, 0, 0.1)), settings)
    with pytest.raises(ValueError, match="does not have"):
        CellRun(TOY, 8, specs, (CellLane(2, 0, 0.1),), settings)


def test_cells_and_tail_evaluations_round_trip_through_toml_and_are_validated():
    config = _config(cells=True, tail_evaluations=4)
    text = sweep_config_toml(config)
    assert "cells = true" in text and "tail_evaluations = 4" in text
    import tomllib

    assert sweep_config_from_dict(tomllib.loads(text)) == config
    with pytest.raises(ValueError, match="tail_evaluations must be an integer above"):
        _config(tail_evaluations=3)  # not above the selection window
    with pytest.raises(ValueError, match="cells must be true or false"):
        _config(cells="yes")


def test_settings_without_a_tail_keep_the_run_ids_they_had():
    # Identities gain tail_evaluations only when it is set, so stored sweeps stay valid.
    plain = RunSettings(budget=Budget(samples=64), evaluations=4)
    run = TOY.make_run(OptimizerSpec.create("sgd"), 8, (0.1,), 0, plain)
    assert "tail_evaluations" not in run.identity()
    tail = RunSettings(budget=Budget(samples=64), evaluations=4, tail_evaluations=3)
    assert TOY.make_run(OptimizerSpec.create("sgd"), 8, (0.1,), 0, tail).run_id != run.run_id
    assert RunSettings(Budget(steps=100), tail_evaluations=3).evaluation_steps(100) == (5, 90)
    assert RunSettings(Budget(steps=7), evaluations=20, tail_evaluations=4).evaluation_steps(7) == (
        1,
        4,
    )


@pytest.mark.parametrize("gathered", [True, False], ids=["one-product", "product-per-block"])
def test_a_cell_trains_through_the_loop_like_separate_runs(gathered, monkeypatch):
    from anisoada.experiments.runs import load_dataset
    from anisoada.experiments.tasks import cell

    # Small weight matrices are copied side by side for one product, larger ones multiplied
    # block by block: either way each lane's numbers are its separate run's.
    monkeypatch.setattr(cell, "_GATHERED_ELEMENTS", 1 << 30 if gathered else 0)
    data = load_dataset(TOY)
    seeds = [11, 22]
    task = CellTask(data.X, data.y, blocks=[[0, 1], [0, 1]], stream_seeds=seeds)
    bundle = OptimizerBundle(
        [
            build_optimizer(OptimizerSpec.create(name), [param], [0.5, 0.5])
            for name, param in zip(("sgd", "adagrad"), task.parameters())
        ]
    )
    config = TrainConfig(batch_size=4, budget=Budget(steps=30), eval_every=10)
    cell = train(task, bundle, config)
    for lane, (name, seed) in enumerate(
        [("sgd", 11), ("sgd", 22), ("adagrad", 11), ("adagrad", 22)]
    ):
        alone = LogisticTask(data.X, data.y, lanes=1)
        optimizer = build_optimizer(OptimizerSpec.create(name), alone.parameters(), [0.5])
        reference = train(
            alone, optimizer, TrainConfig(batch_size=4, budget=Budget(steps=30), seed=seed,
                                          eval_every=10)
        )  # fmt: skip
        mine = [row["train_loss"] for row in cell.rows if row["lane"] == lane]
        assert mine == [row["train_loss"] for row in reference.rows]


def test_the_sweep_command_takes_cells_and_tail_evaluations(tmp_path, capsys):
    from anisoada.cli import main

    argv = ["sweep", "--dataset", "synthetic", "--optimizer", "sgd,adagrad", "--batch-sizes",
            "16", "--samples", "2000", "--seeds", "2", "--quiet"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert main([*argv, "--cells", "--tail-evaluations", "4", "--out", str(tmp_path / "c")]) == 0
    text = (tmp_path / "c" / "sweep.toml").read_text()
    assert "cells = true" in text and "tail_evaluations = 4" in text
    plain = pd.read_parquet(tmp_path / "plain" / "results.parquet")
    cells = pd.read_parquet(tmp_path / "c" / "results.parquet")
    assert cells["run_id"].nunique() == 1 and plain["run_id"].nunique() == 4
    kept = plain.merge(cells, on=["optimizer", "seed", "lr", "step"], suffixes=("", "_cell"))
    assert len(kept) == len(cells)
    np.testing.assert_array_equal(kept["train_loss"], kept["train_loss_cell"])
    assert main([*argv, "--tail-evaluations", "2", "--out", str(tmp_path / "x")]) == 2
    assert "tail_evaluations must be an integer above the selection window" in (
        capsys.readouterr().err
    )
