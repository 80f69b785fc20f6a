"""Data: synthetic anisotropic problems with known constants, LIBSVM sets, Alpaca and GPT-2 BPE."""

from anisoada.data.synthetic import (
    LogisticProblem,
    StochasticQuadratic,
    logistic_problem,
    make_sparse_logistic,
    power_law_frequencies,
    random_orthogonal,
    rotated_twin,
)

__all__ = [
    "LogisticProblem",
    "StochasticQuadratic",
    "logistic_problem",
    "make_sparse_logistic",
    "power_law_frequencies",
    "random_orthogonal",
    "rotated_twin",
]
