"""Choosing each optimizer's learning rate: the one selection rule of every sweep.

For each (problem, optimizer, batch size) the best learning rate is the one with the lowest
final training loss (``train_loss`` at the last evaluation point), averaged over seeds. A rate
with any diverged seed is never selected. The selection table reports, at the best rate, the
mean final value of every metric the runs evaluated, and how the grid was explored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from anisoada.schema import (
    GROUP_COLUMNS,
    IDENTITY_COLUMNS,
    METRIC_COLUMNS,
    SELECTION_METRIC,
)

__all__ = ["final_rows", "lr_scores", "select_best"]


def final_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The last row of every run (its final evaluation, or its divergence row)."""
    if rows.empty:
        return rows
    ordered = rows.sort_values([*IDENTITY_COLUMNS, "step"], kind="stable")
    return ordered.groupby(list(IDENTITY_COLUMNS), sort=True).tail(1).reset_index(drop=True)


def _metrics(rows: pd.DataFrame) -> list[str]:
    return [column for column in METRIC_COLUMNS if column in rows]


def lr_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, optimizer, batch size, lr): mean final metrics over seeds, divergence flag.

    A learning rate counts as diverged when any of its seeds diverged (its scores are then NaN).
    """
    finals = final_rows(rows)
    keys = [*GROUP_COLUMNS, "lr"]
    metrics = _metrics(finals)
    finals = finals.assign(diverged=finals["status"] == "diverged")
    grouped = finals.groupby(keys, sort=True)
    table = grouped[metrics].mean()
    table[f"{SELECTION_METRIC}_std"] = grouped[SELECTION_METRIC].std(ddof=0)
    table["diverged"] = grouped["diverged"].any()
    table["seeds"] = grouped.size()
    table.loc[table["diverged"], [*metrics, f"{SELECTION_METRIC}_std"]] = np.nan
    return table.reset_index()


def select_best(rows: pd.DataFrame) -> pd.DataFrame:
    """The best learning rate per (problem, optimizer, batch size) by mean final training loss.

    Diverged learning rates are never selected; ``best_lr`` is NaN when every one diverged.
    Returns one row per group with ``best_lr``, the mean final metrics at it
    (``train_loss``, ``train_loss_std``, and e.g. ``test_loss``, ``eval_loss``,
    ``final_batch_loss``), ``seeds``, and the exploration ``lrs_tried``, ``lrs_diverged``,
    ``lr_min``, ``lr_max`` (the sweep adds its extension counts).

    Example:
        >>> rows = pd.DataFrame({
        ...     "dataset": "d", "optimizer": "o", "batch_size": 8, "seed": 0,
        ...     "lr": [0.1, 0.1, 1.0, 1.0], "step": [0, 5, 0, 5],
        ...     "train_loss": [0.7, 0.3, 0.7, float("nan")],
        ...     "status": ["finished", "finished", "diverged", "diverged"]})
        >>> select_best(rows)[["best_lr", "train_loss", "lrs_diverged"]].to_dict("records")
        [{'best_lr': 0.1, 'train_loss': 0.3, 'lrs_diverged': 1}]
    """
    scores = lr_scores(rows)
    metrics = [m for m in _metrics(scores) if m != SELECTION_METRIC]
    records = []
    for key, group in scores.groupby(list(GROUP_COLUMNS), sort=True):
        valid = group[~group["diverged"] & group[SELECTION_METRIC].notna()]
        record: dict[str, Any] = dict(zip(GROUP_COLUMNS, key))
        record["batch_size"] = int(record["batch_size"])
        record.update(
            lrs_tried=len(group),
            lrs_diverged=int(group["diverged"].sum()),
            lr_min=float(group["lr"].min()),
            lr_max=float(group["lr"].max()),
        )
        if valid.empty:
            record.update(best_lr=np.nan, seeds=0)
            record[SELECTION_METRIC] = np.nan
            record[f"{SELECTION_METRIC}_std"] = np.nan
        else:
            best = valid.loc[valid[SELECTION_METRIC].idxmin()]
            record.update(best_lr=float(best["lr"]), seeds=int(best["seeds"]))
            record[SELECTION_METRIC] = float(best[SELECTION_METRIC])
            record[f"{SELECTION_METRIC}_std"] = float(best[f"{SELECTION_METRIC}_std"])
            for metric in metrics:
                name = "final_batch_loss" if metric == "batch_loss" else metric
                record[name] = float(best[metric])
        records.append(record)
    return pd.DataFrame.from_records(records)
