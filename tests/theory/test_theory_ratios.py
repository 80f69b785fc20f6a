"""Anisotropy ratios: ranges, extremes, and agreement with the ratio of the bounds themselves."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from _theory_strategies import THEORY_SETTINGS, problems, schedules
from hypothesis import given
from hypothesis import strategies as st

from anisoada.theory import ratios as ratios_module
from anisoada.theory.bounds import (
    convex_adagrad_bound,
    convex_sgd_bound,
    nonconvex_adagrad_bound,
    nonconvex_sgd_bound,
)
from anisoada.theory.ratios import rho_D, rho_L, rho_sigma, term_ratios


def test_docstring_examples_hold():
    result = doctest.testmod(ratios_module)
    assert result.attempted >= 4 and result.failed == 0


@THEORY_SETTINGS
@given(p=problems(max_d=40), D_fraction=st.floats(0.0, 1.0))
def test_ratios_lie_in_their_ranges(p, D_fraction):
    d = p["d"]
    tol = 1e-12
    assert 1 / d - tol <= rho_L(p["L"]) <= 1 + tol
    assert 1 / math.sqrt(d) - tol <= rho_sigma(p["sigma"]) <= 1 + tol
    # Any D_2 between D_∞ and √d·D_∞ describes some set.
    D_2 = p["D_inf"] * (1 + D_fraction * (math.sqrt(d) - 1))
    assert 1 / math.sqrt(d) - tol <= rho_D(p["D_inf"], D_2, d) <= 1 + tol
    nonconvex = term_ratios(p["L"], p["sigma"], setting="nonconvex")
    assert 1 / math.sqrt(d) - tol <= nonconvex.bias <= 1 + tol
    assert 1 / math.sqrt(d) - tol <= nonconvex.noise <= 1 + tol
    box = term_ratios(p["L"], p["sigma"], setting="convex", D_inf=p["D_inf"])
    assert 1 / d - tol <= box.bias <= 1 + tol
    assert 1 / math.sqrt(d) - tol <= box.noise <= 1 + tol


@pytest.mark.parametrize("d", [1, 2, 7, 100])
def test_extremes(d):
    spike = np.zeros(d)
    spike[0] = 3.0
    assert rho_L(spike) == pytest.approx(1 / d)
    assert rho_sigma(spike) == pytest.approx(1 / math.sqrt(d))
    assert rho_L(np.full(d, 2.5)) == pytest.approx(1.0)
    assert rho_sigma(np.full(d, 0.1)) == pytest.approx(1.0)
    assert rho_D(2.0, 2.0 * math.sqrt(d), d) == pytest.approx(1.0)
    assert rho_D(2.0, 2.0, d) == pytest.approx(1 / math.sqrt(d))


@THEORY_SETTINGS
@given(p=problems(), D_fraction=st.floats(0.0, 1.0))
def test_term_ratios_match_the_paper_identities(p, D_fraction):
    """convex: ρ_L/ρ_D², ρ_σ/ρ_D; nonconvex: √ρ_L, (ρ_L ρ_σ²)^{1/4}."""
    d, L, s = p["d"], p["L"], p["sigma"]
    D_2 = p["D_inf"] * (1 + D_fraction * (math.sqrt(d) - 1))
    rL, rs, rD = rho_L(L), rho_sigma(s), rho_D(p["D_inf"], D_2, d)
    convex = term_ratios(L, s, setting="convex", D_inf=p["D_inf"], D_2=D_2)
    assert convex.bias == pytest.approx(rL / rD**2, rel=1e-9)
    assert convex.noise == pytest.approx(rs / rD, rel=1e-9)
    nonconvex = term_ratios(L, s, setting="nonconvex")
    assert nonconvex.bias == pytest.approx(math.sqrt(rL), rel=1e-9)
    assert nonconvex.noise == pytest.approx((rL * rs**2) ** 0.25, rel=1e-9)


@THEORY_SETTINGS
@given(p=problems(), schedule=schedules, lam_fraction=st.floats(0.01, 1.0))
def test_term_ratios_are_the_ratios_of_the_bound_terms(p, schedule, lam_fraction):
    M, T = schedule
    L, s, D_inf, delta = p["L"], p["sigma"], p["D_inf"], p["delta"]
    D_2 = 0.5 * (D_inf + math.sqrt(p["d"]) * D_inf)
    lam = lam_fraction * float(L.max())
    for lambda_max in (None, lam):
        r = term_ratios(L, s, setting="convex", D_inf=D_inf, D_2=D_2, lambda_max=lambda_max)
        ada = convex_adagrad_bound(L, s, D_inf=D_inf, M=M, T=T)
        sgd = convex_sgd_bound(L, s, D_2=D_2, M=M, T=T, lambda_max=lambda_max)
        assert r.bias == pytest.approx(ada.bias / sgd.bias, rel=1e-9)
        assert r.noise == pytest.approx(ada.noise / sgd.noise, rel=1e-9)
        assert r.smoothness == sgd.smoothness
        r = term_ratios(L, s, setting="nonconvex", lambda_max=lambda_max)
        ada = nonconvex_adagrad_bound(L, s, delta=delta, M=M, T=T)
        sgd = nonconvex_sgd_bound(L, s, delta=delta, M=M, T=T, lambda_max=lambda_max)
        assert r.bias == pytest.approx(ada.bias / sgd.bias, rel=1e-9)
        assert r.noise == pytest.approx(ada.noise / sgd.noise, rel=1e-9)


def test_lambda_max_makes_the_comparison_harder():
    # One dominant coordinate: ‖L‖_∞ = 10, but the measured ℓ2 constant is only 2.
    L, s = [10.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]
    paper = term_ratios(L, s, setting="convex", D_inf=1.0)
    measured = term_ratios(L, s, setting="convex", D_inf=1.0, lambda_max=2.0)
    assert paper.bias == pytest.approx(13 / 40)
    assert measured.bias == pytest.approx(13 / 8)  # AdaGrad's bias term is now the larger one
    assert (paper.smoothness, measured.smoothness) == ("‖L‖_∞", "λ_max")


def test_zero_noise_has_undefined_noise_ratio():
    r = term_ratios([1.0, 2.0], [0.0, 0.0], setting="nonconvex")
    assert r.bias == pytest.approx(math.sqrt(3 / 4)) and math.isnan(r.noise)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rho_L([0.0, 0.0]), "rho_L is undefined for L = 0"),
        (lambda: rho_L([1.0, -1.0]), "L must be non-negative"),
        (lambda: rho_sigma([0.0]), "rho_sigma is undefined for sigma = 0"),
        (lambda: rho_D(1.0, 3.0, 4), "D_2=3 is inconsistent with D_inf=1 in d=4"),
        (lambda: rho_D(1.0, 0.5, 4), "D_2=0.5 is inconsistent"),
        (lambda: rho_D(1.0, 1.0, 0), "d must be a positive integer"),
        (lambda: rho_D(1.0, 1.0, 2.5), "d must be a positive integer"),
        (lambda: term_ratios([1.0], [1.0], setting="convex"), "D_inf is required"),
        (lambda: term_ratios([1.0], [1.0], setting="strongly"), "setting must be"),
        (lambda: term_ratios([0.0], [1.0], setting="nonconvex"), "L = 0"),
        (lambda: term_ratios([1.0], [1.0, 2.0], setting="nonconvex"), "sigma has 2 entries"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)
