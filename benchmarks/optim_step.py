"""Time one optimizer step on one large float32 tensor against torch's fused kernels.

Measured in the same run, on the same tensor: an in-place add (the memory-bandwidth roofline),
``torch.optim.Adagrad`` (default for-loop, foreach, fused), ``torch.optim.SGD`` (fused), and each
``anisoada.optim`` optimizer and variant. For each it prints the best and median time per step,
the effective bandwidth (the bytes the update must move at the least — e.g. AdaGrad reads
``w, g, v`` and writes ``w, v``: 20 bytes per float32 coordinate — divided by the best time), the
ratio to torch's fused Adagrad (and, for SGD, to torch's fused SGD), and the bytes the step
allocated (torch profiler), then checks the targets of issue 2:

- ``AdaGrad`` (defaults) ≤ 1.10 × torch fused Adagrad and ≥ 85 % of the in-place-add bandwidth;
- projected and delayed ``AdaGrad`` ≤ 1.5 × torch fused Adagrad;
- ``SGD`` ≤ 1.10 × torch fused SGD;
- no allocation proportional to the parameter count on our fast paths.

Usage: ``python benchmarks/optim_step.py [--numel 50000000] [--repeats 12] [--threads N]``.
The machine may be shared: compare ratios from one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile

from anisoada.optim import SGD, AdaGrad, AdaGradNorm

FLOAT_BYTES = 4


@dataclass(frozen=True)
class Variant:
    """One timed update: how to build it and how many bytes per coordinate it must move."""

    label: str
    build: Callable[[torch.Tensor], Callable[[], object]]
    bytes_per_coordinate: int
    baseline: str  # the label of the torch row its ratio target refers to
    target: float | None = None  # maximum allowed ratio to ``baseline``
    ours: bool = False


def _optimizer_step(factory: Callable[[torch.Tensor], torch.optim.Optimizer], lr: float):
    def build(grad: torch.Tensor) -> Callable[[], object]:
        param = torch.zeros_like(grad).requires_grad_()
        param.grad = grad
        optimizer = factory(param)
        return optimizer.step

    return build


def _inplace_add(grad: torch.Tensor) -> Callable[[], object]:
    param = torch.zeros_like(grad)
    return lambda: param.add_(grad, alpha=-1e-12)


LR = 1e-3
TORCH_FUSED_ADAGRAD = "torch Adagrad fused"
TORCH_FUSED_SGD = "torch SGD fused"


def variants() -> list[Variant]:
    def ours(label, factory, nbytes, baseline=TORCH_FUSED_ADAGRAD, target=None):
        return Variant(label, _optimizer_step(factory, LR), nbytes, baseline, target, ours=True)

    def theirs(label, factory, nbytes, baseline=TORCH_FUSED_ADAGRAD):
        return Variant(label, _optimizer_step(factory, LR), nbytes, baseline)

    return [
        Variant("in-place add (roofline)", _inplace_add, 12, TORCH_FUSED_ADAGRAD),
        theirs(
            "torch Adagrad default",
            lambda p: torch.optim.Adagrad([p], lr=LR, foreach=False),
            20,
        ),
        theirs(
            "torch Adagrad foreach", lambda p: torch.optim.Adagrad([p], lr=LR, foreach=True), 20
        ),
        theirs(TORCH_FUSED_ADAGRAD, lambda p: torch.optim.Adagrad([p], lr=LR, fused=True), 20),
        theirs(TORCH_FUSED_SGD, lambda p: torch.optim.SGD([p], lr=LR, fused=True), 12),
        ours("AdaGrad", lambda p: AdaGrad([p], lr=LR), 20, target=1.10),
        ours("AdaGrad box=(-1,1)", lambda p: AdaGrad([p], lr=LR, box=(-1.0, 1.0)), 20, target=1.5),
        ours(
            "AdaGrad box_radius=1",
            lambda p: AdaGrad([p], lr=LR, box_radius=1.0),
            28,  # also reads the two bound tensors
            target=1.5,
        ),
        ours(
            "AdaGrad delayed",
            lambda p: AdaGrad([p], lr=LR, delayed=True, initial_accumulator_value=0.1),
            20,
            target=1.5,
        ),
        ours(
            "AdaGrad eps inside (optax)",
            lambda p: AdaGrad([p], lr=LR, eps_placement="inside", initial_accumulator_value=0.1),
            20,
        ),
        ours("AdaGrad weight_decay", lambda p: AdaGrad([p], lr=LR, weight_decay=1e-4), 20),
        ours("AdaGradNorm", lambda p: AdaGradNorm([p], lr=LR), 16),  # norm pass reads g once more
        ours("SGD", lambda p: SGD([p], lr=LR), 12, baseline=TORCH_FUSED_SGD, target=1.10),
        ours("SGD momentum", lambda p: SGD([p], lr=LR, momentum=0.9), 20, TORCH_FUSED_SGD),
    ]


def time_step(step: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls after two warm-up calls (which allocate state)."""
    step()
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def allocated_bytes(step: Callable[[], object]) -> int:
    """Bytes allocated (not freed) within one call, summed over allocations, by torch's profiler."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    return sum(max(0, event.cpu_memory_usage) for event in prof.events())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=50_000_000, help="parameter size")
    parser.add_argument("--repeats", type=int, default=12, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    grad = torch.randn(args.numel, generator=generator, dtype=torch.float32)
    print(
        f"one float32 tensor of {args.numel:,} parameters, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {args.repeats} timed steps (best / median)"
    )

    results: dict[str, tuple[float, float, int]] = {}
    rows = variants()
    for variant in rows:
        step = variant.build(grad)
        times = time_step(step, args.repeats)
        allocated = allocated_bytes(step) if variant.ours else -1
        results[variant.label] = (min(times), statistics.median(times), allocated)
        del step
        gc.collect()

    fused_adagrad = results[TORCH_FUSED_ADAGRAD][0]
    roofline_bandwidth = 12 * args.numel / results["in-place add (roofline)"][0]
    header = (
        f"{'variant':<28}{'best ms':>9}{'median ms':>11}{'GB/s':>8}{'% add':>7}"
        f"{'× fused Adagrad':>17}{'× baseline':>12}{'alloc/step':>12}  target"
    )
    print(header)
    print("-" * len(header))
    failures = []
    for variant in rows:
        best, median, allocated = results[variant.label]
        bandwidth = variant.bytes_per_coordinate * args.numel / best
        ratio_fused = best / fused_adagrad
        ratio_baseline = best / results[variant.baseline][0]
        verdict = ""
        if variant.target is not None:
            ok = ratio_baseline <= variant.target
            verdict = f"≤{variant.target:.2f}× {variant.baseline}: {'PASS' if ok else 'FAIL'}"
            if not ok:
                failures.append(variant.label)
        alloc = "" if allocated < 0 else f"{allocated / 2**20:.1f} MiB"
        if variant.ours and allocated > args.numel:  # more than a quarter of one float32 copy
            failures.append(f"{variant.label} (allocates {alloc} per step)")
        print(
            f"{variant.label:<28}{best * 1e3:>9.2f}{median * 1e3:>11.2f}{bandwidth / 1e9:>8.1f}"
            f"{100 * bandwidth / roofline_bandwidth:>6.0f}%{ratio_fused:>16.2f}×"
            f"{ratio_baseline:>11.2f}×{alloc:>12}  {verdict}"
        )
    ours_bandwidth = 20 * args.numel / results["AdaGrad"][0]
    share = ours_bandwidth / roofline_bandwidth
    print(
        f"AdaGrad effective bandwidth = {100 * share:.0f}% of the in-place add's "
        f"(target ≥ 85%: {'PASS' if share >= 0.85 else 'FAIL'})"
    )
    if share < 0.85:
        failures.append("AdaGrad bandwidth")
    print("all targets met" if not failures else f"targets missed: {', '.join(failures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
