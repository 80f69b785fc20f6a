"""The report's sections, in the order of the paper, each built from stored results only.

Every builder takes the :class:`~anisoada.report._results.ResultsDirectory` and returns a
:class:`~anisoada.report._model.Section`; a target that has not run gives a section that says
how to run it. Sentences that state results are computed from the stored tables here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from anisoada.report import figures
from anisoada.report._model import Block, Bullets, Figure, FigureRow, Section, Table, Text
from anisoada.report._results import ResultsDirectory
from anisoada.report.presentation import method_style, results_columns, results_labels


def _method(key: str) -> str:
    """Display name of an optimizer key (a stored display name or "n/a" is kept as it is)."""
    return key if key == "n/a" else method_style(str(key)).name


def _shown(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``table`` with the optimizer keys of ``columns`` replaced by display names."""
    return table.assign(**{c: table[c].map(_method) for c in columns if c in table})


#: Section ids and titles, in the order they appear.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "At a glance"),
    ("table1", "Table 1 — convergence rates"),
    ("table2", "Table 2 — measured constants"),
    ("figure1", "Figure 1 — generalized smoothness along a trajectory"),
    ("logreg", "Logistic regression across batch sizes"),
    ("lm", "Figure 2 and Table 4 — GPT-2 instruction tuning"),
    ("predicted", "Predicted vs observed advantage"),
    ("rotated", "Rotated-twin control"),
    ("provenance", "Provenance"),
)
_TITLES = dict(SECTIONS)


def _missing(section_id: str, target: str, what: str) -> Section:
    return Section(
        section_id,
        _TITLES[section_id],
        (
            Text(
                f"Not run — run `anisoada reproduce {target}` (add `--preset paper` for the "
                f"paper's setting), then `anisoada report` again. This section shows {what}.",
                "missing",
            ),
        ),
        status="missing",
    )


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _range(values: pd.Series, digits: int = 3) -> str:
    values = values[np.isfinite(values)]
    if values.empty:
        return "n/a"
    low, high = float(values.min()), float(values.max())
    return f"{low:.{digits}g}" if np.isclose(low, high) else f"{low:.{digits}g}–{high:.{digits}g}"


# ------------------------------------------------------------------------------------------
# At a glance
# ------------------------------------------------------------------------------------------


def twin_trend(comparison: pd.DataFrame, original: str, twin: str) -> dict[str, int]:
    """At how many batch sizes the twin's AdaGrad/SGD ratio exceeds the original's.

    Rotating destroys the coordinate structure, so the bounds predict a ratio closer to 1 on
    the twin; the test of the prediction is whether the observed ratio moves the same way.

    Returns:
        ``{"points": batch sizes with finite ratios on both, "predicted_up": …,
        "observed_up": …, "both_up": …}``.
    """
    columns = ["observed", "predicted_box"]
    left = comparison[comparison["dataset"] == original].set_index("batch_size")[columns]
    right = comparison[comparison["dataset"] == twin].set_index("batch_size")[columns]
    table = left.merge(
        right, left_index=True, right_index=True, suffixes=("_original", "_twin")
    ).rename(columns=lambda c: c.replace("predicted_box", "predicted"))
    finite = table[np.isfinite(table.to_numpy(dtype=float)).all(axis=1)]
    predicted_up = finite["predicted_twin"] > finite["predicted_original"]
    observed_up = finite["observed_twin"] > finite["observed_original"]
    return {
        "points": len(finite),
        "predicted_up": int(predicted_up.sum()),
        "observed_up": int(observed_up.sum()),
        "both_up": int((predicted_up & observed_up).sum()),
    }


def _prediction_finding(results: ResultsDirectory, comparison: pd.DataFrame) -> str:
    """What the predicted-vs-observed table says, without the box framing's tautology."""
    observed = comparison["observed"]
    finite = observed[np.isfinite(observed)]
    text = (
        f"AdaGrad's tuned optimality gap was below SGD's at {int((finite < 1).sum())} of "
        f"{len(comparison)} (dataset, batch size) points"
        + (
            f" ({len(comparison) - len(finite)} without a finite ratio)"
            if len(finite) < len(comparison)
            else ""
        )
        + ". In the box framing the bounds always favour AdaGrad (ρ_L, ρ_σ ≤ 1, so the "
        "predicted ratio is at most 1), so that count is no test of them: the informative "
        "comparison is the size of the predicted vs the observed ratio and, on the rotated "
        "twin, whether both move towards 1."
    )
    for original, twin in rotated_pairs(results):
        trend = twin_trend(comparison, original, twin)
        if trend["points"]:
            text += (
                f" Twin {twin} vs {original}: the predicted ratio rose at "
                f"{trend['predicted_up']} of {trend['points']} batch sizes, the observed at "
                f"{trend['observed_up']} (both at {trend['both_up']})."
            )
    return text


def logreg_winners(results: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset, one column per batch size: the method with the lowest tuned loss."""
    sizes = sorted(int(size) for size in results["batch_size"].unique())
    records = []
    for dataset in dict.fromkeys(results["dataset"]):
        part = results[results["dataset"] == dataset].set_index("batch_size")
        row = {"dataset": dataset}
        for size in sizes:
            row[f"batch {size}"] = _method(part["winner"].get(size, "—"))
        records.append(row)
    return pd.DataFrame.from_records(records)


def lm_winners(table4: pd.DataFrame) -> pd.DataFrame:
    """Per batch size, the optimizer with the lowest final training (and held-out) loss."""
    records = []
    for metric, label in (("train_loss", "final training loss"), ("eval_loss", "held-out loss")):
        row = {"criterion": label}
        for size, part in table4.groupby("batch_size", sort=True):
            finite = part[np.isfinite(part[metric])]
            row[f"batch {int(size)}"] = (
                _method(finite.loc[finite[metric].idxmin(), "optimizer"]) if len(finite) else "—"
            )
        records.append(row)
    return pd.DataFrame.from_records(records)


def _summary(results: ResultsDirectory) -> Section:
    blocks: list[Block] = []
    present = [t for t in ("logreg", "lm", "smoothness", "theory") if results.target(t).present]
    absent = [t for t in ("logreg", "lm", "smoothness", "theory") if t not in present]
    presets = sorted({results.target(t).record["preset"] for t in present})
    lead = (
        f"Results of {len(present)} of 4 reproduction targets"
        + (f" ({', '.join(presets)} preset)" if presets else "")
        + ". AdaGrad's bounds depend on ‖L‖₁ and ‖σ‖₁ where SGD's depend on d‖L‖∞ and √d‖σ‖₂, "
        "so anisotropic problems should favour AdaGrad at every batch size."
    )
    blocks.append(Text(lead, "lead"))
    if absent:
        blocks.append(
            Text(
                "Not run yet: "
                + ", ".join(f"`anisoada reproduce {t}`" for t in absent)
                + " — their sections below say so.",
                "note",
            )
        )
    findings = []
    table = results.logreg.csv("results.csv") if results.logreg.present else None
    if table is not None:
        for dataset in dict.fromkeys(table["dataset"]):
            part = table[table["dataset"] == dataset]
            wins = int((part["winner"].map(_method) == _method("adagrad")).sum())
            label = f"{dataset} (stand-in)" if results.logreg_stand_in(dataset) else dataset
            ratio = _range(part["adagrad_vs_sgd"]) if "adagrad_vs_sgd" in part else "n/a"
            findings.append(
                f"Logistic regression, {label}: AdaGrad had the lowest tuned loss at {wins} of "
                f"{len(part)} batch sizes; its optimality gap was {ratio} × SGD's."
            )
        blocks.append(Bullets(tuple(findings)))
        findings = []
        winners = logreg_winners(table)
        blocks.append(
            Table(
                "summary-logreg",
                winners,
                {c: c for c in winners.columns},
                caption="Logistic regression: lowest tuned final training loss",
                source="logreg/results.csv",
                stand_in=results.logreg_stand_in_all(list(winners["dataset"])),
                winner_columns=tuple(c for c in winners.columns if c != "dataset"),
            )
        )
    table4 = results.lm.csv("table4.csv") if results.lm.present else None
    if table4 is not None:
        winners = lm_winners(table4)
        stand_in = "; ".join(results.lm_stand_ins) or None
        for size, part in table4.groupby("batch_size", sort=True):
            losses = {_method(r["optimizer"]): r["train_loss"] for r in part.to_dict("records")}
            shown = ", ".join(f"{name} {loss:.4g}" for name, loss in sorted(losses.items()))
            findings.append(
                f"GPT-2 instruction tuning{' (stand-in)' if stand_in else ''}, batch {int(size)}:"
                f" final training loss {shown}."
            )
        blocks.append(Bullets(tuple(findings)))
        findings = []
        blocks.append(
            Table(
                "summary-lm",
                winners,
                {c: c for c in winners.columns},
                caption="GPT-2 instruction tuning: lowest final loss at the tuned learning rates",
                source="lm/table4.csv",
                stand_in=stand_in,
                winner_columns=tuple(c for c in winners.columns if c != "criterion"),
            )
        )
    comparison = results.logreg.csv("predicted_vs_observed.csv") if results.logreg.present else None
    if comparison is not None and "observed" in comparison:
        findings.append(_prediction_finding(results, comparison))
    envelope = results.smoothness.record.get("pooled") if results.smoothness.present else None
    if envelope:
        findings.append(
            f"Figure 1: an affine envelope y ≤ {envelope['L0']:.3g} + {envelope['L1']:.3g}·x "
            f"covers {100 * envelope['covered_fraction']:.1f}% of "
            f"{envelope['n_points']} secant points"
            + (" (stand-in model/data)" if results.smoothness_stand_ins else "")
            + "."
        )
    if findings:
        blocks.append(Bullets(tuple(findings)))
    stand_ins = []
    if table is not None and results.logreg_stand_in_all(list(table["dataset"])):
        stand_ins.append("the logistic experiments use synthetic data")
    if results.lm_stand_ins:
        stand_ins.append(f"the LM experiment ({', '.join(results.lm_stand_ins)})")
    if results.smoothness_stand_ins:
        stand_ins.append(f"Figure 1 ({', '.join(results.smoothness_stand_ins)})")
    if stand_ins:
        blocks.append(
            Text(
                "Stand-ins — "
                + "; ".join(stand_ins)
                + ". Those numbers show the method at work on CPU-sized problems, not the "
                "paper's numbers; `anisoada reproduce --preset paper` runs the paper's setting.",
                "stand-in",
            )
        )
    return Section("summary", _TITLES["summary"], tuple(blocks))


# ------------------------------------------------------------------------------------------
# Table 1
# ------------------------------------------------------------------------------------------

_RATE_COLUMNS = {
    "setting": "Setting",
    "method": "Method",
    "rate": "Bound (up to constants)",
    "large_batch": "At fixed N = MT",
    "source": "Source",
}
_MEASURED_RATE_COLUMNS = {
    "method": "Method",
    "bias_coef": "bias at M=T=1",
    "noise_coef": "noise at M=T=1",
    "bias_ratio": "bias ÷ SGD",
    "noise_ratio": "noise ÷ SGD",
    "critical_batch_size": "critical M",
}


def _table1(results: ResultsDirectory) -> Section:
    theory = results.theory
    if not theory.present:
        return _missing("table1", "theory", "the paper's comparison of rates")
    blocks: list[Block] = [
        Text(
            "The paper's bounds for AdaGrad and the uniform-step methods. All hold up to absolute "
            "constants; AdaGrad's use ℓ1 norms of L and σ and the ℓ∞ diameter, SGD's the "
            "worst coordinate of L, the ℓ2 norm of σ and the ℓ2 diameter."
        )
    ]
    symbolic = theory.csv("table1.csv")
    if symbolic is not None:
        blocks.append(
            Table(
                "table1",
                symbolic,
                _RATE_COLUMNS,
                caption="Table 1: convergence bounds (M batch size, T iterations, N = MT)",
                source="theory/table1.csv",
            )
        )
    record = theory.record
    if record.get("fallback_synthetic"):
        blocks.append(
            Text(
                "No stored logistic measurements were found when the theory target ran, so the "
                "coefficients below are the embedded synthetic problem's exact L and σ(0). Run "
                "`anisoada reproduce logreg` then `anisoada reproduce theory` for measured ones.",
                "stand-in",
            )
        )
    for problem in record.get("problems", []):
        name = problem["name"]
        rates = theory.csv(f"rates_{name}.csv")
        if rates is None:
            continue
        rates = rates[rates["setting"] == "convex"].reset_index(drop=True)
        stand_in = results.logreg_stand_in(name) or (
            "embedded synthetic problem" if problem.get("stand_in") else None
        )
        blocks.append(
            Table(
                f"rates-{name}",
                rates,
                _MEASURED_RATE_COLUMNS,
                caption=(
                    f"{name}: convex bounds with this run's coefficients (N = "
                    f"{problem['budget']:.3g}, box W, up to constants)"
                ),
                source=f"theory/rates_{name}.csv",
                digits=3,
                stand_in=stand_in,
            )
        )
    return Section("table1", _TITLES["table1"], tuple(blocks))


# ------------------------------------------------------------------------------------------
# Table 2
# ------------------------------------------------------------------------------------------

_TABLE2_SMOOTHNESS_COLUMNS = {
    "dataset": "dataset",
    "n": "n",
    "d": "d",
    "L_l1": "‖L‖₁",
    "L_linf": "‖L‖∞",
    "lambda_max": "λ_max",
    "rho_L": "ρ_L",
    "D_inf": "D∞",
    "D_2": "D₂",
    "rho_D": "ρ_D",
    "f_star": "f*",
}
_TABLE2_NOISE_COLUMNS = {
    "dataset": "dataset",
    "sigma_l1_init": "‖σ‖₁ at w₁",
    "sigma_l2_init": "‖σ‖₂ at w₁",
    "rho_sigma_init": "ρ_σ at w₁",
    "sigma_l1_opt": "‖σ‖₁ at w*",
    "sigma_l2_opt": "‖σ‖₂ at w*",
    "rho_sigma_opt": "ρ_σ at w*",
}


def _table2(results: ResultsDirectory) -> Section:
    table2 = results.logreg.csv("table2.csv") if results.logreg.present else None
    if table2 is None:
        return _missing("table2", "logreg", "the measured smoothness and noise constants")
    blocks: list[Block] = [
        Text(
            "The constants that enter the bounds, measured in closed form for each logistic "
            "problem: ρ_L = ‖L‖₁/(d‖L‖∞) and ρ_σ = ‖σ‖₁/(√d‖σ‖₂) are 1 for an isotropic problem "
            "and small for an anisotropic one; the smaller they are, the larger AdaGrad's "
            "predicted advantage. σ is measured at the start w₁ = 0 and at the minimiser w*."
        ),
    ]
    stand_in = results.logreg_stand_in_all(list(table2["dataset"]))
    blocks.append(
        Table(
            "table2",
            table2,
            _TABLE2_SMOOTHNESS_COLUMNS,
            caption="Table 2a: smoothness (A2) and geometry (D from w₁ = 0 to the minimiser w*)",
            source="logreg/table2.csv",
            stand_in=stand_in,
        )
    )
    blocks.append(
        Table(
            "table2-noise",
            table2,
            _TABLE2_NOISE_COLUMNS,
            caption="Table 2b: one-sample gradient noise (A5)",
            source="logreg/table2.csv",
            stand_in=stand_in,
        )
    )
    return Section("table2", _TITLES["table2"], tuple(blocks))


# ------------------------------------------------------------------------------------------
# Figure 1
# ------------------------------------------------------------------------------------------

_ENVELOPE_COLUMNS = {
    "tensor": "tensor",
    "L0": "L0",
    "L1": "L1",
    "covered_fraction": "covered",
    "n_points": "points",
    "size": "coordinates",
}


def _figure1(results: ResultsDirectory, figure_dir: Path) -> Section:
    target = results.smoothness
    points = target.file("figure1.npz") if target.present else None
    figure = None
    if points is not None:
        figure = figures.smoothness_figure(
            target.directory / "figure1", figure_dir / "smoothness" / "figure1.png"
        )
    if figure is None:
        return _missing("figure1", "smoothness", "Figure 1 (the (L0, L1) smoothness check)")
    record = target.record
    stand_in = "; ".join(results.smoothness_stand_ins) or None
    settings = record.get("settings", {})
    blocks: list[Block] = [
        Text(
            f"Adam ran {settings.get('steps', '?')} steps with full gradients on a fixed subset "
            f"of {settings.get('examples', '?')} instruction examples; at each step, for sampled "
            "coordinates j, the secant ratio |∂ⱼf(w) − ∂ⱼf(w')|/|wⱼ − w'ⱼ| between consecutive "
            "iterates is plotted against |∂ⱼf(w)|. Assumption A3 says these points lie under "
            "an affine envelope L0 + L1·x; the loss went from "
            f"{record.get('loss_first', float('nan')):.4g} to "
            f"{record.get('loss_last', float('nan')):.4g}."
        )
    ]
    if stand_in:
        blocks.append(Text(f"Stand-in: {stand_in}.", "stand-in"))
    blocks.append(
        Figure(
            figure,
            "Each dot is one coordinate at one iteration (colour: iteration); see whether the "
            "local smoothness grows with the gradient magnitude along the red affine envelope "
            "L0 + L1·x, as assumption A3 allows, instead of staying under one constant.",
            stand_in=stand_in,
        )
    )
    envelope = target.csv("envelope.csv")
    if envelope is not None:
        pooled = envelope[envelope["tensor"] == "pooled"]
        tensors = envelope[envelope["tensor"] != "pooled"]
        blocks.append(
            Table(
                "envelope-pooled",
                pooled,
                _ENVELOPE_COLUMNS,
                caption=f"Pooled envelope (asked to cover {100 * record['pooled']['coverage']:.0f}"
                "% of the points)",
                source="smoothness/envelope.csv",
                stand_in=stand_in,
            )
        )
        if len(tensors):
            blocks.append(
                Table(
                    "envelope-tensors",
                    tensors,
                    _ENVELOPE_COLUMNS,
                    caption="Envelope per parameter tensor",
                    source="smoothness/envelope.csv",
                    stand_in=stand_in,
                    collapsed=f"Envelope of each of the {len(tensors)} parameter tensors",
                )
            )
    return Section("figure1", _TITLES["figure1"], tuple(blocks))


# ------------------------------------------------------------------------------------------
# Logistic regression
# ------------------------------------------------------------------------------------------


def _accuracy_columns(table: pd.DataFrame) -> dict[str, str]:
    """Column → header of the held-out accuracy table, for whichever optimizers were swept."""
    columns = {"dataset": "dataset", "batch_size": "batch"}
    for label in results_labels(table):
        if f"{label}_test_accuracy" in table:
            columns[f"{label}_test_accuracy"] = method_style(label).name
    return columns


def _logreg(results: ResultsDirectory, figure_dir: Path) -> Section:
    target = results.logreg
    table = target.csv("results.csv") if target.present else None
    if table is None:
        return _missing("logreg", "logreg", "AdaGrad vs SGD vs AdaGrad-Norm across batch sizes")
    datasets = list(dict.fromkeys(table["dataset"]))
    stand_in = results.logreg_stand_in_all(datasets)
    sweep = target.json("sweep/sweep.json") or {}
    config = sweep.get("config", {})
    budget = ", ".join(f"{value} {unit}" for unit, value in config.get("budget", {}).items())
    grid = config.get("lr_grid", {})
    blocks: list[Block] = [
        Text(
            f"Every method ran at each batch size with the same sample budget ({budget}), its "
            f"learning rate tuned per batch size on a log grid ({grid.get('low', '?')} to "
            f"{grid.get('high', '?')}, {grid.get('per_decade', '?')} per decade, extended where "
            "the best rate sat at an edge) by final training loss. The paper reports AdaGrad "
            "ahead at every batch size."
        )
    ]
    if stand_in:
        blocks.append(Text(f"Stand-in: {stand_in}.", "stand-in"))
    blocks.append(
        Table(
            "logreg-results",
            _shown(table, ("winner",)),
            results_columns(results_labels(table)),
            caption="Tuned final training loss per batch size (lr = tuned learning rate)",
            source="logreg/results.csv",
            stand_in=stand_in,
            winner_columns=("winner",),
        )
    )
    at_edge = [
        f"{record['dataset']} batch {record['batch_size']} ({_method(key)})"
        for record in table.to_dict("records")
        for key in results_labels(table)
        if str(record.get(f"{key}_at_edge", False)).lower() == "true"
    ]
    if at_edge:
        blocks.append(
            Text(
                "Tuned learning rate still at the edge of the (extended) grid, so that method "
                f"may be under-tuned there: {', '.join(at_edge)}.",
                "note",
            )
        )
    accuracy_columns = _accuracy_columns(table)
    if len(accuracy_columns) > 2:
        blocks.append(
            Table(
                "logreg-accuracy",
                table,
                accuracy_columns,
                caption="Held-out accuracy at the tuned learning rates",
                source="logreg/results.csv",
                stand_in=stand_in,
                collapsed="Held-out accuracy of the tuned runs",
            )
        )
    drawn = figures.logreg_figures(target.directory, figure_dir / "logreg")
    best = drawn.get("best_loss_vs_batch.png")
    if best is not None:
        blocks.append(
            Figure(
                best,
                "Tuned optimality gap f − f* against batch size at a fixed sample budget: the "
                "lower line wins, and the paper's claim is AdaGrad (red) below SGD (blue) at "
                "every batch size.",
                stand_in=stand_in,
            )
        )
    for dataset in datasets:
        item_stand_in = results.logreg_stand_in(dataset)
        curves = drawn.get(f"curves_{dataset}.png")
        if curves is not None:
            blocks.append(
                Figure(
                    curves,
                    f"{dataset}: optimality gap along training at each method's tuned learning "
                    "rate, one panel per batch size; see which curve ends lowest in each panel.",
                    stand_in=item_stand_in,
                )
            )
        sensitivity = drawn.get(f"lr_sensitivity_{dataset}.png")
        if sensitivity is not None:
            blocks.append(
                Figure(
                    sensitivity,
                    f"{dataset}: final gap against learning rate per method (colour: batch size);"
                    " see how wide each method's good range is and whether the tuned rate sits "
                    "inside the grid rather than at its edge.",
                    stand_in=item_stand_in,
                )
            )
    return Section("logreg", _TITLES["logreg"], tuple(blocks))


# ------------------------------------------------------------------------------------------
# GPT-2
# ------------------------------------------------------------------------------------------

_TABLE4_COLUMNS = {
    "batch_size": "batch",
    "optimizer": "optimizer",
    "best_lr": "tuned lr",
    "train_loss": "final train loss",
    "eval_loss": "final held-out loss",
    "gap_vs_sgd": "train loss − SGD's",
    "rho_sigma": "ρ_σ (whole model)",
    "lr_min": "lowest lr tried",
    "lr_max": "highest lr tried",
    "lrs_tried": "lrs tried",
    "at_edge": "tuned lr at grid edge",
    "initialisation": "initialisation",
}
_LM_NOISE_COLUMNS = {
    "batch_size": "batch",
    "optimizer": "optimizer",
    "layer": "layer",
    "d": "d",
    "rho_sigma_first": "ρ_σ first",
    "rho_sigma_last": "ρ_σ last",
    "rho_sigma_mean": "ρ_σ mean",
    "noise_ratio_ceiling": "√ρ_σ (noise-term ratio ≤)",
}


def _lm(results: ResultsDirectory, figure_dir: Path) -> Section:
    target = results.lm
    table4 = target.csv("table4.csv") if target.present else None
    if table4 is None:
        return _missing("lm", "lm", "Figure 2 and Table 4 (SGD vs AdaGrad on GPT-2)")
    stand_in = "; ".join(results.lm_stand_ins) or None
    table4 = table4.assign(optimizer=table4["optimizer"].map(_method))
    problems = target.record.get("sweep", {}).get("problems", [])
    base = problems[0] if problems else {}
    blocks: list[Block] = [
        Text(
            "SGD and AdaGrad fine-tune GPT-2 on instruction data (loss on the response tokens), "
            f"at batch sizes {_join([str(s) for s in sorted(table4['batch_size'].unique())])}, "
            "each with its learning rate tuned per batch size by final training loss; the paper "
            "reports AdaGrad ahead in both panels."
            + (f" Model: '{base.get('model')}' preset." if base else "")
        )
    ]
    if stand_in:
        blocks.append(Text(f"Stand-in: {stand_in}. These are not the paper's numbers.", "stand-in"))
    figure2 = figures.figure2(target.directory, figure_dir / "lm" / "figure2.png")
    if figure2 is not None:
        blocks.append(
            Figure(
                figure2,
                "Training loss (solid) and held-out loss (dashed) of the tuned SGD and AdaGrad "
                "runs, one panel per batch size; see whether AdaGrad's curve lies below SGD's in "
                "both panels.",
                stand_in=stand_in,
            )
        )
    blocks.append(
        Table(
            "table4",
            table4,
            _TABLE4_COLUMNS,
            caption="Table 4: final losses at the tuned learning rates",
            source="lm/table4.csv",
            stand_in=stand_in,
        )
    )
    noise = results.theory.csv("lm_noise.csv") if results.theory.present else None
    noise_figure = (
        figures.lm_noise_figure(noise, figure_dir / "theory" / "lm_noise.png")
        if noise is not None
        else None
    )
    if noise_figure is not None:
        blocks.append(
            Figure(
                noise_figure,
                "Gradient-noise anisotropy ρ_σ per layer at the tuned runs (1 = isotropic): bars "
                "well below 1 mean AdaGrad's ‖σ‖₁ noise term is smaller than SGD's √d‖σ‖₂.",
                stand_in=stand_in,
            )
        )
    if noise is not None:
        blocks.append(
            Table(
                "lm-noise",
                noise.assign(optimizer=noise["optimizer"].map(_method)),
                _LM_NOISE_COLUMNS,
                caption="Per-layer noise anisotropy (the nonconvex noise-term ratio "
                "(ρ_L ρ_σ²)^¼ is at most √ρ_σ)",
                source="theory/lm_noise.csv",
                digits=3,
                stand_in=stand_in,
                collapsed="Per-layer gradient-noise anisotropy table",
            )
        )
    return Section("lm", _TITLES["lm"], tuple(blocks))


# ------------------------------------------------------------------------------------------
# Predicted vs observed
# ------------------------------------------------------------------------------------------

_PREDICTION_COLUMNS = {
    "dataset": "dataset",
    "batch_size": "batch",
    "predicted_box": "predicted, box W (‖L‖∞)",
    "predicted_box_lambda_max": "predicted, box W (λ_max)",
    "predicted_distance": "predicted, D₂ vs D∞ (λ_max)",
    "observed": "observed gap ratio",
    "observed_adagrad_norm": "observed AdaGrad-Norm/SGD",
    "predicted_winner": "predicted winner",
    "observed_winner": "observed winner",
}


def _predicted(results: ResultsDirectory, figure_dir: Path) -> Section:
    comparison = results.logreg.csv("predicted_vs_observed.csv") if results.logreg.present else None
    theory = results.theory
    if comparison is None and not theory.present:
        return _missing("predicted", "logreg", "the bounds' predicted AdaGrad/SGD ratio next to "
                        "the observed one")  # fmt: skip
    blocks: list[Block] = [
        Text(
            "The ratio AdaGrad/SGD of the convex bounds (up to absolute constants, so read their "
            "side of 1 and their trend, not their value) next to the observed ratio of "
            "optimality gaps (f_AdaGrad − f*)/(f_SGD − f*) at the tuned learning rates; below 1 "
            "means AdaGrad is better. 'Box W' puts both methods on one box containing the path "
            "(the paper's framing); 'D₂ vs D∞' credits SGD with the Euclidean distance to w*, "
            "the comparison hardest for AdaGrad."
        )
    ]
    status = "ok"
    if comparison is not None:
        datasets = list(dict.fromkeys(comparison["dataset"]))
        stand_in = results.logreg_stand_in_all(datasets)
        blocks.append(
            Table(
                "predicted-vs-observed",
                _shown(comparison, ("predicted_winner", "observed_winner")),
                _PREDICTION_COLUMNS,
                caption="AdaGrad/SGD: predicted by the bounds and observed",
                source="logreg/predicted_vs_observed.csv",
                digits=3,
                stand_in=stand_in,
                winner_columns=("predicted_winner", "observed_winner"),
            )
        )
        drawn = figures.logreg_figures(results.logreg.directory, figure_dir / "logreg")
        figure = drawn.get("predicted_vs_observed.png")
        if figure is not None:
            blocks.append(
                Figure(
                    figure,
                    "Observed gap ratio (red) and the three readings of the bounds' ratio "
                    "(dashed, dotted, dash-dotted) against batch size: see which side of the "
                    "line at 1 (below: AdaGrad better) each lies on, and whether the observed "
                    "ratio follows the predicted trend.",
                    stand_in=stand_in,
                )
            )
    else:
        status = "partial"
        blocks.append(Text("No observed ratios: run `anisoada reproduce logreg`.", "missing"))
    curves = []
    if theory.present:
        for problem in theory.record.get("problems", []):
            prediction = theory.csv(f"predicted_{problem['name']}.csv")
            if prediction is None:
                continue
            path = figures.prediction_figure(
                problem, prediction, figure_dir / "theory" / f"predicted_{problem['name']}.png"
            )
            stand_in = results.logreg_stand_in(problem["name"]) or (
                "embedded synthetic problem" if problem.get("stand_in") else None
            )
            curves.append(
                Figure(
                    path,
                    f"{problem['name']}: each method's bound against batch size at a fixed "
                    "sample budget (dashed: bias term, dotted: noise term, dot: critical batch "
                    "size); see that AdaGrad's noise term is flat in M and how far below SGD's "
                    "its curve sits at the swept batch sizes (grey bands).",
                    stand_in=stand_in,
                )
            )
    else:
        status = "partial"
        blocks.append(
            Text("No bound-vs-batch-size curves: run `anisoada reproduce theory`.", "missing")
        )
    if curves:
        blocks.append(FigureRow(tuple(curves)) if len(curves) > 1 else curves[0])
    return Section("predicted", _TITLES["predicted"], tuple(blocks), status=status)


# ------------------------------------------------------------------------------------------
# Rotated twin
# ------------------------------------------------------------------------------------------


def rotated_pairs(results: ResultsDirectory) -> list[tuple[str, str]]:
    """(original, rotated twin) dataset pairs of the logistic sweep (same generator options)."""
    sweep = results.logreg.json("sweep/sweep.json") or {}
    specs = [
        spec
        for spec in sweep.get("config", {}).get("problems", [])
        if spec.get("kind", "logistic") == "logistic"
    ]
    originals = [s for s in specs if s.get("source") == "synthetic"]
    pairs = []
    ignored = ("kind", "name", "source", "rotation_seed", "stream")
    for twin in (s for s in specs if s.get("source") == "rotated"):
        options = {k: v for k, v in twin.items() if k not in ignored}
        candidates = [
            o for o in originals if {k: v for k, v in o.items() if k not in ignored} == options
        ]
        # A twin that names its base problem's stream is paired with that problem.
        match = next(
            (o for o in candidates if o["name"] == twin.get("stream")),
            candidates[0] if candidates else None,
        )
        if match is not None:
            pairs.append((match["name"], twin["name"]))
    return pairs


def sgd_twin_difference(results: ResultsDirectory, original: str, twin: str) -> dict | None:
    """SGD's stored training losses on a problem and its twin, compared evaluation by evaluation.

    SGD from ``w = 0`` is rotation-equivariant (on ``XQ`` its iterates are ``Qᵀ w_t``), so with
    the same mini-batches its losses on the twin equal the original's up to float rounding.
    Rounding is amplified without bound by runs at unstable learning rates (chaotic, though
    not flagged as diverged), so the comparison keeps the *stable* runs: those whose losses
    never exceed the starting loss ``f(w_1) = log 2`` on either problem.

    Returns:
        ``{"max_rel": max |f_twin − f_original| / f_original over the stable runs' evaluations,
        "evaluations": how many, "runs": stable runs compared, "unstable": runs left out,
        "mismatched": evaluations finite on one side only}``, or None when the stored rows
        have no SGD runs on both datasets.
    """
    path = results.logreg.file("sweep/results.parquet")
    if path is None:
        return None
    rows = pd.read_parquet(path)
    by_name = rows["optimizer_name"] if "optimizer_name" in rows else rows["optimizer"]
    sgd = rows[by_name == "sgd"]
    run = ["optimizer", "batch_size", "seed", "lr"]
    left = sgd[sgd["dataset"] == original].set_index([*run, "step"])["train_loss"]
    right = sgd[sgd["dataset"] == twin].set_index([*run, "step"])["train_loss"]
    left, right = left.align(right, join="inner")
    if left.empty:
        return None
    both_finite = np.isfinite(left.to_numpy()) & np.isfinite(right.to_numpy())
    mismatched = int((np.isfinite(left.to_numpy()) != np.isfinite(right.to_numpy())).sum())
    worst = np.maximum(left.fillna(np.inf), right.fillna(np.inf)).groupby(level=run).max()
    stable_runs = worst.index[worst.to_numpy() <= np.log(2.0) * (1 + 1e-9)]
    stable = left.index.droplevel("step").isin(stable_runs) & both_finite
    relative = np.abs(right.to_numpy()[stable] - left.to_numpy()[stable]) / np.abs(
        left.to_numpy()[stable]
    )
    return {
        "max_rel": float(relative.max()) if relative.size else float("nan"),
        "evaluations": int(stable.sum()),
        "runs": len(stable_runs),
        "unstable": len(worst) - len(stable_runs),
        "mismatched": mismatched,
    }


def rotated_table(
    comparison: pd.DataFrame, table2: pd.DataFrame, original: str, twin: str
) -> pd.DataFrame:
    """Per batch size: observed and predicted AdaGrad/SGD ratios on a problem and its twin."""
    rho = table2.set_index("dataset")
    left = comparison[comparison["dataset"] == original].set_index("batch_size")
    right = comparison[comparison["dataset"] == twin].set_index("batch_size")
    records = []
    for size in sorted(set(left.index) & set(right.index)):
        records.append(
            {
                "batch_size": int(size),
                "observed_original": float(left.loc[size, "observed"]),
                "observed_twin": float(right.loc[size, "observed"]),
                "predicted_original": float(left.loc[size, "predicted_box"]),
                "predicted_twin": float(right.loc[size, "predicted_box"]),
                "rho_L_original": float(rho.loc[original, "rho_L"]),
                "rho_L_twin": float(rho.loc[twin, "rho_L"]),
            }
        )
    return pd.DataFrame.from_records(records)


def _rotated_figure(table: pd.DataFrame, original: str, twin: str, path: Path) -> Path:
    """Observed and predicted ratios of a problem and its twin on one axes (report-drawn)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=(8.0, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    sizes = table["batch_size"]
    for key, name, color in (("original", original, "tab:red"), ("twin", twin, "tab:purple")):
        axis.plot(sizes, table[f"observed_{key}"], "o-", color=color, label=f"{name}: observed")
        axis.plot(sizes, table[f"predicted_{key}"], "--", color=color,
                  label=f"{name}: predicted (box W)")  # fmt: skip
    axis.axhline(1.0, color="k", lw=0.6)
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("batch size")
    axis.set_ylabel("AdaGrad / SGD (< 1: AdaGrad better)")
    axis.set_title("Coordinate structure on vs off (random rotation)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, format="png")
    return path


_ROTATED_COLUMNS = {
    "batch_size": "batch",
    "observed_original": "observed, original",
    "observed_twin": "observed, rotated twin",
    "predicted_original": "predicted, original",
    "predicted_twin": "predicted, rotated twin",
}


def _sgd_twin_sentence(check: dict, original: str, twin: str) -> str:
    """Whether the stored SGD losses on the twin equal the original's (1e-6 relative: rounding)."""
    measured = (
        f"over the {check['runs']} stable SGD runs ({check['evaluations']} stored evaluations, "
        f"every batch size and learning rate whose loss never rose above f(w₁) = log 2), the "
        f"largest relative difference |loss({twin}) − loss({original})| / loss({original}) is "
        f"{check['max_rel']:.2g}"
    )
    unstable = (
        f" The {check['unstable']} runs at unstable learning rates are left out: they amplify "
        "float rounding (the rotated data differ from XQ in the last bits) without bound."
        if check["unstable"]
        else ""
    )
    if check["max_rel"] <= 1e-6:
        return f"Check: SGD's behaviour is unchanged — {measured}.{unstable}"
    return (
        f"Check failed: SGD's behaviour differs between the two — {measured}.{unstable} The twin "
        "did not see the same mini-batches as the original (results stored before the twin "
        "shared its base problem's stream?); re-run `anisoada reproduce logreg` into a fresh "
        "directory."
    )


def _rotated(results: ResultsDirectory, figure_dir: Path) -> Section:
    comparison = results.logreg.csv("predicted_vs_observed.csv") if results.logreg.present else None
    table2 = results.logreg.csv("table2.csv") if results.logreg.present else None
    if comparison is None or table2 is None:
        return _missing("rotated", "logreg", "the rotated-twin control")
    pairs = rotated_pairs(results)
    if not pairs:
        return Section(
            "rotated",
            _TITLES["rotated"],
            (
                Text(
                    "This run's logistic preset has no rotated twin (the paper preset uses real "
                    "datasets only) — run `anisoada reproduce logreg --preset quick` for the "
                    "control.",
                    "missing",
                ),
            ),
            status="missing",
        )
    blocks: list[Block] = [
        Text(
            "The control: the same synthetic problem after a random rotation X → XQ, trained on "
            "the same mini-batches. The rotation keeps the spectrum, and SGD from w = 0 is "
            "rotation-equivariant, so SGD's losses should be unchanged; but it spreads the "
            "curvature and noise over all coordinates (ρ_L and ρ_σ move towards 1), so "
            "AdaGrad's advantage should shrink."
        )
    ]
    for original, twin in pairs:
        check = sgd_twin_difference(results, original, twin)
        if check is not None:
            blocks.append(Text(_sgd_twin_sentence(check, original, twin)))
        table = rotated_table(comparison, table2, original, twin)
        if table.empty:
            continue
        rho = table2.set_index("dataset")
        lines = []
        for name, key, role in ((original, "original", "original"), (twin, "twin", "rotated twin")):
            label = name if name == role else f"{name} ({role})"
            lines.append(
                f"{label}: ρ_L = {rho.loc[name, 'rho_L']:.3g}, ρ_σ(w₁) = "
                f"{rho.loc[name, 'rho_sigma_init']:.3g}; observed AdaGrad/SGD gap ratio "
                f"{_range(table[f'observed_{key}'])}, predicted "
                f"{_range(table[f'predicted_{key}'])}."
            )
        blocks.append(Bullets(tuple(lines)))
        stand_in = results.logreg_stand_in_all([original, twin])
        blocks.append(
            Table(
                f"rotated-{original}",
                table,
                _ROTATED_COLUMNS,
                caption=f"AdaGrad/SGD on {original} and its rotated twin {twin}",
                source="logreg/predicted_vs_observed.csv, logreg/table2.csv",
                digits=3,
                stand_in=stand_in,
            )
        )
        path = _rotated_figure(table, original, twin, figure_dir / f"rotated_{original}.png")
        blocks.append(
            Figure(
                path,
                "AdaGrad/SGD ratio on the problem (red) and on its rotated twin (purple), "
                "observed (solid) and predicted (dashed): see the twin's ratio move up towards "
                "1 when the coordinate structure is destroyed.",
                stand_in=stand_in,
            )
        )
    return Section("rotated", _TITLES["rotated"], tuple(blocks))


# ------------------------------------------------------------------------------------------
# Provenance
# ------------------------------------------------------------------------------------------


def _seeds(results: ResultsDirectory, name: str) -> str:
    record = results.target(name).record or {}
    if name == "logreg":
        config = (results.logreg.json("sweep/sweep.json") or {}).get("config", {})
        if config:
            return f"base seed {config.get('base_seed')}, {config.get('seeds')} seed(s)"
    if name == "lm":
        sweep = record.get("sweep", {})
        problems = sweep.get("problems", [])
        base = problems[0] if problems else {}
        if sweep:
            return (
                f"base seed {sweep.get('base_seed')}, {sweep.get('seeds')} seed(s), data seed "
                f"{base.get('data', {}).get('seed')}"
            )
    if name == "smoothness":
        return f"seed {record.get('settings', {}).get('seed')}"
    return "—"


def _provenance(results: ResultsDirectory) -> Section:
    rows, packages = [], {}
    for name in ("logreg", "lm", "smoothness", "theory"):
        target = results.target(name)
        if not target.present:
            rows.append({"target": name, "preset": "not run"})
            continue
        record = target.record
        origin = record.get("provenance", {})
        git = origin.get("git", {})
        commit = git.get("commit")
        machine = origin.get("machine", {})
        step = record.get("sweep_wall_time", record.get("check_seconds"))
        rows.append(
            {
                "target": name,
                "preset": record.get("preset"),
                "wall_time": float(record.get("wall_time", np.nan)),
                "step_time": float(step) if step is not None else np.nan,
                "seeds": _seeds(results, name),
                "git": (commit[:10] + (" (dirty)" if git.get("dirty") else "")) if commit else "—",
                "machine": f"{machine.get('platform', '?')}, {machine.get('cpus', '?')} CPUs",
                "python": origin.get("python", "—"),
            }
        )
        for package, version in origin.get("packages", {}).items():
            packages.setdefault(package, {})[name] = version or "—"
    table = pd.DataFrame.from_records(rows)
    blocks: list[Block] = [
        Text(
            "Each target records the versions, machine and git revision it ran with in its "
            "`reproduction.json`; wall times are as stored (a re-run that reused stored results "
            "is fast)."
        ),
        Table(
            "provenance",
            table,
            {
                "target": "target",
                "preset": "preset",
                "wall_time": "wall time (s)",
                "step_time": "sweep / check (s)",
                "seeds": "seeds",
                "git": "git revision",
                "machine": "machine",
                "python": "Python",
            },
            caption="Targets",
            digits=4,
        ),
    ]
    if packages:
        names = [n for n in ("logreg", "lm", "smoothness", "theory") if results.target(n).present]
        versions = pd.DataFrame.from_records(
            [{"package": p, **{n: v.get(n, "—") for n in names}} for p, v in packages.items()]
        )
        blocks.append(
            Table(
                "packages",
                versions,
                {"package": "package", **{n: n for n in names}},
                caption="Package versions per target",
            )
        )
    return Section("provenance", _TITLES["provenance"], tuple(blocks))


def build_sections(results: ResultsDirectory, figure_dir: Path) -> list[Section]:
    """Every section in :data:`SECTIONS` order; ``figure_dir`` receives report-drawn figures."""
    builders: dict[str, Callable[[], Section]] = {
        "summary": lambda: _summary(results),
        "table1": lambda: _table1(results),
        "table2": lambda: _table2(results),
        "figure1": lambda: _figure1(results, figure_dir),
        "logreg": lambda: _logreg(results, figure_dir),
        "lm": lambda: _lm(results, figure_dir),
        "predicted": lambda: _predicted(results, figure_dir),
        "rotated": lambda: _rotated(results, figure_dir),
        "provenance": lambda: _provenance(results),
    }
    return [builders[section_id]() for section_id, _ in SECTIONS]
