"""Validation of ``anisoada advise`` as a reproduction target: is the advice right, and cheap?

``anisoada reproduce prediction --preset quick|heldout|paper --out DIR`` runs, for every data
set of the preset, the **full tuned sweep** (SGD, AdaGrad, AdaGrad-Norm; learning rate tuned per
batch size on the grid 10^-3 … 10^2 at two per decade with up to two extensions; three seeds;
the paired verdict of :mod:`anisoada.experiments.verdict`) and **every predictor**:

* ``combined`` — :func:`anisoada.advise`'s verdict (pilot + rule, :mod:`anisoada.advice.rule`);
* ``pilot`` — the pilot's own paired test alone;
* ``theory`` — the distance-framed convex bounds alone (``D`` from the minimiser, SGD with
  ``λ_max``; AdaGrad below a ratio of 1/2, SGD above 2, a tie between);
* ``theory_box`` — the paper's own comparison, a box (``ρ_L``, ``ρ_σ``), read with the same
  factor-2 band: AdaGrad where its bound is at least twice smaller, else a tie (it never
  predicts SGD, whose bound is never the smaller in a box, but it can be wrong);
* ``box ‖L‖_∞`` and ``box λ_max`` — the paper's box framings, which can favour SGD only when a
  term ratio exceeds 1; where they cannot (``ρ_L, ρ_σ ≤ 1``; ``‖L‖_1 ≤ d·λ_max`` for
  non-negative features) they are reported as *not a test*, never counted as accurate.

Per predictor: winner accuracy over (data set, batch size) cells, ties included, with its
Wilson 95% interval; the Spearman correlation between its predicted advantage (a log ratio) and
the observed log gap ratio; its cost relative to the sweep (sample-lanes and wall time); and,
for the combined verdict, a calibration table (confidence bins against accuracy) that the report
plots. Targets printed here: combined accuracy ≥ 90%, Spearman ≥ 0.7, pilot ≤ 20% of the sweep.

Data. ``quick`` (the design set: the rule was written looking at it): the bundled a9a (batch
sizes 16, 256, 4096) and a synthetic family of five logistic problems written as LIBSVM files —
sparse power-law features (ρ_L from ≈ 0.02 to ≈ 0.08), the rotated twin of one (same spectrum,
no coordinate structure), near-isotropic Gaussian features with a 2-sparse ``w*`` and with a
dense ``w*`` (ρ_L ≈ 0.9) — at batch sizes 16, 128 and 1024 (1024 is 5 steps of 2 epochs: the
very-large-batch regime). ``heldout`` (run with the finished rule only): w8a and mushrooms where
the data home has them (batch sizes 16, 256, 4096) and three synthetic kinds the design set
lacks (:data:`HELDOUT_FAMILY`: text-like, dense low-dimensional, mid-size sparse; batch sizes 8,
64, 256). ``paper``: a larger family (ρ_L ≈ 0.01 … 0.9), a9a and every LIBSVM set in the data
home, batch sizes 8 … 4096.
Synthetic data stands in for real problems and is labelled so in every table.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anisoada.advice import PilotSettings, advise, sample_lanes, theory_verdict
from anisoada.advice.pilot import run_seconds
from anisoada.experiments import DatasetSpec, LRGrid, OptimizerSpec, SweepConfig, run_sweep
from anisoada.reproduce import Reproduction, ReproductionOutput, finish_target, write_csv
from anisoada.train import Budget

__all__ = [
    "FAMILY",
    "REPRODUCTION",
    "FamilyMember",
    "PredictionPreset",
    "family_dataset",
    "preset",
    "run_prediction",
    "score_predictors",
    "wilson_interval",
]

#: Targets of the combined verdict (printed by this target only).
TARGET_ACCURACY, TARGET_SPEARMAN, TARGET_COST = 0.90, 0.70, 0.20


@dataclass(frozen=True)
class FamilyMember:
    """One synthetic logistic problem of the family, generated deterministically.

    ``kind``: ``"powerlaw"`` (:func:`anisoada.data.make_sparse_logistic`), ``"rotated"`` (its
    rotated twin), ``"gaussian"`` (i.i.d. ``N(0, 1)`` features, ``w*`` with ``k`` non-zeros,
    labels ``sign⟨x, w*⟩`` flipped with probability ``label_noise``).
    """

    name: str
    kind: str
    n: int = 3000
    d: int = 300
    exponent: float = 1.0
    density: float = 0.05
    k: int = 2
    label_noise: float = 0.05
    seed: int = 0

    def generate(self) -> tuple[Any, np.ndarray]:
        """``(X, y)`` of the member."""
        from anisoada.data import make_sparse_logistic, rotated_twin

        if self.kind in ("powerlaw", "rotated"):
            problem = make_sparse_logistic(
                self.n,
                self.d,
                exponent=self.exponent,
                density=self.density,
                label_noise=self.label_noise,
                seed=self.seed,
            )
            if self.kind == "rotated":
                problem = rotated_twin(problem, seed=self.seed + 1)
            return problem.X, problem.y
        if self.kind == "gaussian":
            rng = np.random.default_rng(self.seed)
            X = rng.normal(size=(self.n, self.d))
            w = np.zeros(self.d)
            support = rng.choice(self.d, size=min(self.k, self.d), replace=False)
            w[support] = rng.normal(size=support.size) * 3.0 / math.sqrt(support.size)
            y = np.where(X @ w >= 0, 1.0, -1.0)
            flip = rng.random(self.n) < self.label_noise
            y[flip] = -y[flip]
            return X, y
        raise ValueError(f"unknown family kind {self.kind!r}")


#: The quick family (the design set of the rule, with the bundled a9a).
FAMILY: tuple[FamilyMember, ...] = (
    FamilyMember("powerlaw-1.5", "powerlaw", d=1000, exponent=1.5, density=0.02, seed=3),
    FamilyMember("powerlaw-0.6", "powerlaw", exponent=0.6, seed=1),
    FamilyMember("rotated-1.0", "rotated", exponent=1.0, seed=2),
    FamilyMember("gauss-sparse", "gaussian", d=100, k=2, seed=4),
    FamilyMember("gauss-dense", "gaussian", d=100, k=100, seed=5),
)

#: Added by the paper preset.
PAPER_FAMILY: tuple[FamilyMember, ...] = (
    FamilyMember("powerlaw-2.0", "powerlaw", n=6000, d=3000, exponent=2.0, density=0.01, seed=6),
    FamilyMember("powerlaw-1.0", "powerlaw", exponent=1.0, seed=2),
    FamilyMember("rotated-0.6", "rotated", exponent=0.6, seed=1),
    FamilyMember("gauss-sparse-wide", "gaussian", d=400, k=4, seed=7),
    FamilyMember("gauss-dense-noisy", "gaussian", d=50, k=50, label_noise=0.2, seed=8),
)


#: The held-out preset's synthetic kinds, none of which the design family has (the rule was
#: not looked at on them while it was written): text-like (a few hundred rows, tens of
#: thousands of binary power-law features, no label noise: separable), dense low-dimensional
#: (8 Gaussian features, a dense ``w*``, noisy labels), and a mid-size sparse problem.
HELDOUT_FAMILY: tuple[FamilyMember, ...] = (
    FamilyMember(
        "text-like",
        "powerlaw",
        n=400,
        d=20_000,
        exponent=1.1,
        density=0.005,
        label_noise=0.0,
        seed=11,
    ),
    FamilyMember("dense-8", "gaussian", n=2000, d=8, k=8, label_noise=0.1, seed=12),
    FamilyMember(
        "midsize-powerlaw", "powerlaw", n=12_000, d=2_000, exponent=1.3, density=0.01, seed=13
    ),
)


def family_dataset(member: FamilyMember, directory: Path) -> DatasetSpec:
    """The member written once as a LIBSVM file under ``directory``, as a dataset spec."""
    from anisoada.data import save_libsvm

    path = directory / f"{member.name}.svm"
    if not path.is_file():
        X, y = member.generate()
        save_libsvm(path, X, y)
    return DatasetSpec.from_file(path, name=member.name)


@dataclass(frozen=True)
class PredictionPreset:
    """Data sets (synthetic members and LIBSVM names) with their batch sizes, and the budget."""

    family: tuple[FamilyMember, ...]
    family_batch_sizes: tuple[int, ...]
    libsvm: tuple[str, ...]
    libsvm_batch_sizes: tuple[int, ...]
    budget: Budget = field(default_factory=lambda: Budget(epochs=2.0))
    seeds: int = 3


def preset(name: str) -> PredictionPreset:
    """``quick``, ``heldout`` or ``paper`` (module docstring)."""
    if name == "quick":
        return PredictionPreset(FAMILY, (16, 128, 1024), ("a9a",), (16, 256, 4096))
    if name == "heldout":
        from anisoada.data import libsvm_available

        present = tuple(n for n in ("w8a", "mushrooms") if libsvm_available(n))
        return PredictionPreset(HELDOUT_FAMILY, (8, 64, 256), present, (16, 256, 4096))
    if name == "paper":
        from anisoada.data import LIBSVM_DATASETS, libsvm_available

        present = tuple(n for n in LIBSVM_DATASETS if n == "a9a" or libsvm_available(n))
        return PredictionPreset(
            FAMILY + PAPER_FAMILY, (8, 64, 512, 2048), present, (8, 64, 512, 4096)
        )
    raise ValueError(f"preset must be 'quick', 'heldout' or 'paper'; got {name!r}")


def _sweep_config(spec: DatasetSpec, sizes: Sequence[int], budget: Budget, seeds: int) -> Any:
    return SweepConfig(
        name=f"prediction-{spec.name}",
        problems=(spec,),
        optimizers=tuple(OptimizerSpec.create(n) for n in ("sgd", "adagrad", "adagrad_norm")),
        batch_sizes=tuple(sizes),
        budget=budget,
        lr_grid=LRGrid(low=1e-3, high=1e2, per_decade=2, max_extensions=2),
        seeds=seeds,
        evaluations=20,
    )


def wilson_interval(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default).

    Example:
        >>> low, high = wilson_interval(9, 10)
        >>> round(low, 3), round(high, 3)
        (0.596, 0.982)
    """
    if total == 0:
        return math.nan, math.nan
    p = successes / total
    denominator = 1 + z**2 / total
    centre = (p + z**2 / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z**2 / (4 * total**2)) / denominator
    return centre - half, centre + half


def _cells(
    spec: DatasetSpec, sizes: Sequence[int], budget: Budget, seeds: int, out: Path, jobs: int,
    progress: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    """Full sweep and every predictor on one data set: one record per batch size.

    The advice runs first, so that its evidence pays for the minimiser it needs (the sweep then
    finds it cached for its ``f*``).
    """
    advice = advise(
        spec,
        batch_sizes=sizes,
        budget=budget,
        out=out / "advice" / spec.name,
        pilot=PilotSettings(reference_seeds=seeds),
        jobs=jobs,
        progress=progress,
    )
    sweep = run_sweep(
        _sweep_config(spec, sizes, budget, seeds), out / "sweeps" / spec.name, jobs=jobs,
        progress=progress,
    )  # fmt: skip
    sweep_cpu = run_seconds(out / "sweeps" / spec.name, sweep.rows)
    full_cost = sample_lanes(sweep.rows)
    verdicts = sweep.verdicts
    observed = verdicts[verdicts["optimizer"] == "adagrad"].set_index("batch_size")
    framings = {f.name: f for f in advice.framings}
    records = []
    pilot_cost = advice.pilot.cost_sample_lanes
    for verdict in advice.verdicts:
        m = verdict.batch_size
        row = observed.loc[m] if m in observed.index else None
        cell = advice.pilot.cell(m)
        record: dict[str, Any] = {
            "dataset": spec.name,
            "stand_in": spec.stand_in() or "",
            "batch_size": m,
            "rho_L": advice.evidence.rho_L,
            "rho_D": advice.evidence.rho_D,
            "observed": str(row["verdict"]) if row is not None else "no verdict",
            "observed_log_ratio": float(np.log(row["ratio"])) if row is not None else math.nan,
            "observed_low": float(row["ratio_low"]) if row is not None else math.nan,
            "observed_high": float(row["ratio_high"]) if row is not None else math.nan,
            "combined": verdict.winner,
            "combined_confidence": verdict.confidence,
            "combined_log_ratio": verdict.predicted_log_ratio,
            "combined_rule": verdict.rule,
            "pilot": cell.verdict if cell else "no verdict",
            "pilot_log_ratio": verdict.predicted_log_ratio,
            "checks_failed": "; ".join(advice.failed_checks),
            "pilot_cost_fraction": advice.pilot.per_batch_size[m]["sample_lanes"]
            / max(full_cost / len(sizes), 1.0),
            "dataset_pilot_cost": pilot_cost,
            "dataset_sweep_cost": full_cost,
            "dataset_pilot_cpu": advice.pilot.run_seconds,
            "dataset_evidence_wall": advice.evidence.wall_time,
            "dataset_sweep_cpu": sweep_cpu,
        }
        for key, name in (
            ("theory", "distance λ_max"),
            ("theory_box", "box ‖L‖_∞"),
            ("box_linf", "box ‖L‖_∞"),
            ("box_lambda_max", "box λ_max"),
        ):
            framing = framings.get(name)
            ratio = framing.ratios.get(m, math.nan) if framing else math.nan
            record[key] = theory_verdict(ratio) if key.startswith("theory") else _side(ratio)
            record[f"{key}_log_ratio"] = math.log(ratio) if ratio > 0 else math.nan
            record[f"{key}_can_favour_sgd"] = bool(framing.can_favour_sgd) if framing else False
        records.append(record)
    return records


def _side(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "tie"
    return "adagrad" if ratio < 1 else ("sgd" if ratio > 1 else "tie")


PREDICTORS = ("combined", "pilot", "theory", "theory_box", "box_linf", "box_lambda_max")


def score_predictors(cells: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (Wilson interval), Spearman and cost of each predictor over the cells.

    A predictor is *informative* when it could have said something other than AdaGrad on at
    least one cell (the box framings on non-negative features could not); an uninformative
    one gets no accuracy, only the base rate of AdaGrad wins it would have matched.
    """
    from scipy.stats import spearmanr

    scored = cells[cells["observed"] != "no verdict"]
    total = len(scored)
    per_dataset = cells.drop_duplicates("dataset")
    sweep_cost = float(per_dataset["dataset_sweep_cost"].sum())
    sweep_cpu = float(per_dataset["dataset_sweep_cpu"].sum())
    pilot_cost = float(per_dataset["dataset_pilot_cost"].sum())
    pilot_cpu = float(per_dataset["dataset_pilot_cpu"].sum())
    evidence_wall = float(per_dataset["dataset_evidence_wall"].sum())
    rows = []
    for name in PREDICTORS:
        if total == 0:
            break
        hits = int((scored[name] == scored["observed"]).sum())
        informative = True
        # A framing read against 1 is a test only where it could favour SGD; read with the
        # factor-2 band (the theory predictors) it can always say "tie", so it can be wrong.
        if f"{name}_can_favour_sgd" in scored and not name.startswith("theory"):
            informative = bool(scored[f"{name}_can_favour_sgd"].any())
        low, high = wilson_interval(hits, total)
        predicted = scored[f"{name}_log_ratio"].to_numpy(dtype=float)
        observed = scored["observed_log_ratio"].to_numpy(dtype=float)
        keep = np.isfinite(predicted) & np.isfinite(observed)
        rho = (
            float(spearmanr(predicted[keep], observed[keep]).statistic)
            if keep.sum() > 2
            else math.nan
        )
        if name in ("combined", "pilot"):
            cost, cpu = pilot_cost / sweep_cost, pilot_cpu / sweep_cpu
        else:
            cost, cpu = 0.0, 0.0
        evidence = evidence_wall / sweep_cpu
        rows.append(
            {
                "predictor": name,
                "cells": total,
                "informative": informative,
                "accuracy": hits / total if informative else math.nan,
                "accuracy_low": low if informative else math.nan,
                "accuracy_high": high if informative else math.nan,
                "matches_if_uninformative": hits / total if not informative else math.nan,
                "spearman": rho,
                "cost_sample_lanes": cost,
                "cost_cpu": cpu,
                "cost_evidence": evidence,
                "note": "" if informative else "cannot favour SGD on these data: not a test",
            }
        )
    return pd.DataFrame.from_records(rows)


def calibration(
    cells: pd.DataFrame, edges: Sequence[float] = (0.0, 0.5, 0.7, 0.9, 1.0001)
) -> pd.DataFrame:
    """Combined verdict: per confidence bin, mean confidence, accuracy and count."""
    scored = cells[(cells["observed"] != "no verdict") & cells["combined_confidence"].notna()]
    rows = []
    for low, high in itertools.pairwise(edges):
        part = scored[
            (scored["combined_confidence"] >= low) & (scored["combined_confidence"] < high)
        ]
        hits = int((part["combined"] == part["observed"]).sum())
        a, b = wilson_interval(hits, len(part))
        rows.append(
            {
                "bin_low": low,
                "bin_high": min(high, 1.0),
                "cells": len(part),
                "mean_confidence": float(part["combined_confidence"].mean())
                if len(part)
                else math.nan,
                "accuracy": hits / len(part) if len(part) else math.nan,
                "accuracy_low": a,
                "accuracy_high": b,
            }
        )
    return pd.DataFrame.from_records(rows)


def run_prediction(
    preset_name: str,
    out: str | Path,
    *,
    jobs: int = 1,
    progress: bool = True,
    config: PredictionPreset | None = None,
) -> ReproductionOutput:
    """Run the validation (module docstring) into ``out``; reuses stored sweeps and pilots."""
    started = time.perf_counter()
    out = Path(out)
    chosen = preset(preset_name) if config is None else config
    datasets: list[tuple[DatasetSpec, tuple[int, ...]]] = [
        (family_dataset(member, out / "data"), chosen.family_batch_sizes)
        for member in chosen.family
    ]
    datasets += [
        (DatasetSpec.create(name, "libsvm"), chosen.libsvm_batch_sizes) for name in chosen.libsvm
    ]
    records = []
    for spec, sizes in datasets:
        records += _cells(spec, sizes, chosen.budget, chosen.seeds, out, jobs, progress)
    cells = pd.DataFrame.from_records(records)
    for member in chosen.family:
        cells.loc[cells["dataset"] == member.name, "stand_in"] = "synthetic logistic family"
    scores = score_predictors(cells)
    table = calibration(cells)
    written = {
        "cells.csv": write_csv(cells, out / "cells.csv"),
        "predictors.csv": write_csv(scores, out / "predictors.csv"),
        "calibration.csv": write_csv(table, out / "calibration.csv"),
    }
    combined = scores.set_index("predictor").loc["combined"] if len(scores) else None
    targets = {}
    if combined is not None:
        targets = {
            "accuracy": {"value": float(combined["accuracy"]), "target": TARGET_ACCURACY},
            "spearman": {"value": float(combined["spearman"]), "target": TARGET_SPEARMAN},
            "pilot_cost": {"value": float(combined["cost_sample_lanes"]), "target": TARGET_COST},
            "pilot_cpu": {"value": float(combined["cost_cpu"]), "target": TARGET_COST},
        }
        for key, entry in targets.items():
            met = (
                entry["value"] <= entry["target"]
                if key.startswith("pilot_")
                else entry["value"] >= entry["target"]
            )
            entry["met"] = bool(met)
    lines = [
        f"Prediction validation ({preset_name}): {len(cells)} cells on {len(datasets)} data sets."
    ]
    for key, entry in targets.items():
        lines.append(
            f"  {key}: {entry['value']:.3f} (target {'≤' if key.startswith('pilot_') else '≥'} "
            f"{entry['target']}) — {'met' if entry['met'] else 'NOT met'}"
        )
    return finish_target(
        out,
        "prediction",
        preset_name,
        started,
        written,
        summary="\n".join(lines),
        tables={
            "Predictors: winner accuracy, Spearman, cost": written["predictors.csv"],
            "Calibration of the combined verdict": written["calibration.csv"],
        },
        targets=targets,
        datasets=[spec.name for spec, _ in datasets],
        design_set="the quick family and a9a (the rule was written looking at these)"
        if preset_name == "quick"
        else "none: the rule was written on the quick preset",
        jobs=jobs,
    )


REPRODUCTION = Reproduction(
    name="prediction",
    description="validation of `anisoada advise`: verdict accuracy, Spearman, calibration, cost",
    run=run_prediction,
    in_all=False,
    presets=("quick", "heldout", "paper"),
)
