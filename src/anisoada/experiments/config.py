"""Sweep configuration from a TOML file: parsed and validated once, into a frozen SweepConfig.

Example file (every top-level key but ``datasets``, ``optimizers`` and ``batch_sizes`` is
optional)::

    name = "batch-size"
    batch_sizes = [8, 64, 512]
    seeds = 2                 # seed indices 0, 1
    base_seed = 0             # every run's seed derives from it
    evaluations = 20          # evaluation points per run
    vectorize = true          # all learning rates of a unit in one pass
    divergence_factor = 100.0

    [budget]
    epochs = 5                # or: samples = 200000 (the same for every batch size)

    [lr_grid]
    low = 1e-3
    high = 10
    per_decade = 2
    max_extensions = 2        # decades added when the best lr is at an edge

    [[datasets]]
    name = "a9a"              # source = "libsvm" by default
    [[datasets]]
    name = "toy"
    source = "synthetic"
    n = 4000
    d = 200
    [[datasets]]
    name = "toy-rotated"
    source = "rotated"
    n = 4000
    d = 200
    stream = "toy"            # same mini-batches as "toy" (default: the dataset's name)

    [[optimizers]]
    name = "adagrad"
    [[optimizers]]
    name = "adagrad"
    label = "adagrad-optax"
    options = { eps_placement = "inside", initial_accumulator_value = 0.1 }
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from typing import Any

from anisoada.experiments.datasets import DatasetSpec
from anisoada.experiments.sweep import LRGrid, OptimizerSpec, SweepConfig

__all__ = ["load_sweep_config", "sweep_config_from_dict"]

_TOP_LEVEL = {
    "name",
    "batch_sizes",
    "seeds",
    "base_seed",
    "evaluations",
    "vectorize",
    "divergence_factor",
    "budget",
    "lr_grid",
    "datasets",
    "optimizers",
}


def _reject_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(known)}")


def sweep_config_from_dict(payload: Mapping[str, Any], *, name: str = "sweep") -> SweepConfig:
    """Build a :class:`SweepConfig` from a parsed TOML document (see the module docstring).

    Example:
        >>> config = sweep_config_from_dict({
        ...     "batch_sizes": [8], "budget": {"samples": 100},
        ...     "datasets": [{"name": "toy", "source": "synthetic", "n": 100}],
        ...     "optimizers": [{"name": "sgd"}]})
        >>> config.datasets[0].option("n"), config.budget_samples
        (100, 100)
    """
    _reject_unknown(payload, _TOP_LEVEL, "the sweep file")
    budget = dict(payload.get("budget", {}))
    _reject_unknown(budget, {"samples", "epochs"}, "[budget]")
    grid = dict(payload.get("lr_grid", {}))
    _reject_unknown(grid, {"low", "high", "per_decade", "max_extensions"}, "[lr_grid]")
    datasets = []
    for entry in payload.get("datasets", []):
        entry = dict(entry)
        if "name" not in entry:
            raise ValueError(f"every [[datasets]] entry needs a name; got {entry}")
        dataset_name = entry.pop("name")
        source = entry.pop("source", "libsvm")
        stream = entry.pop("stream", "")
        datasets.append(DatasetSpec.create(dataset_name, source, entry, stream=stream))
    optimizers = []
    for entry in payload.get("optimizers", []):
        _reject_unknown(entry, {"name", "label", "options"}, "an [[optimizers]] entry")
        if "name" not in entry:
            raise ValueError(f"every [[optimizers]] entry needs a name; got {dict(entry)}")
        optimizers.append(
            OptimizerSpec.create(entry["name"], entry.get("label", ""), entry.get("options"))
        )
    return SweepConfig(
        name=str(payload.get("name", name)),
        datasets=tuple(datasets),
        optimizers=tuple(optimizers),
        batch_sizes=tuple(payload.get("batch_sizes", ())),
        lr_grid=LRGrid(**grid),
        seeds=payload.get("seeds", 1),
        base_seed=payload.get("base_seed", 0),
        budget_samples=budget.get("samples"),
        budget_epochs=budget.get("epochs"),
        evaluations=payload.get("evaluations", 20),
        vectorize=bool(payload.get("vectorize", True)),
        divergence_factor=payload.get("divergence_factor", 100.0),
    )


def load_sweep_config(path: str | os.PathLike[str]) -> SweepConfig:
    """Read and validate a sweep TOML file (its stem is the default sweep name)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sweep config {path} does not exist")
    with open(path, "rb") as handle:
        try:
            payload = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path} is not valid TOML: {error}") from error
    return sweep_config_from_dict(payload, name=os.path.splitext(os.path.basename(path))[0])
