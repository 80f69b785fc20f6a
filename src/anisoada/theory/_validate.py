"""Input checks shared by the theory functions: every error names the argument and its value."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def _shown(value: object) -> str:
    """A value as a user typed it: ``0.0``, not numpy's ``np.float64(0.0)``."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def real_number(name: str, value: object) -> float:
    """``value`` as a float if it is a real number (not text, not a bool), else a TypeError
    naming it (``float`` would read ``"1e4"`` and ``True`` as numbers)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {value!r} ({type(value).__name__})")
    return float(value)


def real_numbers(name: str, values: object) -> np.ndarray:
    """``values`` as a float64 array if it is a number or a list (array, Series) of real
    numbers, else a TypeError naming it (``np.asarray`` would read ``"8"`` and ``True`` as
    numbers)."""
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a list of numbers; got {type(values).__name__}")
    if hasattr(values, "__array__"):
        array = np.asarray(values)
        if array.dtype.kind not in "iuf":
            raise TypeError(f"{name} must hold numbers; got an array of {array.dtype}")
        return array.astype(np.float64)
    if isinstance(values, Sequence):
        return np.array(
            [real_number(f"each of {name}", value) for value in values], dtype=np.float64
        )
    return np.array(real_number(name, values))


def vector(name: str, value: ArrayLike) -> np.ndarray:
    """A non-empty, finite, non-negative float64 vector, or a ValueError naming ``name``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be a vector of numbers; got {_shown(value)} ({error})"
        ) from None
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D vector with one entry per coordinate; got shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{name} must have at least one entry; got an empty vector")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        j = int(bad[0])
        raise ValueError(
            f"{name} must be finite; entry {j} is {array[j]} ({bad.size} non-finite entries). "
            "Remove or re-measure those coordinates."
        )
    negative = np.flatnonzero(array < 0)
    if negative.size:
        j = int(negative[0])
        raise ValueError(
            f"{name} must be non-negative (it is a vector of per-coordinate constants); "
            f"entry {j} is {array[j]} ({negative.size} negative entries)"
        )
    return array


def same_length(reference: tuple[str, np.ndarray], *others: tuple[str, np.ndarray]) -> int:
    """The common length ``d`` of the named vectors, or a ValueError naming the mismatch."""
    ref_name, ref = reference
    for name, other in others:
        if other.shape != ref.shape:
            raise ValueError(
                f"{name} has {other.size} entries but {ref_name} has {ref.size}; "
                "both must describe the same d coordinates"
            )
    return ref.size


def vectors(**named: ArrayLike) -> list[np.ndarray]:
    """The checked vectors, in the order given; they must share one length ``d``."""
    arrays = [vector(name, value) for name, value in named.items()]
    same_length(*zip(named, arrays, strict=True))
    return arrays


def positive(name: str, value: float) -> float:
    """A finite, strictly positive float, or a ValueError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number; got {_shown(value)}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite positive number; got {_shown(value)}")
    return number


def constants(**named: float) -> None:
    """Each absolute constant must be finite and positive (a ValueError names the first bad one)."""
    for name, value in named.items():
        positive(name, value)


def schedule(M: float, T: float | None, N: float | None) -> tuple[float, float]:
    """Batch size and iteration count ``(M, T)`` from ``M`` and exactly one of ``T`` or ``N = M·T``.

    Both may be real numbers (the bounds are smooth in them); each must be at least 1, so a sample
    budget smaller than the batch size is an error rather than a fraction of an iteration.
    """
    M = positive("M", M)
    if M < 1:
        raise ValueError(f"M (batch size) must be at least 1; got {_shown(M)}")
    if (T is None) == (N is None):
        raise ValueError(
            "give exactly one of T (iterations) and N (sample budget, N = M·T); "
            f"got T={_shown(T)}, N={_shown(N)}"
        )
    if T is not None:
        T = positive("T", T)
        if T < 1:
            raise ValueError(f"T (iterations) must be at least 1; got {_shown(T)}")
        return M, T
    assert N is not None  # exactly one of T and N (checked above)
    N = positive("N", N)
    if M > N:
        raise ValueError(
            f"batch size M={M:g} exceeds the sample budget N={N:g}; need M ≤ N so that at "
            "least one iteration is run"
        )
    return M, N / M


def scalars(
    scale: tuple[str, float], M: float, T: float | None, N: float | None, **named: float
) -> tuple[float, float, float]:
    """The checked ``D`` or ``Δ`` (``scale`` is its name and value) and ``(M, T)``; the absolute
    constants ``named`` are checked too."""
    value = positive(*scale)
    M, T = schedule(M, T, N)
    constants(**named)
    return value, M, T


def diameters(D_inf: float, D_2: float | None, d: int) -> tuple[float, float]:
    """``(D_∞, D_2)`` with ``D_2`` defaulting to ``√d·D_∞`` (a box) and checked for consistency.

    Every set satisfies ``D_∞ ≤ D_2 ≤ √d·D_∞``; a pair outside that range cannot describe one
    feasible set, which almost always means the two were measured in different units.
    """
    D_inf = positive("D_inf", D_inf)
    if D_2 is None:
        return D_inf, math.sqrt(d) * D_inf
    D_2 = positive("D_2", D_2)
    upper = math.sqrt(d) * D_inf
    slack = 1e-12 * upper
    if not D_inf - slack <= D_2 <= upper + slack:
        raise ValueError(
            f"D_2={D_2:g} is inconsistent with D_inf={D_inf:g} in d={d} dimensions: every set "
            f"has D_inf ≤ D_2 ≤ √d·D_inf = {upper:g}"
        )
    return D_inf, D_2


def batch_sizes(values: Sequence[float] | np.ndarray, budget: float) -> np.ndarray:
    """Batch sizes as floats in ``[1, budget]``, or a ValueError naming the offending one."""
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"batch_sizes must be a non-empty list of numbers; got {_shown(values)}")
    for M in array:
        if not math.isfinite(M) or M < 1:
            raise ValueError(f"batch_sizes must be numbers ≥ 1; got {_shown(M)}")
        if budget < M:
            raise ValueError(
                f"batch size {M:g} in batch_sizes exceeds the sample budget {budget:g}; "
                "each batch size must be at most the budget (at least one iteration)"
            )
    return array
