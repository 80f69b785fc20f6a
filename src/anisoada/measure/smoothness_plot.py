"""The figure of a smoothness check (:mod:`~anisoada.measure.smoothness_check`): secant ratio
against ``|∂_j f(w)|`` on log axes, coloured by iteration, with the pooled envelope.

Drawing is apart from measuring: matplotlib is imported when a figure is drawn, never by the
check itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from anisoada.measure.smoothness_check import SmoothnessCheckResult

__all__ = ["plot_smoothness_check"]


def plot_smoothness_check(
    result: SmoothnessCheckResult,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    max_points: int = 200_000,
) -> Path:
    """Log–log scatter of ``|∂_j f(w)|`` vs the secant ratio, coloured by iteration, with the
    pooled envelope ``L0 + L1·x``; written as PNG (matplotlib, Agg backend).

    Points with ``x = 0`` or ``y = 0`` cannot be shown on log axes; they are counted in the
    caption. Beyond ``max_points`` a seeded subsample is drawn (the fit used all points).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x, y, it, kind = result.x, result.y, result.iteration, result.kind
    shown = (x > 0) & (y > 0)
    index = np.flatnonzero(shown)
    if index.size > max_points:
        index = np.sort(np.random.default_rng(0).choice(index, max_points, replace=False))
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=150)
    scatter = None
    for k, marker, label in ((0, "o", "consecutive iterates"), (1, "^", "perturbed point")):
        sel = index[kind[index] == k]
        if sel.size:
            scatter = ax.scatter(
                x[sel],
                y[sel],
                c=it[sel],
                cmap="viridis",
                s=3,
                alpha=0.5,
                marker=marker,
                linewidths=0,
                vmin=0,
                vmax=max(1, int(result.losses.size) - 1),
                label=label,
                rasterized=True,
            )
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="iteration t")
    pooled = result.fits.get("pooled")
    if pooled is not None and index.size:
        grid = np.geomspace(x[index].min(), x[index].max(), 200)
        ax.plot(
            grid,
            pooled(grid),
            color="crimson",
            lw=1.5,
            label=f"envelope {pooled.L0:.3g} + {pooled.L1:.3g}·x "
            f"(covers {100 * pooled.covered_fraction:.1f}%)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$|\partial_j f(w)|$")
    ax.set_ylabel(r"$|\partial_j f(w) - \partial_j f(w')| \,/\, |w_j - w'_j|$")
    ax.set_title(title or "Generalized smoothness along an Adam trajectory")
    hidden = int((~shown).sum())
    ax.text(
        0.01,
        0.01,
        f"{shown.sum()} points; {hidden} with x=0 or y=0 not shown; "
        f"{result.n_skipped} skipped (move below threshold)",
        transform=ax.transAxes,
        fontsize=7,
        va="bottom",
    )
    if index.size:
        ax.legend(loc="upper left", fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
