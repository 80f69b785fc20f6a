"""``anisoada advise``: will AdaGrad beat SGD on this problem, and at which batch size?"""

from __future__ import annotations

import argparse
from pathlib import Path

from anisoada.cli._common import (
    add_budget,
    add_command,
    add_json,
    add_list,
    add_quiet,
    lr_range,
    open_fraction,
    output_directory,
    positive_int,
    print_json,
)

__all__ = ["register"]

_HELP = "will AdaGrad beat SGD on my problem, and at which batch size?"
_DESCRIPTION = """\
Per batch size: a verdict (AdaGrad / SGD / tie) with a confidence, and its evidence — measured
constants with validity checks (A2 certificate, finite minimiser, estimator convergence), the
paper's bound ratios in three framings (each marked with whether it can favour SGD) and two
theory-only verdicts, the noise scale B_simple, and a pilot at a printed fraction of the full
tuned sweep's cost: SGD, AdaGrad and AdaGrad-Norm searched on short runs (every learning rate a
lane), then SGD and AdaGrad at the full budget on 3 seeds. Rule: the pilot predicts the full
sweep's paired verdict; the bounds only break an unresolved tie (anisoada.advice.rule)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``advise`` subcommand."""
    parser = add_command(subparsers, "advise", _run, _HELP, _DESCRIPTION)
    parser.add_argument(
        "data", nargs="?", help="a registered LIBSVM name (a9a, w8a, …) or a LIBSVM/svmlight file"
    )
    parser.add_argument(
        "--problem",
        metavar="MODULE:FUNCTION",
        help="a PyTorch problem instead of DATA: a module or .py file and a function returning "
        "(model_factory, loss_fn, data) — see the README's 'Your own model'",
    )
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--test", type=Path, help="test file for a LIBSVM file")
    split.add_argument(
        "--holdout", type=open_fraction, help="hold out this fraction as the test set"
    )
    add_list(
        parser,
        "--batch-sizes",
        item=positive_int,
        default=[16, 128, 1024],
        help="batch sizes to advise on: 16,128,1024 or 16 128 1024",
    )
    add_budget(parser.add_mutually_exclusive_group(), default="2 epochs")
    parser.add_argument("--seeds", type=positive_int, default=3, help="pilot seeds (from 2 to 100)")
    parser.add_argument(
        "--lr-grid",
        type=lr_range,
        metavar="LOW:HIGH[:PER_DECADE]",
        help="the pilot's log-spaced learning-rate grid (default: 1e-3:1e2:2, one extension)",
    )
    parser.add_argument(
        "--out",
        type=output_directory,
        help="where the pilot and advice.json go (default: a temporary dir)",
    )
    parser.add_argument("--jobs", type=positive_int, default=1, help="worker processes")
    add_json(parser)
    add_quiet(parser, help="no progress bars")


def _run(args: argparse.Namespace) -> int:
    from anisoada.advice import DEFAULT_BUDGET, PilotSettings, advise
    from anisoada.train import Budget

    if (args.data is None) == (args.problem is None):
        raise ValueError("give DATA (a LIBSVM name or file) or --problem MODULE:FUNCTION, not both")
    if args.problem is not None and (args.test is not None or args.holdout is not None):
        raise ValueError(
            "--test and --holdout split a LIBSVM file; a --problem gives its own test data "
            "(a {'train': …, 'test': …} mapping)"
        )
    settings = PilotSettings(seeds=args.seeds)
    if args.lr_grid is not None:
        from anisoada.experiments import LRGrid

        low, high, per_decade = args.lr_grid
        settings = PilotSettings(
            grid=LRGrid(low=low, high=high, per_decade=per_decade, max_extensions=1),
            seeds=args.seeds,
        )
    budget = DEFAULT_BUDGET
    if args.epochs is not None:
        budget = Budget(epochs=args.epochs)
    if args.samples is not None:
        budget = Budget(samples=args.samples)
    advice = advise(
        args.data,
        problem=args.problem,
        batch_sizes=args.batch_sizes,
        budget=budget,
        out=args.out,
        pilot=settings,
        test=args.test,
        holdout=args.holdout,
        jobs=args.jobs,
        progress=not (args.quiet or args.json),
    )
    if args.json:
        print_json(advice.to_dict())
    else:
        print(advice.render())
    return 0
