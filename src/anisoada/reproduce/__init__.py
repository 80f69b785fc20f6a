"""Reproduction targets of ``anisoada reproduce``: the paper's evidence, end to end.

A target is one experiment of the paper, runnable at a ``quick`` preset (embedded data, CPU,
minutes) and a ``paper`` preset (the paper's data and sizes). Each target lives in its own
module that exposes a module-level ``REPRODUCTION`` (a :class:`Reproduction`); the modules are
listed in :data:`TARGET_MODULES`, so adding a target is one line there and no edit of anyone
else's code. ``anisoada reproduce`` with no target (or ``all``) runs every registered target in
that order, each into ``OUT/<target>/`` (but for targets marked ``in_all=False``, run by name).

Targets run sweeps and measurements and write tables (CSV/parquet) and records (JSON) through
the store, with the names of :mod:`anisoada.schema`; they draw no figures and format no
reports — :mod:`anisoada.report` reads what they stored.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from anisoada._io import atomic_open, write_json
from anisoada.experiments import provenance
from anisoada.schema import files as file_names

__all__ = [
    "ALL_PRESETS",
    "PRESETS",
    "TARGET_MODULES",
    "Reproduction",
    "ReproductionOutput",
    "finish_target",
    "reproductions",
    "write_csv",
    "write_record",
]

#: The presets every target offers.
PRESETS = ("quick", "paper")

#: Every preset some target offers (the command line's choices).
ALL_PRESETS = ("quick", "heldout", "paper")

#: Modules exposing ``REPRODUCTION``, in the order ``reproduce all`` runs them.
TARGET_MODULES: tuple[str, ...] = (
    "anisoada.reproduce.logreg",
    "anisoada.reproduce.lm",
    "anisoada.reproduce.smoothness",
    "anisoada.reproduce.theory",
    "anisoada.reproduce.prediction",
)


@dataclass(frozen=True)
class ReproductionOutput:
    """What a reproduction produced.

    Attributes:
        target: The target's name.
        preset: The preset it ran.
        out: Its output directory.
        wall_time: Seconds it took (reused stored results make this small).
        files: Named output files (tables, records) → paths.
        summary: One or two plain sentences to print (what ran, where the tables are).
        tables: Tables worth printing, title → stored CSV (the CLI formats them).
    """

    target: str
    preset: str
    out: Path
    wall_time: float
    files: Mapping[str, Path] = field(default_factory=dict)
    summary: str = ""
    tables: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Reproduction:
    """A reproduction target.

    Attributes:
        name: Command-line name (``anisoada reproduce NAME``).
        description: One line for ``--help``.
        run: ``run(preset, out, *, jobs, progress) -> ReproductionOutput``; must reuse results
            already stored under ``out``.
        in_all: Whether ``reproduce`` with no target (or ``all``) runs it; a validation target
            that re-runs every other experiment many times over (``prediction``) is run by name.
        presets: The presets it offers (every target offers :data:`PRESETS`; ``prediction``
            adds ``heldout``, the data its rule was not designed on).
    """

    name: str
    description: str
    run: Callable[..., ReproductionOutput]
    in_all: bool = True
    presets: tuple[str, ...] = PRESETS


def reproductions() -> dict[str, Reproduction]:
    """Every registered target by name, in :data:`TARGET_MODULES` order."""
    targets: dict[str, Reproduction] = {}
    for module_name in TARGET_MODULES:
        target = importlib.import_module(module_name).REPRODUCTION
        if target.name in targets or target.name == "all":
            raise ValueError(f"reproduction target name {target.name!r} is taken")
        targets[target.name] = target
    return targets


def run_reproductions(
    names: list[str],
    preset: str,
    out: str | os.PathLike[str],
    *,
    jobs: int = 1,
    progress: bool = True,
) -> list[ReproductionOutput]:
    """Run the named targets (``["all"]`` or ``[]``: every one) into ``out/<target>``."""
    targets = reproductions()
    every = [name for name, target in targets.items() if target.in_all]
    selected = every if not names or names == ["all"] else names
    unknown = [name for name in selected if name not in targets]
    if unknown:
        raise ValueError(f"unknown reproduction target(s) {unknown}; known: {['all', *targets]}")
    for name in selected:
        if preset not in targets[name].presets:
            raise ValueError(
                f"target {name!r} has no preset {preset!r}; use one of {targets[name].presets}"
            )
    return [
        targets[name].run(preset, Path(out) / name, jobs=jobs, progress=progress)
        for name in selected
    ]


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    """A target's table as CSV, written atomically; returns ``path``."""
    with atomic_open(path) as handle:
        table.to_csv(handle, index=False)
    return path


def write_record(
    out: Path,
    target: str,
    preset: str,
    started: float,
    written: Mapping[str, Path],
    **fields: Any,
) -> float:
    """Write the target's ``reproduction.json`` (its completion mark) and return its wall time.

    The record holds the target, the preset, the wall time since ``started``
    (``time.perf_counter()``), the files written (relative to ``out``), the target's own
    ``fields`` and the provenance (versions, machine, git revision).
    """
    wall_time = time.perf_counter() - started
    write_json(
        out / file_names.REPRODUCTION_JSON,
        {
            "target": target,
            "preset": preset,
            "wall_time": wall_time,
            **fields,
            "files": {name: str(path.relative_to(out)) for name, path in written.items()},
            "provenance": provenance(),
        },
    )
    return wall_time


def finish_target(
    out: Path,
    target: str,
    preset: str,
    started: float,
    written: Mapping[str, Path],
    *,
    summary: str,
    tables: Mapping[str, Path],
    **fields: Any,
) -> ReproductionOutput:
    """A target's last step: its record (:func:`write_record`, with ``fields``) and its output,
    the files ``written``, the ``summary`` to print and the ``tables`` worth printing."""
    wall_time = write_record(out, target, preset, started, written, **fields)
    return ReproductionOutput(target, preset, out, wall_time, written, summary, tables)
