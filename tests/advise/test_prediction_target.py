"""The ``prediction`` target's scoring: accuracy, intervals, uninformative predictors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from anisoada.reproduce import reproductions
from anisoada.reproduce.prediction import (
    FAMILY,
    FamilyMember,
    calibration,
    score_predictors,
    wilson_interval,
)


def test_target_is_registered_but_not_part_of_reproduce_all():
    target = reproductions()["prediction"]
    assert target.in_all is False
    assert all(t.in_all for name, t in reproductions().items() if name != "prediction")


def test_wilson_interval_matches_the_closed_form():
    low, high = wilson_interval(16, 18)
    assert (round(low, 3), round(high, 3)) == (0.672, 0.969)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def _cells():
    observed = ["adagrad", "adagrad", "sgd", "tie"]
    records = []
    for i, label in enumerate(observed):
        records.append({
            "dataset": f"d{i // 2}", "batch_size": 8 * (i + 1), "observed": label,
            "observed_log_ratio": [-0.5, -0.3, 0.8, 0.05][i],
            "combined": label if i < 3 else "adagrad", "combined_confidence": 0.95,
            "combined_log_ratio": [-0.4, -0.2, 0.7, -0.1][i],
            "pilot": label, "pilot_log_ratio": [-0.4, -0.2, 0.7, -0.1][i],
            "theory": "sgd", "theory_log_ratio": [1.0, 1.1, 1.2, 1.3][i],
            "theory_can_favour_sgd": True,
            "theory_box": ["adagrad", "tie", "tie", "tie"][i],
            "theory_box_log_ratio": [-1.0, -0.5, -0.2, -0.1][i],
            "theory_box_can_favour_sgd": False,
            "box_linf": "adagrad", "box_linf_log_ratio": [-1.0, -0.9, -0.8, -0.7][i],
            "box_linf_can_favour_sgd": False,
            "box_lambda_max": "adagrad", "box_lambda_max_log_ratio": [-0.5, -0.4, -0.3, -0.2][i],
            "box_lambda_max_can_favour_sgd": False,
            "dataset_sweep_cost": 100.0, "dataset_pilot_cost": 15.0,
            "dataset_sweep_cpu": 10.0, "dataset_pilot_cpu": 1.2, "dataset_evidence_wall": 1.0,
        })  # fmt: skip
    return pd.DataFrame.from_records(records)


def test_scores_count_ties_and_refuse_to_score_a_predictor_that_cannot_be_wrong():
    scores = score_predictors(_cells()).set_index("predictor")
    assert scores.loc["combined", "accuracy"] == pytest.approx(0.75)  # the tie was missed
    assert scores.loc["pilot", "accuracy"] == pytest.approx(1.0)
    assert scores.loc["theory", "accuracy"] == pytest.approx(0.25)
    # The box framing read with a band cannot say SGD but can say tie: it is scored (and the
    # SGD cell counts as a miss), unlike the same framing read against 1.
    assert scores.loc["theory_box", "informative"]
    assert scores.loc["theory_box", "accuracy"] == pytest.approx(0.5)
    for name in ("box_linf", "box_lambda_max"):
        assert not scores.loc[name, "informative"]
        assert np.isnan(scores.loc[name, "accuracy"])
        assert scores.loc[name, "matches_if_uninformative"] == pytest.approx(0.5)
        assert "not a test" in scores.loc[name, "note"]
    assert scores.loc["combined", "spearman"] == pytest.approx(1.0)
    assert scores.loc["combined", "cost_sample_lanes"] == pytest.approx(0.15)
    # CPU: the pilot's 2 × 1.2 s of runs against 2 × 10 s of sweep runs; the evidence apart.
    assert scores.loc["combined", "cost_cpu"] == pytest.approx(0.12)
    assert scores.loc["combined", "cost_evidence"] == pytest.approx(0.1)
    assert scores.loc["theory", "cost_cpu"] == 0.0
    table = calibration(_cells())
    top = table[table["bin_low"] == 0.9].iloc[0]
    assert top["cells"] == 4 and top["accuracy"] == pytest.approx(0.75)


def test_family_spans_anisotropy_and_has_instances_built_for_sgd():
    from anisoada.problems.logistic import logistic_smoothness

    rhos = {}
    for member in FAMILY:
        small = FamilyMember(**{**member.__dict__, "n": min(member.n, 1500)})
        X, y = small.generate()
        L = logistic_smoothness(X)
        rhos[member.name] = L.sum() / (L.size * L.max())
        assert set(np.unique(y)) <= {-1.0, 1.0}
    assert min(rhos.values()) < 0.05 and max(rhos.values()) > 0.8
    assert {"gauss-sparse", "rotated-1.0"} <= set(rhos)


def test_report_section_reads_the_stored_tables(tmp_path):
    import json

    from anisoada.report._results import ResultsDirectory
    from anisoada.report.sections.prediction import prediction_section

    results = ResultsDirectory(tmp_path)
    absent = prediction_section(results, tmp_path / "figures")
    assert "Optional validation, not run" in absent.blocks[0].text
    target = tmp_path / "prediction"
    target.mkdir()
    cells = _cells()
    cells.to_csv(target / "cells.csv", index=False)
    score_predictors(cells).to_csv(target / "predictors.csv", index=False)
    calibration(cells).to_csv(target / "calibration.csv", index=False)
    record = {"target": "prediction", "preset": "quick", "targets": {
        "accuracy": {"value": 0.75, "target": 0.9, "met": False}}}  # fmt: skip
    (target / "reproduction.json").write_text(json.dumps(record))
    section = prediction_section(ResultsDirectory(tmp_path), tmp_path / "figures")
    assert section.status == "ok"
    assert (tmp_path / "figures" / "prediction_calibration.png").is_file()
    texts = " ".join(getattr(block, "text", "") for block in section.blocks)
    assert "accuracy 0.75 (target ≥ 0.9: not met)" in texts
    assert "Misses: d1 at M=32: sweep tie" in texts


@pytest.mark.slow
def test_quick_target_end_to_end_on_a_tiny_family(tmp_path):
    from anisoada.reproduce.prediction import PredictionPreset, run_prediction
    from anisoada.train import Budget

    tiny = PredictionPreset(
        family=(FamilyMember("tiny-iso", "gaussian", n=300, d=20, k=2, seed=4),),
        family_batch_sizes=(64,), libsvm=(), libsvm_batch_sizes=(), budget=Budget(epochs=1.0),
    )  # fmt: skip
    output = run_prediction("quick", tmp_path, progress=False, config=tiny)
    cells = pd.read_csv(output.files["cells.csv"])
    assert len(cells) == 1 and cells.loc[0, "stand_in"] == "synthetic logistic family"
    assert cells.loc[0, "observed"] in ("adagrad", "sgd", "tie")
    scores = pd.read_csv(output.files["predictors.csv"]).set_index("predictor")
    assert 0 < scores.loc["combined", "cost_sample_lanes"] < 1
    assert 0 < scores.loc["combined", "cost_cpu"] < 1
    record = json.loads((tmp_path / "reproduction.json").read_text())
    assert set(record["targets"]) == {"accuracy", "spearman", "pilot_cost", "pilot_cpu"}
    assert "accuracy" in output.summary
