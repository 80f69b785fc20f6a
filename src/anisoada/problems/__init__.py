"""The objectives anisoada trains and measures, each defined once (a leaf layer).

* :mod:`~anisoada.problems.logistic` — binary logistic regression: loss, gradient, exact noise,
  the A2 smoothness vector, ``λ_max`` and the minimiser, in closed form with sparse products;
* :mod:`~anisoada.problems.language_model` — instruction tuning of a causal LM: the
  response-token mean, its per-example form for the estimators, and padding.

The data layer, the measurement layer and the training tasks all import from here, so that what
is measured is what is trained.
"""

from anisoada.problems import language_model, logistic
from anisoada.problems.language_model import *  # noqa: F403 (re-exported: its __all__)
from anisoada.problems.logistic import *  # noqa: F403 (re-exported: its __all__)

__all__ = [*language_model.__all__, *logistic.__all__]
