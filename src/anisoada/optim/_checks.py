"""Validation of optimizer hyperparameters: every failure names the argument and its value."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

EPS_PLACEMENTS = ("outside", "inside")


def check_nonnegative(name: str, value: float) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite number ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Invalid {name} value: {value!r} (expected a number ≥ 0)")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"Invalid {name} value: {value!r} (expected a finite number ≥ 0)")
    return float(value)


def check_unit_interval(name: str, value: float) -> float:
    """``value`` as a float, or ``ValueError`` unless 0 ≤ value < 1."""
    check_nonnegative(name, value)
    if value >= 1:
        raise ValueError(f"Invalid {name} value: {value!r} (expected 0 ≤ {name} < 1)")
    return float(value)


def check_lr(value: float | Tensor) -> float | Tensor:
    """A learning rate: a finite number ≥ 0, or a tensor whose entries all are."""
    if isinstance(value, Tensor):
        if value.is_complex() or not value.is_floating_point():
            raise ValueError(f"Invalid lr value: tensor of dtype {value.dtype} (expected floating)")
        if value.numel() and not bool(torch.isfinite(value).all() and (value >= 0).all()):
            raise ValueError(f"Invalid lr value: {value} (every entry must be a finite number ≥ 0)")
        return value
    return check_nonnegative("lr", value)


def check_sparse_lr(value: float | Tensor) -> None:
    """A sparse gradient moves only the rows it touches, by one step size: ``lr`` a scalar."""
    if isinstance(value, Tensor) and value.numel() != 1:
        raise ValueError(
            f"Invalid lr value: tensor of shape {tuple(value.shape)} with a sparse gradient "
            "(per-coordinate step sizes need dense gradients)"
        )


def check_eps_placement(value: Any) -> str:
    """``"outside"`` or ``"inside"``; anything else is a ``ValueError``."""
    if value not in EPS_PLACEMENTS:
        raise ValueError(
            f"Invalid eps_placement value: {value!r} (expected 'outside', as torch: "
            "g/(√v+ε), or 'inside', as optax: g/√(v+ε))"
        )
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` itself when it is a ``bool``; a ``ValueError`` otherwise."""
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {name} value: {value!r} (expected True or False)")
    return value


def check_kernel(value: Any, allowed: tuple[str, ...] = ("fast", "reference")) -> str:
    """One of ``allowed`` kernel names; anything else is a ``ValueError``."""
    if value not in allowed:
        raise ValueError(f"Invalid kernel value: {value!r} (expected one of {allowed})")
    return value


def check_delayed_start(delayed: bool, initial_accumulator_value: float) -> None:
    """A delayed step divides by the accumulator of *past* gradients only; it must start > 0.

    With ``v_0 = 0`` the first delayed step, and every later step of a coordinate whose gradients
    were all zero so far, would divide by ``eps`` alone and move by ``lr·g/eps``.
    """
    if delayed and initial_accumulator_value <= 0:
        raise ValueError(
            f"Invalid initial_accumulator_value value: {initial_accumulator_value!r} with "
            "delayed=True: the delayed step divides by the accumulator of past gradients v_{t-1}, "
            "so with v_0 = 0 the first step would divide by eps alone. Pass "
            "initial_accumulator_value > 0 (a prior guess of the squared gradient scale)."
        )


def check_no_zero_division(eps: float, initial_accumulator_value: float) -> None:
    """``eps = 0`` with ``v_0 = 0`` computes ``0/0`` for a coordinate that never had a gradient."""
    if eps == 0 and initial_accumulator_value == 0:
        raise ValueError(
            "Invalid eps value: 0 with initial_accumulator_value=0: a coordinate whose gradients "
            "are all zero so far would compute 0/0 = NaN. Give eps > 0 or "
            "initial_accumulator_value > 0."
        )
