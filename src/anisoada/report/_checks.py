"""Input checks of a results directory before a report reads it: damage named, never a codec error.

The report reads what the targets stored; a file that exists but cannot be read (a truncated
or garbage ``reproduction.json``, a binary or mis-encoded CSV table) is an error that names the
file and how to rewrite it, rather than a target silently reported as "not run" or a decoding
error without a path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

__all__ = ["check_results_directory"]


def check_results_directory(root: Path, targets: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first stored file of ``targets`` that cannot be read."""
    for target in targets:
        directory = root / target
        if not directory.is_dir():
            continue
        rerun = f"re-run `anisoada reproduce {target} --out {root}` to rewrite it"
        record = directory / "reproduction.json"
        if record.exists():
            try:
                document = json.loads(record.read_bytes().decode("utf-8"))
            except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
                reason = " ".join(str(error).split())[:100]
                raise ValueError(f"{record} is damaged (not JSON: {reason}); {rerun}") from None
            if not isinstance(document, dict):
                raise ValueError(f"{record} is damaged (not a JSON object); {rerun}")
        for table in sorted(directory.glob("*.csv")):
            try:
                pd.read_csv(table, nrows=5)
            except pd.errors.EmptyDataError:
                continue  # an empty table is read as absent
            except (OSError, UnicodeDecodeError, ValueError) as error:
                reason = " ".join(str(error).split())[:100]
                raise ValueError(
                    f"{table} is not a readable CSV table ({reason}); {rerun}"
                ) from None
