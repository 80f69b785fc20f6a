"""Learning-rate × batch-size sweeps of the logistic task, resumable and run in parallel.

A sweep is datasets × optimizers (with options) × batch sizes × a log-spaced learning-rate grid
× seeds, all at the same budget (a fixed number of samples by default, so larger batches take
fewer steps). For each (dataset, optimizer, batch size) the best learning rate is the one with
the lowest final training loss, averaged over seeds; runs that diverged are never selected.
When the best learning rate is at an edge of the grid, the grid is extended by one decade in
that direction and the new rates are run — at most ``max_extensions`` times per group, each
recorded in the selection table.

Work is cut into **units**: one (dataset, optimizer, batch size, seed) with a set of learning
rates, trained in one pass as the lanes of a ``d × K`` weight matrix when ``vectorize`` is on
(every lane sees the same mini-batches; the results equal K separate runs to float rounding),
or one unit per learning rate otherwise. A unit's id is a hash of everything that determines
its results, so re-running a sweep skips units already stored, and a sweep killed at any moment
and re-run ends with exactly the rows of an uninterrupted run.

Seeds: the mini-batch stream of a unit is seeded by
``SeedSequence([base_seed, crc32(stream), batch_size, seed_index])`` — shared by every optimizer
and learning rate at that (dataset, batch size, seed), so they are compared on the same samples.
``stream`` is the dataset's :attr:`~anisoada.experiments.DatasetSpec.stream_key` (its name unless
set): the rotated twin shares its base problem's, so both see the same mini-batches.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import inspect
import json
import math
import multiprocessing
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from anisoada._io import write_json
from anisoada.experiments.datasets import DatasetSpec, load_dataset
from anisoada.experiments.logistic import LogisticTask
from anisoada.experiments.loop import Budget, TrainConfig, train
from anisoada.experiments.store import ResultsStore, provenance

__all__ = [
    "IDENTITY_COLUMNS",
    "SELECTION_COLUMNS",
    "TIMING_COLUMNS",
    "LRGrid",
    "OptimizerSpec",
    "RunUnit",
    "SweepConfig",
    "SweepResult",
    "derive_seed",
    "parse_optimizer_options",
    "run_sweep",
    "select_best",
]

#: Columns that identify a run in the results table (with ``step`` they identify a row).
#: ``optimizer`` is the sweep's label; each row also records the registry key
#: (``optimizer_name``) and the constructor options (``optimizer_options``, canonical JSON).
IDENTITY_COLUMNS = ("dataset", "optimizer", "batch_size", "seed", "lr")

#: Columns of the selection table (one row per dataset, optimizer, batch size).
SELECTION_COLUMNS = (
    "dataset",
    "optimizer",
    "batch_size",
    "best_lr",
    "train_loss",
    "train_loss_std",
    "test_loss",
    "test_accuracy",
    "seeds",
    "lrs_tried",
    "lrs_diverged",
    "lr_min",
    "lr_max",
    "extensions_up",
    "extensions_down",
    "at_edge",
)

#: Row columns that depend on the machine's speed: the only ones that differ between two
#: runs of the same sweep (compare tables without them).
TIMING_COLUMNS = ("train_time",)


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer of :data:`anisoada.optim.OPTIMIZERS` with fixed options.

    Args:
        name: Registry key (``"sgd"``, ``"adagrad"``, ``"adagrad_norm"``).
        label: Name in results tables (default: ``name``); lets one optimizer appear twice
            with different options.
        options: Keyword arguments for the constructor besides ``lr``.
    """

    name: str
    label: str = ""
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def options_json(self) -> str:
        """The options as canonical JSON (sorted keys): one string column in results tables.

        Example:
            >>> options = {"eps": 1e-8, "eps_placement": "inside"}
            >>> spec = OptimizerSpec.create("adagrad", options=options)
            >>> spec.options_json
            '{"eps": 1e-08, "eps_placement": "inside"}'
        """
        return json.dumps(dict(self.options), sort_keys=True, default=str)

    @classmethod
    def create(
        cls, name: str, label: str = "", options: Mapping[str, Any] | None = None
    ) -> OptimizerSpec:
        """Build a spec from a plain mapping of options."""
        return cls(name=name, label=label or name, options=tuple(sorted((options or {}).items())))


@dataclass(frozen=True)
class LRGrid:
    """A log-spaced learning-rate grid ``10^(k / per_decade)`` for integers ``k``.

    The grid holds every such value in ``[low, high]``; an extension adds the next
    ``per_decade`` values (one decade) above or below. Values are computed from the integer
    ``k`` so that the same rate is the same float in every unit.

    Example:
        >>> LRGrid(low=0.01, high=1.0, per_decade=2).values()
        (0.01, 0.0316..., 0.1, 0.316..., 1.0)
    """

    low: float = 1e-3
    high: float = 1e1
    per_decade: int = 2
    max_extensions: int = 2

    def __post_init__(self) -> None:
        if not (0 < self.low <= self.high) or not math.isfinite(self.high):
            raise ValueError(
                f"lr grid needs 0 < low <= high < inf; got low={self.low}, high={self.high}"
            )
        if not isinstance(self.per_decade, int) or self.per_decade < 1:
            raise ValueError(f"per_decade must be a positive integer; got {self.per_decade!r}")
        if not isinstance(self.max_extensions, int) or self.max_extensions < 0:
            raise ValueError(f"max_extensions must be an integer >= 0; got {self.max_extensions!r}")
        if not self.exponents():
            raise ValueError(
                f"lr grid [{self.low}, {self.high}] with {self.per_decade} per decade is empty; "
                "widen it"
            )

    def exponents(self) -> tuple[int, ...]:
        """The integers ``k`` of the grid."""
        first = math.ceil(round(math.log10(self.low) * self.per_decade, 9))
        last = math.floor(round(math.log10(self.high) * self.per_decade, 9))
        return tuple(range(first, last + 1))

    def value(self, exponent: int) -> float:
        """``10^(k / per_decade)``."""
        return float(10.0 ** (exponent / self.per_decade))

    def values(self) -> tuple[float, ...]:
        """The learning rates of the grid, ascending."""
        return tuple(self.value(k) for k in self.exponents())


@dataclass(frozen=True)
class SweepConfig:
    """A whole sweep, built once at the edge (TOML file or CLI) and frozen.

    Args:
        name: Label of the sweep.
        datasets, optimizers, batch_sizes: The factors of the sweep.
        lr_grid: Learning rates to try (and how far to extend them).
        seeds: Number of seeds (seed indices ``0 … seeds−1``).
        base_seed: The one seed every run's seed derives from.
        budget_samples / budget_epochs: The budget; exactly one (epochs are converted with each
            dataset's training-set size).
        evaluations: Evaluation points per run besides the initial one.
        vectorize: Train all learning rates of a unit as lanes of one weight matrix.
        divergence_factor: See :class:`~anisoada.experiments.TrainConfig`.
    """

    name: str
    datasets: tuple[DatasetSpec, ...]
    optimizers: tuple[OptimizerSpec, ...]
    batch_sizes: tuple[int, ...]
    lr_grid: LRGrid = field(default_factory=LRGrid)
    seeds: int = 1
    base_seed: int = 0
    budget_samples: int | None = None
    budget_epochs: float | None = None
    evaluations: int = 20
    vectorize: bool = True
    divergence_factor: float | None = 100.0

    def __post_init__(self) -> None:
        for label, values in (
            ("datasets", self.datasets),
            ("optimizers", self.optimizers),
            ("batch_sizes", self.batch_sizes),
        ):
            if not values:
                raise ValueError(f"sweep {self.name!r} needs at least one entry in {label}")
        for batch_size in self.batch_sizes:
            if not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"batch sizes must be positive integers; got {batch_size!r}")
        for label, values in (
            ("dataset", [d.name for d in self.datasets]),
            ("optimizer label", [o.label for o in self.optimizers]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"duplicate {label}s in sweep {self.name!r}: {values}")
        if (self.budget_samples is None) == (self.budget_epochs is None):
            raise ValueError(
                "give exactly one budget: budget_samples or budget_epochs; got "
                f"samples={self.budget_samples!r}, epochs={self.budget_epochs!r}"
            )
        if self.budget_samples is not None and self.budget_samples < 1:
            raise ValueError(f"budget_samples must be >= 1; got {self.budget_samples!r}")
        if self.budget_epochs is not None and not self.budget_epochs > 0:
            raise ValueError(f"budget_epochs must be > 0; got {self.budget_epochs!r}")
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be a positive integer; got {self.seeds!r}")
        if not isinstance(self.evaluations, int) or self.evaluations < 1:
            raise ValueError(f"evaluations must be a positive integer; got {self.evaluations!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (recorded in ``sweep.json``)."""
        payload = asdict(self)
        payload["datasets"] = [spec.to_dict() for spec in self.datasets]
        payload["optimizers"] = [
            {"name": o.name, "label": o.label, "options": dict(o.options)} for o in self.optimizers
        ]
        return payload


def derive_seed(base_seed: int, *parts: int | str) -> int:
    """A 32-bit seed determined by ``base_seed`` and ``parts`` (strings hashed with CRC-32).

    Example:
        >>> derive_seed(0, "a9a", 64, 0) == derive_seed(0, "a9a", 64, 0)
        True
    """
    entropy = [int(base_seed)] + [
        zlib.crc32(part.encode()) if isinstance(part, str) else int(part) for part in parts
    ]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


@dataclass(frozen=True)
class RunUnit:
    """One unit of work: K learning rates of one (dataset, optimizer, batch size, seed)."""

    dataset: DatasetSpec
    optimizer: OptimizerSpec
    batch_size: int
    seed: int
    run_seed: int
    lrs: tuple[float, ...]
    budget_samples: int | None
    budget_epochs: float | None
    evaluations: int
    divergence_factor: float | None

    @property
    def run_id(self) -> str:
        """Hash of everything that determines the unit's results."""
        payload = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_dict(),
            "optimizer": {
                "name": self.optimizer.name,
                "label": self.optimizer.label,
                "options": dict(self.optimizer.options),
            },
            "batch_size": self.batch_size,
            "seed": self.seed,
            "run_seed": self.run_seed,
            "lrs": list(self.lrs),
            "budget_samples": self.budget_samples,
            "budget_epochs": self.budget_epochs,
            "evaluations": self.evaluations,
            "divergence_factor": self.divergence_factor,
        }


def build_optimizer(
    spec: OptimizerSpec, params: Sequence[torch.Tensor], lrs: Sequence[float]
) -> torch.optim.Optimizer:
    """``OPTIMIZERS[spec.name](params, lr=..., **options)`` with one learning rate per lane.

    ``lr`` is a tensor of shape ``(K,)`` that broadcasts over the columns of the ``(d, K)``
    weights. Element-wise updates (SGD, diagonal AdaGrad) then keep the columns
    independent by themselves; an optimizer whose update couples coordinates declares a
    ``per_column`` option (AdaGrad-Norm's norm accumulator), which is switched on so that each
    column keeps its own state. An optimizer with neither cannot run lanes: use
    ``vectorize = false``.
    """
    from anisoada.optim import OPTIMIZERS

    if spec.name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {spec.name!r}; known: {sorted(OPTIMIZERS)}")
    factory = OPTIMIZERS[spec.name]
    options = dict(spec.options)
    if "per_column" in inspect.signature(factory).parameters:
        options["per_column"] = True
    # A tensor lr and per-column state even for one lane: every run then takes the same kernel
    # path, so lane k of a vectorised run and a run with lr k alone do the same arithmetic.
    return factory(params, lr=torch.tensor(lrs, dtype=params[0].dtype), **options)


def _budget(unit: RunUnit, n_train: int) -> Budget:
    if unit.budget_samples is not None:
        return Budget(samples=int(unit.budget_samples))
    assert unit.budget_epochs is not None
    return Budget(samples=max(1, round(unit.budget_epochs * n_train)))


def execute_unit(unit: RunUnit, root: str) -> str:
    """Train one unit and store it; returns its run id (runs in a worker process or inline).

    The unit's arithmetic is small (mini-batch products of a few hundred columns), where BLAS
    and torch thread pools cost far more than they give — 5-10x on 2 cores — so it runs
    single-threaded; parallelism comes from running units side by side (``jobs``).
    """
    import threadpoolctl

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(1):
            return _execute_unit(unit, root)
    finally:
        torch.set_num_threads(threads)


def _execute_unit(unit: RunUnit, root: str) -> str:
    started = time.perf_counter()
    data = load_dataset(unit.dataset)
    n_train = data.X.shape[0]
    task = LogisticTask(data.X, data.y, lanes=len(unit.lrs), X_test=data.X_test, y_test=data.y_test)
    optimizer = build_optimizer(unit.optimizer, task.parameters(), unit.lrs)
    budget = _budget(unit, n_train)
    steps = budget.num_steps(unit.batch_size)
    config = TrainConfig(
        batch_size=unit.batch_size,
        budget=budget,
        seed=unit.run_seed,
        eval_every=max(1, steps // unit.evaluations),
        divergence_factor=unit.divergence_factor,
    )
    result = train(task, optimizer, config)
    rows = pd.DataFrame(result.rows)
    lanes = rows.pop("lane").to_numpy()
    rows = rows.drop(columns=["lr"])
    identity = {
        "dataset": unit.dataset.name,
        "optimizer": unit.optimizer.label,
        "optimizer_name": unit.optimizer.name,
        "optimizer_options": unit.optimizer.options_json,
        "batch_size": unit.batch_size,
        "seed": unit.seed,
        "lr": np.asarray(unit.lrs)[lanes],
    }
    for position, (column, values) in enumerate(identity.items()):
        rows.insert(position, column, values)
    rows["epoch"] = rows["samples"] / n_train
    rows["status"] = np.asarray(result.status, dtype=object)[lanes]
    rows["run_id"] = unit.run_id
    ResultsStore(root).write_run(
        unit.run_id,
        rows,
        {
            "run_id": unit.run_id,
            "unit": unit.to_dict(),
            "status": dict(zip(map(str, unit.lrs), result.status)),
            "steps": dict(zip(map(str, unit.lrs), result.steps)),
            "steps_budget": steps,
            "n_train": n_train,
            "dataset_description": data.description,
            "wall_time": time.perf_counter() - started,
            "provenance": provenance(),
        },
        {"weights": task.weights.detach().numpy(), "lrs": np.asarray(unit.lrs)},
    )
    return unit.run_id


def _execute(units: Sequence[RunUnit], root: Path, jobs: int, progress: bool, desc: str) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(units), desc=desc, unit="run", disable=not progress, leave=False)
    try:
        if jobs == 1 or len(units) == 1:
            for unit in units:
                execute_unit(unit, str(root))
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(execute_unit, unit, str(root)) for unit in units]
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()
                    bar.update()
            except BaseException:
                # Surface the first error now: drop the units not started (those already
                # finished are stored; the running ones finish and are stored too).
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        bar.close()


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: every row, the selection table and where they are stored."""

    rows: pd.DataFrame
    selection: pd.DataFrame
    root: Path
    wall_time: float


def _group_key(unit: RunUnit) -> tuple[str, str, int]:
    return unit.dataset.name, unit.optimizer.label, unit.batch_size


def _make_units(
    config: SweepConfig,
    dataset: DatasetSpec,
    optimizer: OptimizerSpec,
    batch_size: int,
    lrs: Sequence[float],
) -> list[RunUnit]:
    chunks = [tuple(lrs)] if config.vectorize else [(lr,) for lr in lrs]
    return [
        RunUnit(
            dataset=dataset,
            optimizer=optimizer,
            batch_size=batch_size,
            seed=seed,
            run_seed=derive_seed(config.base_seed, dataset.stream_key, batch_size, seed),
            lrs=chunk,
            budget_samples=config.budget_samples,
            budget_epochs=config.budget_epochs,
            evaluations=config.evaluations,
            divergence_factor=config.divergence_factor,
        )
        for seed in range(config.seeds)
        for chunk in chunks
    ]


def final_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The last row of every run (its final evaluation, or its divergence row)."""
    if rows.empty:
        return rows
    ordered = rows.sort_values([*IDENTITY_COLUMNS, "step"], kind="stable")
    return ordered.groupby(list(IDENTITY_COLUMNS), sort=True).tail(1).reset_index(drop=True)


def lr_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, optimizer, batch size, lr): mean final metrics over seeds, divergence flag.

    A learning rate counts as diverged when any of its seeds diverged (its score is then NaN).
    """
    finals = final_rows(rows)
    keys = ["dataset", "optimizer", "batch_size", "lr"]
    metrics = [c for c in ("train_loss", "test_loss", "test_accuracy") if c in finals]
    finals = finals.assign(diverged=finals["status"] == "diverged")
    grouped = finals.groupby(keys, sort=True)
    table = grouped[metrics].mean()
    table["train_loss_std"] = grouped["train_loss"].std(ddof=0)
    table["diverged"] = grouped["diverged"].any()
    table["seeds"] = grouped.size()
    table.loc[table["diverged"], [*metrics, "train_loss_std"]] = np.nan
    return table.reset_index()


def select_best(rows: pd.DataFrame) -> pd.DataFrame:
    """The best learning rate per (dataset, optimizer, batch size) by mean final training loss.

    Diverged learning rates are never selected. Returns the columns of
    :data:`SELECTION_COLUMNS` except the extension bookkeeping (``run_sweep`` adds it);
    ``best_lr`` is NaN when every learning rate diverged.

    Example:
        >>> rows = pd.DataFrame({
        ...     "dataset": "d", "optimizer": "o", "batch_size": 8, "seed": 0,
        ...     "lr": [0.1, 0.1, 1.0, 1.0], "step": [0, 5, 0, 5],
        ...     "train_loss": [0.7, 0.3, 0.7, float("nan")],
        ...     "status": ["finished", "finished", "diverged", "diverged"]})
        >>> select_best(rows)[["best_lr", "train_loss", "lrs_diverged"]].to_dict("records")
        [{'best_lr': 0.1, 'train_loss': 0.3, 'lrs_diverged': 1}]
    """
    scores = lr_scores(rows)
    records = []
    for (dataset, optimizer, batch_size), group in scores.groupby(
        ["dataset", "optimizer", "batch_size"], sort=True
    ):
        valid = group[~group["diverged"] & group["train_loss"].notna()]
        record: dict[str, Any] = {
            "dataset": dataset,
            "optimizer": optimizer,
            "batch_size": int(batch_size),
            "lrs_tried": len(group),
            "lrs_diverged": int(group["diverged"].sum()),
            "lr_min": float(group["lr"].min()),
            "lr_max": float(group["lr"].max()),
        }
        if valid.empty:
            record.update(best_lr=np.nan, train_loss=np.nan, train_loss_std=np.nan, seeds=0)
        else:
            best = valid.loc[valid["train_loss"].idxmin()]
            record.update(
                best_lr=float(best["lr"]),
                train_loss=float(best["train_loss"]),
                train_loss_std=float(best["train_loss_std"]),
                seeds=int(best["seeds"]),
            )
            for metric in ("test_loss", "test_accuracy"):
                if metric in best:
                    record[metric] = float(best[metric])
        records.append(record)
    return pd.DataFrame.from_records(records)


def _extension(
    best_lr: float, lrs: Sequence[float], grid: LRGrid, extensions: int
) -> tuple[str, list[float]] | None:
    """The decade to add when the best lr sits at an edge (or everything diverged)."""
    if extensions >= grid.max_extensions:
        return None
    exponents = sorted(round(math.log10(lr) * grid.per_decade) for lr in lrs)
    if math.isnan(best_lr) or best_lr == min(lrs):
        low = exponents[0]
        return "down", [grid.value(k) for k in range(low - grid.per_decade, low)]
    if best_lr == max(lrs):
        high = exponents[-1]
        return "up", [grid.value(k) for k in range(high + 1, high + 1 + grid.per_decade)]
    return None


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    jobs: int = 1,
    progress: bool = True,
) -> SweepResult:
    """Run (or finish) a sweep into ``out``; returns every row and the selection.

    Units already stored under ``out`` are not run again. Rounds: the base grid for every
    group, then, as long as some group's best learning rate is at an edge of what it has tried
    (and it has extensions left), one more decade for those groups. The tables
    ``results.parquet`` (every row), ``selection.parquet`` and ``selection.csv`` are written at
    the end.

    Args:
        config: The sweep.
        out: Output directory (created).
        jobs: Worker processes (1: run in this process).
        progress: Show tqdm progress bars.

    Returns:
        The :class:`SweepResult`.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer; got {jobs!r}")
    started = time.perf_counter()
    root = Path(out)
    store = ResultsStore(root)
    write_json(root / "sweep.json", {"config": config.to_dict(), "provenance": provenance()})

    specs = {
        (dataset.name, optimizer.label, batch_size): (dataset, optimizer, batch_size)
        for dataset in config.datasets
        for optimizer in config.optimizers
        for batch_size in config.batch_sizes
    }
    tried: dict[tuple[str, str, int], list[float]] = {
        key: list(config.lr_grid.values()) for key in specs
    }
    extensions = {key: {"up": 0, "down": 0} for key in specs}
    units = [unit for key in specs for unit in _make_units(config, *specs[key], tried[key])]
    pending = units
    round_index = 0
    while pending:
        todo = [unit for unit in pending if not store.is_complete(unit.run_id)]
        _execute(todo, root, jobs, progress, f"{config.name} round {round_index}")
        selection = select_best(store.read_rows(unit.run_id for unit in units))
        pending = []
        for record in selection.to_dict("records"):
            key = (record["dataset"], record["optimizer"], record["batch_size"])
            done = sum(extensions[key].values())
            extension = _extension(record["best_lr"], tried[key], config.lr_grid, done)
            if extension is None:
                continue
            direction, new_lrs = extension
            extensions[key][direction] += 1
            tried[key] = sorted(tried[key] + new_lrs)
            pending += _make_units(config, *specs[key], new_lrs)
        units += pending
        round_index += 1

    rows = store.read_rows(unit.run_id for unit in units)
    rows = rows.sort_values([*IDENTITY_COLUMNS, "step"], kind="stable").reset_index(drop=True)
    selection = select_best(rows)
    selection["extensions_up"] = [
        extensions[(r.dataset, r.optimizer, r.batch_size)]["up"] for r in selection.itertuples()
    ]
    selection["extensions_down"] = [
        extensions[(r.dataset, r.optimizer, r.batch_size)]["down"] for r in selection.itertuples()
    ]
    selection["at_edge"] = [
        bool(np.isnan(r.best_lr) or r.best_lr in (r.lr_min, r.lr_max))
        for r in selection.itertuples()
    ]
    selection = selection.reindex(columns=list(SELECTION_COLUMNS))
    store.write_table("results", rows)
    store.write_table("selection", selection, csv=True)
    return SweepResult(
        rows=rows, selection=selection, root=root, wall_time=time.perf_counter() - started
    )


def parse_optimizer_options(items: Sequence[str], names: Sequence[str]) -> dict[str, dict]:
    """Command-line ``NAME.KEY=VALUE`` items → ``{optimizer name: {option: value}}``.

    Values are read as Python literals (``1e-8``, ``True``, ``(0, 1)``), else kept as text
    (``inside``). Shared by ``anisoada sweep`` and ``anisoada lm``.

    Example:
        >>> items = ["adagrad.eps=1e-8", "adagrad.eps_placement=inside"]
        >>> parse_optimizer_options(items, ["adagrad"])
        {'adagrad': {'eps': 1e-08, 'eps_placement': 'inside'}}
    """
    import ast

    options: dict[str, dict] = {name: {} for name in names}
    for item in items:
        name, _, assignment = item.partition(".")
        key, _, value = assignment.partition("=")
        if name not in options or not key or not value:
            raise ValueError(
                f"--option {item!r}: expected NAME.KEY=VALUE with NAME among the --optimizer "
                f"names {list(names)}"
            )
        try:
            options[name][key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[name][key] = value
    return options
