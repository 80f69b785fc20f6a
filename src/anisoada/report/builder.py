"""``build_report``: one HTML page and one Markdown summary from a results directory."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from anisoada._io import atomic_open
from anisoada.report._checks import check_results_directory
from anisoada.report._render import render_html, render_markdown
from anisoada.report._results import ResultsDirectory
from anisoada.report.sections import build_sections
from anisoada.report.sweep_report import is_sweep_directory, sweep_sections, sweep_title

__all__ = ["ReportPaths", "build_report"]

_TITLE = "AdaGrad under Anisotropic Smoothness — reproduction report"
_TARGETS = ("logreg", "lm", "smoothness", "theory", "prediction")


class ReportPaths(NamedTuple):
    """Where :func:`build_report` wrote the report."""

    html: Path
    markdown: Path


def build_report(
    results_dir: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    measurements: Mapping[str, str | os.PathLike[str]] | None = None,
) -> ReportPaths:
    """Build the report of a results directory from its stored results only (never trains).

    Reads ``RESULTS_DIR/<target>/`` for the targets ``logreg``, ``lm``, ``smoothness`` and
    ``theory`` written by ``anisoada reproduce`` and writes ``report.html`` — self-contained:
    figures embedded as base64 PNG, inline stylesheet — and ``report.md`` (figures linked by
    relative path). Sections follow the paper: Table 1, Table 2, Figure 1, the logistic
    batch-size results, Figure 2 and Table 4, predicted vs observed advantage, the rotated-twin
    control and provenance, after a summary of who won at each batch size computed from the
    stored tables. A target that has not run gives a section saying how to run it; numbers from
    a stand-in (synthetic data, a random-init or tiny GPT-2) are labelled where they appear.

    A plain sweep directory (the ``--out`` of ``anisoada sweep``, holding ``sweep.json``) gets
    the sweep report instead (:mod:`anisoada.report.sweep_report`): its answer in plain words,
    verdicts, tuned losses with their spread, loss curves, learning-rate sensitivity, predicted
    vs observed when a measurement summary lies beside it, and provenance.

    Args:
        results_dir: The ``--out`` directory of ``anisoada reproduce`` or of ``anisoada sweep``.
        out: Directory for the report files; default ``results_dir``. Figures the report draws
            itself (the rotated-twin comparison) go to ``out/report_figures/``.
        measurements: For a sweep directory, problem → measurement-summary stem (see
            :func:`anisoada.report.sweep_report.sweep_sections`).

    Returns:
        :class:`ReportPaths` ``(html, markdown)``.

    Raises:
        FileNotFoundError: ``results_dir`` is not a directory.
        ValueError: ``results_dir`` holds no target output at all.

    Example:
        >>> paths = build_report("results")  # doctest: +SKIP
        >>> paths.html.name, paths.markdown.name  # doctest: +SKIP
        ('report.html', 'report.md')
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"results directory {root} not found; create it with `anisoada reproduce --out {root}`"
        )
    out_dir = Path(out) if out is not None else root
    if is_sweep_directory(root):
        return _sweep_report(root, out_dir, measurements or {})
    if measurements:
        raise ValueError(
            f"--measure applies to a sweep directory; {root} is a reproduction directory (its "
            "measurements are its own)"
        )
    check_results_directory(root, _TARGETS)
    results = ResultsDirectory(root)
    if not any(results.target(name).present for name in _TARGETS):
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise ValueError(
            f"results_dir {root} holds no reproduction (no <target>/reproduction.json for any of "
            f"{', '.join(_TARGETS)}; found directories {found}); run "
            f"`anisoada reproduce --out {root}` first"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = build_sections(results, out_dir / "report_figures")
    built = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    presets = sorted(
        {results.target(n).present_record["preset"] for n in _TARGETS if results.target(n).present}
    )
    subtitle = [
        f"Liu, Pan & Zhang, ICLR 2025 · results from `{root.resolve()}` · "
        f"preset {', '.join(presets)} · built {built}",
    ]
    html_path = out_dir / "report.html"
    markdown_path = out_dir / "report.md"
    _write(html_path, render_html(sections, title=_TITLE, subtitle=subtitle))
    _write(markdown_path, render_markdown(sections, title=_TITLE, subtitle=subtitle, base=out_dir))
    return ReportPaths(html_path, markdown_path)


def _sweep_report(
    root: Path, out_dir: Path, measurements: Mapping[str, str | os.PathLike[str]]
) -> ReportPaths:
    sections = sweep_sections(root, root, out_dir / "report_figures", measurements=measurements)
    out_dir.mkdir(parents=True, exist_ok=True)
    built = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    title = sweep_title(root)
    subtitle = [f"sweep results from `{root.resolve()}` · built {built}"]
    html_path = out_dir / "report.html"
    markdown_path = out_dir / "report.md"
    _write(html_path, render_html(sections, title=title, subtitle=subtitle))
    _write(markdown_path, render_markdown(sections, title=title, subtitle=subtitle, base=out_dir))
    return ReportPaths(html_path, markdown_path)


def _write(path: Path, text: str) -> None:
    """Atomic write; the file gets the usual permissions (a report is meant to be shared)."""
    with atomic_open(path) as handle:
        handle.write(text)
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)
