"""The objectives anisoada trains and measures, each defined once (a leaf layer).

* :mod:`~anisoada.problems.logistic` — binary logistic regression: loss, gradient, exact noise,
  the A2 smoothness vector, ``λ_max`` and the minimiser, in closed form with sparse products;
* :mod:`~anisoada.problems.language_model` — instruction tuning of a causal LM: the
  response-token mean, its per-example form for the estimators, and padding.

The data layer, the measurement layer and the training tasks all import from here, so that what
is measured is what is trained.
"""

from anisoada.problems.language_model import (
    IGNORE_INDEX,
    pad_examples,
    response_token_loss,
    summed_response_loss,
)
from anisoada.problems.logistic import (
    LogisticOptimum,
    logistic_gradient,
    logistic_hessian_diagonal,
    logistic_lambda_max,
    logistic_loss,
    logistic_noise,
    logistic_optimum,
    logistic_smoothness,
)

__all__ = [
    "IGNORE_INDEX",
    "LogisticOptimum",
    "logistic_gradient",
    "logistic_hessian_diagonal",
    "logistic_lambda_max",
    "logistic_loss",
    "logistic_noise",
    "logistic_optimum",
    "logistic_smoothness",
    "pad_examples",
    "response_token_loss",
    "summed_response_loss",
]
