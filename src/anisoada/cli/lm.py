"""``anisoada lm``: GPT-2 instruction tuning, one run or a sweep, single process or ``torchrun``.

Examples::

    anisoada lm --out results/lm --optimizer sgd adagrad --lr-grid sgd=0.3,1,3 \\
        --lr-grid adagrad=0.003,0.01,0.03 --batch-sizes 256 512 --samples 16384 \\
        --micro-batch-size 64 --vocabulary compact
    torchrun --nproc_per_node=8 -m anisoada lm --model gpt2 --weights openai-community/gpt2 \\
        --dataset alpaca_data.json --n-train 0 --batch-sizes 256 --micro-batch-size 16 ...
    anisoada lm --executor ray --ray-address auto --device cuda ...   # one GPU per run

One run across several GPUs is ``torchrun``; a sweep of many runs on a GPU cluster is
``--executor ray`` (each run a Ray task holding one GPU).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from anisoada.cli import _common as common

__all__ = ["register"]


_HELP = "GPT-2 instruction tuning (SGD vs AdaGrad), single process or torchrun DDP"
_DESCRIPTION = """\
Train GPT-2 on instruction data with response-only loss: the product of the optimizers, batch
sizes and learning rates given, each run resumable; prints the best learning rate per optimizer
and batch size. Run under `torchrun --nproc_per_node=N -m anisoada lm ...` for data
parallelism."""


def register(subparsers: Any) -> None:
    """Add the ``lm`` subcommand."""
    add_lm_arguments(common.add_command(subparsers, "lm", _main, _HELP, _DESCRIPTION))


def add_lm_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``anisoada lm``."""
    parser.add_argument(
        "--out", type=common.output_directory, default="results/lm", help="results directory"
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="tiny", help="GPT-2 preset: tiny or gpt2 (124M)")
    model.add_argument(
        "--weights",
        default=None,
        help="pretrained weights: a saved-model directory or a Hugging Face id in the local "
        "cache (never downloaded); default: random initialisation",
    )
    model.add_argument(
        "--dropout", type=common.unit_fraction, default=None, help="override dropout (0)"
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        dest="data",
        metavar="DATASET",
        default="synthetic",
        help="'synthetic' or an Alpaca JSON/JSONL file (.gz/.xz ok)",
    )
    common.hidden_alias(data, "--data", "data")
    data.add_argument(
        "--n-train",
        type=common.non_negative_int,
        default=4096,
        help="training examples (0: all but held-out)",
    )
    data.add_argument("--n-eval", type=common.positive_int, default=256, help="held-out examples")
    data.add_argument(
        "--max-length", type=common.positive_int, default=256, help="longest tokenised example"
    )
    data.add_argument(
        "--data-seed", type=common.non_negative_int, default=0, help="seed of the held-out draw"
    )
    data.add_argument(
        "--vocabulary",
        choices=("full", "compact"),
        default="full",
        help="compact: keep only the tokens the data uses (CPU-sized output layer)",
    )
    add_template_argument(data, "prompt: the Alpaca-style one with its preamble, or the sections")
    opt = parser.add_argument_group("optimisation")
    common.add_list(
        opt,
        "--optimizer",
        default=["sgd", "adagrad"],
        help=f"optimizers, of {common.optimizer_names()}",
        metavar="NAME",
    )
    common.add_list(
        opt, "--lr", item=common.positive_float, help="lr grid of every optimizer", metavar="LR"
    )
    opt.add_argument(
        "--lr-grid",
        action="append",
        default=[],
        metavar="NAME=LR,LR,...",
        help="lr grid of one optimizer (repeatable; overrides --lr)",
    )
    opt.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="optimizer option, e.g. adagrad.eps=1e-8 (repeatable)",
    )
    common.add_list(
        opt,
        "--batch-sizes",
        dest="batch_size",
        item=common.positive_int,
        default=[256],
        help="effective batch sizes",
        metavar="M",
        old_spelling="--batch-size",
    )
    opt.add_argument(
        "--micro-batch-size",
        type=common.positive_int,
        default=None,
        help="examples per forward per process (default: with the noise measured, two "
        "micro-batches per step, the measurement's minimum; without, the whole share of a step)",
    )
    budget = opt.add_mutually_exclusive_group()
    common.add_budget(budget, default="1 epoch")
    opt.add_argument("--schedule", choices=("constant", "linear", "cosine"), default="constant")
    opt.add_argument(
        "--warmup-ratio", type=common.unit_fraction, default=0.0, help="warm-up fraction"
    )
    opt.add_argument(
        "--final-lr-ratio", type=common.unit_fraction, default=0.0, help="end of the decay"
    )
    opt.add_argument(
        "--clip-norm", type=common.positive_float, default=None, help="gradient-norm clipping"
    )
    opt.add_argument("--seeds", type=common.positive_int, default=1, help="seeds per point")
    opt.add_argument(
        "--base-seed", type=common.non_negative_int, default=0, help="seed everything derives from"
    )
    opt.add_argument(
        "--max-extensions",
        type=common.non_negative_int,
        default=0,
        help="grid extensions when the best lr is at an edge",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--evaluations", type=common.positive_int, default=20, help="evaluation points per run"
    )
    run.add_argument("--no-noise", action="store_true", help="skip gradient-noise measurement")
    run.add_argument(
        "--checkpoint-every", type=common.positive_int, default=None, help="steps per checkpoint"
    )
    run.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    run.add_argument(
        "--group-by-length",
        action="store_true",
        help="similar lengths share a micro-batch (less padding; same gradient)",
    )
    run.add_argument("--eval-batch-size", type=common.positive_int, default=32)
    run.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )
    common.add_quiet(run, help="no progress bar or per-evaluation log lines")
    common.add_json(run)
    run.add_argument(
        "--jobs",
        type=common.positive_int,
        default=1,
        help="runs trained side by side (single process only)",
    )
    from anisoada.cli.sweep import add_executor_arguments

    add_executor_arguments(parser)


#: Options of :class:`~anisoada.experiments.LMSpec` taken from the flag of the same name.
_SPEC_OPTIONS = ("schedule", "warmup_ratio", "final_lr_ratio", "clip_norm", "checkpoint_every",
                 "precision", "eval_batch_size", "dropout", "group_by_length",
                 "device")  # fmt: skip


def add_template_argument(group: argparse._ActionsContainer, help: str) -> None:
    """``--template``: the prompt template of the instruction data (``anisoada lm``'s and the
    measurements' of a GPT-2 model)."""
    from anisoada.data import LM_TEMPLATES

    group.add_argument("--template", choices=LM_TEMPLATES, default="alpaca", help=help)


def sweep_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~anisoada.experiments.SweepConfig` (one :class:`LMSpec`) the options describe."""
    from anisoada.cli.sweep import executor_fields
    from anisoada.data import LMDataSpec
    from anisoada.experiments import (
        LMSpec,
        LRGrid,
        OptimizerSpec,
        SweepConfig,
        parse_optimizer_options,
    )
    from anisoada.train import Budget

    options = parse_optimizer_options(args.option, args.optimizer)
    grids = _lr_grids(args.lr, args.lr_grid, args.optimizer)
    _check_data_source(args.data)
    data = LMDataSpec(
        source=args.data,
        n_train=args.n_train or None,
        n_eval=args.n_eval,
        max_length=args.max_length,
        seed=args.data_seed,
        vocabulary=args.vocabulary,
        template=args.template,
    )
    spec = LMSpec(
        data=data,
        model=args.model,
        weights=args.weights,
        micro_batch_size=args.micro_batch_size,
        noise_microbatches=2 if args.micro_batch_size is None and not args.no_noise else None,
        measure_noise=not args.no_noise,
        **{name: getattr(args, name) for name in _SPEC_OPTIONS},
    )
    if args.samples is not None:
        budget = Budget(samples=args.samples)
    else:
        budget = Budget(epochs=1.0 if args.epochs is None else args.epochs)
    return SweepConfig(
        name="lm",
        problems=(spec,),
        optimizers=tuple(
            OptimizerSpec.create(
                name,
                options=options[name],
                lr_grid=LRGrid.explicit(grids[name], max_extensions=args.max_extensions),
            )
            for name in args.optimizer
        ),
        batch_sizes=tuple(args.batch_size),
        budget=budget,
        seeds=args.seeds,
        base_seed=args.base_seed,
        evaluations=args.evaluations,
        divergence_factor=3.0,
        **executor_fields(args),
    )


def _lr_grids(
    lrs: list[float] | None, per_optimizer: list[str], optimizers: list[str]
) -> dict[str, tuple[float, ...]]:
    """Each optimizer's learning rates: ``--lr`` for all, ``--lr-grid NAME=LR,...`` for one."""
    grids = {name: tuple(lrs) for name in optimizers} if lrs else {}
    given: set[str] = set()
    for item in per_optimizer:
        name, _, values = item.partition("=")
        if name not in optimizers:
            raise ValueError(
                f"--lr-grid {item!r}: {name!r} is not among --optimizer ({', '.join(optimizers)})"
            )
        if name in given:
            raise ValueError(f"--lr-grid gives {name!r} twice; give one --lr-grid per optimizer")
        given.add(name)
        try:
            grids[name] = tuple(common.positive_float(v) for v in values.split(","))
        except argparse.ArgumentTypeError as error:
            raise ValueError(f"--lr-grid {item!r}: expected NAME=LR,LR,... ({error})") from None
    missing = [name for name in optimizers if name not in grids]
    if missing:
        raise ValueError(f"no learning rate for {missing}: give --lr or --lr-grid NAME=...")
    return grids


def _check_data_source(source: str) -> None:
    """Refuse a ``--dataset`` that is not Alpaca data before any run starts (each run would
    fail on it in turn): a missing file, a directory, a file that does not parse."""
    import warnings
    from pathlib import Path

    from anisoada.data import load_alpaca

    path = Path(source).expanduser()
    if source == "synthetic":
        return
    if path.exists():
        with warnings.catch_warnings():  # the runs report skipped records; say it once
            warnings.simplefilter("ignore")
            load_alpaca(path)
        return
    looks_like_path = source.startswith((".", "/", "~")) or path.suffix.lower() in (
        ".json",
        ".jsonl",
        ".gz",
        ".xz",
        ".bz2",
    )
    if looks_like_path:
        raise FileNotFoundError(
            f"--dataset {source}: no such file; give an Alpaca JSON/JSONL file or 'synthetic'"
        )


def log_line(line: str) -> None:
    """Print one progress line to stderr (module-level: worker processes can pickle it)."""
    print(line, file=sys.stderr, flush=True)


def _main(args: argparse.Namespace) -> int:
    from anisoada.experiments import run_sweep
    from anisoada.train import init_distributed, shutdown_distributed

    sweep = sweep_from_args(args)
    context = init_distributed(device=None if args.device == "auto" else args.device)
    try:
        log = None if args.quiet else log_line
        result = run_sweep(
            sweep, args.out, context=context, log=log, jobs=args.jobs, progress=not args.quiet
        )
    finally:
        shutdown_distributed(context)
    if context.is_main:
        columns = ["optimizer", "batch_size", "best_lr", "train_loss", "eval_loss", "lrs_tried"]
        if args.json:
            common.print_json(
                {
                    "selection": common.table_records(result.selection[columns]),
                    "results": result.root,
                    "wall_time_s": result.wall_time,
                }
            )
            return 0
        print(result.selection[columns].to_string(index=False))
        print(f"results in {result.root} ({result.wall_time:.1f} s)")
    return 0
