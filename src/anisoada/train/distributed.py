"""Data-parallel training over processes: ``torchrun --nproc_per_node=N -m anisoada ...``.

Every process (rank) holds a full copy of the model and trains on its share of each optimizer
step's batch. The model is *not* wrapped in ``DistributedDataParallel``: gradients are summed
across ranks by our own all-reduce (:class:`GradientAllReduce`, a callback of the one training
loop), once per optimizer step, after the step's last micro-batch and before the update.

This is equivalent to DDP with ``no_sync()`` on all but the last micro-batch (the same summed
gradient, up to float summation order), with one difference in cost: DDP overlaps its
all-reduce with the last backward pass, bucket by bucket, while ours starts after that backward
has finished — one un-overlapped all-reduce per optimizer step, small next to the
``batch_size / N`` examples of compute each rank does per step.

Why not DDP: the gradient-noise estimator (:class:`~anisoada.experiments.tasks.LayerNoiseMonitor`)
needs each micro-batch's *local* gradient on every rank, including the last micro-batch's, and
DDP's synchronised backward overwrites that one with the ranks' average before any callback
can read it.

Conventions: the task scales each rank's loss so that the gradient it accumulates is
``∇(Σ_{local terms} ℓ) / W``, with ``W`` the number of loss terms of the *whole* step over all
ranks; summing over ranks then gives the mean gradient of the step, exactly what one process
computes on the whole batch (up to float summation order).

Backends: NCCL when CUDA is available (one GPU per rank, ``cuda:LOCAL_RANK``), gloo on CPU.
Only rank 0 writes files (:attr:`DistributedContext.is_main`).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from anisoada.train.loop import Callback, Task, TrainState

__all__ = [
    "DistributedContext",
    "GradientAllReduce",
    "init_distributed",
    "shutdown_distributed",
]

# Gradients are summed in flat buckets of this many bytes: one collective per bucket instead
# of one per tensor (GPT-2 has 148 tensors), without a second full-size copy of the model.
_BUCKET_BYTES = 32 * 2**20
_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is in a data-parallel run (a single process is rank 0 of 1).

    Attributes:
        rank: this process's index, ``0 ≤ rank < world_size``.
        world_size: number of processes.
        local_rank: index on this machine (selects the GPU).
        backend: ``"gloo"``, ``"nccl"``, or ``None`` for a single process.
        device: where this rank's model lives (``"cpu"`` or ``"cuda:<local_rank>"``).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"Invalid DistributedContext: rank={self.rank}, world_size={self.world_size}."
            )
        if self.world_size > 1 and self.backend is None:
            raise ValueError("A DistributedContext with world_size > 1 needs a backend.")

    @property
    def is_main(self) -> bool:
        """Whether this process writes results, checkpoints and figures (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place, and return it (identity for one process)."""
        if self.distributed:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def all_reduce_gradients(self, parameters: Iterable[torch.Tensor]) -> None:
        """Replace each parameter's ``.grad`` by its sum over the ranks.

        Every rank must pass the same parameters in the same order; a parameter without a
        gradient on one rank must have none on all of them.
        """
        if not self.distributed:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        bucket: list[torch.Tensor] = []
        size = 0
        for grad in grads:
            bucket.append(grad)
            size += grad.numel() * grad.element_size()
            if size >= _BUCKET_BYTES:
                self._all_reduce_bucket(bucket)
                bucket, size = [], 0
        if bucket:
            self._all_reduce_bucket(bucket)

    def _all_reduce_bucket(self, grads: list[torch.Tensor]) -> None:
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (what DDP does at start-up)."""
        if not self.distributed:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                torch.distributed.broadcast(tensor, src=0)

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object), returned on every rank."""
        if not self.distributed:
            return value
        holder = [value if self.is_main else None]
        torch.distributed.broadcast_object_list(holder, src=0)
        return holder[0]

    def barrier(self) -> None:
        """Wait until every rank reaches this point."""
        if self.distributed:
            torch.distributed.barrier()


def init_distributed(
    environ: Mapping[str, str] | None = None, *, device: str | None = None, timeout_s: float = 1800
) -> DistributedContext:
    """Join the process group ``torchrun`` describes in the environment, if any.

    Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) this is a single process and nothing is
    initialised. Otherwise the backend is NCCL when CUDA is available and gloo on CPU, and each
    rank uses GPU ``LOCAL_RANK``.

    Args:
        environ: the environment to read (default ``os.environ``); ``torchrun`` sets ``RANK``,
            ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
        device: force ``"cpu"`` (gloo) even when CUDA is available; ``None`` chooses.
        timeout_s: how long a collective may wait for a missing rank before failing.

    Returns:
        The :class:`DistributedContext` of this process.

    Example:
        >>> init_distributed({}).world_size
        1
    """
    env = os.environ if environ is None else environ
    world_size = int(env.get("WORLD_SIZE", "1"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if world_size <= 1:
        return DistributedContext(device="cuda:0" if use_cuda else "cpu")
    missing = [name for name in _TORCHRUN_VARIABLES if name not in env]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={world_size} but {missing} are not set; start the run with "
            "`torchrun --nproc_per_node=N -m anisoada ...`."
        )
    rank, local_rank = int(env["RANK"]), int(env["LOCAL_RANK"])
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return DistributedContext(
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
        backend=backend,
        device=f"cuda:{local_rank}" if use_cuda else "cpu",
    )


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if context.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class GradientAllReduce(Callback):
    """Sum the accumulated gradients over the ranks before clipping and the optimizer step.

    Runs in ``on_gradients``; put it first among the callbacks so that every later one (noise
    measurement of the full step, gradient-norm logging) sees the synchronised gradient.
    ``task.parameters()`` must be in the same order on every rank.
    """

    def __init__(self, context: DistributedContext) -> None:
        self.context = context

    def on_gradients(self, state: TrainState, task: Task) -> None:
        self.context.all_reduce_gradients(task.parameters())
        marker: Any = getattr(task, "mark_gradients_synchronised", None)
        if marker is not None:
            marker()
