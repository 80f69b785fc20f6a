"""Measurement of the quantities the paper's bounds depend on.

Per-coordinate smoothness ``L_j``, gradient noise ``σ_j``, generalized ``(L0, L1)`` fits and
anisotropy ratios — for logistic regression in closed form (:mod:`~anisoada.measure.glm`) and for
any ``torch.nn.Module`` through ``torch.func`` (per-sample gradients, Hessian-vector products).

Model-agnostic estimators take ``loss_fn(model, batch) -> scalar``, the **mean** loss over the
samples of ``batch`` (a tensor or a tuple/list/dict of tensors whose leading dimension indexes
samples); one sample's loss is ``loss_fn(model, batch[i:i+1])``. Per-coordinate vectors follow
the order of :class:`ParameterLayout` (trainable parameters in ``named_parameters()`` order).
"""

from anisoada.measure.envelope import EnvelopeFit, envelope_objective, fit_envelope, fit_envelopes
from anisoada.measure.glm import (
    logistic_gradient,
    logistic_hessian_diagonal,
    logistic_lambda_max,
    logistic_loss,
    logistic_noise,
    logistic_smoothness,
)
from anisoada.measure.hessian import (
    EigenEstimate,
    HessianDiagonal,
    hessian_vector_product,
    hutchinson_diagonal,
    top_hessian_eigenvalue,
)
from anisoada.measure.layout import ParameterLayout
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
from anisoada.measure.summary import SUMMARY_FORMAT, MeasurementSummary, load_summary, summary_paths

__all__ = [
    "SUMMARY_FORMAT",
    "CoordinateSample",
    "EigenEstimate",
    "EnvelopeFit",
    "HessianDiagonal",
    "MeasurementSummary",
    "MicrobatchNoise",
    "NoiseEstimate",
    "ParameterLayout",
    "SecantMaximum",
    "SecantSmoothness",
    "Secants",
    "aggregate_by_block",
    "coordinate_secants",
    "envelope_objective",
    "fit_envelope",
    "fit_envelopes",
    "gradient_noise",
    "hessian_vector_product",
    "hutchinson_diagonal",
    "load_summary",
    "logistic_gradient",
    "logistic_hessian_diagonal",
    "logistic_lambda_max",
    "logistic_loss",
    "logistic_noise",
    "logistic_smoothness",
    "per_sample_gradients",
    "sample_coordinates",
    "secant_smoothness",
    "summary_paths",
    "top_hessian_eigenvalue",
]
