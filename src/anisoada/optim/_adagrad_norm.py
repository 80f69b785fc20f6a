"""AdaGrad-Norm: AdaGrad with one scalar accumulator per parameter group (a uniform step size).

The update, for the minibatch-mean gradient ``g_t`` of the whole group at ``w_t``::

    g_t ← −g_t + λ w_t                          (maximize / weight_decay, as in AdaGrad)
    b_t² = b_{t−1}² + ‖g_t‖²                     b_0² = initial_accumulator_value
    w_{t+1} = Proj_W( w_t − η g_t / (b + ε) )    b = b_t (standard) or b_{t−1} (delayed)

with ``√(b² + ε)`` in place of ``b + ε`` when ``eps_placement="inside"``.

**The whole group.** ``‖g_t‖²`` sums the squares of every coordinate of every parameter of the
group that has a gradient at this step — the group is treated as one flat vector, and a parameter
without a gradient contributes nothing and does not move. With ``per_column=True`` a parameter of
shape ``(..., K)`` holds ``K`` independent runs in its last dimension and the group keeps ``K``
accumulators, each summing its own column over all rows of all parameters.

**Precision.** ``‖g_t‖²`` is summed in float32 at least — in float32 for float16, bfloat16 and
float32 gradients, in float64 for float64 ones — whatever the parameters' dtype: a float16 norm
overflows from ``‖g‖ > 65504`` on (``b² = inf``, and the group never moves again) and a bfloat16
one is rounded to 8 bits. The accumulator ``b²`` is float32 or float64 (float64 in the class;
the functional form refuses a lower precision), and so is the step size ``η/(b + ε)``, which
touches a low-precision parameter only inside the update's own float32 arithmetic. Both kernels
follow this convention, so they differ only by the order of their float32 (or float64) sums.

**Boxes.** No coordinate moves by more than ``η‖g_t‖/(b + ε)`` in a step (``|g_i| ≤ ‖g_t‖``),
a bound known before the update and shrinking as ``b`` grows: the fast kernel skips the clip
while the box's faces are provably farther than that (see
:class:`~anisoada.optim._box.ClipPlanner`), with iterates bit for bit those of the clipped update.

**Sharded training.** The norm must be that of the *full* group. When a group's parameters are
split across processes (FSDP, ZeRO, tensor parallelism), each process sees only its shard, so the
local ``‖g_t‖²`` must be summed over processes (an all-reduce of one scalar per group) before the
accumulator is updated; otherwise every shard would follow a different step size. The functional
form makes this possible: compute the local squared norms, all-reduce them, and pass the result
as ``squared_norm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

import torch
from torch import Tensor

from anisoada.optim._box import Box, ClipPlanner, plans_clips, project_
from anisoada.optim._checks import check_bool, check_kernel, check_no_zero_division
from anisoada.optim._common import (
    AccumulatorOptimizer,
    GroupBatch,
    Params,
    StepContext,
)
from anisoada.optim._compiled import AdaGradOptions
from anisoada.optim._workspace import effective_gradient

__all__ = ["AdaGradNorm", "adagrad_norm", "squared_gradient_norm"]


def squared_gradient_norm(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    *,
    weight_decay: float = 0.0,
    maximize: bool = False,
    per_column: bool = False,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    r"""``‖g‖²`` of the group's effective gradients ``g = ±grad + λ w``, as one flat vector.

    .. math:: \|g\|^2 = \sum_i \sum_j (\pm\nabla_{ij} + \lambda w_{ij})^2

    Returns a 0-dim tensor, or with ``per_column`` a ``(K,)`` tensor (sum over all but the last
    dimension), in ``dtype`` (float32 or float64). The squares are summed in float32 at least
    (see the module docstring). The sign of ``maximize`` only matters together with weight decay.
    """
    _check_accumulator_dtype("dtype", dtype)
    effective = []
    for p, grad in zip(params, grads):
        _check_dense(grad)
        effective.append(
            effective_gradient(
                p, grad, weight_decay=weight_decay, maximize=maximize, workspace=None
            )
        )
    return _sum_of_squares(effective, per_column=per_column, dtype=dtype)


def _check_dense(grad: Tensor) -> None:
    if grad.is_sparse:
        raise ValueError(
            "Invalid gradient: AdaGradNorm needs dense gradients (its norm spans the whole "
            "group); use AdaGrad for sparse gradients, or dense gradients"
        )


def _check_accumulator_dtype(name: str, dtype: torch.dtype) -> None:
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"Invalid {name} value: {dtype} (the accumulator b² needs float32 or float64: a "
            "float16 b² overflows once ‖g‖ > 255 and a bfloat16 one keeps 8 bits)"
        )


def reduction_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype in which squares of a ``dtype`` gradient are summed: float32 at least."""
    return torch.promote_types(dtype, torch.float32)


# Elements converted to float32 at a time when summing a low-precision gradient's squares: the
# converted chunk stays in cache, and the step allocates this much, never a float32 copy.
UPCAST_CHUNK_NUMEL = 1 << 18


def _upcast_sum_of_squares(g: Tensor, *, per_column: bool) -> Tensor:
    """Σ g² in float32 for a float16/bfloat16 ``g``, through one reused float32 chunk buffer.

    ``torch.linalg.vector_norm`` accumulates such a tensor in float32 but returns its own dtype
    (overflow, 8-bit rounding), and with ``dtype=`` it converts the whole tensor first.
    """
    rows = g.reshape(-1, g.shape[-1]) if per_column else g.reshape(-1)
    width = rows.shape[1] if per_column else 1
    step = max(1, UPCAST_CHUNK_NUMEL // max(width, 1))
    shape = (min(step, rows.shape[0]), *rows.shape[1:])
    buffer = torch.empty(shape, dtype=torch.float32, device=g.device)
    total = torch.zeros(rows.shape[1:], dtype=torch.float32, device=g.device)
    for start in range(0, rows.shape[0], step):
        chunk = buffer[: min(step, rows.shape[0] - start)]
        chunk.copy_(rows[start : start + step])
        if per_column:
            total += chunk.square_().sum(dim=0)
        else:
            total += torch.dot(chunk, chunk)
    return total


def _sum_of_squares(tensors: Sequence[Tensor], *, per_column: bool, dtype: torch.dtype) -> Tensor:
    """Σ of squares over all tensors (0-dim), or per last-dimension column (shape ``(K,)``).

    Each tensor's squares are summed in :func:`reduction_dtype` of its dtype, and the sums are
    added in ``dtype``.
    """
    total: Tensor | None = None
    for g in tensors:
        if per_column and g.dim() == 0:
            raise ValueError(
                "Invalid per_column value: True with a 0-dim parameter (columns are the "
                "last dimension)"
            )
        if g.dtype in (torch.float16, torch.bfloat16):
            part = _upcast_sum_of_squares(g, per_column=per_column).to(dtype)
        elif per_column and g.dim() > 1:
            dims = tuple(range(g.dim() - 1))
            part = torch.linalg.vector_norm(g, dim=dims).to(dtype).square()
        elif per_column:
            part = g.to(dtype).square()
        else:
            part = torch.linalg.vector_norm(g).to(dtype).square()
        total = part if total is None else total + part
    if total is None:
        return torch.zeros((), dtype=dtype)
    return total


@AccumulatorOptimizer.functional
def adagrad_norm(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state_sum: Tensor,
    *,
    lr: float | Tensor,
    per_column: bool = False,
    squared_norm: Tensor | None = None,
    **options: Unpack[AccumulatorOptimizer.FunctionalKwargs],
) -> None:
    r"""One AdaGrad-Norm step on a group of tensors, in place.

    .. math::

        b_t^2 = b_{t-1}^2 + \|g_t\|^2, \qquad
        w_{t+1} = \mathrm{Proj}_W\!\Big(w_t - \frac{\eta\, g_t}{b + \varepsilon}\Big),
        \qquad b = b_t \text{ (standard) or } b_{t-1} \text{ (delayed)},

    with ``√(b² + ε)`` for ``eps_placement="inside"``, and ``‖g_t‖²`` taken over the whole group
    (all of ``params``) — or per column (last dimension) with ``per_column=True``.

    Args:
        params: The group's parameters, updated in place.
        grads: Their dense gradients.
        state_sum: The accumulator ``b²``: a 0-dim tensor, or ``(K,)`` with ``per_column``;
            updated in place; float32 or float64 (see the module docstring on precision).
        lr: ``η``: a float ≥ 0 or a tensor broadcastable to every parameter.
        eps: ``ε ≥ 0``.
        eps_placement: ``"outside"`` (``b + ε``) or ``"inside"`` (``√(b² + ε)``).
        weight_decay: L2 coefficient ``λ`` added to the gradient (and so to the norm).
        maximize: Ascend instead of descend.
        delayed: Use ``b_{t−1}`` in the step (``b_0² > 0`` required for a sound first step).
        per_column: One accumulator per column of the last dimension (``K`` stacked runs).
        squared_norm: ``‖g_t‖²`` computed by the caller (e.g. all-reduced over shards); by
            default it is computed here from ``grads``.
        boxes: Per parameter, ``(low, high)`` bounds, a :class:`RadiusBox` or ``None``.
        state_steps: Optional step counters (0-dim tensors), each incremented by one.
        workspaces: Optional per-parameter scratch dicts (weight decay / maximize buffers).
        kernel: ``"fast"`` or ``"reference"`` (concatenates the group into one vector).

    Example:
        >>> w, b2 = torch.zeros(2), torch.zeros(())
        >>> adagrad_norm([w], [torch.tensor([3.0, 4.0])], b2, lr=1.0)
        >>> w, b2
        (tensor([-0.6000, -0.8000]), tensor(25.))

    References:
        Ward, Wu & Bottou (2019), "AdaGrad stepsizes: sharp convergence over nonconvex
        landscapes"; Streeter & McMahan (2010).
    """
    if len(grads) != len(params):
        raise ValueError(
            f"Invalid grads length: {len(grads)} (expected one per parameter, {len(params)})"
        )
    hyper, context = AccumulatorOptimizer.functional_call("adagrad_norm", lr, options)
    if hyper.eps == 0:
        check_no_zero_division(hyper.eps, float(state_sum.min()))
    _adagrad_norm_step(params, grads, state_sum, hyper, context, per_column, squared_norm)


def _adagrad_norm_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state_sum: Tensor,
    options: AdaGradOptions,
    context: StepContext,
    per_column: bool,
    squared_norm: Tensor | None,
) -> None:
    """:func:`adagrad_norm` with its hyperparameters checked (the class checks ``lr`` once)."""
    lr, eps, eps_placement, weight_decay, maximize, delayed = options
    _check_accumulator_dtype("state_sum dtype", state_sum.dtype)
    boxes = context.start(len(params))
    if check_kernel(context.kernel) == "reference":
        _adagrad_norm_reference(params, grads, state_sum, boxes, options, per_column, squared_norm)
        return
    for grad in grads:
        _check_dense(grad)
    effective = [
        effective_gradient(
            p,
            grad,
            weight_decay=weight_decay,
            maximize=maximize,
            workspace=context.workspace(i),
        )
        for i, (p, grad) in enumerate(zip(params, grads))
    ]
    own_norm = squared_norm is None
    if squared_norm is None:
        squared_norm = _sum_of_squares(effective, per_column=per_column, dtype=state_sum.dtype)
    scale = _step_scale(state_sum, squared_norm, lr, eps, eps_placement, delayed)
    bounded = own_norm and plans_clips(boxes)
    clips = ClipPlanner(_largest_step(scale, squared_norm) if bounded else None)
    boxes = [
        clips.box(p, box, context.workspace(i)) for i, (p, box) in enumerate(zip(params, boxes))
    ]
    for i, (p, g, box) in enumerate(zip(params, effective, boxes)):
        if p.dtype in (torch.float16, torch.bfloat16):
            _low_precision_update_(p, g, scale)
        elif isinstance(scale, Tensor):
            p.addcmul_(g, scale.to(p.dtype), value=-1.0)
        else:
            p.add_(g, alpha=-scale)
        project_(p, box, context.workspace(i))
    clips.commit()


def _largest_step(scale: float | Tensor, squared_norm: Tensor) -> float:
    """``max_k scale_k·‖g‖_k``: no coordinate moves farther, since ``|g_i| ≤ ‖g‖`` (of its column).

    Delayed or not, this bounds the step before rounding, and it shrinks as ``b`` grows.
    """
    return float((scale * squared_norm.sqrt()).max())


def _low_precision_update_(param: Tensor, grad: Tensor, scale: float | Tensor) -> None:
    """``param −= scale·grad`` for a float16/bfloat16 ``param``, with ``scale`` kept in float32.

    In those dtypes ``η/(b+ε)`` underflows (float16 ends at 6e-8, i.e. ``b > 1.7e7·η``) or loses
    bits, and ``add_`` rounds its ``alpha`` to the tensor's dtype; ``addcmul_`` computes in
    float32 with its ``value`` in float32. A tensor scale therefore travels as its largest entry
    (in ``value``) times its ratios to it (in ``[0, 1]``, in the parameter's dtype).
    """
    if isinstance(scale, Tensor):
        top = float(scale.max())
        ratios = (scale / top).to(param.dtype) if top > 0 else None
    else:
        top, ratios = scale, torch.ones((), dtype=param.dtype, device=param.device)
    if ratios is not None:
        param.addcmul_(grad, ratios, value=-top)


def _step_scale(
    state_sum: Tensor,
    squared_norm: Tensor,
    lr: float | Tensor,
    eps: float,
    eps_placement: str,
    delayed: bool,
) -> float | Tensor:
    """Update ``b²`` in place and return ``η/(b+ε)`` (a float when everything is scalar)."""
    if squared_norm.shape != state_sum.shape:
        raise ValueError(
            f"Invalid squared_norm shape: {tuple(squared_norm.shape)} (expected the accumulator's "
            f"shape {tuple(state_sum.shape)})"
        )
    used = state_sum.clone() if delayed else None
    state_sum.add_(squared_norm.to(state_sum.dtype))
    used = state_sum if used is None else used
    denominator = used.sqrt() + eps if eps_placement == "outside" else (used + eps).sqrt()
    if not isinstance(lr, Tensor) and denominator.dim() == 0:
        return lr / float(denominator)
    return lr / denominator


def _adagrad_norm_reference(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state_sum: Tensor,
    boxes: Sequence[Box | None],
    options: AdaGradOptions,
    per_column: bool,
    squared_norm: Tensor | None,
) -> None:
    """The update as written: the group concatenated into one vector (or one matrix)."""
    lr, eps, eps_placement, weight_decay, maximize, delayed = options
    effective = []
    for p, grad in zip(params, grads):
        _check_dense(grad)
        g = -grad if maximize else grad
        effective.append(g + weight_decay * p if weight_decay != 0 else g)
    if squared_norm is None:
        # Squares summed in float32 at least, then added in the accumulator's dtype.
        if per_column:
            columns = torch.cat([g.reshape(-1, g.shape[-1]) for g in effective], dim=0)
            squared_norm = (columns.to(reduction_dtype(columns.dtype)) ** 2).sum(dim=0)
        else:
            flat = torch.cat([g.reshape(-1) for g in effective])
            squared_norm = (flat.to(reduction_dtype(flat.dtype)) ** 2).sum()
    past = state_sum.clone()
    state_sum.add_(squared_norm.to(state_sum.dtype))
    b_squared = past if delayed else state_sum
    b = b_squared.sqrt() + eps if eps_placement == "outside" else (b_squared + eps).sqrt()
    scale = lr / b
    for p, g, box in zip(params, effective, boxes):
        # The step in float32 at least, rounded once to the parameter's dtype.
        compute = reduction_dtype(p.dtype)
        p.copy_(p.to(compute) - scale.to(compute) * g.to(compute))
        project_(p, box)


class AdaGradNorm(AccumulatorOptimizer):
    r"""AdaGrad-Norm: one scalar step size per parameter group, adapted by the gradient norm.

    .. math::

        b_t^2 = b_{t-1}^2 + \|g_t\|^2, \qquad
        w_{t+1} = \mathrm{Proj}_W\!\Big(w_t - \frac{\eta\, g_t}{b + \varepsilon}\Big),

    ``b = b_t`` (or ``b_{t−1}`` with ``delayed``), where ``‖g_t‖`` is the norm of the whole group
    viewed as one vector (see the module docstring for what that means, for ``per_column`` and
    for sharded training). The projection onto a box is the coordinate clip.

    **State.** The accumulator belongs to the group, not to a parameter: it is
    ``param_groups[i]["sum"]`` (a float64 0-dim tensor ``b_t²``, or ``(K,)`` with ``per_column``;
    created at the group's first step and saved with ``state_dict``), and per parameter
    ``state["step"]`` (0-dim float32 tensor) plus, with ``box_radius``,
    ``state["box_center"]`` (``w_1``, the center of the box ``w_1 ± r``).

    Args:
        params: Parameters or parameter groups; every option below may be set per group.
        lr: ``η`` (float ≥ 0 or a tensor broadcastable to every parameter).
        eps: ``ε ≥ 0``.
        eps_placement: ``"outside"`` (``b + ε``) or ``"inside"`` (``√(b² + ε)``).
        initial_accumulator_value: ``b_0² ≥ 0`` (``> 0`` when ``delayed``).
        delayed: Use ``b_{t−1}`` in the step.
        per_column: One accumulator per column of the last dimension of the group's parameters.
        box: ``(low, high)`` bounds (floats or broadcastable tensors); the clip is skipped
            while no step can reach a face.
        box_radius: ``r > 0``: the box ``w_1 ± r`` around each parameter's first iterate.
        weight_decay: L2 coefficient added to the gradient, and so to the group's norm.
        maximize: Ascend instead of descend (the norm, and so ``b``, is unchanged).
        kernel: ``"fast"`` (default: the squared norm in one pass, then one in-place update
            per tensor) or ``"reference"`` (the group concatenated into one vector).

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([0.0, 0.0]))
        >>> opt = AdaGradNorm([w], lr=1.0)
        >>> (w * torch.tensor([3.0, 4.0])).sum().backward()
        >>> opt.step()
        >>> w.detach(), opt.param_groups[0]["sum"]
        (tensor([-0.6000, -0.8000]), tensor(25., dtype=torch.float64))

    Raises:
        ValueError: on any invalid hyperparameter, naming it and its value — including
            ``delayed=True`` with ``initial_accumulator_value=0`` and ``eps=0`` with
            ``initial_accumulator_value=0`` (a coordinate without gradient would compute 0/0).

    References:
        Ward, Wu & Bottou (2019); Liu, Pan & Zhang (2025), the uniform-step-size baseline.
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-2,
        *,
        per_column: bool = False,
        **options: Unpack[AccumulatorOptimizer.Kwargs],
    ) -> None:
        super().__init__(params, lr, options, per_column=per_column)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_bool("per_column", group["per_column"])
        if group["per_column"]:
            widths = {p.shape[-1] if p.dim() else None for p in group["params"]}
            if len(widths) != 1 or None in widths:
                raise ValueError(
                    f"Invalid per_column value: True with last dimensions "
                    f"{sorted(map(str, widths))} (every parameter of the group needs the same "
                    "number K ≥ 1 of columns)"
                )

    def _step_group(self, group: dict[str, Any], batch: GroupBatch, lr: float | Tensor) -> None:
        if "sum" not in group:
            first = batch.params[0]
            group["sum"] = torch.full(
                (first.shape[-1],) if group["per_column"] else (),
                group["initial_accumulator_value"],
                dtype=torch.float64,
                device=first.device,
            )
        elif group["sum"].device != batch.params[0].device:
            # load_state_dict moves per-parameter state, never group entries: follow the params.
            group["sum"] = group["sum"].to(batch.params[0].device)
        options = self._step_options(group, lr)
        _adagrad_norm_step(
            batch.params, batch.grads, group["sum"], options, batch.context(group["kernel"]),
            group["per_column"], None,
        )  # fmt: skip
