"""Measurement of the quantities the paper's bounds depend on.

Per-coordinate smoothness ``L_j``, gradient noise ``σ_j``, generalized ``(L0, L1)`` fits and
anisotropy ratios — for logistic regression in closed form (:mod:`anisoada.problems.logistic`)
and for
any ``torch.nn.Module`` through ``torch.func`` (per-sample gradients, Hessian-vector products).

Model-agnostic estimators take ``loss_fn(model, batch) -> scalar``, the **mean** loss over the
samples of ``batch`` (a tensor or a tuple/list/dict of tensors whose leading dimension indexes
samples); one sample's loss is ``loss_fn(model, batch[i:i+1])``. Per-coordinate vectors follow
the order of :class:`ParameterLayout` (trainable parameters in ``named_parameters()`` order).

* noise — :func:`gradient_noise` (per-sample, ``torch.func``), :class:`MicrobatchNoise`
  (streaming, mergeable across ranks), :func:`logistic_noise` (closed form);
* smoothness — :func:`hutchinson_diagonal`, :func:`top_hessian_eigenvalue`,
  :func:`secant_smoothness`, :func:`coordinate_secants`, :func:`logistic_smoothness`;
* generalized smoothness — :func:`fit_envelope` (``y ≤ L0 + L1·x`` covering a fraction of points),
  :func:`run_smoothness_check` (the paper's Figure 1);
* summaries — :func:`summarize_logistic`, :func:`summarize_model`, :class:`MeasurementSummary`
  (``<stem>.npz`` + ``<stem>.json``, read by ``anisoada bound --from``).
"""

from anisoada.measure.envelope import EnvelopeFit, envelope_objective, fit_envelope, fit_envelopes
from anisoada.measure.hessian import (
    EigenEstimate,
    HessianDiagonal,
    hessian_vector_product,
    hutchinson_diagonal,
    top_hessian_eigenvalue,
)
from anisoada.measure.layout import ParameterLayout
from anisoada.measure.lm import LanguageModelProblem, language_model_problem
from anisoada.measure.noise import (
    MicrobatchNoise,
    NoiseEstimate,
    gradient_noise,
    per_sample_gradients,
)
from anisoada.measure.secant import (
    CoordinateSample,
    SecantMaximum,
    Secants,
    SecantSmoothness,
    aggregate_by_block,
    coordinate_secants,
    sample_coordinates,
    secant_smoothness,
)
from anisoada.measure.smoothness_check import (
    SmoothnessCheckConfig,
    SmoothnessCheckResult,
    plot_smoothness_check,
    run_smoothness_check,
)
from anisoada.measure.summarize import summarize_logistic, summarize_model
from anisoada.measure.summary import SUMMARY_FORMAT, MeasurementSummary, load_summary, summary_paths
from anisoada.problems import logistic as _logistic
from anisoada.problems.language_model import response_token_loss
from anisoada.problems.logistic import *  # noqa: F403 (re-exported: the closed forms, its __all__)

__all__ = [
    "SUMMARY_FORMAT",
    "CoordinateSample",
    "EigenEstimate",
    "EnvelopeFit",
    "HessianDiagonal",
    "LanguageModelProblem",
    "MeasurementSummary",
    "MicrobatchNoise",
    "NoiseEstimate",
    "ParameterLayout",
    "SecantMaximum",
    "SecantSmoothness",
    "Secants",
    "SmoothnessCheckConfig",
    "SmoothnessCheckResult",
    "aggregate_by_block",
    "coordinate_secants",
    "envelope_objective",
    "fit_envelope",
    "fit_envelopes",
    "gradient_noise",
    "hessian_vector_product",
    "hutchinson_diagonal",
    "language_model_problem",
    "load_summary",
    "per_sample_gradients",
    "plot_smoothness_check",
    "response_token_loss",
    "run_smoothness_check",
    "sample_coordinates",
    "secant_smoothness",
    "summarize_logistic",
    "summarize_model",
    "summary_paths",
    "top_hessian_eigenvalue",
]
__all__ += _logistic.__all__
