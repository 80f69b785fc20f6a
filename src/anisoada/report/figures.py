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
    "predicted_vs_observed_figure",
    "prediction_figure",
    "smoothness_figure",
    "sweep_figures",
]


def _style(optimizer: str) -> tuple[str, str, str]:
    style = method_style(optimizer)
    return style.name, style.color, style.marker


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, bbox_inches="tight", format="png")
    return path


def _gap(values: Any, f_star: float | None) -> Any:
    # Suboptimality on a log axis; a value at or below f* (rounding) is floored for display.
    # Without a known f* the loss itself is shown.
    if f_star is None or not np.isfinite(f_star):
        return values
    return np.maximum(values - f_star, 1e-12)


def _axis_label(f_star: float | None, what: str) -> str:
    return f"{what} f − f*" if f_star is not None and np.isfinite(f_star) else f"{what} loss"


def sweep_figures(
    sweep_dir: str | Path,
    figures_dir: str | Path,
    f_star: dict[str, float | None] | None = None,
    datasets: list[str] | None = None,
) -> dict[str, Path]:
    """Draw a sweep's figures (from its stored tables) into ``figures_dir``; name → path.

    * ``best_loss_vs_batch.png`` — per problem, each optimizer's tuned tail gap ``f − f*`` (or
      loss, where ``f*`` is unknown) against batch size: the mean over seeds, with error bars
      spanning the range over seeds;
    * ``curves_<dataset>.png`` — training-loss gap vs samples at the tuned learning rate, one
      panel per batch size (mean over seeds, band: the range over seeds);
    * ``lr_sensitivity_<dataset>.png`` — tail gap vs learning rate, one panel per optimizer,
      one line per batch size (mean over seeds; diverged rates are absent).

    Args:
        sweep_dir: The sweep's directory (``results.parquet``, ``selection.parquet``).
        figures_dir: Where the PNGs go.
        f_star: Known minima per problem (default: the sweep's ``references.csv``).
        datasets: The problems to draw, in order (default: the selection's order).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from anisoada.schema import files as names

    sweep_dir, figures_dir = Path(sweep_dir), Path(figures_dir)
    rows = pd.read_parquet(sweep_dir / f"{names.RESULTS}.parquet")
    selection = pd.read_parquet(sweep_dir / f"{names.SELECTION}.parquet")
    if f_star is None:
        path = sweep_dir / f"{names.REFERENCES}.csv"
        table = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["dataset"])
        f_star = {
            r["dataset"]: (None if pd.isna(r["f_star"]) else float(r["f_star"]))
            for r in table.to_dict("records")
        }
    if datasets is None:
        datasets = list(dict.fromkeys(selection["dataset"]))
    files: dict[str, Path] = {}
    if not datasets or rows.empty:
        return files
    scores = pd.read_parquet(sweep_dir / f"{names.SCORES}.parquet")
    tails = _at_selected(scores, selection)

    # 1. Best loss vs batch size, error bars over seeds.
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        reference = f_star.get(dataset)
        for optimizer, group in tails[tails["dataset"] == dataset].groupby("optimizer"):
            label, color, marker = _style(str(optimizer))
            gaps = _gap(group["tail_loss"], reference)
            by_size = gaps.groupby(group["batch_size"])
            mean, low, high = by_size.mean(), by_size.min(), by_size.max()
            ax.errorbar(
                mean.index,
                mean.to_numpy(),
                yerr=np.vstack([mean - low, high - mean]),
                marker=marker,
                color=color,
                label=label,
                capsize=3,
            )
        ax.set(yscale="log", xlabel="batch size", title=dataset)
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3, which="both")
        ax.set_ylabel(_axis_label(reference, "tuned tail"))
    axes[0][0].legend()
    figure.suptitle(
        "Tuned training loss vs batch size (fixed sample budget; bars: range over seeds)"
    )
    figure.tight_layout()
    files["best_loss_vs_batch.png"] = _save(figure, figures_dir / "best_loss_vs_batch.png")
    plt.close(figure)

    for dataset in datasets:
        reference = f_star.get(dataset)
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
                by_samples = run.groupby("samples")["train_loss"]
                curve, low, high = by_samples.mean(), by_samples.min(), by_samples.max()
                seeds = int(run["seed"].nunique())
                ax.plot(
                    curve.index,
                    _gap(curve, reference),
                    color=color,
                    label=f"{label} (lr {record['best_lr']:.3g}, {seeds} seeds)",
                )
                # The band: the range over seeds at each evaluation point.
                ax.fill_between(
                    curve.index,
                    _gap(low, reference),
                    _gap(high, reference),
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
            ax.set(yscale="log", title=f"batch {size}", xlabel="samples")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=6)
        for ax in axes.flat[len(sizes) :]:
            ax.axis("off")
        axes[0][0].set_ylabel(_axis_label(reference, ""))
        figure.suptitle(f"{dataset}: training loss at the tuned learning rate (band: seeds)")
        figure.tight_layout()
        name = f"curves_{dataset}.png"
        files[name] = _save(figure, figures_dir / name)
        plt.close(figure)

        # 3. Learning-rate sensitivity: tail gap vs lr, one panel per optimizer.
        per_lr = scores[(scores["dataset"] == dataset) & ~scores["diverged"].astype(bool)]
        per_lr = per_lr.groupby(["optimizer", "batch_size", "lr"])["tail_loss"].mean().reset_index()
        optimizers = list(dict.fromkeys(chosen["optimizer"]))
        figure, axes = plt.subplots(
            1, len(optimizers), figsize=(4.0 * len(optimizers), 3.3), squeeze=False, sharey=True
        )
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
        for ax, optimizer in zip(axes[0], optimizers):
            for color, size in zip(colors, sizes):
                curve = per_lr[(per_lr["optimizer"] == optimizer) & (per_lr["batch_size"] == size)]
                ax.plot(
                    curve["lr"],
                    _gap(curve["tail_loss"], reference),
                    marker=".",
                    color=color,
                    label=f"batch {size}",
                )
            ax.set(xscale="log", yscale="log", xlabel="learning rate", title=_style(optimizer)[0])
            ax.grid(alpha=0.3, which="both")
        axes[0][0].set_ylabel(_axis_label(reference, "tail"))
        axes[0][-1].legend(fontsize=6)
        figure.suptitle(f"{dataset}: learning-rate sensitivity (mean over seeds)")
        figure.tight_layout()
        name = f"lr_sensitivity_{dataset}.png"
        files[name] = _save(figure, figures_dir / name)
        plt.close(figure)
    return files


def _at_selected(scores: pd.DataFrame, selection: pd.DataFrame) -> pd.DataFrame:
    """The stored run scores (tail losses) at each group's selected rate."""
    runs = scores
    chosen = selection.dropna(subset=["best_lr"])[["dataset", "optimizer", "batch_size", "best_lr"]]
    merged = runs.merge(chosen, on=["dataset", "optimizer", "batch_size"])
    return merged[merged["lr"] == merged["best_lr"]]


def logreg_figures(out: str | Path, figures_dir: str | Path) -> dict[str, Path]:
    """Draw the logistic target's figures (from its directory ``out``) into ``figures_dir``.

    The sweep's figures (:func:`sweep_figures`, with Table 2's ``f*``) and
    ``predicted_vs_observed.png`` — the AdaGrad/SGD ratio predicted by the convex bounds and
    observed (with its 95% interval over seeds), vs batch size.
    """
    out = Path(out)
    table2 = pd.read_csv(out / "table2.csv")
    f_star = {str(k): float(v) for k, v in zip(table2["dataset"], table2["f_star"])}
    selection = pd.read_parquet(out / "sweep" / "selection.parquet")
    # The order of the reproduction's datasets (Table 2 keeps the sweep's order).
    datasets = [str(name) for name in table2["dataset"] if name in set(selection["dataset"])]
    figures_dir = Path(figures_dir)
    files = sweep_figures(out / "sweep", figures_dir, dict(f_star), datasets)
    predicted = predicted_vs_observed_figure(out, figures_dir)
    if predicted is not None:
        files["predicted_vs_observed.png"] = predicted
    return files


def predicted_vs_observed_figure(out: str | Path, figures_dir: str | Path) -> Path | None:
    """``predicted_vs_observed.png`` of the logistic target alone (``None`` without rows):
    the AdaGrad/SGD ratio of the convex bounds and the observed one with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out, figures_dir = Path(out), Path(figures_dir)
    table2 = pd.read_csv(out / "table2.csv")
    comparison = pd.read_csv(out / "predicted_vs_observed.csv")
    datasets = [str(name) for name in table2["dataset"] if name in set(comparison["dataset"])]
    path = None
    if not comparison.empty:
        figure, axes = plt.subplots(
            1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False, sharey=True
        )
        for ax, dataset in zip(axes[0], datasets):
            part = comparison[comparison["dataset"] == dataset].sort_values("batch_size")
            observed = part["observed"].to_numpy()
            errors = np.vstack(
                [observed - part["observed_low"].to_numpy(), part["observed_high"] - observed]
            )
            ax.errorbar(part["batch_size"], observed, yerr=np.nan_to_num(errors), fmt="o-",
                        color=method_style("adagrad").color, capsize=3,
                        label="observed gap ratio (95% interval)")  # fmt: skip
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
        path = _save(figure, figures_dir / "predicted_vs_observed.png")
        plt.close(figure)
    return path


def figure2(lm_dir: str | Path, path: str | Path) -> Path:
    """Figure 2: training loss of the tuned LM runs vs examples seen, one panel per batch size.

    Per optimizer, at the learning rate Table 4 (``lm_dir/table4.csv``) selected, the training
    loss at the parameters of each evaluation point (on the fixed training subset: its last
    point is Table 4's ``final_train_loss``; solid, mean over seeds, with a band of the range
    over seeds) and the held-out loss (dashed, mean over seeds).
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
            seeds = int(run["seed"].nunique())
            spread = run.groupby("step", as_index=False)
            low, high = spread.min(numeric_only=True), spread.max(numeric_only=True)
            run = spread.mean(numeric_only=True)
            name, color, _ = method_style(record["optimizer"])
            label = f"{name} (lr {record['best_lr']:.3g}, {seeds} seeds)"
            x, train_loss, what = _train_curve(run)
            axis.plot(x, train_loss, color=color, label=f"{label}, {what}")
            if what.startswith("train"):
                # The band: the range over seeds at each evaluation point.
                axis.fill_between(
                    x, low["train_loss"], high["train_loss"], color=color, alpha=0.2, linewidth=0
                )
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
