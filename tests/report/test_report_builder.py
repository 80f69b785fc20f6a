"""build_report: sections in the paper's order, tables that carry the stored values, stand-in
labels where stand-in numbers appear, missing targets shown as such, embedded figures."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil

import pandas as pd
import pytest
from report_fixtures import LM_TABLE4, ReportPage

from anisoada.cli import main
from anisoada.report import SECTIONS, build_report

_NAMES = {"sgd": "SGD", "adagrad": "AdaGrad", "adagrad_norm": "AdaGrad-Norm", "tie": "tie"}


@pytest.fixture(scope="module")
def page(stored_results) -> ReportPage:
    return ReportPage((stored_results / "report.html").read_text())


def _values(cells):
    return [float(value) for _, value in cells]


def test_every_section_is_present_in_the_papers_order(page):
    assert list(page.sections) == [section_id for section_id, _ in SECTIONS]
    assert set(page.sections.values()) == {"ok"}


@pytest.mark.parametrize(
    ("table", "csv", "columns"),
    [
        (
            "logreg-results",
            "logreg/results.csv",
            {
                "batch": "batch_size",
                "SGD loss": "sgd_loss",
                "SGD lr": "sgd_lr",
                "AdaGrad loss": "adagrad_loss",
                "AdaGrad lr": "adagrad_lr",
                "AdaGrad-Norm loss": "adagrad_norm_loss",
                "gap AdaGrad/SGD": "adagrad_vs_sgd",
            },
        ),
        (
            "table2",
            "logreg/table2.csv",
            {"n": "n", "‖L‖₁": "L_l1", "‖L‖∞": "L_linf", "ρ_L": "rho_L", "f*": "f_star"},
        ),
        (
            "table2-noise",
            "logreg/table2.csv",
            {"‖σ‖₁ at w₁": "sigma_l1_init", "ρ_σ at w*": "rho_sigma_opt"},
        ),
        (
            "predicted-vs-observed",
            "logreg/predicted_vs_observed.csv",
            {"predicted, box W (‖L‖∞)": "predicted_box", "observed gap ratio": "observed"},
        ),
        (
            "table4",
            "lm/table4.csv",
            {"tail train loss (mean)": "train_loss", "ρ_σ (whole model)": "rho_sigma"},
        ),
        (
            "envelope-pooled",
            "smoothness/envelope.csv",
            {"L0": "L0", "L1": "L1", "points": "n_points"},
        ),
    ],
)
def test_table_cells_hold_the_stored_values(stored_results, page, table, csv, columns):
    stored = pd.read_csv(stored_results / csv)
    if table == "envelope-pooled":
        stored = stored[stored["tensor"] == "pooled"]
    digits = 3 if table == "predicted-vs-observed" else 4
    for header, column in columns.items():
        cells = page.column(table, header)
        # data-value keeps the stored number exactly; the text is it rounded for reading.
        assert _values(cells) == stored[column].astype(float).tolist(), (table, header)
        shown = [text for text, _ in cells]
        expected = [
            str(int(v)) if float(v).is_integer() and column in ("batch_size", "n", "n_points")
            else f"{float(v):.{digits}g}"
            for v in stored[column]
        ]  # fmt: skip
        assert shown == expected, (table, header)


def test_method_columns_name_the_stored_winners(stored_results, page):
    results = pd.read_csv(stored_results / "logreg/results.csv")
    # Stored as keys, shown by display name.
    assert set(results["winner"]) <= set(_NAMES)
    shown = [text for text, _ in page.column("logreg-results", "verdict")]
    assert shown == [_NAMES[key] for key in results["winner"]]
    table4 = [text for text, _ in page.column("table4", "optimizer")]
    assert table4 == [_NAMES[name] for name in LM_TABLE4["optimizer"]]


def test_summary_says_who_won_at_each_batch_size(stored_results, page):
    results = pd.read_csv(stored_results / "logreg/results.csv")
    for row in page.tables["summary-logreg"]:
        dataset = row[0][0]
        for (winner, _), size in zip(row[1:], sorted(results["batch_size"].unique())):
            stored = results[(results["dataset"] == dataset) & (results["batch_size"] == size)]
            assert winner == _NAMES[stored["winner"].item()]
        wins = int((results[results["dataset"] == dataset]["winner"] == "adagrad").sum())
        assert f"AdaGrad beat SGD at {wins} of 2 batch sizes" in page.section_text["summary"]
    # LM_TABLE4: AdaGrad's verdict is a win at 256 and a tie at 512; its held-out loss is
    # the lower at both.
    rows = {row[0][0]: [cell for cell, _ in row[1:]] for row in page.tables["summary-lm"]}
    assert page.headers["summary-lm"] == ["criterion", "batch 256", "batch 512"]
    assert rows == {
        "verdict, training loss (paired over seeds)": ["AdaGrad", "tie"],
        "lower held-out loss (mean)": ["AdaGrad"] * 2,
    }


def test_stand_in_numbers_are_labelled_where_they_appear(page):
    for section in ("table2", "figure1", "logreg", "lm", "predicted", "rotated"):
        assert "stand-in" in page.section_text[section], section
    assert "synthetic logistic data" in page.section_text["logreg"]
    for section in ("lm", "figure1"):
        text = page.section_text[section]
        assert "randomly initialised 'tiny' GPT-2" in text and "synthetic instructions" in text
    assert "Stand-ins —" in page.section_text["summary"]


def test_real_data_and_missing_targets(stored_results, tmp_path):
    """Relabel the logistic datasets as LIBSVM sets and drop two targets: no stand-in label on
    the logistic numbers, and the missing targets get a section that says how to run them."""
    root = tmp_path / "results"
    for target in ("logreg", "theory"):
        shutil.copytree(stored_results / target, root / target)
    sweep_path = root / "logreg/sweep/sweep.json"
    sweep = json.loads(sweep_path.read_text())
    for spec in sweep["config"]["problems"]:
        spec["source"] = "libsvm"
    sweep_path.write_text(json.dumps(sweep))
    theory_record = json.loads((root / "theory/reproduction.json").read_text())
    for problem in theory_record["problems"]:
        problem["stand_in"] = False
    (root / "theory/reproduction.json").write_text(json.dumps(theory_record))

    page = ReportPage(build_report(root).html.read_text())

    for section in ("table1", "table2", "logreg", "predicted"):
        assert page.sections[section] == "ok"
        assert "stand-in" not in page.section_text[section], section
    # The rotated-twin control needs a dataset whose source is 'rotated'.
    assert page.sections["rotated"] == "missing"
    assert "anisoada reproduce logreg --preset quick" in page.section_text["rotated"]
    for section, target in (("figure1", "smoothness"), ("lm", "lm")):
        assert page.sections[section] == "missing"
        assert f"Not run — run anisoada reproduce {target}" in page.section_text[section]
    assert (
        "Not run yet: anisoada reproduce lm, anisoada reproduce smoothness"
        in (page.section_text["summary"])
    )
    assert "Stand-ins —" not in page.section_text["summary"]
    assert "not run" in page.section_text["provenance"]


def test_a_report_of_only_the_theory_target(stored_results, tmp_path):
    shutil.copytree(stored_results / "theory", tmp_path / "theory")
    page = ReportPage(build_report(tmp_path).html.read_text())
    assert page.sections["table1"] == "ok"
    assert page.sections["predicted"] == "partial"  # curves, but no observed ratios
    for section in ("table2", "figure1", "logreg", "lm", "rotated"):
        assert page.sections[section] == "missing", section


def test_bad_results_directories_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="anisoada reproduce --out"):
        build_report(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no reproduction"):
        build_report(tmp_path / "empty")


def test_figures_are_embedded_pngs_of_the_report_drawn_files(stored_results, page):
    decoded = []
    for source in page.images:
        assert source.startswith("data:image/png;base64,")
        decoded.append(base64.b64decode(source.split(",", 1)[1]))
    assert all(data.startswith(b"\x89PNG\r\n\x1a\n") for data in decoded)
    # Every figure is drawn by the report, from stored tables, into report_figures/; the
    # targets' directories hold no figure at all.
    drawn = sorted((stored_results / "report_figures").glob("**/*.png"))
    assert {path.parent.name for path in drawn} >= {"logreg", "lm", "smoothness", "theory"}
    assert sorted(decoded) == sorted(path.read_bytes() for path in drawn)
    for target in ("logreg", "lm", "smoothness", "theory"):
        assert not list((stored_results / target).glob("**/*.png")), target


def test_rotated_twin_table_pairs_the_stored_ratios(stored_results, page):
    comparison = pd.read_csv(stored_results / "logreg/predicted_vs_observed.csv")
    by_dataset = {
        name: part.sort_values("batch_size") for name, part in comparison.groupby("dataset")
    }
    table = "rotated-synthetic"
    assert _values(page.column(table, "observed, original")) == list(
        by_dataset["synthetic"]["observed"]
    )
    assert _values(page.column(table, "observed, rotated twin")) == list(
        by_dataset["rotated"]["observed"]
    )
    assert _values(page.column(table, "predicted, rotated twin")) == list(
        by_dataset["rotated"]["predicted_box"]
    )


def test_rotated_twin_sgd_check_is_computed_from_the_stored_rows(stored_results, page):
    # The twin sees the original's mini-batches, so SGD's stored losses agree evaluation by
    # evaluation on the stable runs, and the report says so with the measured difference.
    import math

    rows = pd.read_parquet(stored_results / "logreg/sweep/results.parquet")
    sgd = rows[rows["optimizer_name"] == "sgd"]
    key = ["batch_size", "seed", "lr", "step"]
    original = sgd[sgd["dataset"] == "synthetic"].set_index(key)["train_loss"].sort_index()
    twin = sgd[sgd["dataset"] == "rotated"].set_index(key)["train_loss"].sort_index()
    assert list(original.index) == list(twin.index)
    run = ["batch_size", "seed", "lr"]
    worst = (
        pd.concat([original, twin], axis=1).fillna(math.inf).max(axis=1).groupby(level=run).max()
    )
    stable = worst.index[worst <= math.log(2) * (1 + 1e-9)]
    keep = original.index.droplevel("step").isin(stable)
    relative = ((twin[keep] - original[keep]) / original[keep]).abs().max()
    assert len(stable) > 0
    assert relative < 1e-10
    text = page.section_text["rotated"]
    assert "Check: SGD's behaviour is unchanged" in text
    assert f"over the {len(stable)} stable SGD runs ({int(keep.sum())} stored evaluations" in text
    assert f"is {relative:.2g}" in text


def test_prediction_finding_is_not_a_winner_tautology(stored_results, page):
    comparison = pd.read_csv(stored_results / "logreg/predicted_vs_observed.csv")
    # The box framing never predicts SGD: the report must not count that as agreement.
    assert (comparison["predicted_box"] <= 1).all()
    assert "agree" not in comparison
    text = page.section_text["summary"]
    assert "named the observed winner" not in text
    wins = int((comparison["observed"] < 1).sum())
    assert f"below SGD's at {wins} of {len(comparison)}" in text
    by = {name: part.set_index("batch_size") for name, part in comparison.groupby("dataset")}
    predicted_up = by["rotated"]["predicted_box"] > by["synthetic"]["predicted_box"]
    observed_up = by["rotated"]["observed"] > by["synthetic"]["observed"]
    assert (
        f"the predicted ratio rose at {int(predicted_up.sum())} of {len(predicted_up)} batch "
        f"sizes, the observed at {int(observed_up.sum())} "
        f"(both at {int((predicted_up & observed_up).sum())})"
    ) in text


def test_markdown_summary_links_existing_figures_and_holds_the_tables(stored_results):
    markdown = (stored_results / "report.md").read_text()
    for _, title in SECTIONS:
        assert f"## {title}" in markdown
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(links) >= 10
    assert all((stored_results / link).is_file() for link in links)
    results = pd.read_csv(stored_results / "logreg/results.csv")
    first = results.iloc[0]
    assert f"| {first['dataset']} | {first['batch_size']} | {first['sgd_loss']:.4g} |" in markdown
    assert "> Stand-in: synthetic logistic data" in markdown


def test_report_command(stored_results, tmp_path, capsys):
    assert main(["report", str(stored_results), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "out" / "report.html") in printed
    assert (tmp_path / "out" / "report.md").is_file()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "results directory" in capsys.readouterr().err


def test_report_never_writes_into_the_targets(stored_results, tmp_path):
    """Building twice into another directory leaves every stored target file unchanged."""
    before = {
        path: path.read_bytes()
        for target in ("logreg", "lm", "smoothness", "theory")
        for path in (stored_results / target).rglob("*")
        if path.is_file()
    }
    build_report(stored_results, out=tmp_path)
    after = {path: path.read_bytes() for path in before}
    assert before == after


def test_tuned_rates_at_the_grid_edge_are_flagged(stored_results, page):
    assert [text for text, _ in page.column("table4", "tuned lr at grid edge")] == [
        "yes" if edge else "no" for edge in LM_TABLE4["at_edge"]
    ]
    results = pd.read_csv(stored_results / "logreg/results.csv")
    flagged = [
        f"{row['dataset']} batch {row['batch_size']} ({name})"
        for row in results.to_dict("records")
        for key, name in _NAMES.items()
        if key != "tie" and row[f"{key}_at_edge"]
    ]
    text = page.section_text["logreg"]
    if flagged:
        assert f"may be under-tuned there: {', '.join(flagged)}." in text
    else:
        assert "under-tuned" not in text


def test_the_section_drawn_in_a_second_process_is_the_one_drawn_here(stored_results, tmp_path):
    # With a second core and a stored logistic sweep, that section is built in a spawned process
    # while this one builds the others; the page and every figure are the same byte for byte.
    import anisoada.report.sections as sections
    from anisoada.report._results import ResultsDirectory

    assert sections._draw_aside(ResultsDirectory(stored_results)) == ((os.cpu_count() or 1) > 1)
    aside = build_report(stored_results, out=tmp_path / "aside")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sections, "_draw_aside", lambda results: False)
        here = build_report(stored_results, out=tmp_path / "here")

    def without_build_time(path):
        return re.sub(r"built [^·<\n]*", "", path.read_text())

    assert without_build_time(aside.markdown) == without_build_time(here.markdown)
    assert without_build_time(aside.html) == without_build_time(here.html)
    drawn = sorted(p.relative_to(tmp_path / "aside") for p in (tmp_path / "aside").rglob("*.png"))
    assert any(path.parts[1] == "logreg" for path in drawn)
    for path in drawn:
        assert (tmp_path / "aside" / path).read_bytes() == (tmp_path / "here" / path).read_bytes()
