"""``anisoada bound``: the paper's bounds for given or measured ``L`` and ``σ``, per batch size."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anisoada._io import load_npz, read_json
from anisoada.cli._common import (
    Extend,
    add_command,
    add_json,
    hidden_alias,
    positive_float,
    print_json,
)
from anisoada.theory.prediction import predict
from anisoada.theory.ratios import rho_D, rho_L, rho_sigma, term_ratios

_DEFAULT_BATCH_SIZES = "1,8,64,512,4096"
_PRINTED_COLUMNS = (
    "batch_size",
    "iterations",
    "label",
    "bias",
    "noise",
    "bound",
    "dominant",
    "ratio_to_sgd",
    "verdict",
)


_HELP = "evaluate the paper's bounds for AdaGrad, SGD and AdaGrad-Norm per batch size"
_DESCRIPTION = """\
Evaluate the convergence bounds of AdaGrad, SGD and AdaGrad-Norm (up to absolute constants) at
each batch size for a fixed sample budget N = M·T, and say which guarantee is better. Vectors
come from --from FILE.npz (arrays L, sigma and optional L0, L1, as written by `anisoada
measure`; lambda_max from a sibling FILE.json) or from --L/--sigma. A vector option takes
comma- or space-separated numbers, or @FILE to read them from a text file."""

_FROM = "measurement summary (<stem>.npz, its stem, or its .json sibling)"
#: The vector options and what they give.
_VECTORS = (
    ("--L", "smoothness vector L (A2)"),
    ("--sigma", "noise vector σ (A5)"),
    ("--L0", "(L0,L1) smoothness: L0"),
    ("--L1", "(L0,L1) smoothness: L1"),
    ("--G", "per-coordinate gradient bound; adds Duchi et al.'s nonsmooth bound (convex)"),
)
#: Formats ``--plot`` writes, by file suffix (matplotlib's, less its raw-pixel dumps).
_PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "pgf", "jpg", "jpeg", "tif", "tiff")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bound`` subcommand."""
    parser = add_command(subparsers, "bound", run_bound, _HELP, _DESCRIPTION)
    source = parser.add_argument_group("inputs")
    source.add_argument("--from", dest="from_file", type=Path, metavar="FILE.npz", help=_FROM)
    for flag, text in _VECTORS:
        source.add_argument(
            flag, type=_vector_arg, nargs="+", action=Extend, metavar="LIST", help=text
        )
    scalars = parser.add_argument_group("problem constants")
    scalars.add_argument(
        "--D-inf", dest="D_inf", type=float, default=None, help="ℓ∞ diameter D_∞ (default 1)"
    )
    scalars.add_argument(
        "--D-2",
        dest="D_2",
        type=float,
        default=None,
        help="ℓ2 diameter D_2 (default √d·D_∞, a box)",
    )
    scalars.add_argument(
        "--distances",
        choices=("box", "measured"),
        default="box",
        help="box: D_∞ (default 1) and D_2 = √d·D_∞, where AdaGrad's bound is never the larger; "
        "measured: D_∞ = ‖w* − w_0‖_∞, D_2 = ‖w* − w_0‖_2 from the --from measurement (written "
        "by `anisoada measure --task logreg`), a comparison that can go either way",
    )
    scalars.add_argument("--delta", type=float, help="Δ = f(w_1) − inf f (nonconvex setting)")
    scalars.add_argument(
        "--lambda-max",
        dest="lambda_max",
        type=float,
        help="measured ℓ2 smoothness constant; adds 'SGD (λ_max)' (default: from FILE.json)",
    )
    scalars.add_argument(
        "--no-lambda-max",
        dest="use_lambda_max",
        action="store_false",
        help="ignore lambda_max from FILE.json",
    )
    run = parser.add_argument_group("comparison")
    run.add_argument(
        "--batch-sizes",
        dest="batch_sizes",
        type=_vector_arg,
        nargs="+",
        action=Extend,
        unique=True,
        default=list(_vector_arg(_DEFAULT_BATCH_SIZES)),
        metavar="M",
        help=f"batch sizes M (default {_DEFAULT_BATCH_SIZES})",
    )
    run.add_argument(
        "--samples", dest="budget", type=positive_float, default=1e6, help="sample budget N = M·T"
    )
    hidden_alias(run, "--budget", "budget", type=positive_float)
    run.add_argument(
        "--setting",
        choices=("convex", "nonconvex"),
        default="convex",
        help="convex: Thm 4.1 vs Eq. 6 (uses D_∞, D_2); nonconvex: Thm 4.3, ℓ1 stationarity "
        "(needs --delta; uses L0/L1 when given). Default convex",
    )
    add_json(run)
    run.add_argument(
        "--plot",
        type=_plot_path,
        metavar="FILE.png",
        help=f"also save the curves ({', '.join(_PLOT_FORMATS[:3])}, ... by the file's suffix)",
    )


def run_bound(args: argparse.Namespace) -> int:
    """Read the inputs, evaluate :func:`predict` and print the table (or JSON)."""
    inputs = _inputs(args)
    _set_distances(args, inputs)
    table = _predict(args, inputs, np.asarray(args.batch_sizes, dtype=float))
    if np.all(np.mod(table["batch_size"], 1) == 0):  # whole batch sizes print as integers
        table["batch_size"] = table["batch_size"].astype(np.int64)
    summary = _summary(args, inputs, table)
    if args.plot is not None:
        from anisoada.theory.plot import plot_prediction

        curves = _predict(args, inputs, np.geomspace(1.0, args.budget, 60))
        plot_prediction(curves).savefig(args.plot, dpi=150)
    if args.json:
        print_json({**summary, "rows": table.to_dict(orient="records")})
        return 0
    print(_render(summary, table))
    if args.plot is not None:
        print(f"wrote {args.plot}")
    return 0


def _predict(args: argparse.Namespace, inputs: dict[str, Any], batch_sizes: np.ndarray) -> Any:
    """:func:`predict` of the inputs at ``batch_sizes`` in the chosen setting."""
    convex = args.setting == "convex"
    return predict(
        L=inputs["L"],
        sigma=inputs["sigma"],
        batch_sizes=batch_sizes,
        budget=args.budget,
        setting=args.setting,
        D_inf=args.D_inf if convex else None,
        D_2=args.D_2 if convex else None,
        delta=args.delta,
        lambda_max=inputs["lambda_max"],
        L0=None if convex else inputs["L0"],
        L1=None if convex else inputs["L1"],
        G=inputs["G"],
    )


def _plot_path(text: str) -> Path:
    """``--plot FILE``: a file name whose suffix says the format, not a directory."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file such as plot.png")
    if path.suffix.lower().lstrip(".") not in _PLOT_FORMATS:
        raise argparse.ArgumentTypeError(
            f"{text}: the suffix gives the format; use one of "
            + ", ".join(f".{suffix}" for suffix in _PLOT_FORMATS)
        )
    return path


def _vector_arg(text: str) -> np.ndarray:
    """Numbers separated by commas or whitespace, or ``@FILE`` holding them."""
    source = "expected at least one number"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"{path} holds no numbers"
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as error:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise argparse.ArgumentTypeError(f"{path} is not a text file of numbers") from None
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise argparse.ArgumentTypeError(source)
    try:
        return np.array([float(token) for token in tokens])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers; got {text.strip()!r}") from None


def _npz_path(given: Path) -> Path:
    """``<stem>.npz`` from the stem itself, the ``.npz`` or its ``.json`` sibling."""
    candidates = [given]
    if given.suffix == ".json":
        candidates.insert(0, given.with_suffix(".npz"))
    elif given.suffix != ".npz":
        candidates.append(given.with_name(given.name + ".npz"))
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix == ".npz":
            return candidate
        if candidate.exists() and candidate.suffix == ".npz":
            raise ValueError(f"--from {candidate} is not a regular file; give the .npz file")
    raise FileNotFoundError(f"--from: no such file {given} (expected <stem>.npz with L and sigma)")


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The vectors and λ_max from ``--from`` (and its JSON sibling) or the options."""
    inputs: dict[str, Any] = {
        name: None if getattr(args, name) is None else np.asarray(getattr(args, name), dtype=float)
        for name in ("L", "sigma", "L0", "L1", "G")
    }
    lambda_max = args.lambda_max
    inputs["source"] = "options"
    if args.from_file is not None:
        for name in ("L", "sigma"):
            if inputs[name] is not None:
                raise ValueError(f"--{name} and --from both give {name}; use one of them")
        path = _npz_path(args.from_file)
        advice = "write it with `anisoada measure --out STEM` or pass --L/--sigma"
        arrays = load_npz(path, what="a measurement summary", advice=advice)
        for name in ("L", "sigma", "L0", "L1"):
            if name not in arrays:
                if name in ("L", "sigma"):
                    raise ValueError(
                        f"--from {path} has no array {name!r} (found {sorted(arrays)}); {advice}"
                    )
                continue
            if name in ("L0", "L1") and inputs[name] is not None:
                continue
            try:
                vector = np.asarray(arrays[name], dtype=np.float64).ravel()
            except (TypeError, ValueError):
                raise ValueError(
                    f"--from {path}: array {name!r} does not hold numbers; {advice}"
                ) from None
            if vector.size == 0:
                raise ValueError(f"--from {path}: array {name!r} is empty; {advice}")
            inputs[name] = vector
        inputs["source"] = str(path)
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            scalars = read_json(
                sidecar, what="a measurement summary's JSON", advice="delete or rewrite it"
            )
            if not isinstance(scalars, dict):
                raise ValueError(f"{sidecar} is not a measurement summary (not a JSON object)")
            d = scalars.get("d")
            if d is not None and (not isinstance(d, int) or d != inputs["L"].size):
                raise ValueError(
                    f"{sidecar} says d={d} but {path} holds {inputs['L'].size} coordinates"
                )
            record = scalars.get("provenance")
            if isinstance(record, dict):
                inputs["distances"] = {
                    key: float(record[key])
                    for key in ("D_inf", "D_2")
                    if isinstance(record.get(key), int | float)
                    and not isinstance(record.get(key), bool)
                    and math.isfinite(record[key])
                    and record[key] > 0
                }
            value = scalars.get("lambda_max")
            if lambda_max is None and value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{sidecar}: lambda_max must be a number; got {value!r}")
                lambda_max = float(value)
    if inputs["L"] is None or inputs["sigma"] is None:
        raise ValueError("give --from FILE.npz, or both --L and --sigma")
    if (inputs["L0"] is None) != (inputs["L1"] is None):
        raise ValueError("give both --L0 and --L1 or neither")
    if args.setting == "convex" and args.L0 is not None:
        raise ValueError(
            "--L0/--L1 enter only the nonconvex (Thm 5.3) bound; add --setting nonconvex"
        )
    if args.setting == "nonconvex" and args.G is not None:
        raise ValueError("--G (the nonsmooth bound) is a convex result; drop --setting nonconvex")
    if args.setting == "nonconvex" and args.delta is None:
        raise ValueError("--delta (Δ = f(w_1) − inf f) is required with --setting nonconvex")
    if args.setting == "convex" and args.delta is not None:
        raise ValueError("--delta enters only the nonconvex bounds; add --setting nonconvex")
    inputs["lambda_max"] = lambda_max if args.use_lambda_max else None
    return inputs


def _set_distances(args: argparse.Namespace, inputs: dict[str, Any]) -> None:
    """``args.D_inf`` / ``args.D_2`` by ``--distances`` (a box by default)."""
    if args.distances == "box":
        args.D_inf = 1.0 if args.D_inf is None else args.D_inf
        return
    if args.D_inf is not None or args.D_2 is not None:
        raise ValueError("--distances measured reads D_∞ and D_2; drop --D-inf/--D-2 (or use box)")
    if args.setting != "convex":
        raise ValueError(
            "--distances enters the convex bounds only; drop it or use --setting convex"
        )
    measured = inputs.get("distances") or {}
    if "D_inf" not in measured or "D_2" not in measured:
        raise ValueError(
            "--distances measured needs a measurement with D_∞ and D_2 (`anisoada measure --task "
            "logreg --out STEM`, then --from STEM.npz)"
        )
    args.D_inf, args.D_2 = measured["D_inf"], measured["D_2"]


def _optional(function: Callable[..., Any], *arguments: Any, **keywords: Any) -> Any:
    """A ratio, or None where it is undefined (a zero vector)."""
    try:
        return function(*arguments, **keywords)
    except ValueError:
        return None


def _summary(
    args: argparse.Namespace, inputs: dict[str, Any], table: pd.DataFrame
) -> dict[str, Any]:
    L, sigma = np.asarray(inputs["L"]), np.asarray(inputs["sigma"])
    d = int(L.size)
    convex = args.setting == "convex"
    D_2 = (args.D_2 if args.D_2 is not None else math.sqrt(d) * args.D_inf) if convex else None
    ratios: dict[str, float | None] = {
        "rho_L": _optional(rho_L, L),
        "rho_sigma": _optional(rho_sigma, sigma),
        "rho_D": _optional(rho_D, args.D_inf, D_2, d) if convex else None,
    }
    for name, lambda_max in (("", None), ("_lambda_max", inputs["lambda_max"])):
        if name and lambda_max is None:
            continue
        terms = _optional(
            term_ratios,
            L,
            sigma,
            setting=args.setting,
            D_inf=args.D_inf if convex else None,
            D_2=D_2,
            lambda_max=lambda_max,
        )
        ratios[f"bias_ratio{name}"] = None if terms is None else terms.bias
        ratios[f"noise_ratio{name}"] = None if terms is None else terms.noise
    critical = table.drop_duplicates("variant").set_index("variant")["critical_batch_size"]
    return {
        "setting": args.setting,
        "source": inputs["source"],
        "d": d,
        "budget": float(args.budget),
        "constants_note": "all bounds up to absolute constants (set to 1)",
        "inputs": {
            "D_inf": args.D_inf if convex else None,
            "distances": args.distances if convex else None,
            "D_2": D_2,
            "delta": args.delta,
            "lambda_max": inputs["lambda_max"],
        },
        "norms": {
            "L_l1": float(L.sum()),
            "L_linf": float(L.max()),
            "sigma_l1": float(sigma.sum()),
            "sigma_l2": float(np.linalg.norm(sigma)),
        },
        "ratios": ratios,
        "critical_batch_sizes": {k: float(v) for k, v in critical.items()},
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def _render(summary: dict[str, Any], table: pd.DataFrame) -> str:
    norms, ratios, inputs = summary["norms"], summary["ratios"], summary["inputs"]
    lines = [
        f"anisoada bound — {summary['setting']} setting, d={summary['d']}, sample budget "
        f"N={summary['budget']:.4g}; bounds up to absolute constants (set to 1)",
        f"source: {summary['source']}",
        f"‖L‖_1={_fmt(norms['L_l1'])}  ‖L‖_∞={_fmt(norms['L_linf'])}  "
        f"‖σ‖_1={_fmt(norms['sigma_l1'])}  ‖σ‖_2={_fmt(norms['sigma_l2'])}",
    ]
    if summary["setting"] == "convex":
        lines.append(f"D_∞={_fmt(inputs['D_inf'])}  D_2={_fmt(inputs['D_2'])}")
    else:
        lines.append(f"Δ={_fmt(inputs['delta'])}")
    if inputs["lambda_max"] is not None:
        lines[-1] += f"  λ_max={_fmt(inputs['lambda_max'])}"
    lines.append(
        f"ρ_L={_fmt(ratios['rho_L'])}  ρ_σ={_fmt(ratios['rho_sigma'])}"
        + (f"  ρ_D={_fmt(ratios['rho_D'])}" if summary["setting"] == "convex" else "")
        + f"   AdaGrad/SGD terms: bias {_fmt(ratios['bias_ratio'])}, "
        f"noise {_fmt(ratios['noise_ratio'])}"
    )
    if "bias_ratio_lambda_max" in ratios:
        lines[-1] += (
            f"; vs SGD (λ_max): bias {_fmt(ratios['bias_ratio_lambda_max'])}, "
            f"noise {_fmt(ratios['noise_ratio_lambda_max'])}"
        )
    terms = [ratios.get(key) for key in ("bias_ratio", "noise_ratio")]
    if summary["setting"] == "convex" and all(t is not None and t <= 1 + 1e-12 for t in terms):
        lines.append(
            "note: here AdaGrad's bound is never the larger (both term ratios ≤ 1, as in any "
            "box): 'better' is an identity, not a prediction; --distances measured (or --D-2) "
            "gives a comparison that can go either way"
        )
    labels = table.drop_duplicates("variant").set_index("variant")["label"]
    lines.append(
        "critical batch size (bias = noise at N): "
        + ", ".join(
            f"{labels[variant]} {_fmt(value)}"
            for variant, value in summary["critical_batch_sizes"].items()
        )
    )
    columns = list(_PRINTED_COLUMNS)
    if "verdict_lambda_max" in table.columns:
        columns += ["ratio_to_sgd_lambda_max", "verdict_lambda_max"]
    shown = table[columns].rename(
        columns={"ratio_to_sgd_lambda_max": "ratio_to_sgd_λ", "verdict_lambda_max": "verdict_λ"}
    )
    body = shown.to_string(
        index=False,
        formatters={
            "batch_size": "{:g}".format,
            "iterations": "{:d}".format,
            "bias": "{:.4g}".format,
            "noise": "{:.4g}".format,
            "bound": "{:.4g}".format,
            "ratio_to_sgd": "{:.3f}".format,
            "ratio_to_sgd_λ": "{:.3f}".format,
        },
    )
    return "\n".join([*lines, "", body])
