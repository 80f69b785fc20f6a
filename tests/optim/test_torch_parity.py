"""Parity with torch.optim over 200 steps: AdaGrad ↔ Adagrad, SGD ↔ SGD, several groups."""

from __future__ import annotations

import pytest
import torch

from anisoada.optim import SGD, AdaGrad, _adagrad, _sgd

STEPS = 200
# The fast kernel runs torch's fused kernels only from FUSED_MIN_NUMEL elements on; threshold 0
# sends these small tensors there too.
KERNELS = [("reference", None), ("fast", None), ("fast", 0)]
SHAPES = [(6, 5), (7,), (3, 2, 2)]


def _problem(seed: int, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(seed)
    start = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES]
    curvature = [torch.rand(s, generator=gen, dtype=torch.float64).to(dtype) * 4 for s in SHAPES]
    noise = [
        [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES]
        for _ in range(STEPS)
    ]
    return start, curvature, noise


def _run(make_optimizer, group_options, dtype, seed=0):
    """Run ``STEPS`` noisy quadratic steps; one group per parameter with its own options."""
    start, curvature, noise = _problem(seed, dtype)
    params = [w.clone().requires_grad_() for w in start]
    groups = [{"params": [p], **options} for p, options in zip(params, group_options)]
    optimizer = make_optimizer(groups)
    # A group that maximises is given the gradient of −f, so every group minimises f.
    signs = [-1.0 if options.get("maximize") else 1.0 for options in group_options]
    for t in range(STEPS):
        for i, p in enumerate(params):
            p.grad = signs[i] * (curvature[i] * p.detach() + noise[t][i])
        optimizer.step()
    return [p.detach() for p in params], optimizer


# float64: the same arithmetic up to operation order, so 1e-12; float32: rounding only.
TOLERANCES = {
    torch.float64: {"rtol": 1e-12, "atol": 1e-12},
    torch.float32: {"rtol": 2e-5, "atol": 2e-6},
}

ADAGRAD_GROUPS = [
    {"lr": 0.1},
    {"lr": 0.05, "weight_decay": 0.1},
    {"lr": 0.2, "maximize": True, "eps": 1e-6},
]


@pytest.mark.parametrize(
    ("kernel", "fused_threshold"), KERNELS, ids=["reference", "fast", "fast-fused"]
)
@pytest.mark.parametrize("initial", [0.0, 0.2])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adagrad_matches_torch_adagrad_over_200_steps(
    dtype, initial, kernel, fused_threshold, monkeypatch
) -> None:
    if fused_threshold is not None:
        monkeypatch.setattr(_adagrad, "FUSED_MIN_NUMEL", fused_threshold)
    # torch reads initial_accumulator_value from the constructor only (a per-group value is
    # ignored there, honoured here), so it is set for all groups at once.
    ours, optimizer = _run(
        lambda g: AdaGrad(g, initial_accumulator_value=initial, kernel=kernel),
        ADAGRAD_GROUPS,
        dtype,
    )
    theirs, reference = _run(
        lambda g: torch.optim.Adagrad(g, initial_accumulator_value=initial, foreach=False),
        ADAGRAD_GROUPS,
        dtype,
    )
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **TOLERANCES[dtype])
    # Same state layout and values as torch: "step" and "sum".
    for p, q in zip(optimizer.param_groups, reference.param_groups):
        mine, torchs = optimizer.state[p["params"][0]], reference.state[q["params"][0]]
        assert float(mine["step"]) == float(torchs["step"]) == STEPS
        torch.testing.assert_close(mine["sum"], torchs["sum"], **TOLERANCES[dtype])


SGD_GROUPS = [
    {"lr": 0.05},
    {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    {"lr": 0.03, "momentum": 0.5, "dampening": 0.3, "maximize": True},
]


@pytest.mark.parametrize(
    ("kernel", "fused_threshold"), KERNELS, ids=["reference", "fast", "fast-fused"]
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sgd_matches_torch_sgd_over_200_steps(dtype, kernel, fused_threshold, monkeypatch) -> None:
    if fused_threshold is not None:
        monkeypatch.setattr(_sgd, "FUSED_MIN_NUMEL", fused_threshold)
    ours, _ = _run(lambda g: SGD(g, kernel=kernel), SGD_GROUPS, dtype)
    theirs, _ = _run(lambda g: torch.optim.SGD(g, foreach=False), SGD_GROUPS, dtype)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **TOLERANCES[dtype])
