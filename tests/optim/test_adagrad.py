"""AdaGrad specifics: optax convention, delayed first step, ε placement, sparse rows, stacking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anisoada.optim import AdaGrad, adagrad
from reference.optim_numpy import optax_adagrad_step


def _quadratic_run(optimizer_factory, steps: int, seed: int = 0, shape=(5, 4)):
    gen = torch.Generator().manual_seed(seed)
    curvature = torch.rand(shape, generator=gen, dtype=torch.float64) * 5
    w = torch.randn(shape, generator=gen, dtype=torch.float64).requires_grad_()
    noise = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(steps)]
    optimizer = optimizer_factory([w])
    for t in range(steps):
        w.grad = curvature * w.detach() + noise[t]
        optimizer.step()
    return w.detach(), optimizer, (curvature, noise)


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_optax_convention_matches_the_numpy_transcription_of_optax(kernel) -> None:
    steps = 60
    ours, _, (curvature, noise) = _quadratic_run(
        lambda p: AdaGrad(
            p,
            lr=0.2,
            eps=1e-7,
            eps_placement="inside",
            initial_accumulator_value=0.1,
            kernel=kernel,
        ),
        steps,
    )
    gen = torch.Generator().manual_seed(0)
    torch.rand((5, 4), generator=gen, dtype=torch.float64)
    w = torch.randn((5, 4), generator=gen, dtype=torch.float64).numpy()
    s = np.full_like(w, 0.1)
    for t in range(steps):
        g = curvature.numpy() * w + noise[t].numpy()
        w, s = optax_adagrad_step(w, g, s, learning_rate=0.2, eps=1e-7)
    np.testing.assert_allclose(ours.numpy(), w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_eps_placement_outside_and_inside_give_their_formulas(kernel) -> None:
    g = torch.tensor([3.0, -0.5, 0.0], dtype=torch.float64)
    for placement, expected in (
        ("outside", -g / (g.abs() + 1.0)),  # g/(√(0+g²) + ε) with ε = 1
        ("inside", -g / torch.sqrt(g**2 + 1.0)),  # g/√(0 + g² + ε)
    ):
        w = torch.zeros(3, dtype=torch.float64)
        adagrad(
            [w], [g], [torch.zeros(3, dtype=torch.float64)], lr=1.0, eps=1.0,
            eps_placement=placement, kernel=kernel,
        )  # fmt: skip
        torch.testing.assert_close(w, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_delayed_first_step_divides_by_the_initial_accumulator(kernel) -> None:
    w = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    optimizer = AdaGrad(
        [w], lr=0.1, eps=0.0, delayed=True, initial_accumulator_value=0.25, kernel=kernel
    )
    w.grad = torch.tensor([2.0, -1.0], dtype=torch.float64)
    optimizer.step()
    # Step 1 uses v_0 = 0.25 only: w − 0.1·g/√0.25 = w − 0.2·g.
    torch.testing.assert_close(w.detach(), torch.tensor([0.6, 1.2], dtype=torch.float64))
    # The accumulator still records g_1: v_1 = 0.25 + g².
    torch.testing.assert_close(optimizer.state[w]["sum"], torch.tensor([4.25, 1.25]).double())
    w.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
    optimizer.step()
    # Step 2 uses v_1 (not v_2 = v_1 + 1).
    expected = torch.tensor([0.6 - 0.1 / 4.25**0.5, 1.2 - 0.1 / 1.25**0.5], dtype=torch.float64)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-15, atol=0)


def test_delayed_with_a_zero_initial_accumulator_is_rejected() -> None:
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"initial_accumulator_value.*0\.0.*delayed=True"):
        AdaGrad([w], delayed=True)


def test_zero_eps_with_a_zero_initial_accumulator_is_rejected() -> None:
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"eps value: 0.*0/0"):
        AdaGrad([w], eps=0.0)
    AdaGrad([w], eps=0.0, initial_accumulator_value=1e-8)  # sound: v_0 > 0


def test_state_keys_hold_the_step_count_and_the_accumulator() -> None:
    steps = 7
    w, optimizer, (curvature, noise) = _quadratic_run(
        lambda p: AdaGrad(p, lr=0.1, initial_accumulator_value=0.5), steps
    )
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    assert set(state) == {"step", "sum"}
    assert state["step"].dtype == torch.float32 and int(state["step"]) == steps
    # Recompute v_T = v_0 + Σ g_t² along the same trajectory.
    gen = torch.Generator().manual_seed(0)
    torch.rand((5, 4), generator=gen, dtype=torch.float64)
    x = torch.randn((5, 4), generator=gen, dtype=torch.float64)
    v = torch.full_like(x, 0.5)
    for t in range(steps):
        g = curvature * x + noise[t]
        v = v + g * g
        x = x - 0.1 * g / (v.sqrt() + 1e-10)
    torch.testing.assert_close(state["sum"], v, rtol=1e-13, atol=0)
    torch.testing.assert_close(w, x, rtol=1e-13, atol=1e-13)


def test_box_radius_is_centred_at_the_first_iterate() -> None:
    w = torch.tensor([0.0, 5.0], requires_grad=True)
    optimizer = AdaGrad([w], lr=10.0, box_radius=0.5)
    w.grad = torch.tensor([1.0, -1.0])
    optimizer.step()
    state = optimizer.state[w]
    assert torch.equal(state["box_center"], torch.tensor([0.0, 5.0]))
    torch.testing.assert_close(w.detach(), torch.tensor([-0.5, 5.5]))
    w.grad = torch.tensor([-1.0, 1.0])
    optimizer.step()  # the box stays around w_1, not around the current iterate
    torch.testing.assert_close(w.detach(), torch.tensor([0.5, 4.5]))


def test_each_group_has_its_own_box() -> None:
    a = torch.zeros(3, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    optimizer = AdaGrad(
        [{"params": [a], "box": (torch.tensor([-1.0, -2.0, -3.0]), 0.1)}, {"params": [b]}], lr=100.0
    )
    a.grad = torch.ones(3)
    b.grad = torch.ones(3)
    optimizer.step()
    torch.testing.assert_close(a.detach(), torch.tensor([-1.0, -2.0, -3.0]))
    torch.testing.assert_close(b.detach(), torch.full((3,), -100.0))


@pytest.mark.parametrize("kernel", ["fast", "reference"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"delayed": True, "initial_accumulator_value": 0.5},
        {"eps_placement": "inside", "initial_accumulator_value": 0.1, "maximize": True},
        {"box": (-0.05, 0.02)},
    ],
)
def test_sparse_gradients_update_like_the_dense_gradient(options, kernel) -> None:
    torch.manual_seed(0)
    sparse_embedding = torch.nn.Embedding(10, 3, sparse=True).double()
    dense_embedding = torch.nn.Embedding(10, 3).double()
    dense_embedding.load_state_dict(sparse_embedding.state_dict())
    initial = dense_embedding.weight.detach().clone()
    optimizers = [
        AdaGrad(m.parameters(), lr=0.1, kernel=kernel, **options)
        for m in (sparse_embedding, dense_embedding)
    ]
    for tokens in ([1, 4, 4, 7], [2, 4], [7, 7, 9]):
        for module, optimizer in zip((sparse_embedding, dense_embedding), optimizers):
            optimizer.zero_grad()
            (module(torch.tensor(tokens)) ** 2).sum().backward()
            optimizer.step()
    assert sparse_embedding.weight.grad.is_sparse
    touched = [1, 2, 4, 7, 9]
    torch.testing.assert_close(
        sparse_embedding.weight.detach()[touched], dense_embedding.weight.detach()[touched],
        rtol=1e-14, atol=1e-14,
    )  # fmt: skip
    untouched = [0, 3, 5, 6, 8]
    expected = initial[untouched]
    if "box" in options:
        expected = expected.clamp(*options["box"])
    torch.testing.assert_close(sparse_embedding.weight.detach()[untouched], expected)


def test_sparse_gradient_with_weight_decay_names_the_alternative() -> None:
    embedding = torch.nn.Embedding(5, 2, sparse=True)
    optimizer = AdaGrad(embedding.parameters(), weight_decay=0.1)
    embedding(torch.tensor([1])).sum().backward()
    with pytest.raises(ValueError, match=r"weight_decay value: 0.1 with a sparse gradient.*dense"):
        optimizer.step()


@pytest.mark.parametrize("kernel", ["fast", "reference"])
@pytest.mark.parametrize(
    "options",
    [{}, {"delayed": True, "eps_placement": "inside"}, {"weight_decay": 0.1, "maximize": True}],
)
def test_stacked_columns_with_a_lr_tensor_equal_independent_runs(options, kernel) -> None:
    d, lrs = 6, torch.tensor([0.01, 0.1, 1.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    curvature = torch.rand(d, 1, generator=gen, dtype=torch.float64) * 3
    stacked = torch.randn(d, 1, generator=gen, dtype=torch.float64).repeat(1, 3)
    columns = [stacked[:, k].clone() for k in range(3)]
    v_stacked = torch.full_like(stacked, 0.2)
    v_columns = [torch.full((d,), 0.2, dtype=torch.float64) for _ in range(3)]
    for _ in range(20):
        adagrad([stacked], [curvature * stacked], [v_stacked], lr=lrs, kernel=kernel, **options)
        for k in range(3):
            g = curvature[:, 0] * columns[k]
            adagrad([columns[k]], [g], [v_columns[k]], lr=float(lrs[k]), kernel=kernel, **options)
    for k in range(3):
        torch.testing.assert_close(stacked[:, k], columns[k], rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(v_stacked[:, k], v_columns[k], rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"eps_placement": "inside", "eps": 1e-3},
        {"weight_decay": 0.1, "maximize": True},
        {"eps_placement": "inside", "weight_decay": 0.05},
        {"box": (-0.3, 0.3)},
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_a_lane_of_a_lr_tensor_run_is_bitwise_that_lane_alone_at_any_width(
    options, threads, monkeypatch
) -> None:
    # With one torch thread (a sweep's runs) a tensor lr takes torch's fused kernel (η = 1 into
    # a zeroed buffer) and an addcmul at every size, with more the in-place passes: either way
    # lane k of K must round exactly as the lane run alone, wherever k falls in the kernels'
    # vector bodies and tails, and stay within rounding of the written formula.
    from anisoada.optim import _adagrad

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    route = []
    monkeypatch.setattr(
        _adagrad, "_through_fused_kernel", _recording(_adagrad._through_fused_kernel, route)
    )
    try:
        _lanes_round_alike(options)
    finally:
        torch.set_num_threads(previous)
    assert bool(route) == (threads == 1)


def _recording(function, calls: list):
    def recorded(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)

    return recorded


def _lanes_round_alike(options) -> None:
    d, widths = 37, (1, 2, 5, 12, 19)
    gen = torch.Generator().manual_seed(7)
    rates = 10 ** (torch.rand(max(widths), generator=gen, dtype=torch.float64) * 3 - 3)
    start = torch.randn(d, 1, generator=gen, dtype=torch.float64)
    curvature = torch.rand(d, 1, generator=gen, dtype=torch.float64) * 3

    def run(lrs: torch.Tensor, kernel: str) -> torch.Tensor:
        w = start.repeat(1, len(lrs)).requires_grad_()
        optimizer = AdaGrad([w], lr=lrs, kernel=kernel, initial_accumulator_value=0.01, **options)
        for t in range(15):
            w.grad = curvature * w.detach() + 0.1 * math.cos(t)
            optimizer.step()
        return w.detach()

    alone = {k: run(rates[k : k + 1], "fast")[:, 0] for k in range(max(widths))}
    for width in widths:
        lanes = run(rates[:width], "fast")
        for k in range(width):
            assert torch.equal(lanes[:, k], alone[k]), (width, k)
        torch.testing.assert_close(lanes, run(rates[:width], "reference"), rtol=1e-12, atol=1e-14)


def test_functional_form_rejects_mismatched_lists_and_bad_values() -> None:
    w = torch.zeros(2)
    with pytest.raises(ValueError, match="state_sums"):
        adagrad([w], [w], [], lr=0.1)
    with pytest.raises(ValueError, match=r"lr value: -1"):
        adagrad([w], [w], [w.clone()], lr=-1.0)
    with pytest.raises(ValueError, match=r"lr value.*finite"):
        adagrad([w], [w], [w.clone()], lr=torch.tensor([0.1, float("nan")]))


@pytest.mark.parametrize("kernel", ["fast", "reference"])
def test_functional_radius_box_clips_around_its_center(kernel) -> None:
    from anisoada.optim import RadiusBox

    center = torch.tensor([0.0, 1.0, -2.0])
    w = center.clone()
    box = RadiusBox(center, 0.5)
    adagrad([w], [torch.tensor([-1.0, 1.0, 0.0])], [torch.zeros(3)], lr=3.0, boxes=[box],
            kernel=kernel)  # fmt: skip
    torch.testing.assert_close(w, torch.tensor([0.5, 0.5, -2.0]))
    with pytest.raises(ValueError, match="box_radius"):
        AdaGrad([torch.zeros(3, requires_grad=True)], box=box)


@pytest.mark.parametrize("kernel", ["fast", "reference"])
@pytest.mark.parametrize("name", ["adagrad", "adagrad_norm", "sgd"])
def test_a_float64_lr_tensor_drives_float32_parameters(name, kernel) -> None:
    from anisoada.optim import OPTIMIZERS

    lrs = torch.tensor([0.1, 0.5], dtype=torch.float64)
    w = torch.ones(3, 2, requires_grad=True)
    optimizer = OPTIMIZERS[name]([w], lr=lrs, kernel=kernel)
    w.grad = torch.ones(3, 2)
    optimizer.step()
    assert w.dtype == torch.float32
    moved = 1.0 - w.detach()
    assert torch.all(moved > 0)
    torch.testing.assert_close(moved[:, 1] / moved[:, 0], torch.full((3,), 5.0))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("lr", [0.1, (0.03, 0.1, 0.3)], ids=["float", "per-lane"])
def test_eps_inside_through_the_fused_kernel_follows_accumulator_changes(
    weight_decay, lr, monkeypatch
) -> None:
    from anisoada.optim import _adagrad

    # Threshold 0 and one thread: these small tensors take the fused route (a float lr as
    # large tensors do, per-lane rates at any size), where ε inside runs on a kept copy
    # S = v + ε that must follow every change of v made outside the kernel.
    monkeypatch.setattr(_adagrad, "FUSED_MIN_NUMEL", 0)
    monkeypatch.setattr(_adagrad, "_one_cpu_thread", lambda: True)
    if isinstance(lr, tuple):
        lr = torch.tensor(lr, dtype=torch.float64)
    options = {"eps_placement": "inside", "eps": 1e-3, "initial_accumulator_value": 0.1,
               "weight_decay": weight_decay, "maximize": True}  # fmt: skip
    runs = []
    for kernel in ("eager", "reference"):
        w = torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(4, 3).requires_grad_()
        optimizer = AdaGrad([w], lr=lr, kernel=kernel, **options)
        for t in range(6):
            w.grad = torch.cos(3 * w.detach() + t)
            optimizer.step()
            if t == 1:
                optimizer.state[w]["sum"].mul_(4.0)  # changed in place
            if t == 3:
                saved = optimizer.state_dict()  # a new accumulator tensor, new values
                saved["state"][0]["sum"] = saved["state"][0]["sum"] * 0.5
                optimizer.load_state_dict(saved)
            if t == 4:
                optimizer.param_groups[0]["eps"] = 1e-2
        runs.append((w.detach(), optimizer.state[w]["sum"]))
    (w_eager, v_eager), (w_reference, v_reference) = runs
    torch.testing.assert_close(w_eager, w_reference, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(v_eager, v_reference, rtol=1e-13, atol=0)


def test_fused_route_keeps_its_step_counters_and_matches_torch_bit_for_bit() -> None:
    # torch's fused kernel wants a step counter per tensor (unused with lr_decay=0): one kept
    # per parameter in the workspace, never a fresh one per step (a launch each on a GPU).
    params = [torch.zeros(1 << 17, requires_grad=True) for _ in range(2)]
    theirs = [torch.zeros(1 << 17, requires_grad=True) for _ in range(2)]
    ours_opt = AdaGrad(params, lr=0.1)
    torch_opt = torch.optim.Adagrad(theirs, lr=0.1, fused=True)
    counters = None
    for t in range(3):
        for p, q in zip(params, theirs):
            p.grad = torch.cos(torch.arange(p.numel(), dtype=torch.float32) + t)
            q.grad = p.grad.clone()
        ours_opt.step()
        torch_opt.step()
        kept = [ours_opt._workspaces[p]["fused_step"] for p in params]
        assert counters is None or all(a is b for a, b in zip(kept, counters))
        counters = kept
    assert all(float(c) == 0.0 for c in counters)
    assert [float(ours_opt.state[p]["step"]) for p in params] == [3.0, 3.0]
    for p, q in zip(params, theirs):
        assert torch.equal(p, q)
