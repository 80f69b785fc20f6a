"""A user's own PyTorch problem as a training :class:`~anisoada.train.Task`.

A *module problem* is what a user function returns (:class:`ModuleProblem`, or the plain tuple
``(model_factory, loss_fn, data)``):

* ``model_factory() -> torch.nn.Module`` — a fresh model (called after seeding torch, so every
  optimizer of a seed starts from the same initial weights);
* ``loss_fn(model, batch) -> scalar tensor`` — the **mean** loss over the batch's samples (the
  convention of :mod:`anisoada.measure`, so the same function is measured and trained);
* ``data`` — the training samples: a tensor, or a tuple/list/dict of tensors whose leading
  dimension indexes samples; or a mapping ``{"train": …, "test": …}``.

Mini-batches are ``M`` rows drawn uniformly with replacement (assumption A4), seeded as the
logistic task's (:func:`~anisoada.experiments.tasks.logistic.sample_rows`), so a batch is
unbiased with per-coordinate variance ``σ_j²/M``. One learning rate per run (no lanes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from anisoada.experiments.tasks.logistic import sample_rows

__all__ = ["ModuleProblem", "ModuleTask", "as_module_problem", "index_batch", "num_samples"]


@dataclass(frozen=True)
class ModuleProblem:
    """A model factory, a mean-reduced loss and the data (see the module docstring).

    Attributes:
        model_factory: Returns a fresh ``torch.nn.Module``.
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean over the batch's samples.
        train: Training samples (tensor or tuple/list/dict of tensors, samples first).
        test: Optional test samples of the same structure.
        convex: Whether the loss is convex in the parameters (then the end of a long run
            approximates the minimiser, and the convex bounds apply).
        f_star: The minimum of the training loss when known (verdicts then compare gaps).
    """

    model_factory: Callable[[], torch.nn.Module]
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor]
    train: Any
    test: Any = None
    convex: bool = False
    f_star: float | None = None


def as_module_problem(value: Any, where: str = "the problem function") -> ModuleProblem:
    """A :class:`ModuleProblem` from what a user function returned (checked)."""
    if isinstance(value, ModuleProblem):
        problem = value
    elif isinstance(value, tuple | list) and len(value) == 3:
        factory, loss_fn, data = value
        if isinstance(data, Mapping) and "train" in data:
            problem = ModuleProblem(factory, loss_fn, data["train"], data.get("test"))
        else:
            problem = ModuleProblem(factory, loss_fn, data)
    else:
        raise ValueError(
            f"{where} must return a ModuleProblem or (model_factory, loss_fn, data); got "
            f"{type(value).__name__}"
        )
    if not callable(problem.model_factory) or not callable(problem.loss_fn):
        raise ValueError(f"{where}: model_factory and loss_fn must be callables")
    n = num_samples(problem.train)
    if n < 1:
        raise ValueError(f"{where}: the training data has no samples")
    return problem


def _leaves(data: Any) -> list[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        return [data]
    if isinstance(data, Mapping):
        return [t for v in data.values() for t in _leaves(v)]
    if isinstance(data, tuple | list):
        return [t for v in data for t in _leaves(v)]
    raise ValueError(f"data must be tensors (or tuples/lists/dicts of them); got {type(data)}")


def num_samples(data: Any) -> int:
    """The common leading dimension of every tensor in ``data``."""
    sizes = {int(t.shape[0]) for t in _leaves(data)}
    if len(sizes) != 1:
        raise ValueError(
            f"every tensor of the data must have the same first dimension; got {sizes}"
        )
    return sizes.pop()


def index_batch(data: Any, rows: torch.Tensor) -> Any:
    """``data`` restricted to ``rows`` (same structure)."""
    if isinstance(data, torch.Tensor):
        return data[rows]
    if isinstance(data, Mapping):
        return {k: index_batch(v, rows) for k, v in data.items()}
    if isinstance(data, tuple):
        return tuple(index_batch(v, rows) for v in data)
    return [index_batch(v, rows) for v in data]


class ModuleTask:
    """Train a :class:`ModuleProblem`'s model with the one loop (one lane).

    ``evaluate()`` returns the full training loss ``train_loss`` (mean over every training
    sample, in chunks of ``eval_chunk``) and, with test data, ``test_loss``.
    """

    def __init__(self, problem: ModuleProblem, *, init_seed: int, eval_chunk: int = 4096) -> None:
        self.problem = problem
        torch.manual_seed(init_seed)
        self.model = problem.model_factory()
        self.n = num_samples(problem.train)
        self.eval_chunk = eval_chunk

    def parameters(self) -> list[torch.Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def batches(
        self, *, seed: int, batch_size: int, micro_batch_size: int, start_step: int
    ) -> Iterator[Sequence[Any]]:
        for rows in sample_rows(self.n, batch_size, seed=seed, start_step=start_step):
            index = torch.from_numpy(rows)
            yield [
                index_batch(self.problem.train, index[i : i + micro_batch_size])
                for i in range(0, batch_size, micro_batch_size)
            ]

    def loss(self, batch: Any) -> torch.Tensor:
        return self.problem.loss_fn(self.model, batch)

    def weight(self, batch: Any) -> float:
        return float(num_samples(batch))

    def _mean_loss(self, data: Any) -> float:
        n = num_samples(data)
        total = 0.0
        with torch.no_grad():
            for start in range(0, n, self.eval_chunk):
                rows = torch.arange(start, min(n, start + self.eval_chunk))
                piece = index_batch(data, rows)
                total += float(self.problem.loss_fn(self.model, piece)) * len(rows)
        return total / n

    def evaluate(self) -> Mapping[str, Any]:
        metrics = {"train_loss": self._mean_loss(self.problem.train)}
        if self.problem.test is not None:
            metrics["test_loss"] = self._mean_loss(self.problem.test)
        return metrics

    def flat_parameters(self) -> torch.Tensor:
        """Every trainable parameter, flattened in ``named_parameters()`` order."""
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
