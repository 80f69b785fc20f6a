"""The Ray executor of the one sweep: the local executor's rows, a killed worker retried, failures
recorded, Ray imported only when chosen, and the executor named in TOML and on the command line.

One local Ray instance (2 CPUs, loopback only, no dashboard) serves the whole module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from anisoada.experiments import (
    DatasetSpec,
    LocalExecutor,
    LRGrid,
    OptimizerSpec,
    ResultsStore,
    SweepConfig,
    load_sweep_config,
    run_sweep,
    sweep_config_from_dict,
)
from anisoada.experiments.config import sweep_config_toml
from anisoada.experiments.executors import default_executor
from anisoada.schema import TIMING_COLUMNS
from anisoada.train import Budget

TOY = DatasetSpec.create("toy", "synthetic", {"n": 400, "n_test": 100, "d": 30, "density": 0.1})

#: 2 optimizers x 2 batch sizes x 2 learning rates, one run each: 8 runs of 0.3-0.6 s, long
#: enough that a poll of the process table catches a worker in the middle of one (at 2,500
#: samples a run took 25-55 ms and the kill tests found no worker to kill).
CONFIG = SweepConfig(
    name="ray",
    problems=(TOY,),
    optimizers=(OptimizerSpec.create("sgd"), OptimizerSpec.create("adagrad")),
    batch_sizes=(4, 8),
    lr_grid=LRGrid(low=0.1, high=1.0, per_decade=1, max_extensions=0),
    budget=Budget(samples=30_000),
    evaluations=4,
    vectorize=False,
)


#: The executor fields of a local sweep.
_LOCAL = {"executor": "local", "ray_address": None}


@pytest.fixture(scope="module")
def ray_module():
    """Ray, started once: 2 CPUs, bound to 127.0.0.1, no dashboard, no usage report."""
    with pytest.MonkeyPatch.context() as patch:
        # Ray replaces a loopback node address by the machine's own unless its "no cluster"
        # switch (meant for laptops) is off; it is read when ray is first imported.
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray = pytest.importorskip("ray", reason="the ray extra is not installed")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep on the local executor (this process)."""
    return run_sweep(CONFIG, tmp_path_factory.mktemp("local"), progress=False)


def _untimed(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=list(TIMING_COLUMNS))


def _assert_same_sweep(result, reference) -> None:
    pd.testing.assert_frame_equal(_untimed(result.rows), _untimed(reference.rows))
    pd.testing.assert_frame_equal(result.selection, reference.selection)
    pd.testing.assert_frame_equal(
        _untimed(pd.read_parquet(result.root / "results.parquet")), _untimed(reference.rows)
    )


def test_ray_sweep_writes_the_rows_of_the_local_executor_and_resumes(
    ray_module, reference, tmp_path
):
    from anisoada.experiments.ray_executor import RayExecutor

    executor = RayExecutor()
    result = run_sweep(CONFIG, tmp_path, executor=executor, progress=False)
    assert result.rows["run_id"].nunique() == 8
    _assert_same_sweep(result, reference)
    assert executor.retried == []
    # Named in the configuration instead (as `executor = "ray"` in TOML): the same executor
    # kind, and every run is found stored, so nothing is trained or rewritten.
    stamps = {path: path.stat().st_mtime_ns for path in tmp_path.glob("runs/*/*")}
    again = run_sweep(dataclasses.replace(CONFIG, executor="ray"), tmp_path, progress=False)
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps
    _assert_same_sweep(again, reference)


def _training_worker(deadline: float) -> tuple[int, str]:
    """``(pid, run_id)`` of a Ray worker that is training a run (its title is ``ray::run:<id>``)
    and still is a moment later, so that killing it kills a run in the middle."""
    title = re.compile(rb"ray::run:([0-9a-f]+)")
    seen: dict[int, str] = {}
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                match = title.match((entry / "cmdline").read_bytes())
            except OSError:
                continue
            if match is None:
                continue
            pid, run_id = int(entry.name), match.group(1).decode()
            if seen.get(pid) == run_id:
                return pid, run_id
            seen[pid] = run_id
        time.sleep(0.01)
    raise AssertionError("no Ray worker was seen training a run")


def test_a_worker_killed_mid_run_is_retried_and_the_rows_are_unchanged(
    ray_module, reference, tmp_path
):
    from anisoada.experiments.ray_executor import RETRIES_FILE, RayExecutor

    executor = RayExecutor(max_retries=2)
    outcome: dict[str, object] = {}

    def sweep() -> None:
        try:
            outcome["result"] = run_sweep(CONFIG, tmp_path, executor=executor, progress=False)
        except BaseException as error:
            outcome["error"] = error

    driver = threading.Thread(target=sweep)
    driver.start()
    try:
        pid, run_id = _training_worker(time.monotonic() + 60)
        os.kill(pid, signal.SIGKILL)
    finally:
        driver.join(timeout=180)
    assert not driver.is_alive() and "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    _assert_same_sweep(result, reference)
    # The retry is recorded (on the executor and beside the run), nothing else failed, and the
    # dead attempt left no temporary file behind.
    assert [(retry.run_id, retry.attempt) for retry in executor.retried] == [(run_id, 1)]
    assert executor.retried[0].error.startswith("WorkerCrashedError: ")
    history = json.loads((ResultsStore(tmp_path).run_dir(run_id) / RETRIES_FILE).read_text())
    assert [(entry["run_id"], entry["attempt"]) for entry in history] == [(run_id, 1)]
    assert result.failures == ()
    assert list(tmp_path.rglob("failed.json")) == []
    assert [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")] == []


def test_retries_are_bounded_and_the_next_invocation_completes_the_run(ray_module, tmp_path):
    from anisoada.experiments.ray_executor import RETRIES_FILE, RayExecutor

    run = TOY.make_run(CONFIG.optimizers[0], 4, (0.5,), 0, CONFIG.settings)
    executor = RayExecutor(max_retries=1)
    outcome: dict[str, object] = {}
    driver = threading.Thread(
        target=lambda: outcome.update(failures=executor.run([run], tmp_path, progress=False))
    )
    driver.start()
    try:
        for _ in range(2):  # the first attempt and its one retry
            pid, run_id = _training_worker(time.monotonic() + 60)
            assert run_id == run.run_id
            os.kill(pid, signal.SIGKILL)
            while Path(f"/proc/{pid}").exists() and driver.is_alive():
                time.sleep(0.01)
    finally:
        driver.join(timeout=120)
    (failure,) = outcome["failures"]
    assert failure.run_id == run.run_id
    assert failure.error.startswith("its worker died in each of 2 attempts: WorkerCrashedError")
    store = ResultsStore(tmp_path)
    history = json.loads((store.run_dir(run.run_id) / RETRIES_FILE).read_text())
    assert [entry["attempt"] for entry in history] == [1, 2]
    assert not store.is_complete(run.run_id)
    assert [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")] == []
    # The next invocation (a re-run of the sweep) trains it.
    assert executor.run([run], tmp_path, progress=False) == []
    assert store.is_complete(run.run_id)


def test_the_command_line_runs_a_sweep_on_ray(ray_module, tmp_path):
    from anisoada.cli import main

    path = tmp_path / "small.toml"
    path.write_text(sweep_config_toml(dataclasses.replace(CONFIG, batch_sizes=(32,))))
    flags = ["sweep", str(path), "--optimizer", "sgd", "--no-progress"]
    assert main([*flags, "--out", str(tmp_path / "local")]) == 0
    assert main([*flags, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    rows = [pd.read_parquet(tmp_path / name / "results.parquet") for name in ("local", "ray")]
    assert rows[0]["run_id"].nunique() == 2
    pd.testing.assert_frame_equal(_untimed(rows[1]), _untimed(rows[0]))
    assert 'executor = "ray"' in (tmp_path / "ray" / "sweep.toml").read_text()


def test_a_run_that_raises_is_recorded_and_the_others_finish(ray_module, tmp_path):
    from anisoada.experiments.ray_executor import RayExecutor

    # A LIBSVM file that vanishes after the spec was made: its run raises when it loads it.
    data = tmp_path / "gone.svm"
    data.write_text("+1 1:0.5 3:1\n-1 2:1\n+1 1:1 2:0.25\n-1 3:0.5\n")
    gone = DatasetSpec.from_file(data, holdout=0.25)
    data.unlink()
    settings = CONFIG.settings
    sgd = CONFIG.optimizers[0]
    good = [TOY.make_run(sgd, batch_size, (0.5,), 0, settings) for batch_size in (4, 8)]
    broken = gone.make_run(sgd, 2, (0.5,), 0, settings)
    runs = [good[0], broken, good[1]]

    local = LocalExecutor().run(runs, tmp_path / "local", progress=False)
    on_ray = RayExecutor(max_in_flight=1).run(runs, tmp_path / "ray", progress=False)
    assert [(f.run_id, f.error) for f in on_ray] == [(f.run_id, f.error) for f in local]
    assert [f.run_id for f in on_ray] == [broken.run_id]
    assert "gone.svm" in on_ray[0].error and "\n" not in on_ray[0].error
    assert "Traceback" in on_ray[0].traceback
    stores = [ResultsStore(tmp_path / name) for name in ("local", "ray")]
    for store in stores:
        assert [store.is_complete(run.run_id) for run in runs] == [True, False, True]
    ids = [run.run_id for run in good]
    pd.testing.assert_frame_equal(
        _untimed(stores[1].read_rows(ids)), _untimed(stores[0].read_rows(ids))
    )


_NO_RAY = """
import sys
from anisoada.cli import main

out = sys.argv[1]
flags = ["sweep", "--dataset", "synthetic", "--optimizer", "sgd", "--batch-sizes", "64",
         "--lr-grid", "1:1:1", "--max-extensions", "0", "--budget-samples", "128",
         "--evaluations", "1", "--no-progress"]
assert main([*flags, "--out", out + "/local"]) == 0
assert "ray" not in sys.modules, "the local executor imported ray"
sys.modules["ray"] = None  # as if the ray extra were not installed
print("status", main([*flags, "--out", out + "/ray", "--executor", "ray"]))
"""


def test_ray_is_imported_only_when_chosen_and_its_absence_is_one_line(tmp_path):
    process = subprocess.run(
        [sys.executable, "-c", _NO_RAY, str(tmp_path)], capture_output=True, text=True
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip().splitlines()[-1] == "status 2"
    errors = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("anisoada sweep: error: ")
    assert errors[0].endswith(
        "the ray executor needs Ray, which is not installed: pip install 'anisoada[ray]'"
    )
    assert not (tmp_path / "ray").exists()


def test_the_executor_is_part_of_the_sweep_file_and_the_command_line(tmp_path):
    from anisoada.cli import build_parser
    from anisoada.cli.sweep import sweep_config_from_args

    payload = {
        "batch_sizes": [8],
        "budget": {"samples": 64},
        "datasets": [{"name": "toy", "source": "synthetic", "n": 100}],
        "optimizers": [{"name": "sgd"}],
        "executor": "ray",
        "ray_address": "10.0.0.1:6379",
    }
    config = sweep_config_from_dict(payload)
    assert (config.executor, config.ray_address) == ("ray", "10.0.0.1:6379")
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_config_toml(config))
    assert load_sweep_config(path) == config
    # The local executor's file is unchanged by the new keys.
    assert "executor" not in sweep_config_toml(dataclasses.replace(config, **_LOCAL))
    for bad, message in (
        ({"executor": "dask"}, "unknown executor 'dask'"),
        ({"executor": "local", "ray_address": "auto"}, "is for the ray executor"),
    ):
        with pytest.raises(ValueError, match=message):
            sweep_config_from_dict({**payload, **bad})

    def parsed(*argv: str) -> SweepConfig:
        args = build_parser().parse_args(["sweep", str(path), *argv, "--out", "unused"])
        return sweep_config_from_args(args)

    assert parsed().executor == "ray"
    assert (parsed("--executor", "local").executor, parsed("--executor", "local").ray_address) == (
        "local",
        None,
    )
    assert parsed("--ray-address", "auto").ray_address == "auto"
    from anisoada.cli.lm import sweep_from_args

    lm = sweep_from_args(
        build_parser().parse_args(
            ["lm", "--lr", "0.1", "--executor", "ray", "--ray-address", "auto"]
        )
    )
    assert (lm.executor, lm.ray_address) == ("ray", "auto")
    with pytest.raises(ValueError, match="jobs sets the local pool"):
        default_executor(2, kind="ray")
    with pytest.raises(ValueError, match="needs the ray executor"):
        default_executor(1, ray_address="auto")


def test_ray_executor_arguments_are_checked(ray_module):
    from anisoada.experiments.ray_executor import RayExecutor

    for options, message in (
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"max_in_flight": 0}, "max_in_flight must be a positive integer"),
        ({"address": "auto", "num_cpus": 2}, "num_cpus sizes a local Ray instance"),
        ({"address": " "}, "Ray address must be"),
    ):
        with pytest.raises(ValueError, match=message):
            RayExecutor(**options)
