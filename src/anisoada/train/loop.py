"""The one training loop of anisoada, and the `Task` protocol every experiment plugs into.

Every experiment — logistic regression on LIBSVM data, GPT-2 instruction tuning — is a
:class:`Task` handed to :func:`train`. The loop reads top to bottom like nanoGPT's::

    for each optimizer step:
        set lr            lr_t = initial_lr · schedule(step)           (every param group)
        forward/backward  over the step's micro-batches, each loss weighted by its share
        callbacks         on_gradients (the accumulated gradient, before clipping)
        clip              optional global-norm clipping
        step, zero_grad
        divergence check  non-finite loss, or loss > divergence_factor × first loss → stop
        evaluate          every ``eval_every`` steps (from ``eval_from``) and at the end → one
                          metric row per lane
        callbacks         on_step_end (may request a stop; checkpoints are written here)

Protocol for a task (the LM task of issue 7 implements exactly this):

``parameters() -> list[torch.Tensor]``
    The trainable tensors. The optimizer is built on them *outside* the loop, e.g.
    ``OPTIMIZERS[name](task.parameters(), lr=..., **options)``; the loop only uses them for
    clipping.
``batches(*, seed, batch_size, micro_batch_size, start_step) -> Iterator[Sequence[batch]]``
    An infinite stream, one item per optimizer step: the micro-batches of that step, together
    holding exactly ``batch_size`` examples (``micro_batch_size`` of them each, the last may be
    smaller). The stream is a pure function of ``seed`` and the step index, and
    ``start_step=s`` must yield what the stream started at 0 yields from its ``s``-th item on:
    that is how an interrupted run resumes exactly. Batch objects are opaque to the loop.
``loss(batch) -> torch.Tensor``
    The **mean** loss over the batch's loss terms (examples, or response tokens for a language
    model), with autograd. Shape ``()`` for one run, or ``(K,)`` for K independent runs
    ("lanes") trained side by side on the same batches — e.g. K learning rates as the K columns
    of a weight matrix. Lanes must not interact: lane k's loss depends only on lane k's
    parameters.
``accumulate_gradient(batch, scale) -> torch.Tensor`` (optional)
    What ``loss(batch)`` followed by ``(loss * scale).sum().backward()`` does, without
    autograd: adds ``scale`` times each lane's gradient to ``.grad`` (setting it where it is
    ``None``) and returns the detached loss. A task whose gradient has a closed form (logistic
    regression) implements it, and the loop then uses it instead of ``loss``: building and
    walking an autograd graph costs more than a small closed-form step itself. The numbers
    must be those of the autograd route, to the last bit.
``weight(batch) -> float``
    How many loss terms ``loss(batch)`` averages over. Micro-batch ``i`` is back-propagated
    with weight ``weight_i / Σ weight``, so the accumulated gradient is the mean over all the
    step's loss terms whatever the micro-batch size (micro-batching is a memory knob only).
``evaluate() -> Mapping[str, float | array of shape (K,)]``
    Metrics at the current parameters (e.g. full training loss, test loss and accuracy);
    must not change the parameters or any random state the training stream depends on.
``evaluate_lanes(lanes) -> Mapping[str, float | array of shape (len(lanes),)]`` (optional)
    ``evaluate()`` of some lanes only, lane for lane the same numbers. Once a lane has
    diverged the loop asks only for the running ones, so a task whose evaluation costs per
    lane (a full-data loss) does not spend it on lanes that no longer get rows.
``state_dict() / load_state_dict(state)``
    Everything needed, with the optimizer's own state dict, to continue exactly (the
    parameters; buffers; nothing about the data position, which is ``start_step``).

Data parallelism fits without changing the loop: each rank's task yields its share of every
step's micro-batches, and a first callback sums the
accumulated gradients across ranks in ``on_gradients`` — once per optimizer step, after the
last micro-batch — so every rank takes the same step (the LM task's
:class:`~anisoada.train.distributed.GradientAllReduce`; no DDP wrapper). Only rank 0
writes results.

Divergence: a lane whose mini-batch loss is NaN/inf, or exceeds ``divergence_factor`` times its
first mini-batch loss, is marked ``"diverged"``; it gets one final row at that step (with NaN
evaluation metrics) and no rows after. Training stops when every lane has diverged. Other lanes
keep training (their parameters are independent).

Checkpoints: :meth:`TrainState.state_dict` together with the task's and the optimizer's state
dicts is an exact resume point; :class:`anisoada.train.Checkpointer` writes one
atomically and ``train(..., resume=load_checkpoint(path))`` continues from it with identical
results.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

# Re-exported: the loop's own records (``from anisoada.train.loop import Budget`` keeps working).
from anisoada.train.config import Budget, TrainConfig

__all__ = [
    "Budget",
    "Callback",
    "Task",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "train",
]


@runtime_checkable
class Task(Protocol):
    """What the training loop needs from an experiment (see the module docstring)."""

    def parameters(self) -> list[torch.Tensor]: ...

    def batches(
        self, *, seed: int, batch_size: int, micro_batch_size: int, start_step: int
    ) -> Iterator[Sequence[Any]]: ...

    def loss(self, batch: Any) -> torch.Tensor: ...

    def weight(self, batch: Any) -> float: ...

    def evaluate(self) -> Mapping[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass
class TrainState:
    """The loop's mutable bookkeeping, visible to callbacks.

    Attributes:
        step: Optimizer steps taken so far.
        samples: Examples consumed so far (``step × batch_size``).
        train_time: Seconds spent in training steps (evaluation excluded).
        status: One entry per lane: ``"running"``, ``"finished"`` (reached its budget),
            ``"diverged"`` (its loss blew up) or ``"stopped"`` (by a callback).
        first_loss: Each lane's first mini-batch loss (the divergence reference).
        loss_sum, loss_count: Per lane, running sum/count of mini-batch losses since the
            lane's last row (float64 and int64 arrays of shape ``(lanes,)``, updated with one
            vector operation a step).
        metric_names: Names of the task's evaluation metrics (known after the first one).
        rows: Metric rows emitted so far (one per lane per evaluation point).
        last_loss: The latest step's mini-batch loss per lane (``None`` before the first step).
        stop_reason: Set by a callback to end training after the current step.
    """

    step: int = 0
    samples: int = 0
    train_time: float = 0.0
    status: list[str] = field(default_factory=list)
    first_loss: list[float] = field(default_factory=list)
    loss_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    loss_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    metric_names: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    last_loss: np.ndarray | None = None
    stop_reason: str | None = None

    @property
    def lanes(self) -> int:
        """Number of independent runs trained side by side (0 before the first step)."""
        return len(self.status)

    @property
    def any_running(self) -> bool:
        """Whether some lane still trains (true before the first step)."""
        return not self.status or "running" in self.status

    def state_dict(self) -> dict[str, Any]:
        """Picklable snapshot, including torch's global RNG state, for exact resume."""
        return {
            "step": self.step,
            "samples": self.samples,
            "train_time": self.train_time,
            "status": list(self.status),
            "first_loss": list(self.first_loss),
            "loss_sum": [float(value) for value in self.loss_sum],
            "loss_count": [int(value) for value in self.loss_count],
            "metric_names": list(self.metric_names),
            "rows": [dict(row) for row in self.rows],
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> TrainState:
        """Inverse of :meth:`state_dict` (also restores torch's global RNG state)."""
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return cls(
            step=int(state["step"]),
            samples=int(state["samples"]),
            train_time=float(state["train_time"]),
            status=list(state["status"]),
            first_loss=list(state["first_loss"]),
            loss_sum=np.array(state["loss_sum"], dtype=np.float64),
            loss_count=np.array(state["loss_count"], dtype=np.int64),
            metric_names=list(state["metric_names"]),
            rows=[dict(row) for row in state["rows"]],
        )


class Callback:
    """Hooks into :func:`train`; override the ones you need (all default to doing nothing).

    A callback may set ``state.stop_reason`` to end training after the current step (lanes
    still running are then marked ``"stopped"``). Callbacks must not change the parameters.
    """

    def on_train_start(self, state: TrainState, task: Task, optimizer: Any) -> None:
        """Before the first step (also when resuming)."""

    def on_micro_batch_start(self, state: TrainState, index: int, count: int) -> None:
        """Before the forward pass of micro-batch ``index`` of ``count`` in this step."""

    def on_micro_batch_end(
        self, state: TrainState, index: int, count: int, loss: torch.Tensor
    ) -> None:
        """After micro-batch ``index``'s backward; ``.grad`` holds the weighted sum so far."""

    def on_gradients(self, state: TrainState, task: Task) -> None:
        """After all micro-batches, before clipping: ``.grad`` is the step's mean gradient."""

    def on_step_end(self, state: TrainState, task: Task, optimizer: Any) -> None:
        """After the step, ``zero_grad`` and this step's evaluation (if any).

        ``state.step`` is already incremented; a state saved here is an exact resume point.
        """

    def on_evaluate(self, state: TrainState, rows: Sequence[Mapping[str, Any]]) -> None:
        """After an evaluation; ``rows`` are the new metric rows (one per running lane)."""

    def on_train_end(self, state: TrainState, result: TrainResult) -> None:
        """After the last step and the final evaluation."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        rows: Tidy metric rows, one per lane per evaluation point, with keys ``lane``,
            ``step``, ``samples``, ``train_time``, ``lr``, ``batch_loss`` (mean mini-batch loss
            since the previous row; NaN on the first row) and the task's evaluation metrics.
        status: Final status per lane (``"finished"``, ``"diverged"`` or ``"stopped"``).
        steps: Steps actually taken by each lane.
    """

    rows: list[dict[str, Any]]
    status: list[str]
    steps: list[int]


# Where a step's loss sum starts: one tensor for all steps (never changed in place).
_ZERO_LOSS = torch.zeros(())


def _lane_values(value: Any, lanes: int, name: str) -> np.ndarray:
    """A scalar or per-lane metric as a float array of shape (lanes,)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(lanes, float(array))
    if array.shape != (lanes,):
        raise ValueError(f"metric {name!r} has shape {array.shape}; expected () or ({lanes},)")
    return array


def _current_lrs(optimizer: Any, lanes: int) -> np.ndarray:
    """The first param group's learning rate, per lane (groups usually share one)."""
    return _lane_values(optimizer.param_groups[0]["lr"], lanes, "lr")


def _emit_rows(
    state: TrainState, optimizer: Any, metrics: Mapping[str, Any], lanes_to_emit: Sequence[int]
) -> list[dict[str, Any]]:
    """Append one row per lane in ``lanes_to_emit`` and restart their loss averages.

    ``metrics`` holds scalars or arrays of shape ``(len(lanes_to_emit),)``, in that order.
    """
    if not state.metric_names:
        state.metric_names = list(metrics)
    lrs = _current_lrs(optimizer, state.lanes)
    count = len(lanes_to_emit)
    per_lane = {name: _lane_values(value, count, name) for name, value in metrics.items()}
    rows = []
    for position, lane in enumerate(lanes_to_emit):
        count = int(state.loss_count[lane])
        row = {
            "lane": lane,
            "step": state.step,
            "samples": state.samples,
            "train_time": state.train_time,
            "lr": float(lrs[lane]),
            "batch_loss": float(state.loss_sum[lane]) / count if count else float("nan"),
        }
        row.update({name: float(values[position]) for name, values in per_lane.items()})
        rows.append(row)
        state.loss_sum[lane] = 0.0
        state.loss_count[lane] = 0
    state.rows.extend(rows)
    return rows


def train(
    task: Task,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    *,
    schedule: Callable[[int], float] | None = None,
    callbacks: Sequence[Callback] = (),
    resume: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``task`` with ``optimizer`` for ``config.budget``; return tidy metric rows.

    The learning rate at step ``t`` (0-based) is ``initial_lr · schedule(t)`` in every param
    group (``initial_lr`` is the group's ``lr`` when training first started; it is kept in the
    group, as torch's schedulers do, so it survives an optimizer state-dict round trip). The
    accumulated gradient of a step is ``Σ_i (w_i / Σ_j w_j) ∇ loss(micro_i)``, the mean over all
    the step's loss terms.

    Args:
        task: The experiment (see :class:`Task`).
        optimizer: Built on ``task.parameters()``; its ``lr`` may be a float or, for K lanes,
            a tensor of shape ``(K,)``.
        config: Batch size, budget, micro-batching, seed, evaluation cadence, clipping and
            divergence threshold.
        schedule: Learning-rate multiplier per step (``None``: constant); see
            :mod:`anisoada.train.schedules`.
        callbacks: Hooks run in order at each event.
        resume: A checkpoint from :func:`anisoada.train.load_checkpoint`: restores the
            task, the optimizer and the loop state and continues from its step.

    Returns:
        The :class:`TrainResult` (rows of all evaluation points, including those before a
        resume).

    Example:
        >>> import torch
        >>> from anisoada.train import Budget, TrainConfig, train
        >>> from anisoada.experiments.tasks import QuadraticTask
        >>> task = QuadraticTask(curvatures=[1.0, 10.0])
        >>> opt = torch.optim.SGD(task.parameters(), lr=0.05)
        >>> result = train(task, opt, TrainConfig(batch_size=1, budget=Budget(steps=200)))
        >>> result.status, result.rows[-1]["loss"] < 1e-6
        (['finished'], True)
    """
    total_steps = config.num_steps
    if resume is not None:
        task.load_state_dict(resume["task"])
        optimizer.load_state_dict(resume["optimizer"])
        state = TrainState.from_state_dict(resume["loop"])
        # Lanes a callback stopped (e.g. a time limit) continue; finished/diverged ones do not.
        state.status = ["running" if s == "stopped" else s for s in state.status]
    else:
        torch.manual_seed(config.seed)
        state = TrainState()
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    params = [p for p in task.parameters() if p.requires_grad]
    # A task's closed-form gradient replaces loss + backward (see the Task protocol).
    accumulate_gradient = getattr(task, "accumulate_gradient", None)
    limits = _divergence_limits(state, config.divergence_factor)
    batches = task.batches(
        seed=config.seed,
        batch_size=config.batch_size,
        micro_batch_size=config.effective_micro_batch_size,
        start_step=state.step,
    )
    for callback in callbacks:
        callback.on_train_start(state, task, optimizer)

    while state.step < total_steps and state.any_running:
        started = time.perf_counter()
        # 1. Learning rate for this step (constant without a schedule).
        if schedule is not None:
            factor = schedule(state.step)
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor

        # 2. Forward/backward over the micro-batches; gradients accumulate as a weighted mean.
        micro_batches = next(batches)
        weights = [float(task.weight(batch)) for batch in micro_batches]
        total_weight = sum(weights)
        step_loss = _ZERO_LOSS
        for index, (batch, weight) in enumerate(zip(micro_batches, weights)):
            for callback in callbacks:
                callback.on_micro_batch_start(state, index, len(micro_batches))
            share = weight / total_weight
            if accumulate_gradient is not None:
                loss = accumulate_gradient(batch, share)
            else:
                loss = task.loss(batch)
                (loss * share).sum().backward()
                loss = loss.detach()
            # One micro-batch has share 1 and 0 + loss · 1 is its loss: two tensor operations less.
            step_loss = loss if len(micro_batches) == 1 else step_loss + loss * share
            for callback in callbacks:
                callback.on_micro_batch_end(state, index, len(micro_batches), loss)
        losses = _lane_values(step_loss, step_loss.numel(), "loss")
        if state.lanes == 0:
            # First step of a fresh run: the loss tells the number of lanes; the parameters
            # are still the initial ones, so this is the step-0 evaluation.
            paused = time.perf_counter()
            _start_lanes(state, losses, config)
            limits = _divergence_limits(state, config.divergence_factor)
            _emit_rows(state, optimizer, task.evaluate(), range(state.lanes))
            started += time.perf_counter() - paused
        for callback in callbacks:
            callback.on_gradients(state, task)

        # 3. Clip, step, zero_grad.
        if config.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, config.clip_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.samples += config.batch_size
        state.train_time += time.perf_counter() - started
        state.last_loss = losses
        state.loss_sum += losses
        state.loss_count += 1

        # 4. Divergence: a lane whose loss is non-finite or blew up stops with a final row.
        diverged = _newly_diverged(state, losses, limits)
        if diverged:
            nan_metrics = dict.fromkeys(state.metric_names, float("nan"))
            _emit_rows(state, optimizer, nan_metrics, diverged)

        # 5. Evaluate on cadence and at the end; then step-end callbacks (which see the new
        #    rows, so a checkpoint written there resumes after this step's evaluation).
        at_end = state.step >= total_steps
        on_cadence = (
            config.eval_every is not None
            and state.step % config.eval_every == 0
            and state.step >= config.eval_from
        )
        evaluated = (at_end or on_cadence) and _evaluate(state, task, optimizer, callbacks)
        for callback in callbacks:
            callback.on_step_end(state, task, optimizer)
        if state.stop_reason is not None:
            if not evaluated:
                _evaluate(state, task, optimizer, callbacks)
            state.status = ["stopped" if s == "running" else s for s in state.status]

    state.status = ["finished" if s == "running" else s for s in state.status]
    steps = [0] * state.lanes
    for row in state.rows:
        steps[row["lane"]] = max(steps[row["lane"]], row["step"])
    result = TrainResult(rows=list(state.rows), status=list(state.status), steps=steps)
    for callback in callbacks:
        callback.on_train_end(state, result)
    return result


def _evaluate(state: TrainState, task: Task, optimizer: Any, callbacks: Sequence[Callback]) -> bool:
    """Emit a row for every running lane; False when no lane is running."""
    running = [lane for lane in range(state.lanes) if state.status[lane] == "running"]
    if not running:
        return False
    evaluate_lanes = getattr(task, "evaluate_lanes", None)
    if evaluate_lanes is not None and len(running) < state.lanes:
        metrics = evaluate_lanes(running)
    else:
        metrics = {
            name: _lane_values(value, state.lanes, name)[running]
            for name, value in task.evaluate().items()
        }
    rows = _emit_rows(state, optimizer, metrics, running)
    for callback in callbacks:
        callback.on_evaluate(state, rows)
    return True


def _start_lanes(state: TrainState, first_losses: np.ndarray, config: TrainConfig) -> None:
    lanes = first_losses.size
    if lanes > 1 and config.clip_norm is not None:
        raise ValueError(
            f"clip_norm={config.clip_norm} would mix the {lanes} independent lanes' "
            "gradients; train the lanes separately to clip"
        )
    state.status = ["running"] * lanes
    state.first_loss = first_losses.tolist()
    state.loss_sum = np.zeros(lanes)
    state.loss_count = np.zeros(lanes, dtype=np.int64)


def _divergence_limits(state: TrainState, factor: float | None) -> np.ndarray:
    """Per lane, the loss above which it diverges: ``factor × |first loss|`` (∞ without one)."""
    first = np.array(state.first_loss, dtype=np.float64)
    return np.full(first.shape, math.inf) if factor is None else factor * np.abs(first)


def _newly_diverged(state: TrainState, losses: np.ndarray, limits: np.ndarray) -> list[int]:
    """Mark running lanes whose loss is non-finite or above its limit; return them.

    One vector test a step; only the lanes it flags (new ones, or lanes that diverged before
    and still carry a non-finite loss) are looked at one by one.
    """
    flagged = np.flatnonzero(~np.isfinite(losses) | (losses > limits))
    diverged = [int(lane) for lane in flagged if state.status[lane] == "running"]
    for lane in diverged:
        state.status[lane] = "diverged"
    return diverged
