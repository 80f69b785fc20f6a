"""Ready-made callbacks for :func:`anisoada.train.train`, and checkpoint loading."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from anisoada._io import atomic_path
from anisoada.train.loop import Callback, Task, TrainResult, TrainState

__all__ = ["Checkpointer", "RowLogger", "load_checkpoint"]


class Checkpointer(Callback):
    """Write an exact resume point every ``every`` steps and at the end of training.

    The file (``torch.save`` format, written atomically) holds the task's state dict, the
    optimizer's state dict and the loop state (step, samples, rows so far, torch's RNG state);
    ``train(..., resume=load_checkpoint(path))`` continues from it with the results an
    uninterrupted run gives (the data stream resumes from the step index).

    Args:
        path: Where to write the checkpoint.
        every: Steps between checkpoints.
        enabled: Set ``False`` on every rank but 0 in distributed training.
        extra: Anything else to store (e.g. the run's config), under key ``"extra"``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        every: int,
        enabled: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer; got {every!r}")
        self.path = Path(path)
        self.every = every
        self.enabled = enabled
        self.extra = dict(extra or {})
        self._task: Task | None = None
        self._optimizer: Any = None

    def on_train_start(self, state: TrainState, task: Task, optimizer: Any) -> None:
        self._task, self._optimizer = task, optimizer

    def on_step_end(self, state: TrainState, task: Task, optimizer: Any) -> None:
        if state.step % self.every == 0:
            self._save(state)

    def on_train_end(self, state: TrainState, result: TrainResult) -> None:
        self._save(state)

    def _save(self, state: TrainState) -> None:
        if not self.enabled or self._task is None:
            return
        payload = {
            "task": self._task.state_dict(),
            "optimizer": self._optimizer.state_dict(),
            "loop": state.state_dict(),
            "extra": self.extra,
        }
        with atomic_path(self.path) as temporary:
            torch.save(payload, temporary)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :class:`Checkpointer` (pass it as ``train(resume=...)``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


class RowLogger(Callback):
    """Call ``sink(row)`` for every metric row as it is produced (e.g. print, or a progress bar).

    Example:
        >>> logger = RowLogger(lambda row: None)
    """

    def __init__(self, sink: Callable[[dict[str, Any]], None]) -> None:
        self.sink = sink

    def on_evaluate(self, state: TrainState, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.sink(dict(row))
