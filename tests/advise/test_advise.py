"""``anisoada advise``: checks, framings, the rule, and verdicts on instances built to go each way.

The end-to-end instances are small members of the validation family
(:mod:`anisoada.reproduce.prediction`): near-isotropic Gaussian features with a 2-sparse
``w*`` at a large batch (built so SGD wins: the full sweep's ratio there is e^2 in favour of
SGD), and sparse power-law features (built so AdaGrad wins).
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from anisoada.advice import (
    PilotSettings,
    advise,
    check_a2_certificate,
    check_finite_minimiser,
    combine,
    framings,
    logistic_evidence,
    noise_scale,
    predicted_probabilities,
)
from anisoada.experiments import LRGrid
from anisoada.reproduce.prediction import FamilyMember, family_dataset
from anisoada.train import Budget

#: A small grid keeps the end-to-end tests fast (the default is 10^-3 … 10^2, two per decade).
FAST = PilotSettings(grid=LRGrid(low=1e-2, high=1e1, per_decade=2, max_extensions=1))


def test_a2_certificate_fails_on_an_invalid_L():
    # The example: ‖L‖_∞ = 0.23 with λ_max = 2.46 cannot be an A2 vector.
    check = check_a2_certificate(0.23, 2.46)
    assert check.failed and "not a valid A2 vector" in check.detail
    assert check_a2_certificate(3.3, 1.57).status == "pass"
    assert check_a2_certificate(1.0, None).status == "n/a"


def test_separable_data_is_flagged_as_having_no_finite_minimiser():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, 1.0, -1.0)  # linearly separable
    evidence = logistic_evidence(X, y)
    statuses = {check.name: check.status for check in evidence.checks}
    assert statuses["finite minimiser"] == "FAIL"
    assert evidence.extra["training_accuracy_at_reference"] == 1.0
    y_noisy = y.copy()
    y_noisy[:6] *= -1  # not separable any more
    statuses = {c.name: c.status for c in logistic_evidence(X, y_noisy).checks}
    assert statuses["finite minimiser"] == "pass"
    assert check_finite_minimiser(np.array([1.0, -0.1]), True, 1e-10).status == "pass"


def test_box_framing_cannot_favour_sgd_and_the_distance_framing_can():
    L = np.array([1.0, 1.0, 1.0, 1.0])
    sigma = np.ones(4)
    parts = {
        f.name: f
        for f in framings(
            L, sigma, lambda_max=1.0, D_inf=1.0, D_2=1.0, batch_sizes=[1, 100], budget=1e4
        )
    }
    assert not parts["box ‖L‖_∞"].can_favour_sgd
    assert parts["box ‖L‖_∞"].ratios[100] == pytest.approx(1.0)
    # D_2 = D_∞ (a 1-sparse w*): bias ratio ‖L‖_1 D_∞²/(λ_max D_2²) = 4, noise ratio 4/2 = 2.
    distance = parts["distance λ_max"]
    assert distance.can_favour_sgd
    assert distance.bias_ratio == pytest.approx(4.0)
    assert distance.noise_ratio == pytest.approx(2.0)
    assert distance.ratios[100] > 1


def test_noise_scale_is_trace_over_squared_gradient_norm():
    assert noise_scale(np.array([3.0, 4.0]), np.array([0.0, 2.0])) == pytest.approx(25 / 4)
    assert math.isinf(noise_scale(np.ones(2), np.zeros(2)))


def test_rule_predicts_the_full_sweeps_paired_verdict():
    probabilities, m, h = predicted_probabilities([-0.5, -0.45, -0.55])
    assert max(probabilities, key=probabilities.get) == "adagrad"
    assert m == pytest.approx(-0.5) and h > 0
    probabilities, *_ = predicted_probabilities([0.01, -0.01, 0.0])
    assert max(probabilities, key=probabilities.get) == "tie"
    assert sum(probabilities.values()) == pytest.approx(1.0)

    def verdict(log_ratios, theory_ratio, valid=True, full_seeds=3):
        return combine(
            64, log_ratios, pilot_ratio=math.exp(np.mean(log_ratios)), pilot_low=math.nan,
            pilot_high=math.nan, pilot_verdict="tie", theory_ratio=theory_ratio,
            bias_ratio=theory_ratio, noise_ratio=theory_ratio, noise_scale=10.0,
            theory_valid=valid, full_seeds=full_seeds,
        )  # fmt: skip

    # A resolved pilot is never overruled by the bounds.
    assert verdict([-0.5, -0.45, -0.55], theory_ratio=50.0).winner == "adagrad"
    # An unresolved pilot stays a tie against three full-sweep seeds (P(tie) >= 0.9 there) ...
    loose = [-0.3, 0.32, -0.1]
    assert verdict(loose, theory_ratio=0.1).winner == "tie"
    # ... and against thirty, where P(tie) < 1/2, the bounds break it only when they agree
    # with the pilot's point estimate.
    assert verdict(loose, theory_ratio=1.0, full_seeds=30).winner == "tie"
    tipped = verdict(loose, theory_ratio=0.1, full_seeds=30)
    assert tipped.winner == "adagrad" and "agree" in tipped.rule
    assert verdict(loose, theory_ratio=0.1, valid=False, full_seeds=30).winner == "tie"


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    directory = tmp_path_factory.mktemp("family")
    return {
        "sgd": family_dataset(
            FamilyMember("iso-sparse", "gaussian", n=1200, d=50, k=2, seed=4), directory
        ),
        "adagrad": family_dataset(
            FamilyMember("powerlaw", "powerlaw", n=1200, d=200, exponent=0.6, seed=1), directory
        ),
    }


def test_advise_says_sgd_or_tie_on_a_near_isotropic_problem_with_sparse_w_star(family, iso_out):
    # 4096 exceeds the budget of 2 epochs of 1200 rows: skipped with its reason, not a crash.
    advice = advise(family["sgd"], batch_sizes=[512, 4096], budget=Budget(epochs=2.0),
                    out=iso_out, pilot=FAST)  # fmt: skip
    assert advice.batch_sizes == (512,) and "less than one step" in advice.skipped[4096]
    assert "batch size 4096 skipped" in advice.render()
    verdict = advice.verdict(512)
    assert verdict.winner in ("sgd", "tie")
    assert verdict.pilot_ratio > 1
    assert advice.evidence.rho_L > 0.5  # near-isotropic by construction
    distance = next(f for f in advice.framings if f.name == "distance λ_max")
    assert distance.can_favour_sgd
    # 4 steps a run at this batch size: the search stage's 3-step floor is most of the budget,
    # so the pilot costs more here than the ≤ 20% it costs over the validation cells.
    pilot = advice.pilot
    assert pilot.cost_fraction == pytest.approx(
        pilot.cost_sample_lanes / pilot.reference_sample_lanes
    )
    assert 0 < pilot.cost_fraction < 0.5
    assert (iso_out / "advice.json").is_file()
    page = (iso_out / "advice.md").read_text()
    assert page.startswith("# Will AdaGrad beat SGD on iso-sparse?")
    assert "| batch_size | verdict | confidence |" in page and "```text" in page


def test_advise_says_adagrad_on_a_strongly_anisotropic_problem(family, tmp_path):
    advice = advise(family["adagrad"], batch_sizes=[64], budget=Budget(epochs=2.0), out=tmp_path,
                    pilot=FAST)  # fmt: skip
    verdict = advice.verdict(64)
    assert verdict.winner == "adagrad"
    assert verdict.confidence > 0.5 and verdict.probabilities["sgd"] < 0.05
    assert advice.evidence.rho_L < 0.2
    box = next(f for f in advice.framings if f.name == "box ‖L‖_∞")
    assert not box.can_favour_sgd
    text = advice.render()
    assert "ADAGRAD" in text and "can favour SGD" in text and "Pilot cost" in text
    payload = advice.to_dict()
    assert payload["verdicts"][0]["winner"] == "adagrad"
    assert "The rule" in payload["rule"]


def test_import_anisoada_stays_light_and_exposes_advise():
    import subprocess

    code = (
        "import sys, anisoada; heavy = [m for m in ('torch', 'pandas', 'scipy') if m in "
        "sys.modules]; print(heavy, callable(anisoada.advise))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"


@pytest.fixture(scope="module")
def iso_out(tmp_path_factory):
    return tmp_path_factory.mktemp("iso")


def test_cli_advise_json_and_bad_input(family, iso_out, capsys):
    from anisoada.cli import main

    # The same pilot as the API test below (same grid, data and directory): its runs are reused.
    path = family["sgd"].option("dataset")
    status = main(["advise", path, "--batch-sizes", "512", "--epochs", "2", "--out",
                   str(iso_out), "--lr-grid", "0.01:10:2", "--json"])  # fmt: skip
    assert status == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["verdicts"][0]["batch_size"] == 512
    assert payload["verdicts"][0]["winner"] in ("sgd", "tie")
    assert 0 < payload["pilot"]["cost_fraction"] < 1
    assert payload["out"] == str(iso_out)
    assert {c["name"] for c in payload["evidence"]["checks"]} >= {"finite minimiser"}
    assert main(["advise"]) == 2
    assert main(["advise", str(iso_out / "missing.svm")]) == 2
    assert main(["advise", path, "--lr-grid", "bad"]) == 2


@pytest.mark.real_data
def test_real_mushrooms_is_flagged_separable_and_a9a_passes(shared_data, tmp_path):
    from anisoada.data import load_libsvm

    checks = {}
    for name in ("mushrooms", "a9a"):
        data = load_libsvm(name, data_home=shared_data, cache_dir=tmp_path)
        evidence = logistic_evidence(data.X, np.asarray(data.y, dtype=float))
        checks[name] = {c.name: c.status for c in evidence.checks}
        assert checks[name]["A2 certificate ‖L‖_∞ ≥ λ_max"] == "pass"
        distance = next(
            f for f in framings(evidence.L, evidence.sigma, lambda_max=evidence.lambda_max,
                                D_inf=evidence.D_inf, D_2=evidence.D_2, batch_sizes=[64],
                                budget=1e5)
            if f.name == "distance λ_max"
        )  # fmt: skip
        # With D at the optimum the bounds favour SGD here (AdaGrad wins the tuned sweeps).
        assert distance.bias_ratio > 1
    assert checks["mushrooms"]["finite minimiser"] == "FAIL"
    assert checks["a9a"]["finite minimiser"] == "pass"


def test_pilot_stages_are_cell_runs_with_a_window_and_a_failed_bracket_is_extended(
    family, tmp_path
):
    from dataclasses import replace

    import pandas as pd

    from anisoada.advice import run_pilot
    from anisoada.experiments import ResultsStore

    # AdaGrad's bracket 10^3 × the searched rate diverges on every seed: the confirm stage
    # extends it a half-decade down once (and reports no verdict if that diverges too).
    settings = replace(FAST, bracket_adagrad=(1e3, 10**3.5))
    spec = family["adagrad"]
    result = run_pilot(spec, [16, 128], Budget(epochs=1.0), tmp_path, n_train=1200,
                       settings=settings)  # fmt: skip
    for size in (16, 128):
        for stage in ("search", "confirm"):
            store = ResultsStore(tmp_path / f"{stage}_{size}")
            rows = pd.read_parquet(tmp_path / f"{stage}_{size}" / "results.parquet")
            run_ids = list(rows["run_id"].unique())
            infos = [store.read_info(run_id) for run_id in run_ids]
            # One cell run per stage and round: every optimizer (and seed) as lanes.
            assert {info["kind"] for info in infos} == {"cell"}
            assert all(info["cpu_time"] > 0 for info in infos)
            assert {info["cpu_clock"] for info in infos} == {"thread"}  # one-thread runs
    confirm = result.selection.set_index(["batch_size", "optimizer"])
    assert confirm.loc[(16, "adagrad"), "extensions_down"] == 1
    assert confirm.loc[(16, "adagrad"), "lrs_tried"] == 3
    assert confirm.loc[(16, "sgd"), "extensions_down"] == 0  # a stable bracket is kept as is
    # The second batch size searches ±1 decade (5 half-decade rates) around the rate
    # confirmed at the first, for SGD whose bracket was stable.
    search = pd.read_parquet(tmp_path / "search_128" / "selection.parquet").set_index("optimizer")
    sgd_rate = confirm.loc[(16, "sgd"), "best_lr"]
    assert search.loc["sgd", "lr_min"] <= sgd_rate / 10 * (1 + 1e-12)
    assert search.loc["sgd", "lrs_tried"] >= 5 and search.loc["sgd", "lrs_tried"] < 11
    assert result.per_batch_size[16]["run_seconds"] > 0


def test_advise_refuses_bad_inputs_before_any_run(tmp_path, capsys):
    from anisoada.cli import main

    svm = tmp_path / "tr.svm"
    svm.write_text("+1 1:1 3:1\n-1 2:1\n+1 1:0.5 2:1\n-1 3:1\n")
    for kwargs, error, match in (
        ({"data": 5}, TypeError, "data must be a LIBSVM name"),
        ({"data": svm, "budget": "x"}, TypeError, "budget must be a Budget"),
        ({"data": None}, ValueError, r"give a data set .* or a problem"),
        ({"data": svm, "batch_sizes": [1.5]}, ValueError, "positive integers"),
        ({"data": svm, "batch_sizes": [True]}, ValueError, "positive integers"),
        ({"data": svm, "batch_sizes": [2, 2]}, ValueError, "given twice"),
        ({"data": tmp_path}, ValueError, "is a directory"),
    ):
        with pytest.raises(error, match=match):
            advise(**kwargs, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()  # refused before any pilot ran
    with pytest.raises(ValueError, match=r"from 2 seeds .* to 100"):
        PilotSettings(seeds=1000)
    for argv, fragment in (
        (["advise", str(svm), "--holdout", "0"], "strictly between 0 and 1"),
        (["advise", str(svm), "--holdout", "1"], "strictly between 0 and 1"),
        (["advise", str(svm), "--out", ""], "expected a directory"),
        (["advise", "--problem", "x.py:f", "--test", str(svm)], "split a LIBSVM file"),
        (["advise", str(svm), "--seeds", "1000"], "from 2 seeds"),
        (["advise", str(tmp_path)], "is a directory"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert fragment in err and len(err.splitlines()) == 1, (argv, err)
