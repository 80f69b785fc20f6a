"""``anisoada measure`` (summary files) and ``anisoada smoothness-check`` (Figure 1)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anisoada.cli._common import (
    add_command,
    add_json,
    hidden_alias,
    non_negative_float,
    non_negative_int,
    output_stem,
    positive_float,
    positive_fraction,
    positive_int,
    print_json,
)
from anisoada.cli.lm import add_template_argument

if TYPE_CHECKING:
    from anisoada.measure.lm import LanguageModelProblem
    from anisoada.measure.summary import MeasurementSummary
    from anisoada.problems.logistic import Matrix

# Defaults of the smoothness check per GPT-2 preset: the tiny one finishes in minutes on a CPU,
# the 124M one is meant for a GPU.
_CHECK_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"examples": 32, "max_length": 128, "lr": 1e-3, "coordinates": 64},
    "gpt2": {"examples": 64, "max_length": 256, "lr": 1e-4, "coordinates": 256},
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``measure`` and ``smoothness-check`` subcommands."""
    _register_measure(subparsers)
    _register_check(subparsers)


_MEASURE_HELP = "measure per-coordinate smoothness L and noise sigma; write <stem>.npz + .json"
_MEASURE_TEXT = """\
Measure the constants the paper's bounds use — per-coordinate smoothness L, noise sigma (one
sample, mean-reduced loss), the Hessian diagonal and lambda_max — and write them as <stem>.npz
(vectors) + <stem>.json (norms, ratios, conventions), readable by `anisoada bound --from
<stem>.npz`. --task logreg uses closed forms; --task lm measures GPT-2 on instruction data with
torch.func."""

_CHECK_HELP = "Figure 1: secant smoothness vs gradient along a full-batch Adam run on GPT-2"
_CHECK_TEXT = """\
Run Adam with full gradients over a fixed subset of instruction data on GPT-2, record
per-coordinate secant ratios |d_j f(w) - d_j f(w')| / |w_j - w'_j| against |d_j f(w)| for a
seeded sample of coordinates of every parameter tensor, fit the affine envelope y <= L0 + L1 x
(per tensor and pooled), and write <stem>.npz (raw points), <stem>.json (envelopes, settings,
provenance) and <stem>.png (log-log scatter coloured by iteration). Presets: 'tiny' (CPU,
minutes), 'gpt2' (124M, GPU)."""


def _register_measure(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(subparsers, "measure", _run_measure, _MEASURE_HELP, _MEASURE_TEXT)
    parser.add_argument(
        "--task",
        choices=("logreg", "lm", "module"),
        default=None,
        help="logreg (closed forms), lm (GPT-2), or module (implied by --problem)",
    )
    parser.add_argument(
        "--problem",
        metavar="MODULE:FUNCTION",
        help="a PyTorch problem: a module or .py file and a function returning "
        "(model_factory, loss_fn, data), measured at its initial weights on the first "
        "--examples rows (default 256); see the README's 'Your own model'",
    )
    _add_stem_and_seed(parser, seed_help="seed of data subsets and probes")
    add_json(parser)
    logreg = parser.add_argument_group("logreg")
    logreg.add_argument(
        "--dataset",
        default="synthetic",
        help="logreg: a LIBSVM name (a9a, w8a, ...) or file; lm: an Alpaca JSON/JSONL file "
        "(.xz/.gz ok); or 'synthetic'",
    )
    logreg.add_argument(
        "--data-home",
        type=Path,
        default=None,
        help="directory holding libsvm/<file> (default: $ANISOADA_DATA, else ~/.cache/anisoada)",
    )
    logreg.add_argument(
        "--at",
        default="zero",
        metavar="POINT",
        help="where sigma and the Hessian diagonal are measured: 'zero' (the initial point of "
        "every logistic experiment, default), 'optimum' (L-BFGS minimiser) or FILE.npy",
    )
    logreg.add_argument("--synthetic-n", type=positive_int, default=20_000, help="rows (synthetic)")
    logreg.add_argument(
        "--synthetic-d", type=positive_int, default=2_000, help="features (synthetic)"
    )
    logreg.add_argument("--density", type=float, default=0.01, help="non-zero fraction (synthetic)")
    logreg.add_argument(
        "--exponent", type=float, default=1.0, help="feature-frequency power law (synthetic)"
    )
    lm = parser.add_argument_group("lm")
    _lm_arguments(lm, dataset=False)
    lm.add_argument(
        "--smoothness",
        choices=("hutchinson", "secant"),
        default="hutchinson",
        help="L from |Hutchinson diagonal| (default) or from perturbation secants",
    )
    lm.add_argument(
        "--probes", type=positive_int, default=32, help="Hutchinson probes (default 32)"
    )
    lm.add_argument(
        "--power-iterations", type=positive_int, default=50, help="per phase (default 50)"
    )
    lm.add_argument("--secant-radius", type=positive_float, default=1e-3, help="secant step")
    lm.add_argument("--secant-perturbations", type=positive_int, default=8)
    lm.add_argument(
        "--chunk-size", type=positive_int, default=16, help="examples per vmapped per-sample call"
    )
    lm.add_argument(
        "--envelope-from",
        type=Path,
        metavar="CHECK",
        help="attach per-tensor (L0, L1) from a smoothness-check record of the same model",
    )


def _lm_arguments(
    group: argparse.ArgumentParser | argparse._ArgumentGroup, *, dataset: bool = True
) -> None:
    group.add_argument(
        "--model",
        dest="preset",
        choices=tuple(_CHECK_PRESETS),
        default="tiny",
        help="GPT-2 preset: tiny (CPU) or gpt2 (124M)",
    )
    hidden_alias(group, "--preset", "preset", choices=tuple(_CHECK_PRESETS))
    group.add_argument(
        "--weights", default=None, help="local GPT-2 weights directory or cached hub id"
    )
    if dataset:
        group.add_argument(
            "--dataset",
            default="synthetic",
            help="Alpaca-format JSON/JSONL file (.xz/.gz ok) or 'synthetic'",
        )
    hidden_alias(group, "--data", "dataset")
    group.add_argument(
        "--examples", type=positive_int, default=None, help="size of the fixed subset"
    )
    group.add_argument(
        "--max-length", type=positive_int, default=None, help="longest tokenized row"
    )
    group.add_argument(
        "--full-vocabulary",
        action="store_true",
        help="keep all 50257 embedding rows (default for the tiny preset: only the used tokens, "
        "a different objective)",
    )
    add_template_argument(group, "prompt template, as `anisoada lm --template`")
    group.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda if any)")


def _register_check(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(subparsers, "smoothness-check", _run_check, _CHECK_HELP, _CHECK_TEXT)
    _add_stem_and_seed(parser, seed_help="seed of the data subset and the sampled coordinates")
    _lm_arguments(parser)
    parser.add_argument("--steps", type=positive_int, default=100, help="Adam steps (default 100)")
    parser.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate")
    parser.add_argument(
        "--coordinates-per-tensor",
        type=positive_int,
        default=None,
        help="sampled per parameter tensor",
    )
    parser.add_argument(
        "--perturbation-radius",
        type=positive_float,
        default=None,
        help="also record secants between each iterate and iterate + r*z (z = ±1)",
    )
    parser.add_argument(
        "--coverage", type=positive_fraction, default=0.99, help="envelope coverage, in (0, 1]"
    )
    parser.add_argument(
        "--min-relative-move",
        type=non_negative_float,
        default=1e-5,
        help="skip coordinates with |dw_j| <= this * |w_j| (default 1e-5)",
    )
    parser.add_argument(
        "--chunk-size", type=positive_int, default=None, help="examples per gradient piece (memory)"
    )
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only redraw <stem>.png from an existing <stem>.npz/.json (no training)",
    )
    add_json(parser)


def _add_stem_and_seed(parser: argparse.ArgumentParser, *, seed_help: str) -> None:
    parser.add_argument(
        "--out", type=output_stem, required=True, metavar="STEM", help="output stem"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help=seed_help)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _lm_problem(args: argparse.Namespace, preset_defaults: dict[str, Any]) -> LanguageModelProblem:
    """The measured LM objective: the data spec a training run would use, at initialisation."""
    from anisoada.data import LMDataSpec
    from anisoada.measure.lm import language_model_problem

    examples = args.examples or preset_defaults["examples"]
    compact = args.preset == "tiny" and not args.full_vocabulary
    spec = LMDataSpec(
        source=args.dataset,
        n_train=examples,
        n_eval=1,
        max_length=args.max_length or preset_defaults["max_length"],
        seed=args.seed,
        vocabulary="compact" if compact else "full",
        template=args.template,
    )
    return language_model_problem(
        spec,
        model=args.preset,
        weights=args.weights,
        n_examples=None,
        seed=args.seed,
        device=_device(args.device),
    )


def _run_measure(args: argparse.Namespace) -> int:
    summary = _measure_task(args)
    npz_path, json_path = summary.save(args.out)
    if args.json:
        print_json({**summary.scalars(), "npz": npz_path, "json": json_path})
        return 0
    _print_scalars(summary.scalars(), npz_path, json_path)
    return 0


def _measure_task(args: argparse.Namespace) -> MeasurementSummary:
    if args.problem is not None:
        if args.task not in (None, "module"):
            raise ValueError("--problem measures a PyTorch problem: drop --task (or --task module)")
        return _measure_module(args)
    if args.task in (None, "module"):
        raise ValueError("give --task logreg or --task lm, or --problem MODULE:FUNCTION")
    return _measure_logreg(args) if args.task == "logreg" else _measure_lm(args)


def _measure_module(args: argparse.Namespace) -> MeasurementSummary:
    """A user's problem at its initial weights (seed 0 of its runs) on its first rows."""
    import torch

    from anisoada.experiments.runs.module import ModuleSpec
    from anisoada.experiments.tasks.module import check_module_problem, index_batch, num_samples

    spec = ModuleSpec.create(args.problem)
    problem = spec.load()
    # The problem's contract (a scalar mean loss with a gradient, …) checked as a sweep does.
    check_module_problem(problem, spec.target, min(num_samples(problem.train), 8))
    torch.manual_seed(spec.init_seed(0, 0))
    model = problem.model_factory()
    rows = min(num_samples(problem.train), args.examples or 256)
    batch = index_batch(problem.train, torch.arange(rows))
    point = "initial weights (the problem's seed-0 initialisation)"
    record = {"problem": spec.to_dict(), "point": point, "samples": rows}
    return _summarize(args, model, problem.loss_fn, batch, record)


def _distances(X: Matrix, y: np.ndarray) -> dict[str, Any]:
    """``D_∞ = ‖w* − w_0‖_∞``, ``D_2 = ‖w* − w_0‖_2`` from ``w_0 = 0`` (every logistic run's
    start) to the minimiser, and whether it is finite (no reference point separates the data)."""
    from anisoada.problems.logistic import logistic_optimum

    optimum = logistic_optimum(X, y)
    separable = bool((y * np.asarray(X @ optimum.w).ravel() > 0).all())
    return {
        "D_inf": float(np.abs(optimum.w).max()),
        "D_2": float(np.linalg.norm(optimum.w)),
        "distance_reference": "w* - w_0, w_0 = 0, w* the logistic minimiser",
        "minimiser_converged": bool(optimum.converged),
        "separable": separable,
    }


def _measure_logreg(args: argparse.Namespace) -> MeasurementSummary:
    from anisoada.measure.summarize import summarize_logistic
    from anisoada.problems.logistic import logistic_optimum

    X, y, data_record = _logistic_data(args)
    if args.at == "zero":
        w = np.zeros(X.shape[1])
    elif args.at == "optimum":
        optimum = logistic_optimum(X, y)
        if not optimum.converged:
            raise ValueError(
                f"L-BFGS did not reach the logistic optimum ({optimum.message}; "
                f"max |gradient| {optimum.gradient_linf:.2e}); the data may be separable "
                "(no finite minimiser) — measure at --at zero instead"
            )
        w = optimum.w
    else:
        path = Path(args.at)
        if not path.is_file():
            raise FileNotFoundError(
                f"--at: expected 'zero', 'optimum' or a .npy file; {path} not found"
            )
        w = _weights(path, X.shape[1])
    distances = _distances(X, y)
    return summarize_logistic(X, y, w, provenance={**data_record, "point": args.at, **distances})


def _weights(path: Path, d: int) -> np.ndarray:
    """``--at FILE.npy``: ``d`` finite real weights, or a message naming the file."""
    import zipfile

    advice = "save the weights with numpy.save(FILE.npy, w)"
    try:
        stored = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = "not a .npy array of numbers" if "pickle" in str(error) else str(error)
        raise ValueError(
            f"--at {path} is damaged or not a weight vector ({reason}); {advice}"
        ) from None
    if not isinstance(stored, np.ndarray) or stored.dtype.kind not in "biuf":
        kind = "an .npz archive" if not isinstance(stored, np.ndarray) else str(stored.dtype)
        raise ValueError(f"--at {path} holds {kind}, not real numbers; {advice}")
    w = stored.astype(np.float64).reshape(-1)
    if w.size != d:
        raise ValueError(f"--at {path} holds {w.size} weights; the data has d={d}")
    if not np.isfinite(w).all():
        raise ValueError(f"--at {path} holds {int((~np.isfinite(w)).sum())} non-finite weights")
    return w


def _logistic_data(args: argparse.Namespace) -> tuple[Matrix, np.ndarray, dict[str, Any]]:
    if args.dataset == "synthetic":
        from anisoada.data import make_sparse_logistic

        options = {"n": args.synthetic_n, "d": args.synthetic_d}
        options.update(density=args.density, exponent=args.exponent, seed=args.seed)
        problem = make_sparse_logistic(**options)
        return problem.X, problem.y, {"data": "make_sparse_logistic", "data_options": options}
    from anisoada.data import load_libsvm

    data = load_libsvm(args.dataset, data_home=args.data_home)
    return data.X, data.y, {"data": str(args.dataset), "data_shape": list(data.X.shape)}


def _measure_lm(args: argparse.Namespace) -> MeasurementSummary:
    check = None
    if args.envelope_from is not None:  # read before measuring: a bad file fails in seconds
        from anisoada.measure.smoothness_check import SmoothnessCheckResult

        check = SmoothnessCheckResult.load(args.envelope_from)
    problem = _lm_problem(args, _CHECK_PRESETS[args.preset])
    problem.model.eval()  # dropout off: σ must measure sampling noise only
    summary = _summarize(
        args, problem.model, problem.loss_fn, problem.batch, {"task": "lm", **problem.provenance}
    )
    if check is not None:
        assert summary.block_sizes is not None  # summarize_model records the per-tensor blocks
        if tuple(check.block_sizes) != tuple(summary.block_sizes):
            raise ValueError(
                f"--envelope-from {args.envelope_from} was measured on a model with a different "
                "parameter layout; run smoothness-check with the same --preset/--data/--examples"
            )
        summary = summary.with_block_envelopes(
            check.fits,
            conventions={
                "L0_L1": f"per-tensor affine envelope of secant points from {args.envelope_from} "
                f"(coverage {check.config.coverage})"
            },
        )
    return summary


def _summarize(
    args: argparse.Namespace, model: Any, loss_fn: Any, batch: Any, provenance: dict[str, Any]
) -> MeasurementSummary:
    """:func:`~anisoada.measure.summarize.summarize_model` with the command's estimator options."""
    from anisoada.measure.summarize import summarize_model

    options = ("smoothness", "secant_radius", "secant_perturbations", "chunk_size", "seed")
    return summarize_model(
        model,
        loss_fn,
        batch,
        n_probes=args.probes,
        power_iterations=args.power_iterations,
        provenance=provenance,
        **{name: getattr(args, name) for name in options},
    )


def _run_check(args: argparse.Namespace) -> int:
    from anisoada.measure.smoothness_check import (
        SmoothnessCheckConfig,
        SmoothnessCheckResult,
        plot_smoothness_check,
        run_smoothness_check,
    )

    png = args.out.with_name(args.out.name + ".png")
    if args.replot:
        result = SmoothnessCheckResult.load(args.out)
        print(f"wrote {plot_smoothness_check(result, png)}")
        return 0
    defaults = _CHECK_PRESETS[args.preset]
    config = SmoothnessCheckConfig(
        steps=args.steps,
        lr=args.lr if args.lr is not None else defaults["lr"],
        coordinates_per_tensor=args.coordinates_per_tensor or defaults["coordinates"],
        perturbation_radius=args.perturbation_radius,
        min_relative_move=args.min_relative_move,
        coverage=args.coverage,
        data_chunk_size=args.chunk_size,
        seed=args.seed,
    )
    problem = _lm_problem(args, defaults)

    def progress(t: int, loss: float) -> None:
        if t % 10 == 0 or t == config.steps:
            print(f"step {t:4d}  loss {loss:.4f}", file=sys.stderr)

    result = run_smoothness_check(
        problem.model, problem.loss_fn, problem.batch, config, progress=progress
    )
    result = dataclasses.replace(
        result, provenance={**result.provenance, **problem.provenance, "preset": args.preset}
    )
    npz_path, json_path = result.save(args.out)
    plot_smoothness_check(result, png, title=f"GPT-2 ({args.preset}), Adam, full gradients")
    pooled = result.fits["pooled"]
    if args.json:
        print_json(
            {
                "points": int(result.x.size),
                "skipped": int(result.n_skipped),
                "pooled": {
                    "L0": pooled.L0,
                    "L1": pooled.L1,
                    "covered_fraction": pooled.covered_fraction,
                    "coverage": pooled.coverage,
                },
                "loss_first": float(result.losses[0]),
                "loss_last": float(result.losses[-1]),
                "files": [str(npz_path), str(json_path), str(png)],
            }
        )
        return 0
    print(
        f"{result.x.size} points, {result.n_skipped} skipped; pooled envelope "
        f"L0={pooled.L0:.4g} L1={pooled.L1:.4g} covering {pooled.covered_fraction:.3f} "
        f"(target {pooled.coverage}); loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}"
    )
    print(f"wrote {npz_path}, {json_path}, {png}")
    return 0


def _print_scalars(scalars: dict[str, Any], npz_path: Path, json_path: Path) -> None:
    width = max(len(k) for k in scalars)
    for key, value in scalars.items():
        shown = "n/a" if value is None else (f"{value:.6g}" if isinstance(value, float) else value)
        print(f"{key:<{width}}  {shown}")
    print(f"wrote {npz_path} and {json_path}")
