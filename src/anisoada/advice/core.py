"""``advise``: will AdaGrad beat SGD on this problem, at which batch size — with its evidence."""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from anisoada._io import write_json
from anisoada.advice.evidence import Evidence, Framing, framings, logistic_evidence
from anisoada.advice.pilot import PilotResult, PilotSettings, run_pilot
from anisoada.advice.rule import Verdict, combine, theory_verdict
from anisoada.experiments.runs import DatasetSpec, ProblemSpec
from anisoada.train import Budget

__all__ = ["DEFAULT_BATCH_SIZES", "DEFAULT_BUDGET", "Advice", "advise", "resolve_problem"]

DEFAULT_BATCH_SIZES = (16, 128, 1024)
DEFAULT_BUDGET = Budget(epochs=2.0)

#: The framing whose ratio breaks a tie the pilot leaves (the only one able to favour SGD).
THEORY_FRAMING = "distance λ_max"

#: The paper's own comparison (a box: ρ_L and ρ_σ), read as a verdict with the same factor-2
#: band: AdaGrad where its bound is at least twice smaller, otherwise no advantage (a tie). It
#: cannot predict SGD (SGD's bound is never the smaller there), but it can be wrong.
BOX_FRAMING = "box ‖L‖_∞"


@dataclass(frozen=True)
class Advice:
    """What :func:`advise` returns: the verdicts and every piece of evidence behind them."""

    problem: str
    description: str
    batch_sizes: tuple[int, ...]
    budget: Budget
    n_train: int | None
    evidence: Evidence
    framings: tuple[Framing, ...]
    pilot: PilotResult
    verdicts: tuple[Verdict, ...]
    adagrad_norm: dict[int, str]
    wall_time: float
    theory_box: dict[int, str] = field(default_factory=dict)
    stand_in: str | None = None
    skipped: dict[int, str] = field(default_factory=dict)
    out: str = ""

    @property
    def failed_checks(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.evidence.checks if c.failed]

    def verdict(self, batch_size: int) -> Verdict:
        for verdict in self.verdicts:
            if verdict.batch_size == batch_size:
                return verdict
        raise KeyError(f"no verdict at batch size {batch_size}; have {self.batch_sizes}")

    def table(self) -> pd.DataFrame:
        """One row per batch size: verdict, confidence, pilot ratio, each framing's ratio."""
        rows = []
        for verdict in self.verdicts:
            row: dict[str, Any] = {
                "batch_size": verdict.batch_size,
                "verdict": verdict.winner,
                "confidence": verdict.confidence,
                "pilot_ratio": verdict.pilot_ratio,
                "pilot_low": verdict.pilot_low,
                "pilot_high": verdict.pilot_high,
                "pilot_verdict": verdict.pilot_verdict,
                "adagrad_norm_vs_sgd": self.adagrad_norm.get(verdict.batch_size, "n/a"),
                "theory": verdict.theory,
                "theory_box": self.theory_box.get(verdict.batch_size, "n/a"),
                "regime": verdict.regime,
            }
            for framing in self.framings:
                row[f"bound {framing.name}"] = framing.ratios.get(verdict.batch_size, math.nan)
            rows.append(row)
        return pd.DataFrame.from_records(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "description": self.description,
            "stand_in": self.stand_in,
            "batch_sizes": list(self.batch_sizes),
            "budget": self.budget.to_dict(),
            "n_train": self.n_train,
            "evidence": self.evidence.to_dict(),
            "failed_checks": self.failed_checks,
            "framings": [framing.to_dict() for framing in self.framings],
            "pilot": self.pilot.to_dict(),
            "verdicts": [verdict.to_dict() for verdict in self.verdicts],
            "adagrad_norm_vs_sgd": {str(k): v for k, v in self.adagrad_norm.items()},
            "theory_box": {str(k): v for k, v in self.theory_box.items()},
            "skipped_batch_sizes": {str(k): v for k, v in self.skipped.items()},
            "out": self.out,
            "rule": _rule_text(),
            "wall_time": self.wall_time,
        }

    def render(self) -> str:
        """The terminal report: verdicts, checks, constants, framings, cost."""
        from anisoada.advice.render import render_advice

        return render_advice(self)

    def markdown(self) -> str:
        """A standalone Markdown page: the verdict table, then the whole terminal report."""
        from anisoada.advice.render import markdown_table

        return "\n".join([
            f"# Will AdaGrad beat SGD on {self.problem}?", "",
            markdown_table(self.table()), "",
            "Ratios are (f_AdaGrad − f*)/(f_SGD − f*) at tuned rates (< 1 favours AdaGrad); "
            "bound columns are the paper's convex bounds, up to absolute constants.", "",
            "```text", self.render(), "```", "",
        ])  # fmt: skip


def _rule_text() -> str:
    from anisoada.advice import rule

    return (rule.__doc__ or "").strip()


def resolve_problem(
    data: str | os.PathLike[str] | ProblemSpec | None = None,
    *,
    problem: str | ProblemSpec | None = None,
    test: str | os.PathLike[str] | None = None,
    holdout: float | None = None,
) -> ProblemSpec:
    """A problem spec from a LIBSVM name or path, a spec, or ``module:function``."""
    if data is None and problem is None:
        raise ValueError("give a data set (a LIBSVM name or file) or a problem (module:function)")
    if data is not None and problem is not None:
        raise ValueError("give a data set or a problem, not both")
    if data is not None and not isinstance(data, str | os.PathLike | ProblemSpec):
        raise TypeError(
            f"data must be a LIBSVM name, a file path or a problem spec; got {type(data).__name__}"
        )
    if problem is not None:
        if isinstance(problem, str):
            from anisoada.experiments.runs.module import ModuleSpec

            return ModuleSpec.create(problem)
        return problem
    if isinstance(data, str | os.PathLike):
        from anisoada.data import LIBSVM_DATASETS

        text = os.fspath(data)
        if Path(text).is_dir():
            raise ValueError(f"{text} is a directory; give a LIBSVM/svmlight file or a set's name")
        if text in LIBSVM_DATASETS and not Path(text).exists():
            if test is not None:
                raise ValueError(
                    f"--test applies to a LIBSVM file; {text} is a registered set (its official "
                    "test split is used when present, or give --holdout)"
                )
            options = {} if holdout is None else {"holdout": holdout}
            return DatasetSpec.create(text, "libsvm", options)
        return DatasetSpec.from_file(text, test=test, holdout=holdout)
    assert data is not None
    return data


def advise(
    data: str | os.PathLike[str] | ProblemSpec | None = None,
    *,
    problem: str | ProblemSpec | None = None,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    budget: Budget = DEFAULT_BUDGET,
    out: str | os.PathLike[str] | None = None,
    pilot: PilotSettings | None = None,
    test: str | os.PathLike[str] | None = None,
    holdout: float | None = None,
    jobs: int = 1,
    progress: bool = False,
) -> Advice:
    """Will AdaGrad beat SGD on this problem, and at which batch size?

    Per batch size: a verdict (``"adagrad"``, ``"sgd"`` or ``"tie"``) with a confidence — the
    predicted probability that a full tuned sweep (learning rate tuned per batch size at the
    full budget, three seeds, paired t-test on log gap ratios) reaches that verdict — and its
    evidence:

    * measured constants ``L``, ``σ``, ``λ_max``, ``D_∞``, ``D_2`` from the reference point,
      with validity checks (A2 certificate ``‖L‖_∞ ≥ λ_max``, a finite minimiser, estimator
      convergence) — a failed check is reported in :attr:`Advice.failed_checks` and printed;
    * the paper's convex bound ratios AdaGrad/SGD in three framings, each marked with whether
      it can favour SGD at all on this problem (:func:`~anisoada.advice.evidence.framings`);
    * the noise scale ``B_simple = tr Σ / ‖∇f‖²`` and, for multi-block models, the Hessian's
      block heterogeneity;
    * the pilot (:mod:`anisoada.advice.pilot`): SGD, AdaGrad and AdaGrad-Norm searched on short
      runs (every rate a lane), SGD and AdaGrad confirmed at the full budget on ``pilot.seeds``
      seeds, each stage one cell run; its cost in sample-lanes against the full sweep and in
      CPU seconds.

    **The rule** (:mod:`anisoada.advice.rule`): the pilot's per-seed log ratios predict the full
    sweep's paired verdict (most probable of AdaGrad / tie / SGD, confidence its probability);
    theory only breaks an unresolved tie, when the pilot's point estimate, the distance-framed
    bounds and the noise-scale regime's term ratio agree.

    Args:
        data: A registered LIBSVM name (``"a9a"``), a LIBSVM/svmlight file, or a problem spec.
        problem: ``"module:function"`` (a user's PyTorch problem; see
            :mod:`anisoada.experiments.runs.module`) or a spec, instead of ``data``.
        batch_sizes: Batch sizes to advise on.
        budget: The budget a real run would get (samples, epochs or steps).
        out: Where the pilot's sweeps and ``advice.json`` go (default: a temporary directory).
        pilot: The pilot's cut (default :class:`PilotSettings`).
        test, holdout: A test file, or a holdout fraction, for a LIBSVM file.
        jobs: Worker processes for the pilot.
        progress: Progress bars.

    Returns:
        The :class:`Advice` (``.table()``, ``.render()``, ``.to_dict()``).

    Example:
        >>> advice = advise("a9a", batch_sizes=[64], budget=Budget(epochs=1))  # doctest: +SKIP
        >>> advice.verdict(64).winner  # doctest: +SKIP
        'adagrad'
    """
    started = time.perf_counter()
    pilot = PilotSettings() if pilot is None else pilot
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget (samples, epochs or steps); got {budget!r}")
    if not isinstance(pilot, PilotSettings):
        raise TypeError(f"pilot must be a PilotSettings; got {type(pilot).__name__}")
    sizes = tuple(batch_sizes)
    if not sizes or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in sizes):
        raise ValueError(f"batch sizes must be positive integers; got {list(batch_sizes)}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"a batch size is given twice: {list(batch_sizes)}")
    spec = resolve_problem(data, problem=problem, test=test, holdout=holdout)
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="anisoada-advise-"))
    n_train, description = _size_and_description(spec)
    samples = budget.samples_for(n_train)
    if samples is None:
        assert budget.steps is not None
        samples_of = {m: float(budget.steps * m) for m in sizes}
    else:
        samples_of = {m: float(samples) for m in sizes}
    skipped: dict[int, str] = {}
    for m in sizes:
        try:
            steps = budget.num_steps(m, n_train)
        except ValueError as error:
            skipped[m] = str(error)
            continue
        if steps < 2:
            skipped[m] = f"the budget allows {steps} step at batch size {m}: nothing to compare"
    sizes = tuple(m for m in sizes if m not in skipped)
    if not sizes:
        raise ValueError(
            "no batch size leaves at least two steps in the budget: " + "; ".join(skipped.values())
        )
    result = run_pilot(
        spec,
        sizes,
        budget,
        root / "pilot",
        n_train=n_train,
        settings=pilot,
        jobs=jobs,
        progress=progress,
    )
    evidence = _evidence(spec, result, pilot)
    theory_sets: list[Framing] = []
    if evidence.L.max() > 0:
        # Each batch size at its own sample budget (equal for a sample or epoch budget).
        for m in sizes:
            theory_sets += framings(
                evidence.L,
                evidence.sigma,
                lambda_max=evidence.lambda_max,
                D_inf=evidence.D_inf,
                D_2=evidence.D_2,
                batch_sizes=[m],
                budget=samples_of[m],
            )
    merged = _merge_framings(theory_sets)
    theory_valid = not any(check.failed for check in evidence.checks)
    distance = next((f for f in merged if f.name == THEORY_FRAMING), None)
    box = next((f for f in merged if f.name == BOX_FRAMING), None)
    theory_box = {
        m: theory_verdict(box.ratios[m]) if box is not None and theory_valid else "void"
        for m in sizes
    }
    verdicts = []
    norm: dict[int, str] = {}
    for m in sizes:
        cell = result.cell(m, "adagrad")
        other = result.cell(m, "adagrad_norm")
        if other is not None:
            norm[m] = (
                other.verdict
                if other.stage == "confirm"
                else f"ratio {other.ratio:.3g} (search: 1 seed, "
                f"{result.per_batch_size[m]['search_steps']:.0f} steps)"
            )
        verdicts.append(
            combine(
                m,
                cell.log_ratios if cell else (),
                pilot_ratio=cell.ratio if cell else math.nan,
                pilot_low=cell.ratio_low if cell else math.nan,
                pilot_high=cell.ratio_high if cell else math.nan,
                pilot_verdict=cell.verdict if cell else "no verdict",
                theory_ratio=distance.ratios[m] if distance else math.nan,
                bias_ratio=distance.bias_ratio if distance else math.nan,
                noise_ratio=distance.noise_ratio if distance else math.nan,
                noise_scale=evidence.noise_scale_mid,
                theory_valid=theory_valid and distance is not None,
                full_seeds=pilot.reference_seeds,
            )
        )
    advice = Advice(
        problem=spec.name,
        description=description,
        batch_sizes=sizes,
        budget=budget,
        n_train=n_train,
        evidence=evidence,
        framings=tuple(merged),
        pilot=result,
        verdicts=tuple(verdicts),
        adagrad_norm=norm,
        theory_box=theory_box,
        wall_time=time.perf_counter() - started,
        stand_in=spec.stand_in(),
        skipped=skipped,
        out=str(root),
    )
    write_json(root / "advice.json", advice.to_dict())
    from anisoada._io import atomic_open

    with atomic_open(root / "advice.md", "w") as handle:
        handle.write(advice.markdown())
    return advice


def _merge_framings(parts: Sequence[Framing]) -> list[Framing]:
    """Framings evaluated one batch size at a time, merged by name (ratios joined)."""
    merged: dict[str, Framing] = {}
    for part in parts:
        if part.name in merged:
            first = merged[part.name]
            merged[part.name] = Framing(
                name=first.name,
                description=first.description,
                bias_ratio=first.bias_ratio,
                noise_ratio=first.noise_ratio,
                can_favour_sgd=first.can_favour_sgd,
                ratios={**first.ratios, **part.ratios},
            )
        else:
            merged[part.name] = part
    return list(merged.values())


def _size_and_description(spec: ProblemSpec) -> tuple[int | None, str]:
    """Training rows and a one-line description of a problem."""
    if isinstance(spec, DatasetSpec):
        from anisoada.experiments.runs import load_dataset

        data = load_dataset(spec)
        return int(data.X.shape[0]), data.description
    from anisoada.experiments.runs.module import ModuleSpec
    from anisoada.experiments.tasks.module import num_samples

    if isinstance(spec, ModuleSpec):
        n = num_samples(spec.load().train)
        return n, f"PyTorch problem {spec.target}: n={n}"
    raise ValueError(
        f"advise needs a logistic data set or a module problem; got a {spec.kind!r} problem"
    )


def _evidence(spec: ProblemSpec, pilot: PilotResult, settings: PilotSettings) -> Evidence:
    """The measured evidence: closed forms for logistic data, estimators for a module."""
    if isinstance(spec, DatasetSpec):
        from anisoada.experiments.runs import dataset_optimum, load_dataset

        data = load_dataset(spec)
        return logistic_evidence(data.X, data.y, optimum=dataset_optimum(spec))
    from anisoada.advice.evidence import module_evidence
    from anisoada.experiments.runs.module import ModuleSpec

    assert isinstance(spec, ModuleSpec)
    vectors = pilot.reference_vectors()
    return module_evidence(
        spec.load(),
        # the reference run's initial weights: the confirm stage's seed 0
        init_seed=spec.init_seed(settings.base_seed + 1, 0),
        reference=None if vectors is None else vectors["weights"],
    )
