"""Sweeps: rows and selection, grid extension, divergence, skipping stored runs, kill + resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from anisoada.experiments import (
    DatasetSpec,
    LRGrid,
    OptimizerSpec,
    ResultsStore,
    SweepConfig,
    derive_seed,
    load_sweep_config,
    run_sweep,
    select_best,
    sweep_config_from_dict,
)
from anisoada.schema import TIMING_COLUMNS
from anisoada.train import Budget

TOY = DatasetSpec.create("toy", "synthetic", {"n": 400, "n_test": 100, "d": 30, "density": 0.1})


def _config(**overrides):
    base = {
        "name": "test",
        "problems": (TOY,),
        "optimizers": (OptimizerSpec.create("sgd"), OptimizerSpec.create("adagrad")),
        "batch_sizes": (4, 32),
        "lr_grid": LRGrid(low=0.01, high=10.0, per_decade=1, max_extensions=0),
        "budget": Budget(samples=800),
        "evaluations": 4,
    }
    base.update(overrides)
    return SweepConfig(**base)


def test_sweep_rows_selection_and_budget(tmp_path):
    result = run_sweep(_config(), tmp_path, progress=False)
    rows = result.rows
    # Every (optimizer, batch size, lr) has rows, each run at the same sample budget.
    runs = rows.groupby(["optimizer", "batch_size", "lr"])
    assert runs.ngroups == 2 * 2 * 4
    finished = rows[rows["status"] == "finished"]
    final_samples = finished.groupby(["optimizer", "batch_size", "lr"])["samples"].max()
    assert set(final_samples) == {800}
    assert set(finished.groupby("batch_size")["step"].max()) == {200, 25}
    assert rows.loc[rows["step"] == 0, "train_loss"].to_numpy() == pytest.approx(np.log(2))
    # The selection is the argmin of the tail loss (mean of the last 3 evaluations after the
    # first) among the runs that neither diverged nor rose by more than 10% near the end.
    tails = {}
    for key, run in rows.sort_values("step").groupby(["optimizer", "batch_size", "lr"]):
        losses = run["train_loss"].to_numpy()[1:]
        rises = np.diff(run["train_loss"].to_numpy()[-4:]) / run["train_loss"].to_numpy()[-4:-1]
        if run["status"].iloc[-1] != "diverged" and rises.max() <= 0.1:
            tails[key] = (losses[-3:].mean(), run["test_accuracy"].to_numpy()[1:][-3:].mean())
    for record in result.selection.to_dict("records"):
        mine = {
            k: v for k, v in tails.items() if k[:2] == (record["optimizer"], record["batch_size"])
        }
        best = min(mine, key=lambda k: mine[k][0])
        assert record["best_lr"] == best[2]
        assert record["train_loss"] == pytest.approx(mine[best][0], rel=1e-12)
        assert record["test_accuracy"] == pytest.approx(mine[best][1], rel=1e-12)
    # Every row names the registry key and the options it ran with.
    assert set(zip(rows["optimizer"], rows["optimizer_name"], rows["optimizer_options"])) == {
        ("sgd", "sgd", "{}"),
        ("adagrad", "adagrad", "{}"),
    }
    # Stored tables equal what was returned.
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), rows)
    assert (tmp_path / "selection.csv").is_file()
    info = next((tmp_path / "runs").glob("*/run.json")).read_text()
    for key in ('"git"', '"torch"', '"run_seed"', '"unit"'):
        assert key in info
    # The store reads back what the sweep wrote: tables, a run's record and its final weights.
    store = ResultsStore(tmp_path)
    pd.testing.assert_frame_equal(store.read_table("selection"), result.selection)
    run_id = rows["run_id"].iloc[-1]
    record = store.read_info(run_id)
    assert record["unit"]["optimizer"]["name"] == rows["optimizer_name"].iloc[-1]
    vectors = store.read_vectors(run_id)
    assert vectors["lrs"].tolist() == record["unit"]["lrs"]
    assert vectors["weights"].shape == (30, len(record["unit"]["lrs"]))
    with pytest.raises(FileNotFoundError, match="no table 'nothing'"):
        store.read_table("nothing")
    with pytest.raises(FileNotFoundError, match=r"no run\.json"):
        store.read_info("0" * 16)


def test_rerun_skips_stored_runs(tmp_path):
    run_sweep(_config(), tmp_path, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/run.json")}
    again = run_sweep(_config(), tmp_path, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert len(again.rows) > 0


def test_grid_is_extended_where_the_best_lr_is_at_the_edge(tmp_path):
    # SGD's best learning rate here is ~3; a grid of [0.01, 0.1] puts it at the top edge.
    config = _config(
        optimizers=(OptimizerSpec.create("sgd"),),
        batch_sizes=(32,),
        lr_grid=LRGrid(low=0.01, high=0.1, per_decade=1, max_extensions=3),
    )
    result = run_sweep(config, tmp_path, progress=False)
    record = result.selection.iloc[0]
    assert record["extensions_up"] >= 1 and record["extensions_down"] == 0
    tried = sorted(result.rows["lr"].unique())
    expected = [10.0**k for k in range(-2, record["extensions_up"])]
    np.testing.assert_allclose(tried, expected, rtol=1e-12)
    assert record["best_lr"] > 0.1
    assert record["lrs_tried"] == len(tried)
    # Bounded: with no extensions allowed the edge is recorded instead.
    bounded = run_sweep(
        config.__class__(**{**config.__dict__, "lr_grid": LRGrid(0.01, 0.1, 1, 0)}),
        tmp_path / "bounded",
        progress=False,
    )
    assert bool(bounded.selection.iloc[0]["at_edge"])
    assert bounded.selection.iloc[0]["best_lr"] == pytest.approx(0.1)


def test_selection_never_picks_a_diverged_run(tmp_path):
    # divergence_factor barely above 1: big learning rates are cut off on their first bump.
    config = _config(
        optimizers=(OptimizerSpec.create("sgd"),),
        batch_sizes=(4,),
        divergence_factor=1.2,
    )
    result = run_sweep(config, tmp_path, progress=False)
    statuses = result.rows.groupby("lr")["status"].first()
    assert (statuses == "diverged").any() and (statuses == "finished").any()
    best = result.selection.iloc[0]
    assert statuses[best["best_lr"]] == "finished"
    assert best["lrs_diverged"] == int((statuses == "diverged").sum())


def test_select_best_excludes_diverged_even_with_a_lower_loss():
    rows = pd.DataFrame(
        {
            "dataset": "d",
            "optimizer": "o",
            "batch_size": 8,
            "seed": [0, 0, 1, 1, 0, 0],
            "lr": [0.1, 0.1, 0.1, 0.1, 1.0, 1.0],
            "step": [0, 9, 0, 9, 0, 3],
            "train_loss": [0.7, 0.4, 0.7, 0.2, 0.7, 0.01],
            "status": ["finished"] * 4 + ["diverged"] * 2,
        }
    )
    record = select_best(rows).iloc[0]
    assert record["best_lr"] == 0.1
    assert record["train_loss"] == pytest.approx(0.3)  # mean over the two seeds
    assert record["train_loss_std"] == pytest.approx(0.1)
    assert record["lrs_diverged"] == 1


def test_seeds_are_derived_and_shared_across_optimizers():
    assert derive_seed(0, "a9a", 64, 0) != derive_seed(0, "a9a", 64, 1)
    assert derive_seed(0, "a9a", 64, 0) != derive_seed(1, "a9a", 64, 0)
    assert derive_seed(0, "a9a", 64, 0) == derive_seed(0, "a9a", 64, 0)


def test_rotated_twin_sees_the_same_mini_batches_so_sgd_losses_are_identical(tmp_path):
    # SGD from w = 0 is rotation-equivariant: on X -> XQ with the same mini-batches its iterates
    # are Q^T w_t and its losses are those of the original, to float rounding. AdaGrad's are not.
    options = {"n": 300, "n_test": 60, "d": 20, "density": 0.15}
    original = DatasetSpec.create("toy", "synthetic", options)
    twin = DatasetSpec.create("toy-rotated", "rotated", options, stream="toy")
    config = _config(
        problems=(original, twin),
        batch_sizes=(8,),
        lr_grid=LRGrid(low=0.1, high=1.0, per_decade=1, max_extensions=0),
        budget=Budget(samples=600),
    )
    rows = run_sweep(config, tmp_path, progress=False).rows
    key = ["optimizer", "lr", "step"]
    by_dataset = {
        name: part.set_index(key).sort_index() for name, part in rows.groupby("dataset", sort=True)
    }
    sgd_original = by_dataset["toy"].loc["sgd"]
    sgd_twin = by_dataset["toy-rotated"].loc["sgd"]
    assert list(sgd_original.index) == list(sgd_twin.index)
    assert len(sgd_original) >= 2 * 5
    np.testing.assert_allclose(
        sgd_twin["train_loss"], sgd_original["train_loss"], rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(sgd_twin["test_loss"], sgd_original["test_loss"], rtol=0, atol=1e-10)
    adagrad_gap = np.abs(
        by_dataset["toy-rotated"].loc["adagrad", "train_loss"].to_numpy()
        - by_dataset["toy"].loc["adagrad", "train_loss"].to_numpy()
    )
    assert adagrad_gap.max() > 1e-4
    # Without the shared stream key the twin would draw other samples.
    assert twin.stream_key == original.stream_key == "toy"
    assert DatasetSpec.create("toy-rotated", "rotated", options).stream_key == "toy-rotated"


def test_lr_grid_values_are_exact_powers():
    grid = LRGrid(low=1e-3, high=1e2, per_decade=2)
    values = grid.values()
    assert len(values) == 11 and values[0] == 1e-3 and values[-1] == 100.0
    np.testing.assert_allclose(np.diff(np.log10(values)), 0.5)
    with pytest.raises(ValueError, match="empty"):
        LRGrid(low=0.2, high=0.3, per_decade=1)


def test_a_bracket_grid_is_extended_only_where_nothing_can_be_selected():
    bracket = LRGrid.explicit([0.1, 0.316], max_extensions=1, extend_at_edges=False)
    assert bracket.next_extension(0.1, [0.1, 0.316], 0) is None  # an edge, on purpose
    direction, added = bracket.next_extension(float("nan"), [0.1, 0.316], 0)
    assert direction == "down" and added == pytest.approx((0.1 / 3.16,))
    assert bracket.next_extension(float("nan"), [0.1, 0.316], 1) is None  # none left
    assert LRGrid.from_dict(bracket.to_dict()) == bracket
    with pytest.raises(ValueError, match="extend_at_edges must be true or false"):
        LRGrid(extend_at_edges="no")


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="exactly one of steps, samples or epochs"):
        Budget(samples=800, epochs=1.0)
    with pytest.raises(ValueError, match="duplicate optimizer"):
        _config(optimizers=(OptimizerSpec.create("sgd"), OptimizerSpec.create("sgd")))
    with pytest.raises(ValueError, match="unknown key"):
        sweep_config_from_dict({"batch_size": [8]})
    with pytest.raises(ValueError, match="source"):
        DatasetSpec.create("x", "csv")
    with pytest.raises(ValueError, match="unknown option"):
        DatasetSpec.create("x", "synthetic", {"rows": 3})
    path = tmp_path / "bad.toml"
    path.write_text("batch_sizes = [8\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_sweep_config(path)
    with pytest.raises(FileNotFoundError):
        load_sweep_config(tmp_path / "missing.toml")


_SWEEP_TOML = """
name = "kill"
batch_sizes = [4, 8]
seeds = 2
evaluations = 4
vectorize = false

[budget]
samples = 800

[lr_grid]
low = 0.01
high = 10
per_decade = 1
max_extensions = 1

[[datasets]]
name = "toy"
source = "synthetic"
n = 400
n_test = 100
d = 30
density = 0.1

[[optimizers]]
name = "sgd"
[[optimizers]]
name = "adagrad"
options = { eps = 1e-8 }
"""


def test_a_killed_sweep_resumes_to_the_uninterrupted_rows(tmp_path):
    config = tmp_path / "kill.toml"
    config.write_text(_SWEEP_TOML)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, "-m", "anisoada", "sweep", str(config), "--out", str(interrupted)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if len(list(interrupted.glob("runs/*/run.json"))) >= 10:
                break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done_before = len(list(interrupted.glob("runs/*/run.json")))
    assert process.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    assert not (interrupted / "results.parquet").exists()
    assert done_before >= 10

    # Re-run (here in-process) and compare with an uninterrupted sweep.
    resumed = run_sweep(load_sweep_config(config), interrupted, progress=False)
    reference = run_sweep(load_sweep_config(config), tmp_path / "reference", progress=False)
    assert len(reference.rows) > 0
    pd.testing.assert_frame_equal(
        resumed.rows.drop(columns=list(TIMING_COLUMNS)),
        reference.rows.drop(columns=list(TIMING_COLUMNS)),
    )
    pd.testing.assert_frame_equal(resumed.selection, reference.selection)
    pd.testing.assert_frame_equal(
        pd.read_parquet(interrupted / "results.parquet").drop(columns=list(TIMING_COLUMNS)),
        pd.read_parquet(tmp_path / "reference" / "results.parquet").drop(
            columns=list(TIMING_COLUMNS)
        ),
    )


def test_sweep_command_line_without_a_file(tmp_path, capsys):
    from anisoada.cli import main

    status = main(
        [
            "sweep", "--dataset", "synthetic", "--optimizer", "sgd", "--optimizer", "adagrad",
            "--batch-sizes", "64", "--lr-grid", "0.1:1:1", "--max-extensions", "0",
            "--budget-samples", "640", "--evaluations", "2", "--out", str(tmp_path),
            "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0
    selection = pd.read_csv(tmp_path / "selection.csv")
    assert sorted(selection["optimizer"]) == ["adagrad", "sgd"]
    assert set(pd.read_parquet(tmp_path / "results.parquet")["lr"]) == {0.1, 1.0}
    assert "best_lr" in capsys.readouterr().out
    assert main(["sweep", "--out", str(tmp_path)]) == 2  # no file, no factors: a clear error


def _sweep_args(*argv):
    from anisoada.cli import build_parser

    return build_parser().parse_args(["sweep", *argv, "--out", "unused"])


def test_sweep_command_line_builds_the_config_with_optimizer_options():
    from anisoada.cli.sweep import sweep_config_from_args

    config = sweep_config_from_args(
        _sweep_args(
            "--dataset", "synthetic", "--dataset", "rotated", "--optimizer", "sgd",
            "--optimizer", "adagrad", "--option", "adagrad.eps=1e-6",
            "--option", "adagrad.eps_placement=inside", "--batch-sizes", "8,64",
            "--budget-epochs", "2", "--seeds", "3",
        )
    )  # fmt: skip
    assert config.optimizers == (
        OptimizerSpec.create("sgd"),
        OptimizerSpec.create("adagrad", options={"eps": 1e-6, "eps_placement": "inside"}),
    )
    assert [d.stream_key for d in config.problems] == ["synthetic", "synthetic"]
    assert (config.batch_sizes, config.budget) == ((8, 64), Budget(epochs=2.0))
    assert (config.seeds, config.lr_grid, config.name) == (3, LRGrid(), "sweep")
    with pytest.raises(ValueError, match=r"--option 'adam.eps=1'.*NAME among"):
        sweep_config_from_args(_sweep_args("--optimizer", "sgd", "--option", "adam.eps=1"))
    with pytest.raises(ValueError, match="--option needs --optimizer"):
        sweep_config_from_args(_sweep_args("--option", "sgd.x=1"))
    with pytest.raises(ValueError, match="give --dataset, --batch-sizes"):
        sweep_config_from_args(_sweep_args("--optimizer", "sgd"))


def test_positive_integer_arguments_have_a_plain_error(capsys):
    from anisoada.cli import main

    for bad in ("abc", "0", "-2"):
        assert main(["sweep", "--seeds", bad, "--out", "unused"]) == 2
        error = capsys.readouterr().err
        assert f"expected a positive integer; got '{bad}'" in error
        assert "_positive_int" not in error


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"low": 0.1, "high": 1.0, "per_decade": 10**9}, "holds 1000000001 rates, more than 10000"),
        ({"per_decade": 100_000}, "holds 400001 rates, more than 10000; lower per_decade"),
        ({"extension_points": 10**6}, "add 1000000 rates each, more than 10000"),
        ({"low": 1.0, "high": 1.0, "per_decade": 20_000}, "lower per_decade"),  # 1 rate, wide steps
    ],
)
def test_a_grid_of_too_many_rates_is_refused_before_any_is_listed(fields, message):
    # Each of these listed billions of rates (or extension rates) until memory ran out.
    with pytest.raises(ValueError) as caught:
        LRGrid(**fields)
    assert message in str(caught.value)
    with pytest.raises(ValueError, match=r"^\[lr_grid\]: lr grid"):
        LRGrid.from_dict(fields)
    # The cap itself is allowed: k = 0 … 9999 at 9999 per decade (extensions of 1 rate).
    assert len(LRGrid(low=1.0, high=10.0, per_decade=9999, extension_points=1).values()) == 10_000


def test_a_sweep_of_too_many_runs_is_refused_naming_the_count(tmp_path):
    config = _config(seeds=1000)  # 1 problem × 2 batch sizes × 1000 seeds × (4 + 4) rates
    assert config.first_round_runs == 16_000
    with pytest.raises(ValueError, match="would make 16000000000 runs"):
        _config(seeds=10**9)
    with pytest.raises(ValueError, match=r"\[lr_grid\].*10000"):
        sweep_config_from_dict(
            {"batch_sizes": [4], "budget": {"samples": 8}, "lr_grid": {"per_decade": 100_000},
             "datasets": [{"name": "t", "source": "synthetic"}], "optimizers": [{"name": "sgd"}]}
        )  # fmt: skip


def test_run_sweep_needs_a_sweep_config(tmp_path):
    for wrong in (None, {}, "sweep.toml"):
        with pytest.raises(TypeError, match="run_sweep needs a SweepConfig"):
            run_sweep(wrong, tmp_path)
    with pytest.raises(TypeError, match="out as a path"):
        run_sweep(_config(), None)
    assert list(tmp_path.iterdir()) == []


def test_sweep_failure_messages_read_as_a_user_would():
    from pathlib import Path

    from anisoada.experiments.executors import RunFailure
    from anisoada.experiments.sweep import SweepFailedError, SweepResult, failure_reason

    assert failure_reason("OSError: [Errno 28] No space left on device: '/o/r'") == (
        "/o/r: no space left on device"
    )
    assert failure_reason("PermissionError: [Errno 13] Permission denied") == "permission denied"
    assert failure_reason("ValueError: a budget of 4 samples") == "a budget of 4 samples"
    assert failure_reason("anisoada.data.libsvm.LibsvmFormatError: x.svm: bad") == "x.svm: bad"
    assert failure_reason("worker process died: gone") == "worker process died: gone"
    assert failure_reason("RuntimeError: ") == "an error with no message"
    failures = (
        RunFailure("a1", "OSError: [Errno 28] No space left on device: '/o/runs/a1/x.tmp'"),
        RunFailure("b2", "ValueError: bad"),
    )
    result = SweepResult(pd.DataFrame(), pd.DataFrame(), Path("/o"), 0.0, failures=failures)
    every = str(SweepFailedError(result, runs=2))
    assert every.startswith("every run failed (2 of 2; nothing is stored); first: run a1: ")
    assert "/o/runs/a1/x.tmp: no space left on device" in every
    assert "[Errno" not in every and "OSError" not in every and "the others" not in every
    some = str(SweepFailedError(result, runs=5))
    assert some.startswith("2 of 5 runs failed (the others finished and are stored)")


def test_an_optimizer_option_given_twice_is_refused():
    from anisoada.experiments.optimizers import parse_optimizer_options

    with pytest.raises(ValueError, match=r"adagrad\.eps is given twice; give each option once"):
        parse_optimizer_options(["adagrad.eps=1", "adagrad.eps=2"], ["adagrad"])
    both = parse_optimizer_options(["adagrad.eps=1", "sgd.momentum=0.5"], ["adagrad", "sgd"])
    assert both == {"adagrad": {"eps": 1}, "sgd": {"momentum": 0.5}}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"smoothness_exponent": float("nan")}, "smoothness_exponent must be a finite number"),
        ({"noise_exponent": float("inf")}, "noise_exponent must be a finite number"),
        ({"max_noise": float("nan")}, "max_noise must be a finite number"),
        ({"noise_exponent": -1.0}, "noise_exponent must be >= 0"),
        ({"dim": 10**11}, "quadratic dim 100000000000 is above 100000000"),
    ],
)
def test_a_quadratic_spec_refuses_what_each_run_would_fail_on(fields, message):
    from anisoada.experiments.runs import QuadraticSpec

    with pytest.raises(ValueError) as caught:
        QuadraticSpec(**fields)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("source", "options", "message"),
    [
        ("synthetic", {"n": 10**11}, "n + n_test = 100000002000 is above 100,000,000"),
        ("synthetic", {"d": 10**9}, "d = 1000000000 is above 100,000,000"),
        ("synthetic", {"n": 10**7, "d": 10**6}, "expected non-zeros"),
        ("rotated", {"n": 100_000, "d": 1000}, "a rotated twin is dense"),
    ],
)
def test_a_synthetic_dataset_too_large_for_memory_is_refused(source, options, message):
    with pytest.raises(ValueError) as caught:
        DatasetSpec.create("big", source, options)
    assert message in str(caught.value) and "'big'" in str(caught.value)


def test_an_epoch_budget_below_one_step_is_refused_before_any_run(tmp_path):
    data = tmp_path / "t.svm"
    data.write_text("+1 1:1\n-1 2:1\n+1 1:0.5\n-1 2:2\n")
    for problem, rows in ((TOY, 400), (DatasetSpec.from_file(data), 4)):
        config = _config(problems=(problem,), budget=Budget(epochs=1e-300))
        with pytest.raises(ValueError) as caught:
            run_sweep(config, tmp_path / "out", progress=False)
        message = str(caught.value)
        assert f"1e-300 epoch(s) of its {rows} training rows" in message
        assert "less than one step at batch size 4" in message
    assert not (tmp_path / "out").exists()
    # One epoch of the 4 rows is one step at batch size 4: accepted.
    one_epoch = _config(problems=(DatasetSpec.from_file(data),), budget=Budget(epochs=1.0))
    replace(one_epoch, batch_sizes=(4,)).validate()


def test_a_one_thread_runs_cpu_clock_leaves_out_the_processes_other_threads():
    # A BLAS pool still spinning after earlier work burns CPU in other threads of the process:
    # a run that does all its work on its own thread is not charged for it.
    import threading

    from anisoada.experiments.runs.base import RunClock

    def burn(seconds: float) -> None:
        started = time.thread_time()
        while time.thread_time() - started < seconds:
            pass

    own, process = RunClock(own_thread=True), RunClock()
    worker = threading.Thread(target=burn, args=(0.3,))
    worker.start()
    worker.join()  # blocks: this thread spends next to no CPU meanwhile
    own_record, process_record = own.elapsed(), process.elapsed()
    assert own_record["cpu_clock"] == "thread" and process_record["cpu_clock"] == "process"
    assert own_record["cpu_time"] < 0.05
    assert process_record["cpu_time"] >= 0.29


@pytest.mark.parametrize("same_keys", [True, False])
def test_lane_rows_put_identity_first_and_fill_missing_metrics(same_keys):
    # The rows table of any run: identity columns (scalars broadcast, per-lane arrays picked by
    # each row's lane), the loop's columns without "lane" (and without "lr" unless kept), then
    # extras, status and run id — with NaN where a row lacks a metric another row has.
    from anisoada.experiments.runs.base import lane_rows
    from anisoada.train import TrainResult

    rows = [
        {"lane": 1, "step": 0, "lr": 0.5, "batch_loss": 2.0, "train_loss": 1.0},
        {"lane": 0, "step": 3, "lr": 0.1, "batch_loss": 1.5, "train_loss": 0.7},
    ]
    if not same_keys:
        rows[1] = {**rows[1], "test_loss": 0.9}
    result = TrainResult(rows=rows, status=["finished", "diverged"], steps=[3, 0])
    table = lane_rows(
        result,
        lambda lanes: {"dataset": "d", "seed": np.array([10, 11])[lanes]},
        current_lr=True,
        extra={"epoch": np.array([0.0, 1.5])},
        run_id="abc",
    )
    expected = ["dataset", "seed", "step", "current_lr", "batch_loss", "train_loss"]
    expected += [] if same_keys else ["test_loss"]
    assert list(table.columns) == [*expected, "epoch", "status", "run_id"]
    assert table["seed"].tolist() == [11, 10]
    assert table["status"].tolist() == ["diverged", "finished"]
    assert table["current_lr"].tolist() == [0.5, 0.1]
    assert table["dataset"].tolist() == ["d", "d"] and table["run_id"].tolist() == ["abc"] * 2
    assert table["step"].dtype == np.int64 and table["train_loss"].dtype == np.float64
    if not same_keys:
        assert np.isnan(table["test_loss"][0]) and table["test_loss"][1] == 0.9
