"""Diagonal AdaGrad as analysed by Liu, Pan & Zhang (2025): class, functional form, four kernels.

The update, per coordinate, for the minibatch-mean gradient ``g_t`` at ``w_t``::

    g_t ← −g_t                      if maximize
    g_t ← g_t + λ w_t               if weight_decay λ > 0  (L2 term added to the gradient, as torch)
    v_t = v_{t−1} + g_t ⊙ g_t       v_0 = initial_accumulator_value
    u   = v_t                       (standard)   or   v_{t−1}   (delayed: past gradients only)
    w_{t+1} = Proj_W( w_t − η g_t / (√u + ε) )     eps_placement="outside"  (torch)
    w_{t+1} = Proj_W( w_t − η g_t / √(u + ε) )     eps_placement="inside"   (optax)

``Proj_W`` is the ``H_t = diag(√v_t)``-weighted projection of the paper; for a coordinate box it
is the coordinate-wise clip (see :mod:`anisoada.optim._box`), and it is the identity when no box
is given. torch's ``Adagrad`` is ``eps_placement="outside", initial_accumulator_value=0``; optax's
``adagrad`` is ``eps_placement="inside", initial_accumulator_value=0.1``.

Kernels computing the same update:

- ``"reference"``: a readable per-tensor loop that allocates freely;
- ``"fast"`` (default): every tensor by the cheapest exact route — torch's fused Adagrad kernel
  where it is the whole update (ε outside, not delayed, float ``lr``, no box: one pass over
  memory); otherwise, for tensors of at least ``COMPILE_MIN_NUMEL`` elements, the variant's
  ``torch.compile``'d single pass (compiled once per option set and process, see
  :mod:`anisoada.optim._compiled`); and the eager kernel for the rest;
- ``"compiled"``: ``"fast"`` with the compiled single pass at every size;
- ``"eager"``: ``"fast"`` without compilation — the fallback where a compiler is missing or
  fails. It allocates nothing proportional to the parameters (workspace buffers are reused):
  torch's fused kernel plus one clipping pass for a box (two passes); for ε inside, the fused
  kernel run on a kept ``v + ε`` plus one pass adding ``g²`` to ``v`` (two passes, three with
  weight decay); four in-place passes for the delayed step or a tensor ``lr``, which no fused
  torch kernel computes (each needs ``√v`` in a pass of its own before the update).

Every kernel but ``"reference"`` skips the clip while it provably cannot act: a step moves no
coordinate by more than ``max η`` (``v_t ≥ g_t²``), so a box whose faces are farther than that
from every coordinate — a lower bound kept per parameter, re-measured when it runs out — is
not read at all (:class:`~anisoada.optim._box.ClipPlanner`). A projected run then costs the
unconstrained step (the fused kernel, 20 bytes a float32 coordinate) until the box binds, and
the iterates are bit for bit those of the clipped update. Not for the delayed step, whose
``g_t/√v_{t−1}`` has no such bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Unpack

import torch
from torch import Tensor

from anisoada.optim import _compiled
from anisoada.optim._box import Box, ClipPlanner, plans_clips, project_
from anisoada.optim._checks import check_kernel, check_no_zero_division, check_sparse_lr
from anisoada.optim._common import (
    AccumulatorOptimizer,
    GroupBatch,
    Params,
    StepContext,
    has_fused_kernel,
    largest_lr,
)
from anisoada.optim._compiled import AdaGradOptions, adagrad_compiled_
from anisoada.optim._workspace import (
    Workspace,
    effective_gradient,
    kept,
    lane_rates,
    scratch,
)

__all__ = ["AdaGrad", "adagrad"]

# Dtypes torch's fused Adagrad kernel accepts.
_FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# torch's fused CPU kernels open a parallel region for any size: below this many elements the
# in-place passes are cheaper (and do not stall when the other cores are busy).
FUSED_MIN_NUMEL = 1 << 16
KERNELS = ("fast", "compiled", "eager", "reference")


def _compile_threshold(kernel: str) -> int | None:
    """Elements from which a kernel compiles its variant (``None``: never)."""
    return {"fast": _compiled.COMPILE_MIN_NUMEL, "compiled": 0, "eager": None}[kernel]


@AccumulatorOptimizer.functional
def adagrad(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state_sums: Sequence[Tensor],
    *,
    lr: float | Tensor,
    **options: Unpack[AccumulatorOptimizer.FunctionalKwargs],
) -> None:
    r"""One AdaGrad step on every tensor of ``params``, in place.

    .. math::

        v_t = v_{t-1} + g_t \odot g_t, \qquad
        w_{t+1} = \mathrm{Proj}_W\!\Big(w_t - \eta\,\frac{g_t}{\sqrt{u_t} + \varepsilon}\Big),
        \qquad u_t = v_t \text{ (standard) or } v_{t-1} \text{ (delayed)},

    with ``√(u_t + ε)`` instead of ``√u_t + ε`` when ``eps_placement="inside"``; ``g_t`` is the
    gradient after the ``maximize`` sign flip and the L2 term ``weight_decay·w_t``. For a box
    ``W`` the ``H_t``-weighted projection is the coordinate clip.

    ``lr`` may be a tensor broadcastable to each parameter: ``K`` independent runs stacked as the
    columns of a ``(d, K)`` parameter take ``lr`` of shape ``(K,)``. Every kernel supports it
    (torch's fused kernel takes a scalar, so the fast kernels compile or run in-place passes).

    Args:
        params: Parameters, updated in place.
        grads: Their gradients (dense, or sparse COO for the reference path).
        state_sums: Accumulators ``v`` (same shapes as ``params``), updated in place.
        lr: Step size ``η``: a float ≥ 0 or a tensor broadcastable to every parameter.
        eps: ``ε ≥ 0``.
        eps_placement: ``"outside"`` (torch) or ``"inside"`` (optax).
        weight_decay: L2 coefficient ``λ`` added to the gradient before accumulation.
        maximize: Ascend instead of descend.
        delayed: Use ``v_{t-1}`` (past gradients only) in the step. The accumulators must then
            start positive: with ``v_0 = 0`` the first step would divide by ``ε`` alone.
        boxes: Per parameter, ``(low, high)`` bounds, a :class:`RadiusBox` or ``None``; the
            iterate is clipped after the step.
        state_steps: Optional step counters (0-dim tensors), each incremented by one.
        workspaces: Optional per-parameter dicts in which the fast kernel keeps its scratch
            buffers between calls; without them it allocates the scratch on every call.
        kernel: ``"fast"``, ``"compiled"``, ``"eager"`` or ``"reference"`` (see the module
            docstring).

    Example:
        >>> w, g, v = torch.zeros(3), torch.tensor([1.0, -2.0, 0.0]), torch.zeros(3)
        >>> adagrad([w], [g], [v], lr=0.1)
        >>> w
        tensor([-0.1000,  0.1000,  0.0000])

    References:
        Duchi, Hazan & Singer (2011), "Adaptive subgradient methods"; Liu, Pan & Zhang (2025),
        "AdaGrad under Anisotropic Smoothness", Algorithm 1.
    """
    n = len(params)
    if len(grads) != n or len(state_sums) != n:
        raise ValueError(
            f"Invalid grads/state_sums lengths: {len(grads)}/{len(state_sums)} "
            f"(expected one per parameter, {n})"
        )
    hyper, context = AccumulatorOptimizer.functional_call("adagrad", lr, options)
    if hyper.eps == 0 and state_sums:
        # The class checks v_0 once; a caller of the functional form may pass any accumulator.
        check_no_zero_division(hyper.eps, min(float(v.min()) for v in state_sums))
    _adagrad_step(params, grads, state_sums, hyper, context)


def _adagrad_step(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state_sums: Sequence[Tensor],
    options: AdaGradOptions,
    context: StepContext,
) -> None:
    """:func:`adagrad` with its hyperparameters checked (the class checks a tensor ``lr`` once)."""
    boxes = context.start(len(params))
    if check_kernel(context.kernel, KERNELS) == "reference":
        for p, g, v, box in zip(params, grads, state_sums, boxes):
            _adagrad_reference_tensor(p, g, v, box, options)
        return
    _adagrad_fast(
        params, grads, state_sums, boxes, context.workspaces, options,
        compile_min_numel=_compile_threshold(context.kernel),
    )  # fmt: skip


def _adagrad_reference_tensor(
    param: Tensor, grad: Tensor, state_sum: Tensor, box: Box | None, options: AdaGradOptions
) -> None:
    """The update written as the formula, one tensor at a time (allocates temporaries)."""
    if grad.is_sparse:
        _adagrad_reference_sparse(param, grad, state_sum, box, options)
        return
    lr, eps, eps_placement, weight_decay, maximize, delayed = options
    if isinstance(lr, Tensor):
        lr = lr.to(dtype=param.dtype, device=param.device)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    past_sum = state_sum.clone()
    state_sum.add_(g * g)
    used_sum = past_sum if delayed else state_sum
    outside = eps_placement == "outside"
    denominator = used_sum.sqrt() + eps if outside else (used_sum + eps).sqrt()
    param.sub_(lr * g / denominator)
    project_(param, box)


def _adagrad_reference_sparse(
    param: Tensor, grad: Tensor, state_sum: Tensor, box: Box | None, options: AdaGradOptions
) -> None:
    """AdaGrad for a sparse COO gradient: only the rows the gradient touches move."""
    lr, eps, eps_placement, weight_decay, maximize, delayed = options
    if weight_decay != 0:
        raise ValueError(
            f"Invalid weight_decay value: {weight_decay} with a sparse gradient (the L2 term is "
            "dense); use weight_decay=0, or dense gradients (e.g. nn.Embedding(sparse=False))"
        )
    check_sparse_lr(lr)
    grad = grad.coalesce()
    indices, values = grad._indices(), grad._values()
    if maximize:
        values = -values

    def sparse_like(new_values: Tensor) -> Tensor:
        # The indices come from a coalesced gradient, so they are valid by construction.
        return torch.sparse_coo_tensor(
            indices, new_values, grad.shape, device=grad.device, check_invariants=False
        )

    past_values = state_sum.sparse_mask(grad)._values()
    state_sum.add_(sparse_like(values * values))
    used = past_values if delayed else state_sum.sparse_mask(grad)._values()
    outside = eps_placement == "outside"
    denominator = used.sqrt() + eps if outside else (used + eps).sqrt()
    param.add_(sparse_like(values / denominator), alpha=-float(lr))
    project_(param, box)


def _fusable(param: Tensor, grad: Tensor, state_sum: Tensor) -> bool:
    """Whether torch's fused kernel can update this tensor triple, and is worth it for a float
    ``lr`` (:func:`_fused_layout`, and on CPU at least ``FUSED_MIN_NUMEL`` elements)."""
    # The size threshold is a CPU measurement; on accelerators one launch beats several.
    return _fused_layout(param, grad, state_sum) and (
        param.device.type != "cpu" or param.numel() >= FUSED_MIN_NUMEL
    )


def _fused_layout(param: Tensor, grad: Tensor, state_sum: Tensor) -> bool:
    """Whether torch's fused kernel can take this tensor triple: dense, one dtype it covers, one
    shape, contiguous, on a device it has a kernel for."""
    return (
        not grad.is_sparse
        and param.dtype in _FUSED_DTYPES
        and has_fused_kernel("_fused_adagrad_", param.device.type)
        and grad.dtype == param.dtype == state_sum.dtype
        and param.is_contiguous()
        and grad.is_contiguous()
        and state_sum.is_contiguous()
        and grad.shape == param.shape == state_sum.shape
    )


def _adagrad_fast(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state_sums: Sequence[Tensor],
    boxes: Sequence[Box | None],
    workspaces: Sequence[Workspace] | None,
    options: AdaGradOptions,
    *,
    compile_min_numel: int | None,
) -> None:
    """Each tensor by the cheapest route that computes exactly our update.

    1. torch's fused kernel where it is the whole update (ε outside, not delayed, float ``lr``,
       no box): one pass, nothing to compile;
    2. otherwise, from ``compile_min_numel`` elements on (``None``: never), the variant's
       compiled single-pass kernel;
    3. where that is unavailable: the fused kernel followed by one clipping pass (a box); the
       fused kernel and one or two light passes (:func:`_through_fused_kernel`) for ε inside
       and for a tensor ``lr`` — the latter at every size where torch runs one CPU thread (a
       sweep's runs do), so that a lane of a vectorised run and a run of that lane alone take
       the same route and round alike; or in-place passes into workspace buffers (delayed,
       small float-``lr`` tensors, odd layouts, a tensor ``lr`` with several CPU threads).
    """
    lr, eps, eps_placement, weight_decay, maximize, delayed = options
    scalar_standard = not delayed and not isinstance(lr, Tensor)
    tensor_lr = not delayed and isinstance(lr, Tensor) and _one_cpu_thread()
    fused_batches: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    staged_batches: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    clips = ClipPlanner(_step_bound(options) if plans_clips(boxes) else None)
    boxes = list(boxes)
    for i, (p, g, v) in enumerate(zip(params, grads, state_sums)):
        workspace = None if workspaces is None else workspaces[i]
        if g.is_sparse:
            _adagrad_reference_sparse(p, g, v, boxes[i], options)
            continue
        box = boxes[i] = clips.box(p, boxes[i], workspace)
        fusable = scalar_standard and _fusable(p, g, v)
        if fusable and eps_placement == "outside" and box is None:
            fused_batches.setdefault((p.device, p.dtype), []).append(i)
        elif (
            compile_min_numel is not None
            and p.numel() >= compile_min_numel
            and adagrad_compiled_(p, g, v, box, options)
        ):
            continue
        elif fusable and eps_placement == "outside":
            fused_batches.setdefault((p.device, p.dtype), []).append(i)
        elif fusable or (tensor_lr and _fused_layout(p, g, v)):
            staged_batches.setdefault((p.device, p.dtype), []).append(i)
        else:
            _adagrad_inplace_tensor(p, g, v, box, workspace, options)
    for indices in staged_batches.values():
        _through_fused_kernel(
            [params[i] for i in indices],
            [grads[i] for i in indices],
            [state_sums[i] for i in indices],
            [None if workspaces is None else workspaces[i] for i in indices],
            options,
        )
        for i in indices:
            project_(params[i], boxes[i], None if workspaces is None else workspaces[i])
    for indices in fused_batches.values():
        batch = [params[i] for i in indices]
        # lr_decay=0 makes the kernel ignore the step counters; it still wants one per tensor.
        # The counters live on the parameters' device, as torch's own fused path keeps them, and
        # are kept in the workspaces: on a GPU a fresh one per tensor is a launch per tensor.
        steps = [
            _fused_step_counter(params[i], None if workspaces is None else workspaces[i])
            for i in indices
        ]
        torch._fused_adagrad_(
            batch,
            [grads[i] for i in indices],
            [state_sums[i] for i in indices],
            steps,
            lr=float(lr),
            lr_decay=0.0,
            weight_decay=weight_decay,
            eps=eps,
            maximize=maximize,
        )
        for i in indices:
            project_(params[i], boxes[i], None if workspaces is None else workspaces[i])
    clips.commit()


def _one_cpu_thread() -> bool:
    """Whether torch runs one intra-op CPU thread.

    torch's fused CPU kernel opens an OpenMP parallel region whatever the size. With several
    threads that costs more than a small tensor's passes, and in a process forked after the
    parent used OpenMP (a fork-started worker) the region never returns: libgomp's pool does
    not survive ``fork``. With one thread the region runs inline and is safe anywhere.
    """
    return torch.get_num_threads() == 1


def _step_bound(options: AdaGradOptions) -> float | None:
    """A bound on every coordinate's step ``η|g_i|/(√v_i + ε)`` before rounding: ``max η``, as
    ``v_i ≥ g_i²`` once ``g_i²`` is added (ε inside the root likewise); ``None`` when delayed,
    where ``v_{i,t−1}`` may be far below ``g_i²``."""
    return None if options.delayed else largest_lr(options.lr)


def _fused_step_counter(param: Tensor, workspace: Workspace | None) -> Tensor:
    """A zero float32 step counter on ``param``'s device for torch's fused kernel, which only
    reads it (and, with ``lr_decay=0``, never uses its value); kept in ``workspace``."""
    counter = kept(workspace, "fused_step")
    if counter is None or counter.device != param.device:
        counter = torch.zeros((), dtype=torch.float32, device=param.device)
        if workspace is not None:
            workspace["fused_step"] = counter
    return counter


def _shifted_accumulator(state_sum: Tensor, eps: float, workspace: Workspace | None) -> Tensor:
    """``S = v + ε``, kept in the workspace and rebuilt only when ``v`` changed elsewhere.

    :func:`_through_fused_kernel` adds ``g²`` to ``v`` and to ``S`` alike, and records
    ``v``'s version counter afterwards: an unchanged ``v`` (same tensor, same version, same ε)
    means ``S`` still equals ``v + ε`` up to the rounding of the sums.
    """
    shifted = scratch(workspace, "shifted_sum", state_sum)
    if workspace is not None:
        tag = kept(workspace, "shifted_sum_tag")
        if (
            workspace.get("shifted_sum_of") is state_sum
            and tag is not None
            and tag.tolist() == [_version(state_sum), eps]
        ):
            return shifted
        workspace["shifted_sum_of"] = state_sum
    return torch.add(state_sum, eps, out=shifted)


def _version(tensor: Tensor) -> float:
    try:
        return float(tensor._version)
    except RuntimeError:  # an inference tensor keeps no version counter: never trust a cache
        return math.nan


def _through_fused_kernel(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state_sums: Sequence[Tensor],
    workspaces: Sequence[Workspace | None],
    options: AdaGradOptions,
) -> None:
    r"""The standard (not delayed) step through torch's fused kernel where that kernel alone is
    not the update: ε inside the root, or a tensor ``lr``. One fused call for all the tensors
    (one parallel region on CPU), then at most two light passes per tensor.

    The kernel does ``a ← a + g²`` and ``w ← w − η·g/(√a + ε)`` in one pass, for a float ``η``.

    * ε inside: with ``S_t = v_t + ε`` kept beside ``v``, ``g_t/√(v_t + ε) = g_t/√S_t`` and
      ``S_t = S_{t−1} + g_t²``, so the kernel with ``ε = 0`` runs on ``S``; ``v`` then takes
      ``g_t²`` in a pass of its own. ``S`` and ``v`` hold the same sums, rounded apart.
    * a tensor ``η`` (per-lane rates broadcasting over the columns): the kernel runs with
      ``η = 1`` on a zeroed buffer ``u``, leaving ``u = −g/(√a + ε)`` exactly (``1·g`` and
      ``0 − x`` round to themselves), and ``w ← w + η ⊙ u`` follows (``addcmul_``). Every
      element's bits depend on its own inputs only, at any position and length (tested), so a
      lane rounds alike in a vectorised run and alone.

    ``v`` needs the effective gradient ``±g + λw`` and the kernel sees ``u`` rather than ``w``
    for a tensor ``η``, so weight decay and maximisation are applied to ``g`` first there.
    """
    lr, eps, eps_placement, weight_decay, maximize, _ = options
    inside = eps_placement == "inside"
    fold = isinstance(lr, Tensor) or (inside and weight_decay != 0)
    effective = [
        effective_gradient(p, g, weight_decay=weight_decay, maximize=maximize, workspace=w)
        if fold
        else g
        for p, g, w in zip(params, grads, workspaces)
    ]
    accumulators = [
        _shifted_accumulator(v, eps, w) if inside else v for v, w in zip(state_sums, workspaces)
    ]
    targets = (
        [scratch(w, "lane_step", p).zero_() for p, w in zip(params, workspaces)]
        if isinstance(lr, Tensor)
        else list(params)
    )
    torch._fused_adagrad_(
        targets,
        effective,
        accumulators,
        [_fused_step_counter(p, w) for p, w in zip(params, workspaces)],
        lr=1.0 if isinstance(lr, Tensor) else float(lr),
        lr_decay=0.0,
        weight_decay=0.0 if fold else weight_decay,
        eps=0.0 if inside else eps,
        maximize=False if fold else maximize,
    )
    for p, g, v, u, w in zip(params, effective, state_sums, targets, workspaces):
        if inside:
            v.addcmul_(g, g)
            if w is not None:
                w["shifted_sum_tag"] = torch.tensor([_version(v), eps], dtype=torch.float64)
        if isinstance(lr, Tensor):
            p.addcmul_(u, lane_rates(lr, p, w))


def _adagrad_inplace_tensor(
    param: Tensor,
    grad: Tensor,
    state_sum: Tensor,
    box: Box | None,
    workspace: Workspace | None,
    options: AdaGradOptions,
) -> None:
    """The update as a few in-place passes into workspace buffers (any layout, any option)."""
    lr, eps, eps_placement, weight_decay, maximize, delayed = options
    if isinstance(lr, Tensor):
        lr = lr.to(dtype=param.dtype, device=param.device)
    g = effective_gradient(
        param, grad, weight_decay=weight_decay, maximize=maximize, workspace=workspace
    )
    denominator = scratch(workspace, "denominator", param)
    if not delayed:
        state_sum.addcmul_(g, g)
    if eps_placement == "outside":
        torch.sqrt(state_sum, out=denominator).add_(eps)
    else:
        torch.add(state_sum, eps, out=denominator).sqrt_()
    if delayed:
        state_sum.addcmul_(g, g)
    if isinstance(lr, Tensor):
        # η·g/δ = g/(δ/η): dividing the denominator keeps the pass count and needs no buffer.
        param.addcdiv_(g, denominator.div_(lr), value=-1.0)
    else:
        param.addcdiv_(g, denominator, value=-lr)
    project_(param, box, workspace)


class AdaGrad(AccumulatorOptimizer):
    r"""Diagonal AdaGrad with the options the paper's analysis needs.

    .. math::

        v_t = v_{t-1} + g_t \odot g_t, \qquad
        w_{t+1} = \mathrm{Proj}_W^{H_t}\!\Big(w_t - \eta\,\frac{g_t}{\sqrt{u_t} + \varepsilon}\Big),

    with ``u_t = v_t`` (standard) or ``u_t = v_{t-1}`` (``delayed=True``), ``√(u_t+ε)`` for
    ``eps_placement="inside"``, and ``H_t = diag(√v_t)``. For a box ``W`` the ``H_t``-weighted
    projection is the coordinate clip. See :func:`adagrad` for the functional form.

    Unlike ``torch.optim.Adagrad``, which reads ``initial_accumulator_value`` from the
    constructor only, a per-group value is honoured.

    **Delayed steps and the first step.** A delayed step uses only past gradients, so the first
    step divides by ``√v_0 + ε`` with ``v_0 = initial_accumulator_value``. That is only a sound
    step when ``v_0 > 0``, so ``delayed=True`` requires ``initial_accumulator_value > 0``
    (``ValueError`` otherwise); the same bound keeps a coordinate whose gradients were zero so far
    from moving by ``η g/ε`` when its first nonzero gradient arrives.

    **State** (per parameter, inspectable, saved by ``state_dict``):

    - ``state["step"]``: number of steps taken, a 0-dim float32 tensor (as torch);
    - ``state["sum"]``: the accumulator ``v_t`` after the latest step (including ``g_t``, also
      when delayed), shaped and typed like the parameter;
    - ``state["box_center"]``: with ``box_radius``, the center ``w_1`` of the box ``w_1 ± r``,
      recorded at the parameter's first step.

    Args:
        params: Parameters or parameter groups; every option below may be set per group.
        lr: Step size ``η`` (float ≥ 0, or a tensor broadcastable to every parameter).
        eps: ``ε ≥ 0``.
        eps_placement: ``"outside"`` (torch) or ``"inside"`` (optax).
        initial_accumulator_value: ``v_0 ≥ 0`` (``> 0`` when ``delayed``).
        delayed: Use ``v_{t−1}`` instead of ``v_t`` in the step.
        box: ``(low, high)``: floats or tensors broadcastable to the group's parameters.
        box_radius: ``r > 0``: the box ``w_1 ± r`` around each parameter's first iterate.
        weight_decay: L2 coefficient added to the gradient (before accumulation), as torch.
        maximize: Ascend instead of descend.
        kernel: ``"fast"`` (default: torch's fused kernel for the standard update, a single
            pass compiled with ``torch.compile`` for the other variants on tensors of at least
            ``COMPILE_MIN_NUMEL`` elements — seconds of compilation once per option set and
            process — and eager passes elsewhere), ``"compiled"`` (the compiled pass at any
            size), ``"eager"`` (never compile) or ``"reference"``.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
        >>> opt = AdaGrad([w], lr=0.5, box=(0.8, 2.0))
        >>> (w * torch.tensor([1.0, 100.0])).sum().backward()
        >>> opt.step()
        >>> w.detach()
        tensor([0.8000, 0.8000])

    Raises:
        ValueError: on any invalid hyperparameter, naming it and its value — including
            ``delayed=True`` with ``initial_accumulator_value=0`` and ``eps=0`` with
            ``initial_accumulator_value=0`` (a coordinate without gradient would compute 0/0).

    References:
        Liu, Pan & Zhang (2025), "AdaGrad under Anisotropic Smoothness", Algorithm 1;
        Duchi, Hazan & Singer (2011).
    """

    ARITHMETIC = "tensor lr: fused kernel at lr 1 into a zeroed buffer u, then w + lr*u"

    KERNELS = KERNELS

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-2,
        **options: Unpack[AccumulatorOptimizer.Kwargs],
    ) -> None:
        super().__init__(params, lr, options)

    def _init_param_state(
        self, group: dict[str, Any], param: Tensor, state: dict[str, Any]
    ) -> None:
        if "sum" not in state:
            state["sum"] = torch.full_like(
                param, group["initial_accumulator_value"], memory_format=torch.preserve_format
            )

    def _step_group(self, group: dict[str, Any], batch: GroupBatch, lr: float | Tensor) -> None:
        sums = [state["sum"] for state in batch.states]
        options = self._step_options(group, lr)
        _adagrad_step(batch.params, batch.grads, sums, options, batch.context(group["kernel"]))
