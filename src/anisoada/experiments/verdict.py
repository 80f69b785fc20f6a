"""Who wins at each batch size: a paired comparison over seeds at the tuned learning rates.

A verdict is a claim that can be wrong, so it says what it compares, with what spread, and when
it is a tie. For one (problem, batch size), an optimizer ``A`` and the baseline ``B`` (SGD), each
at its own selected learning rate, seed ``s`` gives the two runs' *tail losses* ``f_A,s`` and
``f_B,s`` (:func:`anisoada.experiments.selection.tail_loss`). The seeds are paired: both
optimizers see the same mini-batches at a seed (:func:`~anisoada.experiments.derive_seed`).

* With a known minimum ``f*`` (logistic regression: the L-BFGS optimum; the quadratic: 0) the
  compared quantity is the optimality gap ``g = f − f*``; without one (a language model) it is
  the loss itself. Gaps below :data:`GAP_FLOOR` (relative to ``max(1, |f*|)``) are floored
  there: two runs both at the optimum to rounding are a tie, not a ratio of rounding errors.
* Per seed ``r_s = log(g_A,s / g_B,s)``; the reported ratio is ``exp(mean r)`` (a geometric
  mean), its interval ``exp(mean r ± t_{0.975, n−1} · sd(r)/√n)`` — the 95% confidence interval
  of a paired t-test on the log ratios.
* The verdict: ``A`` when the whole interval is below 1, the baseline when it is above 1, a
  **tie** otherwise (and with fewer than two seeds, where no interval exists).

Limits, stated where the verdicts are shown: the learning rates were selected on the same seeds
(a small optimistic bias for every optimizer alike); three seeds give a wide interval, so a tie
often means "not resolved at this many seeds" rather than "equal".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from anisoada.schema import NO_VERDICT, TIE, VERDICT_COLUMNS

__all__ = ["GAP_FLOOR", "VERDICT_COLUMNS", "VERDICT_TEST", "compare_to_baseline"]

#: Gaps at or below ``GAP_FLOOR · max(1, |f*|)`` count as "at the optimum".
GAP_FLOOR = 1e-9

#: The test behind every verdict, as the tables state it.
VERDICT_TEST = (
    "paired t-test over seeds on log(gap ratio) (log(loss ratio) where f* is unknown), "
    "95% interval; tie when the interval contains 1"
)


def _t_quantile(level: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, dof))


def _paired(log_ratios: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """(mean, low, high, two-sided p) of a paired t-test on per-seed log ratios."""
    from scipy.stats import t

    n = log_ratios.size
    mean = float(log_ratios.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(log_ratios.std(ddof=1))
    if sd == 0.0:
        # Identical ratios at every seed: the interval collapses onto the ratio itself.
        return mean, mean, mean, 0.0 if mean != 0.0 else 1.0
    half = _t_quantile(level, n - 1) * sd / math.sqrt(n)
    statistic = mean / (sd / math.sqrt(n))
    p_value = float(2 * t.sf(abs(statistic), n - 1))
    return mean, mean - half, mean + half, p_value


def compare_to_baseline(
    scores: pd.DataFrame,
    references: Mapping[str, float | None],
    *,
    baseline: str,
    optimizers: Sequence[str] = (),
    level: float = 0.95,
) -> pd.DataFrame:
    """The verdict table (see the module docstring) from per-seed tail losses.

    Args:
        scores: One row per (dataset, optimizer, batch_size, seed) with ``tail_loss`` at that
            optimizer's selected learning rate (seeds missing for one optimizer are dropped
            from the pair).
        references: ``f*`` per dataset (``None`` or absent: compare losses).
        baseline: The optimizer label every other one is compared with.
        optimizers: Every optimizer label of the sweep: one without scores (no selected rate)
            still gets its row, with verdict ``"no verdict"``.
        level: Confidence level of the interval.

    Returns:
        One row per (dataset, batch size, optimizer ≠ baseline) with the columns of
        :data:`VERDICT_COLUMNS`: ``value``/``baseline_value`` are the mean gaps (or losses)
        over the paired seeds, ``*_min``/``*_max`` their range over seeds, ``ratio`` and
        ``ratio_low``/``ratio_high`` the geometric-mean ratio and its interval, ``verdict`` the
        winning optimizer's label, ``"tie"``, or ``"no verdict"`` when one of the two has no
        selected learning rate; ``note`` says why a tie is a tie.

    Example:
        >>> scores = pd.DataFrame({
        ...     "dataset": "d", "batch_size": 8, "seed": [0, 1, 2] * 2,
        ...     "optimizer": ["adagrad"] * 3 + ["sgd"] * 3,
        ...     "tail_loss": [1.1, 1.2, 1.15, 2.0, 2.2, 2.1]})
        >>> table = compare_to_baseline(scores, {"d": 1.0}, baseline="sgd")
        >>> table[["verdict", "metric", "seeds"]].to_dict("records")
        [{'verdict': 'adagrad', 'metric': 'gap', 'seeds': 3}]
    """
    records = []
    for (dataset, batch_size), group in scores.groupby(["dataset", "batch_size"], sort=False):
        wide = group.pivot_table(index="seed", columns="optimizer", values="tail_loss")
        for label in (baseline, *optimizers):
            if label not in wide:
                wide[label] = np.nan  # no selected rate: its pairs have no verdict
        f_star = references.get(str(dataset))
        floor = GAP_FLOOR * max(1.0, abs(f_star)) if f_star is not None else 0.0
        for optimizer in [c for c in wide.columns if c != baseline]:
            pair = wide[[optimizer, baseline]].dropna()
            record: dict[str, object] = {
                "dataset": dataset,
                "batch_size": int(batch_size),
                "optimizer": optimizer,
                "baseline": baseline,
                "metric": "gap" if f_star is not None else "loss",
                "seeds": len(pair),
            }
            mine = pair[optimizer].to_numpy(dtype=float)
            theirs = pair[baseline].to_numpy(dtype=float)
            if f_star is not None:
                mine, theirs = mine - f_star, theirs - f_star
            for prefix, values in (("value", mine), ("baseline_value", theirs)):
                stem = prefix.removesuffix("_value") if prefix != "value" else "value"
                record[prefix] = float(values.mean()) if values.size else math.nan
                record[f"{stem}_min"] = float(values.min()) if values.size else math.nan
                record[f"{stem}_max"] = float(values.max()) if values.size else math.nan
            record.update(_verdict(mine, theirs, floor, optimizer, baseline, level))
            records.append(record)
    table = pd.DataFrame.from_records(records)
    return table.reindex(columns=list(VERDICT_COLUMNS)) if len(table) else table


def _verdict(
    mine: np.ndarray,
    theirs: np.ndarray,
    floor: float,
    optimizer: str,
    baseline: str,
    level: float,
) -> dict[str, object]:
    if mine.size == 0:
        note = "one of the two has no selected rate (all diverged or unstable): widen the grid"
        return {**_tie(note), "verdict": NO_VERDICT}
    if not (np.isfinite(mine).all() and np.isfinite(theirs).all()):
        return _tie("a run's loss is not finite")
    if floor and (mine <= floor).all() and (theirs <= floor).all():
        return _tie(f"both within {floor:.0e} of f* at every seed", ratio=1.0)
    if not floor and ((mine <= 0).any() or (theirs <= 0).any()):
        return _tie("a loss is not positive: no ratio")
    low_bound = floor if floor else 0.0
    log_ratios = np.log(np.maximum(mine, low_bound) / np.maximum(theirs, low_bound))
    mean, low, high, p_value = _paired(log_ratios, level)
    result: dict[str, object] = {
        "ratio": math.exp(mean),
        "ratio_low": math.exp(low) if math.isfinite(low) else math.nan,
        "ratio_high": math.exp(high) if math.isfinite(high) else math.nan,
        "p_value": p_value,
    }
    if mine.size < 2:
        result.update(verdict=TIE, note="one seed: no interval")
    elif high < 0:
        result.update(verdict=optimizer, note="")
    elif low > 0:
        result.update(verdict=baseline, note="")
    else:
        result.update(verdict=TIE, note=f"the {100 * level:.0f}% interval contains 1")
    return result


def _tie(note: str, ratio: float = math.nan) -> dict[str, object]:
    nan = math.nan
    return {"ratio": ratio, "ratio_low": nan, "ratio_high": nan, "p_value": nan,
            "verdict": TIE, "note": note}  # fmt: skip
