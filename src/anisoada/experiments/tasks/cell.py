"""Logistic regression with the lanes of a whole sweep cell: several optimizers and seeds at once.

A :class:`~anisoada.experiments.tasks.LogisticTask` trains K learning rates of one optimizer and
one seed as the columns of a ``d × K`` weight matrix. A :class:`CellTask` trains every lane of a
*cell* — one (problem, batch size) of a sweep: each lane an (optimizer, seed, learning rate) —
in one pass:

* the weights are one contiguous ``d × K_g`` block per optimizer (:meth:`CellTask.parameters`),
  so that each optimizer keeps its own state over its own block
  (:class:`~anisoada.experiments.bundle.OptimizerBundle` steps them together) and takes the
  route an ordinary run's contiguous ``d × K`` matrix takes (torch's fused kernels need
  contiguous tensors, and a route rounds its own way);
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
        # The inner task's d × K matrix is what its evaluation reads: the blocks are copied
        # into it before an evaluation (d × K numbers, against the n × K of the evaluation).
        self._weights = self._inner.weights.detach()
        self.blocks = [
            torch.nn.Parameter(self._weights[:, a:b].clone(memory_format=torch.contiguous_format))
            for a, b in zip(self._edges, self._edges[1:])
        ]
        self._masks: dict[int, np.ndarray] = {}
        # NumPy views of the same storage (the optimizers update the blocks in place).
        self._block_arrays = [block.detach().numpy() for block in self.blocks]
        self._gathered = len(self.blocks) > 1 and self._weights.numel() <= _GATHERED_ELEMENTS
        # Per stream: its lanes, and their columns within each block.
        self._stream_columns = [
            (
                np.flatnonzero(self.lane_stream == s),
                [
                    np.flatnonzero(self.lane_stream[a:b] == s)
                    for a, b in zip(self._edges, self._edges[1:])
                ],
            )
            for s in range(streams)
        ]

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
        losses, gradients = self._losses_and_gradient(batch)
        for block, gradient in zip(self.blocks, gradients):
            if scale != 1.0:  # as LogisticTask: g · 1 = g
                gradient *= scale
            if block.grad is None:
                block.grad = torch.from_numpy(gradient)
            else:
                block.grad.add_(torch.from_numpy(gradient))
        return torch.from_numpy(losses)

    def weight(self, batch: CellBatch) -> float:
        return float(batch.batch_size)

    def evaluate(self) -> Mapping[str, np.ndarray]:
        """Full-data metrics of every lane (those of a ``LogisticTask`` on the same columns)."""
        self._gather_blocks()
        return self._inner.evaluate()

    def evaluate_lanes(self, lanes: Sequence[int]) -> Mapping[str, np.ndarray]:
        """:meth:`evaluate` for the given lanes only."""
        self._gather_blocks()
        return self._inner.evaluate_lanes(lanes)

    def weights(self) -> np.ndarray:
        """The ``d × K`` matrix of every lane's weights, blocks side by side."""
        self._gather_blocks()
        return self._weights.numpy().copy()

    def _gather_blocks(self) -> None:
        """The blocks' current values side by side in the inner task's ``d × K`` matrix (each
        block its own storage: ``torch.cat`` may not write over an input)."""
        torch.cat([block.detach() for block in self.blocks], dim=1, out=self._weights)

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

    def _losses_and_gradient(self, batch: CellBatch) -> tuple[np.ndarray, list[np.ndarray]]:
        """The K losses and each block's ``d × K_g`` gradient, every lane on its own stream's rows.

        The losses are each lane's mean of ``−log s(m_i)`` over its own ``M`` margins (the same
        terms and contiguous sum as ``LogisticTask``), the gradient ``X_Bᵀ c / M`` over its own
        rows: the numbers of the lane's ordinary run (each column of a product is summed alone,
        in the same order, whatever the other columns). Small steps multiply the ``S·M`` rows
        at once (the other streams' coefficients set to zero, which adds exact zeros); larger
        ones, where the ``S``-fold arithmetic would outweigh the calls it saves, take one
        product per stream over that stream's lanes of every block.
        """
        losses = np.empty(self.lanes)
        weights = self._block_arrays
        if batch.batch_size * len(self.stream_seeds) <= _JOINT_ROWS:
            gradients = self._joint(batch, weights, losses)
        else:
            gradients = self._per_stream(batch, weights, losses)
        return losses, gradients

    def _joint(
        self, batch: CellBatch, weights: list[np.ndarray], losses: np.ndarray
    ) -> list[np.ndarray]:
        M, d = batch.batch_size, self._weights.shape[0]
        edges = list(zip(self._edges, self._edges[1:]))
        if self._gathered:
            # Every lane in one product: the blocks side by side in the inner matrix, and the
            # gradient's columns copied out per block (2·d·K numbers, fewer than a call costs).
            self._gather_blocks()
            coefficients = self._joint_coefficients(
                batch, self._weights.numpy(), 0, self.lanes, losses
            )
            gradient = _features_transposed_times(batch.rows, coefficients, d)
            np.divide(gradient, M, out=gradient)
            return [gradient[:, a:b].copy() for a, b in edges]
        gradients = []
        for w, (a, b) in zip(weights, edges):
            part = _features_transposed_times(
                batch.rows, self._joint_coefficients(batch, w, a, b, losses), d
            )
            gradients.append(np.divide(part, M, out=part))
        return gradients

    def _joint_coefficients(
        self, batch: CellBatch, weights: np.ndarray, a: int, b: int, losses: np.ndarray
    ) -> np.ndarray:
        """Lanes ``a … b−1`` (the columns of ``weights``) on all ``S·M`` rows: their losses into
        ``losses[a:b]``, and their coefficients, zero on the other streams' rows."""
        M, S = batch.batch_size, len(self.stream_seeds)
        margins = _features_times(batch.rows, weights)
        sums = np.add.reduce(_loss_terms(margins).reshape(b - a, S, M), axis=2)
        losses[a:b] = sums[np.arange(b - a), self.lane_stream[a:b]] / M
        coefficients = _coefficients(margins)
        coefficients *= self._own_rows(M)[:, a:b]
        return coefficients

    def _per_stream(
        self, batch: CellBatch, weights: list[np.ndarray], losses: np.ndarray
    ) -> list[np.ndarray]:
        # One product per stream over its lanes of every block: the rows are read once.
        M, d = batch.batch_size, self._weights.shape[0]
        gradients = [np.empty_like(w) for w in weights]
        for stream, (lanes, columns) in enumerate(self._stream_columns):
            if lanes.size == 0:
                continue
            rows = self._inner._slice(batch.rows, stream * M, (stream + 1) * M)
            stream_weights = np.concatenate(
                [w[:, cols] for w, cols in zip(weights, columns)], axis=1
            )
            margins = _features_times(rows, stream_weights)
            losses[lanes] = _mean_losses(margins)
            part = _features_transposed_times(rows, _coefficients(margins), d)
            np.divide(part, M, out=part)
            first = 0
            for gradient, cols in zip(gradients, columns):
                gradient[:, cols] = part[:, first : first + cols.size]
                first += cols.size
        return gradients


#: Up to this many rows a step (``S·M``), the streams are multiplied as one batch.
_JOINT_ROWS = 256

#: Up to this many weights (``d·K``), a joint step copies the blocks side by side and multiplies
#: every lane at once; above it the copy costs more than the calls of a product per block.
_GATHERED_ELEMENTS = 8192


def _coefficients(margins: np.ndarray) -> np.ndarray:
    """``c_i = −s(−m_i)`` in place of the margins (``LogisticTask``'s arithmetic)."""
    coefficients = np.negative(margins, out=margins)
    expit(coefficients, out=coefficients)
    return np.negative(coefficients, out=coefficients)


class _CellLoss(torch.autograd.Function):
    """The K losses of a cell's batches; gradients into each block by the closed form."""

    @staticmethod
    def forward(ctx: Any, task: CellTask, batch: CellBatch, *blocks: torch.Tensor) -> torch.Tensor:
        losses, gradients = task._losses_and_gradient(batch)
        ctx.save_for_backward(*(torch.from_numpy(gradient) for gradient in gradients))
        ctx.edges = task._edges
        return torch.from_numpy(losses)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        edges = ctx.edges
        return (
            None,
            None,
            *(g * grad_output[a:b] for g, a, b in zip(ctx.saved_tensors, edges, edges[1:])),
        )
