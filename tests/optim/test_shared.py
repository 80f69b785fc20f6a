"""The shared suite: every test runs for every optimizer case of tests/optim/optim_cases.py."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optim_cases import (
    CASES,
    ENTRIES,
    OptimizerCase,
    RegistryEntry,
    fresh_compiled_kernels,
    grid_options,
)

from anisoada.optim import _adagrad, _sgd
from anisoada.optim._workspace import lane_rates

SHAPES = ((4, 3), (3,))

# The fast kernel hands tensors of at least FUSED_MIN_NUMEL elements to torch's fused kernels and
# runs in-place passes on smaller ones; "fast-fused" lowers the threshold so that the tiny test
# tensors take the fused route too. "compiled-formula" runs an optimizer's compiled kernel
# (where it has one) with each variant's single-pass function called eagerly instead of
# compiled: the formula inductor compiles, for every option combination at no compilation cost
# (tests/optim/test_compiled.py compiles a sample of variants for real).
KERNELS = ["reference", "fast", "fast-fused", "compiled-formula"]


def use_kernel(kernel: str, monkeypatch: pytest.MonkeyPatch, entry: RegistryEntry) -> str:
    if kernel == "fast-fused":
        monkeypatch.setattr(_adagrad, "FUSED_MIN_NUMEL", 0)
        monkeypatch.setattr(_sgd, "FUSED_MIN_NUMEL", 0)
        return "fast"
    if kernel == "compiled-formula":
        assert _has_kernel(entry, kernel), f"{entry.name} has no compiled kernel"
        fresh_compiled_kernels(monkeypatch, compile=lambda function: function)
        return "compiled"
    return kernel


CASE_IDS = [case.id for case in CASES]


class Quadratic:
    """``f(w) = ½ Σ_i Σ_j L_ij (w_ij − c_ij)²`` over a list of tensors, plus a fixed noise sequence.

    The gradient at step ``t`` is ``sign·L ⊙ (w − c) + noise_t`` (``sign = −1`` asks an optimizer
    with ``maximize=True`` to maximise ``−f``, i.e. to minimise ``f``).
    """

    def __init__(self, seed: int, *, noise: float = 0.0, steps: int = 0, dtype=torch.float64):
        gen = torch.Generator().manual_seed(seed)
        self.curvature = [1 + 9 * torch.rand(s, generator=gen, dtype=torch.float64) for s in SHAPES]
        self.center = [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
        self.start = [0.5 * torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
        self.noise = [
            [noise * torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
            for _ in range(steps)
        ]
        self.dtype = dtype

    def grads(self, ws: list, t: int, sign: float = 1.0) -> list:
        out = []
        for i, w in enumerate(ws):
            w64 = torch.as_tensor(w, dtype=torch.float64)
            g = sign * self.curvature[i] * (w64 - self.center[i])
            if self.noise:
                g = g + self.noise[t][i]
            out.append(g)
        return out

    def minimiser(self, weight_decay: float, bounds: list) -> list:
        """Closed form: ``L c/(L + λ)`` clipped to the box (exact, the problem is separable)."""
        out = []
        for L, c, (low, high) in zip(self.curvature, self.center, bounds):
            unconstrained = L * c / (L + weight_decay)
            out.append(torch.clamp(unconstrained, torch.as_tensor(low), torch.as_tensor(high)))
        return out


def _bounds(options: dict, start: list) -> list:
    if options.get("box_radius") is not None:
        return [(w - options["box_radius"], w + options["box_radius"]) for w in start]
    low, high = options.get("box") or (-math.inf, math.inf)
    return [
        (torch.as_tensor(low, dtype=torch.float64), torch.as_tensor(high, dtype=torch.float64))
    ] * len(start)


def run_torch(case: OptimizerCase, problem: Quadratic, steps: int, *, dtype=torch.float64, **kw):
    """Iterates of ``case`` (options overridden by ``kw``) on ``problem`` after ``steps`` steps."""
    params = [w.to(dtype).clone().requires_grad_() for w in problem.start]
    optimizer = case.make(params, **kw)
    sign = -1.0 if {**case.options, **kw}.get("maximize") else 1.0
    for t in range(steps):
        for p, g in zip(params, problem.grads([p.detach() for p in params], t, sign)):
            p.grad = g.to(dtype)
        optimizer.step()
    return [p.detach() for p in params], optimizer


def run_numpy(case: OptimizerCase, problem: Quadratic, steps: int, lr=None, **kw) -> list:
    options = {**case.options, **kw}
    sign = -1.0 if options.get("maximize") else 1.0
    ws = [w.numpy().copy() for w in problem.start]
    state = None
    for t in range(steps):
        gs = [g.numpy() for g in problem.grads(ws, t, sign)]
        ws, state = case.entry.reference(ws, gs, state, case.lr if lr is None else lr, options)
    return [torch.from_numpy(w) for w in ws]


def assert_all_close(actual: list, expected: list, *, rtol: float, atol: float) -> None:
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e.to(a.dtype), rtol=rtol, atol=atol)


def _has_kernel(entry: RegistryEntry, kernel: str) -> bool:
    return kernel != "compiled-formula" or "compiled" in entry.cls.KERNELS


@pytest.mark.parametrize(
    ("case", "kernel"),
    [(case, kernel) for case in CASES for kernel in KERNELS if _has_kernel(case.entry, kernel)],
    ids=lambda value: value.id if isinstance(value, OptimizerCase) else value,
)
def test_matches_numpy_reference_in_float64(case: OptimizerCase, kernel: str, monkeypatch) -> None:
    problem = Quadratic(1, noise=0.5, steps=25)
    ours, _ = run_torch(case, problem, 25, kernel=use_kernel(kernel, monkeypatch, case.entry))
    # Same formula, different operation order: agreement to float64 rounding.
    assert_all_close(ours, run_numpy(case, problem, 25), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_fast_kernel_equals_reference_kernel_and_numpy_for_every_option_combination(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = ENTRIES[name]
    problem = Quadratic(2, noise=0.3, steps=8)
    stacked_lr = torch.tensor([0.05, 0.2, 0.6], dtype=torch.float64)
    combinations = list(grid_options(entry))
    assert len(combinations) >= 24, "the option grid lost its combinations"
    kernels = [k for k in KERNELS if k != "reference" and _has_kernel(entry, k)]
    for options in combinations:
        case = OptimizerCase(entry, options, 0.3, name)
        for lr in (0.3, stacked_lr):  # a float, and one lr per column of K = 3 stacked runs
            slow, _ = run_torch(case, problem, 8, lr=lr, kernel="reference")
            message = f"{name} {options} lr={lr}"
            for kernel in kernels:
                with monkeypatch.context() as patch:
                    fast, _ = run_torch(
                        case, problem, 8, lr=lr, kernel=use_kernel(kernel, patch, entry)
                    )
                for a, c in zip(fast, slow):
                    torch.testing.assert_close(
                        a, c, rtol=1e-13, atol=1e-13, msg=f"{message} {kernel}"
                    )
            expected = run_numpy(case, problem, 8, lr=lr)
            for a, b in zip(slow, expected):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=message)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_gives_identical_next_steps(case: OptimizerCase) -> None:
    problem = Quadratic(3, noise=0.5, steps=8)
    params = [w.clone().requires_grad_() for w in problem.start]
    optimizer = case.make(params)
    sign = -1.0 if case.options.get("maximize") else 1.0

    def step(opt, ps, t):
        for p, g in zip(ps, problem.grads([p.detach() for p in ps], t, sign)):
            p.grad = g
        opt.step()

    for t in range(4):
        step(optimizer, params, t)
    saved = copy.deepcopy(optimizer.state_dict())
    twins = [p.detach().clone().requires_grad_() for p in params]
    restored = case.make(twins)
    restored.load_state_dict(saved)
    for t in range(4, 8):
        step(optimizer, params, t)
        step(restored, twins, t)
    for a, b in zip(params, twins):
        assert torch.equal(a, b)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_parameter_without_gradient_is_untouched(case: OptimizerCase) -> None:
    problem = Quadratic(4)
    moving, frozen = (w.clone().requires_grad_() for w in problem.start)
    before = frozen.detach().clone()
    optimizer = case.make([moving, frozen])
    for t in range(3):
        moving.grad = problem.grads([moving.detach(), frozen.detach()], t)[0]
        optimizer.step()
    assert torch.equal(frozen.detach(), before)
    assert frozen not in optimizer.state
    assert not torch.equal(moving.detach(), problem.start[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_dtype_is_kept_and_low_precision_follows_float64(case, dtype) -> None:
    problem = Quadratic(5, noise=0.5, steps=10)
    low, optimizer = run_torch(case, problem, 10, dtype=dtype)
    high, _ = run_torch(case, problem, 10)
    for p in low:
        assert p.dtype == dtype
    for state in optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and key != "step":
                assert value.dtype == dtype, key
    tolerance = {torch.float32: 1e-4, torch.bfloat16: 0.1}[dtype]
    for a, b in zip(low, high):
        torch.testing.assert_close(a.double(), b, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_converges_to_the_known_minimiser_of_an_anisotropic_quadratic(case) -> None:
    problem = Quadratic(6)
    ws, _ = run_torch(case, problem, 1500)
    expected = problem.minimiser(
        case.options.get("weight_decay", 0.0), _bounds(case.options, problem.start)
    )
    assert_all_close(ws, expected, rtol=0, atol=1e-7)


def _box_grid_options(name: str) -> list[dict]:
    return [o for o in grid_options(ENTRIES[name]) if "box" in o or "box_radius" in o]


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(ENTRIES)),
    pick=st.integers(0, 10_000),
    lr=st.floats(1e-3, 30.0),
    gradient_scale=st.floats(1e-3, 1e4),
    seed=st.integers(0, 2**31 - 1),
)
def test_projected_iterates_never_leave_the_box(name, pick, lr, gradient_scale, seed) -> None:
    choices = _box_grid_options(name)
    options = choices[pick % len(choices)]
    gen = torch.Generator().manual_seed(seed)
    params = [3 * torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
    bounds = _bounds(options, params)
    params = [p.requires_grad_() for p in params]
    optimizer = ENTRIES[name].cls(params, lr=lr, **options)
    for _ in range(6):
        for p in params:
            p.grad = gradient_scale * torch.randn(p.shape, generator=gen, dtype=torch.float64)
        optimizer.step()
        for p, (low, high) in zip(params, bounds):
            assert bool((p >= low).all() and (p <= high).all()), options


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_closure_loss_is_returned_and_zero_grad_clears(case) -> None:
    problem = Quadratic(7)
    params = [w.clone().requires_grad_() for w in problem.start]
    optimizer = case.make(params)
    sign = -1.0 if case.options.get("maximize") else 1.0

    def closure():
        optimizer.zero_grad()
        loss = sign * sum(
            0.5 * (L * (p - c) ** 2).sum()
            for p, L, c in zip(params, problem.curvature, problem.center)
        )
        loss.backward()
        return loss

    expected_loss = closure().item()
    optimizer.zero_grad()
    closure_params, closure_loss = params, optimizer.step(closure)
    assert closure_loss.item() == pytest.approx(expected_loss, rel=1e-15)
    # The closure's gradient is the analytic one, so the step equals a step fed that gradient.
    twins = [w.clone().requires_grad_() for w in problem.start]
    twin_optimizer = case.make(twins)
    for p, g in zip(twins, problem.grads(problem.start, 0, sign)):
        p.grad = g
    twin_optimizer.step()
    assert_all_close(
        [p.detach() for p in closure_params], [p.detach() for p in twins], rtol=1e-14, atol=1e-14
    )
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize(
    ("name", "option", "value"),
    [(name, option, value) for name, entry in ENTRIES.items() for option, value in entry.invalid],
)
def test_invalid_hyperparameter_raises_value_error_naming_it(name, option, value) -> None:
    params = [torch.zeros(3, requires_grad=True)]
    kwargs = {"lr": 0.1, option: value}
    with pytest.raises(ValueError, match=option.split()[0]) as error:
        ENTRIES[name].cls(params, **kwargs)
    shown = str(error.value)
    assert repr(value) in shown or str(value) in shown or "low" in shown, shown
    # A bad option in an added group is rejected too, and the optimizer keeps its groups.
    optimizer = ENTRIES[name].cls(params, lr=0.1)
    with pytest.raises(ValueError, match=option.split()[0]):
        optimizer.add_param_group({"params": [torch.zeros(2, requires_grad=True)], option: value})
    assert len(optimizer.param_groups) == 1


def test_registry_lists_the_paper_optimizers() -> None:
    from anisoada.optim import OPTIMIZERS, SGD, AdaGrad, AdaGradNorm

    assert {"adagrad": AdaGrad, "adagrad_norm": AdaGradNorm, "sgd": SGD} == OPTIMIZERS
    assert set(ENTRIES) == set(OPTIMIZERS)
    assert all(issubclass(cls, torch.optim.Optimizer) for cls in OPTIMIZERS.values())


def test_numpy_reference_agrees_with_a_hand_computed_adagrad_step() -> None:
    # v = 0 + 4 = 4, w = 1 − 0.5·2/(2 + 0) = 0.5 (eps = 0 for an exact check).
    from reference.optim_numpy import adagrad_step

    w, v = adagrad_step(
        np.array([1.0]), np.array([2.0]), np.array([0.0]), lr=0.5, eps=0.0, eps_placement="outside"
    )
    assert w.tolist() == [0.5] and v.tolist() == [4.0]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fast_step_allocates_nothing_proportional_to_the_parameters(case) -> None:
    from torch.profiler import ProfilerActivity, profile

    numel = 1 << 17  # above FUSED_MIN_NUMEL: the fused route where it applies
    gen = torch.Generator().manual_seed(8)
    params = [torch.randn(numel // 4, 4, generator=gen, requires_grad=True)]
    optimizer = case.make(params, lr=torch.tensor([0.1, 0.2, 0.3, 0.4]))
    for _ in range(3):  # the first steps create the state and the workspace
        params[0].grad = torch.randn(params[0].shape, generator=gen)
        optimizer.step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        optimizer.step()
    float_lr = case.make([p.detach().clone().requires_grad_() for p in params])
    for p, q in zip(float_lr.param_groups[0]["params"], params):
        p.grad = q.grad
    float_lr.step()
    float_lr.step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof_float:
        float_lr.step()
    for profiler in (prof, prof_float):
        allocated = sum(max(0, event.cpu_memory_usage) for event in profiler.events())
        assert allocated < numel, f"{allocated} bytes allocated in one step"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("value", [-1.0, 1.0])
def test_rates_at_full_shape_give_the_broadcast_products_bits(dtype, value) -> None:
    # lane_rates hands addcmul_ the rates copied to the parameter's shape (the vectorised loop)
    # where the (K,) tensor would broadcast (a scalar loop): stored runs were computed the
    # broadcast way, so the two must agree to the last bit, at every shape and magnitude.
    gen = torch.Generator().manual_seed(3)
    for d, K in [(2, 2), (3, 5), (7, 3), (33, 9), (123, 12), (300, 17), (1001, 6)]:
        scales = 10.0 ** torch.randint(-8, 8, (2, d, K), generator=gen)
        p, u = (torch.randn(2, d, K, generator=gen, dtype=torch.float64) * scales).to(dtype)
        lr = (torch.rand(K, generator=gen, dtype=torch.float64) * 10.0).to(dtype)
        full = lr.expand_as(p).contiguous()
        broadcast = p.clone().addcmul_(u, lr, value=value)
        assert torch.equal(p.clone().addcmul_(u, full, value=value), broadcast), (d, K)


@pytest.mark.parametrize(
    ("shape", "copied"),
    [((6000, 2), True), ((100, 16), True), ((40000, 16), False), ((5000, 1), False)],
)
def test_rates_are_copied_to_full_shape_where_the_broadcast_loop_is_the_slower(
    shape, copied
) -> None:
    # Rows of few lanes broadcast as a scalar loop (the copy wins up to millions of elements);
    # rows of 8 or more vectorise (the copy's extra read loses above 2^15 elements); one lane
    # has nothing to expand.
    param = torch.zeros(shape, dtype=torch.float64)
    lr = torch.rand(shape[-1], dtype=torch.float64)
    workspace: dict = {}
    first, second = lane_rates(lr, param, workspace), lane_rates(lr, param, workspace)
    assert first.shape == lr.shape  # seen once: not copied yet
    assert second.shape == (shape if copied else lr.shape)
    assert torch.equal(second, lr.expand(shape)) if copied else second is lr


@pytest.mark.parametrize("name", ["sgd", "adagrad"])
def test_kept_full_rates_follow_the_lr_tensor_through_edits_and_replacements(name) -> None:
    # A run that keeps one lr tensor (rates copied once, then reused) against the same rates
    # given as a fresh tensor every step (never copied): edited in place after step 3 and
    # replaced after step 5, a stale copy would show in the weights.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # AdaGrad's tensor-lr route through the fused kernel
    try:
        gen = torch.Generator().manual_seed(5)
        grads = [torch.randn(6, 3, generator=gen, dtype=torch.float64) for _ in range(8)]
        kept_w = torch.zeros(6, 3, dtype=torch.float64, requires_grad=True)
        fresh_w = torch.zeros(6, 3, dtype=torch.float64, requires_grad=True)
        lr = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
        kept = ENTRIES[name].cls([kept_w], lr=lr)
        fresh = ENTRIES[name].cls([fresh_w], lr=lr.clone())
        for step, g in enumerate(grads):
            if step == 3:
                lr.mul_(0.5)
            if step == 5:
                kept.param_groups[0]["lr"] = lr = torch.tensor([1.0, 0.01, 0.5]).double()
            fresh.param_groups[0]["lr"] = lr.clone()
            kept_w.grad, fresh_w.grad = g.clone(), g.clone()
            kept.step()
            fresh.step()
            assert torch.equal(kept_w, fresh_w), step
        copied = kept._workspaces[kept_w]["lane_rates"]
        assert torch.equal(copied.full, lr.expand(6, 3))  # the kept route was the one taken
        assert fresh._workspaces[fresh_w]["lane_rates"].full is None
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_tensor_lr_is_checked_once_and_again_whenever_it_changes(name, monkeypatch) -> None:
    from anisoada.optim import _common

    calls = []
    check_lr = _common.check_lr
    monkeypatch.setattr(_common, "check_lr", lambda lr: calls.append(lr) or check_lr(lr))
    w = torch.zeros(4, 3, requires_grad=True)
    lr = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    optimizer = ENTRIES[name].cls([w], lr=lr)
    w.grad = torch.ones(4, 3)
    for _ in range(3):
        optimizer.step()
    # The constructor's check and the first step's: later steps reuse the verdict.
    assert len(calls) == 2
    before = w.detach().clone()

    # A new invalid tensor is caught at the next step, before anything moves.
    optimizer.param_groups[0]["lr"] = torch.tensor([0.1, float("nan"), 0.3], dtype=torch.float64)
    with pytest.raises(ValueError, match="Invalid lr value"):
        optimizer.step()
    assert torch.equal(w.detach(), before)

    # Back to the tensor already found valid and unchanged since: no new check.
    optimizer.param_groups[0]["lr"] = lr
    optimizer.step()
    assert len(calls) == 3
    # The validated tensor made invalid in place is caught (its version counter moves).
    lr[0] = -1.0
    with pytest.raises(ValueError, match="Invalid lr value"):
        optimizer.step()
    lr[0] = 0.1
    optimizer.step()
    optimizer.step()
    assert len(calls) == 5
