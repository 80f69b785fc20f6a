"""Choosing each optimizer's learning rate: the one selection rule of every sweep.

**The rule.** For each (problem, optimizer, batch size) the best learning rate is the one with the
lowest *tail loss* averaged over seeds, among the rates whose runs are all stable:

* the tail loss of a run is the mean training loss (``train_loss``, the objective at the
  parameters) over its last ``window`` evaluation points, not the last point alone (never the
  initial evaluation, unless it is the run's only point);
* a run is *unstable* when, within that window (and from the point just before it), its loss
  rises by more than ``tolerance`` of its value between two consecutive evaluation points; a
  rate with any diverged or unstable seed is never selected.

**Why.** The final iterate of a stochastic run is one draw: at a large learning rate, SGD's
loss jumps between evaluation points, and an oscillating run can end on a low point by chance
(at batch 2048 of the quick preset, SGD at lr 10 went 0.72 → 1.60 → 0.37 over its last three
points and was selected by its final value). A mean over the last points measures where the
run *is*, and a run whose loss climbs by more than 10% between two points near the end is not
converging at that rate, whatever its last value. Converging runs rise by well under 10%
between points (the largest rise of a near-optimal run in the quick preset was 2%).

The same rule selects the logistic, quadratic and language-model learning rates; its two
numbers are recorded in ``sweep.toml`` (``[selection]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from anisoada.schema import GROUP_COLUMNS, IDENTITY_COLUMNS, METRIC_COLUMNS, SELECTION_METRIC

__all__ = [
    "SelectionRule",
    "final_rows",
    "lr_scores",
    "run_scores",
    "seed_scores",
    "select_best",
    "tail_loss",
]


@dataclass(frozen=True)
class SelectionRule:
    """The two numbers of the selection rule (see the module docstring).

    Attributes:
        window: Evaluation points averaged at the end of each run (1: the final point only).
        tolerance: Largest relative rise of the loss between two consecutive points of the
            window (and into it) for a run to count as stable.
    """

    window: int = 3
    tolerance: float = 0.10

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"selection window must be an integer >= 1; got {self.window!r}")
        value = self.tolerance
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"selection tolerance must be a number > 0; got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The TOML form of a ``[selection]`` table."""
        return {"window": self.window, "tolerance": self.tolerance}


def final_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The last row of every run (its final evaluation, or its divergence row)."""
    if rows.empty:
        return rows
    ordered = rows.sort_values([*IDENTITY_COLUMNS, "step"], kind="stable")
    return ordered.groupby(list(IDENTITY_COLUMNS), sort=True).tail(1).reset_index(drop=True)


def tail_loss(losses: np.ndarray, window: int) -> float:
    """Mean of the last ``window`` values after the initial evaluation (fewer when the run has
    fewer points; the initial value itself only when it is the only one).

    Example:
        >>> tail_loss(np.array([0.9, 0.72, 1.6, 0.37]), 3)
        0.8966666666666666
        >>> tail_loss(np.array([9.0, 1.2]), 3)
        1.2
    """
    return float(np.mean(_trained(losses)[-window:]))


def _trained(values: np.ndarray) -> np.ndarray:
    """The values after the initial evaluation (the initial one alone if nothing follows)."""
    return values[1:] if values.size > 1 else values


def _rise(losses: np.ndarray, window: int) -> float:
    """Largest relative rise between consecutive points of the window (and into it)."""
    tail = losses[-(window + 1) :]
    if tail.size < 2:
        return 0.0
    previous, following = tail[:-1], tail[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        rises = np.where(previous > 0, (following - previous) / previous, 0.0)
    return float(np.max(np.maximum(rises, 0.0)))


def _metrics(rows: pd.DataFrame) -> list[str]:
    return [column for column in METRIC_COLUMNS if column in rows]


def run_scores(rows: pd.DataFrame, rule: SelectionRule = SelectionRule()) -> pd.DataFrame:
    """One row per run: tail means of its metrics, its final training loss and its stability.

    Columns: the identity columns, ``status``, ``tail_loss`` (tail mean of ``train_loss``),
    ``final_train_loss``, ``rise`` (the largest relative rise in the window), ``unstable``, and
    the tail mean of every other metric the run evaluated (``batch_loss`` as
    ``final_batch_loss``: the mean mini-batch loss of the last interval). A diverged run's scores
    are NaN.
    """
    if rows.empty:
        return pd.DataFrame(columns=[*IDENTITY_COLUMNS, "status", "tail_loss"])
    ordered = rows.sort_values([*IDENTITY_COLUMNS, "step"], kind="stable")
    metrics = _metrics(ordered)
    records = []
    for key, run in ordered.groupby(list(IDENTITY_COLUMNS), sort=True):
        record: dict[str, Any] = dict(zip(IDENTITY_COLUMNS, key))
        status = str(run["status"].iloc[-1])
        record["status"] = status
        losses = run[SELECTION_METRIC].to_numpy(dtype=float)
        diverged = status == "diverged" or not np.isfinite(losses).all()
        record["tail_loss"] = np.nan if diverged else tail_loss(losses, rule.window)
        record["final_train_loss"] = np.nan if diverged else float(losses[-1])
        record["rise"] = np.nan if diverged else _rise(losses, rule.window)
        record["diverged"] = diverged
        record["unstable"] = (not diverged) and record["rise"] > rule.tolerance
        for metric in metrics:
            if metric == SELECTION_METRIC:
                continue
            values = run[metric].to_numpy(dtype=float)
            name = "final_batch_loss" if metric == "batch_loss" else metric
            record[name] = np.nan if diverged else float(np.mean(_trained(values)[-rule.window :]))
        records.append(record)
    return pd.DataFrame.from_records(records)


def lr_scores(
    rows: pd.DataFrame, rule: SelectionRule = SelectionRule(), *, exclude: bool = True
) -> pd.DataFrame:
    """Per (problem, optimizer, batch size, lr): scores averaged over seeds and flags.

    ``train_loss`` is the mean tail loss over seeds, with ``train_loss_std`` (population),
    ``train_loss_min`` and ``train_loss_max`` its spread; ``diverged`` / ``unstable`` are true
    when any seed is (with ``exclude`` the scores are then NaN: such a rate is never selected).
    """
    runs = run_scores(rows, rule)
    keys = [*GROUP_COLUMNS, "lr"]
    bookkeeping = {*IDENTITY_COLUMNS, "status", "tail_loss", "rise", "diverged", "unstable"}
    extras = [c for c in runs.columns if c not in bookkeeping]
    grouped = runs.groupby(keys, sort=True)
    table = grouped[extras].mean()
    table[SELECTION_METRIC] = grouped["tail_loss"].mean()
    table[f"{SELECTION_METRIC}_std"] = grouped["tail_loss"].std(ddof=0)
    table[f"{SELECTION_METRIC}_min"] = grouped["tail_loss"].min()
    table[f"{SELECTION_METRIC}_max"] = grouped["tail_loss"].max()
    table["diverged"] = grouped["diverged"].any()
    table["unstable"] = grouped["unstable"].any()
    table["seeds"] = grouped.size()
    if exclude:
        excluded = table["diverged"] | table["unstable"]
        scored = [c for c in table.columns if c not in ("diverged", "unstable", "seeds")]
        table.loc[excluded, scored] = np.nan
    return table.reset_index()


def select_best(
    rows: pd.DataFrame, rule: SelectionRule = SelectionRule(), *, tuning_seeds: int | None = None
) -> pd.DataFrame:
    """The best learning rate per (problem, optimizer, batch size) by the selection rule.

    With ``tuning_seeds = t`` the rate is chosen on seeds ``0 … t−1`` only (the other seeds are
    confirmation runs at the chosen rate), and the reported scores are over every seed at it.

    Returns one row per group with ``best_lr`` (NaN when every rate diverged or was unstable),
    the mean tail metrics over seeds at it (``train_loss`` with ``train_loss_std``, ``_min``,
    ``_max``; ``final_train_loss``; e.g. ``test_loss``, ``eval_loss``, ``final_batch_loss``),
    ``seeds``, and the exploration ``lrs_tried``, ``lrs_diverged``, ``lrs_unstable``,
    ``lr_min``, ``lr_max`` (the sweep adds its extension counts).

    Example:
        >>> rows = pd.DataFrame({
        ...     "dataset": "d", "optimizer": "o", "batch_size": 8, "seed": 0,
        ...     "lr": [0.1, 0.1, 1.0, 1.0], "step": [0, 5, 0, 5],
        ...     "train_loss": [0.7, 0.3, 0.7, float("nan")],
        ...     "status": ["finished", "finished", "diverged", "diverged"]})
        >>> table = select_best(rows, SelectionRule(window=1))
        >>> table[["best_lr", "lrs_diverged"]].to_dict("records")
        [{'best_lr': 0.1, 'lrs_diverged': 1}]
    """
    tuning = rows if tuning_seeds is None else rows[rows["seed"] < tuning_seeds]
    scores = lr_scores(tuning, rule)
    every_seed = lr_scores(rows, rule, exclude=False).set_index([*GROUP_COLUMNS, "lr"])
    bookkeeping = {*GROUP_COLUMNS, "lr", "diverged", "unstable", "seeds"}
    columns = [c for c in scores.columns if c not in bookkeeping]
    records = []
    for key, group in scores.groupby(list(GROUP_COLUMNS), sort=True):
        valid = group[~group["diverged"] & ~group["unstable"] & group[SELECTION_METRIC].notna()]
        record: dict[str, Any] = dict(zip(GROUP_COLUMNS, key))
        record["batch_size"] = int(record["batch_size"])
        record.update(
            lrs_tried=len(group),
            lrs_diverged=int(group["diverged"].sum()),
            lrs_unstable=int((group["unstable"] & ~group["diverged"]).sum()),
            lr_min=float(group["lr"].min()),
            lr_max=float(group["lr"].max()),
        )
        if valid.empty:
            record.update(best_lr=np.nan, seeds=0, **dict.fromkeys(columns, np.nan))
        else:
            best_lr = float(valid.loc[valid[SELECTION_METRIC].idxmin(), "lr"])
            best = every_seed.loc[(*key, best_lr)]
            record.update(best_lr=best_lr, seeds=int(best["seeds"]))
            record.update({column: float(best[column]) for column in columns})
        records.append(record)
    return pd.DataFrame.from_records(records)


def seed_scores(
    rows: pd.DataFrame, selection: pd.DataFrame, rule: SelectionRule = SelectionRule()
) -> pd.DataFrame:
    """Per (problem, optimizer, batch size, seed): the tail loss at the selected learning rate.

    The input of the verdicts (:func:`anisoada.experiments.verdict.compare_to_baseline`).
    """
    runs = run_scores(rows, rule)
    chosen = selection.dropna(subset=["best_lr"])[[*GROUP_COLUMNS, "best_lr"]]
    merged = runs.merge(chosen, on=list(GROUP_COLUMNS))
    merged = merged[merged["lr"] == merged["best_lr"]]
    return merged[[*GROUP_COLUMNS, "seed", "lr", "tail_loss", "final_train_loss"]].reset_index(
        drop=True
    )
