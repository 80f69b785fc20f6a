"""``anisoada demo``: AdaGrad against SGD on an anisotropic stochastic quadratic.

For each batch size ``M`` at a fixed sample budget ``N = M·T``, every optimizer runs a grid of
learning rates at once — ``K`` independent runs stacked as the columns of a ``(d, K)`` parameter
with a ``(K,)`` learning-rate tensor — and the table reports each optimizer's best final loss
``f(w_{T+1}) − inf f`` with its learning rate. On an anisotropic problem the paper predicts
AdaGrad ahead of SGD at every batch size.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from anisoada.data import StochasticQuadratic
from anisoada.optim import OPTIMIZERS


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs; built once from the command line."""

    dim: int = 1000
    sample_budget: int = 16384
    batch_sizes: tuple[int, ...] = (8, 64, 512)
    optimizers: tuple[str, ...] = ("adagrad", "sgd")
    smoothness_exponent: float = 1.5
    noise_exponent: float = 1.0
    lr_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"Invalid dim value: {self.dim} (expected ≥ 1)")
        for batch_size in self.batch_sizes:
            if not 1 <= batch_size <= self.sample_budget:
                raise ValueError(
                    f"Invalid batch size value: {batch_size} (expected 1 ≤ M ≤ the sample "
                    f"budget {self.sample_budget})"
                )
        unknown = [name for name in self.optimizers if name not in OPTIMIZERS]
        if unknown:
            raise ValueError(f"Invalid optimizer value: {unknown} (known: {sorted(OPTIMIZERS)})")


@dataclass(frozen=True)
class DemoRow:
    """One line of the comparison table."""

    batch_size: int
    steps: int
    optimizer: str
    best_lr: float
    final_loss: float
    initial_loss: float


def run_demo(config: DemoConfig) -> list[DemoRow]:
    """Run every (batch size, optimizer) pair over the learning-rate grid; best rows only.

    Every optimizer sees the same problem, the same initial point ``w_1 = w* + 1`` and, for a given
    batch size, the same seed; its ``K`` learning rates run as independent columns.
    """
    problem = StochasticQuadratic.power_law(
        config.dim,
        smoothness_exponent=config.smoothness_exponent,
        noise_exponent=config.noise_exponent,
    )
    # float32, as in training: the losses are reported from a float64 copy of the iterates.
    lrs = torch.tensor(config.lr_grid, dtype=torch.float32)
    start = torch.ones(config.dim, len(lrs), dtype=torch.float32)
    initial_loss = float(problem.loss(start.double())[0])
    rows = []
    for batch_size in config.batch_sizes:
        steps = config.sample_budget // batch_size
        for name in config.optimizers:
            w = start.clone().requires_grad_(False)
            optimizer = OPTIMIZERS[name]([w], lr=lrs)
            generator = torch.Generator().manual_seed(config.seed)
            for _ in range(steps):
                w.grad = problem.stochastic_grad(w, batch_size, generator)
                optimizer.step()
            losses = problem.loss(w.double())
            # A diverged column (inf/NaN) must never be chosen as the best learning rate.
            losses = torch.where(torch.isfinite(losses), losses, torch.inf)
            best = int(torch.argmin(losses))
            rows.append(
                DemoRow(
                    batch_size=batch_size,
                    steps=steps,
                    optimizer=name,
                    best_lr=config.lr_grid[best],
                    final_loss=float(losses[best]),
                    initial_loss=initial_loss,
                )
            )
    return rows


def format_table(rows: list[DemoRow]) -> str:
    """The rows as an aligned text table, with each loss's ratio to the first optimizer's."""
    header = (
        f"{'batch':>6} {'steps':>6}  {'optimizer':<13}{'best lr':>9} {'final loss':>12} "
        f"{'ratio':>7}"
    )
    lines = [header, "-" * len(header)]
    baseline: dict[int, float] = {}
    for row in rows:
        baseline.setdefault(row.batch_size, row.final_loss)
        ratio = row.final_loss / baseline[row.batch_size] if baseline[row.batch_size] else 1.0
        lines.append(
            f"{row.batch_size:>6} {row.steps:>6}  {row.optimizer:<13}{row.best_lr:>9.3g} "
            f"{row.final_loss:>12.4e} {ratio:>7.2f}"
        )
    return "\n".join(lines)


def _main(args: argparse.Namespace) -> int:
    config = DemoConfig(
        dim=args.dim,
        sample_budget=args.samples,
        batch_sizes=tuple(args.batch_sizes),
        seed=args.seed,
    )
    rows = run_demo(config)
    print(
        f"AdaGrad vs SGD on a stochastic quadratic, d={config.dim}, L_j ∝ j^-"
        f"{config.smoothness_exponent}, σ_j ∝ j^-{config.noise_exponent}, "
        f"{config.sample_budget} samples per run, f(w_1) − inf f = {rows[0].initial_loss:.4g}"
    )
    print("(best learning rate per optimizer and batch size; ratio = loss / first optimizer's)")
    print(format_table(rows))
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "demo.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(DemoRow.__dataclass_fields__))
            writer.writeheader()
            for row in rows:
                writer.writerow(row.__dict__)
        print(f"wrote {out / 'demo.csv'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="short AdaGrad-vs-SGD comparison on a synthetic anisotropic problem",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = DemoConfig()
    parser.add_argument("--out", default=None, help="directory for demo.csv (optional)")
    parser.add_argument("--dim", type=int, default=defaults.dim, help="dimension d")
    parser.add_argument(
        "--samples", type=int, default=defaults.sample_budget, help="sample budget N = M·T"
    )
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=list(defaults.batch_sizes),
        help="batch sizes M",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="noise seed")
    parser.set_defaults(func=_main)
