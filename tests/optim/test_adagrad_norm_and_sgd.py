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


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_float16_group_beyond_the_float16_range_keeps_moving(kernel) -> None:
    # ‖g‖ = 10⁴·√100 = 10⁵ > 65504: a float16 norm is inf, and b² = inf would freeze the group.
    w = torch.zeros(100, dtype=torch.float16, requires_grad=True)
    optimizer = AdaGradNorm([w], lr=1.0, eps=0.0, initial_accumulator_value=1.0, kernel=kernel)
    b2, expected = 1.0, torch.zeros(100, dtype=torch.float64)
    for _ in range(2):
        w.grad = torch.full((100,), 1e4, dtype=torch.float16)
        optimizer.step()
        b2 += 100 * 1e8  # the squares of float16 10⁴ are exact in float32
        expected -= 1e4 / b2**0.5
        assert optimizer.param_groups[0]["sum"].item() == b2
        torch.testing.assert_close(w.detach(), expected.half())  # float16 rounding only


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_float16_per_column_step_sizes_below_the_float16_range_still_move(kernel) -> None:
    # Column norms² 50·(3·10⁴)² = 4.5·10¹⁰ (inf in float16); η/b ≈ 5e-9 and 5e-8 underflow there.
    lrs = torch.tensor([1e-3, 1e-2], dtype=torch.float64)
    w = torch.zeros(50, 2, dtype=torch.float16, requires_grad=True)
    optimizer = AdaGradNorm([w], lr=lrs, per_column=True, eps=0.0, initial_accumulator_value=1.0,
                            kernel=kernel)  # fmt: skip
    w.grad = torch.full((50, 2), 3e4, dtype=torch.float16)
    optimizer.step()
    b2 = 1.0 + 50 * float(torch.tensor(3e4, dtype=torch.float16)) ** 2
    torch.testing.assert_close(
        optimizer.param_groups[0]["sum"], torch.full((2,), b2, dtype=torch.float64), rtol=1e-6,
        atol=0,
    )  # fmt: skip
    expected = -(lrs / b2**0.5) * float(torch.tensor(3e4, dtype=torch.float16))
    torch.testing.assert_close(w.detach(), expected.expand(50, 2).half())


def _bfloat16_gradients(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return [
        (3 * torch.randn(s, generator=gen, dtype=torch.float64)).to(torch.bfloat16)
        for s in [(300, 7), (40, 7)]
    ]


@pytest.mark.parametrize("per_column", [False, True])
def test_bfloat16_squared_norm_is_summed_in_float32_and_both_kernels_agree(per_column) -> None:
    grads = _bfloat16_gradients(4)
    rows = [g.double().reshape(-1, 7) for g in grads]
    exact = sum((r**2).sum(dim=0) for r in rows)
    if not per_column:
        exact = exact.sum()
    results = {}
    for kernel in ("fast", "reference"):
        params = [torch.ones(g.shape, dtype=torch.bfloat16) for g in grads]
        b2 = torch.zeros(exact.shape, dtype=torch.float64)
        adagrad_norm(params, grads, b2, lr=0.1, per_column=per_column, kernel=kernel)
        # float32 sums of exact squares: ~1e-7 relative (a bfloat16 norm is off by up to 0.4%).
        torch.testing.assert_close(b2, exact, rtol=1e-6, atol=0)
        results[kernel] = params
    for fast, reference in zip(results["fast"], results["reference"]):
        if per_column:  # the fast kernel's per-column step sizes pass through bfloat16 ratios
            torch.testing.assert_close(fast, reference, rtol=0, atol=torch.finfo(fast.dtype).eps)
        else:
            assert torch.equal(fast, reference)


def test_squared_gradient_norm_of_low_precision_gradients_is_exact_to_float32() -> None:
    grads = [*_bfloat16_gradients(5), torch.full((1000,), 3e4, dtype=torch.float16)]
    params = [torch.zeros(g.shape, dtype=g.dtype) for g in grads]
    exact = sum((g.double() ** 2).sum() for g in grads)
    total = squared_gradient_norm(params, grads)
    assert total.dtype == torch.float64
    torch.testing.assert_close(total, exact, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match=r"dtype value: torch.float16"):
        squared_gradient_norm(params, grads, dtype=torch.float16)


@pytest.mark.parametrize("per_column", [False, True])
def test_low_precision_sum_of_squares_over_many_chunks(per_column, monkeypatch) -> None:
    from anisoada.optim import _adagrad_norm

    # Chunks of 12 elements: whole rows of 7 columns and a ragged last chunk.
    monkeypatch.setattr(_adagrad_norm, "UPCAST_CHUNK_NUMEL", 12)
    (g,) = _bfloat16_gradients(6)[1:]
    total = squared_gradient_norm([torch.zeros_like(g)], [g], per_column=per_column)
    exact = (g.double() ** 2).sum(dim=0 if per_column else None)
    torch.testing.assert_close(total, exact, rtol=1e-6, atol=0)


def test_functional_adagrad_norm_refuses_a_low_precision_accumulator() -> None:
    w = torch.zeros(3, dtype=torch.float16)
    for dtype in (torch.float16, torch.bfloat16):
        with pytest.raises(ValueError, match=r"state_sum dtype value: torch\.(b?float16)"):
            adagrad_norm([w], [w], torch.ones((), dtype=dtype), lr=0.1)
    adagrad_norm([w], [w], torch.ones((), dtype=torch.float32), lr=0.1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_fast_kernel_moves_low_precision_parameters_of_any_size(
    dtype, momentum, monkeypatch
) -> None:
    from anisoada.optim import _sgd

    # torch's fused CPU SGD (2.13) leaves the vectorised part of a float16/bfloat16 parameter
    # unchanged; with threshold 0 this small tensor (whole vectors) is routed as a large one.
    monkeypatch.setattr(_sgd, "FUSED_MIN_NUMEL", 0)
    grads = [g.to(dtype) for (g,) in _grads(7, [(64, 4)], 3)]
    results = []
    for kernel in ("fast", "reference"):
        w = torch.ones(64, 4, dtype=dtype, requires_grad=True)
        optimizer = SGD([w], lr=0.1, momentum=momentum, kernel=kernel)
        for g in grads:
            w.grad = g
            optimizer.step()
        results.append(w.detach())
    # The kernels round in different places: up to two units in the last place of |w| ≤ 1.
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=2 * torch.finfo(dtype).eps)
    assert (results[1] - 1).abs().max() > 0.1  # far beyond that tolerance: the step is seen
