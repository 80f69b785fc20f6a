"""Reproduction target ``theory``: the comparison of rates (Table 1) and the bounds' predictions.

``anisoada reproduce theory --out DIR/theory`` evaluates the paper's bounds (all **up to absolute
constants**, see :mod:`anisoada.theory`) on the constants other targets measured, and trains
nothing. It writes, into ``DIR/theory``:

1. ``table1.{csv,md,html,tex}`` — the symbolic comparison of rates
   (:func:`anisoada.theory.rates_table` / :func:`anisoada.theory.table1`);
2. per logistic problem ``<name>``: ``rates_<name>.csv`` — the same table with the measured
   coefficients filled in (bias and noise coefficients, AdaGrad ÷ SGD term ratios, critical batch
   size at the sample budget), and ``predicted_<name>.csv`` — :func:`anisoada.theory.predict` on
   a log grid of batch sizes from 1 to the budget ``N`` (plus the swept batch sizes; the report
   draws its bound-vs-batch-size curves);
3. when the ``lm`` target stored its per-layer gradient noise: ``lm_noise.csv`` — the noise
   anisotropy ``ρ_σ = ‖σ‖_1/(√d‖σ‖_2)`` of every layer at the tuned runs, and the ceiling
   ``√ρ_σ`` it puts on the nonconvex AdaGrad/SGD noise-term ratio ``(ρ_L ρ_σ²)^{1/4}``
   (``ρ_L ≤ 1`` is not measured for the language model);
4. ``reproduction.json`` — files, inputs and where each came from, provenance.

Inputs, read from the sibling targets' stored results only: ``DIR/logreg/table2.csv`` (``D_∞``,
``D_2``, ``λ_max``, ``n``), ``DIR/logreg/measure/<name>_{init,optimum}.npz`` (``L`` and ``σ``; as
in the ``logreg`` target, ``σ`` is the elementwise maximum of ``σ(w_1)`` and ``σ(w*)`` since A5
bounds the noise along the whole path), ``DIR/logreg/sweep/sweep.json`` (the sample budget and
the swept batch sizes) and ``DIR/lm/{table4.csv,sweep/noise.parquet}``. ``reproduce all`` runs
this target **after** ``logreg`` and ``lm`` for that reason; run on its own before them, it falls
back to the embedded synthetic problem of the ``quick`` preset (``make_sparse_logistic`` with the
defaults of :data:`anisoada.experiments.runs.logistic.SYNTHETIC_DEFAULTS`), whose ``L`` and ``σ(0)``
are exact closed forms and whose ``D_∞``, ``D_2`` are those of the planted weights, and
``reproduction.json`` says so. Re-running is cheap (seconds) and always re-reads the inputs, so
the outputs follow the latest stored measurements.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from anisoada._io import atomic_open
from anisoada.reproduce import Reproduction, ReproductionOutput, finish_target, write_csv

if TYPE_CHECKING:
    from anisoada.theory.table import Format

__all__ = [
    "REPRODUCTION",
    "ProblemConstants",
    "lm_noise_table",
    "logreg_problems",
    "run_theory",
    "synthetic_problem",
]

#: Batch sizes per prediction curve (log-spaced from 1 to the budget).
CURVE_POINTS = 61

_STAND_IN_SOURCES = ("synthetic", "rotated")


@dataclass(frozen=True, eq=False)
class ProblemConstants:
    """The constants the convex bounds need for one logistic-regression problem.

    Attributes:
        name: The dataset's name (as in the ``logreg`` tables).
        L: Smoothness vector (A2).
        sigma: Per-coordinate one-sample noise standard deviation (A5).
        D_inf: ℓ∞ diameter used by AdaGrad's bound (``‖w* − w_1‖_∞``).
        D_2: ℓ2 distance ``‖w* − w_1‖_2`` (reported; the box framing uses ``√d·D_∞``).
        lambda_max: Top Hessian-bound eigenvalue (SGD's tightest ℓ2 constant).
        budget: Sample budget ``N`` of the experiment.
        batch_sizes: Batch sizes the experiment swept (empty when it did not run).
        source: Where the constants came from (a path or a description).
        stand_in: Whether the data are a synthetic stand-in for the paper's datasets.
    """

    name: str
    L: np.ndarray
    sigma: np.ndarray
    D_inf: float
    D_2: float
    lambda_max: float
    budget: float
    batch_sizes: tuple[int, ...]
    source: str
    stand_in: bool

    def bound_inputs(self) -> dict[str, Any]:
        """What the box-framed bounds take (``rates_table``, ``predict``): ``L``, ``sigma``,
        ``D_inf``, ``lambda_max`` and the budget ``N``."""
        return {
            name: getattr(self, name) for name in ("L", "sigma", "D_inf", "lambda_max", "budget")
        }

    def record(self) -> dict[str, Any]:
        """JSON-ready scalars (no vectors)."""
        return {
            "name": self.name,
            "d": int(self.L.size),
            "L_l1": float(self.L.sum()),
            "L_linf": float(self.L.max()),
            "sigma_l1": float(self.sigma.sum()),
            "sigma_l2": float(np.linalg.norm(self.sigma)),
            "D_inf": self.D_inf,
            "D_2": self.D_2,
            "lambda_max": self.lambda_max,
            "budget": self.budget,
            "batch_sizes": list(self.batch_sizes),
            "source": self.source,
            "stand_in": self.stand_in,
        }


def logreg_problems(logreg_dir: str | Path) -> list[ProblemConstants]:
    """The problems the ``logreg`` target measured, read from its stored files.

    Args:
        logreg_dir: The ``logreg`` target's output directory.

    Returns:
        One :class:`ProblemConstants` per row of ``table2.csv`` (empty when the target has not
        stored its measurements).

    Raises:
        ValueError: a stored file is inconsistent (a vector's length differs from ``d``).
    """
    from anisoada.measure.summary import load_summary

    logreg_dir = Path(logreg_dir)
    table_path = logreg_dir / "table2.csv"
    sweep_path = logreg_dir / "sweep" / "sweep.json"
    if not table_path.is_file() or not sweep_path.is_file():
        return []
    table2 = pd.read_csv(table_path)
    config = json.loads(sweep_path.read_text())["config"]
    sources = {spec["name"]: spec.get("source", "libsvm") for spec in config["problems"]}
    budget_record = config["budget"]
    problems = []
    for record in table2.to_dict("records"):
        name = str(record["dataset"])
        stems = [logreg_dir / "measure" / f"{name}_{point}" for point in ("init", "optimum")]
        if not all(stem.with_suffix(".npz").is_file() for stem in stems):
            continue
        init, optimum = (load_summary(stem.with_suffix(".npz")) for stem in stems)
        if init.L.size != int(record["d"]):
            raise ValueError(
                f"{stems[0]}.npz holds d={init.L.size} but table2.csv says d={record['d']} for "
                f"{name!r}; re-run `anisoada reproduce logreg`"
            )
        n = int(record["n"])
        budget = budget_record.get("samples") or max(1, round(budget_record["epochs"] * n))
        problems.append(
            ProblemConstants(
                name=name,
                L=init.L,
                sigma=np.maximum(init.sigma, optimum.sigma),
                D_inf=float(record["D_inf"]),
                D_2=float(record["D_2"]),
                lambda_max=float(record["lambda_max"]),
                budget=float(budget),
                batch_sizes=tuple(int(size) for size in config["batch_sizes"]),
                source=str(logreg_dir / "measure"),
                stand_in=sources.get(name, "libsvm") in _STAND_IN_SOURCES,
            )
        )
    return problems


def synthetic_problem() -> ProblemConstants:
    """The embedded synthetic problem of the ``quick`` preset, with its exact constants.

    The training rows of ``make_sparse_logistic`` with
    :data:`~anisoada.experiments.runs.logistic.SYNTHETIC_DEFAULTS` (the same data as the ``logreg``
    target's ``synthetic`` dataset): ``L_j = (1/(4n)) Σ_k |(XᵀX)_jk|`` and ``λ_max(XᵀX/(4n))``
    from :mod:`anisoada.problems.logistic`, ``σ = σ(0)`` (the initial point), and ``D_∞``,
    ``D_2`` of the planted weights (the minimiser is not computed here); the budget is the
    preset's (48,000 samples: 6 epochs of these rows) and the batch sizes its sweep.
    """
    from anisoada.experiments import DatasetSpec, load_dataset
    from anisoada.problems.logistic import logistic_lambda_max, logistic_noise, logistic_smoothness
    from anisoada.reproduce.logreg import preset_config

    config = preset_config("quick")
    spec = next(
        spec
        for spec in config.problems
        if isinstance(spec, DatasetSpec) and spec.source == "synthetic"
    )
    data = load_dataset(spec)
    w_planted = _planted_weights(spec)
    n, d = data.X.shape
    return ProblemConstants(
        name=spec.name,
        L=logistic_smoothness(data.X),
        sigma=logistic_noise(data.X, data.y, np.zeros(d)),
        D_inf=float(np.abs(w_planted).max()),
        D_2=float(np.linalg.norm(w_planted)),
        lambda_max=float(logistic_lambda_max(data.X)),
        budget=float(config.budget.samples_for(n) or 0),
        batch_sizes=tuple(config.batch_sizes),
        source="embedded synthetic problem (exact L and σ(0); D from the planted weights)",
        stand_in=True,
    )


def _planted_weights(spec: Any) -> np.ndarray:
    return np.asarray(spec.synthetic_problem().w_star, dtype=np.float64)


def lm_noise_table(lm_dir: str | Path) -> pd.DataFrame | None:
    """Per-layer gradient-noise anisotropy of the ``lm`` target's tuned runs (None if absent).

    For every (batch size, optimizer) of ``table4.csv``, the rows of ``sweep/noise.parquet`` at
    the tuned learning rate give per layer ``ρ_σ = ‖σ‖_1/(√d‖σ‖_2)`` at each measured step.
    Columns: ``batch_size, optimizer, layer, d, steps`` (measured steps), ``rho_sigma_first``,
    ``rho_sigma_last``, ``rho_sigma_mean`` and ``noise_ratio_ceiling = √rho_sigma_mean`` — since
    the nonconvex AdaGrad/SGD noise-term ratio is ``(ρ_L ρ_σ²)^{1/4}`` and ``ρ_L ≤ 1``, it is at
    most ``√ρ_σ`` (layer ``"all"`` is the whole model; averaged over seeds per step).
    """
    lm_dir = Path(lm_dir)
    noise_path = lm_dir / "sweep" / "noise.parquet"
    table_path = lm_dir / "table4.csv"
    if not noise_path.is_file() or not table_path.is_file():
        return None
    noise = pd.read_parquet(noise_path)
    tuned = pd.read_csv(table_path)
    if noise.empty or tuned.empty:
        return None
    noise = noise.assign(rho=noise["sigma_l1"] / (np.sqrt(noise["d"]) * noise["sigma_l2"]))
    layers = list(dict.fromkeys(noise["layer"]))
    records = []
    for run in tuned.to_dict("records"):
        if not np.isfinite(run["best_lr"]):
            continue
        mine = noise[
            (noise["optimizer"] == run["optimizer"])
            & (noise["batch_size"] == run["batch_size"])
            & np.isclose(noise["lr"], run["best_lr"])
        ]
        for layer in layers:
            part = mine[mine["layer"] == layer]
            if part.empty:
                continue
            by_step = part.groupby("step")["rho"].mean().sort_index()
            mean = float(by_step.mean())
            records.append(
                {
                    "batch_size": int(run["batch_size"]),
                    "optimizer": run["optimizer"],
                    "lr": float(run["best_lr"]),
                    "layer": layer,
                    "d": int(part["d"].iloc[0]),
                    "steps": int(by_step.size),
                    "rho_sigma_first": float(by_step.iloc[0]),
                    "rho_sigma_last": float(by_step.iloc[-1]),
                    "rho_sigma_mean": mean,
                    "noise_ratio_ceiling": float(np.sqrt(mean)),
                }
            )
    return pd.DataFrame.from_records(records) if records else None


def _prediction(problem: ProblemConstants) -> pd.DataFrame:
    """``predict`` (convex, box framing ``D_2 = √d·D_∞``, with ``λ_max``) from 1 to ``N``."""
    from anisoada.theory import predict

    grid = np.geomspace(1.0, problem.budget, CURVE_POINTS)
    swept = [float(size) for size in problem.batch_sizes if size <= problem.budget]
    sizes = np.unique(np.concatenate([grid, swept]))
    return predict(batch_sizes=sizes, **problem.bound_inputs())


def _write_text(path: Path, text: str) -> Path:
    with atomic_open(path) as handle:
        handle.write(text)
    return path


def run_theory(
    preset: str,
    out: str | Path,
    *,
    jobs: int = 1,
    progress: bool = True,
    logreg_dir: str | Path | None = None,
    lm_dir: str | Path | None = None,
) -> ReproductionOutput:
    """Write Table 1 and the bounds' predictions (see the module docstring) into ``out``.

    Args:
        preset: ``"quick"`` or ``"paper"`` (only recorded: the inputs decide the problems).
        out: Output directory (conventionally ``DIR/theory``).
        jobs: Accepted for the registry's signature (nothing here is parallel).
        progress: Print one line per problem to stderr.
        logreg_dir: The ``logreg`` outputs to read; default ``out/../logreg``.
        lm_dir: The ``lm`` outputs to read; default ``out/../lm``.

    Returns:
        The :class:`~anisoada.reproduce.ReproductionOutput`.
    """
    from anisoada.theory import rates_table, table1

    if preset not in ("quick", "paper"):
        raise ValueError(f"preset must be 'quick' or 'paper'; got {preset!r}")
    started = time.perf_counter()
    out = Path(out)
    logreg_dir = Path(logreg_dir) if logreg_dir is not None else out.parent / "logreg"
    lm_dir = Path(lm_dir) if lm_dir is not None else out.parent / "lm"
    files: dict[str, Path] = {}
    tables: dict[str, Path] = {}

    symbolic = rates_table()
    files["table1.csv"] = write_csv(symbolic, out / "table1.csv")
    formats: tuple[tuple[Format, str], ...] = (
        ("markdown", "md"),
        ("html", "html"),
        ("latex", "tex"),
    )
    for fmt, suffix in formats:
        files[f"table1.{suffix}"] = _write_text(out / f"table1.{suffix}", table1(fmt))

    problems = logreg_problems(logreg_dir)
    fallback = not problems
    if fallback:
        problems = [synthetic_problem()]
    notes = []
    if fallback:
        notes.append(
            f"no stored logreg measurements under {logreg_dir}: predictions use the embedded "
            "synthetic problem's exact L and σ(0) (run `anisoada reproduce logreg` first for the "
            "measured ones)"
        )
    summary_lines = []
    for problem in problems:
        if progress:
            print(f"theory: bounds for {problem.name} (N = {problem.budget:.3g})", flush=True)
        rates = rates_table(**problem.bound_inputs())
        stem = f"rates_{problem.name}"
        files[f"{stem}.csv"] = write_csv(rates, out / f"{stem}.csv")
        tables[f"{problem.name}: measured coefficients, box W (D₂ = √d·D∞), up to constants"] = (
            files[f"{stem}.csv"]
        )
        prediction = _prediction(problem)
        name = f"predicted_{problem.name}"
        files[f"{name}.csv"] = write_csv(prediction, out / f"{name}.csv")
        at_swept = prediction[
            prediction["batch_size"].isin([float(s) for s in problem.batch_sizes])
            & (prediction["variant"] == "adagrad")
        ]
        if len(at_swept):
            summary_lines.append(
                f"{problem.name}: predicted AdaGrad/SGD bound ratio "
                f"{at_swept['ratio_to_sgd'].min():.3g}–{at_swept['ratio_to_sgd'].max():.3g} "
                f"over the swept batch sizes (up to constants)"
            )

    lm_noise = lm_noise_table(lm_dir)
    if lm_noise is not None:
        files["lm_noise.csv"] = write_csv(lm_noise, out / "lm_noise.csv")
    else:
        notes.append(
            f"no per-layer LM noise under {lm_dir / 'sweep'} (run `anisoada reproduce lm`)"
        )

    summary = "\n".join(
        ["Theory: Table 1 (rates, up to absolute constants) and predictions", *summary_lines]
        + [f"note: {note}" for note in notes]
    )
    return finish_target(
        out,
        "theory",
        preset,
        started,
        files,
        summary=summary,
        tables=tables,
        problems=[problem.record() for problem in problems],
        fallback_synthetic=fallback,
        lm_noise=lm_noise is not None,
        inputs={"logreg": str(logreg_dir), "lm": str(lm_dir)},
        notes=notes,
    )


REPRODUCTION = Reproduction(
    name="theory",
    description="Table 1 (rates) and the bounds' predictions from the stored measurements",
    run=run_theory,
)
