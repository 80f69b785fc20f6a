"""``anisoada demo``: AdaGrad against SGD on an anisotropic stochastic quadratic, in seconds.

A sweep (the one sweep engine, :func:`anisoada.experiments.run_sweep`) of a power-law quadratic
(:class:`anisoada.experiments.QuadraticSpec`: ``L_j ∝ (j+1)^(−a)``, ``σ_j ∝ (j+1)^(−b)``, every
constant exact) at several batch sizes and one sample budget ``N = M·T``: every optimizer runs a
learning-rate grid as the lanes of one run, and the table reports each optimizer's best final
optimality gap ``f(w_{T+1}) − inf f`` with its learning rate. On an anisotropic problem the
paper predicts AdaGrad ahead of SGD at every batch size.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from anisoada.experiments import SweepConfig

__all__ = ["DemoConfig", "demo_sweep", "format_table", "register"]


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs; built once from the command line."""

    dim: int = 1000
    sample_budget: int = 16384
    batch_sizes: tuple[int, ...] = (8, 64, 512)
    optimizers: tuple[str, ...] = ("adagrad", "sgd")
    smoothness_exponent: float = 1.5
    noise_exponent: float = 1.0
    seed: int = 0


def demo_sweep(config: DemoConfig) -> SweepConfig:
    """The demo as a :class:`~anisoada.experiments.SweepConfig` (lr grid 1e-3 … 3, extended)."""
    from anisoada.experiments import LRGrid, OptimizerSpec, QuadraticSpec, SweepConfig
    from anisoada.train import Budget

    return SweepConfig(
        name="demo",
        problems=(
            QuadraticSpec(
                dim=config.dim,
                smoothness_exponent=config.smoothness_exponent,
                noise_exponent=config.noise_exponent,
            ),
        ),
        optimizers=tuple(OptimizerSpec.create(name) for name in config.optimizers),
        batch_sizes=tuple(config.batch_sizes),
        budget=Budget(samples=config.sample_budget),
        lr_grid=LRGrid(low=1e-3, high=3.0, per_decade=2, max_extensions=2),
        base_seed=config.seed,
        evaluations=4,
    )


def format_table(selection: pd.DataFrame) -> str:
    """The selection as an aligned text table, with each loss's ratio to the first optimizer's."""
    header = f"{'batch':>6}  {'optimizer':<13}{'best lr':>9} {'final gap':>12} {'ratio':>7}"
    lines = [header, "-" * len(header)]
    for batch_size, part in selection.groupby("batch_size", sort=True):
        baseline = float(part["train_loss"].iloc[0])
        for record in part.to_dict("records"):
            ratio = record["train_loss"] / baseline if baseline else 1.0
            lines.append(
                f"{int(batch_size):>6}  {record['optimizer']:<13}{record['best_lr']:>9.3g} "
                f"{record['train_loss']:>12.4e} {ratio:>7.2f}"
            )
    return "\n".join(lines)


def _main(args: argparse.Namespace) -> int:
    from anisoada.experiments import SweepFailedError, run_sweep

    config = DemoConfig(
        dim=args.dim,
        sample_budget=args.samples,
        batch_sizes=tuple(args.batch_sizes),
        seed=args.seed,
    )
    sweep = demo_sweep(config)
    with tempfile.TemporaryDirectory(prefix="anisoada-demo-") as scratch:
        out = Path(args.out) if args.out is not None else Path(scratch)
        try:
            result = run_sweep(sweep, out, progress=False)
        except SweepFailedError as error:
            if args.out is not None:
                raise
            # The details would be in the scratch directory, removed on the way out.
            failures = error.result.failures
            raise ValueError(
                f"{len(failures)} of the demo's runs failed ({error.reason}); give "
                "--out DIR to keep the runs and their failed.json"
            ) from None
        order = {name: position for position, name in enumerate(config.optimizers)}
        selection = result.selection.sort_values(
            ["batch_size", "optimizer"], key=lambda c: c.map(order) if c.name == "optimizer" else c
        )
        if args.json:
            from anisoada.cli._common import print_json, table_records

            print_json(
                {
                    "dim": config.dim,
                    "samples": config.sample_budget,
                    "smoothness_exponent": config.smoothness_exponent,
                    "noise_exponent": config.noise_exponent,
                    "selection": table_records(
                        selection[["batch_size", "optimizer", "best_lr", "train_loss"]]
                    ),
                    "out": None if args.out is None else out,
                }
            )
            return 0
        print(
            f"AdaGrad vs SGD on a stochastic quadratic, d={config.dim}, L_j ∝ (j+1)^-"
            f"{config.smoothness_exponent}, σ_j ∝ (j+1)^-{config.noise_exponent}, "
            f"{config.sample_budget} samples per run"
        )
        print("(best learning rate per optimizer and batch size; ratio = gap / first optimizer's)")
        print(format_table(selection))
        if args.out is not None:
            print(f"wrote {out / 'selection.csv'}")
    return 0


_DESCRIPTION = """\
AdaGrad against SGD on an anisotropic stochastic quadratic, in seconds.

A sweep of a power-law quadratic (L_j ∝ (j+1)^-a, σ_j ∝ (j+1)^-b, every constant exact) at
several batch sizes and one sample budget N = M·T: every optimizer runs a learning-rate grid
(1e-3 … 3, extended at the edges), and the table reports each optimizer's best final
optimality gap f(w_T+1) − inf f with its learning rate. On an anisotropic problem the paper
predicts AdaGrad ahead of SGD at every batch size."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand."""
    from anisoada.cli._common import (
        add_json,
        add_list,
        non_negative_int,
        output_directory,
        positive_int,
    )

    parser = subparsers.add_parser(
        "demo",
        help="short AdaGrad-vs-SGD comparison on a synthetic anisotropic problem",
        description=_DESCRIPTION,
    )
    defaults = DemoConfig()
    parser.add_argument(
        "--out", type=output_directory, default=None, help="keep the sweep in this directory"
    )
    parser.add_argument("--dim", type=positive_int, default=defaults.dim, help="dimension d")
    parser.add_argument(
        "--samples",
        type=positive_int,
        default=defaults.sample_budget,
        help="sample budget N = M·T per run",
    )
    add_list(
        parser,
        "--batch-sizes",
        item=positive_int,
        default=defaults.batch_sizes,
        help="batch sizes M",
        metavar="M",
    )
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="noise seed")
    add_json(parser)
    parser.set_defaults(func=_main)
