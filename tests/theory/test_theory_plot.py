"""plot_prediction(): draws the table's numbers, and matplotlib stays optional for theory."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from anisoada.theory import plot_prediction, predict

pytest.importorskip("matplotlib", reason="plotting needs the 'report' extra (matplotlib)")


def _table():
    return predict(
        L=[8.0, 1.0, 1.0, 1.0],
        sigma=[1.0, 1.0, 1.0, 1.0],
        D_inf=1.0,
        batch_sizes=np.geomspace(1, 1e6, 25),
        budget=1e6,
        G=[2.0, 2.0, 2.0, 2.0],
    )


def test_curves_carry_the_predicted_values(tmp_path):
    table = _table()
    figure = plot_prediction(table)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    solid = {line.get_label(): line for line in ax.get_lines() if line.get_linewidth() == 2}
    assert set(solid) == {"AdaGrad", "SGD", "AdaGrad-Norm (= SGD)", "AdaGrad (nonsmooth)"}
    assert solid["AdaGrad-Norm (= SGD)"].get_linestyle() != "-"  # visible over its twin
    ada = table[table.variant == "adagrad"]
    np.testing.assert_array_equal(solid["AdaGrad"].get_xdata(), ada.batch_size)
    np.testing.assert_array_equal(solid["AdaGrad"].get_ydata(), ada.bound)
    # One critical-batch marker per variant whose M* lies inside [1, N]; the nonsmooth one is 0.
    markers = [
        line for line in ax.get_lines() if line.get_marker() == "o" and len(line.get_xdata())
    ]
    marked = sorted(float(line.get_xdata()[0]) for line in markers)
    inside = sorted(
        table.drop_duplicates("variant")
        .query("1 <= critical_batch_size <= 1e6")
        .critical_batch_size
    )
    assert marked == pytest.approx(inside)
    path = tmp_path / "bounds.png"
    figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draws_into_given_axes_and_rejects_mixed_budgets():
    from matplotlib.figure import Figure

    figure = Figure()
    ax = figure.add_subplot()
    assert plot_prediction(_table(), ax=ax, show_terms=False) is figure
    other = predict(L=[1.0], sigma=[1.0], D_inf=1.0, batch_sizes=[1], budget=10)
    with pytest.raises(ValueError, match="mixes sample budgets"):
        plot_prediction(pd.concat([other, _table()]))
    with pytest.raises(ValueError, match="lacks columns"):
        plot_prediction(_table().drop(columns="noise"))


def test_theory_imports_without_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import anisoada.theory as t\n"
        "print(t.predict(L=[1.0], sigma=[1.0], D_inf=1.0, batch_sizes=[1], budget=4).shape)\n"
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(3, 18)"
