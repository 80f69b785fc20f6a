"""Affine (L0, L1) envelopes: planted recovery, LP reference, coverage guarantee."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.stats import norm

from anisoada.measure import envelope_objective, fit_envelope, fit_envelopes


def _linprog_envelope(x, y, coverage):
    """The same objective as an explicit LP over (L0, L1, u_1..u_n), solved by HiGHS."""
    n = x.size
    if coverage >= 1.0:
        result = linprog(
            [1.0, x.mean()],
            A_ub=np.stack([-np.ones(n), -x], 1),
            b_ub=-y,
            bounds=[(0, None)] * 2,
            method="highs",
        )
    else:
        penalty = 1.0 / (n * (1.0 - coverage))
        A = sp.hstack([-np.ones((n, 1)), -x[:, None], -sp.eye(n)]).tocsr()
        result = linprog(
            np.concatenate([[1.0, x.mean()], np.full(n, penalty)]),
            A_ub=A,
            b_ub=-y,
            bounds=[(0, None)] * (n + 2),
            method="highs",
        )
    assert result.status == 0
    return result.x[0], result.x[1], result.fun


def test_full_coverage_recovers_a_planted_line_exactly():
    rng = np.random.default_rng(0)
    x = np.concatenate([[0.0, 10.0], rng.uniform(0, 10, 500)])
    line = 0.7 + 3.0 * x
    y = line * np.concatenate([[1.0, 1.0], rng.uniform(0, 1, 500)])  # both ends on the line
    fit = fit_envelope(x, y, coverage=1.0)
    np.testing.assert_allclose([fit.L0, fit.L1], [0.7, 3.0], rtol=1e-9)
    assert fit.covered_fraction == 1.0 and fit.n_points == 502
    assert fit(2.0) == pytest.approx(6.7)


@pytest.mark.parametrize("coverage", [0.5, 0.9])
def test_quantile_envelope_recovers_planted_L0_L1(coverage):
    # y = (L0 + L1 x)·exp(ε) with P(ε ≤ 0) = coverage: the line is the conditional quantile.
    rng = np.random.default_rng(1)
    n = 20_000
    x = 10 ** rng.uniform(-3, 1, n)
    epsilon = rng.normal(0, 0.5, n) - 0.5 * norm.ppf(coverage)
    y = (0.2 + 5.0 * x) * np.exp(epsilon)
    fit = fit_envelope(x, y, coverage=coverage)
    np.testing.assert_allclose([fit.L0, fit.L1], [0.2, 5.0], rtol=0.05)
    assert fit.covered_fraction >= coverage
    assert fit.covered_fraction == pytest.approx(coverage, abs=0.01)


@pytest.mark.parametrize("coverage", [1.0, 0.99, 0.8, 0.3])
def test_matches_the_linear_programme(coverage):
    rng = np.random.default_rng(int(coverage * 100))
    x = 10 ** rng.uniform(-4, 1, 400)
    y = (0.3 + 2.0 * x) * np.exp(rng.normal(0, 1.0, 400))
    fit = fit_envelope(x, y, coverage=coverage)
    L0, L1, optimum = _linprog_envelope(x, y, coverage)
    assert fit.objective == pytest.approx(optimum, rel=1e-9)
    assert envelope_objective(x, y, fit.L0, fit.L1, coverage=coverage) == pytest.approx(
        optimum, rel=1e-9
    )
    np.testing.assert_allclose([fit.L0, fit.L1], [L0, L1], rtol=1e-6, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    points=st.lists(st.tuples(st.floats(0, 1e3), st.floats(0, 1e3)), min_size=1, max_size=60),
    coverage=st.floats(0.05, 1.0),
)
@example(points=[(1.0, 5e-324)], coverage=1.0)  # a slope floor that underflows to 0
def test_coverage_is_always_at_least_the_target(points, coverage):
    x, y = np.array(points).T
    fit = fit_envelope(x, y, coverage=coverage)
    assert fit.L0 >= 0 and fit.L1 >= 0
    assert fit.covered_fraction >= coverage - 1e-12
    assert np.mean(y - fit.L1 * x <= fit.L0) == fit.covered_fraction


def test_non_finite_points_are_dropped_and_bad_input_rejected():
    fit = fit_envelope([1.0, np.nan, 2.0, 3.0], [2.0, 1.0, np.inf, 6.0], coverage=1.0)
    assert (fit.n_points, fit.n_dropped) == (2, 2)
    np.testing.assert_allclose([fit.L0, fit.L1], [0.0, 2.0], atol=1e-12)
    with pytest.raises(ValueError, match="Invalid coverage"):
        fit_envelope([1.0], [1.0], coverage=0.0)
    with pytest.raises(ValueError, match="non-negative"):
        fit_envelope([1.0], [-1.0])
    with pytest.raises(ValueError, match="no finite"):
        fit_envelope([np.nan], [1.0])


def test_per_group_and_pooled_envelopes():
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, 600)
    groups = np.repeat([0, 1, 2], 200)
    y = np.where(groups == 0, 1.0 + 2.0 * x, np.where(groups == 1, 0.1 + 20.0 * x, 5.0))
    y = y * rng.uniform(0.5, 1.0, 600)
    x[[0, 200, 400]], y[[0, 200, 400]] = 0.0, [1.0, 0.1, 5.0]  # pin the intercepts
    x[[1, 201]] = 1.0
    y[[1, 201]] = [3.0, 20.1]
    fits = fit_envelopes(x, y, groups, names=["a", "b", "c"], coverage=1.0)
    planted = {"a": (1.0, 2.0), "b": (0.1, 20.0), "c": (5.0, 0.0)}
    for name, (L0, L1) in planted.items():
        np.testing.assert_allclose([fits[name].L0, fits[name].L1], [L0, L1], rtol=1e-9, atol=1e-9)
    assert fits["pooled"].n_points == 600 and fits["pooled"].covered_fraction == 1.0
