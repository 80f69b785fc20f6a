"""Binary logistic regression as a training :class:`~anisoada.train.Task`, with lanes.

The objective is the mean logistic loss of :mod:`anisoada.problems.logistic`
``f(w) = (1/n) Σ_i log(1 + exp(−y_i ⟨x_i, w⟩))``, labels in ``{−1, +1}``, no regulariser.
The weights are a ``d × K`` matrix: K independent runs ("lanes", e.g. K learning rates) share
every mini-batch, and lane ``k``'s loss depends only on column ``k``. With K = 1 it is one
ordinary run.

Mini-batches are ``M`` rows drawn uniformly **with replacement** (i.i.d. samples, assumption A4
of the paper), so the mini-batch gradient is unbiased with per-coordinate standard deviation
``σ_j/√M`` (:func:`anisoada.problems.logistic.logistic_noise` gives ``σ``). The gradient of a batch
``B`` is the sparse product ``X_Bᵀ c_B / |B|`` with ``c_i = −y_i s(−y_i ⟨x_i, w⟩)``, computed
with SciPy in the forward pass — no dense per-sample gradients, no autograd graph through ``X``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import expit, log_expit

if TYPE_CHECKING:
    from scipy.sparse._base import _spbase

__all__ = ["LogisticTask", "sample_rows"]

Matrix = np.ndarray | sp.csr_matrix

# Rows for this many consecutive steps are drawn from one generator: cheap to draw, and the
# stream from any step on is still a pure function of (seed, step).
_STEPS_PER_CHUNK = 256

# |⟨x, w⟩| ≤ this × ‖x‖‖w‖ is a tie: far above float64 rounding, far below any real margin.
_TIE_RTOL = 1e-10


def sample_rows(n: int, batch_size: int, *, seed: int, start_step: int = 0) -> Iterator[np.ndarray]:
    """Row indices of each step's mini-batch: ``batch_size`` draws with replacement from ``n``.

    Step ``t`` lies in chunk ``t // 256``, whose rows come from
    ``numpy.random.default_rng([seed, chunk])``; starting at ``start_step`` yields exactly what
    a stream started at 0 yields from its ``start_step``-th item on.

    Example:
        >>> full = sample_rows(10, 3, seed=1)
        >>> first = [next(full) for _ in range(300)]
        >>> resumed = sample_rows(10, 3, seed=1, start_step=299)
        >>> bool((next(resumed) == first[299]).all())
        True
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1; got n={n}, batch_size={batch_size}")
    chunk = start_step // _STEPS_PER_CHUNK
    offset = start_step % _STEPS_PER_CHUNK
    while True:
        rng = np.random.default_rng([seed, chunk])
        rows = rng.integers(0, n, size=(_STEPS_PER_CHUNK, batch_size))
        yield from rows[offset:]
        chunk += 1
        offset = 0


class _BatchLogisticLoss(torch.autograd.Function):
    """Mean logistic loss of a row block per column of ``W``; gradient by one sparse product."""

    @staticmethod
    def forward(ctx: Any, weights: torch.Tensor, X: Matrix, y: np.ndarray) -> torch.Tensor:
        W = weights.detach().numpy()
        margins = y[:, None] * (X @ W)
        losses = _column_means(-log_expit(margins))
        coefficients = -y[:, None] * expit(-margins)
        gradient = np.asarray(X.T @ coefficients) / X.shape[0]
        ctx.save_for_backward(torch.from_numpy(gradient))
        return torch.from_numpy(losses)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (gradient,) = ctx.saved_tensors
        return gradient * grad_output, None, None


class LogisticTask:
    """Logistic regression on ``(X, y)`` with K lanes of weights (see the module docstring).

    ``loss(rows)`` returns the K mean losses over the rows, shape ``(K,)``. ``evaluate()``
    returns per lane the full training loss ``train_loss`` (equal to
    :func:`anisoada.problems.logistic.logistic_loss` on all of ``X``) and, when a test set is given,
    ``test_loss`` and ``test_accuracy`` (the fraction with ``y_i ⟨x_i, w⟩ > 0``; a margin within
    rounding of zero counts one half).

    Args:
        X: ``(n, d)`` training features, scipy sparse (converted to CSR) or dense, float64.
        y: ``(n,)`` labels in ``{−1, +1}``.
        lanes: K, the number of independent weight columns.
        X_test, y_test: Optional held-out set for the test metrics.
        initial: Initial weights, ``(d,)`` (copied into every lane) or ``(d, K)``; zeros
            by default.

    Example:
        >>> import numpy as np
        >>> task = LogisticTask(np.eye(2), np.array([1.0, -1.0]), lanes=3)
        >>> task.parameters()[0].shape, round(float(task.evaluate()["train_loss"][0]), 4)
        (torch.Size([2, 3]), 0.6931)
    """

    def __init__(
        self,
        X: Any,
        y: np.ndarray,
        *,
        lanes: int = 1,
        X_test: Any = None,
        y_test: np.ndarray | None = None,
        initial: np.ndarray | None = None,
    ) -> None:
        self.X = _as_matrix(X, "X")
        self.y = _as_labels(y, self.X.shape[0], "y")
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer; got {lanes!r}")
        if (X_test is None) != (y_test is None):
            raise ValueError("give both X_test and y_test, or neither")
        self.X_test = None if X_test is None else _as_matrix(X_test, "X_test")
        self.y_test = None
        if self.X_test is not None:
            if self.X_test.shape[1] != self.X.shape[1]:
                raise ValueError(
                    f"X_test has {self.X_test.shape[1]} features but X has {self.X.shape[1]}"
                )
            self.y_test = _as_labels(y_test, self.X_test.shape[0], "y_test")
            squares = (
                self.X_test.multiply(self.X_test) if sp.issparse(self.X_test) else self.X_test**2
            )
            self._test_row_norms = np.sqrt(np.asarray(squares.sum(axis=1)).ravel())
        d = self.X.shape[1]
        start = np.zeros((d, lanes))
        if initial is not None:
            initial = np.asarray(initial, dtype=np.float64)
            if initial.shape not in ((d,), (d, lanes)):
                raise ValueError(
                    f"initial must have shape ({d},) or ({d}, {lanes}); got {initial.shape}"
                )
            start[:] = initial.reshape(d, -1)
        self.weights = torch.nn.Parameter(torch.from_numpy(start))

    @property
    def lanes(self) -> int:
        """K, the number of weight columns."""
        return int(self.weights.shape[1])

    def parameters(self) -> list[torch.Tensor]:
        return [self.weights]

    def batches(
        self, *, seed: int, batch_size: int, micro_batch_size: int, start_step: int
    ) -> Iterator[Sequence[np.ndarray]]:
        for rows in sample_rows(self.X.shape[0], batch_size, seed=seed, start_step=start_step):
            if micro_batch_size >= batch_size:
                yield (rows,)
            else:
                yield tuple(
                    rows[i : i + micro_batch_size] for i in range(0, batch_size, micro_batch_size)
                )

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        return _BatchLogisticLoss.apply(self.weights, self.X[rows], self.y[rows])

    def weight(self, rows: np.ndarray) -> float:
        return float(len(rows))

    def evaluate(self) -> Mapping[str, np.ndarray]:
        W = self.weights.detach().numpy()
        metrics = {"train_loss": _column_means(-log_expit(self.y[:, None] * (self.X @ W)))}
        if self.X_test is not None and self.y_test is not None:  # both or neither
            margins = self.y_test[:, None] * (self.X_test @ W)
            metrics["test_loss"] = _column_means(-log_expit(margins))
            # A margin within rounding of 0 is a tie (counted half right, random tie-breaking):
            # e.g. w = 0, or — in rotated coordinates — a test row whose features training
            # never touched, where the exact margin is 0 and the computed one ±1e-19.
            tie = np.abs(margins) <= _TIE_RTOL * self._test_row_norms[:, None] * np.linalg.norm(
                W, axis=0
            )
            metrics["test_accuracy"] = ((margins > 0) & ~tie).mean(axis=0) + 0.5 * tie.mean(axis=0)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.detach().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            self.weights.copy_(state["weights"])


def _column_means(values: np.ndarray) -> np.ndarray:
    """Mean of each column, summed in the same order whatever the number of columns.

    NumPy sums a contiguous axis pairwise but a strided one sequentially, so ``mean(axis=0)``
    of an ``(n, K)`` array rounds differently for K = 1 and K > 1; reducing the rows of the
    transposed copy makes lane k's value bit-identical to a run with lane k alone.
    """
    return np.ascontiguousarray(values.T).mean(axis=1)


def _as_matrix(X: Any, name: str) -> Matrix:
    if sp.issparse(X):
        # issparse narrows to SparseABC, scipy's marker base; the stubs declare the sparse
        # constructors for _spbase, its one implementation (every scipy sparse matrix/array)
        matrix = sp.csr_matrix(cast("_spbase", X), dtype=np.float64)
        matrix.sort_indices()
        return matrix
    array = np.asarray(X, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) matrix; got shape {array.shape}")
    return array


def _as_labels(y: Any, n: int, name: str) -> np.ndarray:
    labels = np.asarray(y, dtype=np.float64)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match its features; got {labels.shape}")
    if not np.isin(labels, (-1.0, 1.0)).all():
        raise ValueError(f"{name} must hold labels -1 and +1 only (load_libsvm normalises them)")
    return labels
