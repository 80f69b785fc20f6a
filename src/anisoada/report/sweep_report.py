"""The report of a plain sweep directory: a user's own sweep gets the same figures and verdicts.

``anisoada report SWEEP_DIR`` on the ``--out`` of ``anisoada sweep`` (a directory holding
``sweep.json``) builds this report instead of the reproduction report: the answer in plain words
first (at which batch sizes each optimizer beats the baseline, by how much, with what
confidence, which problems are stand-ins), then the verdicts, the tuned losses with their spread,
the loss curves and the learning-rate sensitivity (:func:`anisoada.report.sweep.sweep_blocks`),
predicted vs observed when a measurement summary lies beside the sweep, and provenance.

A measurement summary "beside" the sweep is ``SWEEP_DIR/measure/<problem>.npz`` (+ ``.json``), as
``anisoada measure DATA --out SWEEP_DIR/measure/<problem>`` writes it, or one given with
``--measure PROBLEM=STEM``. Nothing here trains or recomputes a result.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from anisoada.report._model import Block, Bullets, Section, Table, Text
from anisoada.report.sections._common import shown
from anisoada.report.sweep import SweepView, headline, sweep_blocks
from anisoada.schema import NO_VERDICT, TIE, files

__all__ = [
    "is_sweep_directory",
    "predicted_vs_observed_sweep",
    "sweep_sections",
    "sweep_title",
]


def is_sweep_directory(directory: Path) -> bool:
    """Whether ``directory`` is the output of one sweep (it holds ``sweep.json``)."""
    return (directory / files.SWEEP_JSON).is_file()


def _measurement_stems(
    view: SweepView, given: Mapping[str, str | os.PathLike[str]]
) -> dict[str, Path]:
    """Problem → measurement-summary stem: the ``given`` ones, else ``measure/<problem>``."""
    stems: dict[str, Path] = {}
    for problem in view.datasets:
        if problem in given:
            stems[problem] = Path(given[problem])
            continue
        stem = view.directory / "measure" / problem
        # A problem's name may hold dots (a file's name), so the suffixes are appended.
        if Path(f"{stem}.npz").is_file() and Path(f"{stem}.json").is_file():
            stems[problem] = stem
    unknown = sorted(set(given) - set(view.datasets))
    if unknown:
        raise ValueError(
            f"--measure names problem(s) {', '.join(unknown)} that sweep {view.directory} does "
            f"not have (its problems: {', '.join(view.datasets)})"
        )
    return stems


def predicted_vs_observed_sweep(
    view: SweepView, stems: Mapping[str, Path], optimizer: str = "adagrad"
) -> pd.DataFrame:
    """The bounds' ``optimizer``/baseline ratio next to the sweep's observed ratio per batch size.

    For each problem with a measurement summary (``L``, ``σ``, optionally ``λ_max``):
    ``predicted_box`` is :func:`anisoada.theory.predict`'s ``ratio_to_sgd`` (both methods on one
    box, ``D_2 = √d·D_∞``, so D cancels: ``ρ_L`` for the bias and ``ρ_σ`` for the noise terms, never
    above 1), ``predicted_lambda_max`` the same with SGD's ``λ_max`` when the summary has it.
    The budget of each batch size is the samples its runs consumed. ``observed`` with
    ``observed_low``/``observed_high`` and ``verdict`` are the sweep's own (geometric mean of the
    gap or loss ratio over seeds, 95% interval).
    """
    from anisoada.measure import load_summary
    from anisoada.theory import predict

    verdicts = view.verdicts
    if verdicts.empty:
        return pd.DataFrame()
    samples = _samples_per_cell(view)
    records: list[dict[str, Any]] = []
    for problem, stem in stems.items():
        summary = load_summary(stem)
        part = verdicts[(verdicts["dataset"] == problem) & (verdicts["optimizer"] == optimizer)]
        for row in part.sort_values("batch_size").to_dict("records"):
            batch_size = int(row["batch_size"])
            budget = samples.get((problem, batch_size))
            if budget is None or budget < batch_size:
                continue
            table = predict(
                L=summary.L,
                sigma=summary.sigma,
                batch_sizes=[batch_size],
                budget=float(budget),
                D_inf=1.0,
                lambda_max=summary.lambda_max,
            )
            mine = table[table["variant"] == optimizer]
            if mine.empty:
                continue
            entry = {
                "dataset": problem,
                "batch_size": batch_size,
                "predicted_box": float(mine["ratio_to_sgd"].iloc[0]),
                "predicted_lambda_max": float(mine["ratio_to_sgd_lambda_max"].iloc[0])
                if "ratio_to_sgd_lambda_max" in mine
                else math.nan,
                "observed": float(row["ratio"]),
                "observed_low": float(row["ratio_low"]),
                "observed_high": float(row["ratio_high"]),
                "verdict": str(row["verdict"]),
                "measurement": str(stem),
            }
            records.append(entry)
    return pd.DataFrame.from_records(records)


def _samples_per_cell(view: SweepView) -> dict[tuple[str, int], int]:
    """(problem, batch size) → samples a run consumed (the budget the bounds are evaluated at)."""
    path = view.directory / f"{files.RESULTS}.parquet"
    if not path.is_file():
        return {}
    rows = pd.read_parquet(path, columns=["dataset", "batch_size", "samples"])
    largest = rows.groupby(["dataset", "batch_size"])["samples"].max()
    return {(str(k[0]), int(k[1])): int(v) for k, v in largest.items()}


_PREDICTED_COLUMNS = {
    "dataset": "problem",
    "batch_size": "batch",
    "predicted_box": "bounds' ratio, box W",
    "predicted_lambda_max": "bounds' ratio, SGD with λ_max",
    "observed": "observed ratio",
    "observed_low": "95% low",
    "observed_high": "95% high",
    "verdict": "verdict",
}


def sweep_sections(
    directory: Path,
    root: Path,
    figure_dir: Path,
    *,
    measurements: Mapping[str, str | os.PathLike[str]] | None = None,
) -> list[Section]:
    """The sections of a sweep's report: answer, results, predicted vs observed, provenance.

    Args:
        directory: The sweep's ``--out`` directory.
        root: Directory the report's paths and commands are written relative to.
        figure_dir: Where the figures are drawn.
        measurements: Problem → measurement-summary stem (``anisoada measure --out STEM``);
            ``SWEEP_DIR/measure/<problem>`` is found without it.

    Raises:
        ValueError: the sweep has not finished (no selection or verdicts stored yet), or
            ``measurements`` names a problem the sweep does not have.
    """
    view = SweepView(directory)
    if not view.present:
        raise ValueError(
            f"sweep {directory} has not finished (no {files.SELECTION}.parquet or "
            f"{files.VERDICTS}.csv yet); re-run `anisoada sweep {directory / files.SWEEP_TOML} "
            f"--out {directory}` to complete it, then report again"
        )
    stems = _measurement_stems(view, measurements or {})
    return [
        _answer_section(view),
        Section(
            "sweep",
            "Results across batch sizes",
            tuple(sweep_blocks(view, root, figure_dir / "sweep", name="sweep")),
        ),
        _predicted_section(view, stems),
        _provenance_section(view, root),
    ]


def _answer_section(view: SweepView) -> Section:
    blocks: list[Block] = []
    optimizers = [o["label"] for o in view.config.get("optimizers", [])]
    others = [label for label in optimizers if label != view.baseline]
    sentences = [s for label in others for s in headline(view, label)]
    if sentences:
        blocks.append(Bullets(tuple(sentences)))
    else:
        blocks.append(Text("No verdicts: the sweep compared no optimizer with its baseline."))
    verdicts = view.verdicts
    if len(verdicts):
        undecided = int((verdicts["verdict"] == NO_VERDICT).sum())
        ties = int((verdicts["verdict"] == TIE).sum())
        blocks.append(
            Text(
                f"{len(verdicts)} comparisons over {view.seeds} seed(s): {ties} tie(s), "
                f"{undecided} without a verdict (too few seeds, or a method with no stable "
                "learning rate). A verdict needs the 95% interval of the paired ratio over seeds "
                "to exclude 1.",
                "note",
            )
        )
    stand_in = view.stand_in_all()
    blocks.append(
        Text(f"Stand-ins: {stand_in}.", "stand-in")
        if stand_in
        else Text("Every problem of this sweep is the user's own data (no stand-ins).", "note")
    )
    return Section("summary", "At a glance", tuple(blocks))


def _predicted_section(view: SweepView, stems: Mapping[str, Path]) -> Section:
    title = "Predicted vs observed advantage"
    if not stems:
        return Section(
            "predicted",
            title,
            (
                Text(
                    "No measurement summary beside this sweep. Measure a problem with `anisoada "
                    f"measure DATA --out {view.directory / 'measure'}/<problem>` (or pass "
                    "`--measure PROBLEM=STEM` to `anisoada report`) to see the bounds' predicted "
                    "ratio next to the observed one.",
                    "missing",
                ),
            ),
            status="missing",
        )
    table = predicted_vs_observed_sweep(view, stems)
    blocks: list[Block] = [
        Text(
            "The bounds' AdaGrad/SGD ratio (up to absolute constants: read its side of 1 and "
            "its trend, not its value) next to the observed ratio at the tuned learning rates; "
            "below 1 means AdaGrad is better. In the box framing the predicted ratio cannot "
            "exceed 1 (ρ_L, ρ_σ ≤ 1), so it can never favour SGD: agreement in winners there "
            "tests nothing."
        ),
        Table(
            "sweep-predicted",
            shown(table, ("verdict",)),
            _PREDICTED_COLUMNS,
            caption="AdaGrad/SGD: the bounds' ratio and the observed one",
            source=", ".join(
                sorted({_relative(Path(f"{s}.npz"), view.directory) for s in stems.values()})
            ),
            digits=3,
            winner_columns=("verdict",),
        ),
    ]
    return Section("predicted", title, tuple(blocks))


def _provenance_section(view: SweepView, root: Path) -> Section:
    record: dict[str, Any] = json.loads((view.directory / files.SWEEP_JSON).read_text())
    provenance = record.get("provenance", {})
    rows = [
        {"what": "sweep", "value": str(view.config.get("name", ""))},
        {"what": "command", "value": view.command(root)},
        {"what": "configuration", "value": str(view.directory / files.SWEEP_TOML)},
        {"what": "seeds", "value": str(view.seeds)},
        {"what": "budget", "value": _budget(view.config.get("budget", {}))},
    ]
    for key, value in sorted(provenance.items()):
        if isinstance(value, str | int | float | bool):
            rows.append({"what": str(key), "value": str(value)})
        elif isinstance(value, Mapping):
            text = ", ".join(f"{k} {v}" for k, v in sorted(value.items()) if v is not None)
            rows.append({"what": str(key), "value": text})
    frame = pd.DataFrame.from_records(rows)
    return Section(
        "provenance",
        "Provenance",
        (
            Table(
                "sweep-provenance",
                frame,
                {"what": "", "value": ""},
                caption="What produced these results",
                source=str(view.directory / files.SWEEP_JSON),
            ),
        ),
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


def _budget(budget: Mapping[str, Any]) -> str:
    parts = [
        f"{value:g} {unit}" for unit, value in budget.items() if isinstance(value, int | float)
    ]
    return ", ".join(parts) or "n/a"


def sweep_title(view_directory: Path) -> str:
    """The report title of a sweep (its name)."""
    view = SweepView(view_directory)
    name = view.config.get("name") or view_directory.name
    return f"anisoada sweep report — {name}"
