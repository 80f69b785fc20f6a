"""Figure 1 of the paper: does generalized smoothness (A3) hold along a training trajectory?

Adam runs with **full** gradients of a fixed objective ``f`` (the mean loss over a fixed data
subset) for ``steps`` iterations. Between consecutive iterates ``w_t, w_{t+1}`` — and optionally
between each iterate and a perturbed point ``w_t + r·z`` (``z`` Rademacher) — the secant ratio

    y = |∂_j f(w') − ∂_j f(w)| / |w'_j − w_j|     against     x = |∂_j f(w)|

is recorded for a seeded, per-parameter-tensor sample of coordinates ``j``. A3 predicts
``y ≲ L0 + L1·x``; the affine upper envelope of :func:`~anisoada.measure.fit_envelope` is fitted
per tensor and pooled. Raw points go to ``<stem>.npz``, the fits and the run record to
``<stem>.json``, and :func:`plot_smoothness_check` draws the log–log scatter coloured by
iteration with the pooled envelope.

The Adam steps are taken by the project's one training loop,
:func:`anisoada.train.loop.train`: the objective is a loop ``Task`` whose every batch is
the whole subset (micro-batches of ``data_chunk_size`` samples, weighted by size), and a
callback reads ``w_t`` and ``∇f(w_t)`` before each step.

The core takes any ``model`` and ``loss_fn(model, batch)`` (mean over samples), so it runs on a
quadratic in tests and on GPT-2 with Alpaca-format data from the CLI
(``anisoada smoothness-check``). The model is switched to ``eval()`` for the run (dropout off:
the secant of a random function measures noise, not curvature) and restored afterwards; its
parameters end at the last iterate.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anisoada._io import atomic_open, load_npz, package_versions, read_json
from anisoada.measure._functional import LossFn, batch_size, chunks, slice_batch
from anisoada.measure.envelope import EnvelopeFit, fit_envelopes
from anisoada.measure.layout import ParameterLayout, trainable_parameters
from anisoada.measure.secant import CoordinateSample, coordinate_secants, sample_coordinates
from anisoada.measure.smoothness_plot import plot_smoothness_check
from anisoada.measure.summary import summary_paths
from anisoada.train.loop import Budget, Callback, Task, TrainConfig, TrainState, train

__all__ = [
    "CHECK_FORMAT",
    "SmoothnessCheckConfig",
    "SmoothnessCheckResult",
    "plot_smoothness_check",
    "run_smoothness_check",
]

CHECK_FORMAT = "anisoada-smoothness-check/1"
#: ``kind`` of a point: secant between consecutive iterates, or iterate vs perturbed point.
KIND_TRAJECTORY, KIND_PERTURBED = 0, 1


@dataclasses.dataclass(frozen=True)
class SmoothnessCheckConfig:
    """Settings of a smoothness check.

    Attributes:
        steps: Adam iterations (the paper: 100); ``steps + 1`` full gradients are evaluated.
        lr: Adam learning rate.
        betas: Adam's ``(β1, β2)``.
        eps: Adam's ``ε``.
        coordinates_per_tensor: coordinates sampled from every parameter tensor (all of a
            smaller tensor).
        perturbation_radius: if set, also record secants between each iterate ``w_t`` and
            ``w_t + r·z`` with a fresh Rademacher ``z`` (one more gradient per step).
        min_move: absolute threshold: coordinates with ``|Δw_j| ≤ max(min_move,
            min_relative_move·|w_j|)`` are skipped (counted).
        min_relative_move: relative threshold (default ``1e-5``, ~100 float32 ulps of ``w_j``).
        coverage: fraction of points each envelope must cover.
        data_chunk_size: evaluate the full gradient in pieces of this many samples (same
            gradient, less activation memory).
        seed: seed of the coordinate sample and of the perturbations.
    """

    steps: int = 100
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    coordinates_per_tensor: int = 64
    perturbation_radius: float | None = None
    min_move: float = 0.0
    min_relative_move: float = 1e-5
    coverage: float = 0.99
    data_chunk_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _integer("steps", self.steps, 1, "a positive integer")
        _real("lr", self.lr, "a finite positive learning rate", above=0.0)
        betas = self.betas
        if (
            isinstance(betas, str | bytes)
            or not isinstance(betas, Sequence)
            or len(betas) != 2
            or not all(_is_real(b) and 0.0 <= b < 1.0 for b in betas)
        ):
            raise ValueError(f"Invalid betas: {betas!r}; use two numbers in [0, 1).")
        _real("eps", self.eps, "a finite number ≥ 0", at_least=0.0)
        _integer("coordinates_per_tensor", self.coordinates_per_tensor, 1, "a positive integer")
        if self.perturbation_radius is not None:
            _real(
                "perturbation_radius",
                self.perturbation_radius,
                "a positive number, or None for trajectory secants only",
                above=0.0,
            )
        _real("min_move", self.min_move, "a finite number ≥ 0", at_least=0.0)
        _real("min_relative_move", self.min_relative_move, "a finite number ≥ 0", at_least=0.0)
        _real("coverage", self.coverage, "a fraction in (0, 1]", above=0.0)
        if self.coverage > 1.0:
            raise ValueError(f"Invalid coverage: {self.coverage!r}; use a fraction in (0, 1].")
        if self.data_chunk_size is not None:
            _integer("data_chunk_size", self.data_chunk_size, 1, "a positive integer or None")
        _integer("seed", self.seed, 0, "an integer ≥ 0")
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))


def _is_real(value: Any) -> bool:
    """A finite real number (not a bool, not text)."""
    if isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _real(
    name: str, value: Any, use: str, *, above: float | None = None, at_least: float | None = None
) -> None:
    """A ValueError ``Invalid <name>: <value>; use <use>.`` unless ``value`` is a finite real
    number ``> above`` (or ``>= at_least``)."""
    fine = _is_real(value) and (above is None or value > above)
    if not fine or (at_least is not None and value < at_least):
        raise ValueError(f"Invalid {name}: {value!r}; use {use}.")


def _integer(name: str, value: Any, minimum: int, use: str) -> None:
    """A ValueError ``Invalid <name>: <value>; use <use>.`` unless ``value`` is an integer
    ``>= minimum`` (not a bool)."""
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(f"Invalid {name}: {value!r}; use {use}.")


@dataclasses.dataclass(frozen=True, eq=False)
class SmoothnessCheckResult:
    """Raw secant points of a smoothness check, their envelopes and the run record.

    Point arrays (one entry per measured coordinate-pair; skipped ones are only counted):

    Attributes:
        x: ``|∂_j f(w)|`` at the base point, float64.
        y: the secant ratio, float64.
        iteration: ``t`` of the base point ``w_t``.
        coordinate: flat coordinate index ``j`` (:class:`ParameterLayout` order).
        block: parameter-tensor number of ``j``.
        kind: 0 = consecutive iterates ``(w_t, w_{t+1})``, 1 = ``(w_t, w_t + r·z)``.
        losses: ``f(w_t)`` for ``t = 0..steps``.
        skipped: ``(steps + 1, 2)`` coordinates skipped by the move threshold, per base iteration
            and kind.
        block_names, block_sizes: the layout's tensors.
        fits: ``{"pooled": EnvelopeFit, tensor name: EnvelopeFit, ...}``.
        config: the :class:`SmoothnessCheckConfig`.
        provenance: JSON-serialisable record (model, data, timing, versions).
    """

    x: np.ndarray
    y: np.ndarray
    iteration: np.ndarray
    coordinate: np.ndarray
    block: np.ndarray
    kind: np.ndarray
    losses: np.ndarray
    skipped: np.ndarray
    block_names: tuple[str, ...]
    block_sizes: tuple[int, ...]
    fits: Mapping[str, EnvelopeFit]
    config: SmoothnessCheckConfig
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        """Coordinate-pairs skipped by the move threshold, in total."""
        return int(self.skipped.sum())

    def save(self, stem: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<stem>.npz`` (points) and ``<stem>.json`` (fits, config, record)."""
        npz_path, json_path = summary_paths(stem)
        with atomic_open(npz_path, "wb") as handle:
            np.savez_compressed(
                handle,
                x=self.x,
                y=self.y,
                iteration=self.iteration,
                coordinate=self.coordinate,
                block=self.block,
                kind=self.kind,
                losses=self.losses,
                skipped=self.skipped,
                block_names=np.array(self.block_names, dtype=np.str_),
                block_sizes=np.array(self.block_sizes, dtype=np.int64),
            )
        document = {
            "format": CHECK_FORMAT,
            "npz": npz_path.name,
            "n_points": int(self.x.size),
            "n_skipped": self.n_skipped,
            "envelope": {name: fit.to_dict() for name, fit in self.fits.items()},
            "config": dataclasses.asdict(self.config),
            "provenance": {
                "packages": package_versions("anisoada", "torch", "numpy"),
                **self.provenance,
            },
        }
        with atomic_open(json_path) as handle:
            handle.write(json.dumps(document, indent=2) + "\n")
        return npz_path, json_path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SmoothnessCheckResult:
        """Read a result written by :meth:`save` (give the stem or either file)."""
        base = Path(path)
        if base.suffix in (".npz", ".json"):
            base = base.with_suffix("")
        npz_path = base.with_name(base.name + ".npz")
        json_path = base.with_name(base.name + ".json")
        for needed in (npz_path, json_path):
            if not needed.is_file():
                raise FileNotFoundError(f"{needed} not found (write it with smoothness-check)")
        advice = "write it again with `anisoada smoothness-check --out STEM`"
        document = read_json(json_path, what="a smoothness-check record", advice=advice)
        if not isinstance(document, dict) or document.get("format") != CHECK_FORMAT:
            raise ValueError(f"{json_path} is not a smoothness-check record; {advice}")
        arrays = load_npz(npz_path, what="a smoothness-check record", advice=advice)
        try:
            return cls._from_parts(document, arrays)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(
                f"{base} (.json/.npz) is an incomplete or damaged smoothness-check record "
                f"({type(error).__name__}: {error}); {advice}"
            ) from None

    @classmethod
    def _from_parts(
        cls, document: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> SmoothnessCheckResult:
        config = dict(document["config"])
        config["betas"] = tuple(config["betas"])
        return cls(
            x=arrays["x"],
            y=arrays["y"],
            iteration=arrays["iteration"],
            coordinate=arrays["coordinate"],
            block=arrays["block"],
            kind=arrays["kind"],
            losses=arrays["losses"],
            skipped=arrays["skipped"],
            block_names=tuple(arrays["block_names"].tolist()),
            block_sizes=tuple(int(s) for s in arrays["block_sizes"]),
            fits={name: EnvelopeFit(**fit) for name, fit in document["envelope"].items()},
            config=SmoothnessCheckConfig(**config),
            provenance=document.get("provenance", {}),
        )


def run_smoothness_check(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batch: Any,
    config: SmoothnessCheckConfig = SmoothnessCheckConfig(),
    *,
    progress: Callable[[int, float], None] | None = None,
) -> SmoothnessCheckResult:
    """Run Adam on the full-batch objective and collect coordinate secant points (Figure 1).

    The ``steps`` Adam steps are taken by the project's one training loop
    (:func:`anisoada.train.loop.train`): the task's every batch is the whole subset
    (in ``data_chunk_size`` micro-batches, weighted by their sizes, so the accumulated gradient
    is ``∇f(w_t)`` itself), and a callback reads ``w_t`` and ``∇f(w_t)`` before each step. The
    gradient at the last iterate ``w_T`` and the perturbed gradients ``∇f(w_t + r·z)`` are extra
    evaluations of the same objective that leave the parameters and ``.grad`` untouched.

    Args:
        model: any ``torch.nn.Module``; trained in place (ends at the last iterate).
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean loss over the batch's samples.
        batch: the fixed data subset (tensor or tuple/list/dict of tensors, leading dim = samples).
        config: :class:`SmoothnessCheckConfig`.
        progress: called as ``progress(t, f(w_t))`` after each gradient evaluation.

    Returns:
        :class:`SmoothnessCheckResult` (the caller adds provenance and saves it).

    Raises:
        ValueError: ``f(w_t)`` is not finite (lower the learning rate).

    Example:
        >>> model = torch.nn.Linear(3, 1, bias=False).double()
        >>> x = torch.eye(3, dtype=torch.float64) * torch.tensor([[1.0], [2.0], [3.0]])
        >>> loss = lambda m, b: 0.5 * m(b).square().mean()       # ∇²f = diag(1, 4, 9)/3
        >>> result = run_smoothness_check(model, loss, x, SmoothnessCheckConfig(steps=3))
        >>> sorted(set(np.round(result.y * 3, 9).tolist()))  # secants are exact here
        [1.0, 4.0, 9.0]
    """
    params = trainable_parameters(model)
    layout = ParameterLayout.from_tensors(params)
    sample = sample_coordinates(layout, per_block=config.coordinates_per_tensor, seed=config.seed)
    task = _FullBatchObjective(model, loss_fn, batch, config.data_chunk_size, list(params.values()))
    recorder = _SecantRecorder(task, layout, sample, config, progress)
    optimizer = torch.optim.Adam(
        task.parameters(), lr=config.lr, betas=config.betas, eps=config.eps
    )
    loop_config = TrainConfig(
        batch_size=task.n,
        budget=Budget(steps=config.steps),
        micro_batch_size=config.data_chunk_size,
        seed=config.seed,
        divergence_factor=None,  # the recorder raises on a non-finite f(w_t) before stepping
    )
    cuda_devices = sorted({p.device.index or 0 for p in task.parameters() if p.is_cuda})
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    try:
        # The loop seeds torch's global generator; the caller's random state is kept.
        with torch.random.fork_rng(devices=cuda_devices):
            train(task, optimizer, loop_config, callbacks=[recorder])
        recorder.observe_final_iterate()
    finally:
        for p in task.parameters():
            p.grad = None
        model.train(was_training)

    x, y, iteration, coordinate, block, kind = recorder.columns()
    fits = fit_envelopes(x, y, block, names=layout.names, coverage=config.coverage)
    return SmoothnessCheckResult(
        x=x.astype(np.float64),
        y=y.astype(np.float64),
        iteration=iteration.astype(np.int32),
        coordinate=coordinate.astype(np.int64),
        block=block.astype(np.int32),
        kind=kind.astype(np.int8),
        losses=recorder.losses,
        skipped=recorder.skipped,
        block_names=layout.names,
        block_sizes=layout.sizes,
        fits=fits,
        config=config,
        provenance={
            "d": layout.d,
            "sampled_coordinates": int(sample.index.numel()),
            "samples": task.n,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


class _FullBatchObjective:
    """``f`` = the mean loss over a fixed data subset, as a training-loop ``Task``.

    Every step's batch is the whole subset, split into micro-batches of ``chunk_size`` samples;
    the loop weights micro-batch ``i`` by ``n_i / n``, so the accumulated gradient is ``∇f``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        batch: Any,
        chunk_size: int | None,
        params: Sequence[torch.Tensor],
    ) -> None:
        self.model, self.loss_fn, self.params = model, loss_fn, params
        self.n = batch_size(batch)
        self.chunk_size = min(chunk_size or self.n, self.n)
        ranges = list(chunks(self.n, self.chunk_size))
        self.pieces = [slice_batch(batch, start, stop) for start, stop in ranges]
        self.shares = [(stop - start) / self.n for start, stop in ranges]

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params)

    def batches(
        self, *, seed: int, batch_size: int, micro_batch_size: int, start_step: int
    ) -> Iterator[list[Any]]:
        if batch_size != self.n or micro_batch_size != self.chunk_size:
            raise ValueError(
                f"the full-batch objective has {self.n} samples in micro-batches of "
                f"{self.chunk_size}; got batch_size={batch_size}, "
                f"micro_batch_size={micro_batch_size}"
            )
        return itertools.repeat(self.pieces)

    def loss(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(self.model, batch)

    def weight(self, batch: Any) -> float:
        return float(batch_size(batch))

    def evaluate(self) -> dict[str, float]:
        return {}  # f(w_t) is recorded by _SecantRecorder from the step's own forward passes

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])

    def gradient(self) -> tuple[float, list[torch.Tensor | None]]:
        """``f(w)`` and ``∇f(w)`` at the current parameters, leaving ``.grad`` untouched.

        Same micro-batches, weights and accumulation order as the loop's backward passes, so
        the result equals what the loop would accumulate (``None``: the loss does not reach
        that parameter, i.e. a zero gradient).
        """
        total = 0.0
        accumulated: list[torch.Tensor | None] = [None] * len(self.params)
        for piece, share in zip(self.pieces, self.shares):
            loss = self.loss(piece) * share
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    previous = accumulated[i]
                    accumulated[i] = g if previous is None else previous.add_(g)
            total += float(loss.detach())
        return total, accumulated


class _SecantRecorder(Callback):
    """Reads ``(w_t, ∇f(w_t))`` before each Adam step and records sampled secant points."""

    def __init__(
        self,
        task: _FullBatchObjective,
        layout: ParameterLayout,
        sample: CoordinateSample,
        config: SmoothnessCheckConfig,
        progress: Callable[[int, float], None] | None,
    ) -> None:
        self.task, self.config, self.progress = task, config, progress
        device = task.params[0].device
        # Gather the sampled coordinates tensor by tensor: no d-sized flat copy is ever made.
        self.local = _local_indices(layout, sample.index, device)
        self.sample_index = sample.index.numpy()
        self.sample_block = sample.block.numpy().astype(np.int32)
        self.generator = torch.Generator(device="cpu").manual_seed(config.seed + 1)
        self.losses = np.zeros(config.steps + 1)
        self.skipped = np.zeros((config.steps + 1, 2), dtype=np.int64)
        self.points: list[tuple[np.ndarray, ...]] = []
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None
        self.step_loss = 0.0

    def on_micro_batch_end(
        self, state: TrainState, index: int, count: int, loss: torch.Tensor
    ) -> None:
        # f(w_t) summed exactly as the weighted micro-batch losses the loop back-propagates.
        self.step_loss += float(loss * self.task.shares[index])

    def on_gradients(self, state: TrainState, task: Task) -> None:
        loss, self.step_loss = self.step_loss, 0.0
        self._observe(state.step, loss, [p.grad for p in self.task.params])

    def observe_final_iterate(self) -> None:
        """The gradient at ``w_T`` (the loop stops after the last step, so it is computed here)."""
        loss, grads = self.task.gradient()
        self._observe(self.config.steps, loss, grads)

    def columns(self) -> list[np.ndarray]:
        if not self.points:
            return [np.zeros(0)] * 6
        return [np.concatenate(parts) for parts in zip(*self.points)]

    def _gather(self, tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
        # A parameter the loss does not reach has no gradient: it is zero.
        return torch.cat(
            [
                torch.zeros(idx.numel(), dtype=torch.float64, device=idx.device)
                if t is None
                else t.detach().reshape(-1)[idx].to(torch.float64)
                for t, idx in zip(tensors, self.local)
            ]
        ).cpu()

    def _observe(self, t: int, loss: float, grads: list[torch.Tensor | None]) -> None:
        config = self.config
        w_t, g_t = self._gather(self.task.params), self._gather(grads)
        perturbed = self._perturbed_point() if config.perturbation_radius is not None else None
        self.losses[t] = loss
        if self.progress is not None:
            self.progress(t, loss)
        if not np.isfinite(loss):
            raise ValueError(f"the loss became {loss} at iteration {t}; lower lr (now {config.lr})")
        if self.previous is not None:
            self._record(t - 1, KIND_TRAJECTORY, *self.previous, w_t, g_t)
        if perturbed is not None:
            self._record(t, KIND_PERTURBED, w_t, g_t, *perturbed)
        self.previous = (w_t, g_t)

    def _perturbed_point(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled ``w + r·z`` and ``∇f(w + r·z)`` (``z`` Rademacher); parameters restored."""
        params = self.task.params
        saved = [p.detach().clone() for p in params]
        try:
            with torch.no_grad():
                for p in params:
                    signs = torch.randint(0, 2, p.shape, generator=self.generator) * 2 - 1
                    p.add_(
                        signs.to(device=p.device, dtype=p.dtype),
                        alpha=self.config.perturbation_radius,
                    )
            _, grads = self.task.gradient()
            return self._gather(params), self._gather(grads)
        finally:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)

    def _record(
        self,
        t: int,
        kind: int,
        w0: torch.Tensor,
        g0: torch.Tensor,
        w1: torch.Tensor,
        g1: torch.Tensor,
    ) -> None:
        config = self.config
        secants = coordinate_secants(
            w0, g0, w1, g1, min_move=config.min_move, min_relative_move=config.min_relative_move
        )
        moved = secants.moved.numpy()
        self.skipped[t, kind] = secants.n_skipped
        count = int(moved.sum())
        self.points.append(
            (
                secants.gradient_magnitude.numpy()[moved],
                secants.ratio.numpy()[moved],
                np.full(count, t, dtype=np.int32),
                self.sample_index[moved],
                self.sample_block[moved],
                np.full(count, kind, dtype=np.int8),
            )
        )


def _local_indices(
    layout: ParameterLayout, index: torch.Tensor, device: torch.device
) -> list[torch.Tensor]:
    blocks = layout.block_of(index)
    return [(index[blocks == b] - layout.offsets[b]).to(device) for b in range(len(layout.names))]
