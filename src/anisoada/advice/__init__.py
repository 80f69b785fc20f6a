"""Advice: will AdaGrad beat SGD on a given problem, and at which batch size?

The layer between the experiments (the one sweep engine) and the reproduction targets. One
entry point, :func:`advise` (also ``anisoada.advise`` and ``anisoada advise``), which combines

* :mod:`~anisoada.advice.evidence` — measured constants, validity checks, the paper's bound
  ratios in three framings (each marked with whether it can favour SGD), the noise scale and
  the Hessian's block heterogeneity;
* :mod:`~anisoada.advice.pilot` — a cheap two-stage pilot through the sweep engine, its cost
  measured against the full tuned sweep;
* :mod:`~anisoada.advice.rule` — the documented rule that turns them into a verdict with a
  confidence, and what would change it.
"""

from anisoada.advice.core import DEFAULT_BATCH_SIZES, DEFAULT_BUDGET, Advice, advise
from anisoada.advice.evidence import (
    Check,
    Evidence,
    Framing,
    block_heterogeneity,
    check_a2_certificate,
    check_finite_minimiser,
    framings,
    logistic_evidence,
    noise_scale,
)
from anisoada.advice.pilot import PilotResult, PilotSettings, run_pilot, sample_lanes
from anisoada.advice.rule import Verdict, combine, predicted_probabilities, theory_verdict

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "DEFAULT_BUDGET",
    "Advice",
    "Check",
    "Evidence",
    "Framing",
    "PilotResult",
    "PilotSettings",
    "Verdict",
    "advise",
    "block_heterogeneity",
    "check_a2_certificate",
    "check_finite_minimiser",
    "combine",
    "framings",
    "logistic_evidence",
    "noise_scale",
    "predicted_probabilities",
    "run_pilot",
    "sample_lanes",
    "theory_verdict",
]
