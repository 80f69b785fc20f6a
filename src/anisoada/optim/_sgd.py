"""SGD with one uniform step size: the paper's baseline, with optional momentum and a box.

The update, for the minibatch-mean gradient ``g_t`` at ``w_t`` (torch's conventions)::

    g_t ← −g_t                      if maximize
    g_t ← g_t + λ w_t               if weight_decay λ > 0
    b_t = g_t (t = 1),  μ b_{t−1} + (1 − τ) g_t (t > 1)      if momentum μ > 0 (dampening τ)
    d_t = g_t + μ b_t (nesterov),  b_t (heavy ball),  g_t (no momentum)
    w_{t+1} = Proj_W( w_t − η d_t )

``Proj_W`` is the Euclidean projection onto the box ``W``, which is the coordinate clip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Unpack

import torch
from torch import Tensor

from anisoada.optim._box import Box, project_
from anisoada.optim._checks import (
    check_bool,
    check_kernel,
    check_lr,
    check_nonnegative,
    check_sparse_lr,
    check_unit_interval,
)
from anisoada.optim._common import (
    STEP_DEFAULTS,
    GroupBatch,
    GroupKwargs,
    GroupOptimizer,
    Params,
    StepContext,
    StepKwargs,
    has_fused_kernel,
    merged_kwargs,
    with_explicit_signature,
)
from anisoada.optim._workspace import Workspace, effective_gradient, lane_rates, scratch

__all__ = ["SGD", "sgd"]

# torch's fused SGD kernel (CPU, torch 2.13) updates the momentum buffer of a float16 or
# bfloat16 parameter but leaves the parameter itself unchanged: those dtypes take the in-place
# passes.
_FUSED_DTYPES = (torch.float32, torch.float64)
# torch's fused CPU kernels open a parallel region for any size: below this many elements the
# in-place passes are cheaper (and do not stall when the other cores are busy).
FUSED_MIN_NUMEL = 1 << 16


class SGDOptions(NamedTuple):
    """The hyperparameters of one SGD step, validated, as every SGD kernel takes them."""

    lr: float | Tensor
    momentum: float
    dampening: float
    nesterov: bool
    weight_decay: float
    maximize: bool

    @classmethod
    def checked(cls, lr: float | Tensor, options: Mapping[str, Any]) -> SGDOptions:
        """``momentum``, ``dampening``, ``nesterov``, ``weight_decay`` and ``maximize`` of
        ``options``, checked; ``lr`` as given."""
        momentum, dampening, nesterov = _check_momentum(
            options["momentum"], options["dampening"], options["nesterov"]
        )
        weight_decay = check_nonnegative("weight_decay", options["weight_decay"])
        return cls(lr, momentum, dampening, nesterov, weight_decay, bool(options["maximize"]))


@with_explicit_signature(STEP_DEFAULTS)
def sgd(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: list[Tensor | None] | None = None,
    *,
    lr: float | Tensor,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    **options: Unpack[StepKwargs],
) -> None:
    r"""One SGD step on every tensor of ``params``, in place.

    .. math::

        b_t = \mu\, b_{t-1} + (1-\tau)\, g_t \;(b_1 = g_1), \qquad
        w_{t+1} = \mathrm{Proj}_W\big(w_t - \eta\, d_t\big),\quad
        d_t = \begin{cases} g_t & \mu = 0\\ b_t & \text{heavy ball}\\
        g_t + \mu b_t & \text{Nesterov}\end{cases}

    where ``g_t`` already carries the ``maximize`` sign and the L2 term ``λ w_t``.

    Args:
        params: Parameters, updated in place.
        grads: Their gradients (sparse gradients only without momentum and weight decay).
        momentum_buffers: With ``momentum > 0``: one entry per parameter, ``None`` before the
            first step; new buffers are written back into this list.
        lr: Step size ``η``: a float ≥ 0 or a tensor broadcastable to every parameter (``K``
            stacked runs as the columns of a ``(d, K)`` parameter: ``lr`` of shape ``(K,)``).
        momentum: ``μ ∈ [0, 1)``.
        dampening: ``τ ∈ [0, 1)``.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
        weight_decay: L2 coefficient ``λ`` added to the gradient.
        maximize: Ascend instead of descend.
        boxes: Per parameter, ``(low, high)`` bounds, a :class:`RadiusBox` or ``None``.
        state_steps: Optional step counters (0-dim tensors), each incremented by one.
        workspaces: Optional per-parameter scratch dicts reused across calls by the fast kernel.
        kernel: ``"fast"`` (torch's fused kernel where it applies, in-place passes otherwise) or
            ``"reference"``.

    Example:
        >>> w = torch.ones(2)
        >>> sgd([w], [torch.tensor([1.0, -1.0])], lr=0.1)
        >>> w
        tensor([0.9000, 1.1000])

    References:
        Robbins & Monro (1951); Polyak (1964); Sutskever et al. (2013) for this momentum form.
    """
    n = len(params)
    if len(grads) != n:
        raise ValueError(f"Invalid grads length: {len(grads)} (expected one per parameter, {n})")
    given = merged_kwargs("sgd", options, STEP_DEFAULTS)
    own = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}
    hyper = SGDOptions.checked(check_lr(lr), {**given, **own})
    _sgd_step(params, grads, momentum_buffers, hyper, StepContext.of(given))


def _sgd_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: list[Tensor | None] | None,
    options: SGDOptions,
    context: StepContext,
) -> None:
    """:func:`sgd` with its hyperparameters checked (the class checks a tensor ``lr`` once)."""
    n = len(params)
    if options.momentum != 0 and (momentum_buffers is None or len(momentum_buffers) != n):
        raise ValueError(
            "Invalid momentum_buffers value: with momentum > 0 pass a list with one entry "
            f"(None before the first step) per parameter ({n})"
        )
    boxes = context.start(n)
    if check_kernel(context.kernel) == "reference":
        for i, (p, g) in enumerate(zip(params, grads)):
            buffer = _sgd_reference_tensor(
                p, g, None if momentum_buffers is None else momentum_buffers[i], options
            )
            if momentum_buffers is not None:
                momentum_buffers[i] = buffer
            project_(p, boxes[i])
        return
    _sgd_fast(params, grads, momentum_buffers, boxes, context.workspaces, options)


def _sgd_reference_tensor(
    param: Tensor, grad: Tensor, buffer: Tensor | None, options: SGDOptions
) -> Tensor | None:
    """The update as the formula for one tensor; returns the (new) momentum buffer."""
    lr, momentum, dampening, nesterov, weight_decay, maximize = options
    if isinstance(lr, Tensor):
        lr = lr.to(dtype=param.dtype, device=param.device)
    if grad.is_sparse:
        _check_sparse_sgd(lr, momentum, weight_decay)
        param.add_(grad, alpha=float(lr) * (1.0 if maximize else -1.0))
        return buffer
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    if momentum != 0:
        if buffer is None:
            buffer = g.clone()
        else:
            buffer.copy_(momentum * buffer + (1 - dampening) * g)
        g = g + momentum * buffer if nesterov else buffer
    param.sub_(lr * g)
    return buffer


def _check_sparse_sgd(lr: float | Tensor, momentum: float, weight_decay: float) -> None:
    if momentum != 0 or weight_decay != 0:
        raise ValueError(
            f"Invalid momentum/weight_decay values: {momentum}/{weight_decay} with a sparse "
            "gradient (both are dense); use plain SGD, AdaGrad, or dense gradients"
        )
    check_sparse_lr(lr)


def _fusable(param: Tensor, grad: Tensor, buffer: Tensor | None) -> bool:
    return (
        not grad.is_sparse
        and param.dtype in _FUSED_DTYPES
        and has_fused_kernel("_fused_sgd_", param.device.type)
        # The size threshold is a CPU measurement; on accelerators one launch beats several.
        and (param.device.type != "cpu" or param.numel() >= FUSED_MIN_NUMEL)
        and grad.dtype == param.dtype
        and grad.shape == param.shape
        and param.is_contiguous()
        and grad.is_contiguous()
        and (buffer is None or (buffer.is_contiguous() and buffer.dtype == param.dtype))
    )


def _sgd_fast(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    momentum_buffers: list[Tensor | None] | None,
    boxes: Sequence[Box | None],
    workspaces: Sequence[Workspace] | None,
    options: SGDOptions,
) -> None:
    """torch's fused SGD kernel where it applies (float lr, dense, contiguous), else in place."""
    lr, momentum, dampening, nesterov, weight_decay, maximize = options
    # Fused batches keyed by (device, dtype, first step?): the kernel takes one is_first_step flag.
    batches: dict[tuple[torch.device, torch.dtype, bool], list[int]] = {}
    for i, (p, g) in enumerate(zip(params, grads)):
        buffer = None if momentum_buffers is None else momentum_buffers[i]
        if not isinstance(lr, Tensor) and _fusable(p, g, buffer):
            batches.setdefault((p.device, p.dtype, buffer is None), []).append(i)
            continue
        if g.is_sparse:
            _check_sparse_sgd(lr, momentum, weight_decay)
            p.add_(g, alpha=float(lr) * (1.0 if maximize else -1.0))
        else:
            workspace = None if workspaces is None else workspaces[i]
            buffer = _sgd_inplace_tensor(p, g, buffer, workspace, options)
            if momentum_buffers is not None:
                momentum_buffers[i] = buffer
        project_(p, boxes[i], None if workspaces is None else workspaces[i])
    for (_, _, first_step), indices in batches.items():
        buffers: list[Tensor] = []
        if momentum != 0:
            assert momentum_buffers is not None
            for i in indices:
                buffer = momentum_buffers[i]
                if buffer is None:
                    buffer = torch.empty_like(params[i], memory_format=torch.preserve_format)
                    momentum_buffers[i] = buffer
                buffers.append(buffer)
        torch._fused_sgd_(
            [params[i] for i in indices],
            [grads[i] for i in indices],
            buffers,
            weight_decay=weight_decay,
            momentum=momentum,
            lr=float(lr),
            dampening=dampening,
            nesterov=nesterov,
            maximize=maximize,
            is_first_step=first_step and momentum != 0,
        )
        for i in indices:
            project_(params[i], boxes[i], None if workspaces is None else workspaces[i])


def _sgd_inplace_tensor(
    param: Tensor,
    grad: Tensor,
    buffer: Tensor | None,
    workspace: Workspace | None,
    options: SGDOptions,
) -> Tensor | None:
    """In-place passes into workspace buffers; returns the (new) momentum buffer."""
    lr, momentum, dampening, nesterov, weight_decay, maximize = options
    if isinstance(lr, Tensor):
        lr = lane_rates(lr, param, workspace)
    g = effective_gradient(
        param, grad, weight_decay=weight_decay, maximize=maximize, workspace=workspace
    )
    direction = g
    if momentum != 0:
        if buffer is None:
            buffer = g.clone(memory_format=torch.preserve_format)
        else:
            buffer.mul_(momentum).add_(g, alpha=1 - dampening)
        if nesterov:
            direction = torch.add(g, buffer, alpha=momentum, out=scratch(workspace, "step", param))
        else:
            direction = buffer
    if isinstance(lr, Tensor):
        param.addcmul_(direction, lr, value=-1.0)
    else:
        param.add_(direction, alpha=-lr)
    return buffer


def _check_momentum(momentum: float, dampening: float, nesterov: bool) -> tuple[float, float, bool]:
    """``(momentum, dampening, nesterov)`` checked: ``μ, τ ∈ [0, 1)``; Nesterov needs ``μ > 0``
    and ``τ = 0``."""
    checked = (
        check_unit_interval("momentum", momentum),
        check_unit_interval("dampening", dampening),
        check_bool("nesterov", nesterov),
    )
    if nesterov and (momentum == 0 or dampening != 0):
        raise ValueError(
            f"Invalid nesterov value: True with momentum={momentum}, dampening={dampening} "
            "(Nesterov momentum needs momentum > 0 and dampening = 0)"
        )
    return checked


class SGD(GroupOptimizer):
    r"""SGD with one uniform step size, optional (Nesterov) momentum and an optional box.

    .. math::

        w_{t+1} = \mathrm{Proj}_W\big(w_t - \eta\, d_t\big),

    with ``d_t`` the gradient, the heavy-ball buffer ``b_t = μ b_{t−1} + (1−τ) g_t``
    (``b_1 = g_1``), or ``g_t + μ b_t`` (Nesterov), exactly as ``torch.optim.SGD``. The Euclidean
    projection onto a box is the coordinate clip. See :func:`sgd` for the functional form.

    **State** (per parameter): ``state["step"]`` (0-dim float32 tensor), and with momentum
    ``state["momentum_buffer"]`` (``b_t``, like the parameter); with ``box_radius``
    ``state["box_center"]`` (``w_1``, the center of the box ``w_1 ± r``).

    Args:
        params: Parameters or parameter groups; every option below may be set per group.
        lr: Step size ``η`` (float ≥ 0 or a tensor broadcastable to every parameter).
        momentum: ``μ ∈ [0, 1)``; 0 is plain SGD.
        dampening: ``τ ∈ [0, 1)``.
        nesterov: Nesterov momentum.
        box: ``(low, high)`` bounds (floats or broadcastable tensors), clipped to after each
            step (the Euclidean projection).
        box_radius: ``r > 0``: the box ``w_1 ± r`` around each parameter's first iterate.
        weight_decay: L2 coefficient added to the gradient, before the momentum buffer.
        maximize: Ascend instead of descend.
        kernel: ``"fast"`` (default: torch's fused SGD kernel where it applies, in-place passes
            otherwise) or ``"reference"``.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> (w**2).sum().backward()
        >>> opt.step()
        >>> w.detach()
        tensor([0.8000])

    Raises:
        ValueError: on any invalid hyperparameter, naming it and its value.
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-2,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        **options: Unpack[GroupKwargs],
    ) -> None:
        own = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}
        super().__init__(params, lr, options, **own)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        _check_momentum(group["momentum"], group["dampening"], group["nesterov"])

    def _step_group(self, group: dict[str, Any], batch: GroupBatch, lr: float | Tensor) -> None:
        buffers = [state.get("momentum_buffer") for state in batch.states]
        options = SGDOptions.checked(lr, group)
        _sgd_step(batch.params, batch.grads, buffers, options, batch.context(group["kernel"]))
        if group["momentum"] != 0:
            for state, buffer in zip(batch.states, buffers):
                state["momentum_buffer"] = buffer
