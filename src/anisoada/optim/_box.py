"""Coordinate boxes: the feasible sets of the paper's convex analysis, and their projection.

A box ``W = {w : low ≤ w ≤ high}`` is separable, so every projection onto it that is weighted by
a positive diagonal matrix — Euclidean (SGD), or ``H_t = diag(√v_t)``-weighted (AdaGrad's
``Proj_W^{H_t}``) — is the same coordinate-wise clip ``min(max(w, low), high)``. A box is given per
parameter group either explicitly, ``box=(low, high)`` with floats or tensors broadcastable to each
parameter, or as ``box_radius=r`` around the parameter's value at its first step (a
:class:`RadiusBox`): ``ℓ∞`` diameter ``D_∞ = 2r``.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

Bounds = tuple[float | Tensor, float | Tensor]
"""``(low, high)``: floats, or tensors broadcastable to the parameter they bound."""


class RadiusBox(NamedTuple):
    """The box ``{w : center − radius ≤ w ≤ center + radius}`` (``D_∞ = 2·radius``).

    Kept as its center rather than as two bound tensors, so that a single-pass kernel reads one
    extra tensor instead of two; the bounds are ``center ∓ radius`` rounded once, identically in
    every kernel.
    """

    center: Tensor
    radius: float

    def bounds(self) -> tuple[Tensor, Tensor]:
        """``(center − radius, center + radius)`` as new tensors."""
        return self.center - self.radius, self.center + self.radius


Box = Bounds | RadiusBox
"""A coordinate box: explicit ``(low, high)`` bounds or a :class:`RadiusBox`."""


def _check_bound(name: str, value: Any) -> float | Tensor:
    if isinstance(value, Tensor):
        if not value.is_floating_point():
            raise ValueError(
                f"Invalid {name} value: tensor of dtype {value.dtype} (expected float)"
            )
        if bool(torch.isnan(value).any()):
            raise ValueError(f"Invalid {name} value: {value} (contains NaN)")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"Invalid {name} value: {value!r} (expected a float or a tensor)")
    return float(value)


def check_box_options(box: Any, box_radius: Any) -> tuple[Bounds | None, float | None]:
    """Validate a group's ``box`` and ``box_radius`` options (at most one of them may be set)."""
    if box is not None and box_radius is not None:
        raise ValueError(
            f"Invalid box value: {box!r} together with box_radius={box_radius!r} "
            "(give either explicit bounds or a radius around the initial point, not both)"
        )
    if box_radius is not None:
        if (
            isinstance(box_radius, bool)
            or not isinstance(box_radius, int | float)
            or math.isnan(box_radius)
            or box_radius <= 0
        ):
            raise ValueError(f"Invalid box_radius value: {box_radius!r} (expected a number > 0)")
        return None, float(box_radius)
    if box is None:
        return None, None
    if isinstance(box, RadiusBox):
        raise ValueError(
            f"Invalid box value: {box!r} (a RadiusBox is for the functional forms; give the "
            "optimizer box_radius=r, and it centres the box at each parameter's first iterate)"
        )
    if not isinstance(box, Sequence) or isinstance(box, str) or len(box) != 2:
        raise ValueError(f"Invalid box value: {box!r} (expected a pair (low, high))")
    low = _check_bound("box low", box[0])
    high = _check_bound("box high", box[1])
    if isinstance(low, Tensor) or isinstance(high, Tensor):
        if bool(torch.as_tensor(low > high).any()):
            raise ValueError(f"Invalid box value: {box!r} (some low bound exceeds its high bound)")
    elif low > high:
        raise ValueError(f"Invalid box value: {box!r} (low {low} > high {high})")
    return (low, high), None


def param_bounds(group: dict[str, Any], param: Tensor, state: dict[str, Any]) -> Box | None:
    """The box that applies to ``param`` in ``group``, recording the center on first use.

    For ``box_radius=r`` the center ``w_1`` is saved once, at the parameter's first step, in
    ``state["box_center"]`` (so it travels with ``state_dict``). Tensor bounds are moved to the
    parameter's device and dtype.
    """
    radius = group.get("box_radius")
    if radius is not None:
        if "box_center" not in state:
            state["box_center"] = param.detach().clone(memory_format=torch.preserve_format)
        return RadiusBox(state["box_center"], radius)
    box = group.get("box")
    if box is None:
        return None
    low, high = box
    if isinstance(low, Tensor) or isinstance(high, Tensor):
        low = torch.as_tensor(low, dtype=param.dtype, device=param.device)
        high = torch.as_tensor(high, dtype=param.dtype, device=param.device)
    return low, high


def _radius_bounds(
    box: RadiusBox, workspace: MutableMapping[str, Tensor] | None
) -> tuple[Tensor, Tensor]:
    """``center ∓ radius``, materialised once per (center, radius) in the workspace if given."""
    if workspace is None:
        return box.bounds()
    cached_center = workspace.get("box_center")
    cached_radius = workspace.get("box_radius")
    if (
        cached_center is not box.center
        or cached_radius is None
        or float(cached_radius) != box.radius
    ):
        low, high = box.bounds()
        workspace["box_low"], workspace["box_high"] = low, high
        workspace["box_center"] = box.center
        workspace["box_radius"] = torch.tensor(box.radius, dtype=torch.float64)
    return workspace["box_low"], workspace["box_high"]


def project_(
    param: Tensor, box: Box | None, workspace: MutableMapping[str, Tensor] | None = None
) -> None:
    """Clip ``param`` in place onto the box (no-op when ``box`` is None).

    The clip is the Euclidean projection and, because the box is separable, also the projection
    in any positive diagonal metric such as AdaGrad's ``H_t``. With a ``workspace`` the bounds of
    a :class:`RadiusBox` are computed once and reused.
    """
    if box is None:
        return
    low, high = _radius_bounds(box, workspace) if isinstance(box, RadiusBox) else box
    if isinstance(low, Tensor) or isinstance(high, Tensor):
        param.clamp_(
            min=torch.as_tensor(low, dtype=param.dtype, device=param.device),
            max=torch.as_tensor(high, dtype=param.dtype, device=param.device),
        )
    else:
        param.clamp_(min=float(low), max=float(high))
