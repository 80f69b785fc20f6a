"""AdaGrad's compiled single-pass kernels: many variants per process, fallback, routing, memory.

The formula of every option combination is checked against the reference kernel by the shared
grid test (tests/optim/test_shared.py, "compiled-formula"); here ten variants are traced by dynamo
in one process, and a sample is compiled for real with inductor.
"""

from __future__ import annotations

import pytest
import torch
from optim_cases import fresh_compiled_kernels

from anisoada.optim import AdaGrad, _adagrad, adagrad

_TENSOR_LR = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
_TENSOR_BOX = (torch.linspace(-1.0, 0.0, 3, dtype=torch.float64), 0.5)

# Ten option sets, each its own compiled variant: more than dynamo's recompile limit of 8, which a
# shared code object hit at the ninth. (options, lr, dtype)
VARIANTS = [
    ({"box": (-0.5, 0.4)}, 0.3, torch.float64),
    ({"box_radius": 0.2, "weight_decay": 0.1}, 0.3, torch.float64),
    ({"delayed": True, "initial_accumulator_value": 0.3}, 0.3, torch.float64),
    ({"eps_placement": "inside", "initial_accumulator_value": 0.1, "eps": 1e-7}, 0.3,
     torch.float64),
    (
        {"eps_placement": "inside", "delayed": True, "maximize": True,
         "initial_accumulator_value": 0.1},
        0.3,
        torch.float64,
    ),
    (
        {"eps_placement": "inside", "initial_accumulator_value": 0.1, "maximize": True,
         "box": _TENSOR_BOX},
        _TENSOR_LR,
        torch.float64,
    ),
    ({"delayed": True, "initial_accumulator_value": 0.3}, _TENSOR_LR, torch.float64),
    ({"weight_decay": 0.05, "maximize": True}, _TENSOR_LR, torch.float64),
    ({"box_radius": 0.2, "delayed": True, "initial_accumulator_value": 0.3}, 0.3, torch.float32),
    ({"box_radius": 0.2, "eps_placement": "inside"}, 0.3, torch.bfloat16),
]  # fmt: skip


def _quadratic_run(make, steps: int, dtype: torch.dtype, shape=(7, 3)):
    gen = torch.Generator().manual_seed(0)
    curvature = torch.rand(shape, generator=gen, dtype=torch.float64) * 5
    w = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype).requires_grad_()
    noise = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(steps)]
    optimizer = make([w])
    sign = -1.0 if optimizer.param_groups[0]["maximize"] else 1.0
    for t in range(steps):
        w.grad = (sign * (curvature * w.detach().double() + noise[t])).to(dtype)
        optimizer.step()
    return w.detach(), optimizer.state[w]["sum"]


def _check_against_the_reference_kernel(variants) -> None:
    for options, lr, dtype in variants:
        results = [
            _quadratic_run(
                lambda p, kernel=kernel, lr=lr, options=options: AdaGrad(
                    p, lr=lr, kernel=kernel, **options
                ),
                6,
                dtype,
            )
            for kernel in ("compiled", "reference")
        ]
        (w_compiled, v_compiled), (w_reference, v_reference) = results
        if dtype == torch.float64:  # the same arithmetic up to operation order
            tolerance = {"rtol": 1e-13, "atol": 1e-13}
        else:  # one rounding per step (float32 inside) against one per operation
            tolerance = {"rtol": 0, "atol": 4 * torch.finfo(dtype).eps}
        torch.testing.assert_close(w_compiled, w_reference, **tolerance, msg=str(options))
        torch.testing.assert_close(v_compiled, v_reference, rtol=tolerance["atol"] or 1e-13,
                                   atol=0, msg=str(options))  # fmt: skip


def _our_warnings(recorded) -> list:
    return [w for w in recorded if "anisoada.optim" in str(w.message)]


def test_more_than_eight_option_sets_compile_and_step_in_one_process(monkeypatch, recwarn) -> None:
    # Traced by dynamo (one full graph per variant) and run by its "eager" backend: the recompile
    # limit is dynamo's, counted per code object whatever the backend, and this costs no C++
    # compilation; inductor's code is tested on a sample below.
    compiled = fresh_compiled_kernels(
        monkeypatch,
        compile=lambda f: torch.compile(f, backend="eager", dynamic=True, fullgraph=True),
    )
    _check_against_the_reference_kernel(VARIANTS)
    built, failed = compiled.compiled_variants()
    assert len(built) == len(VARIANTS) and not failed
    assert not _our_warnings(recwarn)


# Compiled for real (about 2 s each on a cold inductor cache, 0.3 s warm); the float32 ones are
# the kernels the allocation test below steps again.
INDUCTOR_VARIANTS = [
    (
        {"eps_placement": "inside", "initial_accumulator_value": 0.1, "maximize": True,
         "box": _TENSOR_BOX},
        _TENSOR_LR,
        torch.float64,
    ),
    ({"box_radius": 0.2, "weight_decay": 0.1}, 0.3, torch.float32),
    ({"delayed": True, "initial_accumulator_value": 0.3, "box": (-0.5, 0.4)}, 0.3, torch.float32),
    ({"box_radius": 0.2, "eps_placement": "inside"}, 0.3, torch.bfloat16),
]  # fmt: skip


@pytest.mark.slow
def test_inductor_kernels_equal_the_reference_kernel(recwarn) -> None:
    from anisoada.optim import _compiled

    _check_against_the_reference_kernel(INDUCTOR_VARIANTS)
    built, failed = _compiled.compiled_variants()
    assert len(built) >= len(INDUCTOR_VARIANTS) and not failed
    assert not _our_warnings(recwarn)


def _delayed_run(kernel: str, steps: int = 3):
    params = [
        torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(2, 3),
        torch.ones(4, dtype=torch.float64),
    ]
    states = [torch.full_like(p, 0.5) for p in params]
    for t in range(steps):
        grads = [torch.cos(p + t) for p in params]
        adagrad(params, grads, states, lr=0.1, delayed=True, kernel=kernel)
    return params, states


def test_a_compiler_failure_falls_back_to_eager_with_one_warning(monkeypatch) -> None:
    calls = []

    def broken_compile(function):
        def fail(*args):
            calls.append(function.__name__)
            raise RuntimeError("no C++ compiler found")

        return fail

    compiled = fresh_compiled_kernels(monkeypatch, compile=broken_compile)
    with pytest.warns(RuntimeWarning, match=r"unavailable on cpu \(RuntimeError: no C\+\+") as w:
        params, states = _delayed_run("compiled")
    assert len(_our_warnings(w)) == 1
    # The device type never compiled anything: it is given up after the first attempt.
    assert calls == ["adagrad_delayed_none"]
    assert compiled._broken_device_types == {"cpu"}
    expected_params, expected_states = _delayed_run("reference")
    for a, b in zip(params + states, expected_params + expected_states):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


def test_a_recompile_limit_failure_disables_only_its_variant(monkeypatch, recwarn) -> None:
    def compile_all_but_delayed(function):
        if "delayed" not in function.__name__:
            return function  # the single-pass formula, run eagerly

        def fail(*args):
            raise torch._dynamo.exc.FailOnRecompileLimitHit("recompile_limit reached")

        return fail

    compiled = fresh_compiled_kernels(monkeypatch, compile=compile_all_but_delayed)
    w = torch.zeros(3, dtype=torch.float64)
    adagrad([w], [torch.ones(3, dtype=torch.float64)], [torch.zeros(3, dtype=torch.float64)],
            lr=0.1, boxes=[(-1.0, 1.0)], kernel="compiled")  # fmt: skip
    params, states = _delayed_run("compiled")
    built, failed = compiled.compiled_variants()
    assert [k.box for k in built] == ["bounds"]
    assert [(k.delayed, k.box) for k in failed] == [(True, "none")]
    assert not compiled._broken_device_types  # the other variants keep compiling
    adagrad([w], [torch.ones(3, dtype=torch.float64)], [torch.ones(3, dtype=torch.float64)],
            lr=0.1, eps_placement="inside", kernel="compiled")  # fmt: skip
    assert len(compiled.compiled_variants()[0]) == 2
    assert len(_our_warnings(recwarn)) == 1
    expected_params, expected_states = _delayed_run("reference")
    for a, b in zip(params + states, expected_params + expected_states):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


def test_default_kernel_compiles_only_from_the_size_threshold(monkeypatch) -> None:
    built = []

    def spy(function):
        built.append(function.__name__)
        return function

    compiled = fresh_compiled_kernels(monkeypatch, compile=spy)
    monkeypatch.setattr(compiled, "COMPILE_MIN_NUMEL", 12)
    monkeypatch.setattr(_adagrad, "FUSED_MIN_NUMEL", 0)  # below it, a standard step compiles

    def step(numel: int, kernel: str, **options) -> None:
        w = torch.zeros(numel, dtype=torch.float64)
        adagrad([w], [torch.ones_like(w)], [torch.ones_like(w)], lr=0.1, kernel=kernel, **options)

    step(11, "fast", delayed=True)
    assert built == []  # below the threshold: eager passes
    step(12, "fast", delayed=True)
    step(100, "fast", delayed=True)  # the same variant: built once per process
    assert built == ["adagrad_delayed_none"]
    step(100, "fast", boxes=[(0.0, 1.0)], maximize=True)
    assert built[-1] == "adagrad_maximize_bounds"
    step(100, "fast")  # the standard update is torch's fused kernel: nothing to compile
    step(100, "eager", eps_placement="inside")
    assert len(built) == 2
    step(3, "compiled", eps_placement="inside")
    assert built[-1] == "adagrad_inside_none"


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"box_radius": 0.5, "weight_decay": 0.1},
        {"delayed": True, "initial_accumulator_value": 0.1, "box": (-1.0, 1.0)},
    ],
    ids=["radius-weight-decay", "delayed-box"],
)
def test_compiled_step_allocates_nothing_proportional_to_the_parameters(options) -> None:
    from torch.profiler import ProfilerActivity, profile

    numel = 1 << 17
    gen = torch.Generator().manual_seed(8)
    w = torch.randn(numel, generator=gen, requires_grad=True)
    optimizer = AdaGrad([w], lr=0.1, kernel="compiled", **options)
    for _ in range(3):  # state, workspace and compilation
        w.grad = torch.randn(numel, generator=gen)
        optimizer.step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        optimizer.step()
    allocated = sum(max(0, event.cpu_memory_usage) for event in prof.events())
    assert allocated < numel, f"{allocated} bytes allocated in one step"
