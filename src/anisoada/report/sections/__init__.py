"""The report's sections, in the order of the paper, each built from stored results only.

Every builder takes the :class:`~anisoada.report._results.ResultsDirectory` and returns a
:class:`~anisoada.report._model.Section`; a target that has not run gives a section that says
how to run it. Sentences that state results are computed from the stored tables. One module per
part of the paper: :mod:`.summary`, :mod:`.theory` (Table 1), :mod:`.logreg` (Table 2, the
batch-size results, predicted vs observed), :mod:`.lm` (Figures 1 and 2, Table 4),
:mod:`.rotated` (the control), :mod:`.prediction` (the validation of ``anisoada advise``) and
:mod:`.provenance`.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

from anisoada.report._model import Section
from anisoada.report._results import ResultsDirectory
from anisoada.report.sections import (
    lm,
    logreg,
    prediction,
    provenance,
    rotated,
    summary,
    theory,
)
from anisoada.report.sections._common import SECTIONS

__all__ = ["SECTIONS", "build_sections"]


def build_sections(results: ResultsDirectory, figure_dir: Path) -> list[Section]:
    """Every section in :data:`SECTIONS` order; ``figure_dir`` receives the report's figures."""
    builders: dict[str, Callable[[], Section]] = {
        "summary": lambda: summary.summary_section(results),
        "table1": lambda: theory.table1_section(results),
        "table2": lambda: logreg.table2_section(results),
        "figure1": lambda: lm.figure1_section(results, figure_dir),
        "logreg": lambda: logreg.logreg_section(results, figure_dir),
        "lm": lambda: lm.lm_section(results, figure_dir),
        "predicted": lambda: logreg.predicted_section(results, figure_dir),
        "rotated": lambda: rotated.rotated_section(results, figure_dir),
        "prediction": lambda: prediction.prediction_section(results, figure_dir),
        "provenance": lambda: provenance.provenance_section(results),
    }
    order = [section_id for section_id, _ in SECTIONS]
    if not _draw_aside(results):
        return [builders[section_id]() for section_id in order]
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as aside:
        drawn_aside = aside.submit(logreg.logreg_section, results, figure_dir)
        built = {name: builders[name]() for name in order if name != "logreg"}
        built["logreg"] = drawn_aside.result()
    return [built[section_id] for section_id in order]


def _draw_aside(results: ResultsDirectory) -> bool:
    """Whether the logistic section is built in a second process while this one builds the
    others: its sweep figures are about half of the report's drawing (4.7 s of 8.8 s of CPU for
    the quick preset), so where there is a second core and that sweep is stored, the report
    takes the longer of the two halves instead of their sum (a spawned process costs ~0.7 s of
    CPU to start). The section and its figures are the same wherever they are drawn."""
    sweep_rows = results.logreg.directory / "sweep" / "results.parquet"
    return (os.cpu_count() or 1) > 1 and sweep_rows.is_file()
