"""Bound-vs-batch-size curves at a fixed sample budget, drawn from a :func:`predict` table.

matplotlib is imported inside the function, so ``anisoada.theory`` works without it (it is the
``report`` extra). The figure is built without ``pyplot`` on an Agg canvas: no global state, no
display needed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, overload

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = ["plot_prediction"]

_REQUIRED = ("variant", "label", "batch_size", "bias", "noise", "bound", "critical_batch_size")


@overload
def plot_prediction(
    table: pd.DataFrame,
    *,
    ax: None = None,
    show_terms: bool = True,
    show_critical: bool = True,
    title: str | None = None,
) -> Figure: ...


@overload
def plot_prediction(
    table: pd.DataFrame,
    *,
    ax: Axes,
    show_terms: bool = True,
    show_critical: bool = True,
    title: str | None = None,
) -> Figure | SubFigure: ...


def plot_prediction(
    table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    show_terms: bool = True,
    show_critical: bool = True,
    title: str | None = None,
) -> Figure | SubFigure:
    """Plot each variant's bound against the batch size (log–log) at the table's sample budget.

    Solid lines are the bounds ``bias + noise``; with ``show_terms`` the bias (dashed) and noise
    (dotted) terms are drawn thinly in the same colour, and with ``show_critical`` a marker sits on
    each curve at its critical batch size (where bias = noise), when that lies inside the plotted
    range. At a fixed budget the noise terms are flat in ``M`` and the bias terms rise, so the
    picture shows where a larger batch starts to cost.

    Args:
        table: Output of :func:`~anisoada.theory.predict` (one budget; use many batch sizes, e.g.
            ``np.geomspace(1, budget, 60)``, for smooth curves).
        ax: Axes to draw into; by default a new figure with one axes is created.
        show_terms: Also draw the bias and noise terms.
        show_critical: Mark the critical batch sizes.
        title: Axes title; by default it states the budget and "up to absolute constants".

    Returns:
        The figure (``ax.figure`` when ``ax`` is given, a ``SubFigure`` if ``ax`` lies in
        one). Save a new figure with ``fig.savefig(path)``.

    Example:
        >>> import numpy as np
        >>> from anisoada.theory import predict
        >>> table = predict(L=[4.0, 1.0], sigma=[1.0, 1.0], D_inf=1.0,
        ...                 batch_sizes=np.geomspace(1, 1e4, 20), budget=1e4)
        >>> fig = plot_prediction(table)  # doctest: +SKIP
        >>> fig.savefig("bounds.png")  # doctest: +SKIP
    """
    missing = [column for column in _REQUIRED if column not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; pass the output of theory.predict")
    if table.empty:
        raise ValueError("table is empty; nothing to plot")
    budgets = table["budget"].unique() if "budget" in table.columns else np.array([math.nan])
    if budgets.size > 1:
        raise ValueError(
            f"table mixes sample budgets {sorted(budgets.tolist())}; plot one budget at a time"
        )

    figure: Figure | SubFigure
    if ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 4.4), layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
    else:
        figure = ax.figure

    colors = [f"C{i}" for i in range(10)]
    drawn: list[tuple[str, np.ndarray, np.ndarray]] = []
    for index, (_, curve) in enumerate(table.groupby("variant", sort=False)):
        curve = curve.sort_values("batch_size")
        color = colors[index % len(colors)]
        label = str(curve["label"].iloc[0])
        M = curve["batch_size"].to_numpy()
        values = curve["bound"].to_numpy()
        # Equal formulas (SGD and AdaGrad-Norm) would hide each other: dash the later one.
        twin = next(
            (name for name, x, y in drawn if np.array_equal(x, M) and np.allclose(y, values)),
            None,
        )
        drawn.append((label, M, values))
        if twin is None:
            ax.plot(M, values, color=color, lw=2, label=label)
        else:
            ax.plot(M, values, color=color, lw=2, ls=(0, (3, 3)), label=f"{label} (= {twin})")
        if show_terms:
            ax.plot(M, curve["bias"].to_numpy(), color=color, lw=0.8, ls="--")
            noise = curve["noise"].to_numpy()
            if np.any(noise > 0):
                ax.plot(M, noise, color=color, lw=0.8, ls=":")
        critical = float(curve["critical_batch_size"].iloc[0])
        if show_critical and M.min() <= critical <= M.max():
            value = float(np.interp(np.log(critical), np.log(M), curve["bound"].to_numpy()))
            ax.plot([critical], [value], marker="o", color=color, ms=6, ls="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size M")
    ax.set_ylabel("bound (up to absolute constants)")
    budget = float(budgets[0])
    ax.set_title(title or f"Bounds at a fixed sample budget N = {budget:.3g}")
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    if show_terms:
        handles += [
            Line2D([], [], color="grey", lw=0.8, ls="--"),
            Line2D([], [], color="grey", lw=0.8, ls=":"),
        ]
        labels += ["bias term", "noise term"]
    if show_critical:
        handles.append(Line2D([], [], color="grey", marker="o", ls="none"))
        labels.append("critical batch size")
    ax.legend(handles, labels, fontsize="small")
    return figure
