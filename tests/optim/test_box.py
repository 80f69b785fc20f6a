"""Skipped clips: while a box provably cannot bind, its clip is skipped with no change to any bit.

``ClipPlanner`` keeps a lower bound on each parameter's distance to its box's faces and skips the
clip while a step cannot cover it (see ``anisoada.optim._box``). The iterates must be those of the
always-clipped update to the last bit, in the regime where the box is inactive, when it starts to
bind, and after a change made outside the optimizer.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from anisoada.optim import OPTIMIZERS, _adagrad, _box

BOXES = {"radius": {"box_radius": 0.3}, "bounds": {"box": (-0.25, 0.3)}}
# Step sizes at which the drifting run below reaches the faces after a few dozen steps.
DRIFT_LRS = {"adagrad": 0.03, "adagrad_norm": 0.1, "sgd": 0.03}


def _always_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_box.ClipPlanner, "box", lambda self, param, box, workspace: box)


class _Counter:
    """Counts the clips the planner skips and the measurements it makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.skipped = self.clipped = 0
        self.measured_at: list[int] = []
        self.step = 0
        plan, measure = _box.ClipPlanner.box, _box._measure

        def counting_plan(planner, param, box, workspace):
            planned = plan(planner, param, box, workspace)
            if box is not None:
                self.skipped += planned is None
                self.clipped += planned is not None
            return planned

        def counting_measure(*args):
            self.measured_at.append(self.step)
            return measure(*args)

        monkeypatch.setattr(_box.ClipPlanner, "box", counting_plan)
        monkeypatch.setattr(_box, "_measure", counting_measure)


def _drifting_run(name, options, dtype, kernel, steps=160):
    """Iterates of a run whose gradients push the parameters out of the box after a while.

    The parameters start well inside; the gradients carry a drift that turns sign, so the box is
    inactive at first, then binds on one side, then on the other.
    """
    gen = torch.Generator().manual_seed(11)
    shapes = [(5, 3)] if name == "adagrad_norm" else [(40, 3), (7,)]
    params = [
        (0.02 * torch.randn(s, generator=gen, dtype=torch.float64)).to(dtype).requires_grad_()
        for s in shapes
    ]
    optimizer = OPTIMIZERS[name](params, lr=DRIFT_LRS[name], kernel=kernel, **options)
    iterates = []
    for t in range(steps):
        drift = 2.0 * math.cos(t / 40.0)
        for p in params:
            noise = 0.5 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.grad = (noise + drift).to(dtype)
        optimizer.step()
        iterates.append(torch.cat([p.detach().reshape(-1).clone() for p in params]))
    return torch.stack(iterates)


@pytest.mark.parametrize("box", sorted(BOXES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("name", "options", "kernel"),
    [
        ("adagrad", {}, "fast"),
        ("adagrad", {}, "eager"),
        ("adagrad", {"eps_placement": "inside", "initial_accumulator_value": 0.1}, "eager"),
        ("adagrad", {"weight_decay": 0.1, "maximize": True}, "eager"),
        ("adagrad_norm", {}, "fast"),
        ("adagrad_norm", {"weight_decay": 0.1, "per_column": True}, "fast"),
    ],
    ids=["adagrad", "adagrad-eager", "adagrad-inside", "adagrad-wd-maximize", "norm", "norm-col"],
)
def test_skipped_clips_leave_every_iterate_bit_for_bit(
    name, options, kernel, dtype, box, monkeypatch
) -> None:
    options = {**options, **BOXES[box]}
    if kernel == "fast":
        monkeypatch.setattr(_adagrad, "FUSED_MIN_NUMEL", 0)  # the fused route of large tensors
    with monkeypatch.context() as patch:
        counter = _Counter(patch)
        planned = _drifting_run(name, options, dtype, kernel)
    with monkeypatch.context() as patch:
        _always_clip(patch)
        clipped = _drifting_run(name, options, dtype, kernel)
    # Both regimes were run: clips skipped while the box was inactive, clips once it bound.
    assert counter.skipped >= 10 and counter.clipped >= 10, (counter.skipped, counter.clipped)
    assert torch.equal(planned, clipped)
    reference = _drifting_run(name, options, dtype, "reference")
    tolerance = 1e-13 if dtype == torch.float64 else 8 * torch.finfo(dtype).eps
    torch.testing.assert_close(planned, reference, rtol=0, atol=tolerance)


def test_delayed_adagrad_and_sgd_always_clip(monkeypatch) -> None:
    # Neither step has a bound: a delayed step divides by v_{t−1}, which may be far below g_t².
    counter = _Counter(monkeypatch)
    for name, options in [
        ("adagrad", {"delayed": True, "initial_accumulator_value": 0.1}),
        ("sgd", {"momentum": 0.9}),
    ]:
        _drifting_run(name, {**options, "box_radius": 10.0}, torch.float64, "fast", steps=5)
    assert counter.skipped == 0 and not counter.measured_at


def test_a_box_that_binds_is_measured_again_after_doubling_waits(monkeypatch) -> None:
    # The parameter starts on the face it is pushed against: every step clips. The slack is
    # measured at the first step, then after waits of 2, 4, 8, ... clipped steps.
    counter = _Counter(monkeypatch)
    w = torch.full((6,), 1.0, dtype=torch.float64, requires_grad=True)
    optimizer = OPTIMIZERS["adagrad"]([w], lr=0.1, box=(-1.0, 1.0))
    for t in range(140):
        counter.step = t
        w.grad = torch.full_like(w, -1.0)
        optimizer.step()
    assert counter.measured_at == [0, 3, 8, 17, 34, 67, 132]
    assert counter.skipped == 0
    assert torch.equal(w.detach(), torch.ones(6, dtype=torch.float64))


def test_an_inactive_box_skips_its_clip_for_radius_over_lr_steps(monkeypatch) -> None:
    # Gradients of alternating sign keep w near its start; every step moves each coordinate by
    # at most lr, so from slack r = 0.05 the first measurement covers ⌊r/lr⌋ − 1 = 4 steps.
    counter = _Counter(monkeypatch)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    optimizer = OPTIMIZERS["adagrad"]([w], lr=0.01, box_radius=0.05)
    for t in range(40):
        counter.step = t
        w.grad = torch.full_like(w, (-1.0) ** t)
        optimizer.step()
    assert counter.skipped == 40
    # Re-measured when the bound ran out; each measurement finds w back near the center.
    assert counter.measured_at[:2] == [0, 4]
    assert len(counter.measured_at) <= 10


@pytest.mark.parametrize(
    ("box", "moved"), [("radius", "param"), ("bounds", "param"), ("radius", "center")]
)
def test_a_change_made_outside_the_optimizer_is_clipped(box, moved) -> None:
    # Steps of at most 0.001 from a start near 0: the clip is skipped, until the parameter (or
    # the center of its box) is moved in place by 5 (under no_grad, which moves the version
    # counter); the parameter is then clipped back onto the nearest face.
    runs = []
    for kernel in ("fast", "reference"):
        gen = torch.Generator().manual_seed(0)
        start = 0.01 * torch.randn(30, generator=gen, dtype=torch.float64)
        w = start.clone().requires_grad_()
        optimizer = OPTIMIZERS["adagrad"]([w], lr=0.001, kernel=kernel, **BOXES[box])
        for t in range(30):
            w.grad = torch.randn(30, generator=gen, dtype=torch.float64)
            if t == 20:
                with torch.no_grad():
                    (w if moved == "param" else optimizer.state[w]["box_center"]).add_(5.0)
            optimizer.step()
        runs.append(w.detach())
    assert torch.equal(runs[0], runs[1])
    if moved == "center":  # clipped onto the lower face of the moved box
        face = start + 5.0 - 0.3
        assert bool((runs[0] >= face).all() and (runs[0] <= face + 0.009).all())
    else:  # clipped onto the upper face; 9 steps of at most 0.001 since
        face = start + 0.3 if box == "radius" else torch.full_like(start, 0.3)
        assert bool((runs[0] <= face).all() and (runs[0] >= face - 0.009).all())


def test_a_restored_optimizer_measures_its_slack_again(monkeypatch) -> None:
    counter = _Counter(monkeypatch)
    gen = torch.Generator().manual_seed(5)
    grads = [torch.randn(8, generator=gen, dtype=torch.float64) for _ in range(12)]
    w = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    optimizer = OPTIMIZERS["adagrad"]([w], lr=0.01, box_radius=1.0)
    for g in grads[:6]:
        w.grad = g
        optimizer.step()
    twin = w.detach().clone().requires_grad_()
    restored = OPTIMIZERS["adagrad"]([twin], lr=0.01, box_radius=1.0)
    restored.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    measured = len(counter.measured_at)
    for g in grads[6:]:
        w.grad, twin.grad = g, g.clone()
        optimizer.step()
        restored.step()
    assert len(counter.measured_at) == measured + 1  # the restored optimizer's first step
    assert counter.skipped == 12 + 6
    assert torch.equal(w, twin)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("box", sorted(BOXES))
def test_steps_near_the_bound_stop_skipping_before_the_face(box, dtype, monkeypatch) -> None:
    # Gradients doubling every step keep AdaGrad's step near its bound lr (√3/2·lr from the
    # third step on), straight at the upper face: the skipping must stop in time, and the
    # iterates stay those of the clipped update to the last bit. (Not float16: its accumulator
    # overflows at g = 256.)
    def run():
        w = torch.linspace(-0.1, 0.1, 64, dtype=torch.float64).to(dtype).requires_grad_()
        optimizer = OPTIMIZERS["adagrad"]([w], lr=0.02, eps=0.0, initial_accumulator_value=1e-8,
                                          **BOXES[box])  # fmt: skip
        iterates = []
        for t in range(30):
            w.grad = torch.full_like(w, -(2.0 ** min(t, 15)))
            optimizer.step()
            iterates.append(w.detach().clone())
        return torch.stack(iterates)

    with monkeypatch.context() as patch:
        counter = _Counter(patch)
        planned = run()
    _always_clip(monkeypatch)
    clipped = run()
    assert counter.skipped >= 3 and counter.clipped >= 10, (counter.skipped, counter.clipped)
    assert torch.equal(planned, clipped)


@settings(max_examples=300, deadline=None)
@given(
    dtype=st.sampled_from([torch.float64, torch.float32, torch.bfloat16, torch.float16]),
    radius_box=st.booleans(),
    center=st.floats(-1000.0, 1000.0),
    step_in_ulps=st.floats(0.2, 4.0),
    steps_in_radius=st.floats(1.0, 12.0),
    start=st.floats(-1.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_planner_never_skips_a_clip_that_would_act(
    dtype, radius_box, center, step_in_ulps, steps_in_radius, start, seed
) -> None:
    # A synthetic update that moves every coordinate by its bound, mostly towards the upper face,
    # in a box far from 0 whose radius is a few steps of a few units in the last place: the
    # rounding of the iterates and of the bounds is as coarse as it gets. Skipping must never
    # change a bit against clipping every step.
    gen = torch.Generator().manual_seed(seed)
    ulp = torch.finfo(dtype).eps * max(abs(center), 1.0)
    max_step = step_in_ulps * ulp
    radius = steps_in_radius * max_step
    values = center + radius * (start + 0.2 * torch.rand(16, generator=gen, dtype=torch.float64))
    w = values.to(dtype)
    twin = w.clone()
    if radius_box:
        box: _box.Box = _box.RadiusBox(torch.full_like(w, center), radius)
    else:
        box = (center - radius, center + radius)
    workspace: dict = {}
    for _ in range(40):
        planner = _box.ClipPlanner(max_step)
        planned = planner.box(w, box, workspace)
        step = max_step * (1.0 if bool(torch.rand((), generator=gen) < 0.8) else -1.0)
        w.add_(step)
        _box.project_(w, planned, workspace)
        planner.commit()
        twin.add_(step)
        _box.project_(twin, box)
        assert torch.equal(w, twin)


def test_inside_an_outer_compile_every_box_is_clipped(monkeypatch) -> None:
    # An outer torch.compile fuses the clip into the update itself; the planner's host-side
    # bookkeeping (version counters, measurements) would only break its graph.
    counter = _Counter(monkeypatch)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    optimizer = OPTIMIZERS["adagrad"]([w], lr=0.01, box_radius=1.0)
    for _ in range(3):
        w.grad = torch.ones_like(w)
        optimizer.step()
    assert counter.skipped == 0 and counter.clipped == 3 and not counter.measured_at
    assert _box.SLACK not in optimizer._workspaces[w]
