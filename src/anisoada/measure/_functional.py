"""Plumbing shared by the model-agnostic estimators: batches, functional calls, moments.

The contract every estimator uses: ``loss_fn(model, batch) -> scalar`` is the **mean** loss over
the samples of ``batch``; a batch is a tensor, or a tuple/list/dict of tensors, whose leading
dimension indexes samples (non-tensor leaves are passed through unchanged). The loss of sample
``i`` alone is ``loss_fn(model, batch[i:i+1])``, and ``f = mean_i loss_i``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]
_PREFIX = "model."


class _LossModule(torch.nn.Module):
    """``loss_fn(model, batch)`` as a module, so that ``functional_call`` can swap the model's
    parameters for any tensors (vmapped, dual, perturbed) however ``loss_fn`` calls the model."""

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


def functional_loss(
    model: torch.nn.Module, loss_fn: LossFn
) -> Callable[[Mapping[str, torch.Tensor], Any], torch.Tensor]:
    """``(params, batch) -> loss`` with ``params`` a ``{name: tensor}`` dict of model parameters
    (names as in ``model.named_parameters()``); parameters not in the dict keep their values."""
    wrapper = _LossModule(model, loss_fn)

    def call(params: Mapping[str, torch.Tensor], batch: Any) -> torch.Tensor:
        prefixed = {_PREFIX + name: tensor for name, tensor in params.items()}
        return torch.func.functional_call(wrapper, prefixed, (batch,))

    return call


@contextlib.contextmanager
def autodiff_friendly_attention() -> Iterator[None]:
    """Route ``scaled_dot_product_attention`` to its composite ("math") kernel.

    The fused CPU flash-attention kernel has no forward-mode derivative, no double backward and
    no vmap batching rule for its backward pass; the composite kernel has all three, so
    per-sample gradients and Hessian-vector products work on transformers (e.g. GPT-2).
    """
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - very old torch
        yield
        return
    with sdpa_kernel([SDPBackend.MATH]):
        yield


def _flatten_batch(batch: Any) -> tuple[list[torch.Tensor], Callable[[list[torch.Tensor]], Any]]:
    """Tensor leaves of a batch and a function rebuilding the batch from new leaves."""
    if isinstance(batch, torch.Tensor):
        return [batch], lambda leaves: leaves[0]
    if isinstance(batch, Mapping):
        keys = list(batch)
        parts = [_flatten_batch(batch[k]) for k in keys]
        return _join(parts, lambda values: dict(zip(keys, values)))
    if isinstance(batch, (tuple, list)):
        parts = [_flatten_batch(item) for item in batch]
        kind = type(batch)
        return _join(parts, lambda values: kind(values))
    return [], lambda leaves: batch


def _join(
    parts: list[tuple[list[torch.Tensor], Callable[[list[torch.Tensor]], Any]]],
    build: Callable[[list[Any]], Any],
) -> tuple[list[torch.Tensor], Callable[[list[torch.Tensor]], Any]]:
    leaves: list[torch.Tensor] = []
    counts: list[int] = []
    for part_leaves, _ in parts:
        leaves.extend(part_leaves)
        counts.append(len(part_leaves))

    def rebuild(new_leaves: list[torch.Tensor]) -> Any:
        values: list[Any] = []
        start = 0
        for (_, part_rebuild), count in zip(parts, counts):
            values.append(part_rebuild(new_leaves[start : start + count]))
            start += count
        return build(values)

    return leaves, rebuild


def batch_size(batch: Any) -> int:
    """Number of samples (shared leading dimension of the tensor leaves)."""
    leaves, _ = _flatten_batch(batch)
    if not leaves:
        raise ValueError("batch must contain at least one tensor whose first dimension is samples")
    sizes = {int(leaf.shape[0]) if leaf.ndim else -1 for leaf in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            f"every tensor in batch must share its leading (sample) dimension; got sizes {sizes}"
        )
    n = sizes.pop()
    if n < 1:
        raise ValueError("batch is empty (leading dimension 0)")
    return n


def slice_batch(batch: Any, start: int, stop: int) -> Any:
    """Samples ``start:stop`` of a batch."""
    leaves, rebuild = _flatten_batch(batch)
    return rebuild([leaf[start:stop] for leaf in leaves])


def chunks(n: int, chunk_size: int | None) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges covering ``range(n)`` in pieces of at most ``chunk_size``."""
    if chunk_size is None:
        chunk_size = n
    if chunk_size < 1:
        raise ValueError(f"chunk size must be a positive integer; got {chunk_size}")
    for start in range(0, n, chunk_size):
        yield start, min(n, start + chunk_size)


def per_sample_function(
    model: torch.nn.Module, loss_fn: LossFn, batch: Any
) -> tuple[
    Callable[[dict[str, torch.Tensor], list[torch.Tensor]], torch.Tensor], list[torch.Tensor]
]:
    """``(params, leaves_of_one_sample) -> loss of that sample`` and the batch's tensor leaves.

    Each sample's leaves (leading dimension removed by ``vmap``) get a batch dimension of one back
    before ``loss_fn`` sees them, so ``loss_fn`` only ever handles ordinary batches.
    """
    call = functional_loss(model, loss_fn)
    leaves, rebuild = _flatten_batch(batch)

    def one(params: dict[str, torch.Tensor], sample_leaves: list[torch.Tensor]) -> torch.Tensor:
        return call(params, rebuild([leaf.unsqueeze(0) for leaf in sample_leaves]))

    return one, leaves


class StreamingMoments:
    """Per-block running mean and sum of squared deviations (Welford / Chan et al.), float64.

    ``M2 = Σ_i (x_i − mean)²`` is updated by the pairwise merge of Chan, Golub & LeVeque (1979)

        n = n_a + n_b,  δ = mean_b − mean_a,
        mean = mean_a + δ·n_b/n,  M2 = M2_a + M2_b + δ²·n_a·n_b/n,

    which is stable where the textbook ``Σx² − n·mean²`` cancels catastrophically.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: list[torch.Tensor] = []
        self.m2: list[torch.Tensor] = []

    def add_batch(self, blocks: list[torch.Tensor]) -> None:
        """Add observations: every block has shape ``(c, *shape)``, one row per observation."""
        c = int(blocks[0].shape[0])
        means = [b.to(torch.float64).mean(dim=0) for b in blocks]
        m2s = [
            (b.to(torch.float64) - m).square().sum(dim=0)
            for b, m in zip(blocks, means, strict=True)
        ]
        self.merge(c, means, m2s)

    def merge(self, count: int, means: list[torch.Tensor], m2s: list[torch.Tensor]) -> None:
        """Merge another set of moments (``count`` observations) into this one."""
        if count == 0:
            return
        if self.count == 0:
            self.count = count
            self.mean = [m.clone() for m in means]
            self.m2 = [m.clone() for m in m2s]
            return
        total = self.count + count
        for k, (mean_b, m2_b) in enumerate(zip(means, m2s, strict=True)):
            delta = mean_b - self.mean[k]
            self.mean[k] = self.mean[k] + delta * (count / total)
            self.m2[k] = self.m2[k] + m2_b + delta.square() * (self.count * count / total)
        self.count = total


class FlatObjective:
    """``f(w) = loss_fn(model, batch)`` as a function of the flat parameter vector ``w ∈ R^d``.

    The model itself is never modified: parameters are substituted with ``functional_call``.
    With ``data_chunk_size`` the batch is processed in pieces and, since ``f`` is a mean over
    samples, ``f = Σ_c (n_c/n) f_c`` (likewise for gradients and Hessian-vector products), which
    bounds activation memory.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        batch: Any,
        *,
        parameter_names: Sequence[str] | None = None,
        data_chunk_size: int | None = None,
    ) -> None:
        from anisoada.measure.layout import ParameterLayout, trainable_parameters

        params = trainable_parameters(model, parameter_names)
        self.layout = ParameterLayout.from_tensors(params)
        self.point = self.layout.flatten([p.detach() for p in params.values()])
        self._call = functional_loss(model, loss_fn)
        self._n = batch_size(batch)
        self._pieces = [
            ((stop - start) / self._n, slice_batch(batch, start, stop))
            for start, stop in chunks(self._n, data_chunk_size)
        ]

    def value(self, w: torch.Tensor) -> torch.Tensor:
        """``f(w)``."""
        with torch.no_grad(), autodiff_friendly_attention():
            total = sum(
                weight * self._call(self.layout.unflatten(w), piece)
                for weight, piece in self._pieces
            )
        assert isinstance(total, torch.Tensor)  # not sum()'s 0: a batch has at least one piece
        return total

    def gradient(self, w: torch.Tensor) -> torch.Tensor:
        """``∇f(w)``, shape ``(d,)``."""
        total = torch.zeros_like(w)
        for weight, piece in self._pieces:
            with torch.no_grad(), autodiff_friendly_attention():
                grads = torch.func.grad(self._call)(self.layout.unflatten(w), piece)
            total = total + weight * self.layout.flatten(grads)
        return total

    def hvp(
        self, w: torch.Tensor, vector: torch.Tensor, *, method: str = "reverse"
    ) -> torch.Tensor:
        """``∇²f(w) v`` by double backward (``method="reverse"``) or forward-over-reverse
        (``"forward"``, ``jvp`` of ``grad``). ``vector`` may be ``(k, d)``: k products, from one
        gradient graph per data piece (reverse) or one vmapped ``jvp`` (forward).

        Derivatives are taken with respect to the per-tensor blocks and concatenated once: taking
        them with respect to the flat vector would make every block's backward pass scatter into
        a d-sized buffer (``O(n_tensors · d)`` work, prohibitive at GPT-2 scale)."""
        if method not in ("forward", "reverse"):
            raise ValueError(f"Invalid HVP method {method!r}; use 'forward' or 'reverse'.")
        if method == "forward" and vector.ndim > 1:
            return torch.func.vmap(lambda v: self.hvp(w, v, method=method))(vector)
        total = torch.zeros_like(vector)
        for weight, piece in self._pieces:
            with torch.no_grad(), autodiff_friendly_attention():
                if method == "forward":
                    _, hv = _quiet_jvp(
                        lambda p, piece=piece: torch.func.grad(self._call)(p, piece),
                        (self.layout.unflatten(w),),
                        (self.layout.unflatten(vector),),
                    )
                    hv = self.layout.flatten(hv)
                else:
                    hv = self._double_backward(w, vector, piece)
            # Out of place: under vmap (batched probes) hv is batched while total starts plain.
            total = total + weight * hv.detach()
        return total

    def _double_backward(self, w: torch.Tensor, vectors: torch.Tensor, piece: Any) -> torch.Tensor:
        blocks = {
            name: block.detach().requires_grad_(True)
            for name, block in self.layout.unflatten(w).items()
        }
        leaves = list(blocks.values())
        rows = vectors.reshape(-1, w.numel())
        products = []
        with torch.enable_grad():
            grads = torch.autograd.grad(
                self._call(blocks, piece), leaves, create_graph=True, allow_unused=True
            )
            # Blocks the loss does not reach, or reaches only linearly, have no second derivative.
            curved = [k for k, g in enumerate(grads) if g is not None and g.requires_grad]
            for r, v in enumerate(rows):
                directions = list(self.layout.unflatten(v).values())
                hv: Sequence[torch.Tensor | None] = [None] * len(leaves)
                if curved:
                    hv = torch.autograd.grad(
                        [grads[k] for k in curved],
                        leaves,
                        grad_outputs=[directions[k] for k in curved],
                        retain_graph=r < len(rows) - 1,
                        allow_unused=True,
                    )
                products.append(
                    self.layout.flatten(
                        [torch.zeros_like(x) if h is None else h for h, x in zip(hv, leaves)]
                    )
                )
        return torch.stack(products).reshape(vectors.shape)


def _quiet_jvp(*args: Any) -> Any:
    """``torch.func.jvp``; torch's first forward-mode call scripts its decompositions with the
    deprecated ``torch.jit.script`` and warns about it — an internal matter, not the caller's."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.script.*", category=DeprecationWarning
        )
        return torch.func.jvp(*args)
