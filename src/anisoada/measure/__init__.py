"""Measurement of the quantities the paper's bounds depend on.

Per-coordinate smoothness ``L_j``, gradient noise ``σ_j``, generalized ``(L0, L1)`` fits and
anisotropy ratios — for logistic regression in closed form and for any ``torch.nn.Module``.
"""

from anisoada.measure.glm import (
    logistic_gradient,
    logistic_hessian_diagonal,
    logistic_lambda_max,
    logistic_loss,
    logistic_noise,
    logistic_smoothness,
)

__all__ = [
    "logistic_gradient",
    "logistic_hessian_diagonal",
    "logistic_lambda_max",
    "logistic_loss",
    "logistic_noise",
    "logistic_smoothness",
]
