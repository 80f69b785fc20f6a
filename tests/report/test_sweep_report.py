"""``anisoada report`` on a plain sweep of a user's own LIBSVM file, and the sweep's TOML fed back.

One module-scoped sweep (a user's file with a hold-out split, SGD vs AdaGrad, 3 seeds, two batch
sizes) with a measurement summary beside it; the report is checked for its answer, its verdict
table (one row per stored verdict), its figures, predicted vs observed and provenance, and is
opened in headless Chromium like the reproduction report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report_browser import browser  # noqa: F401  (the shared Chromium fixture)

from anisoada.cli import main
from anisoada.experiments import load_sweep_config, run_sweep
from anisoada.schema import TIMING_COLUMNS


def _write_user_file(path: Path) -> None:
    """A small anisotropic LIBSVM problem: a few frequent features, many rare ones."""
    rng = np.random.default_rng(7)
    n, d = 600, 40
    frequency = 0.9 / np.arange(1, d + 1) ** 1.1
    X = (rng.random((n, d)) < frequency) * rng.uniform(0.5, 1.5, (n, d))
    w = rng.normal(size=d) * 2
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-(X @ w))), 1, -1)
    lines = []
    for label, row in zip(y, X, strict=True):
        features = " ".join(f"{j + 1}:{value:.4f}" for j, value in enumerate(row) if value)
        lines.append(f"{label:+d} {features}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def user_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("user_sweep")
    data = root / "mine.svm"
    _write_user_file(data)
    out = root / "sweep"
    argv = ["sweep", "--dataset", str(data), "--holdout", "0.2", "--optimizer", "sgd",
            "--optimizer", "adagrad", "--batch-sizes", "8,64", "--lr-grid", "1e-2:10:1",
            "--seeds", "3", "--budget-samples", "3000", "--evaluations", "6", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    problem = pd.read_csv(out / "selection.csv")["dataset"].iloc[0]
    stem = out / "measure" / str(problem)
    assert main(["measure", "--task", "logreg", "--dataset", str(data), "--out", str(stem)]) == 0
    assert main(["report", str(out)]) == 0
    return out, str(problem)


def test_the_sweep_report_answers_and_shows_every_verdict(user_sweep):
    out, problem = user_sweep
    html = (out / "report.html").read_text()
    markdown = (out / "report.md").read_text()
    verdicts = pd.read_csv(out / "verdicts.csv")
    assert len(verdicts) == 2  # AdaGrad vs SGD at each of the two batch sizes
    # The answer comes first, in words, and names the user's problem.
    first_section = html[html.index('id="summary"') :]
    first_section = first_section[: first_section.index("</section>")]
    assert f"{problem}:" in first_section
    assert "AdaGrad beats SGD" in first_section or "at no batch size" in first_section
    assert "no stand-ins" in first_section
    # One verdict row per stored verdict, with the stored label.
    table = html[html.index('id="table-sweep-verdicts"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr") == 1 + len(verdicts)
    names = {"adagrad": "AdaGrad", "sgd": "SGD", "tie": "tie", "no verdict": "no verdict"}
    for verdict in verdicts["verdict"]:
        assert f">{names[verdict]}<" in table
    # The command that reproduces the table is printed under it.
    assert "anisoada sweep sweep.toml --out ." in html
    # Figures: the batch-size plot, loss curves and lr sensitivity of the problem.
    assert html.count("<img ") >= 3
    assert f"curves_{problem}.png" in markdown
    # Predicted vs observed from the measurement beside the sweep.
    predicted = html[html.index('id="predicted"') :]
    assert "table-sweep-predicted" in predicted[: predicted.index("</section>")]
    assert 'id="provenance"' in html


def test_the_sweep_report_opens_in_the_browser(user_sweep, browser):  # noqa: F811
    out, _ = user_sweep
    page = (out / "report.html").resolve()
    browser.get(page.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
    )
    assert len(images) >= 3
    assert all(complete and width > 0 for complete, width in images)
    for section_id in ("summary", "sweep", "predicted", "provenance"):
        height = browser.execute_script(
            "const s = document.getElementById(arguments[0]); return s && s.offsetHeight;",
            section_id,
        )
        assert height and height > 0, section_id


def test_the_written_toml_reproduces_the_rows_bit_for_bit(user_sweep, tmp_path):
    out, _ = user_sweep
    config = load_sweep_config(out / "sweep.toml")
    again = run_sweep(config, tmp_path / "again", progress=False)
    stored = pd.read_parquet(out / "results.parquet")
    timing = [c for c in TIMING_COLUMNS if c in stored]
    pd.testing.assert_frame_equal(
        again.rows.drop(columns=timing).reset_index(drop=True),
        stored.drop(columns=timing).reset_index(drop=True),
        check_exact=True,
    )
    # The same file, written again, says the same thing.
    assert (tmp_path / "again" / "sweep.toml").read_text() == (out / "sweep.toml").read_text()


def test_report_refuses_measure_for_a_problem_the_sweep_lacks(user_sweep, capsys):
    out, _ = user_sweep
    status = main(["report", str(out), "--measure", "nope=x", "--out", str(out / "r2")])
    assert status == 2
    assert "nope" in capsys.readouterr().err
