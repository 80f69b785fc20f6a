"""Read-only access to a results directory written by ``anisoada reproduce``.

Layout: ``RESULTS_DIR/<target>/reproduction.json`` plus the target's tables and figures. Nothing
here computes a result; it finds stored files and says what stands in for the paper's setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

#: Dataset sources of the logistic experiments that are synthetic stand-ins.
_SYNTHETIC_SOURCES = ("synthetic", "rotated")


@dataclass(frozen=True)
class TargetResults:
    """The stored outputs of one reproduction target (``present`` when it wrote its record)."""

    name: str
    directory: Path

    @cached_property
    def record(self) -> dict[str, Any] | None:
        """``reproduction.json``, or None when the target has not (completely) run."""
        path = self.directory / "reproduction.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None

    @property
    def present(self) -> bool:
        return self.record is not None

    @property
    def present_record(self) -> dict[str, Any]:
        """:attr:`record` of a target known to be :attr:`present` (a LookupError otherwise)."""
        record = self.record
        if record is None:
            raise LookupError(f"the {self.name} target has no stored reproduction.json")
        return record

    def file(self, relative: str) -> Path | None:
        """A stored file's path, or None when it does not exist."""
        path = self.directory / relative
        return path if path.is_file() else None

    def csv(self, relative: str) -> pd.DataFrame | None:
        """A stored CSV table, or None when absent or empty."""
        path = self.file(relative)
        if path is None:
            return None
        try:
            table = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            return None
        return table if len(table) else None

    def json(self, relative: str) -> dict[str, Any] | None:
        """A stored JSON document, or None when absent."""
        path = self.file(relative)
        return json.loads(path.read_text()) if path is not None else None


def _target(name: str) -> cached_property[TargetResults]:
    """``ResultsDirectory.<name>``: that target's :class:`TargetResults`, made on first use."""

    def find(results: ResultsDirectory) -> TargetResults:
        return results.target(name)

    return cached_property(find)


@dataclass(frozen=True)
class ResultsDirectory:
    """All targets under one results directory."""

    root: Path

    def target(self, name: str) -> TargetResults:
        return TargetResults(name, self.root / name)

    # The targets the sections read, each found once (its files are then read once).
    logreg = _target("logreg")
    lm = _target("lm")
    smoothness = _target("smoothness")
    theory = _target("theory")

    def relative(self, path: Path) -> str:
        """``path`` relative to the results directory (for "from <file>" labels)."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @cached_property
    def logreg_sources(self) -> dict[str, str]:
        """Dataset name → source (``synthetic``, ``rotated``, ``libsvm``) of the logistic sweep."""
        sweep = self.logreg.json("sweep/sweep.json")
        if not sweep:
            return {}
        return {
            spec["name"]: spec.get("source", "libsvm")
            for spec in sweep["config"].get("problems", [])
            if spec.get("kind", "logistic") == "logistic"
        }

    def logreg_stand_in(self, dataset: str) -> str | None:
        """What stands in for real data in a logistic dataset (None for a real LIBSVM set)."""
        source = self.logreg_sources.get(dataset)
        if source == "synthetic":
            return "synthetic sparse logistic data, not a LIBSVM dataset"
        if source == "rotated":
            return "randomly rotated twin of the synthetic logistic data (the control)"
        return None

    def logreg_stand_in_all(self, datasets: list[str]) -> str | None:
        """One stand-in label for a table over several datasets."""
        flagged = [name for name in datasets if self.logreg_stand_in(name)]
        if not flagged:
            return None
        return f"synthetic logistic data ({', '.join(flagged)}), not LIBSVM datasets"

    @cached_property
    def lm_stand_ins(self) -> list[str]:
        """How the ``lm`` run differs from the paper's (pretrained GPT-2 124M on Alpaca), as the
        target recorded it."""
        stand_in = (self.lm.record or {}).get("stand_in")
        return [part for part in stand_in.split("; ") if part] if stand_in else []

    @cached_property
    def smoothness_stand_ins(self) -> list[str]:
        return list((self.smoothness.record or {}).get("stand_in", []))
