"""The logistic task: agreement with the closed forms, resumable sampling, lanes = separate runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import expit, log_expit

from anisoada.data import make_sparse_logistic, rotated_twin
from anisoada.experiments import OptimizerSpec, build_optimizer
from anisoada.experiments.tasks import LogisticTask, sample_rows
from anisoada.experiments.tasks.logistic import _EVALUATION_ROWS, _loss_terms
from anisoada.problems.logistic import logistic_gradient, logistic_loss
from anisoada.train import Budget, TrainConfig, train


@pytest.fixture(scope="module")
def problem():
    return make_sparse_logistic(600, 40, exponent=1.0, density=0.1, seed=3)


@pytest.mark.parametrize("dense", [False, True])
def test_batch_loss_and_gradient_equal_the_closed_forms(problem, dense):
    X = problem.X.toarray() if dense else problem.X
    rng = np.random.default_rng(0)
    W = rng.normal(size=(40, 3))
    task = LogisticTask(X, problem.y, lanes=3, initial=W)
    rows = rng.integers(0, 600, size=50)
    loss = task.loss(rows)
    np.testing.assert_allclose(
        loss.detach().numpy(), logistic_loss(X[rows], problem.y[rows], W), rtol=1e-13
    )
    # d/dW Σ_k a_k f_k(W[:, k]) = a_k ∇f_k: the lanes stay independent under any weighting.
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    (loss * weights).sum().backward()
    expected = logistic_gradient(X[rows], problem.y[rows], W) * weights.numpy()
    np.testing.assert_allclose(task.weights.grad.numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dense", [False, True])
def test_gradients_are_the_plain_expressions_to_the_bit_and_losses_scipys_to_rounding(
    problem, dense
):
    # The task multiplies signed rows y_i x_i in SciPy's kernels; the plain expressions
    # multiply x_i and then y_i. Multiplying by ±1 is exact, so the gradient must agree bit for
    # bit; the loss terms are NumPy's log1p(exp(-|m|)) - min(m, 0), SciPy's log_expit to
    # rounding.
    X = problem.X.toarray() if dense else problem.X
    y = problem.y
    W = np.random.default_rng(5).normal(size=(40, 3)) * 4  # margins of either sign, up to ~20
    task = LogisticTask(X, y, lanes=3, initial=W)
    rows = np.random.default_rng(6).integers(0, 600, size=37)
    losses = task.accumulate_gradient(rows, 1.0).numpy()
    margins = y[rows, None] * (X[rows] @ W)
    gradient = X[rows].T @ (-y[rows, None] * expit(-margins)) / len(rows)
    np.testing.assert_array_equal(task.weights.grad.numpy(), gradient)
    full = y[:, None] * (X @ W)
    np.testing.assert_allclose(losses, _exact_mean_losses(margins), rtol=2e-15)
    np.testing.assert_allclose(task.evaluate()["train_loss"], _exact_mean_losses(full), rtol=2e-15)


def _exact_mean_losses(margins):
    """Per column, the mean of SciPy's ``-log_expit`` summed exactly (``math.fsum``)."""
    return np.array([math.fsum(-log_expit(column)) / len(column) for column in margins.T])


def test_loss_terms_are_log_expit_to_rounding_and_each_depends_on_its_margin_alone():
    # The property behind "lane k = a run with lane k alone": a term's bits depend on its
    # margin only, not on where it sits in the buffer (SIMD body or tail) nor on the lanes.
    rng = np.random.default_rng(0)
    margins = np.concatenate(
        [rng.normal(scale=30, size=997), [0.0, -0.0, 1e-300, -745.0, 750.0, 40.0, -40.0]]
    )
    margins = np.concatenate([margins, [np.inf, -np.inf]])
    terms = _loss_terms(margins[:, None])[0]
    np.testing.assert_allclose(terms[:-2], -log_expit(margins[:-2]), rtol=4e-16, atol=0)
    assert terms[-2] == 0.0 and terms[-1] == np.inf
    for offset in range(9):
        for length in (1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 100):
            part = margins[offset : offset + length]
            np.testing.assert_array_equal(
                _loss_terms(part[:, None])[0], terms[offset : offset + length]
            )
    for lanes in (2, 5, 12):  # the same margins in a (M, K) block, each lane a shifted copy
        block = np.stack([np.roll(margins, k) for k in range(lanes)], axis=1)
        for k in range(lanes):
            np.testing.assert_array_equal(_loss_terms(block)[k], np.roll(terms, k))


def test_evaluation_in_blocks_equals_the_closed_forms_and_one_lane_runs():
    # More rows than two evaluation blocks: the blocked sums, the test metrics summed over
    # blocks, and lane k equal to a task holding lane k alone.
    n = 2 * _EVALUATION_ROWS + 917
    data = make_sparse_logistic(n, 30, exponent=1.0, density=0.2, seed=8)
    X_test, y_test = data.X[: _EVALUATION_ROWS + 5], data.y[: _EVALUATION_ROWS + 5]
    W = np.random.default_rng(9).normal(size=(30, 3))
    W[:, 1] = 0.0
    task = LogisticTask(data.X, data.y, lanes=3, initial=W, X_test=X_test, y_test=y_test)
    metrics = task.evaluate()
    train_margins = data.y[:, None] * (data.X @ W)
    np.testing.assert_allclose(metrics["train_loss"], _exact_mean_losses(train_margins), rtol=4e-15)
    assert metrics["train_loss"][1] == pytest.approx(np.log(2.0), rel=1e-15)  # w = 0
    margins = y_test[:, None] * (X_test @ W)
    np.testing.assert_allclose(metrics["test_loss"], _exact_mean_losses(margins), rtol=4e-15)
    right = (margins > 0).mean(axis=0)
    np.testing.assert_array_equal(metrics["test_accuracy"][[0, 2]], right[[0, 2]])
    assert metrics["test_accuracy"][1] == 0.5
    for k in range(3):
        alone = LogisticTask(data.X, data.y, initial=W[:, k], X_test=X_test, y_test=y_test)
        for name, values in alone.evaluate().items():
            np.testing.assert_array_equal(values, metrics[name][[k]], err_msg=name)


def test_evaluate_equals_the_closed_forms(problem):
    W = np.random.default_rng(1).normal(size=(40, 2))
    X_test, y_test = problem.X[:100], problem.y[:100]
    task = LogisticTask(problem.X, problem.y, lanes=2, initial=W, X_test=X_test, y_test=y_test)
    metrics = task.evaluate()
    np.testing.assert_allclose(metrics["train_loss"], logistic_loss(problem.X, problem.y, W))
    np.testing.assert_allclose(metrics["test_loss"], logistic_loss(X_test, y_test, W))
    margins = y_test[:, None] * (X_test @ W)
    np.testing.assert_allclose(metrics["test_accuracy"], (margins > 0).mean(axis=0))
    # At w = 0 every margin is a tie: accuracy 1/2, loss log 2.
    zero = LogisticTask(problem.X, problem.y, X_test=X_test, y_test=y_test).evaluate()
    assert zero["test_accuracy"][0] == 0.5
    assert zero["train_loss"][0] == pytest.approx(np.log(2.0), rel=1e-15)


@pytest.mark.parametrize("dense", [False, True])
def test_evaluate_lanes_is_evaluate_of_those_lanes_to_the_bit(problem, dense):
    X = problem.X.toarray() if dense else problem.X
    W = np.random.default_rng(4).normal(size=(40, 4))
    W[:, 1] = 0.0  # every test margin a tie: accuracy exactly 1/2
    X_test, y_test = X[:100], problem.y[:100]
    task = LogisticTask(X, problem.y, lanes=4, initial=W, X_test=X_test, y_test=y_test)
    everything = task.evaluate()
    for lanes in ([0, 1, 2, 3], [3], [1, 3], [0, 2, 3]):
        some = task.evaluate_lanes(lanes)
        assert some.keys() == everything.keys()
        for name, values in some.items():
            np.testing.assert_array_equal(values, everything[name][lanes], err_msg=name)
    assert task.evaluate_lanes([1])["test_accuracy"][0] == 0.5
    # One lane alone in a task of its own: the same numbers again (lanes = separate runs).
    alone = LogisticTask(X, problem.y, initial=W[:, 2], X_test=X_test, y_test=y_test).evaluate()
    for name, values in alone.items():
        np.testing.assert_array_equal(values, everything[name][[2]], err_msg=name)


def test_sample_rows_resumes_exactly_and_is_uniform():
    stream = sample_rows(7, 5, seed=11)
    first = np.stack([next(stream) for _ in range(600)])
    for start in (0, 1, 255, 256, 257, 599):
        resumed = sample_rows(7, 5, seed=11, start_step=start)
        np.testing.assert_array_equal(next(resumed), first[start])
    counts = np.bincount(first.ravel(), minlength=7) / first.size
    np.testing.assert_allclose(counts, 1 / 7, atol=0.02)  # 3000 draws: 5 standard errors
    other = np.stack([next(sample_rows(7, 5, seed=12)) for _ in range(1)])
    assert not np.array_equal(other[0], first[0])


@pytest.mark.parametrize("n", [1, 7, 49_749, 3_000_000_000, 10**12])
@pytest.mark.parametrize("start", [0, 3, 255, 256, 300])
def test_sample_rows_are_the_chunk_draws_however_the_first_chunk_is_cut(n, start):
    # Stored runs were trained on these rows: step t's are row t % 256 of one draw of
    # default_rng([seed, t // 256]) over the whole chunk. The stream draws its first chunk in
    # growing prefixes (a short run draws little), which must not change a single index —
    # for the 32-bit and the 64-bit paths of NumPy's bounded integers alike.
    batch_size, steps = 3, 600 - start
    stream = sample_rows(n, batch_size, seed=4, start_step=start)
    got = np.stack([next(stream) for _ in range(steps)])
    chunks = {
        c: np.random.default_rng([4, c]).integers(0, n, size=(256, batch_size)) for c in range(3)
    }
    expected = np.stack([chunks[t // 256][t % 256] for t in range(start, start + steps)])
    np.testing.assert_array_equal(got, expected)


def _run(X, y, optimizer, lrs, *, batch_size=16, steps=120, factor=100.0):
    task = LogisticTask(X, y, lanes=len(lrs))
    opt = build_optimizer(OptimizerSpec.create(optimizer), task.parameters(), lrs)
    config = TrainConfig(
        batch_size=batch_size,
        budget=Budget(steps=steps),
        seed=5,
        eval_every=30,
        divergence_factor=factor,
    )
    return train(task, opt, config), task.weights.detach().numpy().copy()


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "adagrad_norm"])
@pytest.mark.parametrize("rotated", [False, True])
def test_vectorised_lanes_equal_separate_runs(problem, optimizer, rotated):
    data = rotated_twin(problem, seed=2) if rotated else problem
    lrs = [0.01, 0.1, 1.0, 10.0]
    stacked, stacked_weights = _run(data.X, data.y, optimizer, lrs)
    for lane, lr in enumerate(lrs):
        single, single_weights = _run(data.X, data.y, optimizer, [lr])
        mine = [row for row in stacked.rows if row["lane"] == lane]
        assert [r["step"] for r in mine] == [r["step"] for r in single.rows]
        for key in ("train_loss", "batch_loss", "lr"):
            np.testing.assert_allclose(
                [r[key] for r in mine], [r[key] for r in single.rows], rtol=1e-12
            )
        # Float rounding only: summation order inside the sparse products may differ.
        np.testing.assert_allclose(stacked_weights[:, lane], single_weights[:, 0], rtol=1e-11,
                                   atol=1e-14)  # fmt: skip
        assert stacked.status[lane] == single.status[0]


def test_diverging_lanes_stop_alone_and_match_separate_runs(problem):
    # A factor just above 1 makes the largest step sizes "diverge" on their first noisy bump.
    lrs = [0.01, 300.0]
    stacked, _ = _run(problem.X, problem.y, "sgd", lrs, factor=1.5)
    assert stacked.status == ["finished", "diverged"]
    single, _ = _run(problem.X, problem.y, "sgd", [300.0], factor=1.5)
    assert single.status == ["diverged"]
    mine = [row for row in stacked.rows if row["lane"] == 1]
    assert [r["step"] for r in mine] == [r["step"] for r in single.rows]
    assert np.isnan(mine[-1]["train_loss"]) and mine[-1]["step"] < 120
    assert max(row["step"] for row in stacked.rows if row["lane"] == 0) == 120


def test_bad_inputs_are_clear_errors(problem):
    with pytest.raises(ValueError, match="labels -1 and \\+1"):
        LogisticTask(problem.X, np.zeros(600))
    with pytest.raises(ValueError, match="both X_test and y_test"):
        LogisticTask(problem.X, problem.y, X_test=problem.X)
    with pytest.raises(ValueError, match="lanes"):
        LogisticTask(problem.X, problem.y, lanes=0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(OptimizerSpec.create("adam"), [torch.zeros(2, 1)], [0.1])
