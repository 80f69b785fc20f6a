"""Any sweep directory as report content: verdicts in plain words, tables with spread, figures.

A sweep written by :func:`anisoada.experiments.run_sweep` — a reproduction target's or a user's
own — holds ``sweep.json``/``sweep.toml``, ``results.parquet``, ``scores.parquet``,
``selection.*``, ``verdicts.csv`` and ``references.csv`` (names: :mod:`anisoada.schema`).
:class:`SweepView` reads them; the functions below turn them into report blocks. Nothing here
trains or recomputes a result: the verdicts are the sweep's own.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anisoada.report import figures
from anisoada.report._model import Block, Bullets, Figure, Table, Text
from anisoada.report.presentation import method_style
from anisoada.schema import NO_VERDICT, TIE, files

__all__ = ["SweepView", "headline", "sweep_blocks", "verdict_display"]


@dataclass(frozen=True)
class SweepView:
    """The stored tables of one sweep directory (read lazily)."""

    directory: Path

    @property
    def present(self) -> bool:
        """Whether the sweep finished (its selection and verdicts are stored)."""
        return all(
            (self.directory / name).is_file()
            for name in (files.SWEEP_JSON, f"{files.SELECTION}.parquet", f"{files.VERDICTS}.csv")
        )

    @cached_property
    def config(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads((self.directory / files.SWEEP_JSON).read_text())
        config: dict[str, Any] = record.get("config", {})
        return config

    @cached_property
    def selection(self) -> pd.DataFrame:
        return pd.read_parquet(self.directory / f"{files.SELECTION}.parquet")

    @cached_property
    def verdicts(self) -> pd.DataFrame:
        try:
            return pd.read_csv(self.directory / f"{files.VERDICTS}.csv", keep_default_na=False,
                               na_values=[""])  # fmt: skip
        except pd.errors.EmptyDataError:
            return pd.DataFrame()

    @cached_property
    def references(self) -> dict[str, float | None]:
        path = self.directory / f"{files.REFERENCES}.csv"
        if not path.is_file():
            return {}
        table = pd.read_csv(path)
        return {
            str(r["dataset"]): (None if pd.isna(r["f_star"]) else float(r["f_star"]))
            for r in table.to_dict("records")
        }

    @property
    def datasets(self) -> list[str]:
        return [str(p["name"]) for p in self.config.get("problems", [])]

    @property
    def baseline(self) -> str:
        if self.config.get("baseline"):
            return str(self.config["baseline"])
        optimizers = self.config.get("optimizers", [])
        sgd = [o["label"] for o in optimizers if o.get("name") == "sgd"]
        return sgd[0] if sgd else (optimizers[0]["label"] if optimizers else "sgd")

    @property
    def seeds(self) -> int:
        return int(self.config.get("seeds", 1))

    def stand_in(self, dataset: str) -> str | None:
        """What stands in for a real problem in one of the sweep's problems (None: real)."""
        problem = next((p for p in self.config.get("problems", []) if p["name"] == dataset), None)
        if problem is None:
            return None
        return problem_stand_in(problem)

    def stand_in_all(self) -> str | None:
        flagged = [
            f"{name}: {self.stand_in(name)}" for name in self.datasets if self.stand_in(name)
        ]
        return "; ".join(flagged) or None

    def command(self, root: Path, *, cell: tuple[str, int] | None = None) -> str:
        """The command that reproduces this sweep (or one (problem, batch size) cell of it)."""
        toml = _relative(self.directory / files.SWEEP_TOML, root)
        if cell is None:
            return f"anisoada sweep {toml} --out {_relative(self.directory, root)}"
        dataset, batch_size = cell
        return f"anisoada sweep {toml} --only {dataset} --batch-sizes {batch_size} --out NEW_DIR"


def problem_stand_in(problem: dict[str, Any]) -> str | None:
    """What stands in for the paper's setting in one stored ``[[problems]]`` entry."""
    kind = problem.get("kind", "logistic")
    if kind == "logistic":
        source = problem.get("source", "libsvm")
        if source == "synthetic":
            return "synthetic sparse logistic data, not a LIBSVM dataset"
        if source == "rotated":
            return "randomly rotated twin of the synthetic logistic data (the control)"
        return None
    if kind == "quadratic":
        return "a synthetic quadratic with exact constants, not a learning problem"
    if kind == "lm":
        notes = []
        model, weights = problem.get("model"), problem.get("weights")
        if model != "gpt2":
            state = "a pretrained" if weights else "a randomly initialised"
            notes.append(f"{state} '{model}' GPT-2, not the pretrained 124M model")
        elif not weights:
            notes.append("a randomly initialised GPT-2 124M, not the pretrained one")
        data = problem.get("data", {})
        if data.get("source") == "synthetic":
            notes.append("synthetic instructions, not Stanford Alpaca")
        if data.get("vocabulary") == "compact":
            notes.append("a softmax over the tokens the data uses only (compact vocabulary)")
        return "; ".join(notes) or None
    return None


def _relative(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


def _name(key: str) -> str:
    return key if key in (TIE, NO_VERDICT) else method_style(key).name


def _interval(ratio: float, low: float, high: float) -> str:
    if not math.isfinite(ratio):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{ratio:.3g}"
    return f"{ratio:.3g} [{low:.3g}, {high:.3g}]"


def _spread(mean: float, low: float, high: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)) or math.isclose(low, high):
        return f"{mean:.4g}"
    return f"{mean:.4g} ({low:.4g}–{high:.4g})"


def _sizes(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def headline(view: SweepView, optimizer: str = "adagrad") -> list[str]:
    """One plain sentence per problem: at which batch sizes ``optimizer`` beats the baseline.

    Example output: "a9a: AdaGrad beats SGD at batch sizes 8, 32 (gap ratio 0.41–0.55, every
    95% interval below 1); tie at 512 (the interval contains 1); SGD wins at none."
    """
    verdicts = view.verdicts
    if verdicts.empty or optimizer not in set(verdicts["optimizer"]):
        return []
    baseline = view.baseline
    sentences = []
    for dataset in dict.fromkeys(verdicts["dataset"]):
        part = verdicts[(verdicts["dataset"] == dataset) & (verdicts["optimizer"] == optimizer)]
        part = part.sort_values("batch_size")
        metric = "gap" if (part["metric"] == "gap").any() else "loss"
        wins = part[part["verdict"] == optimizer]
        losses = part[part["verdict"] == baseline]
        ties = part[part["verdict"] == TIE]
        undecided = part[part["verdict"] == NO_VERDICT]
        pieces = []
        if len(wins):
            pieces.append(
                f"{_name(optimizer)} beats {_name(baseline)} at batch size"
                f"{'s' if len(wins) > 1 else ''} {_sizes(wins['batch_size'].tolist())} "
                f"({metric} ratio {_range(wins['ratio'])}, every 95% interval below 1)"
            )
        else:
            pieces.append(f"{_name(optimizer)} beats {_name(baseline)} at no batch size")
        if len(losses):
            pieces.append(
                f"{_name(baseline)} wins at {_sizes(losses['batch_size'].tolist())} "
                f"(ratio {_range(losses['ratio'])})"
            )
        if len(ties):
            pieces.append(
                f"tie at {_sizes(ties['batch_size'].tolist())} (ratio "
                f"{_range(ties['ratio'])}; the interval over {view.seeds} seeds contains 1)"
            )
        if len(undecided):
            pieces.append(f"no verdict at {_sizes(undecided['batch_size'].tolist())}")
        label = f"{dataset} (stand-in)" if view.stand_in(str(dataset)) else str(dataset)
        sentences.append(f"{label}: " + "; ".join(pieces) + ".")
    return sentences


def _range(values: pd.Series) -> str:
    finite = values[np.isfinite(values.astype(float))]
    if finite.empty:
        return "n/a"
    low, high = float(finite.min()), float(finite.max())
    return f"{low:.3g}" if math.isclose(low, high) else f"{low:.3g}–{high:.3g}"


def verdict_display(view: SweepView) -> pd.DataFrame:
    """The verdict table as display cells: values ``mean (min–max)``, ratios ``r [low, high]``."""
    records = []
    for r in view.verdicts.to_dict("records"):
        records.append(
            {
                "dataset": r["dataset"],
                "batch_size": int(r["batch_size"]),
                "optimizer": _name(str(r["optimizer"])),
                "baseline": _name(str(r["baseline"])),
                "value": _spread(r["value"], r["value_min"], r["value_max"]),
                "baseline_value": _spread(
                    r["baseline_value"], r["baseline_min"], r["baseline_max"]
                ),
                "metric": "f − f*" if r["metric"] == "gap" else "loss",
                "ratio": _interval(r["ratio"], r["ratio_low"], r["ratio_high"]),
                "seeds": int(r["seeds"]),
                "verdict": _name(str(r["verdict"])),
                "note": "" if pd.isna(r["note"]) else r["note"],
            }
        )
    return pd.DataFrame.from_records(records)


_VERDICT_COLUMNS = {
    "dataset": "problem",
    "batch_size": "batch",
    "optimizer": "optimizer",
    "value": "its tail value, mean (min–max over seeds)",
    "baseline": "vs",
    "baseline_value": "baseline's, mean (min–max)",
    "metric": "compared",
    "ratio": "ratio, geometric mean [95% interval]",
    "seeds": "seeds",
    "verdict": "verdict",
    "note": "why",
}

_LOSS_COLUMNS = {
    "dataset": "problem",
    "batch_size": "batch",
    "optimizer": "optimizer",
    "best_lr": "tuned lr",
    "train_loss": "tail train loss, mean",
    "train_loss_min": "min over seeds",
    "train_loss_max": "max over seeds",
    "final_train_loss": "final train loss, mean",
    "test_accuracy": "test accuracy",
    "eval_loss": "held-out loss",
    "seeds": "seeds",
    "lrs_tried": "lrs tried",
    "lrs_unstable": "unstable",
    "lrs_diverged": "diverged",
    "at_edge": "at grid edge",
}


def sweep_blocks(view: SweepView, root: Path, figure_dir: Path, *, name: str) -> list[Block]:
    """The verdicts, the tuned losses with their spread and the figures of one sweep.

    Args:
        view: The sweep.
        root: The report's results directory (paths and commands are relative to it).
        figure_dir: Where the report draws this sweep's figures.
        name: Identifier prefix of the tables (HTML ids ``table-<name>-…``).
    """
    stand_in = view.stand_in_all()
    selection_rule = view.config.get("selection", {})
    tuning = view.config.get("tuning_seeds")
    protocol = (
        f"{view.seeds} seed(s){f', learning rates tuned on the first {tuning}' if tuning else ''};"
        f" tail loss = mean of the last {selection_rule.get('window', 3)} evaluations, runs "
        f"rising by more than {100 * float(selection_rule.get('tolerance', 0.1)):.0f}% near the "
        "end excluded. Verdict: paired t-test over seeds on log(gap ratio) (log(loss ratio) "
        "where f* is unknown), 95% interval; a tie when it contains 1."
    )
    blocks: list[Block] = []
    sentences = headline(view)
    if sentences:
        blocks.append(Bullets(tuple(sentences)))
    blocks.append(Text(protocol, "note"))
    cells = (
        view.verdicts[["dataset", "batch_size"]].drop_duplicates() if len(view.verdicts) else None
    )
    example = (
        (str(cells.iloc[0]["dataset"]), int(cells.iloc[0]["batch_size"]))
        if cells is not None and len(cells)
        else None
    )
    if len(view.verdicts):
        blocks.append(
            Table(
                f"{name}-verdicts",
                verdict_display(view),
                _VERDICT_COLUMNS,
                caption=f"Who wins at each batch size (against {_name(view.baseline)})",
                source=_relative(view.directory / f"{files.VERDICTS}.csv", root),
                stand_in=stand_in,
                winner_columns=("verdict",),
                command=view.command(root)
                + (f"   (one cell: {view.command(root, cell=example)})" if example else ""),
            )
        )
    blocks.append(
        Table(
            f"{name}-losses",
            view.selection.assign(optimizer=view.selection["optimizer"].map(_name)),
            _LOSS_COLUMNS,
            caption="Tuned learning rate and tail training loss per (problem, batch, optimizer)",
            source=_relative(view.directory / f"{files.SELECTION}.csv", root),
            stand_in=stand_in,
            winner_columns=("optimizer",),
            command=view.command(root),
            collapsed="Tuned losses with their spread over seeds",
        )
    )
    drawn = figures.sweep_figures(view.directory, figure_dir, dict(view.references), view.datasets)
    best = drawn.get("best_loss_vs_batch.png")
    if best is not None:
        blocks.append(
            Figure(
                best,
                "Tuned tail gap f − f* (loss where f* is unknown) against batch size at a fixed "
                "sample budget, bars over seeds: the lower line wins where the bars separate.",
                stand_in=stand_in,
            )
        )
    for dataset in view.datasets:
        for key, caption in (
            (
                f"curves_{dataset}.png",
                f"{dataset}: training loss along training at each method's tuned learning "
                "rate, one panel per batch size, band = range over seeds.",
            ),
            (
                f"lr_sensitivity_{dataset}.png",
                f"{dataset}: tail loss against learning rate per method (colour: batch size); "
                "see how wide each method's good range is.",
            ),
        ):
            path = drawn.get(key)
            if path is not None:
                blocks.append(Figure(path, caption, stand_in=view.stand_in(dataset)))
    return blocks
