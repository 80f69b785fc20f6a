"""``anisoada sweep`` and ``anisoada reproduce``: parse, build a frozen config, call the library."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["register"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text}")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers; got {text}"
        ) from error


def _lr_grid(text: str) -> tuple[float, float, int]:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH[:PER_DECADE]; got {text}")
    try:
        low, high = float(parts[0]), float(parts[1])
        per_decade = int(parts[2]) if len(parts) == 3 else 2
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH[:PER_DECADE]; got {text}") from error
    return low, high, per_decade


def _add_execution_arguments(
    parser: argparse.ArgumentParser, *, default_out: str | None = None
) -> None:
    if default_out is None:
        parser.add_argument("--out", required=True, type=Path, help="output directory")
    else:
        parser.add_argument("--out", type=Path, help=f"output directory (default: {default_out})")
    parser.add_argument(
        "--jobs", type=_positive_int, default=1, help="worker processes (default 1)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` and ``reproduce`` subcommands."""
    sweep = subparsers.add_parser(
        "sweep",
        help="run a learning-rate x batch-size sweep of the logistic task",
        description=(
            "Run (or finish) a sweep declared in a TOML file and/or on the command line "
            "(options override the file). Finished runs under --out are reused; a killed "
            "sweep re-run completes with the rows of an uninterrupted one."
        ),
    )
    sweep.add_argument("config", nargs="?", type=Path, help="sweep TOML file")
    sweep.add_argument("--name", help="sweep label")
    sweep.add_argument(
        "--dataset",
        action="append",
        help="dataset (repeatable): 'synthetic', 'rotated', or a LIBSVM name such as a9a",
    )
    sweep.add_argument(
        "--optimizer", action="append", help="optimizer name from OPTIMIZERS (repeatable)"
    )
    sweep.add_argument("--batch-sizes", type=_int_list, help="e.g. 8,64,512")
    sweep.add_argument("--lr-grid", type=_lr_grid, help="LOW:HIGH[:PER_DECADE], log-spaced")
    sweep.add_argument("--max-extensions", type=int, help="decades added at most per group")
    sweep.add_argument("--seeds", type=_positive_int, help="number of seeds")
    sweep.add_argument("--base-seed", type=int, help="seed every run's seed derives from")
    budget = sweep.add_mutually_exclusive_group()
    budget.add_argument("--budget-samples", type=_positive_int, help="samples per run")
    budget.add_argument("--budget-epochs", type=float, help="epochs per run")
    sweep.add_argument("--evaluations", type=_positive_int, help="evaluation points per run")
    sweep.add_argument(
        "--no-vectorize", action="store_true", help="one process pass per learning rate"
    )
    _add_execution_arguments(sweep)
    sweep.set_defaults(func=_run_sweep)

    from anisoada.experiments.reproduce import PRESETS, TARGET_MODULES

    reproduce = subparsers.add_parser(
        "reproduce",
        help="reproduce the paper's experiments (default: all targets)",
        description=(
            "Run reproduction targets into OUT/<target>/: sweeps, measurements, tables and "
            "figures. Stored results are reused, so re-running is cheap. Targets come from "
            f"{', '.join(TARGET_MODULES)}."
        ),
    )
    reproduce.add_argument(
        "targets", nargs="*", default=["all"], help="targets to run (default: all)"
    )
    reproduce.add_argument("--preset", choices=PRESETS, default="quick")
    _add_execution_arguments(reproduce, default_out="results/<preset>")
    reproduce.add_argument(
        "--no-report",
        action="store_true",
        help="skip building OUT/report.html and OUT/report.md from the stored results",
    )
    reproduce.set_defaults(func=_run_reproduce)


def _run_sweep(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from anisoada.experiments.config import load_sweep_config, sweep_config_from_dict
    from anisoada.experiments.datasets import DatasetSpec
    from anisoada.experiments.sweep import LRGrid, OptimizerSpec, run_sweep

    if args.config is not None:
        config = load_sweep_config(args.config)
    else:
        missing = [
            flag
            for flag, value in (
                ("--dataset", args.dataset),
                ("--optimizer", args.optimizer),
                ("--batch-sizes", args.batch_sizes),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"without a CONFIG file, give {', '.join(missing)}")
        budget = (
            {"epochs": args.budget_epochs}
            if args.budget_epochs is not None
            else {"samples": args.budget_samples or 100_000}
        )
        config = sweep_config_from_dict(
            {
                "datasets": [{"name": "x"}],
                "optimizers": [{"name": "sgd"}],
                "batch_sizes": [1],
                "budget": budget,
            },
            name=args.name or "sweep",
        )
    overrides: dict = {}
    if args.name:
        overrides["name"] = args.name
    if args.dataset:
        overrides["datasets"] = tuple(
            DatasetSpec.create(name, name if name in ("synthetic", "rotated") else "libsvm")
            for name in args.dataset
        )
    if args.optimizer:
        overrides["optimizers"] = tuple(OptimizerSpec.create(name) for name in args.optimizer)
    if args.batch_sizes:
        overrides["batch_sizes"] = args.batch_sizes
    if args.lr_grid or args.max_extensions is not None:
        grid = config.lr_grid
        low, high, per_decade = args.lr_grid or (grid.low, grid.high, grid.per_decade)
        extensions = grid.max_extensions if args.max_extensions is None else args.max_extensions
        overrides["lr_grid"] = LRGrid(low, high, per_decade, extensions)
    for field_name in ("seeds", "base_seed", "evaluations"):
        if getattr(args, field_name) is not None:
            overrides[field_name] = getattr(args, field_name)
    if args.budget_samples is not None:
        overrides.update(budget_samples=args.budget_samples, budget_epochs=None)
    if args.budget_epochs is not None:
        overrides.update(budget_epochs=args.budget_epochs, budget_samples=None)
    if args.no_vectorize:
        overrides["vectorize"] = False
    config = replace(config, **overrides)
    result = run_sweep(config, args.out, jobs=args.jobs, progress=not args.no_progress)
    columns = ["dataset", "optimizer", "batch_size", "best_lr", "train_loss", "test_accuracy"]
    columns += ["lrs_tried", "lrs_diverged", "extensions_up", "extensions_down", "at_edge"]
    print(result.selection[columns].to_string(index=False))
    print(f"\n{len(result.rows)} rows in {result.root / 'results.parquet'}; ", end="")
    print(f"selection in {result.root / 'selection.csv'} ({result.wall_time:.1f} s)")
    return 0


def _run_reproduce(args: argparse.Namespace) -> int:
    from anisoada.experiments.reproduce import run_reproductions

    out = args.out if args.out is not None else Path("results") / args.preset
    outputs = run_reproductions(
        list(args.targets), args.preset, out, jobs=args.jobs, progress=not args.no_progress
    )
    for output in outputs:
        print(f"== {output.target} ({output.preset}) in {output.wall_time:.1f} s -> {output.out}")
        if output.summary:
            print(output.summary)
        for name, path in output.files.items():
            print(f"  {name}: {os.path.relpath(path)}")
    if not args.no_report:
        # The report reads only what the targets stored, so it is rebuilt after every run.
        from anisoada.report import build_report

        paths = build_report(out)
        print(f"\nreport: {paths.html.resolve()}\nsummary: {paths.markdown.resolve()}")
    return 0
