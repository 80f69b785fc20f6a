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

**Speed.** A step of a small batch is a few microseconds of arithmetic, so what surrounds it
decides the speed. The rows of many steps are gathered at once (one CSR row selection per block
of steps, each step's mini-batch a view into it); the two products call SciPy's compiled CSR
kernels, the ones ``X_B @ W`` and ``X_B.T @ C`` run, on those views, over rows stored signed
(``y_i x_i``, so the margins are one product and no pass multiplies by labels); and
:meth:`LogisticTask.accumulate_gradient` hands the training loop the closed-form gradient
without an autograd graph. What is left of a K-lane step is elementwise: the loss terms
``log(1 + e^{−|m|}) − min(m, 0)`` in NumPy's vectorised ``exp`` and ``log1p``, and SciPy's
``expit`` of the ``M × K`` margins. An evaluation is the same over all ``n`` rows, ``n``
logarithms per lane, so the loop asks only for the lanes still running
(:meth:`LogisticTask.evaluate_lanes`). The products and the gradient are the plain SciPy
expressions' numbers to the last bit, and the losses agree with SciPy's ``log_expit`` to
≈ 4e-16 (the tests compare both); lane k's numbers are those of a run with lane k alone, bit for
bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import expit

if TYPE_CHECKING:
    from scipy.sparse._base import _spbase

try:
    # The compiled kernels behind SciPy's ``csr @ dense`` (csr_*) and ``csr.T @ dense`` (csc_*,
    # the transpose of a CSR matrix being CSC over the same arrays), one column or several.
    # Called on slices of a gathered block they compute a mini-batch's products without
    # building its sparse matrix, which costs more than the products at small batch sizes.
    from scipy.sparse._sparsetools import csc_matvec, csc_matvecs, csr_matvec, csr_matvecs
except ImportError:  # pragma: no cover - a SciPy that moved them: the public products
    _RAW_KERNELS = False
else:
    _RAW_KERNELS = True

__all__ = ["LOSS_ARITHMETIC", "LogisticTask", "sample_rows"]

Matrix = np.ndarray | sp.csr_matrix

# Rows for this many consecutive steps are drawn from one generator: cheap to draw, and the
# stream from any step on is still a pure function of (seed, step).
_STEPS_PER_CHUNK = 256

# The first chunk of a stream comes in pieces growing by this factor (see _row_chunks).
_PIECE_GROWTH = 4

# A block of steps whose rows are gathered together holds about this many stored entries at
# most (12 bytes each): a few megabytes, however large the batch.
_BLOCK_ENTRIES = 1 << 20

#: How the per-row loss ``−log s(m)`` is computed (:func:`_loss_terms`). A logistic run's identity
#: holds it: another form of the same function changes stored losses in their last bits.
LOSS_ARITHMETIC = "log1p(exp(-|m|)) - min(m, 0), NumPy ufuncs"

# An evaluation takes the rows in blocks of this many (see LogisticTask._blocks).
_EVALUATION_ROWS = 16384

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
    for rows in _row_chunks(n, batch_size, seed=seed, start_step=start_step):
        yield from rows


def _row_chunks(n: int, batch_size: int, *, seed: int, start_step: int) -> Iterator[np.ndarray]:
    """The rows of :func:`sample_rows`, one ``(steps, batch_size)`` array per piece of a chunk.

    The chunk holding ``start_step`` comes in pieces of 1, 4, 16, … steps (fourfold), each from
    a fresh draw of the chunk's prefix up to the piece's end; every later chunk whole. NumPy's
    ``Generator.integers`` fills an array element after element, so the first ``k`` steps of a
    draw are those of the whole chunk's draw (tested). A short run then draws, and gathers,
    about the rows it trains on — a search stage's few steps, a large batch's epoch — instead of
    256 steps' worth (a million indices and their rows at batch 4096); a long run draws its
    first chunk about 1.4 times.
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1; got n={n}, batch_size={batch_size}")
    chunk, start = divmod(start_step, _STEPS_PER_CHUNK)
    piece = 1
    while start < _STEPS_PER_CHUNK:
        stop = min(_STEPS_PER_CHUNK, start + piece)
        rows = np.random.default_rng([seed, chunk]).integers(0, n, size=(stop, batch_size))
        yield rows[start:]
        start, piece = stop, piece * _PIECE_GROWTH
    while True:
        chunk += 1
        yield np.random.default_rng([seed, chunk]).integers(
            0, n, size=(_STEPS_PER_CHUNK, batch_size)
        )


class MiniBatch(NamedTuple):
    """Rows of the training set, gathered: what :meth:`LogisticTask.batches` yields.

    The rows are stored **signed**, ``y_i x_i``: the margins ``y_i ⟨x_i, w⟩`` are then one
    product, and since multiplying by ``±1`` is exact, every number equals the one computed
    from ``x_i`` and ``y_i`` apart.

    Attributes:
        rows: Their indices into ``X`` (``M`` of them).
        signed: ``y_B ⊙ X[rows]`` for dense ``X``; ``None`` for sparse ``X``.
        indptr, indices, data: For sparse ``X``, the signed rows in CSR form: ``indptr`` holds
            ``M + 1`` offsets into ``indices`` and ``data``, arrays shared by every mini-batch
            gathered in the same block (so ``indptr[0]`` need not be 0).
    """

    rows: np.ndarray
    signed: np.ndarray | None
    indptr: np.ndarray | None = None
    indices: np.ndarray | None = None
    data: np.ndarray | None = None


def _features_times(batch: MiniBatch, W: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``(y_B ⊙ X_B) @ W``, shape ``(M, K)``: SciPy's product's numbers, without its matrix.

    ``out``, a C-contiguous ``(M, K)`` array, receives the product when given (sparse ``X``).
    """
    if batch.signed is not None:
        return batch.signed @ W
    assert batch.indptr is not None and batch.indices is not None and batch.data is not None
    rows, lanes = len(batch.rows), W.shape[1]
    if not _RAW_KERNELS:  # pragma: no cover
        return _csr_rows(batch, W.shape[0]) @ W
    if out is None:
        result = np.zeros((rows, lanes))
    else:  # the kernels add into their output
        result = out
        result.fill(0.0)
    # One column goes through the vector kernel, as SciPy dispatches a (d, 1) operand.
    if lanes == 1:
        csr_matvec(rows, W.shape[0], batch.indptr, batch.indices, batch.data, W.ravel(),
                   result.ravel())  # fmt: skip
    else:
        csr_matvecs(rows, W.shape[0], lanes, batch.indptr, batch.indices, batch.data, W.ravel(),
                    result.ravel())  # fmt: skip
    return result


def _features_transposed_times(batch: MiniBatch, C: np.ndarray, d: int) -> np.ndarray:
    """``(y_B ⊙ X_B)ᵀ @ C``, shape ``(d, K)``, for ``C`` of shape ``(M, K)``: SciPy's numbers."""
    if batch.signed is not None:
        return np.asarray(batch.signed.T @ C)
    assert batch.indptr is not None and batch.indices is not None and batch.data is not None
    rows, lanes = C.shape
    if not _RAW_KERNELS:  # pragma: no cover
        return np.asarray(_csr_rows(batch, d).T @ C)
    result = np.zeros((d, lanes))
    if lanes == 1:
        csc_matvec(d, rows, batch.indptr, batch.indices, batch.data, C.ravel(), result.ravel())
    else:
        csc_matvecs(d, rows, lanes, batch.indptr, batch.indices, batch.data, C.ravel(),
                    result.ravel())  # fmt: skip
    return result


def _csr_rows(batch: MiniBatch, d: int) -> sp.csr_matrix:  # pragma: no cover
    """The batch's rows as a SciPy matrix (only where SciPy's raw kernels are not found)."""
    assert batch.indptr is not None and batch.indices is not None and batch.data is not None
    start, stop = int(batch.indptr[0]), int(batch.indptr[-1])
    return sp.csr_matrix(
        (batch.data[start:stop], batch.indices[start:stop], batch.indptr - start),
        shape=(len(batch.rows), d),
    )


def _loss_and_gradient(batch: MiniBatch, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``W``: the mean loss over the batch and its gradient ``X_Bᵀ c_B / M``.

    With margins ``m_i = y_i ⟨x_i, w⟩`` the coefficients are ``c_i = −y_i s(−m_i)``; the
    product takes the signed rows ``y_i x_i`` times ``−s(−m_i)``, term for term the same
    numbers. The margins' buffer is reused for the coefficients (small arrays, many steps).
    """
    margins = _features_times(batch, W)
    losses = _mean_losses(margins)
    coefficients = np.negative(margins, out=margins)
    expit(coefficients, out=coefficients)
    np.negative(coefficients, out=coefficients)
    gradient = _features_transposed_times(batch, coefficients, W.shape[0])
    return losses, np.divide(gradient, len(batch.rows), out=gradient)


def _mean_losses(margins: np.ndarray) -> np.ndarray:
    """Per column of ``margins`` (shape ``(M, K)``): ``(1/M) Σ_i −log s(m_ik)``.

    Each column's terms (:func:`_loss_terms`) are contiguous and summed in the same order whatever
    the number of columns: NumPy sums a contiguous axis pairwise but a strided one sequentially,
    so ``mean(axis=0)`` of an ``(M, K)`` array would round differently for K = 1 and K > 1, and
    lane k's value would not be bit-identical to a run with lane k alone. (The sum and the
    division are ``ndarray.mean``'s own two steps, without its Python wrapper.)
    """
    return np.add.reduce(_loss_terms(margins), axis=1) / margins.shape[0]


def _loss_terms(
    margins: np.ndarray, terms: np.ndarray | None = None, scratch: np.ndarray | None = None
) -> np.ndarray:
    """The ``(K, M)`` array of ``−log s(m_ik) = log(1 + e^{−|m_ik|}) − min(m_ik, 0)``, lane by lane.

    For C-contiguous margins of shape ``(M, K)``, row k of the result holds lane k's ``M``
    terms, contiguously. The form never overflows (``e^{−|m|} ≤ 1``) and loses nothing for
    large ``|m|``: ``log1p`` of a tiny ``e^{−|m|}`` is that number to full precision.

    Why not SciPy's ``log_expit``: it is a scalar loop of about 13 ns an element, while NumPy's
    ``exp`` and ``log1p`` are vectorised (about 1.5 ns for the pair); an evaluation takes ``n``
    of them per lane, so at K lanes it was half a vectorised run's time. The two agree to
    ≈ 4e-16 relative (tested).

    Lane k's terms are bitwise those of a run with lane k alone: the exact operations
    (``copysign``, ``minimum``, the subtraction) are the same numbers however NumPy loops, and
    the two transcendental ones run over one contiguous buffer, where NumPy's vectorised loop
    gives every position, tail included, the same instructions (tested at every offset and
    length). Which instructions depends on the CPU (NumPy dispatches AVX-512 or AVX2 code at
    import), so across machines the last bit may differ; :data:`LOSS_ARITHMETIC` names this
    form in every logistic run's identity.

    ``terms`` (C-contiguous, ``(K, M)``, returned) and ``scratch`` (C-contiguous, ``(M, K)``)
    are used as the buffers when given.
    """
    rows, lanes = margins.shape
    terms = np.empty((lanes, rows)) if terms is None else terms
    softplus = np.empty((rows, lanes)) if scratch is None else scratch
    np.copysign(margins, -1.0, out=softplus)  # −|m|
    np.exp(softplus, out=softplus)
    np.log1p(softplus, out=softplus)
    np.minimum(margins.T, 0.0, out=terms)
    return np.subtract(softplus.T, terms, out=terms)


class _BatchLogisticLoss(torch.autograd.Function):
    """Mean logistic loss of a mini-batch per column of ``W``; gradient by one sparse product."""

    @staticmethod
    def forward(ctx: Any, weights: torch.Tensor, batch: MiniBatch) -> torch.Tensor:
        losses, gradient = _loss_and_gradient(batch, weights.detach().numpy())
        ctx.save_for_backward(torch.from_numpy(gradient))
        return torch.from_numpy(losses)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (gradient,) = ctx.saved_tensors
        return gradient * grad_output, None


class LogisticTask:
    """Logistic regression on ``(X, y)`` with K lanes of weights (see the module docstring).

    ``loss(batch)`` returns the K mean losses over a mini-batch (a :class:`MiniBatch` from
    :meth:`batches`, or an array of row indices), shape ``(K,)``; :meth:`accumulate_gradient`
    is the same with its backward pass, in closed form (the loop's route). ``evaluate()``
    returns per lane the full training loss ``train_loss`` (equal to
    :func:`anisoada.problems.logistic.logistic_loss` on all of ``X``) and, when a test set is given,
    ``test_loss`` and ``test_accuracy`` (the fraction with ``y_i ⟨x_i, w⟩ > 0``; a margin within
    rounding of zero counts one half); :meth:`evaluate_lanes` computes them for some lanes only
    (the loop asks for the lanes still running).

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
            self._test_rows = _all_rows(_signed(self.X_test, self.y_test))
        # The signed rows y_i x_i, which every product reads (see MiniBatch).
        self._signed = _signed(self.X, self.y)
        self._rows = _all_rows(self._signed)
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
        self._kept_buffers: dict[str, np.ndarray] = {}

    @property
    def lanes(self) -> int:
        """K, the number of weight columns."""
        return int(self.weights.shape[1])

    def parameters(self) -> list[torch.Tensor]:
        return [self.weights]

    def batches(
        self, *, seed: int, batch_size: int, micro_batch_size: int, start_step: int
    ) -> Iterator[Sequence[MiniBatch]]:
        """Each step's micro-batches of the rows :func:`sample_rows` draws."""
        micro = min(micro_batch_size, batch_size)
        n = self.X.shape[0]
        steps_per_block = self.steps_per_block(batch_size)
        for chunk in _row_chunks(n, batch_size, seed=seed, start_step=start_step):
            for first in range(0, len(chunk), steps_per_block):
                block = self._gather_block(chunk[first : first + steps_per_block].ravel())
                for start in range(0, len(block.rows), batch_size):
                    yield tuple(
                        self._slice(block, start + i, start + min(i + micro, batch_size))
                        for i in range(0, batch_size, micro)
                    )

    def steps_per_block(self, rows_per_step: int) -> int:
        """How many steps' rows one gather takes: a chunk's worth, or for sparse ``X`` as many as
        keep a block near ``_BLOCK_ENTRIES`` stored entries (a large batch's chunk of 256 steps
        would be gathered at once otherwise, and most of it perhaps never trained on)."""
        if not sp.issparse(self.X):
            return _STEPS_PER_CHUNK
        step_entries = max(1, rows_per_step * self.X.nnz // self.X.shape[0])
        return max(1, min(_STEPS_PER_CHUNK, _BLOCK_ENTRIES // step_entries))

    def loss(self, batch: MiniBatch | np.ndarray) -> torch.Tensor:
        return _BatchLogisticLoss.apply(self.weights, self._batch(batch))

    def accumulate_gradient(self, batch: MiniBatch | np.ndarray, scale: float) -> torch.Tensor:
        """``loss(batch)`` and its backward pass weighted by ``scale``, without autograd.

        Adds ``scale`` times lane k's gradient to column k of ``weights.grad`` (sets it when
        ``None``) and returns the detached losses: the numbers of
        ``(loss(batch) * scale).sum().backward()``, bit for bit.
        """
        losses, gradient = _loss_and_gradient(self._batch(batch), self.weights.detach().numpy())
        if scale != 1.0:  # g · 1 = g: the product autograd would take changes nothing
            gradient = gradient * scale
        if self.weights.grad is None:
            self.weights.grad = torch.from_numpy(gradient)
        else:
            self.weights.grad.add_(torch.from_numpy(gradient))
        return torch.from_numpy(losses)

    def weight(self, batch: MiniBatch | np.ndarray) -> float:
        return float(len(batch.rows if isinstance(batch, MiniBatch) else batch))

    def _batch(self, batch: MiniBatch | np.ndarray) -> MiniBatch:
        if isinstance(batch, MiniBatch):
            return batch
        rows = np.asarray(batch)
        return self._slice(self._gather_block(rows), 0, len(rows))

    def _gather_block(self, rows: np.ndarray) -> MiniBatch:
        """The signed rows of several steps, for sparse ``X`` as one CSR selection of all.

        Dense features are left out (``signed`` and ``indptr`` both ``None``): :meth:`_slice`
        gathers them per mini-batch.
        """
        if not sp.issparse(self._signed):
            return MiniBatch(rows, None)
        block = self._signed[rows]
        return MiniBatch(rows, None, block.indptr, block.indices, block.data)

    def _slice(self, block: MiniBatch, start: int, stop: int) -> MiniBatch:
        """Rows ``start:stop`` of a block: views of its CSR arrays, or dense signed rows.

        Dense rows are gathered afresh, as one array per mini-batch: BLAS then multiplies the
        operand it always did.
        """
        if block.indptr is None:
            rows = block.rows[start:stop]
            return MiniBatch(rows, np.asarray(self._signed[rows]))
        return _row_range(block, start, stop)

    def evaluate(self) -> Mapping[str, np.ndarray]:
        return self._evaluate(None)

    def evaluate_lanes(self, lanes: Sequence[int]) -> Mapping[str, np.ndarray]:
        """:meth:`evaluate` of the given lanes only, each value of shape ``(len(lanes),)``.

        Lane k's numbers are those of ``evaluate()[name][k]``, to the last bit: each column's
        products and sums do not depend on the other columns. The full-data loss is the cost
        of an evaluation, ``n`` logarithms per lane, so leaving out lanes that no longer
        train (diverged) saves their share.
        """
        return self._evaluate(np.asarray(lanes, dtype=np.intp))

    def _evaluate(self, lanes: np.ndarray | None) -> Mapping[str, np.ndarray]:
        all_lanes = self.weights.detach().numpy()
        W = all_lanes if lanes is None else np.ascontiguousarray(all_lanes[:, lanes])
        loss_sums = np.zeros(W.shape[1])
        for _, _, terms in self._blocks(self._rows, W):
            loss_sums += np.add.reduce(terms, axis=1)
        metrics = {"train_loss": loss_sums / len(self._rows.rows)}
        if self.X_test is not None:
            # A margin within rounding of 0 is a tie (counted half right, random tie-breaking):
            # e.g. w = 0, or — in rotated coordinates — a test row whose features training
            # never touched, where the exact margin is 0 and the computed one ±1e-19. (The
            # norms of all lanes, then the subset: a norm's rounding depends on the lane count.)
            norms = np.linalg.norm(all_lanes, axis=0)
            norms = norms if lanes is None else norms[lanes]
            loss_sums = np.zeros(W.shape[1])
            right, ties = np.zeros(W.shape[1]), np.zeros(W.shape[1])
            for start, margins, terms in self._blocks(self._test_rows, W):
                loss_sums += np.add.reduce(terms, axis=1)
                row_norms = self._test_row_norms[start : start + len(margins), None]
                tie = np.abs(margins) <= _TIE_RTOL * row_norms * norms
                right += ((margins > 0) & ~tie).sum(axis=0)
                ties += tie.sum(axis=0)
            n_test = len(self._test_rows.rows)
            metrics["test_loss"] = loss_sums / n_test
            metrics["test_accuracy"] = right / n_test + 0.5 * (ties / n_test)
        return metrics

    def _blocks(
        self, rows: MiniBatch, W: np.ndarray
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Per block of :data:`_EVALUATION_ROWS` rows: its first row, its ``(rows, K)`` margins
        and its ``(K, rows)`` loss terms (both in buffers reused by the next block).

        Blocks keep an evaluation's arrays in cache, and kept buffers spare it the page faults
        of fresh ``n × K`` arrays, which cost more than the arithmetic that fills them. The
        blocks do not depend on K, so neither does the order of any lane's sums.
        """
        n, lanes = len(rows.rows), W.shape[1]
        for start in range(0, n, _EVALUATION_ROWS):
            stop = min(start + _EVALUATION_ROWS, n)
            margins = _features_times(
                _row_range(rows, start, stop), W, out=self._buffer("margins", (stop - start, lanes))
            )
            terms = _loss_terms(
                margins,
                self._buffer("terms", (lanes, stop - start)),
                self._buffer("softplus", (stop - start, lanes)),
            )
            yield start, margins, terms

    def _buffer(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        """A C-contiguous array of ``shape``: a view of a buffer kept under ``name``."""
        size = shape[0] * shape[1]
        buffer = self._kept_buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._kept_buffers[name] = np.empty(size)
        return buffer[:size].reshape(shape)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.detach().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            self.weights.copy_(state["weights"])


def _signed(X: Matrix, y: np.ndarray) -> Matrix:
    """``y ⊙ X``: row i times its label (exact, a sign), in ``X``'s format."""
    if sp.issparse(X):
        signed = X.copy()
        signed.data *= np.repeat(y, np.diff(X.indptr))
        return signed
    return y[:, None] * X


def _row_range(batch: MiniBatch, start: int, stop: int) -> MiniBatch:
    """Rows ``start:stop`` of a batch, as views (its dense rows, or its CSR arrays)."""
    rows = batch.rows[start:stop]
    if batch.signed is not None:
        return MiniBatch(rows, batch.signed[start:stop])
    assert batch.indptr is not None
    return MiniBatch(rows, None, batch.indptr[start : stop + 1], batch.indices, batch.data)


def _all_rows(signed: Matrix) -> MiniBatch:
    """Every row of a signed matrix as one :class:`MiniBatch` (for the full-data metrics)."""
    rows = np.arange(signed.shape[0])
    if sp.issparse(signed):
        return MiniBatch(rows, None, signed.indptr, signed.indices, signed.data)
    return MiniBatch(rows, signed)


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
