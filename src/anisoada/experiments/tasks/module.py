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

The user's code is checked where it enters: :func:`as_module_problem` wraps the factory and the
loss so that an exception they raise (or a ``sys.exit``) is a ``ValueError`` naming the problem
and the call, and :func:`check_module_problem` builds a model and evaluates the loss once on the
first batch, before any run, against the contract above.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from anisoada.experiments.tasks.logistic import sample_rows

__all__ = [
    "ModuleProblem",
    "ModuleTask",
    "as_module_problem",
    "check_module_problem",
    "describe_exception",
    "index_batch",
    "num_samples",
]


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


def describe_exception(error: BaseException) -> str:
    """An exception raised by a user's code, on one line: ``Type: message`` (a ``sys.exit`` as
    the call it was)."""
    if isinstance(error, SystemExit):
        return f"sys.exit({error.code!r})"
    text = " ".join(str(error).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _named(value: Any) -> str:
    """A value's type as a user reads it: ``numpy.ndarray``, ``float`` (never ``<class …>``)."""
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


@dataclass(frozen=True)
class _UserCall:
    """A user's callable whose exceptions (and ``sys.exit``) become a ``ValueError`` naming the
    problem, the call and the cause; the chained exception keeps the user's traceback."""

    function: Callable[..., Any]
    where: str
    what: str

    def __call__(self, *args: Any) -> Any:
        try:
            result = self.function(*args)
        except (Exception, SystemExit) as error:
            hint = _integer_data_hint(args[-1]) if args else ""
            raise ValueError(
                f"{self.where}: {self.what} raised {describe_exception(error)}{hint}"
            ) from error
        if self.what == "model_factory()" and not isinstance(result, torch.nn.Module):
            raise ValueError(
                f"{self.where}: model_factory() must return a torch.nn.Module; got {_named(result)}"
            )
        return result


def _integer_data_hint(batch: Any) -> str:
    """Why a loss may fail on integer data (a model's weights are floating point)."""
    try:
        leaves = _leaves(batch)
    except ValueError:
        return ""
    kinds = sorted(
        {str(t.dtype).removeprefix("torch.") for t in leaves if not t.is_floating_point()}
    )
    if not kinds:
        return ""
    return (
        f" (the batch holds {', '.join(kinds)} tensors: inputs to a model must be floating "
        "point, e.g. X.float() or X.double())"
    )


def as_module_problem(value: Any, where: str = "the problem function") -> ModuleProblem:
    """A :class:`ModuleProblem` from what a user function returned (checked).

    Its factory and loss come back wrapped: what they raise is a ``ValueError`` naming
    ``where`` and the call, and a factory must return a ``torch.nn.Module``.
    """
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
            f"{_named(value)}"
        )
    if not callable(problem.model_factory) or not callable(problem.loss_fn):
        raise ValueError(f"{where}: model_factory and loss_fn must be callables")
    try:
        n = num_samples(problem.train)
        if problem.test is not None:
            num_samples(problem.test)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if n < 1:
        raise ValueError(f"{where}: the training data has no samples")
    factory, loss_fn = problem.model_factory, problem.loss_fn
    return dataclasses.replace(
        problem,
        model_factory=factory
        if isinstance(factory, _UserCall)
        else _UserCall(factory, where, "model_factory()"),
        loss_fn=loss_fn
        if isinstance(loss_fn, _UserCall)
        else _UserCall(loss_fn, where, "loss_fn(model, batch)"),
    )


def check_module_problem(problem: ModuleProblem, where: str, rows: int) -> None:
    """Build a model and evaluate the loss once on the first ``rows`` training samples: the
    contract of the module docstring, checked before any run.

    The model must have trainable parameters; the loss must be a floating-point tensor of one
    element (the batch mean) that carries a gradient to them and is finite at the initial
    weights. torch's global random state is left as it was.

    Raises:
        ValueError: naming ``where`` and what the problem function must return instead.
    """
    contract = (
        "loss_fn(model, batch) must return the mean loss of the batch as a scalar tensor "
        "computed from model(...)"
    )
    with torch.random.fork_rng(devices=[]):
        model = problem.model_factory()
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError(
            f"{where}: the model of model_factory() has no trainable parameters; give a model "
            "whose parameters require grad"
        )
    count = min(rows, num_samples(problem.train))
    batch = index_batch(problem.train, torch.arange(count))
    loss: Any = problem.loss_fn(model, batch)  # the user's: anything until checked
    if not isinstance(loss, torch.Tensor):
        hint = " (a Python number: drop .item())" if isinstance(loss, int | float) else ""
        raise ValueError(f"{where}: {contract}; got {_named(loss)}{hint}")
    if loss.numel() != 1:
        raise ValueError(
            f"{where}: {contract}; got a tensor of shape {tuple(loss.shape)} (reduce it with "
            ".mean())"
        )
    if not loss.is_floating_point() or not loss.requires_grad:
        raise ValueError(
            f"{where}: {contract}; got a tensor without a gradient (computed with .item(), "
            ".detach(), numpy or under torch.no_grad())"
        )
    value = float(loss.detach())
    if not math.isfinite(value):
        raise ValueError(
            f"{where}: loss_fn returned {value} on the first {count} training samples at the "
            "initial weights; check the data and the loss"
        )
    try:
        gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
    except RuntimeError as error:
        raise ValueError(
            f"{where}: the gradient of loss_fn failed: {describe_exception(error)}"
        ) from error
    if all(gradient is None for gradient in gradients):
        raise ValueError(
            f"{where}: {contract}; its value does not depend on the model's trainable parameters"
        )


def _leaves(data: Any) -> list[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        return [data]
    if isinstance(data, Mapping):
        return [t for v in data.values() for t in _leaves(v)]
    if isinstance(data, tuple | list):
        return [t for v in data for t in _leaves(v)]
    hint = ": convert it with torch.from_numpy" if type(data).__module__ == "numpy" else ""
    raise ValueError(
        f"data must be torch tensors (or tuples/lists/dicts of them); got {_named(data)}{hint}"
    )


def num_samples(data: Any) -> int:
    """The common leading dimension of every tensor in ``data``."""
    leaves = _leaves(data)
    if not leaves:
        raise ValueError("the data holds no tensor; give tensors with the samples first")
    scalar = next((t for t in leaves if t.dim() == 0), None)
    if scalar is not None:
        raise ValueError(
            f"every tensor of the data needs the samples first; got a 0-d tensor "
            f"({scalar.item()!r}): give shape (n, ...)"
        )
    sizes = {int(t.shape[0]) for t in leaves}
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
