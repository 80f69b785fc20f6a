"""``anisoada report``: build the HTML report and Markdown summary of a results directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from anisoada.cli._common import add_command, output_directory

__all__ = ["register"]

_HELP = "build report.html (self-contained) and report.md from stored results"
_DESCRIPTION = """\
Read the results of `anisoada reproduce --out RESULTS_DIR`, or of one sweep (`anisoada sweep
--out RESULTS_DIR`, a user's own included), and write a self-contained HTML report (figures
embedded, tables, provenance) and a Markdown summary. Never trains: targets that have not run
get a section saying how to run them."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` subcommand."""
    parser = add_command(subparsers, "report", _run, _HELP, _DESCRIPTION)
    parser.add_argument("results_dir", type=output_directory, metavar="RESULTS_DIR")
    parser.add_argument(
        "--out",
        type=output_directory,
        default=None,
        help="directory for the report (default RESULTS_DIR)",
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


def _run(args: argparse.Namespace) -> int:
    from anisoada.report import build_report

    measurements = {}
    for item in args.measure:
        problem, separator, stem = item.partition("=")
        if not separator or not problem or not stem:
            raise ValueError(f"--measure takes PROBLEM=STEM; got {item!r}")
        if problem in measurements:
            raise ValueError(f"--measure gives {problem!r} twice; give one STEM per problem")
        measurements[problem] = stem
    for problem, stem in measurements.items():
        _check_measurement(problem, Path(stem))
    paths = build_report(args.results_dir, out=args.out, measurements=measurements)
    print(f"report: {paths.html}")
    print(f"summary: {paths.markdown}")
    return 0


def _check_measurement(problem: str, stem: Path) -> None:
    """A ``--measure`` STEM must be a readable measurement summary (``STEM.npz`` with L and
    sigma): the report would otherwise leave the prediction out without a word."""
    from anisoada._io import load_npz

    npz = stem if stem.suffix == ".npz" else stem.with_name(stem.name + ".npz")
    advice = "write it with `anisoada measure --out STEM`"
    arrays = load_npz(npz, what=f"the measurement summary of {problem}", advice=advice)
    missing = [name for name in ("L", "sigma") if name not in arrays]
    if missing:
        raise ValueError(f"--measure {problem}={stem}: {npz} has no array {missing[0]!r}; {advice}")
