"""Logistic regression: Table 2, the batch-size results and predicted vs observed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from anisoada.report import figures
from anisoada.report._model import (
    Block,
    Figure,
    FigureRow,
    Section,
    SectionStatus,
    Table,
    Text,
)
from anisoada.report._results import ResultsDirectory
from anisoada.report.presentation import method_style, results_columns, results_labels
from anisoada.report.sections._common import TITLES, method, missing, shown
from anisoada.report.sweep import SweepView, sweep_blocks

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


def table2_section(results: ResultsDirectory) -> Section:
    table2 = results.logreg.csv("table2.csv") if results.logreg.present else None
    if table2 is None:
        return missing("table2", "logreg", "the measured smoothness and noise constants")
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
    return Section("table2", TITLES["table2"], tuple(blocks))


def _accuracy_columns(table: pd.DataFrame) -> dict[str, str]:
    """Column → header of the held-out accuracy table, for whichever optimizers were swept."""
    columns = {"dataset": "dataset", "batch_size": "batch"}
    for label in results_labels(table):
        if f"{label}_test_accuracy" in table:
            columns[f"{label}_test_accuracy"] = method_style(label).name
    return columns


def logreg_section(results: ResultsDirectory, figure_dir: Path) -> Section:
    target = results.logreg
    table = target.csv("results.csv") if target.present else None
    if table is None:
        return missing("logreg", "logreg", "AdaGrad vs SGD vs AdaGrad-Norm across batch sizes")
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
            "the best rate sat at an edge) by the selection rule below. The paper reports "
            "AdaGrad ahead at every batch size; here each batch size gets a verdict from a "
            "paired test over seeds, and a tie is shown as a tie."
        )
    ]
    if stand_in:
        blocks.append(Text(f"Stand-in: {stand_in}.", "stand-in"))
    blocks.append(
        Table(
            "logreg-results",
            shown(table, ("winner",)),
            results_columns(results_labels(table)),
            caption="Tuned tail training loss per batch size (mean over seeds; lr = tuned "
            "learning rate; gap ratio = geometric mean over seeds with its 95% interval)",
            source="logreg/results.csv",
            command=f"anisoada reproduce logreg --preset {target.present_record['preset']}",
            stand_in=stand_in,
            winner_columns=("winner",),
        )
    )
    at_edge = [
        f"{record['dataset']} batch {record['batch_size']} ({method(key)})"
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
    view = SweepView(target.directory / "sweep")
    if view.present:
        blocks.extend(sweep_blocks(view, results.root, figure_dir / "logreg", name="logreg"))
    return Section("logreg", TITLES["logreg"], tuple(blocks))


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


def predicted_section(results: ResultsDirectory, figure_dir: Path) -> Section:
    comparison = results.logreg.csv("predicted_vs_observed.csv") if results.logreg.present else None
    theory = results.theory
    if comparison is None and not theory.present:
        return missing("predicted", "logreg", "the bounds' predicted AdaGrad/SGD ratio next to "
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
    status: SectionStatus = "ok"
    if comparison is not None:
        datasets = list(dict.fromkeys(comparison["dataset"]))
        stand_in = results.logreg_stand_in_all(datasets)
        blocks.append(
            Table(
                "predicted-vs-observed",
                shown(comparison, ("predicted_winner", "observed_winner")),
                _PREDICTION_COLUMNS,
                caption="AdaGrad/SGD: predicted by the bounds and observed",
                source="logreg/predicted_vs_observed.csv",
                digits=3,
                stand_in=stand_in,
                winner_columns=("predicted_winner", "observed_winner"),
            )
        )
        # The sweep's own figures are drawn once, by the results section.
        figure = figures.predicted_vs_observed_figure(
            results.logreg.directory, figure_dir / "logreg"
        )
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
        for problem in theory.present_record.get("problems", []):
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
    return Section("predicted", TITLES["predicted"], tuple(blocks), status=status)
