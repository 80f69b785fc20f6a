"""Cost of measuring noise: per-sample σ on a tiny GPT-2, closed-form σ on logistic regression.

Two comparisons, each against a baseline measured in the same run:

1. ``gradient_noise`` (exact per-sample gradients with ``torch.func``, ``--chunk-size`` examples
   per vmapped call, float64 moments) on the tiny GPT-2 preset at batch 64, against **one
   training step on the same batch** (zero_grad → forward → backward → SGD update). Targets:
   time ratio ≤ 3, peak-memory ratio ≤ 2.
   * Time: median of ``--repeats`` warm runs in this process.
   * Memory on CPU: **peak RSS increase** over the post-setup baseline. Each operation runs in
     a fresh child process: set up, run once (warm-up: lazy initialisation), ``gc`` +
     ``malloc_trim`` (freed memory goes back to the OS), reset the kernel's high-water mark
     (``/proc/self/clear_refs``), record ``VmRSS``, run again, read ``VmHWM``. On CUDA:
     ``torch.cuda.max_memory_allocated`` over the allocated baseline instead.
2. ``logistic_noise`` (closed form, sparse products) on a9a at ``w = 0`` against one
   full-gradient evaluation ``logistic_gradient``. Target: ratio ≤ 3. a9a comes from ``--data``
   or ``$ANISOADA_TEST_DATA/libsvm/a9a.xz`` (else ``../shared/data``); without it an a9a-shaped
   synthetic stand-in is used, with a note.

Run: ``python benchmarks/measure.py`` (about a minute on a laptop CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from anisoada.data import LMDataSpec
from anisoada.measure import gradient_noise, logistic_gradient, logistic_noise
from anisoada.measure.lm import language_model_problem
from anisoada.problems import response_token_loss

TIME_TARGET, MEMORY_TARGET, LOGISTIC_TARGET = 3.0, 2.0, 3.0


def _shared_data() -> Path:
    configured = os.environ.get("ANISOADA_TEST_DATA")
    return (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )


def _problem(args: argparse.Namespace):
    alpaca = _shared_data() / "alpaca" / "alpaca_random_9k.json.xz"
    data = args.alpaca or (alpaca if alpaca.is_file() else "synthetic")
    spec = LMDataSpec(
        source=str(data),
        n_train=args.batch,
        n_eval=1,
        max_length=args.max_length,
        vocabulary="compact",
    )
    problem = language_model_problem(
        spec, model="tiny", n_examples=None, seed=0, device=args.device
    )
    problem.model.eval()
    return problem, str(data)


def _operations(problem, chunk_size: int):
    model, batch = problem.model, problem.batch
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)

    def training_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        response_token_loss(model, batch).backward()
        optimizer.step()

    def per_sample_noise() -> None:
        gradient_noise(model, response_token_loss, batch, chunk_size=chunk_size)

    return {"training_step": training_step, "per_sample_noise": per_sample_noise}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _median_seconds(function, repeats: int, device: str) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        function()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _release_freed_memory() -> None:
    gc.collect()
    # Not glibc: freed memory may stay resident, which can only understate later peaks.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _child_peak_memory(args: argparse.Namespace, operation: str) -> int:
    """Peak extra bytes of one run of ``operation`` (after one warm-up run), this process."""
    problem, _ = _problem(args)
    run = _operations(problem, args.chunk_size)[operation]
    run()
    if args.device.startswith("cuda"):
        _sync(args.device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        run()
        _sync(args.device)
        return torch.cuda.max_memory_allocated() - baseline
    problem.model.zero_grad(set_to_none=True)
    _release_freed_memory()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current VmRSS
    baseline = _status_kib("VmRSS")
    run()
    return (_status_kib("VmHWM") - baseline) * 1024


def _peak_memory(args: argparse.Namespace, operation: str) -> int:
    command = [sys.executable, __file__, "--child-memory", operation, *args.forwarded]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return int(json.loads(output.strip().splitlines()[-1])["peak_bytes"])


def _logistic(args: argparse.Namespace) -> tuple[str, float, float]:
    from anisoada.data import load_libsvm, make_sparse_logistic

    path = Path(args.data) if args.data else _shared_data() / "libsvm" / "a9a.xz"
    if path.is_file():
        X, y = load_libsvm(path, n_features=123 if path.name.startswith("a9a") else None)
        label = f"a9a ({path})" if path.name.startswith("a9a") else str(path)
    else:
        problem = make_sparse_logistic(32_561, 123, density=0.11, seed=0)
        X, y = problem.X, problem.y
        label = "a9a-shaped synthetic stand-in (NOTE: a9a not found; pass --data)"
    w = np.zeros(X.shape[1])
    noise = _median_seconds(lambda: logistic_noise(X, y, w), args.repeats * 5, "cpu")
    gradient = _median_seconds(lambda: logistic_gradient(X, y, w), args.repeats * 5, "cpu")
    return label, noise, gradient


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--alpaca", default=None, help="Alpaca-format file (default: shared)")
    parser.add_argument("--data", default=None, help="a9a LIBSVM file")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.forwarded = [
        "--batch",
        str(args.batch),
        "--max-length",
        str(args.max_length),
        "--chunk-size",
        str(args.chunk_size),
        "--device",
        args.device,
    ] + (["--alpaca", args.alpaca] if args.alpaca else [])
    if args.child_memory:
        print(json.dumps({"peak_bytes": _child_peak_memory(args, args.child_memory)}))
        return 0

    problem, data = _problem(args)
    operations = _operations(problem, args.chunk_size)
    for run in operations.values():  # warm-up
        run()
    seconds = {
        name: _median_seconds(run, args.repeats, args.device) for name, run in operations.items()
    }
    peaks = {name: _peak_memory(args, name) for name in operations}
    info = problem.provenance
    memory_kind = (
        "torch.cuda.max_memory_allocated increase"
        if args.device.startswith("cuda")
        else "peak RSS increase (VmHWM after clear_refs, fresh process, after warm-up)"
    )
    print(
        f"tiny GPT-2: {info['n_parameters']:,} parameters (vocabulary {info['vocabulary']}), "
        f"batch {info['n_examples']} x {info['sequence_length']} tokens, data {data}, "
        f"device {args.device}, torch threads {torch.get_num_threads()}"
    )
    print(f"memory measured as: {memory_kind}")
    print()
    header = f"{'operation':<44}{'time (s)':>10}{'peak mem (MiB)':>16}"
    print(header)
    print("-" * len(header))
    print(
        f"{'one training step (baseline)':<44}{seconds['training_step']:>10.3f}"
        f"{peaks['training_step'] / 2**20:>16.1f}"
    )
    print(
        f"{f'per-sample sigma (vmap, chunk {args.chunk_size})':<44}"
        f"{seconds['per_sample_noise']:>10.3f}{peaks['per_sample_noise'] / 2**20:>16.1f}"
    )
    time_ratio = seconds["per_sample_noise"] / seconds["training_step"]
    memory_ratio = peaks["per_sample_noise"] / max(peaks["training_step"], 1)
    print(
        f"ratio: time {time_ratio:.2f} (target <= {TIME_TARGET:g}: "
        f"{'PASS' if time_ratio <= TIME_TARGET else 'FAIL'}), "
        f"peak memory {memory_ratio:.2f} (target <= {MEMORY_TARGET:g}: "
        f"{'PASS' if memory_ratio <= MEMORY_TARGET else 'FAIL'})"
    )
    print()
    label, noise, gradient = _logistic(args)
    ratio = noise / gradient
    print(f"logistic regression on {label}, w = 0")
    print(f"{'operation':<44}{'time (ms)':>10}")
    print(f"{'full gradient logistic_gradient (baseline)':<44}{1e3 * gradient:>10.2f}")
    print(f"{'closed-form sigma logistic_noise':<44}{1e3 * noise:>10.2f}")
    print(
        f"ratio: time {ratio:.2f} (target <= {LOGISTIC_TARGET:g}: "
        f"{'PASS' if ratio <= LOGISTIC_TARGET else 'FAIL'})"
    )
    met = time_ratio <= TIME_TARGET and memory_ratio <= MEMORY_TARGET and ratio <= LOGISTIC_TARGET
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
