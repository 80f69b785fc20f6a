"""The one training loop: exact values on a quadratic, micro-batching, divergence, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anisoada.experiments import OptimizerSpec, build_optimizer
from anisoada.experiments.tasks import QuadraticTask
from anisoada.train import (
    Budget,
    Callback,
    Checkpointer,
    LRSchedule,
    TrainConfig,
    load_checkpoint,
    train,
)

TIMING = {"train_time"}


def _strip(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _assert_rows_equal(a, b, rtol=0.0):
    assert len(a) == len(b)
    for row_a, row_b in zip(_strip(a), _strip(b)):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            x, y = row_a[key], row_b[key]
            if isinstance(x, float) and math.isnan(x):
                assert math.isnan(y), key
            else:
                assert x == pytest.approx(y, rel=rtol, abs=0.0), key


def test_deterministic_sgd_matches_closed_form():
    # w_t = w* + (1 − η h)^t (w_1 − w*), so f(w_T) = ½ Σ h_j (1 − η h_j)^{2T} (w_1 − w*)_j².
    h = np.array([1.0, 10.0, 0.3])
    start = np.array([1.0, -2.0, 0.5])
    task = QuadraticTask(curvatures=h, initial=start, minimiser=[0.5, 0.0, 0.0])
    lr, steps = 0.05, 37
    result = train(
        task,
        torch.optim.SGD(task.parameters(), lr=lr),
        TrainConfig(batch_size=4, budget=Budget(steps=steps), eval_every=10),
    )
    assert [row["step"] for row in result.rows] == [0, 10, 20, 30, 37]
    assert [row["samples"] for row in result.rows] == [0, 40, 80, 120, 148]
    gap = start - np.array([0.5, 0.0, 0.0])
    for row in result.rows:
        expected = 0.5 * np.sum(h * (1 - lr * h) ** (2 * row["step"]) * gap**2)
        assert row["loss"] == pytest.approx(expected, rel=1e-12)
        assert row["lr"] == lr
    # batch_loss is the mean mini-batch loss over the interval; without noise it is the mean
    # of f(w_t) over the interval's steps.
    interval = [0.5 * np.sum(h * (1 - lr * h) ** (2 * t) * gap**2) for t in range(10)]
    assert result.rows[1]["batch_loss"] == pytest.approx(np.mean(interval), rel=1e-12)
    assert math.isnan(result.rows[0]["batch_loss"])
    assert result.status == ["finished"] and result.steps == [steps]


def test_eval_from_skips_the_early_cadence_and_leaves_the_kept_points_unchanged():
    # Evaluations are reads: skipping some changes no parameter, so the kept points (the tail
    # a selection rule reads) carry the numbers of a run that evaluated everywhere — except
    # batch_loss, the mean over the interval since the previous row, which now spans more.
    h = np.array([1.0, 10.0, 0.3])

    def run(eval_from: int):
        task = QuadraticTask(curvatures=h, initial=[1.0, -2.0, 0.5])
        config = TrainConfig(
            batch_size=4, budget=Budget(steps=37), eval_every=5, eval_from=eval_from
        )
        return train(task, torch.optim.SGD(task.parameters(), lr=0.05), config)

    every, tail = run(0), run(25)
    assert [row["step"] for row in tail.rows] == [0, 25, 30, 35, 37]
    kept = {row["step"]: row for row in every.rows}
    for row in tail.rows[1:]:
        assert row["loss"] == kept[row["step"]]["loss"]
    losses = [0.5 * np.sum(h * (1 - 0.05 * h) ** (2 * t) * np.array([1.0, -2.0, 0.5]) ** 2)
              for t in range(25)]  # fmt: skip
    assert tail.rows[1]["batch_loss"] == pytest.approx(np.mean(losses), rel=1e-12)
    with pytest.raises(ValueError, match="eval_from must be an integer >= 0"):
        TrainConfig(batch_size=4, budget=Budget(steps=3), eval_from=-1)


def test_sample_budget_gives_fewer_steps_for_larger_batches():
    assert Budget(samples=1000).num_steps(8) == 125
    assert Budget(samples=1000).num_steps(64) == 15
    assert Budget(epochs=2.5).num_steps(100, n_train=400) == 10
    # A budget below one batch is refused, not run as one oversized step.
    with pytest.raises(ValueError, match="less than one step at batch size 64"):
        Budget(samples=10).num_steps(64)
    with pytest.raises(ValueError, match="exactly one"):
        Budget(steps=3, samples=4)
    with pytest.raises(ValueError, match="positive"):
        Budget(samples=0)
    with pytest.raises(ValueError, match="needs the training-set size"):
        Budget(epochs=1.0).num_steps(8)
    assert Budget(epochs=1.5).to_dict() == {"epochs": 1.5}


@pytest.mark.parametrize("micro", [1, 3, 5])
def test_micro_batch_size_does_not_change_results(micro):
    def run(micro_batch_size):
        task = QuadraticTask(curvatures=[1.0, 5.0, 20.0], noise=[0.5, 2.0, 1.0])
        config = TrainConfig(
            batch_size=7, budget=Budget(steps=25), micro_batch_size=micro_batch_size, eval_every=5
        )
        return train(task, torch.optim.Adagrad(task.parameters(), lr=0.3), config).rows

    # Same examples, summed in a different grouping: equal to float64 rounding.
    _assert_rows_equal(run(None), run(micro), rtol=1e-12)


def test_divergence_stops_the_run_and_marks_it():
    task = QuadraticTask(curvatures=[1.0, 10.0])
    config = TrainConfig(batch_size=1, budget=Budget(steps=1000), divergence_factor=100.0)
    # η h = 3 > 2: the error grows by |1 − 3| = 2 per step, the loss by 4: 100× after 4 steps.
    result = train(task, torch.optim.SGD(task.parameters(), lr=0.3), config)
    assert result.status == ["diverged"]
    first = 0.5 * (1 + 10)
    losses = [0.5 * (1 * 0.7 ** (2 * t) + 10 * 4**t) for t in range(10)]
    expected_step = next(t for t, value in enumerate(losses) if value > 100 * first) + 1
    assert result.steps == [expected_step]
    last = result.rows[-1]
    assert last["step"] == expected_step and math.isnan(last["loss"])
    assert len(result.rows) == 2  # the initial evaluation and the divergence row


def test_non_finite_loss_diverges_even_without_a_factor():
    task = QuadraticTask(curvatures=[1.0], initial=[1e200])
    config = TrainConfig(batch_size=1, budget=Budget(steps=50), divergence_factor=None)
    result = train(task, torch.optim.SGD(task.parameters(), lr=10.0), config)
    assert result.status == ["diverged"]
    assert result.steps[0] < 50


class _LaneCountingQuadratic(QuadraticTask):
    """A quadratic task that can evaluate some lanes only, and records which it was asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked = []

    def evaluate_lanes(self, lanes):
        self.asked.append(list(lanes))
        return {"loss": self.evaluate()["loss"][list(lanes)]}


def test_after_a_divergence_only_the_running_lanes_are_evaluated():
    # Lane 1 has η h = 0.3 · 10 = 3 > 2 and diverges after 5 steps (as in the test above);
    # lanes 0 and 2 converge. From then on a task that can is asked for lanes [0, 2] only.
    def run(task):
        optimizer = build_optimizer(OptimizerSpec.create("sgd"), task.parameters(), lrs)
        config = TrainConfig(batch_size=1, budget=Budget(steps=12), eval_every=2)
        return train(task, optimizer, config)

    lrs = [0.05, 0.3, 0.1]
    counting = _LaneCountingQuadratic(curvatures=[1.0, 10.0], lanes=3)
    result = run(counting)
    assert result.status == ["finished", "diverged", "finished"] and result.steps[1] == 5
    assert counting.asked == [[0, 2]] * 4  # steps 6, 8, 10, 12; steps 0, 2, 4 saw all lanes
    # The rows are those of a task without evaluate_lanes, lane for lane, to the bit — the
    # metrics of lane 2 came back second of two.
    _assert_rows_equal(result.rows, run(QuadraticTask(curvatures=[1.0, 10.0], lanes=3)).rows)
    lane_two = [row for row in result.rows if row["lane"] == 2]
    # w_t − w* = (1 − η h)^t (w_1 − w*) with η h = 0.1 and 1: f(w_12) = ½ · 0.9^24.
    assert lane_two[-1]["loss"] == pytest.approx(0.5 * 0.9**24, rel=1e-12)


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, state, task, optimizer):
        if state.step == self.step:
            state.stop_reason = "test"


def test_callback_can_stop_training_with_a_final_evaluation():
    task = QuadraticTask(curvatures=[1.0])
    config = TrainConfig(batch_size=1, budget=Budget(steps=100), eval_every=10)
    result = train(
        task, torch.optim.SGD(task.parameters(), lr=0.1), config, callbacks=[_StopAt(13)]
    )
    assert result.status == ["stopped"]
    assert [row["step"] for row in result.rows] == [0, 10, 13]
    assert result.rows[-1]["loss"] == pytest.approx(0.5 * 0.9 ** (2 * 13), rel=1e-12)


def _noisy_run(tmp_path, callbacks=(), resume=None):
    task = QuadraticTask(curvatures=[1.0, 4.0, 9.0], noise=[1.0, 0.1, 3.0])
    optimizer = torch.optim.Adagrad(task.parameters(), lr=0.5)
    schedule = LRSchedule("cosine", warmup_steps=3, total_steps=30, final_ratio=0.1)
    config = TrainConfig(batch_size=6, budget=Budget(steps=30), micro_batch_size=4, eval_every=4)
    return train(task, optimizer, config, schedule=schedule, callbacks=callbacks, resume=resume)


class _Crash(Exception):
    pass


class _CrashAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, state, task, optimizer):
        if state.step == self.step:
            raise _Crash


def test_resume_after_a_crash_is_exact(tmp_path):
    reference = _noisy_run(tmp_path)
    path = tmp_path / "ckpt.pt"
    # Crash at step 17 (no clean shutdown); the last checkpoint is from step 16.
    with pytest.raises(_Crash):
        _noisy_run(tmp_path, callbacks=[Checkpointer(path, every=8), _CrashAt(17)])
    checkpoint = load_checkpoint(path)
    assert checkpoint["loop"]["step"] == 16
    resumed = _noisy_run(tmp_path, resume=checkpoint)
    assert resumed.status == ["finished"]
    _assert_rows_equal(reference.rows, resumed.rows)
    # The learning rate followed the schedule across the resume.
    schedule = LRSchedule("cosine", warmup_steps=3, total_steps=30, final_ratio=0.1)
    assert resumed.rows[-1]["lr"] == pytest.approx(0.5 * schedule(29), rel=1e-15)


def test_a_stopped_run_resumes_from_its_final_checkpoint(tmp_path):
    reference = _noisy_run(tmp_path)
    path = tmp_path / "ckpt.pt"
    stopped = _noisy_run(tmp_path, callbacks=[Checkpointer(path, every=100), _StopAt(13)])
    assert stopped.status == ["stopped"]
    resumed = _noisy_run(tmp_path, resume=load_checkpoint(path))
    # The stop added an off-cadence evaluation row at step 13 (which also restarted the
    # batch-loss average of the next row); everything else is identical.
    assert [row["step"] for row in resumed.rows].count(13) == 1
    kept = [row for row in resumed.rows if row["step"] != 13]
    for rows in (reference.rows, kept):
        rows[[row["step"] for row in rows].index(16)]["batch_loss"] = 0.0
    _assert_rows_equal(reference.rows, kept)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_schedule_values():
    linear = LRSchedule("linear", warmup_steps=0, total_steps=4, final_ratio=0.0)
    assert [linear(t) for t in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    constant = LRSchedule("constant", warmup_steps=4)
    assert [constant(t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = LRSchedule("cosine", total_steps=2, final_ratio=0.2)
    assert cosine(1) == pytest.approx(0.2 + 0.8 * 0.5)
    with pytest.raises(ValueError, match="total_steps"):
        LRSchedule("cosine", warmup_steps=5, total_steps=5)
    with pytest.raises(ValueError, match="kind"):
        LRSchedule("exponential")


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0, budget=Budget(steps=1))
    with pytest.raises(ValueError, match="divergence_factor"):
        TrainConfig(batch_size=1, budget=Budget(steps=1), divergence_factor=0.5)
