"""Coordinate boxes: the feasible sets of the paper's convex analysis, and their projection.

A box ``W = {w : low ≤ w ≤ high}`` is separable, so every projection onto it that is weighted by
a positive diagonal matrix — Euclidean (SGD), or ``H_t = diag(√v_t)``-weighted (AdaGrad's
``Proj_W^{H_t}``) — is the same coordinate-wise clip ``min(max(w, low), high)``. A box is given per
parameter group either explicitly, ``box=(low, high)`` with floats or tensors broadcastable to each
parameter, or as ``box_radius=r`` around the parameter's value at its first step (a
:class:`RadiusBox`): ``ℓ∞`` diameter ``D_∞ = 2r``.

**Skipping a clip that cannot act.** The clip costs a pass over memory (a radius box also reads its
center ``w_1``: 24 bytes a float32 coordinate against the unconstrained step's 20), yet it changes
nothing while every coordinate stays inside. A step whose every coordinate moves by at most ``δ``
cannot leave the box when each coordinate starts at least ``δ`` from the faces, so
:class:`ClipPlanner` keeps, per parameter, a lower bound ``s`` on that distance,

    s ≤ min_i min(w_i − low_i, high_i − w_i)   (for a radius box: s ≤ r − ‖w − w_1‖_∞),

measured in one read of ``w`` (and ``w_1``) and then lowered by each step's bound: the clip runs
only when ``s`` no longer covers the step. Diagonal AdaGrad (not delayed) and AdaGrad-Norm have
such a bound, ``|η_i g_i|/(√v_i + ε) ≤ η`` since ``v_i ≥ g_i²``: for ``T ≤ s/η`` steps the
iterates are bit for bit those of the clipped update, at the cost of the unconstrained one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from anisoada.optim._workspace import BoxSlack, Workspace, kept

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


def _radius_bounds(box: RadiusBox, workspace: Workspace | None) -> tuple[Tensor, Tensor]:
    """``center ∓ radius``, materialised once per (center, radius) in the workspace if given."""
    if workspace is None:
        return box.bounds()
    cached_radius = kept(workspace, "box_radius")
    low, high = kept(workspace, "box_low"), kept(workspace, "box_high")
    if (
        workspace.get("box_center") is not box.center
        or cached_radius is None
        or float(cached_radius) != box.radius
        or low is None
        or high is None
    ):
        low, high = box.bounds()
        workspace["box_low"], workspace["box_high"] = low, high
        workspace["box_center"] = box.center
        workspace["box_radius"] = torch.tensor(box.radius, dtype=torch.float64)
    return low, high


def project_(param: Tensor, box: Box | None, workspace: Workspace | None = None) -> None:
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


SLACK = "box_slack"
"""The workspace key of a parameter's :class:`BoxSlack`."""

# Steps on the clipping route before a box that was found binding is measured again: doubling
# from 2 after each measurement that finds it still binding, up to this cap, so that measuring a
# box that keeps binding costs a vanishing share of the steps.
MAX_MEASURE_WAIT = 256
# Steps a measurement must show room for before the clip is skipped: a measurement reads the
# parameter (and the center), so it pays only when it saves the clip several times.
MIN_SKIPPED_STEPS = 4
# Elements of the parameter and the center compared at a time when measuring a radius box: the
# differences go through one reused buffer per dtype and device, never a parameter-sized one,
# in few enough chunks that each opens a parallel region only a handful of times (on a busy CPU
# each region waits for its threads).
MEASURE_CHUNK_NUMEL = 1 << 22
_measure_buffers: dict[tuple[torch.dtype, torch.device], Tensor] = {}


def _slack_box(param: Tensor, box: Box) -> tuple[Tensor | None, float, float] | None:
    """``(center, radius, 0.0)`` or ``(None, low, high)``; ``None`` where no slack is kept (tensor
    bounds, a layout the measurement does not read, an empty parameter)."""
    if not param.is_contiguous() or param.numel() == 0:
        return None
    if isinstance(box, RadiusBox):
        center = box.center
        if (
            center.shape != param.shape
            or center.dtype != param.dtype
            or center.device != param.device
            or not center.is_contiguous()
        ):
            return None
        return center, box.radius, 0.0
    low, high = box
    if isinstance(low, Tensor) or isinstance(high, Tensor):
        return None
    return None, float(low), float(high)


def _sum_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels sum and divide in: float32 at least."""
    return torch.promote_types(dtype, torch.float32)


def _still_valid(record: BoxSlack, param: Tensor, box: Box) -> bool:
    """Whether ``record`` was kept for this box and ``param`` is as the last step left it."""
    center, a, b = record.box
    if isinstance(box, RadiusBox):
        same = center is box.center and a == box.radius
    else:
        low, high = box
        same = center is None and isinstance(low, float) and isinstance(high, float)
        same = same and (low, high) == (a, b)
    return same and record.stamp == _stamp(param, center)


def _stamp(param: Tensor, center: Tensor | None) -> tuple[int, int, int] | None:
    """The version counters of ``param`` and ``center`` and ``param``'s storage address: any
    change made in place through a tensor (or a view or ``detach()`` of it) moves its counter;
    ``None`` for an inference tensor, which keeps no counter."""
    try:
        return param._version, -1 if center is None else center._version, param.data_ptr()
    except RuntimeError:
        return None


def _largest_gap(param: Tensor, center: Tensor) -> tuple[float, float]:
    """``(‖param − center‖_∞, ‖center‖_∞)`` in one read of both, through a reused buffer."""
    flat_param, flat_center = param.view(-1), center.view(-1)
    key = (param.dtype, param.device)
    buffer = _measure_buffers.get(key)
    if buffer is None:
        buffer = _measure_buffers[key] = torch.empty(
            MEASURE_CHUNK_NUMEL, dtype=param.dtype, device=param.device
        )
    extremes = [*torch.aminmax(flat_center)]
    for start in range(0, flat_param.numel(), MEASURE_CHUNK_NUMEL):
        center_part = flat_center[start : start + MEASURE_CHUNK_NUMEL]
        gap = buffer[: center_part.numel()]
        torch.sub(flat_param[start : start + MEASURE_CHUNK_NUMEL], center_part, out=gap)
        extremes += torch.aminmax(gap)
    center_low, center_high, *gaps = torch.stack(extremes).double().abs().tolist()
    return max(gaps), max(center_low, center_high)


def _measure(
    param: Tensor, box: tuple[Tensor | None, float, float], stamp: tuple[int, int, int]
) -> BoxSlack:
    """The slack of ``param`` in ``box`` from one read of it (and of the center)."""
    center, a, b = box
    unit = torch.finfo(param.dtype).eps
    if center is not None:
        gap, center_size = _largest_gap(param, center)
        magnitude = center_size + a
        # The gap was computed in the parameter's dtype: rounded by at most unit·magnitude.
        slack = a - gap - unit * magnitude
    else:
        smallest, largest = (float(x) for x in torch.aminmax(param))
        magnitude = max((abs(x) for x in (a, b) if math.isfinite(x)), default=0.0)
        slack = min(smallest - a, b - largest)
    # A step's bound is exceeded by the rounding of a few operations in the parameter's dtype
    # and of a sum in float32 at least (see ClipPlanner).
    step_factor = 1 + 8 * unit + 64 * torch.finfo(_sum_dtype(param.dtype)).eps
    return BoxSlack(box, stamp, math.nextafter(slack, -math.inf), magnitude, unit, step_factor)


def plans_clips(boxes: Sequence[Box | None]) -> bool:
    """Whether a step should plan its clips: some box is set, and no outer ``torch.compile`` is
    tracing the step (its compiler fuses the clip into the update; the planner's bookkeeping on
    the host would only break its graph)."""
    return any(box is not None for box in boxes) and not torch.compiler.is_compiling()


class ClipPlanner:
    """Decides, per parameter and step, whether the clip onto its box can be skipped.

    ``max_step`` bounds ``|Δw_i|`` before rounding for every coordinate of this step (``None``:
    no bound is known, and every box is clipped). Call :meth:`box` for each parameter *before*
    its update, clip onto what it returns, and :meth:`commit` once every parameter is updated.

    With ``u`` the dtype's spacing (``finfo.eps``) and ``M`` the bounds' magnitude, a step
    bounded by ``δ̂ = max_step·(1 + 8u + 64u')`` (the computed step may exceed the exact bound by
    the rounding of a few operations, and of a sum in float32 at least: ``u'``) moves a stored
    coordinate by at most ``δ̂ + min(3δ̂, 2u(M + δ̂))`` (rounding to nearest lands no farther from
    the exact value than the old iterate, and at most ``u·|w|`` from it; a float16/bfloat16
    result is rounded twice); and since rounding is monotone, an exact result at least
    ``4u(M + δ̂)`` inside the exact faces is stored inside the rounded bounds the clip would use.
    So with slack ``s`` the clip is skipped when ``s − move ≥ 4u(M + δ̂)``, and ``s`` becomes
    ``s − move``.

    When the bound runs out, the slack is measured again (a read of the parameter, and of the
    center of a radius box): a box that is far from binding goes on being skipped; one that binds
    is clipped, and measured again after 2, 4, … up to :data:`MAX_MEASURE_WAIT` steps. A change
    to the parameter made outside the optimizer moves its version counter, which invalidates the
    slack (changes through ``.data`` bypass the counter, as they bypass autograd: make them under
    ``torch.no_grad()`` instead).
    """

    def __init__(self, max_step: float | None) -> None:
        self.max_step = max_step
        self._planned: list[tuple[Tensor, BoxSlack]] = []

    def box(self, param: Tensor, box: Box | None, workspace: Workspace | None) -> Box | None:
        """The box to clip ``param`` onto after this step: ``box``, or ``None`` (skip the clip)."""
        if box is None or self.max_step is None or workspace is None:
            return box
        record = workspace.get(SLACK)
        measured = not (isinstance(record, BoxSlack) and _still_valid(record, param, box))
        if measured or not isinstance(record, BoxSlack):
            key = _slack_box(param, box)
            stamp = None if key is None else _stamp(param, key[0])
            if key is None or stamp is None:
                workspace.pop(SLACK, None)
                return box
            record = workspace[SLACK] = _measure(param, key, stamp)
        self._planned.append((param, record))
        if not measured and record.wait > 0:  # binding: clipped until the next measurement
            record.wait -= 1
            return box
        unit = record.unit
        reach = self.max_step * record.step_factor
        scale = record.magnitude + reach
        move = reach + min(3 * reach, 2 * unit * scale)
        margin = 4 * unit * scale
        if not measured and record.slack - move < margin:
            record.slack = _measure(param, record.box, record.stamp).slack
            measured = True
        remaining = math.nextafter(record.slack - move, -math.inf)
        # A measurement must buy MIN_SKIPPED_STEPS steps: skipping one step per measurement
        # would read more than the clip it saves.
        if remaining >= margin + ((MIN_SKIPPED_STEPS - 1) * move if measured else 0.0):
            record.slack, record.backoff = remaining, 1
            return None
        record.backoff = min(2 * record.backoff, MAX_MEASURE_WAIT)
        record.wait = record.backoff
        record.slack = -math.inf
        return box

    def commit(self) -> None:
        """Tie each planned slack to its parameter as the step left it."""
        for param, record in self._planned:
            stamp = _stamp(param, record.box[0])
            record.stamp = stamp if stamp is not None else (-1, -1, -1)
        self._planned.clear()
