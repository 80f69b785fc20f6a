"""Scratch buffers for the fast kernels: a step allocates nothing proportional to the model."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(slots=True)
class BoxSlack:
    """What a fast kernel knows of one parameter's distance to the faces of its box.

    Kept by :class:`~anisoada.optim._box.ClipPlanner`, which skips the clip while it cannot act.

    ``slack`` is a lower bound on ``min_i min(w_i − low_i, high_i − w_i)`` in exact arithmetic for
    the parameter as it was at ``stamp`` (the version counters of the parameter and of a radius
    box's center, and the parameter's storage); ``box`` is what it was measured against (the
    center tensor or ``None``, and two floats); ``magnitude`` bounds ``|low|`` and ``|high|``.
    """

    box: tuple[Tensor | None, float, float]
    stamp: tuple[int, int, int]
    slack: float
    magnitude: float
    unit: float  # the parameter dtype's spacing, finfo.eps
    step_factor: float  # how far rounding may take a computed step beyond its exact bound
    wait: int = 0  # steps on the clipping route before the next measurement
    backoff: int = 1


@dataclass(slots=True)
class LaneRates:
    """Per-lane learning rates at a parameter's shape, and the ``lr`` tensor they copy
    (:func:`lane_rates`)."""

    source: Tensor
    version: int  # the source's version counter when seen
    full: Tensor | None = None  # None: seen once, not copied yet
    pays: bool | None = None  # whether a full copy outruns the broadcast (None: not judged)


Workspace = MutableMapping[str, Tensor | BoxSlack | LaneRates]
"""Per-parameter scratch buffers that a fast kernel fills on first use and then reuses, what it
has learnt about the parameter's distance to its box (a :class:`BoxSlack`), and its per-lane
learning rates at full shape (a :class:`LaneRates`)."""


def kept(workspace: Workspace | None, name: str) -> Tensor | None:
    """The tensor kept in ``workspace`` under ``name``, or ``None``."""
    entry = None if workspace is None else workspace.get(name)
    return entry if isinstance(entry, Tensor) else None


def scratch(workspace: Workspace | None, name: str, like: Tensor) -> Tensor:
    """A buffer shaped, typed and strided like ``like``, kept in ``workspace`` under ``name``.

    Without a workspace the buffer is a fresh allocation (the functional forms allow that; the
    optimizer classes always pass one).
    """
    if workspace is None:
        return torch.empty_like(like, memory_format=torch.preserve_format)
    buffer = kept(workspace, name)
    if (
        buffer is None
        or buffer.shape != like.shape
        or buffer.dtype != like.dtype
        or buffer.device != like.device
        or buffer.stride() != like.stride()
    ):
        buffer = torch.empty_like(like, memory_format=torch.preserve_format)
        workspace[name] = buffer
    return buffer


def effective_gradient(
    param: Tensor,
    grad: Tensor,
    *,
    weight_decay: float,
    maximize: bool,
    workspace: Workspace | None,
) -> Tensor:
    """``±grad + weight_decay·param`` in a workspace buffer, or ``grad`` itself when unchanged.

    The gradient the user holds is never modified.
    """
    if not maximize and weight_decay == 0:
        return grad
    buffer = scratch(workspace, "grad", param)
    if weight_decay == 0:
        return torch.neg(grad, out=buffer)
    if maximize:
        # −(g − λw) = −g + λw, with no second temporary.
        return torch.add(grad, param, alpha=-weight_decay, out=buffer).neg_()
    return torch.add(grad, param, alpha=weight_decay, out=buffer)


def lane_rates(lr: Tensor, param: Tensor, workspace: Workspace | None) -> Tensor:
    """``lr`` (a tensor broadcastable to ``param``, e.g. one rate per column of a ``(d, K)``
    parameter) as the rate operand of ``param.addcmul_(u, rates)``: in ``param``'s dtype and
    device, and copied to ``param``'s shape where that is faster (:func:`_full_copy_pays`), once
    the same ``lr`` has been seen unchanged at a second step.

    Why: torch runs a ``(d, K)`` by ``(K,)`` product as a loop over ``d`` rows of ``K`` elements
    (the operand's row stride is 0, so the loop cannot be flattened); for small ``K`` that inner
    loop is scalar, 2–5× the time of the vectorised loop it runs when every operand has the full
    shape — 15 against 3 µs at ``6000 × 2``, 60 against 28 µs at ``20000 × 6``. Each entry is
    still ``p + v·u·η`` in the same order, so the numbers are the same to the last bit (tested
    over shapes and magnitudes). The full copy is kept in ``workspace`` and made again only
    when ``lr`` is another tensor or was changed in place (its version counter); a fresh tensor
    every step (a schedule multiplying the rates) never pays for a copy it would use once.
    """
    entry = None if workspace is None else workspace.get("lane_rates")
    if isinstance(entry, LaneRates) and entry.source is lr and entry.version == lr._version:
        full = entry.full
        if (
            full is not None
            and full.shape == param.shape
            and full.dtype == param.dtype
            and full.device == param.device
        ):
            return full
        rates = lr.to(dtype=param.dtype, device=param.device)
        if entry.pays is None:  # judged once: the shapes do not change from step to step
            entry.pays = _full_copy_pays(rates, param)
        if not entry.pays:
            return rates
        entry.full = torch.empty_like(param, memory_format=torch.preserve_format)
        return entry.full.copy_(rates.expand_as(param))
    if workspace is not None:
        workspace["lane_rates"] = LaneRates(lr, lr._version)
    return lr.to(dtype=param.dtype, device=param.device)


# Measured on the 2-core reference machine, float64, one thread (the full copy's time over the
# broadcast's): at most 2^15 elements it never loses (0.2 at K = 2 … 0.96 at K = 128); with
# rows of fewer than 8 lanes the broadcast loop is scalar and the copy wins up to millions of
# elements (0.28 at 1.2M, K = 2; 0.98 at 6M, K = 6); with 8 or more lanes the broadcast loop
# is vectorised and the copy's extra read loses from about 10^5 elements (1.05 at K = 8, 1.3 at
# K = 64). The bound also caps the copy's memory at 32 MB a parameter.
_ALWAYS_FULL_NUMEL = 1 << 15
_NARROW_ROWS = 8
_NARROW_FULL_NUMEL = 1 << 22


def _full_copy_pays(rates: Tensor, param: Tensor) -> bool:
    """Whether ``rates`` broadcast over ``param``'s rows (a trailing dimension of its own, the
    rest expanded) in a way the full copy outruns (see the measurements above)."""
    if (
        rates.dim() == 0
        or param.dim() == 0
        or rates.numel() >= param.numel()
        or rates.shape[-1] == 1
        or rates.shape[-1] != param.shape[-1]
        or torch.broadcast_shapes(rates.shape, param.shape) != param.shape
    ):
        return False  # nothing to expand, a stride-0 inner operand (vectorised), or an error
    numel = param.numel()
    return numel <= _ALWAYS_FULL_NUMEL or (
        param.shape[-1] < _NARROW_ROWS and numel <= _NARROW_FULL_NUMEL
    )
