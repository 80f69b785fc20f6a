"""The session's stored results: the real targets at tiny settings plus hand-written LM outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import TINY_SMOOTHNESS, TINY_SWEEP, write_lm_results

from anisoada.report import build_report
from anisoada.reproduce.logreg import run_logreg
from anisoada.reproduce.smoothness import run_smoothness
from anisoada.reproduce.theory import run_theory


@pytest.fixture(scope="session")
def stored_results(tmp_path_factory) -> Path:
    """A results directory with all four targets (tiny), and its report built."""
    root = tmp_path_factory.mktemp("results")
    run_logreg("quick", root / "logreg", config=TINY_SWEEP, progress=False)
    write_lm_results(root / "lm")
    run_smoothness("quick", root / "smoothness", settings=TINY_SMOOTHNESS, progress=False)
    run_theory("quick", root / "theory", progress=False)
    build_report(root)
    return root
