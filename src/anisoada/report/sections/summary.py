"""The "At a glance" section: who won at each batch size, from the stored tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anisoada.report._model import Block, Bullets, Section, Table, Text
from anisoada.report._results import ResultsDirectory
from anisoada.report.sections._common import TITLES, join, method, value_range
from anisoada.report.sections.rotated import rotated_pairs
from anisoada.report.sweep import SweepView, headline


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
    """One row per dataset, one column per batch size: the verdict of AdaGrad against SGD."""
    sizes = sorted(int(size) for size in results["batch_size"].unique())
    records = []
    for dataset in dict.fromkeys(results["dataset"]):
        part = results[results["dataset"] == dataset].set_index("batch_size")
        row = {"dataset": dataset}
        for size in sizes:
            row[f"batch {size}"] = method(part["winner"].get(size, "—"))
        records.append(row)
    return pd.DataFrame.from_records(records)


def lm_winners(table4: pd.DataFrame) -> pd.DataFrame:
    """Per batch size, the verdict of AdaGrad against SGD on the training loss (paired over
    seeds), and the optimizer with the lower held-out loss (mean over seeds)."""
    records = []
    verdict_row = {"criterion": "verdict, training loss (paired over seeds)"}
    held_out = {"criterion": "lower held-out loss (mean)"}
    for size, part in table4.groupby("batch_size", sort=True):
        column = f"batch {int(size)}"
        verdicts = part["verdict"].dropna() if "verdict" in part else pd.Series(dtype=object)
        verdict_row[column] = method(str(verdicts.iloc[0])) if len(verdicts) else "—"
        finite = part[np.isfinite(part["eval_loss"])]
        held_out[column] = (
            method(finite.loc[finite["eval_loss"].idxmin(), "optimizer"]) if len(finite) else "—"
        )
    records += [verdict_row, held_out]
    return pd.DataFrame.from_records(records)


def answer(results: ResultsDirectory) -> list[str]:
    """The report's first lines: where AdaGrad beats SGD, by how much, with what confidence."""
    lines = []
    if results.logreg.present:
        view = SweepView(results.logreg.directory / "sweep")
        if view.present:
            lines += [f"Logistic regression — {sentence}" for sentence in headline(view)]
    if results.lm.present:
        view = SweepView(results.lm.directory / "sweep")
        if view.present:
            stand_in = " (stand-in)" if results.lm_stand_ins else ""
            lines += [
                f"GPT-2 instruction tuning{stand_in} — " + sentence.split(": ", 1)[1]
                for sentence in headline(view)
            ]
    return lines


def _lm_seeds(results: ResultsDirectory) -> int | None:
    """Seeds of the stored LM sweep (None when it has not run)."""
    if not results.lm.present:
        return None
    seeds = results.lm.present_record.get("sweep", {}).get("seeds")
    return int(seeds) if isinstance(seeds, int) else None


def _winners_table(
    target: str, winners: pd.DataFrame, label: str, caption: str, source: str, stand_in: str | None
) -> Table:
    """A target's winners as they are stored, every column but ``label`` naming a method."""
    columns = {c: c for c in winners.columns}
    named = tuple(c for c in winners.columns if c != label)
    return Table(
        f"summary-{target}",
        winners,
        columns,
        caption,
        source,
        stand_in=stand_in,
        winner_columns=named,
    )


def summary_section(results: ResultsDirectory) -> Section:
    blocks: list[Block] = []
    present = [t for t in ("logreg", "lm", "smoothness", "theory") if results.target(t).present]
    absent = [t for t in ("logreg", "lm", "smoothness", "theory") if t not in present]
    presets = sorted({results.target(t).present_record["preset"] for t in present})
    lead = (
        f"Results of {len(present)} of 4 reproduction targets"
        + (f" ({', '.join(presets)} preset)" if presets else "")
        + ". AdaGrad's bounds depend on ‖L‖₁ and ‖σ‖₁ where SGD's depend on d‖L‖∞ and √d‖σ‖₂, "
        "so anisotropic problems should favour AdaGrad at every batch size."
    )
    first = answer(results)
    if first:
        blocks.append(
            Text(
                "Will AdaGrad beat SGD here, and at which batch size? Each verdict below is a "
                "paired test over seeds at each method's tuned learning rate (ratio: geometric "
                "mean of the per-seed optimality-gap ratios, or loss ratios where f* is "
                "unknown; a tie when its 95% interval contains 1).",
                "lead",
            )
        )
        blocks.append(Bullets(tuple(first)))
    blocks.append(Text(lead, "note" if first else "lead"))
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
            wins = int((part["winner"] == "adagrad").sum())
            ties = int((part["winner"] == "tie").sum())
            label = f"{dataset} (stand-in)" if results.logreg_stand_in(dataset) else dataset
            ratio = value_range(part["adagrad_vs_sgd"]) if "adagrad_vs_sgd" in part else "n/a"
            findings.append(
                f"Logistic regression, {label}: AdaGrad beat SGD at {wins} of {len(part)} batch "
                f"sizes (ties: {ties}); its optimality gap was {ratio} × SGD's."
            )
        blocks.append(Bullets(tuple(findings)))
        findings = []
        winners = logreg_winners(table)
        caption = "Logistic regression: verdict of AdaGrad against SGD at each batch size"
        stand_in = results.logreg_stand_in_all(list(winners["dataset"]))
        source = "logreg/results.csv"
        blocks.append(_winners_table("logreg", winners, "dataset", caption, source, stand_in))
    table4 = results.lm.csv("table4.csv") if results.lm.present else None
    if table4 is not None:
        winners = lm_winners(table4)
        stand_in = "; ".join(results.lm_stand_ins) or None
        for size, part in table4.groupby("batch_size", sort=True):
            losses = {method(r["optimizer"]): r["train_loss"] for r in part.to_dict("records")}
            shown = ", ".join(f"{name} {loss:.4g}" for name, loss in sorted(losses.items()))
            seeds = int(part["seeds"].max()) if "seeds" in part else 1
            findings.append(
                f"GPT-2 instruction tuning{' (stand-in)' if stand_in else ''}, batch {int(size)}:"
                f" tail training loss {shown} (mean over {seeds} seed(s))."
            )
        blocks.append(Bullets(tuple(findings)))
        findings = []
        caption = "GPT-2 instruction tuning: verdict and held-out winner per batch size"
        source = "lm/table4.csv"
        blocks.append(_winners_table("lm", winners, "criterion", caption, source, stand_in))
    comparison = results.logreg.csv("predicted_vs_observed.csv") if results.logreg.present else None
    if comparison is not None and "observed" in comparison:
        findings.append(_prediction_finding(results, comparison))
    envelope = (
        results.smoothness.present_record.get("pooled") if results.smoothness.present else None
    )
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
    if table is not None:
        datasets = list(dict.fromkeys(table["dataset"]))
        substituted = [d for d in datasets if results.logreg_stand_in(d)]
        real = [d for d in datasets if d not in substituted]
        if substituted:
            stand_ins.append(
                f"logistic problems {join(substituted)} are synthetic"
                + (f" ({join(real)} {'is' if len(real) == 1 else 'are'} real data)" if real else "")
            )
    if results.lm_stand_ins:
        stand_ins.append(f"the LM experiment ({', '.join(results.lm_stand_ins)})")
    lm_seeds = _lm_seeds(results)
    if lm_seeds is not None and lm_seeds < 3:
        blocks.append(
            Text(
                f"The LM experiment ran {lm_seeds} seed(s) (learning rates tuned on the first) to "
                "stay within the demo's time, so its verdicts rest on a paired test over "
                f"{lm_seeds} seed(s); the paper preset runs 3.",
                "note",
            )
        )
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
    return Section("summary", TITLES["summary"], tuple(blocks))
