"""``anisoada sweep`` and ``anisoada reproduce``: parse, build a frozen config, call the library."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anisoada.experiments import DatasetSpec, SweepConfig

from anisoada.cli import _common as common

__all__ = ["register"]


def _add_execution_arguments(
    parser: argparse.ArgumentParser, *, default_out: str | None = None
) -> None:
    if default_out is None:
        parser.add_argument(
            "--out", required=True, type=common.output_directory, help="output directory"
        )
    else:
        parser.add_argument(
            "--out", type=common.output_directory, help=f"output directory (default: {default_out})"
        )
    parser.add_argument("--jobs", type=common.positive_int, default=1, help="worker processes")
    common.add_quiet(parser, help="no progress bars")


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--executor`` and ``--ray-address`` (``anisoada sweep`` and ``anisoada lm``)."""
    from anisoada.experiments.executors import EXECUTORS

    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="where runs execute: local (this process or --jobs processes) or ray (one Ray "
        "task per run; pip install 'anisoada[ray]') (default: the CONFIG file's, else local)",
    )
    parser.add_argument(
        "--ray-address",
        metavar="auto|HOST:PORT",
        default=None,
        help="the Ray cluster of --executor ray (default: start a local Ray instance)",
    )


def executor_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~anisoada.experiments.SweepConfig` fields ``--executor``/``--ray-address`` set.

    ``--ray-address`` alone implies nothing: it needs ``--executor ray`` (or the file's
    ``executor = "ray"``); ``--executor local`` also drops a file's ``ray_address``.
    """
    fields: dict[str, Any] = {}
    if args.executor is not None:
        fields["executor"] = args.executor
        if args.executor == "local":
            fields["ray_address"] = None
    if args.ray_address is not None:
        fields["ray_address"] = args.ray_address
    return fields


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sweep`` and ``reproduce`` subcommands."""
    sweep = common.add_command(subparsers, "sweep", _run_sweep, _SWEEP_HELP, _SWEEP_TEXT)
    sweep.add_argument("config", nargs="?", type=Path, help="sweep TOML file")
    sweep.add_argument("--name", type=_label, help="sweep label")
    sweep.add_argument(
        "--only",
        action="append",
        metavar="PROBLEM",
        help="keep only this problem of the CONFIG file (repeatable; with --batch-sizes: one "
        "cell of a sweep)",
    )
    sweep.add_argument(
        "--dataset",
        action="append",
        help="dataset (repeatable): 'synthetic', 'rotated', a LIBSVM name such as a9a, or the "
        "path of a LIBSVM/svmlight file (plain, .gz, .bz2, .xz)",
    )
    sweep.add_argument(
        "--problem",
        action="append",
        metavar="MODULE:FUNCTION",
        help="a PyTorch problem (repeatable): a module or .py file and a function returning "
        "(model_factory, loss_fn, data); see the README's 'Your own model'",
    )
    held_out = sweep.add_mutually_exclusive_group()
    held_out.add_argument(
        "--test", metavar="FILE", help="test file of a --dataset file (columns aligned)"
    )
    held_out.add_argument(
        "--holdout",
        type=common.open_fraction,
        metavar="FRACTION",
        help="hold out this fraction of a --dataset file's rows as its test set (seeded by "
        "--base-seed)",
    )
    common.add_list(
        sweep,
        "--optimizer",
        help=f"optimizers ({common.optimizer_names()}); repeatable, or a list",
        metavar="NAME",
        append=True,
    )
    sweep.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="option of an --optimizer, e.g. adagrad.eps=1e-8 (repeatable; needs --optimizer)",
    )
    common.add_list(
        sweep, "--batch-sizes", item=common.positive_int, help="batch sizes, e.g. 8,64,512"
    )
    sweep.add_argument("--lr-grid", type=common.lr_range, help="LOW:HIGH[:PER_DECADE], log-spaced")
    sweep.add_argument(
        "--max-extensions", type=common.non_negative_int, help="grid extensions at most per group"
    )
    sweep.add_argument("--seeds", type=common.positive_int, help="number of seeds")
    sweep.add_argument(
        "--base-seed", type=common.non_negative_int, help="seed every run's seed derives from"
    )
    budget = sweep.add_mutually_exclusive_group()
    common.add_budget(budget, default="100000 samples without a CONFIG file")
    sweep.add_argument("--evaluations", type=common.positive_int, help="evaluation points per run")
    sweep.add_argument(
        "--no-vectorize", action="store_true", help="one process pass per learning rate"
    )
    sweep.add_argument(
        "--cells",
        action="store_true",
        help="every optimizer, seed and rate of a batch size in one pass (logistic problems; "
        "the same rows, fewer passes: the README's 'Cell runs')",
    )
    sweep.add_argument(
        "--tail-evaluations",
        type=common.positive_int,
        help="compute only the last this many evaluation points of each run (default: all)",
    )
    _add_execution_arguments(sweep)
    common.add_json(sweep)
    add_executor_arguments(sweep)

    from anisoada.reproduce import ALL_PRESETS, TARGET_MODULES

    text = _REPRODUCE_TEXT + f" Targets come from {', '.join(TARGET_MODULES)}."
    reproduce = common.add_command(subparsers, "reproduce", _run_reproduce, _REPRODUCE_HELP, text)
    reproduce.add_argument(
        "targets", nargs="*", default=["all"], help="targets to run (default: all)"
    )
    reproduce.add_argument(
        "--preset",
        choices=ALL_PRESETS,
        default="quick",
        help="quick or paper for every target; heldout for prediction only",
    )
    _add_execution_arguments(reproduce, default_out="results/<preset>")
    reproduce.add_argument(
        "--no-report",
        action="store_true",
        help="skip building OUT/report.html and OUT/report.md from the stored results",
    )
    common.add_json(reproduce)


_REPRODUCE_HELP = "reproduce the paper's experiments (default: all targets)"
_REPRODUCE_TEXT = (
    "Run reproduction targets into OUT/<target>/: sweeps, measurements, tables and figures. "
    "Stored results are reused, so re-running is cheap."
)
_SWEEP_HELP = "run a learning-rate x batch-size sweep (logistic, quadratic or LM problems)"
_SWEEP_TEXT = """\
Run (or finish) a sweep declared in a TOML file and/or on the command line (options override
the file). Finished runs under --out are reused; a killed sweep re-run completes with the rows
of an uninterrupted one. The resolved configuration is written to OUT/sweep.toml, which this
command accepts back."""


def _label(text: str) -> str:
    """``--name``: a non-empty label."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a non-empty label; got {text!r}")
    return text


def _dataset_specs(
    names: list[str], test: str | None = None, holdout: float | None = None, seed: int = 0
) -> tuple[DatasetSpec, ...]:
    """``--dataset`` values → specs.

    ``synthetic`` and ``rotated`` are the embedded problems (the twin shares the synthetic
    problem's stream); a registered LIBSVM name uses its official test split; anything else is
    a file, with ``--test`` or ``--holdout``.
    """
    from anisoada.data import LIBSVM_DATASETS
    from anisoada.experiments import DatasetSpec

    specs = []
    for name in names:
        if name == "synthetic":
            specs.append(DatasetSpec.create(name, "synthetic"))
        elif name == "rotated":
            specs.append(DatasetSpec.create(name, "rotated", stream="synthetic"))
        elif name in LIBSVM_DATASETS and test is None and holdout is None:
            specs.append(DatasetSpec.create(name, "libsvm"))
        elif os.path.exists(name):
            specs.append(DatasetSpec.from_file(name, test=test, holdout=holdout, holdout_seed=seed))
        else:
            raise ValueError(
                f"--dataset {name!r} is neither 'synthetic', 'rotated', a registered LIBSVM set "
                f"({', '.join(sorted(LIBSVM_DATASETS)[:6])}, …) nor an existing file"
            )
    if (test is not None or holdout is not None) and all(
        spec.source != "libsvm" or "sha256" not in dict(spec.options) for spec in specs
    ):
        raise ValueError("--test and --holdout apply to a --dataset file; give one")
    return tuple(specs)


def sweep_config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The :class:`~anisoada.experiments.SweepConfig` of ``anisoada sweep``'s arguments.

    With a CONFIG file, the options given override its values; without one, ``--dataset``,
    ``--optimizer`` and ``--batch-sizes`` are required and everything else has the
    :class:`~anisoada.experiments.SweepConfig` defaults (budget: 100 000 samples).
    """
    from dataclasses import replace

    from anisoada.experiments import (
        LRGrid,
        OptimizerSpec,
        SweepConfig,
        load_sweep_config,
        parse_optimizer_options,
    )
    from anisoada.train import Budget

    if args.option and not args.optimizer:
        raise ValueError("--option needs --optimizer (options belong to the optimizers named)")
    fields: dict[str, Any] = {}
    if args.name:
        fields["name"] = args.name
    if args.dataset:
        fields["problems"] = _dataset_specs(
            args.dataset, args.test, args.holdout, args.base_seed or 0
        )
    elif args.test is not None or args.holdout is not None:
        raise ValueError("--test and --holdout apply to a --dataset file; give one")
    if getattr(args, "problem", None):
        from anisoada.experiments.runs import ModuleSpec

        modules = tuple(ModuleSpec.create(target) for target in args.problem)
        fields["problems"] = tuple(fields.get("problems", ())) + modules
    if args.optimizer:
        options = parse_optimizer_options(args.option, args.optimizer)
        fields["optimizers"] = tuple(
            OptimizerSpec.create(name, options=options[name]) for name in args.optimizer
        )
    if args.batch_sizes:
        fields["batch_sizes"] = tuple(args.batch_sizes)
    base_grid = LRGrid()
    if args.config is not None:
        config = load_sweep_config(args.config)
        base_grid = config.lr_grid
    if args.lr_grid or args.max_extensions is not None:
        low, high, per_decade = args.lr_grid or (
            base_grid.low,
            base_grid.high,
            base_grid.per_decade,
        )
        extensions = (
            base_grid.max_extensions if args.max_extensions is None else args.max_extensions
        )
        fields["lr_grid"] = LRGrid(low, high, per_decade, extensions)
    for field_name in ("seeds", "base_seed", "evaluations", "tail_evaluations"):
        if getattr(args, field_name) is not None:
            fields[field_name] = getattr(args, field_name)
    if args.samples is not None:
        fields["budget"] = Budget(samples=args.samples)
    if args.epochs is not None:
        fields["budget"] = Budget(epochs=args.epochs)
    if args.no_vectorize:
        fields["vectorize"] = False
    if args.cells:
        fields["cells"] = True
    fields.update(executor_fields(args))
    if args.only and args.config is None:
        raise ValueError("--only selects problems of a CONFIG file; give the file")
    if args.config is not None:
        if args.only:
            names = [problem.name for problem in config.problems]
            unknown = [name for name in args.only if name not in names]
            if unknown:
                raise ValueError(f"--only {unknown[0]!r}: the file's problems are {names}")
            fields["problems"] = tuple(p for p in config.problems if p.name in args.only)
        return replace(config, **fields)
    missing = [
        flag
        for flag, key in (
            ("--dataset", "problems"),
            ("--optimizer", "optimizers"),
            ("--batch-sizes", "batch_sizes"),
        )
        if key not in fields
    ]
    if missing:
        raise ValueError(f"without a CONFIG file, give {', '.join(missing)}")
    fields.setdefault("budget", Budget(samples=100_000))
    fields.setdefault("name", "sweep")
    return SweepConfig(**fields)


def _run_sweep(args: argparse.Namespace) -> int:
    from anisoada.experiments import run_sweep

    config = sweep_config_from_args(args)
    result = run_sweep(config, args.out, jobs=args.jobs, progress=not args.quiet)
    columns = ["dataset", "optimizer", "batch_size", "best_lr", "train_loss", "test_accuracy"]
    columns += ["eval_loss", "lrs_tried", "lrs_diverged", "extensions_up", "extensions_down"]
    columns += ["at_edge"]
    shown = [column for column in columns if column in result.selection]
    if args.json:
        common.print_json(
            {
                "selection": common.table_records(result.selection[shown]),
                "rows": len(result.rows),
                "results": result.root / "results.parquet",
                "selection_csv": result.root / "selection.csv",
                "wall_time_s": result.wall_time,
            }
        )
        return 0
    print(result.selection[shown].to_string(index=False))
    print(f"\n{len(result.rows)} rows in {result.root / 'results.parquet'}; ", end="")
    print(f"selection in {result.root / 'selection.csv'} ({result.wall_time:.1f} s)")
    return 0


def _torchrun_rank(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``(rank, world size)`` of a process started by torchrun, ``(0, 1)`` otherwise."""
    environ = os.environ if environ is None else environ
    world_size = int(environ.get("WORLD_SIZE", "1") or 1)
    rank = int(environ.get("RANK", "0") or 0)
    return rank, world_size


#: The only reproduction target that runs distributed (one process per GPU under torchrun).
_DISTRIBUTED_TARGETS = ("lm",)


def _check_distributed_targets(targets: list[str], world_size: int) -> None:
    """Refuse non-distributed targets under torchrun: every rank would redo and rewrite them."""
    if world_size <= 1:
        return
    from anisoada.reproduce import reproductions

    selected = list(reproductions()) if not targets or targets == ["all"] else targets
    single = [name for name in selected if name not in _DISTRIBUTED_TARGETS]
    if single:
        raise ValueError(
            f"target(s) {single} do not run distributed; under torchrun (WORLD_SIZE="
            f"{world_size}) give only {list(_DISTRIBUTED_TARGETS)}, and run {single} (and the "
            "report) without torchrun"
        )


def _run_reproduce(args: argparse.Namespace) -> int:
    from anisoada.reproduce import run_reproductions

    repeated = common.first_repeated(args.targets)
    if repeated is not None:
        raise ValueError(f"target {repeated!r} is given twice; give each target once")
    rank, world_size = _torchrun_rank()
    _check_distributed_targets(list(args.targets), world_size)
    out = args.out if args.out is not None else Path("results") / args.preset
    outputs = run_reproductions(
        list(args.targets),
        args.preset,
        out,
        jobs=args.jobs,
        progress=not args.quiet and rank == 0,
    )
    if rank != 0:
        # Rank 0 prints and builds the report; the other ranks only took part in training.
        return 0
    if args.json:
        import pandas as pd

        payload: dict[str, Any] = {"targets": []}
        for output in outputs:
            payload["targets"].append(
                {
                    "target": output.target,
                    "preset": output.preset,
                    "out": output.out,
                    "wall_time_s": output.wall_time,
                    "summary": output.summary,
                    "tables": {
                        title: {"path": path, "rows": common.table_records(pd.read_csv(path))}
                        for title, path in output.tables.items()
                    },
                    "files": dict(output.files),
                }
            )
        if not args.no_report:
            from anisoada.report import build_report

            paths = build_report(out)
            payload["report"] = {"html": paths.html, "markdown": paths.markdown}
        common.print_json(payload)
        return 0
    for output in outputs:
        print(f"== {output.target} ({output.preset}) in {output.wall_time:.1f} s -> {output.out}")
        if output.summary:
            print(output.summary)
        for title, path in output.tables.items():
            print(f"\n{title} ({os.path.relpath(path)})\n\n{console_table(path)}")
        for name, path in output.files.items():
            print(f"  {name}: {os.path.relpath(path)}")
    if not args.no_report:
        # The report reads only what the targets stored, so it is rebuilt after every run.
        from anisoada.report import build_report

        paths = build_report(out)
        print(f"\nreport: {paths.html.resolve()}\nsummary: {paths.markdown.resolve()}")
    return 0


def console_table(path: Path) -> str:
    """A stored CSV table as Markdown, optimizer keys shown by their display names."""
    import pandas as pd

    from anisoada.report.presentation import (
        markdown_table,
        method_style,
        results_columns,
        results_labels,
    )
    from anisoada.schema import NO_VERDICT, TIE

    table = pd.read_csv(path)
    for column in ("optimizer", "winner", "predicted_winner", "observed_winner"):
        if column in table:
            table[column] = [
                key
                if key in ("n/a", TIE, NO_VERDICT) or pd.isna(key)
                else method_style(str(key)).name
                for key in table[column]
            ]
    columns = results_columns(results_labels(table)) if "winner" in table else None
    return markdown_table(table, columns, digits=4)
