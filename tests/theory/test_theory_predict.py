"""predict(): the tidy table agrees with the bound functions, and its verdicts with the ratios."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from _theory_strategies import THEORY_SETTINGS, problems
from hypothesis import given
from hypothesis import strategies as st

from anisoada.theory import predict
from anisoada.theory import prediction as prediction_module
from anisoada.theory.bounds import (
    convex_adagrad_bound,
    convex_adagrad_norm_bound,
    convex_sgd_bound,
    generalized_adagrad_bound,
    nonconvex_adagrad_bound,
    nonconvex_sgd_bound,
    nonsmooth_adagrad_bound,
)
from anisoada.theory.prediction import PREDICTION_COLUMNS

L = np.array([8.0, 1.0, 1.0, 1.0, 0.5, 0.5])
SIGMA = np.array([2.0, 1.0, 0.5, 0.5, 0.25, 0.25])
SIZES = [1, 8, 64, 512, 4096]
BUDGET = 1e6


def test_docstring_examples_hold():
    result = doctest.testmod(prediction_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 2 and result.failed == 0


def test_convex_table_matches_the_bound_functions():
    table = predict(L=L, sigma=SIGMA, D_inf=0.5, batch_sizes=SIZES, budget=BUDGET)
    assert list(table.columns) == [c for c in PREDICTION_COLUMNS if "lambda_max" not in c]
    assert len(table) == len(SIZES) * 3
    assert table.variant.tolist()[:3] == ["adagrad", "sgd", "adagrad_norm"]
    D_2 = math.sqrt(L.size) * 0.5
    for M in SIZES:
        rows = table[table.batch_size == M].set_index("variant")
        T = BUDGET // M  # whole steps
        ada = convex_adagrad_bound(L, SIGMA, D_inf=0.5, M=M, T=T)
        sgd = convex_sgd_bound(L, SIGMA, D_2=D_2, M=M, T=T)
        norm = convex_adagrad_norm_bound(L, SIGMA, D_2=D_2, M=M, T=T)
        for variant, bound in (("adagrad", ada), ("sgd", sgd), ("adagrad_norm", norm)):
            row = rows.loc[variant]
            assert row.iterations == T
            assert (row.bias, row.noise, row.bound) == (bound.bias, bound.noise, bound.total)
            assert row.dominant == bound.dominant
            assert row.step_size == bound.step_size
        # The critical batch size is the continuous form's at the budget N (T = N/M).
        at_budget = convex_adagrad_bound(L, SIGMA, D_inf=0.5, M=M, N=BUDGET)
        assert rows.loc["adagrad", "critical_batch_size"] == at_budget.critical_batch_size
        assert rows.loc["adagrad", "ratio_to_sgd"] == pytest.approx(ada.total / sgd.total)
        assert rows.loc["sgd", "verdict"] == "reference"
        assert rows.loc["adagrad_norm", "verdict"] == "tie"
        # ρ_L = 0.333, ρ_σ = 0.75 on a box: AdaGrad's bound is better by more than the factor-2
        # band where the bias term weighs (large batches), a tie where the noise term does.
        ratio = rows.loc["adagrad", "ratio_to_sgd"]
        assert rows.loc["adagrad", "verdict"] == ("better" if ratio < 0.5 else "tie")
    verdicts = table.loc[table.variant == "adagrad", "verdict"]
    assert set(verdicts) == {"better", "tie"}


def test_dominant_term_switches_at_the_critical_batch_size():
    table = predict(L=L, sigma=SIGMA, D_inf=0.5, batch_sizes=SIZES, budget=BUDGET)
    ada = table[table.variant == "adagrad"]
    critical = ada.critical_batch_size.iloc[0]
    # ‖σ‖_1·√N / (‖L‖_1·D_∞) = 4.5·1000 / (12·0.5) = 750.
    assert critical == pytest.approx(750.0)
    assert (ada.critical_batch_size == critical).all()
    expected = np.where(ada.batch_size < critical, "noise", "bias")
    assert ada.dominant.tolist() == expected.tolist()


def test_lambda_max_adds_a_labelled_comparison():
    table = predict(
        L=L, sigma=SIGMA, D_inf=0.5, batch_sizes=[1, 4096], budget=BUDGET, lambda_max=1.5
    )
    assert list(table.columns) == list(PREDICTION_COLUMNS)
    rows = table[table.batch_size == 4096].set_index("variant")
    assert rows.loc["sgd_lambda_max", "label"] == "SGD (λ_max)"
    assert rows.loc["sgd_lambda_max", "smoothness"] == "λ_max"
    measured = convex_sgd_bound(L, SIGMA, D_2=math.sqrt(6) * 0.5, M=4096, T=244, lambda_max=1.5)
    assert rows.loc["sgd_lambda_max", "bound"] == measured.total
    assert rows.loc["adagrad", "ratio_to_sgd_lambda_max"] == pytest.approx(
        rows.loc["adagrad", "bound"] / measured.total
    )
    assert rows.loc["sgd_lambda_max", "verdict_lambda_max"] == "reference"
    # The bias-dominated large batch: AdaGrad's bound is under half of SGD's with ‖L‖_∞ = 8, and
    # with λ_max = 1.5 it is 1.2 times SGD's: within the factor-2 band, a tie.
    assert rows.loc["adagrad", "verdict"] == "better"
    assert rows.loc["adagrad", "ratio_to_sgd_lambda_max"] == pytest.approx(1.1995, rel=1e-3)
    assert rows.loc["adagrad", "verdict_lambda_max"] == "tie"


def test_nonconvex_with_generalized_smoothness_row():
    L0, L1 = L / 2, np.array([0.1, 0, 0, 0, 0, 0.05])
    table = predict(
        L=L,
        sigma=SIGMA,
        setting="nonconvex",
        delta=3.0,
        L0=L0,
        L1=L1,
        batch_sizes=SIZES,
        budget=BUDGET,
    )
    assert table.variant.unique().tolist() == ["adagrad", "sgd", "adagrad_norm", "adagrad_l0l1"]
    for M in SIZES:
        rows = table[table.batch_size == M].set_index("variant")
        T = BUDGET // M
        assert (
            rows.loc["adagrad", "bound"]
            == nonconvex_adagrad_bound(L, SIGMA, delta=3.0, M=M, T=T).total
        )
        assert rows.loc["sgd", "bound"] == nonconvex_sgd_bound(L, SIGMA, delta=3.0, M=M, T=T).total
        gen = generalized_adagrad_bound(L0, L1, SIGMA, delta=3.0, M=M, T=T)
        assert rows.loc["adagrad_l0l1", "bound"] == gen.total
        assert rows.loc["adagrad_l0l1", "l1_term"] == gen.l1_term > 0
        assert rows.loc["adagrad_l0l1", "setting"] == "generalized"


def test_nonsmooth_row_grows_with_batch_size():
    G = SIGMA * 3
    table = predict(L=L, sigma=SIGMA, D_inf=0.5, G=G, batch_sizes=SIZES, budget=BUDGET)
    rows = table[table.variant == "adagrad_nonsmooth"]
    expected = [nonsmooth_adagrad_bound(G, D_inf=0.5, M=M, T=BUDGET // M).total for M in SIZES]
    assert rows.bound.tolist() == expected
    assert rows.bound.is_monotonic_increasing and (rows.dominant == "bias").all()


def test_constants_are_forwarded_per_variant():
    plain = predict(L=L, sigma=SIGMA, D_inf=0.5, batch_sizes=[8], budget=BUDGET)
    scaled = predict(
        L=L,
        sigma=SIGMA,
        D_inf=0.5,
        batch_sizes=[8],
        budget=BUDGET,
        constants={"adagrad": {"c_bias": 2.0, "c_noise": 3.0}},
    )
    a, b = plain.set_index("variant"), scaled.set_index("variant")
    assert b.loc["adagrad", "bias"] == pytest.approx(2 * a.loc["adagrad", "bias"])
    assert b.loc["adagrad", "noise"] == pytest.approx(3 * a.loc["adagrad", "noise"])
    assert b.loc["sgd", "bound"] == a.loc["sgd", "bound"]


@THEORY_SETTINGS
@given(
    p=problems(), log_budget=st.floats(2.0, 9.0), setting=st.sampled_from(["convex", "nonconvex"])
)
def test_adagrad_verdict_is_never_worse_on_a_box(p, log_budget, setting):
    budget = 10.0**log_budget
    sizes = np.unique(np.floor(np.geomspace(1, budget, 6)))
    kwargs = {"D_inf": p["D_inf"]} if setting == "convex" else {"delta": p["delta"]}
    table = predict(
        L=p["L"], sigma=p["sigma"], batch_sizes=sizes, budget=budget, setting=setting, **kwargs
    )
    ada = table[table.variant == "adagrad"]
    assert set(ada.verdict) <= {"better", "tie"}
    assert (ada.ratio_to_sgd <= 1 + 1e-9).all()
    # A single coordinate (d = 1) is isotropic: the guarantees coincide.
    if p["d"] == 1:
        assert set(ada.verdict) == {"tie"}


def test_isotropic_inputs_tie():
    table = predict(
        L=np.full(5, 2.0), sigma=np.full(5, 0.3), D_inf=1.0, batch_sizes=SIZES, budget=BUDGET
    )
    assert set(table.loc[table.variant != "sgd", "verdict"]) == {"tie"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_sizes": [1, 2e6]}, "exceeds the sample budget"),
        ({"batch_sizes": [0]}, "batch_sizes must be numbers ≥ 1"),
        ({"batch_sizes": []}, "batch_sizes must be a non-empty"),
        ({"budget": -1}, "budget must be a finite positive"),
        ({"D_inf": None}, "D_inf is required"),
        ({"D_2": 100.0}, "D_2=100 is inconsistent"),
        ({"delta": 1.0}, "delta enters only the nonconvex"),
        ({"setting": "nonconvex"}, "delta (= f(w_1) − inf f) is required"),
        ({"setting": "online"}, "setting must be"),
        ({"sigma": SIGMA[:3]}, "sigma has 3 entries but L has 6"),
        ({"sigma": -SIGMA}, "sigma must be non-negative"),
        ({"lambda_max": -2.0}, "lambda_max must be"),
        ({"L0": L}, "give both L0 and L1"),
        ({"L0": L, "L1": L}, "L0/L1 enter only the nonconvex"),
        ({"G": [1.0, 2.0]}, "G has 2 entries but L has 6"),
        ({"constants": {"adam": {}}}, "constants has unknown variants ['adam']"),
        ({"constants": {"sgd": {"c_l1": 2.0}}}, "unknown constant 'c_l1'"),
        ({"constants": {"sgd": {"c_bias": 0.0}}}, "c_bias"),
        ({"constants": {"sgd_lambda_max": {"c_bias": 2.0}}}, "lambda_max is None"),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    _refused(kwargs, ValueError, message)


def _refused(overrides, error, message):
    """``predict`` on the module's problem with ``overrides`` raises ``error`` saying
    ``message``."""
    arguments = {"L": L, "sigma": SIGMA, "D_inf": 1.0, "batch_sizes": SIZES, "budget": BUDGET}
    with pytest.raises(error) as caught:
        predict(**{**arguments, **overrides})
    assert message in str(caught.value)


def test_whole_batch_sizes_run_whole_steps_in_integer_columns():
    table = predict(L=L, sigma=SIGMA, D_inf=1.0, batch_sizes=np.array([3, 7, 100]), budget=100)
    assert isinstance(table, pd.DataFrame)
    assert table.batch_size.dtype == np.int64 and table.iterations.dtype == np.int64
    # T = ⌊N/M⌋: 33 steps of 3 (99 samples), 14 of 7 (98), one of the whole budget.
    assert table.iterations.tolist()[::3] == [33, 14, 1]
    assert table.batch_size.tolist()[::3] == [3, 7, 100]


def test_closed_forms_at_whole_steps():
    # ‖L‖_1 = 7, ‖σ‖_1 = 4, ‖L‖_∞ = 4, ‖σ‖_2 = 2, D_∞ = 1, D_2 = 2 (a box, d = 4); N = 10.
    table = predict(
        L=[4.0, 1.0, 1.0, 1.0], sigma=[1.0] * 4, D_inf=1.0, batch_sizes=[3, 4], budget=10
    )
    rows = table.set_index(["batch_size", "variant"])
    # M = 3: T = 3 (9 samples). AdaGrad 7·1/3 and 4·1/√9; SGD 4·4/3 and 2·2/√9.
    assert rows.loc[(3, "adagrad"), ["bias", "noise"]].tolist() == pytest.approx([7 / 3, 4 / 3])
    assert rows.loc[(3, "sgd"), ["bias", "noise"]].tolist() == pytest.approx([16 / 3, 4 / 3])
    # M = 4: T = 2 (8 samples), not 2.5: the bias is 7/2, the noise 4/√8.
    assert rows.loc[(4, "adagrad"), ["bias", "noise"]].tolist() == pytest.approx(
        [3.5, 4 / math.sqrt(8)]
    )
    assert rows.loc[(4, "adagrad"), "iterations"] == 2


def test_a_batch_of_the_whole_budget_is_one_step_and_a_larger_one_an_error():
    table = predict(L=L, sigma=SIGMA, D_inf=1.0, batch_sizes=[64], budget=64)
    assert set(table.iterations) == {1}
    with pytest.raises(ValueError, match="exceeds the sample budget"):
        predict(L=L, sigma=SIGMA, D_inf=1.0, batch_sizes=[65], budget=64)


def test_a_continuous_grid_keeps_float_batch_sizes_and_whole_steps():
    sizes = np.geomspace(1.0, 1000.0, 7)
    table = predict(L=L, sigma=SIGMA, D_inf=1.0, batch_sizes=sizes, budget=1000)
    assert table.batch_size.dtype == np.float64 and table.iterations.dtype == np.int64
    assert table.iterations.tolist()[::3] == [int(1000 // M) for M in sizes]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_sizes": [8, 64, 8]}, ValueError, "batch_sizes gives 8 more than once"),
        ({"batch_sizes": np.array([2.5, 2.5])}, ValueError, "gives 2.5 more than once"),
        ({"budget": "1e4"}, TypeError, "budget must be a number; got '1e4'"),
        ({"budget": True}, TypeError, "budget must be a number; got True"),
        ({"batch_sizes": ["8"]}, TypeError, "each of batch_sizes must be a number; got '8'"),
        ({"batch_sizes": [True, 8]}, TypeError, "each of batch_sizes must be a number; got True"),
        ({"batch_sizes": np.array(["8"])}, TypeError, "batch_sizes must hold numbers"),
        ({"batch_sizes": "8"}, TypeError, "batch_sizes must be a list of numbers; got str"),
    ],
)
def test_duplicate_or_non_numeric_budgets_and_batch_sizes_are_refused(kwargs, error, message):
    # np.asarray(..., float) would read "8" and True as numbers, and a batch size given twice
    # would give two identical blocks of rows.
    _refused(kwargs, error, message)


def test_numbers_of_any_numeric_type_and_a_single_batch_size_still_work():
    reference = predict(L=L, sigma=SIGMA, D_inf=1.0, batch_sizes=[8, 64], budget=1000)
    for sizes, budget in (
        ([np.int64(8), 64.0], np.float64(1000.0)),
        (np.array([8, 64]), np.int64(1000)),
        (pd.Series([8, 64]), 1000),
    ):
        table = predict(L=L, sigma=SIGMA, D_inf=1.0, batch_sizes=sizes, budget=budget)
        np.testing.assert_array_equal(table.bound, reference.bound)
    single = predict(L=L, sigma=SIGMA, D_inf=1.0, batch_sizes=8, budget=1000)
    np.testing.assert_array_equal(single.bound, reference.bound[: len(single)])
