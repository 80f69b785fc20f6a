"""Synthetic problems whose anisotropic constants are known exactly.

Three generators, all with explicit seeds and ground truth:

* :func:`make_sparse_logistic` — sparse binary logistic regression shaped like bag-of-words data
  (power-law feature frequencies, a planted weight vector, label noise), returned with its exact
  A2 smoothness vector, Hessian-diagonal bound and per-coordinate noise oracle.
* :func:`rotated_twin` — the same problem with features multiplied by a random orthogonal matrix:
  the spectrum, and hence everything SGD sees, is unchanged, while the coordinate structure
  AdaGrad exploits is destroyed. This is the control experiment for every AdaGrad-vs-SGD claim.
* :class:`StochasticQuadratic` — ``f(w) = ½ Σ_j L_j (w_j − w*_j)²`` with a stochastic gradient
  whose per-coordinate noise standard deviation is exactly ``σ_j/√M`` at batch size ``M``: an
  exact oracle for testing bounds and estimators (defined in :mod:`anisoada.data.quadratic`).

The logistic problems and the quadratic share one oracle vocabulary — ``loss(w)``, ``grad(w)``,
``stochastic_grad(w, batch_size, generator)``, ``noise(w)`` and ``smoothness`` — so code that
tests an estimator or an optimizer can take either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from anisoada.data._checks import check_batch_size, check_positive_int
from anisoada.data.quadratic import StochasticQuadratic
from anisoada.problems.logistic import (
    logistic_gradient,
    logistic_hessian_diagonal,
    logistic_lambda_max,
    logistic_loss,
    logistic_noise,
    logistic_smoothness,
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

Matrix = np.ndarray | sp.csr_matrix

# A dense rotated twin stores an n×d float64 matrix; beyond this many entries (≈ 400 MB) we
# refuse rather than exhaust memory on a 2-core CI box.
DEFAULT_MAX_DENSE_ENTRIES = 50_000_000


@dataclass(frozen=True, eq=False)
class LogisticProblem:
    """A binary logistic-regression problem with its anisotropic constants.

    The objective is the mean logistic loss of :mod:`anisoada.problems.logistic`,
    ``f(w) = (1/n) Σ_i log(1 + exp(−y_i ⟨x_i, w⟩))``; one stochastic sample is one row drawn
    uniformly at random, a batch of size ``M`` is the mean over ``M`` rows drawn with replacement.

    Attributes:
        X: Features, ``(n, d)``: a scipy CSR matrix (float64) or a dense float64 array.
        y: Labels in ``{−1, +1}``, shape ``(n,)``.
        w_star: The planted weight vector (``None`` when the data were not generated).
        smoothness: A valid A2 vector ``L`` (``∇²f(w) ⪯ diag(L)`` for every ``w``), from
            :func:`anisoada.problems.logistic.logistic_smoothness`.
        hessian_diagonal_bound: ``sup_w [∇²f(w)]_jj = (1/(4n)) Σ_i x_ij²`` — a per-coordinate
            curvature bound, not an A2 vector when features are correlated.
        feature_probability: For generated data, the probability ``p_j`` that feature ``j`` is
            non-zero in a row; ``None`` otherwise (and for rotated twins, where it has no meaning).
        rotation: For a rotated twin, the orthogonal ``Q`` with ``X_twin = X_original Q`` and
            ``w_twin = Qᵀ w_original``; ``None`` otherwise.
        label_noise: The label flip probability used to generate ``y`` (``None`` if not generated).
    """

    X: Matrix
    y: np.ndarray
    w_star: np.ndarray | None
    smoothness: np.ndarray
    hessian_diagonal_bound: np.ndarray
    feature_probability: np.ndarray | None = None
    rotation: np.ndarray | None = None
    label_noise: float | None = None

    @property
    def n(self) -> int:
        """Number of samples (rows)."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of features (the dimension of ``w``)."""
        return int(self.X.shape[1])

    def loss(self, w: np.ndarray) -> np.ndarray | float:
        """Mean logistic loss at ``w`` (``(d,)`` or ``(d, K)`` for K weight vectors)."""
        return logistic_loss(self.X, self.y, w)

    def grad(self, w: np.ndarray) -> np.ndarray:
        """Full gradient ``∇f(w)``."""
        return logistic_gradient(self.X, self.y, w)

    def noise(self, w: np.ndarray) -> np.ndarray:
        """Per-coordinate one-sample gradient-noise standard deviation ``σ_j(w)`` (A5 at M = 1).

        ``σ_j(w)² = Var_i[∂_j ℓ_i(w)]`` over a uniformly drawn row; a batch mean of ``M`` rows drawn
        with replacement has standard deviation ``σ_j(w)/√M``.
        """
        return logistic_noise(self.X, self.y, w)

    def hessian_diagonal(self, w: np.ndarray) -> np.ndarray:
        """Exact Hessian diagonal ``(1/n) Σ_i p_i(1 − p_i) x_ij²`` at ``w``."""
        return logistic_hessian_diagonal(self.X, self.y, w)

    def lambda_max(self) -> float:
        """Largest eigenvalue of ``XᵀX/(4n)``: SGD's best uniform smoothness constant."""
        return logistic_lambda_max(self.X)

    def stochastic_grad(
        self, w: np.ndarray, batch_size: int, generator: np.random.Generator
    ) -> np.ndarray:
        """Mini-batch mean gradient over ``batch_size`` rows drawn uniformly with replacement.

        Unbiased for ``∇f(w)`` (A4) with per-coordinate standard deviation ``noise(w)/√M``.

        Args:
            w: Weights, ``(d,)`` or ``(d, K)``.
            batch_size: ``M ≥ 1``.
            generator: A ``numpy.random.Generator`` (seeds are always explicit).

        Returns:
            ``(1/M) Σ_m ∇ℓ_{i_m}(w)``, same shape as ``w``.
        """
        check_batch_size(batch_size)
        if not isinstance(generator, np.random.Generator):
            raise ValueError(
                f"generator must be a numpy.random.Generator; got {type(generator).__name__}"
            )
        rows = generator.integers(0, self.n, size=batch_size)
        return logistic_gradient(self.X[rows], self.y[rows], w)


def logistic_problem(
    X: Matrix, y: np.ndarray, *, w_star: np.ndarray | None = None
) -> LogisticProblem:
    """Wrap a data set (e.g. from :func:`load_libsvm`) as a :class:`LogisticProblem`.

    Computes the A2 smoothness vector ``L_j = (1/(4n)) Σ_k |(XᵀX)_jk|`` and the Hessian-diagonal
    bound ``(1/(4n)) Σ_i x_ij²`` once.

    Args:
        X: ``(n, d)`` features, sparse (converted to CSR float64) or dense (float64).
        y: ``(n,)`` labels in ``{−1, +1}``.
        w_star: Optional reference weights of shape ``(d,)``.

    Returns:
        The problem.

    Example:
        >>> import numpy as np
        >>> p = logistic_problem(np.eye(2), np.array([1.0, -1.0]))
        >>> p.smoothness.tolist()
        [0.125, 0.125]
    """
    X = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D (n, d) matrix; got shape {X.shape}")
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X; got {y.shape}")
    bad = ~np.isin(y, (-1.0, 1.0))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"labels y must be -1 or +1; y[{index}] = {float(y[index])!r} "
            "(load_libsvm normalises {0,1} and {1,2} labels for you)"
        )
    if w_star is not None:
        w_star = np.asarray(w_star, dtype=np.float64)
        if w_star.shape != (X.shape[1],):
            raise ValueError(f"w_star must have shape ({X.shape[1]},); got {w_star.shape}")
    return _with_constants(X, y, w_star)


def _with_constants(
    X: Matrix,
    y: np.ndarray,
    w_star: np.ndarray | None,
    *,
    feature_probability: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
    label_noise: float | None = None,
) -> LogisticProblem:
    """The problem of ``(X, y)`` with its A2 vector and Hessian-diagonal bound computed once."""
    return LogisticProblem(
        X=X,
        y=y,
        w_star=w_star,
        smoothness=logistic_smoothness(X),
        hessian_diagonal_bound=logistic_hessian_diagonal(X, y),
        feature_probability=feature_probability,
        rotation=rotation,
        label_noise=None if label_noise is None else float(label_noise),
    )


def power_law_frequencies(d: int, *, exponent: float, density: float) -> np.ndarray:
    """Feature probabilities ``p_j = min(1, c·(j+1)^(−exponent))`` with mean ``density``.

    The constant ``c`` is found by bisection so that ``Σ_j p_j = density·d`` (the expected number of
    non-zeros per row) despite the cap at 1. Feature 0 is the most frequent, as in a vocabulary
    sorted by frequency (Zipf's law has ``exponent ≈ 1``).

    Args:
        d: Number of features, ``≥ 1``.
        exponent: Power-law exponent ``≥ 0`` (0 gives uniform frequencies).
        density: Mean fraction of non-zero features per row, in ``(0, 1]``.

    Returns:
        ``p`` of shape ``(d,)``, non-increasing, in ``(0, 1]``, with ``p.sum() ≈ density·d``
        (relative error below 1e-12).
    """
    check_positive_int("d", d)
    if not (math.isfinite(exponent) and exponent >= 0.0):
        raise ValueError(f"exponent must be a finite number >= 0; got {exponent!r}")
    if not (0.0 < density <= 1.0):
        raise ValueError(f"density must be in (0, 1]; got {density!r}")
    shape = np.arange(1, d + 1, dtype=np.float64) ** (-exponent)
    target = density * d
    if density == 1.0:
        return np.ones(d)
    # Σ min(1, c·shape) is continuous and non-decreasing in c, at most the target at
    # c = target/Σshape and at least it at c = 1/min(shape) = d^exponent (all p = 1).
    low = math.log(target / shape.sum())
    high = exponent * math.log(d) + 1e-12
    for _ in range(200):
        middle = 0.5 * (low + high)
        if np.minimum(1.0, math.exp(middle) * shape).sum() < target:
            low = middle
        else:
            high = middle
        if high - low < 1e-15:
            break
    return np.minimum(1.0, math.exp(0.5 * (low + high)) * shape)


def _bernoulli_columns(
    n: int,
    probability: np.ndarray,
    rng: np.random.Generator,
    *,
    spare_sigmas: float = 6.0,
    spare_gaps: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact independent ``Bernoulli(p_j)`` entries of an ``n × d`` 0/1 matrix, as CSC arrays.

    Column ``j``'s non-zero rows are a Bernoulli process, so the gaps between them are
    ``Geometric(p_j)``. We draw, per column, enough gaps to pass row ``n`` with overwhelming
    probability (mean + ``spare_sigmas`` standard deviations + ``spare_gaps``), take segment-wise
    cumulative sums, and top up the rare columns that fell short (exact by memorylessness).
    Cost is proportional to the number of non-zeros, never to ``n·d``, and the rows come out
    sorted within each column.

    Returns:
        ``(indptr, row_indices)`` of a CSC matrix of shape ``(n, d)``.
    """
    d = probability.size
    mean = n * probability
    spread = np.sqrt(mean * (1.0 - probability))
    budget = np.ceil(mean + spare_sigmas * spread + spare_gaps).astype(np.int64)
    budget[probability <= 0.0] = 0
    column_of_gap = np.repeat(np.arange(d), budget)
    gaps = rng.geometric(np.repeat(probability, budget)).astype(np.int64)
    cumulative = np.cumsum(gaps)
    segment_end = np.cumsum(budget)
    segment_start = segment_end - budget
    before_segment = np.where(segment_start > 0, cumulative[np.maximum(segment_start - 1, 0)], 0)
    # 0-based row of each success: the k-th success of a column sits at (sum of its k gaps) − 1.
    rows = cumulative - np.repeat(before_segment, budget) - 1
    inside = rows < n
    # A column with no gaps drawn "stopped" before row 0 (unless p = 0: then it is complete).
    last_drawn = rows[np.maximum(segment_end - 1, 0)] if rows.size else np.zeros(d, np.int64)
    last_row = np.where(budget > 0, last_drawn, np.where(probability > 0, -1, n))
    incomplete = np.flatnonzero(last_row < n)
    kept_rows = rows[inside]
    kept_columns = column_of_gap[inside]
    if incomplete.size:
        # The process has not yet passed the last row for these columns: continue it from where
        # it stopped (memorylessness makes this exact). Happens with probability ~1e-9 per column.
        extra_rows, extra_columns = [], []
        for j in incomplete:
            position = int(last_row[j])
            while position < n:
                position += int(rng.geometric(probability[j]))
                if position < n:
                    extra_rows.append(position)
                    extra_columns.append(j)
        if extra_rows:
            kept_rows = np.concatenate([kept_rows, np.asarray(extra_rows, dtype=np.int64)])
            kept_columns = np.concatenate([kept_columns, np.asarray(extra_columns, dtype=np.int64)])
            order = np.lexsort((kept_rows, kept_columns))
            kept_rows, kept_columns = kept_rows[order], kept_columns[order]
    indptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(np.bincount(kept_columns, minlength=d), out=indptr[1:])
    return indptr, kept_rows


def make_sparse_logistic(
    n: int,
    d: int,
    *,
    exponent: float = 1.0,
    density: float = 0.01,
    label_noise: float = 0.05,
    margin_std: float = 2.0,
    seed: int = 0,
) -> LogisticProblem:
    """Sparse binary logistic regression with power-law feature frequencies and planted weights.

    The generative model, shaped like bag-of-words data (rcv1, real-sim, news20):

    * ``x_ij ~ Bernoulli(p_j)`` independently, with ``p_j = min(1, c·(j+1)^(−exponent))`` and
      ``c`` such that a row has ``density·d`` non-zeros on average (:func:`power_law_frequencies`);
      the values are 1, as in LIBSVM's binary sets.
    * ``w*_j ~ N(0, margin_std² / Σ_k p_k)`` so that the margin ``⟨x_i, w*⟩`` has standard
      deviation ``margin_std`` whatever ``d`` and ``density`` are.
    * ``y_i = sign⟨x_i, w*⟩`` (a fair coin when the margin is exactly 0, e.g. an empty row),
      then flipped independently with probability ``label_noise``.

    Because frequent features carry most of the curvature, ``L_j`` decays roughly like ``p_j``:
    ``‖L‖_1 ≪ d‖L‖_∞`` — the anisotropic regime where AdaGrad's bound beats SGD's. The returned
    ``smoothness`` is the exact A2 majorant ``L_j = (1/(4n)) Σ_k (XᵀX)_jk`` of this sample (valid
    for every ``w``), ``hessian_diagonal_bound`` is ``(1/(4n)) Σ_i x_ij²``, and ``noise(w)`` gives
    the exact per-coordinate noise at any ``w``.

    Sampling is exact and costs O(nnz): the gaps between a column's non-zero rows are geometric.
    100 000 × 50 000 at density 0.001 (5 M non-zeros) takes about a second.

    Args:
        n: Number of samples, ``≥ 1``.
        d: Number of features, ``≥ 1``.
        exponent: Power-law exponent of the feature frequencies, ``≥ 0`` (0: all equal).
        density: Mean fraction of non-zero features per row, in ``(0, 1]``.
        label_noise: Probability of flipping each label, in ``[0, 0.5]``.
        margin_std: Standard deviation of the clean margin ``⟨x_i, w*⟩``, ``> 0``.
        seed: Seed of the ``numpy`` generator; equal seeds give identical problems.

    Returns:
        A :class:`LogisticProblem` with CSR ``X`` (float64, sorted indices), ``y ∈ {−1, +1}``,
        ``w_star``, ``smoothness``, ``hessian_diagonal_bound`` and ``feature_probability``.

    Example:
        >>> p = make_sparse_logistic(1000, 200, exponent=1.2, density=0.05, seed=1)
        >>> p.X.shape, bool(p.smoothness.sum() < 200 * p.smoothness.max())
        ((1000, 200), True)

    References:
        Liu, Pan, Zhang. "AdaGrad under Anisotropic Smoothness." ICLR 2025 (assumptions A2, A5).
    """
    check_positive_int("n", n)
    check_positive_int("d", d)
    if not (0.0 <= label_noise <= 0.5):
        raise ValueError(f"label_noise must be in [0, 0.5]; got {label_noise!r}")
    if not (math.isfinite(margin_std) and margin_std > 0.0):
        raise ValueError(f"margin_std must be a finite number > 0; got {margin_std!r}")
    probability = power_law_frequencies(d, exponent=exponent, density=density)
    rng = np.random.default_rng(seed)
    indptr, rows = _bernoulli_columns(n, probability, rng)
    X = sp.csc_matrix(
        (
            np.ones(rows.size, dtype=np.float64),
            rows.astype(np.int32) if n < 2**31 else rows.astype(np.int64),
            indptr,
        ),
        shape=(n, d),
    ).tocsr()
    X.sort_indices()
    w_star = rng.normal(0.0, margin_std / math.sqrt(probability.sum()), size=d)
    margin = np.asarray(X @ w_star)
    coin = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    y = np.where(margin > 0, 1.0, np.where(margin < 0, -1.0, coin))
    flip = rng.random(n) < label_noise
    y[flip] = -y[flip]
    return _with_constants(X, y, w_star, feature_probability=probability, label_noise=label_noise)


def random_orthogonal(d: int, *, seed: int) -> np.ndarray:
    """A Haar-distributed random ``d × d`` orthogonal matrix.

    QR of a standard Gaussian matrix with the signs of ``R``'s diagonal moved into ``Q`` — without
    that correction ``Q`` is not uniformly distributed (Mezzadri, 2007).

    Args:
        d: Dimension, ``≥ 1``.
        seed: Seed of the ``numpy`` generator.

    Returns:
        ``Q`` with ``QᵀQ = I`` (float64).

    References:
        F. Mezzadri. "How to generate random matrices from the classical compact groups."
        Notices of the AMS 54(5), 2007.
    """
    check_positive_int("d", d)
    gaussian = np.random.default_rng(seed).standard_normal((d, d))
    q, r = np.linalg.qr(gaussian)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def rotated_twin(
    problem: LogisticProblem,
    *,
    seed: int,
    max_dense_entries: int = DEFAULT_MAX_DENSE_ENTRIES,
) -> LogisticProblem:
    """The problem in randomly rotated coordinates: same spectrum, coordinate structure destroyed.

    With a Haar-random orthogonal ``Q``, the twin has features ``X' = X Q`` and planted weights
    ``w*' = Qᵀ w*``. Margins are unchanged (``X' w' = X w`` whenever ``w' = Qᵀ w``), so the loss,
    the Gram spectrum (``X'ᵀX' = Qᵀ XᵀX Q``), ``λ_max`` and ``‖σ‖_2`` are the same, and SGD started
    at ``Qᵀ w_1`` on the same mini-batches produces exactly ``Qᵀ w_t`` — SGD cannot tell the two
    problems apart. AdaGrad's per-coordinate step sizes are not rotation-equivariant: the twin
    spreads curvature over all coordinates, so ``ρ_L = ‖L‖_1/(d‖L‖_∞)`` moves towards 1 and the
    AdaGrad advantage predicted by the paper should vanish. That is the control experiment.

    Args:
        problem: Any :class:`LogisticProblem`; sparse ``X`` is densified (a rotation fills it in).
        seed: Seed of the rotation.
        max_dense_entries: Refuse problems with more than this many ``n·d`` entries, since the
            twin is dense; subsample rows or features first.

    Returns:
        A :class:`LogisticProblem` with dense ``X``, recomputed ``smoothness`` and Hessian bound,
        ``rotation`` = the total rotation from the original coordinates, and the same labels.
    """
    n, d = problem.X.shape
    if n * d > max_dense_entries:
        raise ValueError(
            f"rotated_twin makes X dense: {n} x {d} = {n * d} entries exceeds "
            f"max_dense_entries={max_dense_entries}; subsample rows or features first, "
            "or raise the limit"
        )
    rotation = random_orthogonal(d, seed=seed)
    dense = problem.X.toarray() if sp.issparse(problem.X) else np.asarray(problem.X)
    X = dense @ rotation
    w_star = None if problem.w_star is None else rotation.T @ problem.w_star
    total = rotation if problem.rotation is None else problem.rotation @ rotation
    return _with_constants(
        X, problem.y.copy(), w_star, rotation=total, label_noise=problem.label_noise
    )
