"""rates_table() / table1(): the coefficients are the bound functions', and each format is valid."""

from __future__ import annotations

import doctest
import math
from html.parser import HTMLParser

import numpy as np
import pytest

from anisoada.theory import rates_table, table1
from anisoada.theory import table as table_module
from anisoada.theory.bounds import (
    convex_adagrad_bound,
    convex_sgd_bound,
    generalized_adagrad_bound,
    nonconvex_adagrad_bound,
    nonconvex_sgd_bound,
)

INPUTS = {
    "L": np.array([4.0, 1.0, 1.0, 1.0]),
    "sigma": np.array([1.0, 1.0, 0.5, 0.5]),
    "D_inf": 0.5,
    "delta": 2.0,
    "lambda_max": 2.0,
    "L0": np.array([2.0, 1.0, 1.0, 1.0]),
    "L1": np.array([0.5, 0.0, 0.0, 0.0]),
    "G": np.array([3.0, 3.0, 1.0, 1.0]),
    "budget": 1e6,
}


def test_docstring_examples_hold():
    result = doctest.testmod(table_module)
    assert result.attempted >= 2 and result.failed == 0


def test_symbolic_table_lists_every_row_of_the_paper():
    table = rates_table()
    assert list(zip(table.setting, table.method)) == [
        ("convex", "AdaGrad"),
        ("convex", "SGD"),
        ("convex", "AdaGrad-Norm"),
        ("convex, nonsmooth", "AdaGrad"),
        ("nonconvex", "AdaGrad"),
        ("nonconvex", "SGD"),
        ("nonconvex", "AdaGrad-Norm"),
        ("nonconvex, (L0,L1)", "AdaGrad"),
    ]
    assert "bias_coef" not in table.columns
    assert table.loc[0, "source"] == "Thm 4.1" and table.loc[4, "source"] == "Thm 4.3"


def test_measured_coefficients_are_the_bounds_at_one_step():
    table = rates_table(**INPUTS).set_index(["setting", "method"])
    L, s = INPUTS["L"], INPUTS["sigma"]
    ada = convex_adagrad_bound(L, s, D_inf=0.5, M=1, T=1)
    sgd = convex_sgd_bound(L, s, D_2=1.0, M=1, T=1)  # √4·0.5
    row = table.loc[("convex", "AdaGrad")]
    assert (row.bias_coef, row.noise_coef) == pytest.approx((ada.bias, ada.noise))
    assert row.bias_ratio == pytest.approx(ada.bias / sgd.bias)  # ρ_L = 7/16 on a box
    assert row.bias_ratio == pytest.approx(7 / 16)
    assert row.critical_batch_size == pytest.approx(
        convex_adagrad_bound(L, s, D_inf=0.5, M=1, N=1e6).critical_batch_size
    )
    assert math.isnan(table.loc[("convex", "SGD"), "bias_ratio"])
    lam = table.loc[("convex", "SGD (λ_max)")]
    assert lam.bias_coef == pytest.approx(2.0 * 1.0)
    nonconvex = table.loc[("nonconvex", "AdaGrad")]
    ada = nonconvex_adagrad_bound(L, s, delta=2.0, M=1, T=1)
    sgd = nonconvex_sgd_bound(L, s, delta=2.0, M=1, T=1)
    assert nonconvex.noise_ratio == pytest.approx(ada.noise / sgd.noise)
    gen = table.loc[("nonconvex, (L0,L1)", "AdaGrad")]
    expected = generalized_adagrad_bound(INPUTS["L0"], INPUTS["L1"], s, delta=2.0, M=1, T=1)
    assert (gen.bias_coef, gen.noise_coef) == pytest.approx((expected.bias, expected.noise))
    assert table.loc[("convex, nonsmooth", "AdaGrad"), "bias_coef"] == pytest.approx(0.5 * 8)


def test_rows_without_their_inputs_stay_empty():
    table = rates_table(L=INPUTS["L"], sigma=INPUTS["sigma"], D_inf=1.0)
    nonconvex = table[table.setting.str.startswith("nonconvex")]
    assert nonconvex.bias_coef.isna().all()
    assert table[table.setting == "convex"].bias_coef.notna().all()
    assert "critical_batch_size" not in table.columns


def test_markdown_is_a_pipe_table_with_measured_numbers():
    text = table1("markdown", **INPUTS)
    lines = [line for line in text.splitlines() if line.startswith("|")]
    width = lines[0].count("|")
    assert all(line.count("|") == width for line in lines)
    assert len(lines) == 2 + 10  # header, separator, 8 rows + 2 λ_max rows
    assert "critical M at N=1e+06" in lines[0]
    adagrad = lines[2].split("|")
    assert adagrad[6].strip() == "1.75"  # bias at M = T = 1: ‖L‖_1·D_∞² = 7·0.25
    assert "up to absolute constants" in text


def test_latex_is_balanced_and_escaped():
    text = table1("latex", **INPUTS)
    assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == 1
    body = text[text.index(r"\midrule") : text.index(r"\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 10
    columns = text[text.index(r"\begin{tabular}{") + 16 :].split("}")[0]
    assert all(row.count(" & ") == len(columns) - 1 for row in rows)
    # Math stays balanced; the Unicode that pdflatex rejects outside math is gone.
    assert all(row.count("$") % 2 == 0 for row in rows)
    outside_math = "".join(part for i, part in enumerate(text.split("$")) if i % 2 == 0)
    for symbol in ("‖", "λ", "ℓ", "√", "∞", "÷", "—"):
        assert symbol not in outside_math
    assert r"$\lambda_{\max}$" in text


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        assert self.stack.pop() == tag

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("td", "th"):
            self.rows[-1][-1] += data


def test_html_parses_into_the_table():
    parser = _Cells()
    parser.feed(table1("html", **INPUTS, caption="a < b & c"))
    assert not parser.stack
    header, *rows = parser.rows
    assert len(rows) == 10 and all(len(row) == len(header) for row in rows)
    assert rows[0][:2] == ["convex", "AdaGrad"]
    assert rows[0][2] == "‖L‖₁D∞²/T + ‖σ‖₁D∞/√(MT)"


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="fmt must be"):
        table1("rst")
    with pytest.raises(ValueError, match="give both L and sigma"):
        rates_table(L=[1.0])


def test_an_unknown_keyword_is_a_type_error_as_for_a_signature():
    # rates_table takes its inputs as keywords (the TypedDict table1 forwards): a misspelt one
    # must fail as it would against an explicit signature, not be ignored.
    with pytest.raises(TypeError, match="unexpected keyword argument 'D_infinity'"):
        rates_table(L=[1.0], sigma=[1.0], D_infinity=1.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'caption'"):
        rates_table(caption="x")
