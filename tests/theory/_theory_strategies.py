"""Hypothesis strategies shared by the theory tests (kept small: the folder runs in seconds)."""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

# Few, reproducible examples: the properties are exact identities, so 40 draws catch a wrong formula
# while the folder stays within seconds.
THEORY_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)

# Entries spanning six orders of magnitude, strictly positive so every ratio is defined.
_entry = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)


def vectors(d: int) -> st.SearchStrategy[np.ndarray]:
    """Positive vectors of length ``d``."""
    return st.lists(_entry, min_size=d, max_size=d).map(np.array)


@st.composite
def problems(draw: st.DrawFn, max_d: int = 12) -> dict:
    """A random ``(L, sigma, L0, L1, G)`` of a common dimension with positive scalars."""
    d = draw(st.integers(min_value=1, max_value=max_d))
    return {
        "d": d,
        "L": draw(vectors(d)),
        "sigma": draw(vectors(d)),
        "L0": draw(vectors(d)),
        "L1": draw(vectors(d)),
        "G": draw(vectors(d)),
        "D_inf": draw(st.floats(min_value=1e-2, max_value=1e2)),
        "delta": draw(st.floats(min_value=1e-2, max_value=1e2)),
    }


positive_scalars = st.floats(min_value=1e-2, max_value=1e2)
schedules = st.tuples(
    st.floats(min_value=1, max_value=1e4), st.floats(min_value=1, max_value=1e6)
)  # (M, T)
