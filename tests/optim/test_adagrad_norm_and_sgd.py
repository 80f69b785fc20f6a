"""AdaGrad-Norm's group semantics (whole group, per column, sharded) and SGD specifics."""

from __future__ import annotations

import pytest
import torch

from anisoada.optim import SGD, AdaGradNorm, adagrad_norm, sgd, squared_gradient_norm


def _grads(seed: int, shapes, steps: int):
    gen = torch.Generator().manual_seed(seed)
    return [
        [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(steps)
    ]


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_the_group_is_one_vector_two_tensors_step_like_their_concatenation(kernel) -> None:
    grads = _grads(0, [(3, 2), (4,)], 6)
    a = torch.ones(3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.ones(4, dtype=torch.float64, requires_grad=True)
    joined = torch.ones(10, dtype=torch.float64, requires_grad=True)
    split = AdaGradNorm([a, b], lr=0.3, weight_decay=0.1, kernel=kernel)
    whole = AdaGradNorm([joined], lr=0.3, weight_decay=0.1, kernel=kernel)
    for ga, gb in grads:
        a.grad, b.grad = ga, gb
        joined.grad = torch.cat([ga.reshape(-1), gb])
        split.step()
        whole.step()
    torch.testing.assert_close(torch.cat([a.detach().reshape(-1), b.detach()]), joined.detach())
    torch.testing.assert_close(split.param_groups[0]["sum"], whole.param_groups[0]["sum"])


def test_group_accumulator_is_b0_squared_plus_the_sum_of_squared_norms() -> None:
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = AdaGradNorm([w], lr=1.0, initial_accumulator_value=1.0, eps=0.0)
    w.grad = torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)  # ‖g‖² = 5
    optimizer.step()
    # ‖g‖² is computed as the square of a norm: exact up to rounding.
    assert optimizer.param_groups[0]["sum"].item() == pytest.approx(6.0, rel=1e-15)
    torch.testing.assert_close(w.detach(), -w.grad / 6.0**0.5, rtol=1e-15, atol=0)
    assert int(optimizer.state[w]["step"]) == 1


def test_delayed_adagrad_norm_first_step_uses_b0() -> None:
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = AdaGradNorm([w], lr=1.0, delayed=True, initial_accumulator_value=4.0, eps=0.0)
    w.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    optimizer.step()
    torch.testing.assert_close(w.detach(), torch.tensor([-1.5, -2.0], dtype=torch.float64))
    assert optimizer.param_groups[0]["sum"].item() == pytest.approx(29.0, rel=1e-15)


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_per_column_accumulators_equal_independent_runs(kernel) -> None:
    lrs = torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64)
    grads = _grads(1, [(5, 3), (2, 3)], 8)
    stacked = [torch.ones(5, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)]
    b2 = torch.zeros(3, dtype=torch.float64)
    runs = [[torch.ones(5, dtype=torch.float64), torch.ones(2, dtype=torch.float64)] for _ in lrs]
    run_b2 = [torch.zeros((), dtype=torch.float64) for _ in lrs]
    for g in grads:
        adagrad_norm(stacked, g, b2, lr=lrs, per_column=True, kernel=kernel)
        for k, run in enumerate(runs):
            adagrad_norm(run, [x[:, k] for x in g], run_b2[k], lr=float(lrs[k]), kernel=kernel)
    for k, run in enumerate(runs):
        for w, column in zip(stacked, run):
            torch.testing.assert_close(w[:, k], column, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(b2[k], run_b2[k], rtol=1e-14, atol=0)


def test_sharded_group_with_all_reduced_norm_equals_the_unsharded_group() -> None:
    grads = _grads(2, [(6,), (4,)], 5)
    full = [torch.ones(6, dtype=torch.float64), torch.ones(4, dtype=torch.float64)]
    full_b2 = torch.zeros((), dtype=torch.float64)
    shards = [[torch.ones(6, dtype=torch.float64)], [torch.ones(4, dtype=torch.float64)]]
    shard_b2 = [torch.zeros((), dtype=torch.float64) for _ in shards]  # one copy per rank
    for g in grads:
        adagrad_norm(full, g, full_b2, lr=0.5)
        local = [squared_gradient_norm(s, [gi]) for s, gi in zip(shards, g)]
        total = sum(local)  # what an all-reduce(SUM) of the local squared norms returns
        for rank, shard in enumerate(shards):
            adagrad_norm(shard, [g[rank]], shard_b2[rank], lr=0.5, squared_norm=total)
    torch.testing.assert_close(torch.cat([shards[0][0], shards[1][0]]), torch.cat(full))
    assert shard_b2[0].item() == pytest.approx(full_b2.item(), rel=1e-15)
    # Without the all-reduce each shard would follow its own, different step size.
    lone = [torch.ones(6, dtype=torch.float64)]
    adagrad_norm(lone, [grads[0][0]], torch.zeros((), dtype=torch.float64), lr=0.5)
    assert not torch.allclose(
        lone[0],
        torch.ones(6, dtype=torch.float64)
        - 0.5 * grads[0][0] / (squared_gradient_norm(full, grads[0]).sqrt()),
    )


def test_adagrad_norm_rejects_sparse_gradients_naming_adagrad() -> None:
    embedding = torch.nn.Embedding(5, 2, sparse=True)
    optimizer = AdaGradNorm(embedding.parameters())
    embedding(torch.tensor([1])).sum().backward()
    with pytest.raises(ValueError, match="use AdaGrad"):
        optimizer.step()


def test_per_column_needs_a_common_number_of_columns() -> None:
    with pytest.raises(ValueError, match="per_column"):
        AdaGradNorm(
            [torch.zeros(3, 2, requires_grad=True), torch.zeros(3, requires_grad=True)],
            per_column=True,
        )


def test_sgd_momentum_buffer_is_inspectable_state() -> None:
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = SGD([w], lr=0.1, momentum=0.5)
    for g in ([1.0, 2.0], [3.0, -1.0]):
        w.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
    state = optimizer.state[w]
    # b_1 = g_1; b_2 = 0.5 b_1 + g_2.
    torch.testing.assert_close(state["momentum_buffer"], torch.tensor([3.5, 0.0]).double())
    torch.testing.assert_close(w.detach(), -0.1 * torch.tensor([1.0 + 3.5, 2.0 + 0.0]).double())
    assert int(state["step"]) == 2


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_sgd_stacked_lr_tensor_equals_independent_runs(kernel) -> None:
    lrs = torch.tensor([0.01, 0.2], dtype=torch.float64)
    grads = _grads(3, [(4, 2)], 6)
    stacked, buffers = torch.ones(4, 2, dtype=torch.float64), [None]
    runs = [torch.ones(4, dtype=torch.float64) for _ in lrs]
    run_buffers = [[None] for _ in lrs]
    for (g,) in grads:
        sgd([stacked], [g], buffers, lr=lrs, momentum=0.9, nesterov=True, kernel=kernel)
        for k in range(2):
            sgd([runs[k]], [g[:, k]], run_buffers[k], lr=float(lrs[k]), momentum=0.9,
                nesterov=True, kernel=kernel)  # fmt: skip
    for k in range(2):
        torch.testing.assert_close(stacked[:, k], runs[k], rtol=1e-14, atol=1e-15)


def test_sgd_sparse_gradient_plain_works_and_momentum_is_rejected() -> None:
    embedding = torch.nn.Embedding(4, 2, sparse=True)
    before = embedding.weight.detach().clone()
    optimizer = SGD(embedding.parameters(), lr=0.5)
    embedding(torch.tensor([2])).sum().backward()
    optimizer.step()
    expected = before.clone()
    expected[2] -= 0.5
    torch.testing.assert_close(embedding.weight.detach(), expected)
    momentum = SGD(embedding.parameters(), lr=0.5, momentum=0.9)
    with pytest.raises(ValueError, match="momentum"):
        momentum.step()


def test_functional_forms_refuse_zero_eps_with_an_empty_accumulator():
    from anisoada.optim import adagrad, adagrad_norm

    w, g = torch.zeros(3), torch.zeros(3)
    with pytest.raises(ValueError, match="Invalid eps value: 0"):
        adagrad([w], [g], [torch.zeros(3)], lr=0.1, eps=0.0)
    with pytest.raises(ValueError, match="Invalid eps value: 0"):
        adagrad_norm([w], [g], torch.zeros((), dtype=torch.float64), lr=0.1, eps=0.0)
    # A positive accumulator makes eps = 0 safe.
    adagrad([w], [g], [torch.ones(3)], lr=0.1, eps=0.0)
    assert torch.equal(w, torch.zeros(3))
