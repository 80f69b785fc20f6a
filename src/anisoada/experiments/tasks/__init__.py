"""What the one training loop trains: implementations of :class:`anisoada.train.Task`.

* :class:`LogisticTask` — logistic regression with K learning rates as the lanes of one run;
* :class:`QuadraticTask` — a stochastic anisotropic quadratic with exact ``L`` and ``σ``;
* :class:`LanguageModelTask` — GPT-2 instruction tuning (response-token mean, gradient
  accumulation, data parallelism), with :class:`LayerNoiseMonitor` measuring per-layer noise
  from the accumulation micro-batches.
"""

from anisoada.experiments.tasks.language_model import LanguageModelTask, LayerNoiseMonitor
from anisoada.experiments.tasks.logistic import LogisticTask, sample_rows
from anisoada.experiments.tasks.quadratic import QuadraticTask

__all__ = ["LanguageModelTask", "LayerNoiseMonitor", "LogisticTask", "QuadraticTask", "sample_rows"]
