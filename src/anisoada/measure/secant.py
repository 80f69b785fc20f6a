"""Per-coordinate smoothness of any model from gradient differences (coordinate secants).

For two points ``w, w'`` the secant ratio of coordinate ``j`` is

    r_j = |∂_j f(w') − ∂_j f(w)| / |w'_j − w_j|.

On a quadratic ``f(w) = ½ wᵀHw + bᵀw`` it equals ``|(H Δw)_j / Δw_j|``: exactly ``|H_jj|`` when
``H`` is diagonal or only coordinate ``j`` moved, and ``|H_jj + Σ_{k≠j} H_jk Δw_k/Δw_j|`` otherwise.
With equal-magnitude Rademacher moves ``Δw = r·z`` the maximum over sign patterns is the row sum
``Σ_k |H_jk|`` — the valid A2 majorant that :func:`~anisoada.problems.logistic.logistic_smoothness`
computes in closed form — so the running maximum over random perturbations
(:func:`secant_smoothness`) estimates that majorant from below. Along an optimizer trajectory
the same ratios are the raw points of the paper's Figure 1 (see
:mod:`anisoada.measure.smoothness_check`).

Coordinates whose move ``|Δw_j|`` is at or below a threshold are skipped (their ratio is ``nan``):
tiny moves make the ratio a quotient of rounding errors. Skips are counted and reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from anisoada.measure._functional import FlatObjective, LossFn
from anisoada.measure.layout import ParameterLayout

__all__ = [
    "CoordinateSample",
    "SecantMaximum",
    "SecantSmoothness",
    "Secants",
    "aggregate_by_block",
    "coordinate_secants",
    "sample_coordinates",
    "secant_smoothness",
]


@dataclasses.dataclass(frozen=True)
class Secants:
    """Coordinate secant ratios between a base point ``w`` and another point ``w'``.

    Attributes:
        gradient_magnitude: ``|∂_j f(w)|`` at the base point, float64.
        ratio: ``|∂_j f(w') − ∂_j f(w)| / |w'_j − w_j|``, float64, ``nan`` where skipped.
        moved: ``True`` where ``|w'_j − w_j|`` exceeded the threshold (ratio measured).
    """

    gradient_magnitude: torch.Tensor
    ratio: torch.Tensor
    moved: torch.Tensor

    @property
    def n_measured(self) -> int:
        """Coordinates whose ratio was measured."""
        return int(self.moved.sum())

    @property
    def n_skipped(self) -> int:
        """Coordinates skipped because they moved too little."""
        return int(self.moved.numel() - self.moved.sum())


def coordinate_secants(
    w: torch.Tensor | np.ndarray,
    grad_w: torch.Tensor | np.ndarray,
    w_other: torch.Tensor | np.ndarray,
    grad_other: torch.Tensor | np.ndarray,
    *,
    min_move: float = 0.0,
    min_relative_move: float = 0.0,
) -> Secants:
    """Secant ratios ``|∂_j f(w') − ∂_j f(w)| / |w'_j − w_j|`` per coordinate.

    A coordinate is measured iff ``|w'_j − w_j| > max(min_move, min_relative_move·|w_j|)``
    (and always skipped when it did not move at all). Computed in float64 from the given values,
    so pass the points actually evaluated (``w'`` as stored, not ``w + δ`` in exact arithmetic).

    Args:
        w, grad_w: base point and ``∇f(w)`` (any shape, same for all four arrays).
        w_other, grad_other: the other point and ``∇f(w')``.
        min_move: absolute move threshold (≥ 0).
        min_relative_move: threshold relative to ``|w_j|`` (≥ 0); e.g. a few hundred float32
            ulps (``1e-5``) keeps rounding of ``w`` itself out of the ratio.

    Returns:
        :class:`Secants` (flattened to 1-D).

    Example:
        >>> w, w2 = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.5, 2.0, 2.0])
        >>> s = coordinate_secants(w, 4 * w, w2, 4 * w2)     # f = 2‖w‖²: ratio 4
        >>> s.ratio.tolist(), s.n_skipped
        ([4.0, nan, 4.0], 1)
    """
    if min_move < 0 or min_relative_move < 0:
        raise ValueError(
            f"move thresholds must be ≥ 0; got min_move={min_move}, "
            f"min_relative_move={min_relative_move}"
        )
    arrays = [
        torch.as_tensor(a).reshape(-1).to(torch.float64) for a in (w, grad_w, w_other, grad_other)
    ]
    base, grad_base, other, grad_next = arrays
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(
            f"w, grad_w, w_other, grad_other must match; got {[a.shape for a in arrays]}"
        )
    move = (other - base).abs()
    threshold = torch.clamp(base.abs() * min_relative_move, min=min_move)
    moved = (move > threshold) & (move > 0)
    ratio = torch.full_like(move, float("nan"))
    ratio[moved] = (grad_next - grad_base).abs()[moved] / move[moved]
    return Secants(grad_base.abs(), ratio, moved)


class SecantMaximum:
    """Running per-coordinate maximum of secant ratios over many point pairs.

    ``L̂_j = max_pairs r_j``; along a trajectory ``w_0, w_1, …`` feed consecutive pairs, around
    one point feed ``(w, w + δ_k)`` for several perturbations ``δ_k``.

    Example:
        >>> tracker = SecantMaximum(2)
        >>> tracker.update(coordinate_secants([0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 1.0]))
        >>> tracker.estimate().tolist(), tracker.n_skipped
        ([3.0, nan], 1)
    """

    def __init__(self, d: int) -> None:
        self.maximum = torch.full((d,), float("nan"), dtype=torch.float64)
        self.n_measured = torch.zeros(d, dtype=torch.int64)
        self.n_skipped = 0
        self.n_pairs = 0

    def update(self, secants: Secants) -> None:
        """Fold in the ratios of one pair."""
        ratio = secants.ratio.to(self.maximum.device)
        if ratio.shape != self.maximum.shape:
            raise ValueError(
                f"secants cover {ratio.numel()} coordinates, expected {self.maximum.numel()}"
            )
        self.maximum = torch.fmax(self.maximum, ratio)
        self.n_measured += secants.moved.to(self.n_measured.device)
        self.n_skipped += secants.n_skipped
        self.n_pairs += 1

    def estimate(self) -> torch.Tensor:
        """``L̂`` (``nan`` where a coordinate was never measured)."""
        return self.maximum.clone()


@dataclasses.dataclass(frozen=True)
class SecantSmoothness:
    """Per-coordinate smoothness estimated by secants around one point.

    Attributes:
        L: ``(d,)`` float64, the largest secant ratio seen per coordinate (``nan`` if never
            measured).
        n_measured: ``(d,)`` how many pairs measured each coordinate.
        n_skipped: coordinate-pairs skipped by the move threshold, summed over pairs.
        n_pairs: perturbations used.
        radius: perturbation size ``r`` (each coordinate moves by ``±r``).
        layout: which coordinates belong to which parameter tensor.
    """

    L: torch.Tensor
    n_measured: torch.Tensor
    n_skipped: int
    n_pairs: int
    radius: float
    layout: ParameterLayout


def secant_smoothness(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    radius: float = 1e-3,
    n_perturbations: int = 8,
    seed: int = 0,
    min_relative_move: float = 0.0,
    data_chunk_size: int | None = None,
    parameter_names: Sequence[str] | None = None,
) -> SecantSmoothness:
    """``L̂_j = max_k |∂_j f(w + r z_k) − ∂_j f(w)| / |r z_kj|`` over Rademacher ``z_k``.

    For a quadratic, each ratio is ``|H_jj + Σ_{k≠j} H_jk z_k z_j|`` and the maximum over all sign
    patterns is ``Σ_k |H_jk|`` (a valid A2 vector); a few random patterns approach it from below.
    For a non-quadratic ``f`` the ratios average the Hessian over the segment ``[w, w + rz]``.

    Args:
        model: any ``torch.nn.Module`` (measured at its current parameters, never modified).
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean loss over the batch's samples.
        batch: tensor or tuple/list/dict of tensors, leading dimension = samples.
        radius: perturbation size ``r > 0`` in parameter units.
        n_perturbations: number of perturbations ``K`` (cost: ``K + 1`` gradients).
        seed: seed of the perturbations.
        min_relative_move: skip coordinates with ``|Δw_j| ≤ min_relative_move·|w_j|``.
        data_chunk_size: process the batch in pieces of this many samples.
        parameter_names: measure only these parameters (default: all trainable ones).

    Returns:
        :class:`SecantSmoothness`.

    Example:
        A quadratic with ``∇²f = [[0.5, 1], [1, 2.5]]``: the secants reach the row sums
        ``Σ_k |H_jk| = (1.5, 3.5)``, a valid A2 vector; the Hessian diagonal is ``(0.5, 2.5)``.

        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> x = torch.tensor([[1.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
        >>> loss = lambda m, b: 0.25 * m(b).square().mean()
        >>> secant_smoothness(model, loss, x, n_perturbations=4).L
        tensor([1.5000, 3.5000], dtype=torch.float64)
    """
    if not radius > 0:
        raise ValueError(f"Invalid radius: {radius!r}; use a positive perturbation size.")
    if not isinstance(n_perturbations, int) or n_perturbations < 1:
        raise ValueError(f"Invalid n_perturbations: {n_perturbations!r}; use a positive integer.")
    objective = FlatObjective(
        model, loss_fn, batch, parameter_names=parameter_names, data_chunk_size=data_chunk_size
    )
    w = objective.point
    grad = objective.gradient(w)
    generator = torch.Generator(device=w.device).manual_seed(seed)
    tracker = SecantMaximum(w.numel())
    for _ in range(n_perturbations):
        signs = torch.randint(0, 2, w.shape, generator=generator, device=w.device) * 2 - 1
        other = w + radius * signs.to(w.dtype)
        tracker.update(
            coordinate_secants(
                w, grad, other, objective.gradient(other), min_relative_move=min_relative_move
            )
        )
    return SecantSmoothness(
        tracker.estimate(),
        tracker.n_measured,
        tracker.n_skipped,
        n_perturbations,
        radius,
        objective.layout,
    )


@dataclasses.dataclass(frozen=True)
class CoordinateSample:
    """A seeded sample of flat coordinate indices of a :class:`ParameterLayout`.

    Attributes:
        index: ``(k,)`` int64 flat indices, sorted.
        block: ``(k,)`` int64 block number of each index.
        layout: the layout sampled from.
    """

    index: torch.Tensor
    block: torch.Tensor
    layout: ParameterLayout


def sample_coordinates(
    layout: ParameterLayout,
    *,
    per_block: int | None = None,
    total: int | None = None,
    seed: int = 0,
) -> CoordinateSample:
    """Sample coordinates without replacement, stratified by block or uniformly.

    ``per_block=k`` takes ``min(k, size)`` coordinates from every parameter tensor (so small
    tensors such as LayerNorm gains are represented next to the embedding); ``total=k`` takes ``k``
    coordinates uniformly from all ``d`` (each block represented in proportion to its size).

    Example:
        >>> layout = ParameterLayout(("a", "b"), ((100,), (3,)))
        >>> sample = sample_coordinates(layout, per_block=5, seed=0)
        >>> sample.index.numel(), sample.block.tolist().count(1)
        (8, 3)
    """
    if (per_block is None) == (total is None):
        raise ValueError("give exactly one of per_block= or total= (number of coordinates)")
    rng = np.random.default_rng(seed)
    if per_block is not None:
        if per_block < 1:
            raise ValueError(f"Invalid per_block: {per_block!r}; use a positive integer.")
        parts = [
            offset + rng.choice(size, size=min(per_block, size), replace=False)
            for offset, size in zip(layout.offsets[:-1], layout.sizes)
        ]
        index = np.sort(np.concatenate(parts))
    else:
        assert total is not None  # exactly one of per_block and total (checked above)
        if not 1 <= total <= layout.d:
            raise ValueError(f"Invalid total: {total!r}; use an integer in [1, d={layout.d}].")
        index = np.sort(rng.choice(layout.d, size=total, replace=False))
    index_t = torch.from_numpy(index.astype(np.int64))
    return CoordinateSample(index_t, layout.block_of(index_t), layout)


def aggregate_by_block(
    values: torch.Tensor | np.ndarray,
    layout: ParameterLayout,
    *,
    index: torch.Tensor | np.ndarray | None = None,
) -> pd.DataFrame:
    """Per-parameter-tensor summary of a per-coordinate quantity (``L_j``, ``σ_j``, …).

    Args:
        values: ``(d,)`` values in layout order, or ``(k,)`` values at the coordinates ``index``.
            ``nan`` entries (unmeasured) are ignored.
        layout: the parameter layout.
        index: flat indices of ``values`` when they are a sample.

    Returns:
        One row per block: ``block``, ``size`` (coordinates in the tensor), ``measured``,
        ``mean``, ``median``, ``max``, ``l1`` (``Σ_j v_j`` over the block, estimated as
        ``size × mean`` from a sample), ``l2`` (likewise ``√(size × mean(v²))``).
    """
    vals = np.asarray(torch.as_tensor(values).detach().cpu(), dtype=np.float64).reshape(-1)
    if index is None:
        if vals.size != layout.d:
            raise ValueError(
                f"values must have d={layout.d} entries (or pass index=); got {vals.size}"
            )
        blocks = layout.block_ids().numpy()
    else:
        idx = torch.as_tensor(index, dtype=torch.int64).reshape(-1)
        if idx.numel() != vals.size:
            raise ValueError(f"index has {idx.numel()} entries but values {vals.size}")
        blocks = layout.block_of(idx).numpy()
    rows = []
    for b, (name, size) in enumerate(zip(layout.names, layout.sizes)):
        v = vals[(blocks == b) & ~np.isnan(vals)]
        mean = float(v.mean()) if v.size else float("nan")
        rows.append(
            {
                "block": name,
                "size": size,
                "measured": int(v.size),
                "mean": mean,
                "median": float(np.median(v)) if v.size else float("nan"),
                "max": float(v.max()) if v.size else float("nan"),
                "l1": size * mean,
                "l2": float(np.sqrt(size * np.mean(v**2))) if v.size else float("nan"),
            }
        )
    return pd.DataFrame(rows)
