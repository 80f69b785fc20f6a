"""Sweep files: TOML parsed and validated once into a frozen :class:`SweepConfig`, and written back.

Every sweep writes its resolved configuration as ``sweep.toml``; ``anisoada sweep sweep.toml``
accepts it back and reproduces the same runs. Example file (every top-level key but the
problems, ``optimizers``, ``batch_sizes`` and ``[budget]`` is optional)::

    name = "batch-size"
    batch_sizes = [8, 64, 512]
    seeds = 3                 # seed indices 0, 1, 2
    base_seed = 0             # every run's seed derives from it
    evaluations = 20          # evaluation points per run
    vectorize = true          # all learning rates of a run in one pass (where lanes work)
    cells = false             # all optimizers and seeds of a batch size in one pass too
    # tail_evaluations = 4    # compute only the last points of the cadence (default: all)
    divergence_factor = 100.0 # or "none": only NaN/inf count as divergence
    tuning_seeds = 3          # seeds that choose the learning rates (default: all)
    baseline = "sgd"          # the optimizer label the verdicts compare with (default: sgd)
    executor = "local"        # where runs execute: "local" or "ray" (anisoada[ray])
    # ray_address = "auto"    # the ray executor's cluster, or HOST:PORT (default: local Ray)

    [selection]
    window = 3                # evaluation points averaged at the end of each run
    tolerance = 0.1           # a larger relative rise between two of them: unstable

    [budget]
    epochs = 5                # or: samples = 200000, or: steps = 1000

    [lr_grid]
    low = 1e-3
    high = 10
    per_decade = 2
    max_extensions = 2        # extensions when the best lr is at an edge
    extension_points = 2      # rates added per extension (default: per_decade, one decade)

    [[datasets]]              # logistic-regression problems
    name = "a9a"              # source = "libsvm" by default
    [[datasets]]
    name = "toy"
    source = "synthetic"
    n = 4000
    d = 200

    [[problems]]              # any kind: "logistic", "quadratic", "lm"
    kind = "lm"
    model = "tiny"
    micro_batch_size = 64
    data = { source = "synthetic", n_train = 4096, vocabulary = "compact" }

    [[optimizers]]
    name = "adagrad"
    [[optimizers]]
    name = "adagrad"
    label = "adagrad-optax"
    options = { eps_placement = "inside", initial_accumulator_value = 0.1 }
    lr_grid = { low = 1e-4, high = 1e-1, per_decade = 2 }
"""

from __future__ import annotations

import datetime
import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anisoada._io import atomic_open
from anisoada.experiments.grid import LRGrid
from anisoada.experiments.optimizers import OptimizerSpec
from anisoada.experiments.runs import PROBLEM_KINDS, DatasetSpec, ProblemSpec
from anisoada.experiments.selection import SelectionRule
from anisoada.experiments.sweep import SweepConfig
from anisoada.train import Budget

__all__ = ["dump_sweep_config", "load_sweep_config", "sweep_config_from_dict", "sweep_config_toml"]

#: Top-level keys that become the SweepConfig field of the same name as they are.
_PLAIN_KEYS = (
    "seeds",
    "base_seed",
    "evaluations",
    "vectorize",
    "cells",
    "tail_evaluations",
    "tuning_seeds",
    "baseline",
    "executor",
    "ray_address",
)
_TOP_LEVEL = {
    "name",
    "batch_sizes",
    "divergence_factor",
    "budget",
    "lr_grid",
    "datasets",
    "problems",
    "optimizers",
    "selection",
    *_PLAIN_KEYS,
}
#: TOML has no null: these keys take the string "none" for "no value".
_NONE = "none"


def _reject_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known: {sorted(known)}")


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table; got {value!r}")
    return dict(value)


def _tables(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{where} must be an array of tables ([[{where}]]); got {value!r}")
    return [dict(item) for item in value]


def _int_list(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where} must be a non-empty list of positive integers; got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ValueError(f"{where} must hold positive integers; got {item!r}")
    return tuple(value)


def _budget(value: Any) -> Budget:
    table = _table(value, "[budget]")
    _reject_unknown(table, {"samples", "epochs", "steps"}, "[budget]")
    try:
        return Budget(**table)
    except ValueError as error:
        raise ValueError(f"[budget]: {error}") from None


def _problem(entry: dict[str, Any], where: str) -> ProblemSpec:
    kind = entry.pop("kind", DatasetSpec.kind)
    if kind not in PROBLEM_KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r}; use one of {sorted(PROBLEM_KINDS)}")
    spec: ProblemSpec = PROBLEM_KINDS[kind].from_table(entry, where)
    return spec


def _optimizer(entry: dict[str, Any], where: str) -> OptimizerSpec:
    _reject_unknown(entry, {"name", "label", "options", "lr_grid"}, where)
    if "name" not in entry:
        raise ValueError(f"{where} needs a name; got {entry}")
    grid = entry.get("lr_grid")
    try:
        return OptimizerSpec.create(
            entry["name"],
            entry.get("label", ""),
            entry.get("options"),
            lr_grid=None if grid is None else LRGrid.from_dict(grid, f"{where}.lr_grid"),
        )
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _lm_none(table: dict[str, Any]) -> None:
    """``n_train = "none"`` (every record not held out) in an LM problem's data table."""
    data = table.get("data")
    if isinstance(data, dict) and data.get("n_train") == _NONE:
        data["n_train"] = None


def sweep_config_from_dict(payload: Mapping[str, Any], *, name: str = "sweep") -> SweepConfig:
    """Build a :class:`SweepConfig` from a parsed TOML document (see the module docstring).

    Example:
        >>> config = sweep_config_from_dict({
        ...     "batch_sizes": [8], "budget": {"samples": 100},
        ...     "datasets": [{"name": "toy", "source": "synthetic", "n": 100}],
        ...     "optimizers": [{"name": "sgd"}]})
        >>> config.problems[0].option("n"), config.budget.samples
        (100, 100)
    """
    if not isinstance(payload, Mapping):
        raise TypeError(
            f"a sweep is a mapping of its keys (a parsed TOML document); got {payload!r}"
        )
    _reject_unknown(payload, _TOP_LEVEL, "the sweep file")
    problems: list[ProblemSpec] = []
    for index, entry in enumerate(_tables(payload.get("datasets", []), "datasets")):
        entry.setdefault("kind", DatasetSpec.kind)
        if entry["kind"] != DatasetSpec.kind:
            raise ValueError(f"datasets[{index}]: [[datasets]] are logistic; use [[problems]]")
        problems.append(_problem(entry, f"datasets[{index}]"))
    for index, entry in enumerate(_tables(payload.get("problems", []), "problems")):
        _lm_none(entry)
        problems.append(_problem(entry, f"problems[{index}]"))
    optimizers = [
        _optimizer(entry, f"optimizers[{index}]")
        for index, entry in enumerate(_tables(payload.get("optimizers", []), "optimizers"))
    ]
    if "budget" not in payload:
        raise ValueError("the sweep file needs a [budget] table: samples, epochs or steps")
    divergence = payload.get("divergence_factor", 100.0)
    fields: dict[str, Any] = {
        "name": payload.get("name", name),
        "problems": tuple(problems),
        "optimizers": tuple(optimizers),
        "batch_sizes": _int_list(payload.get("batch_sizes"), "batch_sizes"),
        "budget": _budget(payload["budget"]),
        "lr_grid": LRGrid.from_dict(payload.get("lr_grid", {})),
        "divergence_factor": None if divergence == _NONE else divergence,
    }
    for key in _PLAIN_KEYS:
        if key in payload:
            fields[key] = payload[key]
    if "selection" in payload:
        table = _table(payload["selection"], "[selection]")
        _reject_unknown(table, {"window", "tolerance"}, "[selection]")
        try:
            fields["selection"] = SelectionRule(**table)
        except ValueError as error:
            raise ValueError(f"[selection]: {error}") from None
    return SweepConfig(**fields)


def load_sweep_config(path: str | os.PathLike[str]) -> SweepConfig:
    """Read and validate a sweep TOML file (its stem is the default sweep name).

    The file is UTF-8 (a byte-order mark is allowed). Beyond TOML's own rules, every integer
    must fit in 64 bits (TOML's range, which Python's reader does not enforce) and dates and
    times are refused: no key of a sweep takes one.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"expected the path of a sweep TOML file; got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} does not exist (or is not a file)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"sweep file {path} is not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ValueError(f"sweep file {path} cannot be read ({error.strerror})") from None
    try:
        payload = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"sweep file {path} is not valid TOML: {error}") from None
    except RecursionError:
        payload = None
    try:
        if payload is None or not _values_fit(payload):
            raise ValueError("nests arrays or tables too deeply to read")
        return sweep_config_from_dict(payload, name=path.stem)
    except ValueError as error:
        raise ValueError(f"sweep file {path}: {error}") from None


def _values_fit(payload: dict[str, Any]) -> bool:
    """:func:`_check_values`; ``False`` when the document is too deep to walk."""
    try:
        _check_values(payload, "")
    except RecursionError:
        return False
    return True


def _check_values(value: Any, where: str) -> None:
    """Refuse integers beyond 64 bits and dates/times anywhere in a parsed document."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_values(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, f"{where}[{index}]")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{where} = {value} is beyond TOML's 64-bit integers")
    elif isinstance(value, datetime.date | datetime.time):
        raise ValueError(f"{where} is a date or time ({value.isoformat()}); no sweep key takes one")


# ----------------------------------------------------------------------------------------
# Writing: the resolved configuration as TOML
# ----------------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = [f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise ValueError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _section(lines: list[str], header: str, table: Mapping[str, Any]) -> None:
    lines.append(header)
    for key, value in table.items():
        if value is not None:
            lines.append(f"{_key(key)} = {_value(value)}")
    lines.append("")


def sweep_config_toml(config: SweepConfig) -> str:
    """The configuration as a TOML document that :func:`load_sweep_config` reads back equal."""
    payload = config.to_dict()
    lines = [
        "# Resolved sweep configuration, written by anisoada. Run it again with:",
        "#   anisoada sweep THIS_FILE --out DIR",
        "",
    ]
    for key in ("name", "batch_sizes", "seeds", "base_seed", "evaluations", "vectorize"):
        lines.append(f"{key} = {_value(payload[key])}")
    if payload["cells"]:
        lines.append("cells = true")
    for key in ("tail_evaluations", "tuning_seeds", "baseline", "ray_address"):
        if payload[key] is not None:
            lines.append(f"{key} = {_value(payload[key])}")
    if payload["executor"] != "local":
        lines.append(f"executor = {_value(payload['executor'])}")
    factor = payload["divergence_factor"]
    lines.append(f"divergence_factor = {_value(_NONE if factor is None else factor)}")
    lines.append("")
    _section(lines, "[budget]", payload["budget"])
    _section(lines, "[lr_grid]", payload["lr_grid"])
    _section(lines, "[selection]", payload["selection"])
    for problem in payload["problems"]:
        if problem.get("kind") == "lm" and problem.get("data", {}).get("n_train") is None:
            problem = {**problem, "data": {**problem["data"], "n_train": _NONE}}
        _section(lines, "[[problems]]", problem)
    for optimizer in payload["optimizers"]:
        _section(lines, "[[optimizers]]", optimizer)
    return "\n".join(lines)


def dump_sweep_config(config: SweepConfig, path: str | os.PathLike[str]) -> Path:
    """Write :func:`sweep_config_toml` to ``path`` atomically."""
    path = Path(path)
    with atomic_open(path) as handle:
        handle.write(sweep_config_toml(config))
    return path
