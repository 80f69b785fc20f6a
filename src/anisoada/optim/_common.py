"""What every optimizer class of the package shares: group validation, state, the step loop.

Each class differs only in the options it validates, the state it keeps per parameter and the
functional form it calls on a group; :class:`GroupOptimizer` does the rest once — the closure
under ``torch.enable_grad``, gathering the parameters that have a gradient with their step
counters, boxes and workspaces, and validating a tensor ``lr`` only when it changes.

**Options, declared once.** The options every class takes (:class:`GroupKwargs`), every
functional form (:class:`StepKwargs`), and those AdaGrad and AdaGrad-Norm share
(:class:`AccumulatorOptimizer`) are each declared once: a ``TypedDict`` types the ``**options``
of a constructor or a functional form (so a type checker checks every keyword) and a dict holds
their defaults; a class or function writes out only its own options. :func:`expand_kwargs`
turns the shared ones back into explicit keyword-only parameters, which ``inspect.signature``
(and ``help``) shows: ``AdaGrad(params, lr=0.01, *, eps=1e-10, …)``.

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
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, TypedDict, overload

import torch
import torch.optim.optimizer as torch_optimizer
from torch import Tensor

from anisoada.optim._box import Bounds, Box, check_box_options, param_bounds
from anisoada.optim._checks import (
    check_bool,
    check_delayed_start,
    check_eps_placement,
    check_kernel,
    check_lr,
    check_no_zero_division,
    check_nonnegative,
)
from anisoada.optim._compiled import AdaGradOptions
from anisoada.optim._workspace import Workspace

Params = Iterable[Tensor] | Iterable[dict[str, Any]]
"""Parameters, or parameter groups (dicts with ``"params"`` and per-group options)."""


class GroupKwargs(TypedDict, total=False):
    """The keyword options every optimizer class takes, per group (see :class:`GroupOptimizer`)."""

    box: Bounds | None
    box_radius: float | None
    weight_decay: float
    maximize: bool
    kernel: str


GROUP_DEFAULTS: dict[str, Any] = {
    "box": None,
    "box_radius": None,
    "weight_decay": 0.0,
    "maximize": False,
    "kernel": "fast",
}


def expand_kwargs(
    signature: inspect.Signature, kwargs: Any, defaults: Mapping[str, Any]
) -> inspect.Signature:
    """``signature`` with its ``**options`` replaced by one keyword-only parameter per entry of
    ``defaults`` (in that order), annotated as in the ``TypedDict`` ``kwargs`` (as written)."""
    annotations = {
        name: getattr(hint, "__forward_arg__", hint)
        for name, hint in kwargs.__annotations__.items()
    }
    if set(annotations) != set(defaults):
        raise TypeError(f"{kwargs.__name__} and its defaults name different options")
    keyword = inspect.Parameter.KEYWORD_ONLY
    explicit = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
    expanded = [
        inspect.Parameter(name, keyword, default=default, annotation=annotations[name])
        for name, default in defaults.items()
    ]
    return signature.replace(parameters=[*explicit, *expanded])


def merged_kwargs(
    caller: str, given: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """``defaults`` updated with the ``**options`` a caller was ``given``; an unknown name is the
    ``TypeError`` Python raises for an unexpected keyword argument."""
    unknown = [name for name in given if name not in defaults]
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    return {**defaults, **given}


def with_explicit_signature(
    defaults: Mapping[str, Any],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a functional form whose ``**options`` are a ``TypedDict`` with these defaults:
    ``inspect.signature`` and ``help`` then show every option as a keyword-only parameter."""

    def decorate(function: Callable[..., None]) -> Callable[..., None]:
        (kwargs,) = typing.get_args(typing.get_type_hints(function)["options"])
        signature = expand_kwargs(inspect.signature(function), kwargs, defaults)
        function.__dict__["__signature__"] = signature
        return function

    return decorate


class StepKwargs(TypedDict, total=False):
    """The keyword options every functional form takes besides ``lr`` and its own."""

    weight_decay: float
    maximize: bool
    boxes: Sequence[Box | None] | None
    state_steps: Sequence[Tensor] | None
    workspaces: Sequence[Workspace] | None
    kernel: str


STEP_DEFAULTS: dict[str, Any] = {
    "weight_decay": 0.0,
    "maximize": False,
    "boxes": None,
    "state_steps": None,
    "workspaces": None,
    "kernel": "fast",
}


class StepContext(NamedTuple):
    """What a step runs with besides the tensors and the hyperparameters."""

    boxes: Sequence[Box | None] | None
    state_steps: Sequence[Tensor] | None
    workspaces: Sequence[Workspace] | None
    kernel: str

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> StepContext:
        """The context named in a functional form's merged ``**options``."""
        return cls(*(options[name] for name in cls._fields))

    def start(self, n: int) -> list[Box | None]:
        """Advance the step counters; one box (or ``None``) for each of the ``n`` parameters."""
        if self.state_steps:
            # One call for every counter (as torch's optimizers do), not one per parameter.
            torch._foreach_add_(list(self.state_steps), 1)
        return [None] * n if self.boxes is None else list(self.boxes)

    def workspace(self, index: int) -> Workspace | None:
        """The workspace of parameter ``index``, if workspaces were given."""
        return None if self.workspaces is None else self.workspaces[index]


class GroupBatch(NamedTuple):
    """The parameters of one group that have a gradient at this step, with what they carry."""

    params: list[Tensor]
    grads: list[Tensor]
    states: list[dict[str, Any]]
    steps: list[Tensor]
    boxes: list[Box | None]
    workspaces: list[Workspace]

    def context(self, kernel: str) -> StepContext:
        """The functional form's context for these parameters."""
        return StepContext(self.boxes, self.steps, self.workspaces, kernel)


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


def largest_lr(lr: float | Tensor) -> float:
    """The largest step size of a float or tensor ``lr`` (0 for an empty tensor)."""
    if isinstance(lr, Tensor):
        return float(lr.max()) if lr.numel() else 0.0
    return float(lr)


class GroupOptimizer(torch.optim.Optimizer, abc.ABC):
    """A ``torch.optim.Optimizer`` whose groups carry ``lr``, ``weight_decay``, ``maximize``,
    ``kernel``, ``box`` and ``box_radius``, and whose update is a functional form per group.

    Subclasses take their own options as explicit keywords and the shared ones as
    ``**options: Unpack[...]`` of the ``TypedDict`` whose defaults are ``DEFAULTS``; they name
    their kernels in ``KERNELS``, extend :meth:`_validate_group` with their own options, may
    create per-parameter state in :meth:`_init_param_state`, and implement :meth:`_step_group`.
    """

    KERNELS: ClassVar[tuple[str, ...]] = ("fast", "reference")
    DEFAULTS: ClassVar[dict[str, Any]] = GROUP_DEFAULTS
    # Names the fast kernel's form of the update where it has changed since results were first
    # stored (another form of the same formula changes the iterates in their last bits): a
    # sweep records it in every run's identity. Empty: the first form.
    ARITHMETIC: ClassVar[str] = ""
    # The constructor's signature with every option explicit (see the module docstring).
    __signature__: ClassVar[inspect.Signature]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:  # an intermediate class (AccumulatorOptimizer)
            return
        (shared,) = typing.get_args(typing.get_type_hints(cls.__init__)["options"])
        explicit = list(inspect.signature(cls.__init__).parameters.values())[1:]  # no self
        cls.__signature__ = expand_kwargs(inspect.Signature(explicit), shared, cls.DEFAULTS)

    def __init__(
        self, params: Params, lr: float | Tensor, options: Mapping[str, Any], **own: Any
    ) -> None:
        """``own``: the subclass's explicit options; ``options``: the shared ones given."""
        shared = merged_kwargs(type(self).__name__, options, self.DEFAULTS)
        self._workspaces: dict[Tensor, Workspace] = {}
        # Per group index, the tensor lr last found valid and its version counter: checking a
        # tensor's entries costs a reduction, so it is repeated only when the tensor changes.
        self._validated_lrs: dict[int, tuple[Tensor, int]] = {}
        super().__init__(params, {"lr": lr, **own, **shared})

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


def accumulator_options(lr: float | Tensor, options: Mapping[str, Any]) -> AdaGradOptions:
    """The hyperparameters of one AdaGrad or AdaGrad-Norm step (``eps``, ``eps_placement``,
    ``weight_decay``, ``maximize``, ``delayed`` of ``options``), checked; ``lr`` as given."""
    return AdaGradOptions(
        lr,
        check_nonnegative("eps", options["eps"]),
        check_eps_placement(options["eps_placement"]),
        check_nonnegative("weight_decay", options["weight_decay"]),
        bool(options["maximize"]),
        bool(options["delayed"]),
    )


class AccumulatorOptimizer(GroupOptimizer):
    """What AdaGrad and AdaGrad-Norm share: a step ``η g/(√u + ε)`` (or ``η g/√(u + ε)``) with
    ``u`` an accumulated sum of squared gradients that starts at ``initial_accumulator_value``,
    the current one or (``delayed``) the previous one — their options, declared here once for
    the classes (:class:`Kwargs`) and for the functional forms (:class:`FunctionalKwargs`), and
    their validation."""

    class Kwargs(GroupKwargs, total=False):
        """The constructors' keyword options: the accumulator's and the shared ones."""

        eps: float
        eps_placement: str
        initial_accumulator_value: float
        delayed: bool

    class FunctionalKwargs(StepKwargs, total=False):
        """The keyword options of :func:`~anisoada.optim.adagrad` and
        :func:`~anisoada.optim.adagrad_norm` besides ``lr`` (and AdaGrad-Norm's own)."""

        eps: float
        eps_placement: str
        delayed: bool

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "eps": 1e-10,
        "eps_placement": "outside",
        "initial_accumulator_value": 0.0,
        "delayed": False,
        **GROUP_DEFAULTS,
    }
    FUNCTIONAL_DEFAULTS: ClassVar[dict[str, Any]] = {
        "eps": 1e-10,
        "eps_placement": "outside",
        "delayed": False,
        **STEP_DEFAULTS,
    }

    @classmethod
    def functional(cls, function: Callable[..., None]) -> Callable[..., None]:
        """Decorate a functional form taking ``**options: Unpack[FunctionalKwargs]``: its
        signature (``inspect``, ``help``) shows each of them."""
        return with_explicit_signature(cls.FUNCTIONAL_DEFAULTS)(function)

    @classmethod
    def functional_call(
        cls, caller: str, lr: float | Tensor, options: Mapping[str, Any]
    ) -> tuple[AdaGradOptions, StepContext]:
        """A functional form's checked hyperparameters and its context, from its arguments."""
        given = merged_kwargs(caller, options, cls.FUNCTIONAL_DEFAULTS)
        return accumulator_options(check_lr(lr), given), StepContext.of(given)

    @staticmethod
    def _step_options(group: dict[str, Any], lr: float | Tensor) -> AdaGradOptions:
        """The group's step hyperparameters, checked again (a group may be edited in place)."""
        return accumulator_options(lr, group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_nonnegative("eps", group["eps"])
        check_eps_placement(group["eps_placement"])
        check_nonnegative("initial_accumulator_value", group["initial_accumulator_value"])
        check_bool("delayed", group["delayed"])
        check_delayed_start(group["delayed"], group["initial_accumulator_value"])
        check_no_zero_division(group["eps"], group["initial_accumulator_value"])
