"""The warm pool: every round of a sweep in the same worker processes, with the same rows."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest

from anisoada.experiments import (
    DatasetSpec,
    LRGrid,
    OptimizerSpec,
    SweepConfig,
    SweepFailedError,
    run_sweep,
)
from anisoada.reproduce._pool import WarmPool
from anisoada.schema import TIMING_COLUMNS
from anisoada.train import Budget

TOY = DatasetSpec.create("toy", "synthetic", {"n": 400, "n_test": 100, "d": 30, "density": 0.1})

# SGD's best rate here is ~3, so a grid of [0.01, 0.1] is extended upwards one value per round;
# one run per rate (not vectorised): a round of two runs, then rounds of one.
EXTENDED = SweepConfig(
    name="pool",
    problems=(TOY,),
    optimizers=(OptimizerSpec.create("sgd"),),
    batch_sizes=(32,),
    lr_grid=LRGrid(low=0.01, high=0.1, per_decade=1, max_extensions=3),
    budget=Budget(samples=800),
    evaluations=4,
    vectorize=False,
)


def _numbers(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=[c for c in TIMING_COLUMNS if c in rows]).reset_index(drop=True)


def _exited(pid: int, timeout: float = 120.0) -> bool:
    """Whether process ``pid`` ends (or is a zombie: ended, not yet reaped) within ``timeout``."""
    import time
    from pathlib import Path

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _workers() -> set[int]:
    return {int(process.pid or 0) for process in multiprocessing.active_children()}


def test_every_round_trains_in_the_same_workers_with_the_rows_of_one_process(tmp_path):
    alone = run_sweep(EXTENDED, tmp_path / "alone", progress=False)
    assert alone.selection.iloc[0]["extensions_up"] >= 1  # several rounds, some of one run
    before = _workers()
    with WarmPool(2) as pool:
        pooled = run_sweep(EXTENDED, tmp_path / "pooled", executor=pool, progress=False)
        workers = _workers() - before
        assert len(workers) == 2
        other = run_sweep(
            EXTENDED.__class__(**{**EXTENDED.__dict__, "batch_sizes": (8,)}),
            tmp_path / "other",
            executor=pool,
            progress=False,
        )
        assert _workers() - before == workers  # the same two processes for the second sweep
    # Closed with the block, the workers exit. The pool's own thread reaps them, so this test
    # watches the operating system's process table instead of joining them a second time
    # (a join racing that thread's can report a reaped process as alive).
    assert all(_exited(pid) for pid in workers)
    pd.testing.assert_frame_equal(_numbers(pooled.rows), _numbers(alone.rows))
    pd.testing.assert_frame_equal(pooled.selection, alone.selection)
    assert set(other.rows["batch_size"]) == {8}


def test_a_worker_that_died_between_two_sweeps_is_replaced(tmp_path):
    alone = run_sweep(EXTENDED, tmp_path / "alone", progress=False)
    before = _workers()
    with WarmPool(2) as pool:
        run_sweep(EXTENDED, tmp_path / "first", executor=pool, progress=False)
        victim = next(p for p in multiprocessing.active_children() if p.pid not in before)
        victim.kill()
        victim.join()
        try:  # the pool may learn of the death at once (fresh workers) or from a run's result
            run_sweep(EXTENDED, tmp_path / "second", executor=pool, progress=False)
        except SweepFailedError as error:
            assert {f.error.split(":")[0] for f in error.result.failures} == {"worker process died"}
        again = run_sweep(EXTENDED, tmp_path / "second", executor=pool, progress=False)
        assert victim.pid not in _workers()
    pd.testing.assert_frame_equal(_numbers(again.rows), _numbers(alone.rows))


def test_a_pool_needs_two_workers():
    with pytest.raises(ValueError, match="jobs >= 2"):
        WarmPool(1)
