"""The Ray executor against the local pool: speed-up of 2 workers over 1, overhead per run.

One sweep of 16 logistic runs (2 optimizers x 2 batch sizes x 4 learning rates, one run per
rate, on the synthetic problem), every sweep into a fresh directory so that nothing is skipped,
all measured in this one process:

* **speed-up** — the sweep on a local Ray instance of 1 CPU against one of 2 CPUs, both with
  warm workers (a warm-up sweep first: the workers' imports and data happen once per worker, not
  per run). Target: >= 1.7x on 2 cores.
* **overhead per run** — what Ray adds to each run over the local pool of 2 processes: the
  per-run slope of each executor, ``(wall(32 runs) - wall(16 runs)) / 16`` (the 32-run sweep is
  the same with 2 seeds), Ray's minus the pool's. Fixed costs (starting Ray, the pool's
  processes, the driver's selection and tables) cancel in the slopes and are printed apart.
  Target: <= 50 ms.

The rows of the Ray sweep are checked equal to the local pool's (timings aside). Exits 1 when a
target is missed. For context, the machine's own ceiling is printed too: how much faster two
busy processes finish a fixed loop than one (below 2x when other work holds the cores).

Run: ``python benchmarks/ray_executor.py`` (needs ``pip install 'anisoada[ray]'``)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from anisoada.experiments import (
    DatasetSpec,
    LocalExecutor,
    LRGrid,
    OptimizerSpec,
    SweepConfig,
    SweepResult,
    run_sweep,
)
from anisoada.schema import TIMING_COLUMNS
from anisoada.train import Budget

SPEED_UP_TARGET = 1.7
OVERHEAD_TARGET_MS = 50.0


def _config(samples: int, seeds: int) -> SweepConfig:
    return SweepConfig(
        name="ray-benchmark",
        problems=(DatasetSpec.create("toy", "synthetic", {"n": 400, "n_test": 100, "d": 30}),),
        optimizers=(OptimizerSpec.create("sgd"), OptimizerSpec.create("adagrad")),
        batch_sizes=(4, 8),
        lr_grid=LRGrid(low=0.01, high=10.0, per_decade=1, max_extensions=0),
        budget=Budget(samples=samples),
        evaluations=4,
        vectorize=False,
        seeds=seeds,
    )


def _timed(config: SweepConfig, executor: Any, scratch: Path) -> tuple[float, SweepResult]:
    out = Path(tempfile.mkdtemp(dir=scratch))
    started = time.perf_counter()
    result = run_sweep(config, out, executor=executor, progress=False)
    return time.perf_counter() - started, result


def _parallel_ceiling(loops: int = 3_000_000) -> float:
    """Wall time of one process running a fixed loop over that of two running it side by side."""
    command = [sys.executable, "-c", f"sum(i * i for i in range({loops}))"]

    def wall(processes: int) -> float:
        started = time.perf_counter()
        for process in [subprocess.Popen(command) for _ in range(processes)]:
            process.wait()
        return time.perf_counter() - started

    return 2 * wall(1) / wall(2)


def _untimed(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=list(TIMING_COLUMNS))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6000, help="sample budget of a run")
    options = parser.parse_args(argv)
    # A local instance on this machine only (loopback), no usage report.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from anisoada.experiments.ray_executor import RayExecutor

    single, double = _config(options.samples, 1), _config(options.samples, 2)
    runs = 16
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        wall["pool 16"], local = _timed(single, LocalExecutor(2), scratch)
        wall["pool 32"], _ = _timed(double, LocalExecutor(2), scratch)

        two = RayExecutor(num_cpus=2)
        wall["ray2 first"], _ = _timed(single, two, scratch)  # starts Ray, warms the workers
        wall["ray2 16"], on_ray = _timed(single, two, scratch)
        wall["ray2 32"], _ = _timed(double, two, scratch)
        two.close()
        one = RayExecutor(num_cpus=1)
        wall["ray1 first"], _ = _timed(single, one, scratch)
        wall["ray1 16"], _ = _timed(single, one, scratch)
        one.close()

    ceiling = _parallel_ceiling()
    assert on_ray.rows["run_id"].nunique() == runs
    pd.testing.assert_frame_equal(_untimed(on_ray.rows), _untimed(local.rows))
    speed_up = wall["ray1 16"] / wall["ray2 16"]
    pool_slope = (wall["pool 32"] - wall["pool 16"]) / runs
    ray_slope = (wall["ray2 32"] - wall["ray2 16"]) / runs
    overhead_ms = 1000 * (ray_slope - pool_slope)

    print(f"sweep: {runs} logistic runs of {options.samples} samples (and 32 with 2 seeds)")
    print(f"{'measurement':<56} {'seconds':>9}")
    for label, key in (
        ("local pool, 2 processes, 16 runs [baseline]", "pool 16"),
        ("local pool, 2 processes, 32 runs [baseline]", "pool 32"),
        ("ray, 2 CPUs, first sweep (Ray start, worker imports)", "ray2 first"),
        ("ray, 2 CPUs, 16 runs", "ray2 16"),
        ("ray, 2 CPUs, 32 runs", "ray2 32"),
        ("ray, 1 CPU, first sweep (Ray start, worker imports)", "ray1 first"),
        ("ray, 1 CPU, 16 runs", "ray1 16"),
    ):
        print(f"{label:<56} {wall[key]:9.3f}")
    print(f"per-run slope: local pool {1000 * pool_slope:.1f} ms, ray {1000 * ray_slope:.1f} ms")
    print(f"this machine now: 2 busy processes finish {ceiling:.2f}x the work of 1 (ceiling)")
    speed_ok = speed_up >= SPEED_UP_TARGET
    overhead_ok = overhead_ms <= OVERHEAD_TARGET_MS
    print(
        f"speed-up of 2 Ray workers over 1: {speed_up:.2f}x (target >= {SPEED_UP_TARGET}x): "
        f"{'OK' if speed_ok else 'BELOW TARGET'}"
    )
    print(
        f"Ray's overhead per run against the local pool: {overhead_ms:.1f} ms (target <= "
        f"{OVERHEAD_TARGET_MS:.0f} ms): {'OK' if overhead_ok else 'ABOVE TARGET'}"
    )
    return 0 if speed_ok and overhead_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
