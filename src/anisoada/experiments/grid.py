"""Learning-rate grids and the one rule that extends them at an edge.

A grid is a geometric progression of learning rates. Most grids are log-spaced lattices
``10^(k / per_decade)`` for integers ``k`` in ``[low, high]``; a grid may also be an explicit
list. **The extension rule** (the same for every run kind): when the selected learning rate is
the smallest or the largest tried (or every rate diverged), the next ``extension_points`` values
of the grid's own progression beyond that edge are tried, at most ``max_extensions`` times per
(problem, optimizer, batch size). Lattice values are computed from the integer ``k``, so the same
rate is the same float in every run and every round; an explicit list continues with the ratio
of its two values nearest that edge. A grid with ``extend_at_edges`` off is extended only when
no rate can be selected (every one diverged or was unstable): a bracket of rates chosen on
purpose, where an edge is no sign of a missed optimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_GRID_RATES", "LRGrid"]

#: The most learning rates a grid may hold, and the most one extension may add: far beyond any
#: useful sweep, and small enough that a typo (``per_decade = 100000``) is refused at once
#: instead of building billions of rates until memory runs out.
MAX_GRID_RATES = 10_000


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"lr grid {name} must be a number; got {value!r}")
    return float(value)


def _count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"lr grid {name} must be an integer >= {minimum}; got {value!r}")
    return value


@dataclass(frozen=True)
class LRGrid:
    """A geometric learning-rate grid and how far it may be extended (see the module docstring).

    Args:
        low, high: The lattice's range (inclusive); ignored when ``values`` is given.
        per_decade: Lattice points per factor of 10.
        max_extensions: Extensions allowed per (problem, optimizer, batch size).
        extension_points: Values added per extension (default ``per_decade``: one decade).
        values: An explicit ascending list of rates instead of the lattice.
        extend_at_edges: Extend where the selected rate is at an edge (the default), or only
            where no rate could be selected (downwards).

    Example:
        >>> LRGrid(low=0.01, high=1.0, per_decade=2).values()
        (0.01, 0.0316..., 0.1, 0.316..., 1.0)
        >>> LRGrid(low=0.01, high=1.0, per_decade=2).extension([0.01, 1.0], "up")
        (3.16..., 10.0)
    """

    low: float = 1e-3
    high: float = 1e1
    per_decade: int = 2
    max_extensions: int = 2
    extension_points: int | None = None
    values_: tuple[float, ...] = ()
    extend_at_edges: bool = True

    def __post_init__(self) -> None:
        _count(self.per_decade, "per_decade", 1)
        _count(self.max_extensions, "max_extensions", 0)
        if not isinstance(self.extend_at_edges, bool):
            raise ValueError(
                f"lr grid extend_at_edges must be true or false; got {self.extend_at_edges!r}"
            )
        if self.extension_points is not None:
            _count(self.extension_points, "extension_points", 1)
        if self.values_:
            self._check_values()
        else:
            self._check_lattice()
        if self.points_per_extension > MAX_GRID_RATES:
            field = "extension_points" if self.extension_points is not None else "per_decade"
            raise ValueError(
                f"lr grid extensions would add {self.points_per_extension} rates each, more than "
                f"{MAX_GRID_RATES}; lower {field}"
            )

    def _check_values(self) -> None:
        """An explicit list: at most :data:`MAX_GRID_RATES` distinct positive rates, ascending."""
        if len(self.values_) > MAX_GRID_RATES:
            raise ValueError(
                f"lr grid values hold {len(self.values_)} rates, more than {MAX_GRID_RATES}; "
                "give fewer values"
            )
        rates = [_number(v, "values") for v in self.values_]
        if any(not (math.isfinite(v) and v > 0) for v in rates):
            raise ValueError(f"lr grid values must be positive and finite; got {rates}")
        if sorted(set(rates)) != rates:
            raise ValueError(f"lr grid values must be distinct and ascending; got {rates}")
        object.__setattr__(self, "values_", tuple(rates))

    def _check_lattice(self) -> None:
        """A lattice: ``0 < low <= high < inf`` holding 1 to :data:`MAX_GRID_RATES` rates,
        counted before any is listed."""
        low, high = _number(self.low, "low"), _number(self.high, "high")
        if not (0 < low <= high) or not math.isfinite(high):
            raise ValueError(f"lr grid needs 0 < low <= high < inf; got low={low}, high={high}")
        first, last = self._exponent_range()
        if last < first:
            raise ValueError(
                f"lr grid [{low}, {high}] with {self.per_decade} per decade is empty; widen it"
            )
        if last - first + 1 > MAX_GRID_RATES:
            raise ValueError(
                f"lr grid [{low:g}, {high:g}] with {self.per_decade} per decade holds "
                f"{last - first + 1} rates, more than {MAX_GRID_RATES}; lower per_decade or "
                "narrow low/high"
            )

    @classmethod
    def explicit(
        cls,
        values: Sequence[float],
        *,
        max_extensions: int = 0,
        extension_points: int = 1,
        extend_at_edges: bool = True,
    ) -> LRGrid:
        """A grid of the given rates (sorted), extended by their own ratio at the edges."""
        rates = sorted(_number(v, "values") for v in values)
        if not rates:
            raise ValueError("an explicit lr grid needs at least one value")
        return cls(
            max_extensions=max_extensions,
            extension_points=extension_points,
            values_=tuple(rates),
            extend_at_edges=extend_at_edges,
        )

    @property
    def points_per_extension(self) -> int:
        """Values added by one extension."""
        return self.extension_points or self.per_decade

    def _exponent_range(self) -> tuple[int, int]:
        """The first and last ``k`` of the lattice (counted before any is listed)."""
        first = math.ceil(round(math.log10(self.low) * self.per_decade, 9))
        last = math.floor(round(math.log10(self.high) * self.per_decade, 9))
        return first, last

    def exponents(self) -> tuple[int, ...]:
        """The integers ``k`` of the lattice."""
        first, last = self._exponent_range()
        return tuple(range(first, last + 1))

    def value(self, exponent: int) -> float:
        """``10^(k / per_decade)``."""
        return float(10.0 ** (exponent / self.per_decade))

    def values(self) -> tuple[float, ...]:
        """The learning rates of the grid, ascending."""
        if self.values_:
            return self.values_
        return tuple(self.value(k) for k in self.exponents())

    def extension(self, tried: Sequence[float], direction: str) -> tuple[float, ...]:
        """The rates one extension adds beyond the ``"up"`` or ``"down"`` edge of ``tried``."""
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down'; got {direction!r}")
        rates = sorted(tried)
        count = self.points_per_extension
        if not self.values_:
            exponents = [round(math.log10(lr) * self.per_decade) for lr in rates]
            if direction == "up":
                return tuple(
                    self.value(k) for k in range(exponents[-1] + 1, exponents[-1] + 1 + count)
                )
            return tuple(self.value(k) for k in range(exponents[0] - count, exponents[0]))
        if len(rates) < 2:
            return ()
        if direction == "up":
            ratio = rates[-1] / rates[-2]
            return tuple(rates[-1] * ratio**i for i in range(1, count + 1))
        ratio = rates[1] / rates[0]
        return tuple(rates[0] / ratio**i for i in range(count, 0, -1))

    def next_extension(
        self, best_lr: float, tried: Sequence[float], done: int
    ) -> tuple[str, tuple[float, ...]] | None:
        """The extension the rule calls for, given the selected rate (NaN: all diverged).

        Returns ``(direction, new rates)``, or ``None`` when the best rate is inside the tried
        range or no extension is left.
        """
        if done >= self.max_extensions or not tried:
            return None
        if not self.extend_at_edges and not math.isnan(best_lr):
            return None
        if math.isnan(best_lr) or best_lr == min(tried):
            direction = "down"
        elif best_lr == max(tried):
            direction = "up"
        else:
            return None
        added = self.extension(tried, direction)
        return (direction, added) if added else None

    def to_dict(self) -> dict[str, Any]:
        """The TOML form of an ``[lr_grid]`` table."""
        payload: dict[str, Any] = {"max_extensions": self.max_extensions}
        if self.values_:
            payload["values"] = list(self.values_)
        else:
            payload.update(low=self.low, high=self.high, per_decade=self.per_decade)
        if self.extension_points is not None:
            payload["extension_points"] = self.extension_points
        if not self.extend_at_edges:
            payload["extend_at_edges"] = False
        return payload

    @classmethod
    def from_dict(cls, table: Any, where: str = "[lr_grid]") -> LRGrid:
        """Inverse of :meth:`to_dict`, with one-line errors naming ``where``."""
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table; got {table!r}")
        known = {
            "low", "high", "per_decade", "max_extensions", "extension_points", "values",
            "extend_at_edges",
        }  # fmt: skip
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(known)}")
        fields = dict(table)
        values = fields.pop("values", None)
        try:
            if values is not None:
                if not isinstance(values, list) or not values:
                    raise ValueError(f"values must be a non-empty list; got {values!r}")
                if set(fields) & {"low", "high", "per_decade"}:
                    raise ValueError("give either values or low/high/per_decade, not both")
                return cls.explicit(
                    values,
                    max_extensions=fields.get("max_extensions", 0),
                    extension_points=fields.get("extension_points", 1),
                    extend_at_edges=fields.get("extend_at_edges", True),
                )
            return cls(**fields)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
