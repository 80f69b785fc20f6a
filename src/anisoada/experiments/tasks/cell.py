"""Logistic regression with the lanes of a whole sweep cell: several optimizers and seeds at once.

A :class:`~anisoada.experiments.tasks.LogisticTask` trains K learning rates of one optimizer and
one seed as the columns of a ``d × K`` weight matrix. A :class:`CellTask` trains every lane of a
*cell* — one (problem, batch size) of a sweep: each lane an (optimizer, seed, learning rate) —
in one pass:

* the weights are one ``d × K_g`` block per optimizer (:meth:`CellTask.parameters`), so that
  each optimizer keeps its own state over its own block
  (:class:`~anisoada.experiments.bundle.OptimizerBundle` steps them together);
* the lanes of seed ``s`` share the mini-batch stream an ordinary run at that seed draws
  (``stream_seeds[s]``): each step draws one mini-batch per stream, and the S batches are
  multiplied as one of ``S·M`` rows — every lane's margins on every row, then each lane's
  loss summed over its own stream's ``M`` rows only, and its gradient from coefficients that are
  zero on the other streams' rows (an exact zero term changes no sum). At small batches a step
  is dominated by the calls around the arithmetic, so one product of ``S·M`` rows costs about
  what one of ``M`` rows does.

Lane ``k``'s numbers are therefore those of the ordinary run of its (optimizer, seed, learning
rate), to the last bit; what is shared is the work around them — one training-loop step, one
evaluation pass — instead of one per run. Lanes are ordered block by block, as the blocks' columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.special import expit

from anisoada.experiments.tasks.logistic import (
    LogisticTask,
    MiniBatch,
    _features_times,
    _features_transposed_times,
    _loss_terms,
    _mean_losses,
    _row_chunks,
)

__all__ = ["CellBatch", "CellTask"]


class CellBatch(NamedTuple):
    """One step's rows: the ``M`` rows of each of the S streams, stream after stream."""

    rows: MiniBatch
    batch_size: int


class CellTask:
    """Lanes of several optimizers (weight blocks) and seeds (batch streams) in one run.

    Args:
        X, y: Training features (scipy sparse or dense, float64) and labels in ``{−1, +1}``.
        blocks: For each weight block (one per optimizer), the stream index of each of its
            columns (lanes).
        stream_seeds: The seed of each stream's mini-batches (the ``seed`` an ordinary run of
            that lane would give the training loop).
        X_test, y_test: Optional held-out set for the test metrics.

    ``loss`` / ``accumulate_gradient`` return the K losses of a step (lane ``k`` on its
    stream's batch); ``evaluate`` the full-data metrics of every lane, as a ``LogisticTask``
    with the same K columns would.

    Example:
        >>> import numpy as np
        >>> task = CellTask(np.eye(2), np.array([1.0, -1.0]), blocks=[[0, 1], [0]],
        ...                 stream_seeds=[7, 8])
        >>> [tuple(p.shape) for p in task.parameters()], task.lanes
        ([(2, 2), (2, 1)], 3)
    """

    def __init__(
        self,
        X: Any,
        y: np.ndarray,
        *,
        blocks: Sequence[Sequence[int]],
        stream_seeds: Sequence[int],
        X_test: Any = None,
        y_test: np.ndarray | None = None,
    ) -> None:
        self.stream_seeds = [int(seed) for seed in stream_seeds]
        if not self.stream_seeds:
            raise ValueError("a cell needs at least one stream")
        if not blocks or any(len(block) == 0 for block in blocks):
            raise ValueError("a cell needs at least one block, each with at least one lane")
        streams = len(self.stream_seeds)
        owners = [int(s) for block in blocks for s in block]
        if any(not 0 <= s < streams for s in owners):
            raise ValueError(f"lanes name streams outside 0 … {streams - 1}: {owners}")
        self.lane_stream = np.asarray(owners, dtype=np.intp)
        self._inner = LogisticTask(X, y, lanes=len(owners), X_test=X_test, y_test=y_test)
        self._edges = np.cumsum([0] + [len(block) for block in blocks])
        # One d × K matrix holds every lane: the inner task's, so its evaluation reads the lanes
        # as they are. Each block is a view of its columns (a leaf of its own, sharing the
        # storage), so the products read the matrix as it is and each optimizer updates its
        # columns in place: no copy in or out on a step or an evaluation.
        self._weights = self._inner.weights.detach()
        self.blocks = [
            torch.nn.Parameter(self._weights[:, a:b]) for a, b in zip(self._edges, self._edges[1:])
        ]
        self._masks: dict[int, np.ndarray] = {}

    @property
    def lanes(self) -> int:
        """K, the number of lanes (columns over all blocks)."""
        return int(self.lane_stream.size)

    def parameters(self) -> list[torch.Tensor]:
        """The weight blocks, one ``d × K_g`` matrix per optimizer."""
        return list(self.blocks)

    def batches(
        self, *, seed: int, batch_size: int, micro_batch_size: int, start_step: int
    ) -> Iterator[Sequence[CellBatch]]:
        """Each step's rows of every stream (``seed`` is unused: each stream has its own).

        Stream ``s`` draws exactly the rows :func:`~anisoada.experiments.tasks.sample_rows`
        draws for ``stream_seeds[s]``. A cell run takes whole batches: micro-batching (a memory
        knob of large models) is not offered here, and asking for it is an error rather than a
        silent change of stream.
        """
        if micro_batch_size < batch_size:
            raise ValueError(
                f"a cell run trains whole batches; got micro-batches of {micro_batch_size} "
                f"for batch size {batch_size}"
            )
        n = self._inner.X.shape[0]
        streams = [
            _row_chunks(n, batch_size, seed=stream_seed, start_step=start_step)
            for stream_seed in self.stream_seeds
        ]
        width = batch_size * len(streams)
        steps_per_block = self._inner.steps_per_block(width)
        for chunks in zip(*streams):
            rows = np.concatenate(chunks, axis=1)
            for first in range(0, len(rows), steps_per_block):
                block = self._inner._gather_block(rows[first : first + steps_per_block].ravel())
                for start in range(0, len(block.rows), width):
                    batch = self._inner._slice(block, start, start + width)
                    yield (CellBatch(batch, batch_size),)

    def loss(self, batch: CellBatch) -> torch.Tensor:
        """The K losses, with autograd into the weight blocks."""
        return _CellLoss.apply(self, batch, *self.blocks)

    def accumulate_gradient(self, batch: CellBatch, scale: float) -> torch.Tensor:
        """``loss(batch)`` and its backward pass weighted by ``scale``, without autograd."""
        losses, gradient = self._losses_and_gradient(batch)
        if scale != 1.0:  # as LogisticTask: g · 1 = g
            gradient = gradient * scale
        full = torch.from_numpy(gradient)
        for block, a, b in zip(self.blocks, self._edges, self._edges[1:]):
            if block.grad is None:
                block.grad = full[:, a:b]
            else:
                block.grad.add_(full[:, a:b])
        return torch.from_numpy(losses)

    def weight(self, batch: CellBatch) -> float:
        return float(batch.batch_size)

    def evaluate(self) -> Mapping[str, np.ndarray]:
        """Full-data metrics of every lane (those of a ``LogisticTask`` on the same columns)."""
        return self._inner.evaluate()

    def evaluate_lanes(self, lanes: Sequence[int]) -> Mapping[str, np.ndarray]:
        """:meth:`evaluate` for the given lanes only."""
        return self._inner.evaluate_lanes(lanes)

    def weights(self) -> np.ndarray:
        """The ``d × K`` matrix of every lane's weights, blocks side by side."""
        return self._weights.numpy().copy()

    def state_dict(self) -> dict[str, Any]:
        return {"blocks": [block.detach().clone() for block in self.blocks]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for block, saved in zip(self.blocks, state["blocks"]):
                block.copy_(saved)

    def _own_rows(self, batch_size: int) -> np.ndarray:
        """``(S·M, K)`` mask: 1 where the row belongs to the lane's stream, else 0."""
        mask = self._masks.get(batch_size)
        if mask is None:
            row_stream = np.repeat(np.arange(len(self.stream_seeds)), batch_size)
            mask = (row_stream[:, None] == self.lane_stream[None, :]).astype(np.float64)
            self._masks[batch_size] = mask
        return mask

    def _losses_and_gradient(self, batch: CellBatch) -> tuple[np.ndarray, np.ndarray]:
        """The K losses and the ``d × K`` gradient, every lane on its own stream's rows.

        The losses are each lane's mean of ``−log s(m_i)`` over its own ``M`` margins (the same
        terms and contiguous sum as ``LogisticTask``), the gradient ``X_Bᵀ c / M`` over its own
        rows: the numbers of the lane's ordinary run. Small steps multiply the ``S·M`` rows once for
        every lane (the other streams' coefficients set to zero, which adds exact zeros);
        larger ones, where the ``S``-fold arithmetic would outweigh the calls it saves, take one
        product per stream over that stream's lanes.
        """
        weights = self._weights.numpy()
        if batch.batch_size * len(self.stream_seeds) <= _JOINT_ROWS:
            return self._joint(batch, weights)
        return self._per_stream(batch, weights)

    def _joint(self, batch: CellBatch, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        M, K, S = batch.batch_size, self.lanes, len(self.stream_seeds)
        margins = _features_times(batch.rows, weights)
        sums = np.add.reduce(_loss_terms(margins).reshape(K, S, M), axis=2)
        losses = sums[np.arange(K), self.lane_stream] / M
        coefficients = _coefficients(margins)
        coefficients *= self._own_rows(M)
        gradient = _features_transposed_times(batch.rows, coefficients, weights.shape[0])
        return losses, np.divide(gradient, M, out=gradient)

    def _per_stream(self, batch: CellBatch, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        M, d = batch.batch_size, weights.shape[0]
        losses = np.empty(self.lanes)
        gradient = np.empty_like(weights)
        for stream, lanes in enumerate(self._stream_lanes):
            rows = self._inner._slice(batch.rows, stream * M, (stream + 1) * M)
            margins = _features_times(rows, np.ascontiguousarray(weights[:, lanes]))
            losses[lanes] = _mean_losses(margins)
            part = _features_transposed_times(rows, _coefficients(margins), d)
            gradient[:, lanes] = np.divide(part, M, out=part)
        return losses, gradient

    @property
    def _stream_lanes(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.lane_stream == s) for s in range(len(self.stream_seeds))]


#: Up to this many rows a step (``S·M``), the streams are multiplied as one batch.
_JOINT_ROWS = 256


def _coefficients(margins: np.ndarray) -> np.ndarray:
    """``c_i = −s(−m_i)`` in place of the margins (``LogisticTask``'s arithmetic)."""
    coefficients = np.negative(margins, out=margins)
    expit(coefficients, out=coefficients)
    return np.negative(coefficients, out=coefficients)


class _CellLoss(torch.autograd.Function):
    """The K losses of a cell's batches; gradients into each block by the closed form."""

    @staticmethod
    def forward(ctx: Any, task: CellTask, batch: CellBatch, *blocks: torch.Tensor) -> torch.Tensor:
        losses, gradient = task._losses_and_gradient(batch)
        ctx.save_for_backward(torch.from_numpy(gradient))
        ctx.edges = task._edges
        return torch.from_numpy(losses)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        (gradient,) = ctx.saved_tensors
        scaled = gradient * grad_output
        return (None, None, *(scaled[:, a:b] for a, b in zip(ctx.edges, ctx.edges[1:])))
