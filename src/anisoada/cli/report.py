"""``anisoada report``: build the HTML report and Markdown summary of a results directory."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="build report.html (self-contained) and report.md from stored results",
        description=(
            "Read the results of `anisoada reproduce --out RESULTS_DIR`, or of one sweep "
            "(`anisoada sweep --out RESULTS_DIR`, a user's own included), and write a "
            "self-contained HTML report (figures embedded, tables, provenance) and a Markdown "
            "summary. Never trains: targets that have not run get a section saying how to run "
            "them."
        ),
    )
    parser.add_argument("results_dir", type=Path, metavar="RESULTS_DIR")
    parser.add_argument(
        "--out", type=Path, default=None, help="directory for the report (default RESULTS_DIR)"
    )
    parser.add_argument(
        "--measure",
        action="append",
        default=[],
        metavar="PROBLEM=STEM",
        help="for a sweep: the measurement summary (`anisoada measure --out STEM`) of one of its "
        "problems, for predicted vs observed (repeatable; default: RESULTS_DIR/measure/PROBLEM "
        "where present)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from anisoada.report import build_report

    measurements = {}
    for item in args.measure:
        problem, separator, stem = item.partition("=")
        if not separator or not problem or not stem:
            raise ValueError(f"--measure takes PROBLEM=STEM; got {item!r}")
        measurements[problem] = stem
    paths = build_report(args.results_dir, out=args.out, measurements=measurements)
    print(f"report: {paths.html}")
    print(f"summary: {paths.markdown}")
    return 0
