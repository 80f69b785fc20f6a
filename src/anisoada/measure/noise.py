"""Per-coordinate gradient noise ``σ_j`` of any ``torch.nn.Module`` (assumption A5).

Convention (the same as :func:`anisoada.problems.logistic.logistic_noise`): the objective is the
**mean** of per-sample losses, ``f(w) = (1/n) Σ_i ℓ_i(w)``, and

    σ_j² = Var_ξ[∂_j ℓ_ξ(w)],

the variance of one sample's gradient coordinate, so that a mini-batch mean gradient of ``M``
i.i.d. samples has coordinate variance ``σ_j²/M``. Two estimators:

* :func:`gradient_noise` — exact per-sample gradients with ``torch.func`` (``vmap`` of ``grad``),
  processed ``chunk_size`` samples at a time so peak memory is ``O(chunk_size · d)`` whatever the
  number of samples. By default the variance is the **population** variance over the given
  samples (divide by ``n``: the samples *are* the distribution, as for a finite training set);
  ``unbiased=True`` divides by ``n − 1`` instead (the samples are a draw from a larger population).
* :class:`MicrobatchNoise` — for models too large for per-sample gradients: from ``k`` micro-batch
  mean gradients ``g_1..g_k`` of ``b`` samples each (e.g. the micro-batches of gradient
  accumulation), ``σ_j² ≈ b · Σ_m (g_mj − ḡ_j)²/(k − 1)``, since ``Var(g_mj) = σ_j²/b``. Unbiased
  (``k − 1``) because the mean ``ḡ`` is itself estimated. Float64, streaming, mergeable across
  processes (DDP ranks).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch

from anisoada.measure._functional import (
    LossFn,
    StreamingMoments,
    autodiff_friendly_attention,
    batch_size,
    chunks,
    per_sample_function,
)
from anisoada.measure.layout import ParameterLayout, trainable_parameters

__all__ = ["MicrobatchNoise", "NoiseEstimate", "gradient_noise", "per_sample_gradients"]


@dataclasses.dataclass(frozen=True)
class NoiseEstimate:
    """A per-coordinate noise estimate.

    Attributes:
        sigma: ``(d,)`` float64, the standard deviation ``σ_j`` of ONE sample's gradient coordinate
            (mean-reduced loss), in :attr:`layout` order.
        mean_gradient: ``(d,)`` float64, the mean gradient ``∂_j f(w)`` over the observations.
        layout: which coordinates belong to which parameter tensor.
        n_observations: per-sample gradients (``method="per_sample"``) or micro-batches used.
        samples_per_observation: 1, or the micro-batch size ``b``.
        ddof: the variance divides ``Σ(x − x̄)²`` by ``n_observations − ddof``.
        method: ``"per_sample"`` or ``"microbatch"``.
    """

    sigma: torch.Tensor
    mean_gradient: torch.Tensor
    layout: ParameterLayout
    n_observations: int
    samples_per_observation: int
    ddof: int
    method: str

    @property
    def convention(self) -> str:
        """One line stating what ``sigma`` means, for summaries and provenance."""
        if self.method == "per_sample":
            divisor = "n" if self.ddof == 0 else "n-1"
            return (
                f"sigma_j = std of one sample's gradient coordinate (mean-reduced loss), "
                f"per-sample gradients over n={self.n_observations} samples, variance / {divisor}"
            )
        return (
            f"sigma_j^2 = b * unbiased variance of k={self.n_observations} micro-batch mean "
            f"gradients, b={self.samples_per_observation} (mean-reduced loss)"
        )

    def per_block(self) -> dict[str, torch.Tensor]:
        """``σ`` split into ``{parameter name: tensor of the parameter's shape}``."""
        return self.layout.unflatten(self.sigma)


def per_sample_gradients(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    chunk_size: int | None = 16,
    parameter_names: Sequence[str] | None = None,
) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    """Per-sample gradients ``∇ℓ_i(w)``, ``chunk_size`` samples at a time.

    ``ℓ_i(w) = loss_fn(model, batch[i:i+1])``, computed for all ``i`` of a chunk at once by
    ``torch.func.vmap(torch.func.grad(ℓ))``, at the model's current parameters and in its current
    mode (call ``model.eval()`` to switch dropout off; in training mode every sample draws its own
    dropout mask). Tied parameters (GPT-2's embedding/output layer) are one tensor whose gradient
    sums both uses, as in ordinary backpropagation.

    Args:
        model: any ``torch.nn.Module``.
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean loss over the batch's samples.
        batch: tensor or tuple/list/dict of tensors, leading dimension = samples.
        chunk_size: samples per vmapped call (``None``: all at once); bounds peak memory at about
            ``chunk_size × d`` gradient entries plus the activations of ``chunk_size`` samples.
        parameter_names: differentiate only these parameters (default: all trainable ones).

    Yields:
        ``(start, stop, grads)`` with ``grads[name]`` of shape ``(stop − start, *param.shape)``
        in the parameters' dtype, detached.

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> loss = lambda m, b: (m(b[0]).squeeze(-1) - b[1]).square().mean()
        >>> batch = (torch.randn(5, 3), torch.randn(5))
        >>> chunks = per_sample_gradients(model, loss, batch, chunk_size=4)
        >>> [g["weight"].shape for _, _, g in chunks]
        [torch.Size([4, 1, 3]), torch.Size([1, 1, 3])]
    """
    params = {n: p.detach() for n, p in trainable_parameters(model, parameter_names).items()}
    one, leaves = per_sample_function(model, loss_fn, batch)
    grad_one = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0), randomness="different")
    n = batch_size(batch)
    for start, stop in chunks(n, chunk_size):
        # torch.func.grad ignores an outer no_grad; the no_grad only stops parameters that are
        # not differentiated (parameter_names) from recording an autograd graph.
        with torch.no_grad(), autodiff_friendly_attention():
            grads = grad_one(params, [leaf[start:stop] for leaf in leaves])
        yield start, stop, {name: g.detach() for name, g in grads.items()}


def gradient_noise(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batch: Any,
    *,
    chunk_size: int | None = 16,
    unbiased: bool = False,
    parameter_names: Sequence[str] | None = None,
) -> NoiseEstimate:
    """Per-coordinate noise ``σ_j`` from exact per-sample gradients, in bounded memory.

    With ``G_ij = ∂_j ℓ_i(w)`` over the ``n`` samples of ``batch``,

        σ_j² = (1/(n − ddof)) Σ_i (G_ij − Ḡ_j)²,   ddof = 1 if unbiased else 0,

    accumulated chunk by chunk in float64 with the pairwise (Chan et al.) update, so that no
    ``n × d`` matrix is formed. With ``unbiased=False`` this is the same population variance as
    :func:`~anisoada.problems.logistic.logistic_noise`.

    Args:
        model: any ``torch.nn.Module`` (evaluated in its current mode, at its current parameters).
        loss_fn: ``loss_fn(model, batch) -> scalar``, the mean loss over the batch's samples.
        batch: tensor or tuple/list/dict of tensors, leading dimension = samples (n ≥ 2 when
            ``unbiased``).
        chunk_size: samples per vmapped call; peak memory grows with it, speed too.
        unbiased: divide by ``n − 1`` (samples drawn from a larger population) instead of ``n``.
        parameter_names: measure only these parameters (default: all trainable ones).

    Returns:
        :class:`NoiseEstimate` with float64 ``sigma`` and ``mean_gradient`` on the model's device.

    Example:
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> x = torch.randn(100, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        >>> loss = lambda m, b: 0.5 * m(b).square().mean()  # ∇ℓ_i = (w·x_i) x_i
        >>> est = gradient_noise(model, loss, x, chunk_size=32)
        >>> g = (x @ model.weight.detach().T) * x
        >>> torch.allclose(est.sigma, g.std(dim=0, unbiased=False))
        True

    References:
        Chan, Golub, LeVeque (1979), "Updating formulae and a pairwise algorithm for computing
        sample variances". torch.func per-sample-gradient tutorial (vmap of grad).
    """
    n = batch_size(batch)
    ddof = 1 if unbiased else 0
    if n - ddof < 1:
        raise ValueError(f"batch has n={n} samples; unbiased=True needs at least 2")
    moments = StreamingMoments()
    layout = None
    for _, _, grads in per_sample_gradients(
        model, loss_fn, batch, chunk_size=chunk_size, parameter_names=parameter_names
    ):
        if layout is None:
            layout = ParameterLayout.from_tensors({k: v[0] for k, v in grads.items()})
        moments.add_batch([grads[name] for name in layout.names])
        del grads
    assert layout is not None
    mean = layout.flatten(moments.mean)
    variance = layout.flatten(moments.m2) / (moments.count - ddof)
    return NoiseEstimate(
        sigma=variance.clamp_min(0.0).sqrt(),
        mean_gradient=mean,
        layout=layout,
        n_observations=moments.count,
        samples_per_observation=1,
        ddof=ddof,
        method="per_sample",
    )


class MicrobatchNoise:
    """Streaming ``σ_j`` from micro-batch mean gradients: ``σ_j² ≈ b · Var_m[g_mj]``.

    Each :meth:`update` receives the **mean** gradient of one micro-batch of ``b`` samples (the
    gradient of the mean-reduced loss on that micro-batch). For ``k`` micro-batches of i.i.d.
    samples ``Var(g_mj) = σ_j²/b``, so

        σ̂_j² = b · (1/(k − 1)) Σ_m (g_mj − ḡ_j)²

    is unbiased for ``σ_j²``. Micro-batches drawn *without* replacement from a finite training set
    of ``N`` samples have variance smaller by the factor ``(N − b)/(N − 1)``: negligible for
    ``b ≪ N``. Moments are kept in float64 (Welford / Chan updates), costing ``2d`` float64 values.

    Use during training with gradient accumulation::

        noise = MicrobatchNoise(micro_batch_size=b)
        for step in range(T):
            noise.begin_accumulation()          # p.grad is zero here
            for micro in micro_batches:
                (loss_fn(model, micro) / n_micro).backward()
                noise.update_from_accumulated(model.parameters(), loss_scale=1 / n_micro)
            optimizer.step(); optimizer.zero_grad()
        estimate = noise.result()

    Across DDP ranks, each rank accumulates its own micro-batches (under ``model.no_sync()``; a
    micro-batch whose backward pass synchronised gradients must not be recorded from ``p.grad``,
    which then holds the cross-rank average) and :meth:`reduce_across_ranks` merges them exactly
    with two ``all_reduce`` sums.

    Args:
        micro_batch_size: samples per micro-batch ``b``.

    Example:
        >>> noise = MicrobatchNoise(micro_batch_size=4)
        >>> for g in ([1.0, 0.0], [3.0, 0.0], [2.0, 0.0]):
        ...     noise.update([torch.tensor(g)])
        >>> noise.result().sigma.tolist()  # 4 · var([1, 3, 2], ddof=1) = 4
        [2.0, 0.0]
    """

    def __init__(self, micro_batch_size: int) -> None:
        if not isinstance(micro_batch_size, int) or micro_batch_size < 1:
            raise ValueError(
                f"Invalid micro_batch_size: {micro_batch_size!r}; use the number of samples whose "
                "mean gradient each update receives (a positive integer)."
            )
        self.micro_batch_size = micro_batch_size
        self._moments = StreamingMoments()
        self._layout: ParameterLayout | None = None
        self._accumulated: list[torch.Tensor] | None = None

    @property
    def count(self) -> int:
        """Number of micro-batches recorded."""
        return self._moments.count

    @property
    def layout(self) -> ParameterLayout | None:
        """Block layout of the gradients (known after the first update)."""
        return self._layout

    def update(
        self, grads: Mapping[str, torch.Tensor] | Sequence[torch.Tensor] | torch.Tensor
    ) -> None:
        """Record one micro-batch's mean gradient (by name, or as tensors in a fixed order; a
        lone tensor is one block)."""
        blocks = self._blocks(grads)
        self._moments.add_batch([b.detach().unsqueeze(0) for b in blocks])

    def begin_accumulation(self) -> None:
        """Mark that the parameters' ``.grad`` fields were zeroed (start of an optimizer step)."""
        self._accumulated = None

    def update_from_accumulated(
        self,
        parameters: Mapping[str, torch.nn.Parameter] | Iterable[torch.nn.Parameter],
        *,
        loss_scale: float = 1.0,
    ) -> None:
        """Record the micro-batch whose ``backward()`` just added into the parameters' ``.grad``.

        Its gradient is ``(grad_now − grad_before) / loss_scale``, where ``loss_scale`` is the
        factor the micro-batch loss was multiplied by before ``backward()`` (``1/n_micro`` for the
        usual averaging). Keeps one copy of the accumulated gradient (``d`` values) between calls.
        """
        if not loss_scale or not math.isfinite(loss_scale):
            raise ValueError(f"Invalid loss_scale: {loss_scale!r}; use a non-zero finite number.")
        if isinstance(parameters, Mapping):
            named = dict(parameters)
        else:
            named = {f"param{i}": p for i, p in enumerate(parameters)}
        current = [
            torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in named.values()
        ]
        if self._accumulated is None:
            own = [c / loss_scale for c in current]
        else:
            own = [(c - a) / loss_scale for c, a in zip(current, self._accumulated, strict=True)]
        self.update(dict(zip(named, own)))
        self._accumulated = [c.clone() for c in current]

    def merge(self, other: MicrobatchNoise) -> None:
        """Add another accumulator's micro-batches into this one (same ``b`` and layout)."""
        if other.micro_batch_size != self.micro_batch_size:
            raise ValueError(
                f"cannot merge micro_batch_size={other.micro_batch_size} into "
                f"{self.micro_batch_size}; σ² scales with b, so keep one size per accumulator"
            )
        if other.count == 0:
            return
        if self._layout is None:
            self._layout = other._layout
        elif other._layout != self._layout:
            raise ValueError("cannot merge accumulators over different parameter layouts")
        self._moments.merge(other._moments.count, other._moments.mean, other._moments.m2)

    def reduce_across_ranks(self, group: Any = None) -> MicrobatchNoise:
        """A new accumulator holding the micro-batches of every process in ``group``.

        Exact and order-independent, with sums only: ``N = Σ_r k_r``, ``μ = Σ_r k_r ḡ_r / N``,
        ``M2 = Σ_r [M2_r + k_r (ḡ_r − μ)²]`` — two ``all_reduce(SUM)`` calls of ``d + 1`` and
        ``d`` float64 values. Every rank must call it (collective); this accumulator is unchanged.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError(
                "reduce_across_ranks needs an initialised torch.distributed process group "
                "(torch.distributed.init_process_group)"
            )
        if self._layout is None:
            raise ValueError("record at least one micro-batch on every rank before reducing")
        mean = self._layout.flatten(self._moments.mean)
        m2 = self._layout.flatten(self._moments.m2)
        totals = torch.cat([mean * self._moments.count, mean.new_tensor([self._moments.count])])
        dist.all_reduce(totals, group=group)
        total_count = round(float(totals[-1]))
        global_mean = totals[:-1] / total_count
        m2_about_global = m2 + self._moments.count * (mean - global_mean).square()
        dist.all_reduce(m2_about_global, group=group)
        reduced = MicrobatchNoise(self.micro_batch_size)
        reduced._layout = self._layout
        reduced._moments.merge(
            total_count,
            list(self._layout.unflatten(global_mean).values()),
            list(self._layout.unflatten(m2_about_global).values()),
        )
        return reduced

    def result(self) -> NoiseEstimate:
        """``σ̂`` from the micro-batches so far (needs at least two)."""
        if self.count < 2:
            raise ValueError(
                f"MicrobatchNoise has {self.count} micro-batch(es); the variance needs at least 2"
            )
        assert self._layout is not None
        variance = self._layout.flatten(self._moments.m2) * (
            self.micro_batch_size / (self.count - 1)
        )
        return NoiseEstimate(
            sigma=variance.clamp_min(0.0).sqrt(),
            mean_gradient=self._layout.flatten(self._moments.mean),
            layout=self._layout,
            n_observations=self.count,
            samples_per_observation=self.micro_batch_size,
            ddof=1,
            method="microbatch",
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume accumulation (e.g. from a training checkpoint)."""
        return {
            "micro_batch_size": self.micro_batch_size,
            "count": self._moments.count,
            "names": None if self._layout is None else list(self._layout.names),
            "shapes": None if self._layout is None else [list(s) for s in self._layout.shapes],
            "mean": [m.clone() for m in self._moments.mean],
            "m2": [m.clone() for m in self._moments.m2],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        if int(state["micro_batch_size"]) != self.micro_batch_size:
            raise ValueError(
                f"state has micro_batch_size={state['micro_batch_size']}, this accumulator "
                f"{self.micro_batch_size}"
            )
        self._moments = StreamingMoments()
        self._layout = None
        if state["names"] is not None:
            self._layout = ParameterLayout(
                tuple(state["names"]), tuple(map(tuple, state["shapes"]))
            )
        self._moments.merge(
            int(state["count"]),
            [torch.as_tensor(m) for m in state["mean"]],
            [torch.as_tensor(m) for m in state["m2"]],
        )
        self._accumulated = None

    def _blocks(
        self, grads: Mapping[str, torch.Tensor] | Sequence[torch.Tensor] | torch.Tensor
    ) -> list[torch.Tensor]:
        if isinstance(grads, torch.Tensor):
            grads = [grads]
        if isinstance(grads, Mapping):
            tensors = dict(grads)
        else:
            tensors = {f"param{i}": g for i, g in enumerate(grads)}
        if self._layout is None:
            self._layout = ParameterLayout.from_tensors(tensors)
        if isinstance(grads, Mapping):
            return self._layout.ordered(tensors)
        return self._layout.ordered(list(tensors.values()))
