"""The report's figures, drawn from stored results only.

Nothing here trains or measures: every function reads what a reproduction target or a sweep
stored (tables named in :mod:`anisoada.schema`) and writes PNGs (matplotlib's Agg backend;
matplotlib is the ``report`` extra) into the directory it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from anisoada._io import atomic_path
from anisoada.report.presentation import method_style

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure

__all__ = [
    "figure2",
    "lm_noise_figure",
    "logreg_figures",
    "prediction_figure",
    "smoothness_figure",
]


def _style(optimizer: str) -> tuple[str, str, str]:
    style = method_style(optimizer)
    return style.name, style.color, style.marker


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, bbox_inches="tight", format="png")
    return path


def _gap(values: pd.Series, f_star: float) -> pd.Series:
    # Suboptimality on a log axis; a value at or below f* (rounding) is floored for display.
    return np.maximum(values - f_star, 1e-12)


def logreg_figures(out: str | Path, figures_dir: str | Path) -> dict[str, Path]:
    """Draw the logistic target's figures (from its directory ``out``) into ``figures_dir``.

    Returns name → path:

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
    figures_dir = Path(figures_dir)
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


def figure2(lm_dir: str | Path, path: str | Path) -> Path:
    """Figure 2: training loss of the tuned LM runs vs examples seen, one panel per batch size.

    Per optimizer, at the learning rate Table 4 (``lm_dir/table4.csv``) selected, the training
    loss at the parameters of each evaluation point (on the fixed training subset: its last
    point is Table 4's ``train_loss``; solid, mean over seeds) and the held-out loss (dashed).
    Runs stored without ``train_loss`` show instead the mean mini-batch loss of each evaluation
    interval, drawn at the interval's midpoint and labelled as such. A random initialisation
    standing in for pretrained weights is named in the title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lm_dir, path = Path(lm_dir), Path(path)
    rows = pd.read_parquet(lm_dir / "sweep" / "results.parquet")
    table = pd.read_csv(lm_dir / "table4.csv")
    sizes = sorted(table["batch_size"].unique())
    figure, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 3.8), squeeze=False)
    for axis, batch_size in zip(axes[0], sizes):
        for record in table[table["batch_size"] == batch_size].to_dict("records"):
            if not np.isfinite(record["best_lr"]):
                continue
            run = rows[
                (rows["optimizer"] == record["optimizer"])
                & (rows["batch_size"] == batch_size)
                & np.isclose(rows["lr"], record["best_lr"])
            ]
            run = run.groupby("step", as_index=False).mean(numeric_only=True)
            name, color, _ = method_style(record["optimizer"])
            label = f"{name} (lr {record['best_lr']:.3g})"
            x, train_loss, what = _train_curve(run)
            axis.plot(x, train_loss, color=color, label=f"{label}, {what}")
            axis.plot(run["samples"], run["eval_loss"], color=color, ls="--", label="held-out")
        axis.set_title(f"batch size {batch_size}")
        axis.set_xlabel("examples seen")
        axis.set_ylabel("loss (response tokens)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    initialisation = str(table["initialisation"].iloc[0]) if len(table) else ""
    title = "GPT-2 instruction tuning: SGD vs AdaGrad at tuned learning rates"
    if initialisation.startswith("random init (stand-in"):
        title += f"\nSTAND-IN: {initialisation}, not the paper's pretrained model"
    figure.suptitle(title)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)
    return path


def _train_curve(run: pd.DataFrame) -> tuple[pd.Series, pd.Series, str]:
    """The training-loss line of one run: positions, values and what they are."""
    if "train_loss" in run and run["train_loss"].notna().all():
        return run["samples"], run["train_loss"], "train (at the parameters)"
    # batch_loss at a row averages the mini-batches since the previous row: plot it mid-way.
    midpoints = (run["samples"] + run["samples"].shift(1)) / 2
    return midpoints, run["batch_loss"], "mean mini-batch loss of the interval"


def smoothness_figure(stem: str | Path, path: str | Path) -> Path:
    """Figure 1 from the stored points ``<stem>.npz``/``.json`` of a smoothness check."""
    from anisoada.measure.smoothness_check import SmoothnessCheckResult, plot_smoothness_check

    result = SmoothnessCheckResult.load(Path(stem))
    preset = result.provenance.get("preset")
    model_name = "GPT-2 124M" if preset == "gpt2" else f"GPT-2 ({preset})"
    title = f"{model_name}, full-batch Adam: secant smoothness vs |gradient|"
    return Path(plot_smoothness_check(result, Path(path), title=title))


def prediction_figure(problem: dict[str, Any], table: pd.DataFrame, path: str | Path) -> Path:
    """A problem's bound-vs-batch-size curves (:func:`anisoada.theory.plot_prediction`).

    ``problem`` is the theory target's record of the problem (``name``, ``budget``,
    ``batch_sizes``); the swept batch sizes are marked by grey bands.
    """
    from anisoada.theory import plot_prediction

    path = Path(path)
    title = f"{problem['name']}: bounds at N = {problem['budget']:.3g} samples (up to constants)"
    figure = plot_prediction(table, title=title)
    axis = figure.axes[0]
    swept = problem.get("batch_sizes", [])
    for size in swept:
        axis.axvline(size, color="tab:gray", lw=3, alpha=0.2)
    if swept:
        from matplotlib.lines import Line2D

        # plot_prediction's legend holds proxies for the term styles: keep them, add one more.
        legend = axis.get_legend()
        assert legend is not None  # plot_prediction always draws one
        # Its entries are lines, each with a handle (matplotlib types a missing one as None).
        handles = cast("list[Artist]", list(legend.legend_handles))
        labels = [text.get_text() for text in legend.get_texts()]
        handles.append(Line2D([], [], color="tab:gray", lw=3, alpha=0.2))
        labels.append("swept batch sizes")
        axis.legend(handles, labels, fontsize="small")
    figure.set_size_inches(6.4, 4.4)
    return _save(figure, path)


def lm_noise_figure(table: pd.DataFrame, path: str | Path) -> Path:
    """Per-layer gradient-noise anisotropy ρ_σ of the tuned LM runs (the theory target's table)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = sorted(dict.fromkeys(zip(table["optimizer"], table["batch_size"])))
    layers = list(dict.fromkeys(table["layer"]))
    sizes = sorted(set(table["batch_size"]))
    figure = Figure(figsize=(max(6.4, 0.7 * len(layers) + 3.0), 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    width = 0.8 / max(1, len(runs))
    positions = np.arange(len(layers))
    for index, (optimizer, batch_size) in enumerate(runs):
        part = table[(table["batch_size"] == batch_size) & (table["optimizer"] == optimizer)]
        values = part.set_index("layer")["rho_sigma_mean"].reindex(layers)
        # One colour per method (as in every other figure), lighter for larger batches.
        shade = 1.0 - 0.55 * sizes.index(batch_size) / max(1, len(sizes) - 1)
        axis.bar(
            positions + (index - (len(runs) - 1) / 2) * width,
            values.to_numpy(),
            width,
            color=method_style(optimizer).color,
            alpha=shade,
            label=f"{method_style(optimizer).name}, batch {batch_size}",
        )
    axis.axhline(1.0, color="k", lw=0.6)
    axis.set_xticks(positions, layers, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel("ρ_σ = ‖σ‖₁ / (√d ‖σ‖₂)")
    axis.set_ylim(0, 1.05)
    axis.set_title("Gradient-noise anisotropy per layer (mean over measured steps)")
    axis.legend(fontsize="small", ncols=2, loc="upper left")
    return _save(figure, Path(path))
