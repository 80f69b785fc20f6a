"""The Ray executor against the local pool: speed-up of 2 workers over 1, overhead per run.

One sweep of 16 logistic runs (2 optimizers x 2 batch sizes x 4 learning rates, one run per
rate, on the synthetic problem), every sweep into a fresh directory so that nothing is skipped,
all measured in this one process on one local Ray instance of 2 CPUs, after a warm-up sweep (a
worker's imports and data are paid once per worker, not per run). Each measurement is the median
of ``--repeats`` rounds, the executors taking turns within each round (so that a change in the
machine's load falls on all of them).

* **speed-up** — the sweep with at most 1 run in flight (``RayExecutor(max_in_flight=1)``: one
  worker busy) against 2 (both CPUs). Target: >= 1.7x on 2 cores.
* **overhead per run** — what Ray adds to each run over the local pool of 2 processes: the
  per-run slope of each executor, ``(wall(32 runs) - wall(16 runs)) / 16`` (the 32-run sweep is
  the same with 2 seeds), Ray's minus the pool's. Fixed costs (starting Ray, the pool's
  processes, the driver's selection and tables) cancel in the slopes; Ray's start is printed
  apart. Target: <= 50 ms.

The rows of the Ray sweep are checked equal to the local pool's (timings aside). Exits 1 when a
target is missed. For context, the machine's own ceiling is printed too: how much faster two
busy processes finish a fixed loop than one (below 2x when other work holds the cores).

Run: ``python benchmarks/ray_executor.py`` (needs ``pip install 'anisoada[ray]'``)
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    parser.add_argument("--repeats", type=int, default=3, help="rounds (medians are shown)")
    options = parser.parse_args(argv)
    # A local instance on this machine only (loopback), no usage report.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from anisoada.experiments.ray_executor import RayExecutor

    single, double = _config(options.samples, 1), _config(options.samples, 2)
    runs = 16
    walls: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        two = RayExecutor(num_cpus=2)
        first, _ = _timed(single, two, scratch)  # starts Ray and warms both workers
        one = RayExecutor(max_in_flight=1)  # the same instance, one run at a time
        for _ in range(options.repeats):
            for key, config, executor in (
                ("pool 16", single, LocalExecutor(2)),
                ("pool 32", double, LocalExecutor(2)),
                ("ray2 16", single, two),
                ("ray2 32", double, two),
                ("ray1 16", single, one),
            ):
                seconds, result = _timed(config, executor, scratch)
                walls.setdefault(key, []).append(seconds)
                if key == "pool 16":
                    local = result
                if key == "ray2 16":
                    on_ray = result
        two.close()
    wall = {key: statistics.median(values) for key, values in walls.items()}
    ceiling = _parallel_ceiling()
    assert on_ray.rows["run_id"].nunique() == runs
    pd.testing.assert_frame_equal(_untimed(on_ray.rows), _untimed(local.rows))
    speed_up = wall["ray1 16"] / wall["ray2 16"]
    pool_slope = (wall["pool 32"] - wall["pool 16"]) / runs
    ray_slope = (wall["ray2 32"] - wall["ray2 16"]) / runs
    overhead_ms = 1000 * (ray_slope - pool_slope)

    print(
        f"sweep: {runs} logistic runs of {options.samples} samples (and 32 with 2 seeds); "
        f"medians of {options.repeats} rounds"
    )
    print(f"{'measurement':<56} {'seconds':>9}")
    print(f"{'ray, first sweep (starts Ray, imports in the workers)':<56} {first:9.3f}")
    for label, key in (
        ("local pool, 2 processes, 16 runs [baseline]", "pool 16"),
        ("local pool, 2 processes, 32 runs [baseline]", "pool 32"),
        ("ray, 2 runs in flight, 16 runs", "ray2 16"),
        ("ray, 2 runs in flight, 32 runs", "ray2 32"),
        ("ray, 1 run in flight, 16 runs [baseline]", "ray1 16"),
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
