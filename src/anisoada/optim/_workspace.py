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


Workspace = MutableMapping[str, Tensor | BoxSlack]
"""Per-parameter scratch buffers that a fast kernel fills on first use and then reuses, and what
it has learnt about the parameter's distance to its box (a :class:`BoxSlack`)."""


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
