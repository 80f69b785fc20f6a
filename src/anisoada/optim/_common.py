"""What every optimizer class of the package shares: group validation, state, the step loop.

Each class differs only in the options it validates, the state it keeps per parameter and the
functional form it calls on a group; :class:`GroupOptimizer` does the rest once — the closure
under ``torch.enable_grad``, gathering the parameters that have a gradient with their step
counters, boxes and workspaces, and validating a tensor ``lr`` only when it changes.

**Per-call overhead.** torch wraps every optimizer's ``step`` in a profiler range and its hook
calls, and ``zero_grad`` in another range; on the small tensors of a vectorised logistic step
those cost more than the update itself (≈ 30 µs a step). :class:`GroupOptimizer` therefore takes
the plain route when nothing could observe the difference — no step hook registered (on the
optimizer or globally) and no profiler running — and torch's own wrapper otherwise, so hooks
and profiler traces behave exactly as for any ``torch.optim`` optimizer.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, overload

import torch
import torch.optim.optimizer as torch_optimizer
from torch import Tensor

from anisoada.optim._box import Box, check_box_options, param_bounds
from anisoada.optim._checks import check_bool, check_kernel, check_lr, check_nonnegative
from anisoada.optim._workspace import Workspace


class GroupBatch(NamedTuple):
    """The parameters of one group that have a gradient at this step, with what they carry."""

    params: list[Tensor]
    grads: list[Tensor]
    states: list[dict[str, Any]]
    steps: list[Tensor]
    boxes: list[Box | None]
    workspaces: list[Workspace]


@functools.cache
def has_fused_kernel(op: str, device_type: str) -> bool:
    """Whether torch implements the fused optimizer kernel ``torch.<op>`` on ``device_type``.

    torch's fused Adagrad kernel exists on CPU only, its fused SGD kernel also on CUDA; calling
    either elsewhere raises, so the fast kernels ask before routing a tensor there.
    """
    has_kernel = getattr(torch._C, "_dispatch_has_kernel_for_dispatch_key", None)
    if has_kernel is None:  # an older or trimmed build: CPU is the one device always covered
        return device_type == "cpu"
    try:
        return bool(has_kernel(f"aten::{op}", _DISPATCH_KEYS.get(device_type, device_type.upper())))
    except RuntimeError:  # a device type without a dispatch key of that name
        return False


_DISPATCH_KEYS = {"meta": "Meta", "mps": "MPS", "xpu": "XPU", "privateuseone": "PrivateUse1"}

# Whether torch's profiler is recording (a private function, not re-exported by torch.autograd).
_profiler_enabled: Callable[[], bool] = torch._C._autograd._profiler_enabled

# torch's registries of global step hooks (register_optimizer_step_pre/post_hook); None where a
# torch release keeps them elsewhere, and then every step takes torch's wrapper.
_GLOBAL_STEP_HOOKS = tuple(
    getattr(torch_optimizer, name, None)
    for name in ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
)


def _step_observed(optimizer: torch.optim.Optimizer) -> bool:
    """Whether a step hook or a profiler could see the step (then torch's wrapper runs it)."""
    return bool(
        _profiler_enabled()
        or any(hooks is None or hooks for hooks in _GLOBAL_STEP_HOOKS)
        or getattr(optimizer, "_optimizer_step_pre_hooks", True)
        or getattr(optimizer, "_optimizer_step_post_hooks", True)
    )


def start_step(
    n: int, boxes: Sequence[Box | None] | None, state_steps: Sequence[Tensor] | None
) -> list[Box | None]:
    """The functional forms' common prologue: one box per parameter, step counters advanced."""
    if state_steps:
        # One call for every counter (as torch's optimizers do), not one per parameter.
        torch._foreach_add_(list(state_steps), 1)
    return [None] * n if boxes is None else list(boxes)


def largest_lr(lr: float | Tensor) -> float:
    """The largest step size of a float or tensor ``lr`` (0 for an empty tensor)."""
    if isinstance(lr, Tensor):
        return float(lr.max()) if lr.numel() else 0.0
    return float(lr)


class GroupOptimizer(torch.optim.Optimizer, abc.ABC):
    """A ``torch.optim.Optimizer`` whose groups carry ``lr``, ``weight_decay``, ``maximize``,
    ``kernel``, ``box`` and ``box_radius``, and whose update is a functional form per group.

    Subclasses name their kernels in ``KERNELS``, extend :meth:`_validate_group` with their own
    options, may create per-parameter state in :meth:`_init_param_state`, and implement
    :meth:`_step_group`.
    """

    KERNELS: tuple[str, ...] = ("fast", "reference")

    def __init__(
        self, params: Iterable[Tensor] | Iterable[dict[str, Any]], defaults: dict[str, Any]
    ) -> None:
        self._workspaces: dict[Tensor, Workspace] = {}
        # Per group index, the tensor lr last found valid and its version counter: checking a
        # tensor's entries costs a reduction, so it is repeated only when the tensor changes.
        self._validated_lrs: dict[int, tuple[Tensor, int]] = {}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; its options (defaults filled in) are validated like the constructor's."""
        super().add_param_group(param_group)
        try:
            self._validate_group(self.param_groups[-1])
        except ValueError:
            self.param_groups.pop()
            raise

    def _validate_group(self, group: dict[str, Any]) -> None:
        """``ValueError`` for an invalid shared option; subclasses add their own checks."""
        check_lr(group["lr"])
        check_nonnegative("weight_decay", group["weight_decay"])
        check_bool("maximize", group["maximize"])
        check_kernel(group["kernel"], self.KERNELS)
        check_box_options(group["box"], group["box_radius"])

    def _init_param_state(
        self, group: dict[str, Any], param: Tensor, state: dict[str, Any]
    ) -> None:
        """Create the per-parameter state beyond ``state["step"]`` (none by default)."""

    @abc.abstractmethod
    def _step_group(self, group: dict[str, Any], batch: GroupBatch, lr: float | Tensor) -> None:
        """Update the parameters of ``batch`` (non-empty) with the group's options and ``lr``."""

    def _valid_lr(self, index: int, group: dict[str, Any]) -> float | Tensor:
        """The group's ``lr``, checked — a tensor only when it is new or changed in place."""
        lr = group["lr"]
        if not isinstance(lr, Tensor):
            check_lr(lr)
            return lr
        known = self._validated_lrs.get(index)
        if known is None or known[0] is not lr or known[1] != lr._version:
            check_lr(lr)
            self._validated_lrs[index] = (lr, lr._version)
        return lr

    def _gather(self, group: dict[str, Any]) -> GroupBatch:
        batch = GroupBatch([], [], [], [], [], [])
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.is_complex():
                raise ValueError("Invalid parameter: complex tensors are not supported")
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.float32)
            self._init_param_state(group, p, state)
            batch.params.append(p)
            batch.grads.append(p.grad)
            batch.states.append(state)
            batch.steps.append(state["step"])
            batch.boxes.append(param_bounds(group, p, state))
            batch.workspaces.append(self._workspaces.setdefault(p, {}))
        return batch

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one step; ``closure`` (optional) re-evaluates the loss and returns it.

        Step hooks and profiler ranges work as for any ``torch.optim`` optimizer: while one is
        registered or running the step goes through torch's wrapper (see the module docstring).
        """
        if _step_observed(self):
            return self._hooked_step(closure)
        return self._plain_step(closure)

    @torch.no_grad()
    def _plain_step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            batch = self._gather(group)
            if batch.params:
                self._step_group(group, batch, self._valid_lr(index, group))
        return loss

    # torch's wrapper (profiler range, then pre-hooks, the step, post-hooks) around the plain
    # step — what torch.optim.Optimizer.__init__ would otherwise wrap ``step`` itself with.
    _hooked_step = torch.optim.Optimizer.profile_hook_step(_plain_step)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients, as ``torch.optim.Optimizer.zero_grad`` does.

        Setting them to ``None`` skips torch's per-call profiler range unless a profiler is
        running; zeroing in place is torch's own method.
        """
        if not set_to_none or _profiler_enabled():
            super().zero_grad(set_to_none)
            return
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None


# torch.optim.Optimizer.__init__ wraps a class's ``step`` unless it is marked as hooked; ours
# chooses between torch's wrapper and the plain step itself.
GroupOptimizer.step.__dict__["hooked"] = True
