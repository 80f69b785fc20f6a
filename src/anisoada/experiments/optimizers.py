"""Optimizers as a sweep names them: a registry key, a label, fixed options and an lr grid.

:class:`OptimizerSpec` is what a sweep's ``[[optimizers]]`` table or ``--optimizer`` flag becomes;
:func:`build_optimizer` turns it into a ``torch.optim.Optimizer`` of
:data:`anisoada.optim.OPTIMIZERS`
for any run kind — with one learning rate, or with K of them as the lanes of one run.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from anisoada.experiments.grid import LRGrid

__all__ = ["OptimizerSpec", "build_optimizer", "optimizer_names", "parse_optimizer_options"]

# Constructor arguments a sweep sets itself: never options of a spec.
_RESERVED = ("params", "lr", "per_column")


def optimizer_names() -> list[str]:
    """The registry keys a spec may name (``sgd``, ``adagrad``, ``adagrad_norm``)."""
    from anisoada.optim import OPTIMIZERS

    return sorted(OPTIMIZERS)


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer of :data:`anisoada.optim.OPTIMIZERS` with fixed options.

    Args:
        name: Registry key (``"sgd"``, ``"adagrad"``, ``"adagrad_norm"``).
        label: Name in results tables (default: ``name``); lets one optimizer appear twice
            with different options.
        options: Keyword arguments for the constructor besides ``lr``.
        lr_grid: This optimizer's learning-rate grid (default: the sweep's).

    The name and the options are checked against the optimizer's constructor when the spec is
    built, so a misspelt option fails before any run starts.
    """

    name: str
    label: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    lr_grid: LRGrid | None = None

    def __post_init__(self) -> None:
        from anisoada.optim import OPTIMIZERS

        if not isinstance(self.name, str) or self.name not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.name!r}; choose one of {', '.join(optimizer_names())}"
            )
        if not isinstance(self.label, str):
            raise ValueError(f"optimizer label must be a string; got {self.label!r}")
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if self.lr_grid is not None and not isinstance(self.lr_grid, LRGrid):
            raise ValueError(f"lr_grid of optimizer {self.label!r} must be an LRGrid")
        parameters = inspect.signature(OPTIMIZERS[self.name]).parameters
        known = sorted(p for p in parameters if p not in _RESERVED)
        for key, value in self.options:
            if key in _RESERVED or key not in parameters:
                raise ValueError(
                    f"unknown option {key!r} for optimizer {self.name!r}; its options are "
                    f"{', '.join(known)}"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"option {self.name}.{key} must be finite; got {value!r}")
        try:
            # Build once on a dummy parameter: the optimizer's own validation of each value.
            _factory(self.name)([torch.zeros(1, requires_grad=True)], lr=1e-3, **dict(self.options))
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid options for optimizer {self.label!r}: {error}") from None

    @property
    def options_json(self) -> str:
        """The options as canonical JSON (sorted keys): one string column in results tables.

        Example:
            >>> options = {"eps": 1e-8, "eps_placement": "inside"}
            >>> spec = OptimizerSpec.create("adagrad", options=options)
            >>> spec.options_json
            '{"eps": 1e-08, "eps_placement": "inside"}'
        """
        return json.dumps(dict(self.options), sort_keys=True, default=str)

    @classmethod
    def create(
        cls,
        name: str,
        label: str = "",
        options: Mapping[str, Any] | None = None,
        *,
        lr_grid: LRGrid | None = None,
    ) -> OptimizerSpec:
        """Build a spec from a plain mapping of options."""
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"options of optimizer {name!r} must be a table; got {options!r}")
        items = tuple(sorted((options or {}).items()))
        return cls(name=name, label=label or name, options=items, lr_grid=lr_grid)

    def identity(self) -> dict[str, Any]:
        """What determines the optimizer's arithmetic (recorded in every run's identity): the
        name, label and options, and the fast kernel's form where the optimizer names one."""
        from anisoada.optim import OPTIMIZERS

        identity = {"name": self.name, "label": self.label, "options": dict(self.options)}
        arithmetic = getattr(OPTIMIZERS[self.name], "ARITHMETIC", "")
        if arithmetic:
            identity["arithmetic"] = arithmetic
        return identity

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML form of an ``[[optimizers]]`` entry."""
        payload: dict[str, Any] = {"name": self.name, "label": self.label}
        if self.options:
            payload["options"] = dict(self.options)
        if self.lr_grid is not None:
            payload["lr_grid"] = self.lr_grid.to_dict()
        return payload


def build_optimizer(
    spec: OptimizerSpec, params: Sequence[torch.Tensor], lrs: float | Sequence[float]
) -> torch.optim.Optimizer:
    """``OPTIMIZERS[spec.name](params, lr=..., **options)``.

    With one float ``lr`` this is the ordinary optimizer. With a sequence of K learning rates,
    ``lr`` is a tensor of shape ``(K,)`` that broadcasts over the columns of ``(d, K)`` weights
    (K runs as lanes of one). Element-wise updates (SGD, diagonal AdaGrad) then keep the columns
    independent by themselves; an optimizer whose update couples coordinates declares a
    ``per_column`` option (AdaGrad-Norm's norm accumulator), which is switched on so that each
    column keeps its own state. A tensor lr and per-column state are used even for one lane: a
    lane of a vectorised run and a run with that lr alone then do the same arithmetic.
    """
    factory = _factory(spec.name)
    options = dict(spec.options)
    if isinstance(lrs, float | int):
        return factory(params, lr=float(lrs), **options)
    if "per_column" in inspect.signature(factory).parameters:
        options["per_column"] = True
    return factory(params, lr=torch.tensor(list(lrs), dtype=params[0].dtype), **options)


def _factory(name: str) -> Callable[..., torch.optim.Optimizer]:
    """``OPTIMIZERS[name]`` as a constructor.

    ``OPTIMIZERS`` is typed ``type[Optimizer]``, whose ``__init__(params, defaults)`` is not
    the signature of its classes: they take ``lr`` and their options as keywords (checked at
    run time by :meth:`OptimizerSpec.__post_init__`).
    """
    from anisoada.optim import OPTIMIZERS

    return OPTIMIZERS[name]


def parse_optimizer_options(
    items: Sequence[str], names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Command-line ``NAME.KEY=VALUE`` items → ``{optimizer name: {option: value}}``.

    Values are read as Python literals (``1e-8``, ``True``, ``(0, 1)``), else kept as text
    (``inside``). An option given twice is refused (the last would win unseen).

    Example:
        >>> items = ["adagrad.eps=1e-8", "adagrad.eps_placement=inside"]
        >>> parse_optimizer_options(items, ["adagrad"])
        {'adagrad': {'eps': 1e-08, 'eps_placement': 'inside'}}
    """
    options: dict[str, dict[str, Any]] = {name: {} for name in names}
    for item in items:
        name, _, assignment = item.partition(".")
        key, _, value = assignment.partition("=")
        if name not in options or not key or not value:
            raise ValueError(
                f"--option {item!r}: expected NAME.KEY=VALUE with NAME among the optimizers "
                f"given ({', '.join(names)})"
            )
        if key in options[name]:
            raise ValueError(
                f"--option {item!r}: {name}.{key} is given twice; give each option once"
            )
        try:
            options[name][key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[name][key] = value
    return options
