"""The one selection rule and the verdicts: tail losses, unstable runs, paired tests, ties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from anisoada.experiments.selection import SelectionRule, run_scores, seed_scores, select_best
from anisoada.experiments.verdict import GAP_FLOOR, compare_to_baseline


def _rows(curves: dict[tuple[str, float, int], list[float]], batch_size: int = 2048):
    """Rows of runs given their train-loss curves: {(optimizer, lr, seed): [f_0, f_1, ...]}."""
    records = []
    for (optimizer, lr, seed), losses in curves.items():
        for step, loss in enumerate(losses):
            records.append(
                {
                    "dataset": "d",
                    "optimizer": optimizer,
                    "batch_size": batch_size,
                    "seed": seed,
                    "lr": lr,
                    "step": step,
                    "train_loss": loss,
                    "status": "finished",
                }
            )
    return pd.DataFrame.from_records(records)


def test_an_oscillating_run_ending_low_is_not_selected():
    # The quick preset's case: at lr 10 SGD's loss jumps 0.72 -> 1.60 -> 0.37 over the last
    # three points and ends below lr 3's steadily decreasing 0.41; its final point is lowest.
    rows = _rows(
        {
            ("sgd", 3.16, 0): [0.69, 0.50, 0.43, 0.419, 0.416, 0.413],
            ("sgd", 10.0, 0): [0.69, 0.45, 0.39, 0.72, 1.60, 0.37],
        }
    )
    by_final = select_best(rows, SelectionRule(window=1, tolerance=math.inf)).iloc[0]
    assert by_final["best_lr"] == 10.0  # what a final-iterate rule picks
    chosen = select_best(rows).iloc[0]
    assert chosen["best_lr"] == 3.16
    assert chosen["train_loss"] == pytest.approx(np.mean([0.419, 0.416, 0.413]))
    assert chosen["lrs_unstable"] == 1 and chosen["final_train_loss"] == pytest.approx(0.413)
    scores = run_scores(rows).set_index("lr")
    assert bool(scores.loc[10.0, "unstable"]) and not bool(scores.loc[3.16, "unstable"])
    assert scores.loc[10.0, "rise"] == pytest.approx(1.60 / 0.72 - 1)


def test_a_rate_with_one_unstable_seed_is_excluded_and_spread_is_over_seeds():
    rows = _rows(
        {
            ("sgd", 1.0, 0): [1.0, 0.6, 0.5, 0.5, 0.5],
            ("sgd", 1.0, 1): [1.0, 0.6, 0.5, 0.7, 0.5],  # a 40% rise: unstable
            ("sgd", 0.1, 0): [1.0, 0.8, 0.7, 0.66, 0.64],
            ("sgd", 0.1, 1): [1.0, 0.8, 0.7, 0.68, 0.66],
        }
    )
    chosen = select_best(rows).iloc[0]
    assert chosen["best_lr"] == 0.1 and chosen["seeds"] == 2
    tails = [np.mean([0.7, 0.66, 0.64]), np.mean([0.7, 0.68, 0.66])]
    assert chosen["train_loss"] == pytest.approx(np.mean(tails))
    assert (chosen["train_loss_min"], chosen["train_loss_max"]) == pytest.approx(tuple(tails))


def _scores(adagrad: list[float], sgd: list[float]) -> pd.DataFrame:
    seeds = range(len(adagrad))
    return pd.DataFrame(
        {
            "dataset": "d",
            "batch_size": 64,
            "seed": [*seeds, *seeds],
            "optimizer": ["adagrad"] * len(adagrad) + ["sgd"] * len(sgd),
            "tail_loss": [*adagrad, *sgd],
        }
    )


def test_verdict_is_a_paired_t_test_on_log_gap_ratios():
    f_star = 0.3
    adagrad, sgd = [0.31, 0.312, 0.3105], [0.32, 0.325, 0.318]
    (row,) = compare_to_baseline(_scores(adagrad, sgd), {"d": f_star}, baseline="sgd").to_dict(
        "records"
    )
    logs = np.log((np.array(adagrad) - f_star) / (np.array(sgd) - f_star))
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert row["ratio"] == pytest.approx(np.exp(logs.mean()), rel=1e-12)
    assert row["ratio_low"] == pytest.approx(np.exp(logs.mean() - half), rel=1e-12)
    assert row["ratio_high"] == pytest.approx(np.exp(logs.mean() + half), rel=1e-12)
    assert row["p_value"] == pytest.approx(stats.ttest_1samp(logs, 0.0).pvalue, rel=1e-10)
    assert row["verdict"] == "adagrad" and row["metric"] == "gap" and row["seeds"] == 3
    assert row["value"] == pytest.approx(np.mean(adagrad) - f_star)
    assert row["baseline_min"] == pytest.approx(min(sgd) - f_star)


def test_a_tie_is_declared_when_the_seed_intervals_overlap():
    # AdaGrad is ahead on average but not at every seed: the interval straddles 1.
    adagrad, sgd = [0.40, 0.46, 0.41], [0.44, 0.43, 0.45]
    (row,) = compare_to_baseline(_scores(adagrad, sgd), {"d": 0.3}, baseline="sgd").to_dict(
        "records"
    )
    assert row["ratio"] < 1 < row["ratio_high"] and row["ratio_low"] < 1
    assert row["verdict"] == "tie" and "contains 1" in row["note"]
    # The same data, consistently ordered, is a win: the test, not the mean, decides.
    (clear,) = compare_to_baseline(
        _scores([0.40, 0.41, 0.405], sgd), {"d": 0.3}, baseline="sgd"
    ).to_dict("records")
    assert clear["verdict"] == "adagrad"


def test_losses_are_compared_when_f_star_is_unknown_and_the_baseline_can_win():
    (row,) = compare_to_baseline(
        _scores([5.2, 5.3, 5.25], [4.0, 4.1, 4.05]), {}, baseline="sgd"
    ).to_dict("records")
    assert row["metric"] == "loss" and row["verdict"] == "sgd" and row["ratio_low"] > 1


def test_runs_both_at_the_optimum_tie_instead_of_comparing_rounding():
    f_star = 0.25
    tiny = [f_star + 1e-14, f_star + 3e-13, f_star + 2e-14]
    (row,) = compare_to_baseline(
        _scores(tiny, [f_star + 1e-12] * 3), {"d": f_star}, baseline="sgd"
    ).to_dict("records")
    assert row["verdict"] == "tie" and "of f*" in row["note"]
    assert GAP_FLOOR * 1.0 > 1e-12


def test_one_seed_gives_no_interval_and_no_winner():
    (row,) = compare_to_baseline(_scores([0.31], [0.5]), {"d": 0.3}, baseline="sgd").to_dict(
        "records"
    )
    assert row["verdict"] == "tie" and row["note"] == "one seed: no interval"
    assert math.isnan(row["ratio_low"])


def test_seed_scores_are_the_tail_losses_at_the_selected_rate():
    rows = _rows(
        {
            ("sgd", 0.1, 0): [1.0, 0.8, 0.7, 0.66, 0.64],
            ("sgd", 0.1, 1): [1.0, 0.8, 0.7, 0.68, 0.66],
            ("sgd", 0.01, 0): [1.0, 0.95, 0.9, 0.88, 0.87],
            ("sgd", 0.01, 1): [1.0, 0.95, 0.9, 0.88, 0.87],
        }
    )
    scores = seed_scores(rows, select_best(rows))
    assert set(scores["lr"]) == {0.1}
    assert scores.sort_values("seed")["tail_loss"].tolist() == pytest.approx(
        [np.mean([0.7, 0.66, 0.64]), np.mean([0.7, 0.68, 0.66])]
    )
