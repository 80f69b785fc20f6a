"""Figures of the logistic-regression reproduction, drawn from stored tables only.

Nothing here trains or measures: every function reads what
:func:`anisoada.experiments.logreg.run_logreg` stored (``sweep/results.parquet``,
``sweep/selection.parquet``, ``table2.csv``, ``predicted_vs_observed.csv``) and writes PNGs
(matplotlib's Agg backend; matplotlib is the ``report`` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from anisoada._io import atomic_path
from anisoada.experiments.presentation import method_style

__all__ = ["logreg_figures"]


def _style(optimizer: str) -> tuple[str, str, str]:
    return tuple(method_style(optimizer))


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, bbox_inches="tight", format="png")
    return path


def _gap(values: pd.Series, f_star: float) -> pd.Series:
    # Suboptimality on a log axis; a value at or below f* (rounding) is floored for display.
    return np.maximum(values - f_star, 1e-12)


def logreg_figures(out: str | Path) -> dict[str, Path]:
    """Write the reproduction's figures under ``out/figures``; returns name → path.

    * ``best_loss_vs_batch.png`` — tuned final optimality gap ``f − f*`` vs batch size, per
      dataset, one line per optimizer (the paper's claim: AdaGrad lowest at every batch size);
    * ``curves_<dataset>.png`` — training-loss gap vs samples at the tuned learning rate, one
      panel per batch size;
    * ``lr_sensitivity_<dataset>.png`` — final gap vs learning rate, one panel per optimizer,
      one line per batch size (diverged rates are absent);
    * ``predicted_vs_observed.png`` — AdaGrad/SGD ratio predicted by the convex bounds and
      observed, vs batch size.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    rows = pd.read_parquet(out / "sweep" / "results.parquet")
    selection = pd.read_parquet(out / "sweep" / "selection.parquet")
    table2 = pd.read_csv(out / "table2.csv")
    comparison = pd.read_csv(out / "predicted_vs_observed.csv")
    f_star = dict(zip(table2["dataset"], table2["f_star"]))
    # The order of the reproduction's datasets (Table 2 keeps the sweep's order).
    datasets = [name for name in table2["dataset"] if name in set(selection["dataset"])]
    figures_dir = out / "figures"
    files: dict[str, Path] = {}

    # 1. Best loss vs batch size.
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for optimizer, group in selection[selection["dataset"] == dataset].groupby("optimizer"):
            label, color, marker = _style(optimizer)
            group = group.sort_values("batch_size")
            ax.plot(
                group["batch_size"],
                _gap(group["train_loss"], f_star[dataset]),
                marker=marker,
                color=color,
                label=label,
            )
        ax.set(xscale="log", yscale="log", xlabel="batch size", title=dataset)
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("tuned final f − f*")
    axes[0][0].legend()
    figure.suptitle("Best training loss vs batch size (fixed sample budget)")
    figure.tight_layout()
    files["best_loss_vs_batch.png"] = _save(figure, figures_dir / "best_loss_vs_batch.png")
    plt.close(figure)

    for dataset in datasets:
        chosen = selection[selection["dataset"] == dataset]
        data = rows[rows["dataset"] == dataset]
        sizes = sorted(chosen["batch_size"].unique())

        # 2. Loss curves at the tuned learning rate, one panel per batch size.
        columns = min(len(sizes), 5)
        lines = int(np.ceil(len(sizes) / columns))
        figure, axes = plt.subplots(
            lines, columns, figsize=(3.4 * columns, 2.8 * lines), squeeze=False, sharey=True
        )
        for ax, size in zip(axes.flat, sizes):
            for record in chosen[chosen["batch_size"] == size].to_dict("records"):
                if not np.isfinite(record["best_lr"]):
                    continue
                label, color, marker = _style(record["optimizer"])
                run = data[
                    (data["optimizer"] == record["optimizer"])
                    & (data["batch_size"] == size)
                    & (data["lr"] == record["best_lr"])
                ]
                curve = run.groupby("samples")["train_loss"].mean()
                ax.plot(
                    curve.index,
                    _gap(curve, f_star[dataset]),
                    color=color,
                    label=f"{label} (lr {record['best_lr']:.3g})",
                )
            ax.set(yscale="log", title=f"batch {size}", xlabel="samples")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=6)
        for ax in axes.flat[len(sizes) :]:
            ax.axis("off")
        axes[0][0].set_ylabel("f − f*")
        figure.suptitle(f"{dataset}: training loss at the tuned learning rate")
        figure.tight_layout()
        name = f"curves_{dataset}.png"
        files[name] = _save(figure, figures_dir / name)
        plt.close(figure)

        # 3. Learning-rate sensitivity: final gap vs lr, one panel per optimizer.
        finals = (
            data.sort_values("step")
            .groupby(["optimizer", "batch_size", "seed", "lr"])
            .tail(1)
            .query("status != 'diverged'")
            .groupby(["optimizer", "batch_size", "lr"])["train_loss"]
            .mean()
            .reset_index()
        )
        optimizers = list(dict.fromkeys(chosen["optimizer"]))
        figure, axes = plt.subplots(
            1, len(optimizers), figsize=(4.0 * len(optimizers), 3.3), squeeze=False, sharey=True
        )
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
        for ax, optimizer in zip(axes[0], optimizers):
            for color, size in zip(colors, sizes):
                curve = finals[(finals["optimizer"] == optimizer) & (finals["batch_size"] == size)]
                ax.plot(
                    curve["lr"],
                    _gap(curve["train_loss"], f_star[dataset]),
                    marker=".",
                    color=color,
                    label=f"batch {size}",
                )
            ax.set(xscale="log", yscale="log", xlabel="learning rate", title=_style(optimizer)[0])
            ax.grid(alpha=0.3, which="both")
        axes[0][0].set_ylabel("final f − f*")
        axes[0][-1].legend(fontsize=6)
        figure.suptitle(f"{dataset}: learning-rate sensitivity")
        figure.tight_layout()
        name = f"lr_sensitivity_{dataset}.png"
        files[name] = _save(figure, figures_dir / name)
        plt.close(figure)

    # 4. Predicted vs observed advantage.
    if not comparison.empty:
        figure, axes = plt.subplots(
            1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False, sharey=True
        )
        for ax, dataset in zip(axes[0], datasets):
            part = comparison[comparison["dataset"] == dataset].sort_values("batch_size")
            ax.plot(part["batch_size"], part["observed"], "o-", color=method_style("adagrad").color,
                    label="observed gap ratio")  # fmt: skip
            ax.plot(part["batch_size"], part["predicted_box"], "--", color="k",
                    label="bounds, box W (‖L‖∞)")  # fmt: skip
            ax.plot(part["batch_size"], part["predicted_box_lambda_max"], ":",
                    color="gray", label="bounds, box W (λ_max)")  # fmt: skip
            ax.plot(part["batch_size"], part["predicted_distance"], "-.",
                    color="tab:purple", label="bounds, ‖w*‖₂ vs ‖w*‖∞")  # fmt: skip
            ax.axhline(1.0, color="k", linewidth=0.5)
            ax.set(yscale="log", xlabel="batch size", title=dataset)
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3, which="both")
        axes[0][0].set_ylabel("AdaGrad / SGD (< 1: AdaGrad better)")
        axes[0][0].legend(fontsize=7)
        figure.suptitle("AdaGrad vs SGD: predicted (up to constants) and observed")
        figure.tight_layout()
        files["predicted_vs_observed.png"] = _save(
            figure, figures_dir / "predicted_vs_observed.png"
        )
        plt.close(figure)
    return files
