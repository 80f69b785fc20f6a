"""Reproduction of the paper's logistic-regression evidence: AdaGrad vs SGD across batch sizes.

``anisoada reproduce logreg --preset quick|paper --out DIR`` runs, into ``DIR``:

1. a sweep (:func:`anisoada.experiments.run_sweep`) of SGD, AdaGrad and AdaGrad-Norm over batch
   sizes
   and a learning-rate grid at a fixed sample budget, each optimizer's learning rate tuned per
   batch size by final training loss (``DIR/sweep/``);
2. the measured constants of each dataset (Table 2 of the paper): ``‖L‖_1``, ``‖L‖_∞``,
   ``λ_max``, ``‖σ‖_1``, ``‖σ‖_2``, ``ρ_L``, ``ρ_σ`` from the closed forms of
   :mod:`anisoada.problems.logistic`, with ``σ`` at the initial point ``w_1 = 0`` and at the
   minimiser
   ``w*`` (:func:`anisoada.problems.logistic_optimum`, L-BFGS to a gradient norm of ~1e-9; it
   also gives ``f*`` and the diameters
   ``D_∞ = ‖w* − w_1‖_∞``, ``D_2 = ‖w* − w_1‖_2``) — saved as measurement summaries
   (``DIR/measure/<dataset>_{init,optimum}.{npz,json}``, readable by ``anisoada bound --from``);
3. the theory's predicted advantage (:func:`anisoada.theory.predict`, convex bounds, up to
   absolute constants) next to the observed one, the ratio of optimality gaps
   ``(f_AdaGrad − f*) / (f_SGD − f*)`` at the tuned learning rates;
4. tables (CSV), named in :mod:`anisoada.schema`; the report draws the figures from them.

Presets: ``quick`` — the bundled a9a, the embedded synthetic anisotropic problem and its
randomly rotated twin (the control: same spectrum, no coordinate structure), no files needed,
about 30 s on two cores; ``paper`` — a9a and w8a (plus every other LIBSVM binary set found in
the data home), batch sizes 8 … 4096.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anisoada._io import atomic_open, write_json
from anisoada.experiments import (
    DatasetSpec,
    LRGrid,
    OptimizerSpec,
    SweepConfig,
    load_dataset,
    provenance,
    run_sweep,
)
from anisoada.experiments.runs import dataset_optimum
from anisoada.problems.logistic import (
    logistic_hessian_diagonal,
    logistic_lambda_max,
    logistic_noise,
    logistic_smoothness,
)
from anisoada.reproduce import Reproduction, ReproductionOutput, finish_target, write_csv
from anisoada.schema import NO_VERDICT
from anisoada.train import Budget

__all__ = [
    "OPTIMIZER_NAMES",
    "REPRODUCTION",
    "measure_dataset",
    "preset_config",
    "run_logreg",
]

#: The three methods compared, by registry key (display names: :mod:`anisoada.report.presentation`).
OPTIMIZER_NAMES = ("sgd", "adagrad", "adagrad_norm")

#: Datasets the ``paper`` preset always runs; other LIBSVM binary sets join when present.
PAPER_DATASETS = ("a9a", "w8a")


def _optimizers() -> tuple[OptimizerSpec, ...]:
    return tuple(OptimizerSpec.create(name) for name in OPTIMIZER_NAMES)


def _available_extra_libsvm() -> tuple[str, ...]:
    """LIBSVM binary sets besides a9a/w8a that are already in the data home (no download)."""
    try:
        from anisoada.data import LIBSVM_DATASETS, libsvm_available
    except ImportError:
        return ()
    return tuple(
        name for name in LIBSVM_DATASETS if name not in PAPER_DATASETS and libsvm_available(name)
    )


def preset_config(preset: str) -> SweepConfig:
    """The sweep of a preset.

    ``quick``: the real a9a (UCI Adult, bundled with the package: n = 32,561 + 16,281 test,
    d = 123) first, then the stand-ins — synthetic (n = 8000 + 2000 test, d = 400, power-law
    features) and its rotated twin; batch sizes 16 … 4096 (×4); 48,000 samples per run
    (1.5 epochs of a9a, 6 of synthetic); learning rates 10^-3 … 10^2 at two per decade; 3 seeds.
    ``paper``: a9a, w8a (+ other local LIBSVM sets); batch sizes 8 … 4096 (×2); 5 epochs; the
    same grid; 5 seeds. Both tune on every seed (the selection rule averages their tails) and
    extend the grid by up to two decades where the best rate is at an edge.
    """
    grid = LRGrid(low=1e-3, high=1e2, per_decade=2, max_extensions=2)
    if preset == "quick":
        return SweepConfig(
            name="logreg-quick",
            problems=(
                DatasetSpec.create("a9a", "libsvm"),
                DatasetSpec.create("synthetic", "synthetic"),
                DatasetSpec.create("rotated", "rotated", stream="synthetic"),
            ),
            optimizers=_optimizers(),
            batch_sizes=(16, 64, 256, 1024, 4096),
            lr_grid=grid,
            seeds=3,
            budget=Budget(samples=48_000),
            evaluations=20,
        )
    if preset == "paper":
        names = PAPER_DATASETS + _available_extra_libsvm()
        return SweepConfig(
            name="logreg-paper",
            problems=tuple(DatasetSpec.create(name, "libsvm") for name in names),
            optimizers=_optimizers(),
            batch_sizes=tuple(2**k for k in range(3, 13)),
            lr_grid=grid,
            seeds=5,
            budget=Budget(epochs=5.0),
            evaluations=20,
        )
    raise ValueError(f"preset must be 'quick' or 'paper'; got {preset!r}")


# ------------------------------------------------------------------------------------------
# Measurement (Table 2)
# ------------------------------------------------------------------------------------------


def measure_dataset(spec: DatasetSpec, out: Path) -> dict[str, Any]:
    """Table 2's quantities for one dataset, stored under ``out`` (reused when present).

    Writes the measurement summaries ``<name>_init`` (``σ`` at ``w_1 = 0``) and
    ``<name>_optimum`` (``σ`` at ``w*``), both with the A2 vector
    ``L_j = (1/(4n)) Σ_k |(XᵀX)_jk|`` and ``λ_max(XᵀX/(4n))``, plus ``<name>_minimiser.npz``
    and ``<name>.json`` with the scalars of the table.

    Returns:
        The row of Table 2 (a flat dict).
    """
    from anisoada.measure.summary import MeasurementSummary

    record_path = out / f"{spec.name}.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("dataset_spec") == spec.to_dict():
            return record["table2"]
    data = load_dataset(spec)
    X, y = data.X, data.y
    n, d = X.shape
    L = logistic_smoothness(X)
    lambda_max = logistic_lambda_max(X)
    hessian_bound = logistic_hessian_diagonal(X, y)
    optimum = dataset_optimum(spec)  # the sweep's f* comes from the same cached L-BFGS
    w_star = optimum.w
    solver = {
        "f_star": optimum.f_star,
        "gradient_linf": optimum.gradient_linf,
        "iterations": optimum.iterations,
        "converged": optimum.converged,
        "message": optimum.message,
    }
    sigma_init = logistic_noise(X, y, np.zeros(d))
    sigma_opt = logistic_noise(X, y, w_star)
    conventions = {
        "L": "valid A2 majorant L_j = (1/(4n)) sum_k |(X^T X)_jk|",
        "sigma": "one-sample per-coordinate noise std over the n training rows",
        "lambda_max": "top eigenvalue of X^T X / (4n)",
        "hessian_diagonal": "sup_w of the Hessian diagonal, (1/(4n)) sum_i x_ij^2",
    }
    summaries = {}
    for point, sigma in (("init", sigma_init), ("optimum", sigma_opt)):
        summary = MeasurementSummary(
            L=L,
            sigma=sigma,
            lambda_max=lambda_max,
            hessian_diagonal=hessian_bound,
            conventions={**conventions, "point": "w_1 = 0" if point == "init" else "w* (L-BFGS)"},
            provenance={"task": "logistic regression", "dataset": spec.to_dict(), "point": point},
        )
        summary.save(out / f"{spec.name}_{point}")
        summaries[point] = summary
    with atomic_open(out / f"{spec.name}_minimiser.npz", "wb") as handle:
        np.savez(handle, w_star=w_star)
    table2 = {
        "dataset": spec.name,
        "n": int(n),
        "d": int(d),
        "L_l1": summaries["init"].L_l1,
        "L_linf": summaries["init"].L_linf,
        "lambda_max": float(lambda_max),
        "rho_L": summaries["init"].rho_L,
        "sigma_l1_init": summaries["init"].sigma_l1,
        "sigma_l2_init": summaries["init"].sigma_l2,
        "rho_sigma_init": summaries["init"].rho_sigma,
        "sigma_l1_opt": summaries["optimum"].sigma_l1,
        "sigma_l2_opt": summaries["optimum"].sigma_l2,
        "rho_sigma_opt": summaries["optimum"].rho_sigma,
        "D_inf": float(np.abs(w_star).max()),
        "D_2": float(np.linalg.norm(w_star)),
        "rho_D": float(np.linalg.norm(w_star) / (np.sqrt(d) * np.abs(w_star).max())),
        "f_star": solver["f_star"],
    }
    write_json(
        record_path,
        {
            "dataset_spec": spec.to_dict(),
            "description": data.description,
            "table2": table2,
            "solver": solver,
            "provenance": provenance(),
        },
    )
    return table2


# ------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------


def results_table(
    selection: pd.DataFrame,
    verdicts: pd.DataFrame,
    table2: pd.DataFrame,
    optimizers: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (dataset, batch size): each optimizer's tuned loss with its spread over
    seeds, its lr and gap, and the paired verdicts against the baseline.

    Per optimizer label ``o``: ``o_loss`` (the tail loss of the selection rule, mean over
    seeds), ``o_loss_min``/``o_loss_max`` (its range over seeds), ``o_gap = o_loss − f*``,
    ``o_lr``, ``o_test_accuracy``, ``o_at_edge``. Per optimizer compared with the baseline ``b``
    (:mod:`anisoada.experiments.verdict`): ``o_vs_b`` (geometric mean over seeds of the gap
    ratio), ``o_vs_b_low``/``o_vs_b_high`` (its 95% interval) and ``o_verdict`` (``o``, ``b``
    or ``tie``). ``winner`` is the verdict of AdaGrad against SGD when the sweep has both
    (the question the paper answers), else of the first compared optimizer.

    Args:
        selection: The sweep's selection table.
        verdicts: The sweep's verdict table.
        table2: Measured constants (for ``f*``).
        optimizers: The sweep's optimizer labels, in order (default: as in ``selection``).
    """
    labels = (
        list(optimizers) if optimizers is not None else list(dict.fromkeys(selection["optimizer"]))
    )
    f_star = dict(zip(table2["dataset"], table2["f_star"]))
    records = verdicts.to_dict("records") if len(verdicts) else []
    verdict_of = {(r["dataset"], int(r["batch_size"]), r["optimizer"]): r for r in records}
    rows = []
    order = {name: position for position, name in enumerate(table2["dataset"])}
    groups = selection.groupby(["dataset", "batch_size"], sort=True)
    for (dataset, batch_size), group in sorted(
        groups, key=lambda item: (order.get(item[0][0], len(order)), item[0][1])
    ):
        by_optimizer = group.set_index("optimizer")
        row: dict[str, Any] = {"dataset": dataset, "batch_size": int(batch_size)}
        for name in labels:
            if name not in by_optimizer.index:
                continue
            best = by_optimizer.loc[name]
            row[f"{name}_loss"] = float(best["train_loss"])
            row[f"{name}_loss_min"] = float(best.get("train_loss_min", np.nan))
            row[f"{name}_loss_max"] = float(best.get("train_loss_max", np.nan))
            row[f"{name}_gap"] = float(best["train_loss"]) - f_star.get(dataset, np.nan)
            row[f"{name}_lr"] = float(best["best_lr"])
            row[f"{name}_test_accuracy"] = float(best.get("test_accuracy", np.nan))
            row[f"{name}_at_edge"] = bool(best["at_edge"])
        headline = None
        for name in labels:
            verdict = verdict_of.get((dataset, int(batch_size), name))
            if verdict is None:
                continue
            stem = f"{name}_vs_{verdict['baseline']}"
            row[stem] = verdict["ratio"]
            row[f"{stem}_low"] = verdict["ratio_low"]
            row[f"{stem}_high"] = verdict["ratio_high"]
            row[f"{name}_verdict"] = verdict["verdict"]
            if headline is None or (name == "adagrad" and verdict["baseline"] == "sgd"):
                headline = verdict["verdict"]
        row["winner"] = headline if headline is not None else NO_VERDICT
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def ratio_winner(ratio: float) -> str:
    """``"adagrad"`` when an AdaGrad/SGD ratio is below 1, ``"sgd"`` when not, ``"n/a"`` when NaN.

    Example:
        >>> ratio_winner(0.5), ratio_winner(2.0), ratio_winner(float("nan"))
        ('adagrad', 'sgd', 'n/a')
    """
    if not np.isfinite(ratio):
        return "n/a"
    return "adagrad" if ratio < 1 else "sgd"


def predicted_vs_observed(
    results: pd.DataFrame,
    table2: pd.DataFrame,
    summaries: Mapping[str, tuple[np.ndarray, np.ndarray]],
    budgets: Mapping[str, float],
) -> pd.DataFrame:
    """The convex bounds' AdaGrad/SGD ratio next to the observed gap ratio, per batch size.

    Three readings of the bounds (all up to absolute constants — read their trend and their
    side of 1, not their value):

    * ``predicted_box`` — the paper's framing: both methods on one box ``W`` that contains the
      path, so ``D_2 = √d·D_∞`` (``ρ_D = 1``) and SGD's smoothness is ``‖L‖_∞``; the ratio is
      ``ρ_L`` for the bias terms and ``ρ_σ`` for the noise terms;
    * ``predicted_box_lambda_max`` — the same with SGD's tightest ℓ2 constant ``λ_max``;
    * ``predicted_distance`` — SGD credited with the Euclidean distance ``D_2 = ‖w* − w_1‖_2``
      and ``λ_max``, AdaGrad with ``D_∞ = ‖w* − w_1‖_∞`` (the comparison hardest for AdaGrad).

    ``σ`` for the bounds is the elementwise maximum of ``σ(w_1)`` and ``σ(w*)`` (A5 bounds the
    noise along the whole path). The observed ratio is ``(f_AdaGrad − f*)/(f_SGD − f*)`` at the
    tuned learning rates (the verdict's geometric mean over seeds, with its 95% interval
    ``observed_low``, ``observed_high``). ``predicted_winner`` is :func:`ratio_winner` of the box
    prediction, ``observed_winner`` the verdict (AdaGrad, SGD or a tie); since
    ``ρ_L, ρ_σ ≤ 1`` the box prediction never favours SGD, so comparing winners tests nothing —
    compare the ratios' sizes, and on a rotated twin whether both move towards 1.

    Caveat: unregularised logistic regression has no finite minimiser along (nearly) separable
    directions (a rare feature seen only in one class; all of mushrooms). ``f*`` is still
    accurate, but ``D_∞`` and ``D_2`` are those of the point where L-BFGS stopped, so the
    ``predicted_distance`` column depends on that; the box columns do not (``D`` cancels).
    """
    from anisoada.theory import predict

    def ratios(
        L: np.ndarray, sigma: np.ndarray, sizes: list[float], budget: float, **geometry: Any
    ) -> dict[str, pd.DataFrame]:
        table = predict(L=L, sigma=sigma, batch_sizes=sizes, budget=budget, **geometry)
        return {variant: part.set_index("batch_size") for variant, part in table.groupby("variant")}

    frames = []
    for record in table2.to_dict("records"):
        dataset = record["dataset"]
        observed = results[results["dataset"] == dataset]
        if observed.empty:
            continue
        L, sigma = summaries[dataset]
        sizes = observed["batch_size"].astype(float).tolist()
        budget = float(budgets[dataset])
        box = ratios(
            L, sigma, sizes, budget, D_inf=record["D_inf"], lambda_max=record["lambda_max"]
        )
        distance = ratios(
            L,
            sigma,
            sizes,
            budget,
            D_inf=record["D_inf"],
            D_2=record["D_2"],
            lambda_max=record["lambda_max"],
        )
        for row in observed.to_dict("records"):
            size = float(row["batch_size"])
            entry = {
                "dataset": dataset,
                "batch_size": int(size),
                "predicted_box": box["adagrad"].loc[size, "ratio_to_sgd"],
                "predicted_box_lambda_max": box["adagrad"].loc[size, "ratio_to_sgd_lambda_max"],
                "predicted_distance": distance["adagrad"].loc[size, "ratio_to_sgd_lambda_max"],
                "observed": row.get("adagrad_vs_sgd", np.nan),
                "observed_low": row.get("adagrad_vs_sgd_low", np.nan),
                "observed_high": row.get("adagrad_vs_sgd_high", np.nan),
                "observed_adagrad_norm": row.get("adagrad_norm_vs_sgd", np.nan),
            }
            # In the box framing the predicted ratio is at most 1 (ρ_L, ρ_σ ≤ 1), so its
            # "winner" is always AdaGrad: the informative part is the ratio's size and trend.
            entry["predicted_winner"] = ratio_winner(entry["predicted_box"])
            entry["observed_winner"] = row.get("adagrad_verdict", NO_VERDICT)
            frames.append(entry)
    return pd.DataFrame.from_records(frames)


def run_logreg(
    preset: str,
    out: str | Path,
    *,
    jobs: int = 1,
    progress: bool = True,
    config: SweepConfig | None = None,
) -> ReproductionOutput:
    """Run the logistic-regression reproduction (see the module docstring) into ``out``.

    Re-running reuses every stored sweep unit and measurement, so it is cheap.

    Args:
        preset: ``"quick"`` or ``"paper"``.
        out: Output directory.
        jobs: Worker processes for the sweep.
        progress: Show progress bars.
        config: A sweep to run instead of the preset's (same outputs; ``preset`` is then only
            a label).

    Returns:
        The :class:`~anisoada.reproduce.ReproductionOutput` (its tables and records).
    """
    from anisoada.measure import load_summary

    started = time.perf_counter()
    out = Path(out)
    config = preset_config(preset) if config is None else config
    sweep = run_sweep(config, out / "sweep", jobs=jobs, progress=progress)

    measure_dir = out / "measure"
    table2_rows, summaries, budgets = [], {}, {}
    datasets = [problem for problem in config.problems if isinstance(problem, DatasetSpec)]
    for spec in datasets:
        table2_rows.append(measure_dataset(spec, measure_dir))
        init = load_summary(measure_dir / f"{spec.name}_init")
        optimum = load_summary(measure_dir / f"{spec.name}_optimum")
        summaries[spec.name] = (init.L, np.maximum(init.sigma, optimum.sigma))
        samples = config.budget.samples_for(table2_rows[-1]["n"])
        budgets[spec.name] = samples if samples is not None else np.nan
    table2 = pd.DataFrame.from_records(table2_rows)
    labels = [optimizer.label for optimizer in config.optimizers]
    results = results_table(sweep.selection, sweep.verdicts, table2, labels)
    comparison = predicted_vs_observed(results, table2, summaries, budgets)

    written: dict[str, Path] = {}
    for name, table in (
        ("results", results),
        ("table2", table2),
        ("predicted_vs_observed", comparison),
    ):
        written[f"{name}.csv"] = write_csv(table, out / f"{name}.csv")
    return finish_target(
        out,
        "logreg",
        preset,
        started,
        written,
        summary=(
            f"Logistic regression ({preset} preset): {len(datasets)} data set(s) × "
            f"{len(config.batch_sizes)} batch sizes × {len(config.optimizers)} optimizers, "
            f"learning rate tuned per batch size ({len(sweep.rows)} rows)."
        ),
        tables={
            "Tuned final training loss per batch size": written["results.csv"],
            "AdaGrad vs SGD: predicted (convex bounds, up to constants) vs observed": written[
                "predicted_vs_observed.csv"
            ],
        },
        sweep_wall_time=sweep.wall_time,
        jobs=jobs,
        stand_in={spec.name: spec.stand_in() for spec in datasets if spec.stand_in()},
    )


REPRODUCTION = Reproduction(
    name="logreg",
    description="logistic regression: AdaGrad vs SGD vs AdaGrad-Norm across batch sizes",
    run=run_logreg,
)
