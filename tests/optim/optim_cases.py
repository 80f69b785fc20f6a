"""The registry of optimizer cases that drives the shared suite (tests/optim/test_shared.py).

Every entry of ``anisoada.optim.OPTIMIZERS`` has one ``RegistryEntry`` here: its NumPy reference
(tests/reference/optim_numpy.py) wrapped to a common signature, the grid of options that the
fast-vs-reference test enumerates, and the invalid options its constructor must reject. The
shared tests only read these declarations; none of them looks at an optimizer's name.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from anisoada.optim import OPTIMIZERS
from reference import optim_numpy

# A reference step: (params, grads, state, lr, options) -> (new params, new state).
ReferenceStep = Callable[[list[np.ndarray], list[np.ndarray], Any, Any, dict[str, Any]], tuple]


def _box_limits(options: dict[str, Any], w_first: np.ndarray) -> tuple[Any, Any]:
    """The box of ``options`` as NumPy bounds, ``w_first`` being the parameter's first iterate."""
    if options.get("box_radius") is not None:
        r = options["box_radius"]
        return w_first - r, w_first + r
    box = options.get("box")
    if box is None:
        return -math.inf, math.inf
    return tuple(np.asarray(b, dtype=np.float64) if torch.is_tensor(b) else b for b in box)


def _numpy_lr(lr: Any) -> Any:
    return lr.double().numpy() if torch.is_tensor(lr) else lr


def _adagrad_reference(ws, gs, state, lr, options):
    if state is None:
        v0 = options.get("initial_accumulator_value", 0.0)
        state = {"v": [np.full_like(w, v0) for w in ws], "first": [w.copy() for w in ws]}
    new_ws, new_vs = [], []
    for w, g, v, first in zip(ws, gs, state["v"], state["first"]):
        low, high = _box_limits(options, first)
        w_new, v_new = optim_numpy.adagrad_step(
            w, g, v, lr=_numpy_lr(lr), eps=options.get("eps", 1e-10),
            eps_placement=options.get("eps_placement", "outside"),
            weight_decay=options.get("weight_decay", 0.0), maximize=options.get("maximize", False),
            delayed=options.get("delayed", False), low=low, high=high,
        )  # fmt: skip
        new_ws.append(w_new)
        new_vs.append(v_new)
    return new_ws, {"v": new_vs, "first": state["first"]}


def _adagrad_norm_reference(ws, gs, state, lr, options):
    if state is None:
        v0 = options.get("initial_accumulator_value", 0.0)
        b2 = np.full(ws[0].shape[-1], v0) if options.get("per_column") else v0
        state = {"b2": b2, "first": [w.copy() for w in ws]}
    limits = [_box_limits(options, first) for first in state["first"]]
    new_ws, b2 = optim_numpy.adagrad_norm_step(
        ws, gs, state["b2"], lr=_numpy_lr(lr), eps=options.get("eps", 1e-10),
        eps_placement=options.get("eps_placement", "outside"),
        weight_decay=options.get("weight_decay", 0.0), maximize=options.get("maximize", False),
        delayed=options.get("delayed", False), per_column=options.get("per_column", False),
    )  # fmt: skip
    new_ws = [np.clip(w, low, high) for w, (low, high) in zip(new_ws, limits)]
    return new_ws, {"b2": b2, "first": state["first"]}


def _sgd_reference(ws, gs, state, lr, options):
    if state is None:
        state = {"buffers": [None] * len(ws), "first": [w.copy() for w in ws]}
    new_ws, new_buffers = [], []
    for w, g, buffer, first in zip(ws, gs, state["buffers"], state["first"]):
        low, high = _box_limits(options, first)
        w_new, b_new = optim_numpy.sgd_step(
            w, g, buffer, lr=_numpy_lr(lr), momentum=options.get("momentum", 0.0),
            dampening=options.get("dampening", 0.0), nesterov=options.get("nesterov", False),
            weight_decay=options.get("weight_decay", 0.0), maximize=options.get("maximize", False),
            low=low, high=high,
        )  # fmt: skip
        new_ws.append(w_new)
        new_buffers.append(b_new)
    return new_ws, {"buffers": new_buffers, "first": state["first"]}


@dataclass(frozen=True)
class RegistryEntry:
    """What the shared suite needs to know about one optimizer of the registry."""

    name: str
    reference: ReferenceStep
    # Options enumerated (full product) by the fast-vs-reference test.
    option_grid: dict[str, list[Any]]
    # (option, invalid value) pairs: the constructor must raise ValueError naming both.
    invalid: list[tuple[str, Any]]
    # Scalar options every grid point gets (e.g. an accumulator start that makes delayed valid).
    grid_base: dict[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> type[torch.optim.Optimizer]:
        return OPTIMIZERS[self.name]


_BOXES: list[dict[str, Any]] = [
    {},
    {"box": (-0.5, 0.4)},
    {"box": (torch.linspace(-1.0, -0.1, 3, dtype=torch.float64), 0.3)},
    {"box_radius": 0.25},
]

_COMMON_INVALID = [
    ("lr", -0.1),
    ("lr", float("nan")),
    ("weight_decay", -1.0),
    ("maximize", "yes"),
    ("kernel", "turbo"),
    ("box", (1.0, -1.0)),
    ("box", (0.0,)),
    ("box_radius", -2.0),
    ("box_radius", 0.0),
]

ENTRIES: dict[str, RegistryEntry] = {
    "adagrad": RegistryEntry(
        name="adagrad",
        reference=_adagrad_reference,
        option_grid={
            "eps_placement": ["outside", "inside"],
            "delayed": [False, True],
            "weight_decay": [0.0, 0.05],
            "maximize": [False, True],
            "box": _BOXES,
        },
        grid_base={"initial_accumulator_value": 0.3, "eps": 1e-8},
        invalid=[
            *_COMMON_INVALID,
            ("eps", -1e-8),
            ("eps_placement", "middle"),
            ("initial_accumulator_value", -0.1),
            ("delayed", 1),
        ],
    ),
    "adagrad_norm": RegistryEntry(
        name="adagrad_norm",
        reference=_adagrad_norm_reference,
        option_grid={
            "eps_placement": ["outside", "inside"],
            "delayed": [False, True],
            "weight_decay": [0.0, 0.05],
            "maximize": [False, True],
            "per_column": [False, True],
            "box": _BOXES[:2] + _BOXES[3:],
        },
        grid_base={"initial_accumulator_value": 0.3, "eps": 1e-8},
        invalid=[
            *_COMMON_INVALID,
            ("eps", float("inf")),
            ("eps_placement", None),
            ("initial_accumulator_value", -0.1),
            ("per_column", "no"),
        ],
    ),
    "sgd": RegistryEntry(
        name="sgd",
        reference=_sgd_reference,
        option_grid={
            "momentum": [0.0, 0.9],
            "nesterov": [False, True],
            "weight_decay": [0.0, 0.05],
            "maximize": [False, True],
            "box": _BOXES,
        },
        invalid=[
            *_COMMON_INVALID,
            ("momentum", 1.0),
            ("momentum", -0.5),
            ("dampening", 1.5),
            ("nesterov", "true"),
        ],
    ),
}


@dataclass(frozen=True)
class OptimizerCase:
    """One optimizer with one set of options: the unit the shared tests are parametrised by."""

    entry: RegistryEntry
    options: dict[str, Any]
    lr: float
    id: str

    def make(self, params: Any, lr: Any = None, **overrides: Any) -> torch.optim.Optimizer:
        return self.entry.cls(
            params, lr=self.lr if lr is None else lr, **{**self.options, **overrides}
        )


def grid_options(entry: RegistryEntry) -> Iterator[dict[str, Any]]:
    """Every valid combination of the entry's option grid (box dicts are merged in)."""
    keys = list(entry.option_grid)
    for values in itertools.product(*(entry.option_grid[k] for k in keys)):
        options = dict(entry.grid_base)
        for key, value in zip(keys, values):
            if isinstance(value, dict):
                options.update(value)
            else:
                options[key] = value
        try:
            entry.cls([torch.zeros(2, 3, requires_grad=True)], lr=0.1, **options)
        except ValueError:
            continue  # e.g. Nesterov without momentum: not a valid combination
        yield options


CASES: list[OptimizerCase] = [
    OptimizerCase(ENTRIES["adagrad"], {}, 0.3, "adagrad-torch-defaults"),
    OptimizerCase(
        ENTRIES["adagrad"],
        {"eps_placement": "inside", "initial_accumulator_value": 0.1, "eps": 1e-7},
        0.3,
        "adagrad-optax-convention",
    ),
    OptimizerCase(
        ENTRIES["adagrad"],
        {"delayed": True, "initial_accumulator_value": 1.0},
        0.3,
        "adagrad-delayed",
    ),
    OptimizerCase(ENTRIES["adagrad"], {"box": (-0.5, 0.4)}, 0.3, "adagrad-box"),
    OptimizerCase(ENTRIES["adagrad"], {"box_radius": 0.3}, 0.3, "adagrad-radius"),
    OptimizerCase(
        ENTRIES["adagrad"], {"weight_decay": 0.1, "maximize": True}, 0.3, "adagrad-wd-maximize"
    ),
    OptimizerCase(ENTRIES["adagrad_norm"], {}, 0.5, "adagrad_norm"),
    # A loose box: with an active constraint the group's gradient norm stays bounded away from 0,
    # b_t grows like √t and AdaGrad-Norm only converges at its O(1/√T) rate.
    OptimizerCase(
        ENTRIES["adagrad_norm"],
        {"delayed": True, "initial_accumulator_value": 100.0, "box": (-4.0, 4.0)},
        0.5,
        "adagrad_norm-delayed-loose-box",
    ),
    OptimizerCase(ENTRIES["sgd"], {}, 0.05, "sgd"),
    OptimizerCase(ENTRIES["sgd"], {"momentum": 0.9, "nesterov": True}, 0.02, "sgd-nesterov"),
    OptimizerCase(
        ENTRIES["sgd"], {"momentum": 0.5, "dampening": 0.3, "maximize": True}, 0.05, "sgd-dampening"
    ),
    OptimizerCase(
        ENTRIES["sgd"],
        {"momentum": 0.5, "weight_decay": 0.1, "box_radius": 0.3},
        0.05,
        "sgd-momentum-wd-radius",
    ),
]


def fresh_compiled_kernels(monkeypatch: Any, compile: Callable | None = None) -> Any:
    """Give ``anisoada.optim._compiled`` an empty per-process state for one test.

    Kernels built inside the test (with ``compile``, e.g. the identity to run each variant's
    single-pass formula eagerly, instead of ``torch.compile``) never reach other tests, and
    earlier failures or warnings do not hide this test's. Returns the module.
    """
    from anisoada.optim import _compiled

    monkeypatch.setattr(_compiled, "_kernels", {})
    monkeypatch.setattr(_compiled, "_failed", set())
    monkeypatch.setattr(_compiled, "_working_device_types", set())
    monkeypatch.setattr(_compiled, "_broken_device_types", set())
    monkeypatch.setattr(_compiled, "_warned", False)
    if compile is not None:
        monkeypatch.setattr(_compiled, "_compile", compile)
    return _compiled
