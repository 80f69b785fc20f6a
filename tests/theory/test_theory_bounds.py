"""The bound functions: hand-computed values, limits, monotonicity, homogeneity, batch-size laws."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from _theory_strategies import THEORY_SETTINGS, positive_scalars, problems, schedules
from hypothesis import given
from hypothesis import strategies as st

from anisoada.theory import bounds as bounds_module
from anisoada.theory.bounds import (
    Bound,
    convex_adagrad_bound,
    convex_adagrad_norm_bound,
    convex_sgd_bound,
    generalized_adagrad_bound,
    nonconvex_adagrad_bound,
    nonconvex_adagrad_norm_bound,
    nonconvex_sgd_bound,
    nonsmooth_adagrad_bound,
)

REL = 1e-10  # the formulas are a handful of float operations; agreement is to rounding


def _evaluate(name: str, p: dict, M: float, T: float | None = None, N: float | None = None):
    """Every bound by name, on a problem drawn by ``problems()``, with D_2 = √d·D_∞ (a box)."""
    D_2 = math.sqrt(p["d"]) * p["D_inf"]
    L, s, delta = p["L"], p["sigma"], p["delta"]
    calls = {
        "convex_adagrad": lambda: convex_adagrad_bound(L, s, D_inf=p["D_inf"], M=M, T=T, N=N),
        "convex_sgd": lambda: convex_sgd_bound(L, s, D_2=D_2, M=M, T=T, N=N),
        "convex_adagrad_norm": lambda: convex_adagrad_norm_bound(L, s, D_2=D_2, M=M, T=T, N=N),
        "nonconvex_adagrad": lambda: nonconvex_adagrad_bound(L, s, delta=delta, M=M, T=T, N=N),
        "nonconvex_sgd": lambda: nonconvex_sgd_bound(L, s, delta=delta, M=M, T=T, N=N),
        "nonconvex_adagrad_norm": lambda: nonconvex_adagrad_norm_bound(
            L, s, delta=delta, M=M, T=T, N=N
        ),
        "generalized_adagrad": lambda: generalized_adagrad_bound(
            p["L0"], p["L1"], s, delta=delta, M=M, T=T, N=N
        ),
        "nonsmooth_adagrad": lambda: nonsmooth_adagrad_bound(
            p["G"], D_inf=p["D_inf"], M=M, T=T, N=N
        ),
    }
    return calls[name]()


ALL_BOUNDS = (
    "convex_adagrad",
    "convex_sgd",
    "convex_adagrad_norm",
    "nonconvex_adagrad",
    "nonconvex_sgd",
    "nonconvex_adagrad_norm",
    "generalized_adagrad",
    "nonsmooth_adagrad",
)


def test_docstring_examples_hold():
    result = doctest.testmod(bounds_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10 and result.failed == 0


# ---- closed-form values at hand-computed points ------------------------------------------------


def test_convex_adagrad_hand_computed():
    # ‖L‖_1 = 6, ‖σ‖_1 = 3, D_∞ = 0.5, M = 9, T = 4: bias 6·0.25/4, noise 3·0.5/√36.
    b = convex_adagrad_bound([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], D_inf=0.5, M=9, T=4)
    assert b.bias == pytest.approx(0.375, rel=REL)
    assert b.noise == pytest.approx(0.25, rel=REL)
    assert b.total == pytest.approx(0.625, rel=REL)
    assert b.samples == 36 and b.step_size == 0.5 and b.dominant == "bias"
    assert (b.method, b.setting, b.smoothness) == ("adagrad", "convex", "‖L‖_1")


def test_convex_sgd_hand_computed_with_both_smoothness_constants():
    # ‖L‖_∞ = 3, ‖σ‖_2 = √5, D_2 = 2, M = 5, T = 20.
    b = convex_sgd_bound([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], D_2=2.0, M=5, T=20)
    assert b.bias == pytest.approx(3 * 4 / 20, rel=REL)
    assert b.noise == pytest.approx(math.sqrt(5) * 2 / 10, rel=REL)
    assert b.smoothness == "‖L‖_∞"
    # η = min(1/ℓ, D_2·√M/(‖σ‖_2·√T)) = min(1/3, 2·√5/(√5·√20)) = 1/3.
    assert b.step_size == pytest.approx(1 / 3, rel=REL)
    measured = convex_sgd_bound(
        [1.0, 2.0, 3.0], [0.0, 1.0, 2.0], D_2=2.0, M=5, T=20, lambda_max=0.5
    )
    assert measured.bias == pytest.approx(0.5 * 4 / 20, rel=REL)
    assert measured.noise == b.noise
    assert measured.smoothness == "λ_max" and "λ_max" in measured.theorem


def test_convex_adagrad_norm_matches_sgd_form():
    kwargs = {"D_2": 3.0, "M": 7, "N": 700}
    sgd = convex_sgd_bound([2.0, 5.0], [1.0, 4.0], **kwargs)
    norm = convex_adagrad_norm_bound([2.0, 5.0], [1.0, 4.0], **kwargs)
    assert (norm.bias, norm.noise) == (sgd.bias, sgd.noise)
    assert norm.method == "adagrad_norm" and norm.step_size == 3.0


def test_nonconvex_hand_computed():
    # AdaGrad: ‖L‖_1 = 8, ‖σ‖_1 = 4, Δ = 2, M = 4, T = 4: √(16/4) = 2, (2·8·16/16)^{1/4} = 2.
    a = nonconvex_adagrad_bound([2.0, 2.0, 4.0], [1.0, 1.0, 2.0], delta=2.0, M=4, T=4)
    assert (a.bias, a.noise) == pytest.approx((2.0, 2.0), rel=REL)
    assert a.step_size == pytest.approx(0.5, rel=REL)  # √(Δ/‖L‖_1)
    # SGD: d = 3, ‖L‖_∞ = 4, ‖σ‖_2² = 6: √(3·2·4/4) = √6, (9·2·4·6/16)^{1/4} = 27^{1/4}.
    s = nonconvex_sgd_bound([2.0, 2.0, 4.0], [1.0, 1.0, 2.0], delta=2.0, M=4, T=4)
    assert s.bias == pytest.approx(math.sqrt(6), rel=REL)
    assert s.noise == pytest.approx(27**0.25, rel=REL)
    n = nonconvex_adagrad_norm_bound([2.0, 2.0, 4.0], [1.0, 1.0, 2.0], delta=2.0, M=4, T=4)
    assert (n.bias, n.noise) == (s.bias, s.noise)
    assert n.step_size == pytest.approx(math.sqrt(2 / 4), rel=REL)


def test_generalized_hand_computed_and_ceiling():
    # ‖L0‖_1 = 2, ‖L1‖_∞ = 0.25, ‖σ‖_1 = 2, Δ = 8, M = 1, T = 16.
    b = generalized_adagrad_bound([1.0, 1.0], [0.25, 0.125], [1.0, 1.0], delta=8.0, M=1, T=16)
    l0_bias, l0_noise = math.sqrt(8 * 2 / 16), (8 * 2 * 4 / 16) ** 0.25
    l1_bias, l1_noise = 8 * 0.25 / 4, math.sqrt(8 * 0.25 * 2 / 4)
    assert b.bias == pytest.approx(l0_bias + l1_bias, rel=REL)
    assert b.noise == pytest.approx(l0_noise + l1_noise, rel=REL)
    assert b.l1_term == pytest.approx(l1_bias + l1_noise, rel=REL)
    assert b.step_size_ceiling == pytest.approx(4.0, rel=REL)
    # The unconstrained tuning √(Δ/‖L0‖_1) = 2 is below the ceiling 4, so it is used.
    assert b.step_size == pytest.approx(2.0, rel=REL)
    tight = generalized_adagrad_bound([1.0, 1.0], [2.0, 0.0], [1.0, 1.0], delta=8.0, M=1, T=16)
    assert tight.step_size == pytest.approx(0.5, rel=REL)  # capped at 1/‖L1‖_∞
    assert "[recon]" in b.theorem


def test_nonsmooth_hand_computed():
    b = nonsmooth_adagrad_bound([1.0, 2.0, 1.0], D_inf=3.0, M=4, N=400)
    assert b.bias == pytest.approx(3 * 4 / 10, rel=REL)
    assert b.noise == 0 and b.critical_batch_size == 0 and b.dominant == "bias"


# ---- limits and special cases ------------------------------------------------------------------


@THEORY_SETTINGS
@given(
    d=st.integers(1, 50),
    c=positive_scalars,
    s=positive_scalars,
    D_inf=positive_scalars,
    delta=positive_scalars,
    schedule=schedules,
)
def test_isotropic_inputs_make_adagrad_and_sgd_coincide(d, c, s, D_inf, delta, schedule):
    """L = c·1, σ = s·1 and a box: ‖L‖_1 D_∞² = ‖L‖_∞ D_2², ‖σ‖_1 D_∞ = ‖σ‖_2 D_2, and so on."""
    M, T = schedule
    L, sigma = np.full(d, c), np.full(d, s)
    ada = convex_adagrad_bound(L, sigma, D_inf=D_inf, M=M, T=T)
    sgd = convex_sgd_bound(L, sigma, D_2=math.sqrt(d) * D_inf, M=M, T=T)
    assert ada.bias == pytest.approx(sgd.bias, rel=1e-9)
    assert ada.noise == pytest.approx(sgd.noise, rel=1e-9)
    ada = nonconvex_adagrad_bound(L, sigma, delta=delta, M=M, T=T)
    sgd = nonconvex_sgd_bound(L, sigma, delta=delta, M=M, T=T)
    assert ada.bias == pytest.approx(sgd.bias, rel=1e-9)
    assert ada.noise == pytest.approx(sgd.noise, rel=1e-9)
    # Isotropic values reduce AdaGrad's bound to the scalar bound with the dimension factor d.
    assert ada.bias == pytest.approx(math.sqrt(d * c * delta / T), rel=1e-9)


@THEORY_SETTINGS
@given(p=problems(), schedule=schedules)
def test_adagrad_never_worse_than_sgd_on_a_box(p, schedule):
    """With equal constants each AdaGrad term is at most SGD's (ratios ρ ≤ 1)."""
    M, T = schedule
    for setting in ("convex", "nonconvex"):
        ada = _evaluate(f"{setting}_adagrad", p, M, T=T)
        sgd = _evaluate(f"{setting}_sgd", p, M, T=T)
        assert ada.bias <= sgd.bias * (1 + 1e-12)
        assert ada.noise <= sgd.noise * (1 + 1e-12)


@THEORY_SETTINGS
@given(p=problems(), schedule=schedules)
def test_generalized_with_zero_l1_is_theorem_4_3(p, schedule):
    M, T = schedule
    gen = generalized_adagrad_bound(
        p["L0"], np.zeros(p["d"]), p["sigma"], delta=p["delta"], M=M, T=T
    )
    plain = nonconvex_adagrad_bound(p["L0"], p["sigma"], delta=p["delta"], M=M, T=T)
    assert (gen.bias, gen.noise, gen.l1_term) == (plain.bias, plain.noise, 0.0)
    assert gen.step_size_ceiling == math.inf and gen.step_size == plain.step_size


def test_noiseless_bounds_are_bias_only():
    for b in (
        convex_adagrad_bound([1.0, 2.0], [0.0, 0.0], D_inf=1.0, M=2, T=10),
        nonconvex_sgd_bound([1.0, 2.0], [0.0, 0.0], delta=1.0, M=2, T=10),
    ):
        assert b.noise == 0 and b.total == b.bias > 0
        assert b.critical_batch_size == 0.0


def test_zero_smoothness_gives_infinite_critical_batch_and_step():
    b = convex_sgd_bound([0.0, 0.0], [1.0, 1.0], D_2=1.0, M=1, N=100)
    assert b.bias == 0 and b.critical_batch_size == math.inf
    assert b.step_size == pytest.approx(1.0 * 1 / (math.sqrt(2) * 10), rel=REL)


# ---- monotonicity ------------------------------------------------------------------------------


@THEORY_SETTINGS
@given(p=problems(), schedule=schedules, factor=st.floats(1.01, 100.0))
def test_bounds_decrease_in_iterations_and_samples(p, schedule, factor):
    M, T = schedule
    for name in ALL_BOUNDS:
        shorter, longer = _evaluate(name, p, M, T=T), _evaluate(name, p, M, T=T * factor)
        assert longer.total < shorter.total, name
        # Same thing expressed with the sample budget at a fixed batch size.
        assert _evaluate(name, p, M, N=M * T * factor).total == pytest.approx(longer.total, rel=REL)


@THEORY_SETTINGS
@given(
    p=problems(),
    schedule=schedules,
    data=st.data(),
    factor=st.floats(1.01, 10.0),
)
def test_bounds_nondecreasing_in_each_vector_entry(p, schedule, data, factor):
    M, T = schedule
    j = data.draw(st.integers(0, p["d"] - 1))
    for vector in ("L", "sigma", "L0", "L1", "G"):
        bigger = dict(p)
        bigger[vector] = p[vector].copy()
        bigger[vector][j] *= factor
        for name in ALL_BOUNDS:
            before, after = _evaluate(name, p, M, T=T), _evaluate(name, bigger, M, T=T)
            assert after.bias >= before.bias * (1 - 1e-12), (name, vector)
            assert after.noise >= before.noise * (1 - 1e-12), (name, vector)
        # AdaGrad's ℓ1 norms react to every coordinate, not only the largest.
        after = _evaluate("convex_adagrad", bigger, M, T=T)
        before = _evaluate("convex_adagrad", p, M, T=T)
        if vector == "L":
            assert after.bias > before.bias
        if vector == "sigma":
            assert after.noise > before.noise


# ---- homogeneity -------------------------------------------------------------------------------


@THEORY_SETTINGS
@given(p=problems(), schedule=schedules, a=st.floats(0.01, 100.0))
def test_homogeneity_in_L_sigma_and_diameter(p, schedule, a):
    M, T = schedule
    D_2 = math.sqrt(p["d"]) * p["D_inf"]
    L, s = p["L"], p["sigma"]
    base = convex_adagrad_bound(L, s, D_inf=p["D_inf"], M=M, T=T)
    assert convex_adagrad_bound(a * L, s, D_inf=p["D_inf"], M=M, T=T).bias == pytest.approx(
        a * base.bias, rel=1e-9
    )
    assert convex_adagrad_bound(L, a * s, D_inf=p["D_inf"], M=M, T=T).noise == pytest.approx(
        a * base.noise, rel=1e-9
    )
    scaled_D = convex_adagrad_bound(L, s, D_inf=a * p["D_inf"], M=M, T=T)
    assert scaled_D.bias == pytest.approx(a**2 * base.bias, rel=1e-9)
    assert scaled_D.noise == pytest.approx(a * base.noise, rel=1e-9)
    sgd = convex_sgd_bound(L, s, D_2=D_2, M=M, T=T)
    sgd_D = convex_sgd_bound(L, s, D_2=a * D_2, M=M, T=T)
    assert (sgd_D.bias, sgd_D.noise) == pytest.approx((a**2 * sgd.bias, a * sgd.noise), rel=1e-9)

    delta = p["delta"]
    for name, function in (("adagrad", nonconvex_adagrad_bound), ("sgd", nonconvex_sgd_bound)):
        ref = function(L, s, delta=delta, M=M, T=T)
        by_L = function(a * L, s, delta=delta, M=M, T=T)
        by_s = function(L, a * s, delta=delta, M=M, T=T)
        by_delta = function(L, s, delta=a * delta, M=M, T=T)
        assert by_L.bias == pytest.approx(a**0.5 * ref.bias, rel=1e-9), name
        assert by_L.noise == pytest.approx(a**0.25 * ref.noise, rel=1e-9), name
        assert (by_s.bias, by_s.noise) == pytest.approx((ref.bias, a**0.5 * ref.noise), rel=1e-9)
        assert by_delta.bias == pytest.approx(a**0.5 * ref.bias, rel=1e-9), name
        assert by_delta.noise == pytest.approx(a**0.25 * ref.noise, rel=1e-9), name


@THEORY_SETTINGS
@given(p=problems(), schedule=schedules, c=st.floats(0.1, 10.0))
def test_constants_scale_their_own_term_only(p, schedule, c):
    M, T = schedule
    ref = convex_adagrad_bound(p["L"], p["sigma"], D_inf=p["D_inf"], M=M, T=T)
    scaled = convex_adagrad_bound(
        p["L"], p["sigma"], D_inf=p["D_inf"], M=M, T=T, c_bias=c, c_noise=1.0
    )
    assert (scaled.bias, scaled.noise) == pytest.approx((c * ref.bias, ref.noise), rel=1e-12)


# ---- batch size at a fixed sample budget -------------------------------------------------------


@THEORY_SETTINGS
@given(p=problems(), N=st.floats(1e3, 1e8), M1=st.floats(1, 1e3), M2=st.floats(1, 1e3))
def test_noise_terms_do_not_depend_on_batch_size_at_fixed_budget(p, N, M1, M2):
    for name in ALL_BOUNDS:
        small, large = _evaluate(name, p, M1, N=N), _evaluate(name, p, M2, N=N)
        assert small.noise == pytest.approx(large.noise, rel=1e-9), name
        # ... while the bias term scales like M**bias_exponent.
        assert large.bias == pytest.approx(
            small.bias * (M2 / M1) ** small.bias_exponent, rel=1e-9
        ), name


def test_nonsmooth_bound_grows_like_root_batch_size_at_fixed_budget():
    G, N = [1.0, 0.5, 0.25], 1e6
    values = [nonsmooth_adagrad_bound(G, D_inf=1.0, M=M, N=N).total for M in (1, 4, 16, 64)]
    assert np.allclose(np.diff(np.log2(values)), 1.0)  # ×2 per ×4 in M
    # AdaGrad's smooth bound instead stays flat while noise dominates.
    smooth = [
        convex_adagrad_bound([1e-6] * 3, [1.0] * 3, D_inf=1.0, M=M, N=N).total
        for M in (1, 4, 16, 64)
    ]
    assert max(smooth) / min(smooth) < 1.001


@THEORY_SETTINGS
@given(p=problems(), N=st.floats(1e4, 1e10))
def test_critical_batch_size_equalises_the_terms(p, N):
    for name in ALL_BOUNDS[:-1]:  # the nonsmooth bound has no noise term
        critical = _evaluate(name, p, 1.0, N=N).critical_batch_size
        if not 1.0 <= critical <= N:
            continue
        at = _evaluate(name, p, critical, N=N)
        assert at.bias == pytest.approx(at.noise, rel=1e-8), name
        assert at.critical_batch_size == pytest.approx(critical, rel=1e-8), name
        # Below M* the noise dominates, above it the bias.
        if critical >= 2:
            assert _evaluate(name, p, critical / 2, N=N).dominant == "noise"
        if critical * 2 <= N:
            assert _evaluate(name, p, critical * 2, N=N).dominant == "bias"


def test_critical_batch_size_closed_forms():
    L, s, N, D_inf, delta = [4.0, 1.0, 1.0], [1.0, 2.0, 2.0], 1e6, 0.5, 2.0
    L_l1, L_inf, s_l1, s_l2 = 6.0, 4.0, 5.0, 3.0
    D_2 = math.sqrt(3) * D_inf
    ada = convex_adagrad_bound(L, s, D_inf=D_inf, M=1, N=N, c_bias=2.0, c_noise=3.0)
    assert ada.critical_batch_size == pytest.approx(3 * s_l1 * 1e3 / (2 * L_l1 * D_inf), rel=REL)
    sgd = convex_sgd_bound(L, s, D_2=D_2, M=1, N=N)
    assert sgd.critical_batch_size == pytest.approx(s_l2 * 1e3 / (L_inf * D_2), rel=REL)
    ada = nonconvex_adagrad_bound(L, s, delta=delta, M=1, N=N, c_bias=2.0, c_noise=3.0)
    assert ada.critical_batch_size == pytest.approx(
        (3 / 2) ** 2 * s_l1 * 1e3 / math.sqrt(delta * L_l1), rel=REL
    )
    sgd = nonconvex_sgd_bound(L, s, delta=delta, M=1, N=N)
    assert sgd.critical_batch_size == pytest.approx(s_l2 * 1e3 / math.sqrt(delta * L_inf), rel=REL)
    # Generalized: M* = S²√N/B² with B = √(Δ‖L0‖_1) + Δ‖L1‖_∞
    # and S = (Δ‖L0‖_1)^¼‖σ‖_1^½ + √(Δ‖L1‖_∞‖σ‖_1).
    L1 = [0.5, 0.0, 0.0]
    gen = generalized_adagrad_bound(L, L1, s, delta=delta, M=1, N=N)
    B = math.sqrt(delta * L_l1) + delta * 0.5
    S = (delta * L_l1) ** 0.25 * math.sqrt(s_l1) + math.sqrt(delta * 0.5 * s_l1)
    assert gen.critical_batch_size == pytest.approx(S**2 * 1e3 / B**2, rel=REL)


def test_as_dict_includes_derived_fields():
    b = convex_adagrad_bound([1.0], [1.0], D_inf=1.0, M=2, T=8)
    row = b.as_dict()
    assert row["total"] == b.total and row["samples"] == 16
    assert row["dominant"] == b.dominant and row["critical_batch_size"] == b.critical_batch_size
    assert isinstance(b, Bound)
    with pytest.raises(AttributeError):
        b.bias = 0.0  # frozen


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: convex_adagrad_bound([1, -2], [1, 1], D_inf=1, M=1, T=1),
            "L must be non-negative",
        ),
        (
            lambda: convex_adagrad_bound([1, 2], [1, math.nan], D_inf=1, M=1, T=1),
            "sigma must be finite",
        ),
        (
            lambda: convex_adagrad_bound([1, 2], [1, 1, 1], D_inf=1, M=1, T=1),
            "sigma has 3 entries but L has 2",
        ),
        (
            lambda: convex_adagrad_bound([[1, 2]], [1, 1], D_inf=1, M=1, T=1),
            "L must be a 1-D vector",
        ),
        (lambda: convex_adagrad_bound([], [], D_inf=1, M=1, T=1), "L must have at least one entry"),
        (
            lambda: convex_adagrad_bound([1], [1], D_inf=0, M=1, T=1),
            "D_inf must be a finite positive",
        ),
        (
            lambda: convex_adagrad_bound([1], [1], D_inf=1, M=8, N=4),
            "batch size M=8 exceeds the sample budget N=4",
        ),
        (lambda: convex_adagrad_bound([1], [1], D_inf=1, M=1, T=2, N=2), "exactly one of T"),
        (lambda: convex_adagrad_bound([1], [1], D_inf=1, M=1), "exactly one of T"),
        (
            lambda: convex_adagrad_bound([1], [1], D_inf=1, M=0.5, T=2),
            "M (batch size) must be at least 1",
        ),
        (
            lambda: convex_adagrad_bound([1], [1], D_inf=1, M=1, T=math.inf),
            "T must be a finite positive",
        ),
        (lambda: convex_sgd_bound([1], [1], D_2=-1, M=1, T=1), "D_2 must be a finite positive"),
        (lambda: convex_sgd_bound([1], [1], D_2=1, M=1, T=1, lambda_max=0), "lambda_max must be"),
        (lambda: nonconvex_adagrad_bound([1], [1], delta=0, M=1, T=1), "delta must be"),
        (
            lambda: nonconvex_sgd_bound([1], ["x"], delta=1, M=1, T=1),
            "sigma must be a vector of numbers",
        ),
        (
            lambda: generalized_adagrad_bound([1], [1, 2], [1], delta=1, M=1, T=1),
            "L1 has 2 entries but L0 has 1",
        ),
        (
            lambda: generalized_adagrad_bound([1], [-1], [1], delta=1, M=1, T=1),
            "L1 must be non-negative",
        ),
        (lambda: nonsmooth_adagrad_bound([math.inf], D_inf=1, M=1, T=1), "G must be finite"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


@pytest.mark.parametrize("bad", [-2.0, 0.0, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["c_bias", "c_noise"])
def test_absolute_constants_must_be_finite_and_positive(name, bad):
    from anisoada.theory import convex_adagrad_bound, nonconvex_sgd_bound

    with pytest.raises(ValueError, match=name):
        convex_adagrad_bound([1.0, 2.0], [1.0, 1.0], D_inf=1.0, M=1, T=10, **{name: bad})
    with pytest.raises(ValueError, match=name):
        nonconvex_sgd_bound([1.0, 2.0], [1.0, 1.0], delta=1.0, M=1, T=10, **{name: bad})


@pytest.mark.parametrize("name", ALL_BOUNDS)
def test_args_section_describes_every_parameter_in_signature_order(name):
    import inspect

    function = getattr(bounds_module, f"{name}_bound")
    doc = inspect.getdoc(function)
    assert "{args}" not in doc
    section = doc.split("Args:\n", 1)[1].split("\n\n", 1)[0]
    entries = [line for line in section.splitlines() if not line.startswith(" " * 5)]
    described = [line.split(":", 1)[0].strip() for line in entries]
    assert described == list(inspect.signature(function).parameters)
