"""Instruction tuning of a causal language model (GPT-2 on Alpaca): the paper's nonconvex task.

:class:`LanguageModelTask` implements the :class:`~anisoada.train.Task` protocol of the one
training loop. Its loss is the objective of :mod:`anisoada.problems.language_model`, the
**response-token mean** of the effective batch: with ``R`` the set of response tokens of all the
step's examples (prompt tokens and padding carry the label ``-100`` and are not scored),

    f_batch(w) = (1/|R|) Σ_{(i,t) ∈ R} −log p_w(x_{i,t} | x_{i,<t}).

Gradient accumulation and data parallelism both split ``R`` into pieces. Each piece's summed
loss is divided by the token count of the *whole* step, not of the piece (the loop weights
micro-batch ``i`` by ``W_i / Σ_j W_j`` where ``W_i`` counts micro-batch ``i``'s tokens over
all ranks), so the gradient is the same whatever the micro-batch size or the number of
processes, up to float summation order. Dividing each micro-batch by its own token count would
instead weight tokens of short micro-batches more, and the micro-batch size would change the
result.

Data order: each optimizer step takes the next ``batch_size`` examples of a stream made of
independent random permutations of the training set, one per epoch, seeded by
``(seed, epoch)``. The examples of step ``s`` are therefore a pure function of ``seed`` and
``s``, which is what lets an interrupted run resume exactly from a checkpoint's step. Rank
``r`` of ``N`` takes every ``N``-th example of the step, starting at ``r``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from anisoada.data.instructions import TokenizedExamples
from anisoada.problems.language_model import (
    IGNORE_INDEX,
    PRECISIONS,
    pad_examples,
    summed_response_loss,
    summed_response_loss_parts,
)
from anisoada.train import Callback, DistributedContext, GradientAllReduce, Task, TrainState

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["LanguageModelTask", "LayerNoiseMonitor"]


@dataclasses.dataclass(frozen=True)
class _MicroBatch:
    """One micro-batch of this rank: padded ids, scored positions and targets, token counts."""

    index: int
    input_ids: torch.Tensor  # (b, L) int64
    scored: torch.Tensor  # (b, L) bool: position t predicts a response token at t + 1
    targets: torch.Tensor  # (n_local,) int64, the scored tokens in row-major order
    n_examples: int
    n_local: int  # scored tokens of this micro-batch on this rank
    n_global: int  # scored tokens of micro-batch `index` summed over all ranks
    n_step: int  # scored tokens of the whole step over all ranks


class LanguageModelTask:
    """Causal-LM fine-tuning with response-only token-mean loss (see the module docstring).

    Args:
        model: a ``transformers`` causal LM with a ``.transformer`` body and an ``.lm_head``
            (GPT-2); it is moved to ``context.device``.
        train: the training split (see :meth:`TokenizedExamples.from_any`).
        eval: the held-out split whose loss :meth:`evaluate` reports as ``eval_loss``.
        context: this process's place in a data-parallel run (default: a single CPU process).
        eval_batch_size: examples per forward pass in :meth:`evaluate`.
        train_eval_examples: :meth:`evaluate` also reports ``train_loss``, the loss at the
            current parameters on this many training examples (a fixed, evenly spaced subset);
            default ``len(eval)``; ``0`` switches it off.
        noise_every: measure the gradient noise from the accumulation micro-batches every this
            many steps (see :class:`LayerNoiseMonitor`); ``None`` never.
        group_by_length: within each step, put examples of similar length in the same
            micro-batch (less padding, faster). The step's examples — and so its gradient, a
            token mean over all of them — are unchanged, only their split into micro-batches
            differs (float rounding). Steps where the noise is measured keep the random split,
            since the noise estimator needs micro-batches that are i.i.d. samples.
        precision: ``"fp32"``, or ``"bf16"`` for bfloat16 autocast of the forward pass (CUDA,
            or CPU) — the loss is always reduced in float32.
        pad_token_id: id written into padding positions (they are never scored, and right
            padding is invisible to the earlier positions under causal attention).

    Example:
        >>> from anisoada.models import build_gpt2
        >>> ids = np.arange(6)
        >>> split = TokenizedExamples((ids,) * 4, (np.r_[-100, -100, ids[2:]],) * 4)
        >>> task = LanguageModelTask(build_gpt2("tiny").model, split, split)
        >>> stream = task.batches(seed=0, batch_size=4, micro_batch_size=3, start_step=0)
        >>> [(b.n_examples, b.n_local, b.n_step) for b in next(stream)]
        [(3, 12, 16), (1, 4, 16)]
    """

    def __init__(
        self,
        model: PreTrainedModel,
        train: Any,
        eval: Any,
        *,
        context: DistributedContext | None = None,
        eval_batch_size: int = 32,
        train_eval_examples: int | None = None,
        noise_every: int | None = None,
        group_by_length: bool = False,
        precision: str = "fp32",
        pad_token_id: int = 0,
        used_tokens: np.ndarray | None = None,
    ) -> None:
        self.context = context or DistributedContext()
        self.train_split = _drop_unscored(TokenizedExamples.from_any(train), "train")
        self.eval_split = _drop_unscored(TokenizedExamples.from_any(eval), "eval")
        if not isinstance(eval_batch_size, int) or eval_batch_size < 1:
            raise ValueError(f"Invalid eval_batch_size: {eval_batch_size!r}; use an int >= 1.")
        if precision not in PRECISIONS:
            raise ValueError(f"Invalid precision: {precision!r}; use one of {PRECISIONS}.")
        if noise_every is not None and (not isinstance(noise_every, int) or noise_every < 1):
            raise ValueError(f"Invalid noise_every: {noise_every!r}; use an int >= 1 or None.")
        # Moved through its nn.Module type: transformers wraps PreTrainedModel.to with
        # functools.wraps, whose typing mypy cannot bind to an instance. Module.to moves the
        # model in place and returns it, so this is ``self.model = model.to(device)``.
        module: torch.nn.Module = model
        module.to(self.context.device)
        self.model = model
        self.eval_batch_size = eval_batch_size
        self.precision = precision
        self.pad_token_id = pad_token_id
        self._check_token_range()
        self._train_tokens = self.train_split.response_tokens()
        n_subset = len(self.eval_split) if train_eval_examples is None else train_eval_examples
        n_subset = min(int(n_subset), len(self.train_split))
        self._train_subset = np.unique(
            np.linspace(0, len(self.train_split) - 1, n_subset).round().astype(np.int64)
        )[:n_subset]
        self._permutations: dict[tuple[int, int], np.ndarray] = {}
        self._awaiting_sync = False
        self.last_micro_batch: _MicroBatch | None = None
        self.noise = LayerNoiseMonitor(self, every=noise_every) if noise_every else None
        self.group_by_length = bool(group_by_length)
        self._lengths = np.array([ids.size for ids in self.train_split.input_ids])
        self._used_tokens = (
            None
            if used_tokens is None
            else torch.as_tensor(
                np.asarray(used_tokens, dtype=np.int64), device=self.context.device
            )
        )
        self.context.broadcast_parameters(self.model)

    # --- Task protocol -------------------------------------------------------------------

    def parameters(self) -> list[torch.Tensor]:
        """The model's trainable parameters (GPT-2's tied embedding once), in a fixed order."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def batches(
        self, *, seed: int, batch_size: int, micro_batch_size: int, start_step: int
    ) -> Iterator[list[_MicroBatch]]:
        """This rank's micro-batches of each step, from ``start_step`` on (infinite)."""
        world = self.context.world_size
        if batch_size % world:
            raise ValueError(
                f"batch_size={batch_size} is not divisible by the {world} processes; choose a "
                "multiple of the number of processes."
            )
        if micro_batch_size < 1:
            raise ValueError(f"Invalid micro_batch_size: {micro_batch_size!r}.")
        per_rank = batch_size // world
        step = start_step
        while True:
            if self._awaiting_sync:
                raise RuntimeError(
                    "the previous step's gradients were not summed over the processes: pass "
                    "task.callbacks() to train(...) (it holds the GradientAllReduce callback)."
                )
            indices = self._step_indices(seed, step, batch_size)
            shares = [indices[rank::world] for rank in range(world)]
            measured = self.noise is not None and step % self.noise.every == 0
            if self.group_by_length and not measured:
                shares = [s[np.argsort(self._lengths[s], kind="stable")] for s in shares]
            starts = range(0, per_rank, micro_batch_size)
            global_counts = [
                sum(int(self._train_tokens[s[a : a + micro_batch_size]].sum()) for s in shares)
                for a in starts
            ]
            n_step = sum(global_counts)
            own = shares[self.context.rank]
            yield [
                self._collate(
                    own[a : a + micro_batch_size], i, n_global=global_counts[i], n_step=n_step
                )
                for i, a in enumerate(starts)
            ]
            step += 1

    def weight(self, batch: _MicroBatch) -> float:
        """Scored tokens of this micro-batch over all ranks (the loop's averaging weight)."""
        return float(batch.n_global)

    def loss(self, batch: _MicroBatch) -> torch.Tensor:
        """Token-mean cross-entropy of micro-batch ``batch.index`` over all ranks.

        The value is ``S_i / W_i`` (``S_i`` the summed loss of micro-batch ``i`` over all ranks,
        ``W_i`` its token count); the gradient is that of this rank's own part,
        ``∇ S_i^{(rank)} / W_i``, so that summing the accumulated gradients over the ranks
        (:class:`GradientAllReduce`) gives the step's mean gradient.
        """
        self.last_micro_batch = batch
        local_sum = self._summed_loss(batch.input_ids, batch.scored, batch.targets)
        if self.context.distributed:
            self._awaiting_sync = True
            total = self.context.all_reduce_sum(local_sum.detach().clone())
            local_sum = local_sum + (total - local_sum.detach())
        return local_sum / batch.n_global

    def evaluate(self) -> dict[str, float]:
        """``eval_loss`` on the held-out split and ``train_loss`` on the fixed training subset.

        Both are response-token means at the current parameters, without dropout; neither
        changes the parameters or any random state. With ``used_tokens`` (a full-vocabulary
        model), also ``train_loss_unused``: the part of ``train_loss`` due to the probability
        the model puts on tokens the data never uses
        (:func:`~anisoada.problems.language_model.summed_response_loss_parts`), so that
        ``train_loss − train_loss_unused`` is the loss of the softmax restricted to the used
        tokens — what the compact vocabulary trains.
        """
        was_training = self.model.training
        self.model.eval()
        try:
            metrics = {"eval_loss": self._split_loss(self.eval_split, None)}
            if self._train_subset.size and self._used_tokens is not None:
                total, unused = self._split_loss_parts(self.train_split, self._train_subset)
                metrics["train_loss"] = total
                metrics["train_loss_unused"] = unused
            elif self._train_subset.size:
                metrics["train_loss"] = self._split_loss(self.train_split, self._train_subset)
        finally:
            self.model.train(was_training)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """Model parameters and the noise log (the data position is the loop's step)."""
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "noise": None if self.noise is None else self.noise.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        if self.noise is not None and state.get("noise") is not None:
            self.noise.load_state_dict(state["noise"])

    # --- what the runner needs besides the protocol ---------------------------------------

    def callbacks(self) -> list[Callback]:
        """Callbacks this task relies on: the gradient all-reduce (if distributed), then the
        noise monitor (if enabled). Pass them first in ``train(..., callbacks=...)``."""
        callbacks: list[Callback] = []
        if self.context.distributed:
            callbacks.append(GradientAllReduce(self.context))
        if self.noise is not None:
            callbacks.append(self.noise)
        return callbacks

    def mark_gradients_synchronised(self) -> None:
        """Called by :class:`GradientAllReduce` once the step's gradients are summed."""
        self._awaiting_sync = False

    @property
    def tokens_per_example(self) -> float:
        """Mean scored tokens per training example."""
        return float(self._train_tokens.mean())

    # --- internals ------------------------------------------------------------------------

    def _step_indices(self, seed: int, step: int, batch_size: int) -> np.ndarray:
        n = len(self.train_split)
        positions = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
        epochs, offsets = np.divmod(positions, n)
        out = np.empty(batch_size, dtype=np.int64)
        for epoch in np.unique(epochs):
            chosen = epochs == epoch
            out[chosen] = self._permutation(seed, int(epoch))[offsets[chosen]]
        return out

    def _permutation(self, seed: int, epoch: int) -> np.ndarray:
        key = (seed, epoch)
        if key not in self._permutations:
            if len(self._permutations) > 4:  # only the current epoch or two are ever needed
                self._permutations.clear()
            generator = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch])))
            self._permutations[key] = generator.permutation(len(self.train_split))
        return self._permutations[key]

    def _collate(self, rows: np.ndarray, index: int, *, n_global: int, n_step: int) -> _MicroBatch:
        ids, scored, targets = pad_examples(
            self.train_split.input_ids, self.train_split.labels, rows, self.pad_token_id
        )
        device = self.context.device
        return _MicroBatch(
            index=index,
            input_ids=ids.to(device),
            scored=scored.to(device),
            targets=targets.to(device),
            n_examples=int(rows.size),
            n_local=int(targets.numel()),
            n_global=n_global,
            n_step=n_step,
        )

    def _summed_loss(
        self, input_ids: torch.Tensor, scored: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        return summed_response_loss(
            self.model, input_ids, scored, targets, precision=self.precision
        )

    def _split_loss(self, split: TokenizedExamples, subset: np.ndarray | None) -> float:
        return self._split_means(split, subset, unused=False)[0]

    def _split_loss_parts(
        self, split: TokenizedExamples, subset: np.ndarray
    ) -> tuple[float, float]:
        """Token means of the loss and of its unused-token part (see :meth:`evaluate`)."""
        total, unused = self._split_means(split, subset, unused=True)
        return total, unused

    @torch.no_grad()
    def _split_means(
        self, split: TokenizedExamples, subset: np.ndarray | None, *, unused: bool
    ) -> list[float]:
        """Token means over a split's rows: the loss, and with ``unused`` its unused-token part."""
        rows = np.arange(len(split)) if subset is None else subset
        rows = rows[self.context.rank :: self.context.world_size]
        # Similar lengths together: less padding. The order does not change the sum's value
        # beyond float rounding.
        rows = rows[np.argsort([split.input_ids[r].size for r in rows], kind="stable")]
        device = self.context.device
        totals = torch.zeros(3 if unused else 2, dtype=torch.float64, device=device)
        for start in range(0, rows.size, self.eval_batch_size):
            ids, scored, targets = pad_examples(
                split.input_ids,
                split.labels,
                rows[start : start + self.eval_batch_size],
                self.pad_token_id,
            )
            ids, scored, targets = ids.to(device), scored.to(device), targets.to(device)
            if unused:
                assert self._used_tokens is not None
                sums = summed_response_loss_parts(
                    self.model, ids, scored, targets, self._used_tokens, precision=self.precision
                )
            else:
                sums = self._summed_loss(ids, scored, targets).reshape(1)
            count = sums.new_tensor(targets.numel()).double().reshape(1)
            totals += torch.cat([sums.double(), count])
        self.context.all_reduce_sum(totals)
        return [float(value / totals[-1]) for value in totals[:-1]]

    def _check_token_range(self) -> None:
        weight = self.model.get_input_embeddings().weight
        assert isinstance(weight, torch.Tensor)  # typed "tensor or module": a module's attribute
        vocab = weight.shape[0]
        arrays = (*self.train_split.input_ids, *self.eval_split.input_ids)
        largest = max(int(ids.max()) for ids in arrays)
        if largest >= vocab:
            raise ValueError(
                f"token id {largest} is outside the model's vocabulary of {vocab}; tokenize with "
                "the model's tokenizer (or restrict the vocabulary with compact_vocabulary)."
            )


def _drop_unscored(split: TokenizedExamples, name: str) -> TokenizedExamples:
    """Examples with no scored token carry no loss; dropping them keeps every weight > 0."""
    keep = [i for i, lab in enumerate(split.labels) if (lab[1:] != IGNORE_INDEX).any()]
    if not keep:
        raise ValueError(
            f"the {name} split has no example with a response token left (all prompts filled "
            "the maximum length?); increase max_length."
        )
    return TokenizedExamples(
        tuple(split.input_ids[i] for i in keep), tuple(split.labels[i] for i in keep)
    )


_LAYER_PATTERN = re.compile(r"(?:^|\.)(h\.\d+|wte|wpe|ln_f)(?:\.|$)")


def _layer_of(name: str) -> str:
    """GPT-2 parameter name → layer: ``transformer.h.3.attn.c_attn.weight`` → ``h.3``."""
    match = _LAYER_PATTERN.search(name)
    return match.group(1) if match else name.rsplit(".", 1)[0]


class LayerNoiseMonitor(Callback):
    """Per-layer gradient noise ``‖σ‖_1``, ``‖σ‖_2`` from the accumulation micro-batches.

    At every ``every``-th step (``state.step % every == 0``, before the update), each of the
    step's full micro-batches (``b`` examples) gives a mean gradient ``g_m`` — the difference of
    the accumulated ``.grad`` before and after its backward pass, rescaled from the step's
    weighting to the micro-batch's own token mean. With ``k`` such micro-batches over all ranks,
    at the same parameters,

        σ̂_j² = b · (1/(k − 1)) Σ_m (g_mj − ḡ_j)²

    (:class:`anisoada.measure.MicrobatchNoise`, merged across ranks), the noise of one example's
    gradient. Examples have different numbers of response tokens, so a micro-batch's token mean
    is a ratio estimator and ``σ̂`` is that of the token-weighted example gradient; this is the
    convention of the paper's A5 with "sample" = example. Every measured step appends rows
    ``{step, layer, d, sigma_l1, sigma_l2, microbatches, microbatch_size}`` to :attr:`rows`, one
    per layer (``wte``, ``wpe``, ``h.0``…, ``ln_f``) plus ``layer="all"``. A step needs ``k ≥ 2``,
    i.e. at least two full micro-batches; otherwise nothing is recorded for it.

    Memory: one copy of the gradient plus two float64 moments, ``~5×`` the fp32 model size
    during a measured step only.
    """

    def __init__(self, task: LanguageModelTask, *, every: int) -> None:
        from anisoada.measure import MicrobatchNoise

        self._factory = MicrobatchNoise
        self.task = task
        self.every = every
        self.rows: list[dict[str, Any]] = []
        self._named = {n: p for n, p in task.model.named_parameters() if p.requires_grad}
        self._accumulator: Any = None
        self._size: int | None = None

    def on_micro_batch_start(self, state: TrainState, index: int, count: int) -> None:
        if index == 0:
            self._accumulator = None
            self._size = None

    def on_micro_batch_end(
        self, state: TrainState, index: int, count: int, loss: torch.Tensor
    ) -> None:
        if state.step % self.every:
            return
        batch = self.task.last_micro_batch
        assert batch is not None  # set by self.task.loss, which the loop calls before this hook
        if index == 0:
            self._size = batch.n_examples
            self._accumulator = self._factory(micro_batch_size=batch.n_examples)
            self._accumulator.begin_accumulation()
        # The loop back-propagated share · loss = ∇S_local / n_step; the micro-batch's own
        # token mean is ∇S_local / n_local.
        # The smaller last micro-batch (always the last one) is left out: σ̂² needs one b.
        if batch.n_examples == self._size:
            self._accumulator.update_from_accumulated(
                self._named, loss_scale=batch.n_local / batch.n_step
            )

    def on_gradients(self, state: TrainState, task: Task) -> None:
        if state.step % self.every or self._accumulator is None:
            return
        accumulator = self._accumulator
        self._accumulator = None
        # Every rank has the same micro-batch layout, hence the same count.
        if accumulator.count * self.task.context.world_size < 2:
            return
        if self.task.context.distributed:
            accumulator = accumulator.reduce_across_ranks()
        estimate = accumulator.result()
        self.rows.extend(_layer_norms(estimate, state.step, self._size or 0))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rows = [dict(r) for r in state["rows"]]


def _layer_norms(estimate: Any, step: int, size: int) -> list[dict[str, Any]]:
    blocks = estimate.per_block()
    grouped: dict[str, list[torch.Tensor]] = {}
    for name, sigma in blocks.items():
        grouped.setdefault(_layer_of(name), []).append(sigma.reshape(-1))
    grouped["all"] = [estimate.sigma.reshape(-1)]
    rows = []
    for layer, parts in grouped.items():
        sigma = torch.cat(parts)
        rows.append(
            {
                "step": step,
                "layer": layer,
                "d": int(sigma.numel()),
                "sigma_l1": float(sigma.abs().sum()),
                "sigma_l2": float(sigma.norm()),
                "microbatches": int(estimate.n_observations),
                "microbatch_size": size,
            }
        )
    return rows
