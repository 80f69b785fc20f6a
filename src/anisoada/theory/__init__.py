"""The paper's bounds as pure functions, anisotropy ratios, and AdaGrad-vs-SGD predictions.

Everything here holds **up to absolute constants** (each a named keyword parameter, default 1):
the shapes and norms are the paper's, the constants are unknown. Entry points:

* bounds — :func:`convex_adagrad_bound` (Thm 4.1), :func:`convex_sgd_bound` (Eq. 6),
  :func:`convex_adagrad_norm_bound`, :func:`nonconvex_adagrad_bound` (Thm 4.3),
  :func:`nonconvex_sgd_bound`, :func:`nonconvex_adagrad_norm_bound`,
  :func:`generalized_adagrad_bound` (Thm 5.3, reconstructed) and :func:`nonsmooth_adagrad_bound`
  (Duchi et al. 2011), each returning a :class:`Bound` with separate bias and noise terms and its
  critical batch size;
* ratios — :func:`rho_L`, :func:`rho_sigma`, :func:`rho_D`, :func:`term_ratios`;
* :func:`predict` — a tidy table per batch size × method at a fixed sample budget, with verdicts;
* :func:`rates_table` / :func:`table1` — the comparison of rates (Markdown, LaTeX, HTML);
* :func:`plot_prediction` — bound-vs-batch-size curves (needs matplotlib, imported lazily);
* ``anisoada bound`` — the command line (``anisoada bound --help``).
"""

from anisoada.theory import bounds
from anisoada.theory.bounds import *  # noqa: F403 (Bound and the bounds, bounds.__all__)
from anisoada.theory.plot import plot_prediction
from anisoada.theory.prediction import PREDICTION_COLUMNS, VARIANTS, predict
from anisoada.theory.ratios import TermRatios, rho_D, rho_L, rho_sigma, term_ratios
from anisoada.theory.table import rates_table, table1

__all__ = [
    "PREDICTION_COLUMNS",
    "VARIANTS",
    "TermRatios",
    "plot_prediction",
    "predict",
    "rates_table",
    "rho_D",
    "rho_L",
    "rho_sigma",
    "table1",
    "term_ratios",
]
__all__ += bounds.__all__
