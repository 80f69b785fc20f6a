"""Where each parameter of a model lives in the flat coordinate vector ``w ∈ R^d``.

Every per-coordinate quantity in :mod:`anisoada.measure` (``σ_j``, ``L_j``, Hessian diagonal,
secant ratios) is a vector over the same ``d`` coordinates: the model's trainable parameters,
flattened one tensor after another in ``named_parameters()`` order (tied tensors, such as GPT-2's
input embedding and output layer, counted once). :class:`ParameterLayout` records that order, so
that a flat vector can be split back into per-tensor blocks ("layers") and aggregated per block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import torch

__all__ = ["ParameterLayout"]


@dataclasses.dataclass(frozen=True)
class ParameterLayout:
    """Names, shapes and flat offsets of a model's parameter tensors (the "blocks").

    Attributes:
        names: block names, e.g. ``"transformer.h.0.attn.c_attn.weight"``.
        shapes: the shape of each block.

    Example:
        >>> layout = ParameterLayout(names=("a", "b"), shapes=((2, 3), (4,)))
        >>> layout.d, layout.offsets, layout.block_of(torch.tensor([0, 5, 6])).tolist()
        (10, (0, 6, 10), [0, 0, 1])
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.shapes):
            raise ValueError(
                f"ParameterLayout needs one shape per name; got {len(self.names)} names and "
                f"{len(self.shapes)} shapes."
            )
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"ParameterLayout names must be distinct; got {self.names}.")
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        object.__setattr__(self, "shapes", tuple(tuple(int(s) for s in sh) for sh in self.shapes))

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor]) -> ParameterLayout:
        """The layout of a ``{name: tensor}`` mapping, in its iteration order."""
        return cls(tuple(tensors), tuple(tuple(t.shape) for t in tensors.values()))

    @classmethod
    def from_module(
        cls, module: torch.nn.Module, names: Sequence[str] | None = None
    ) -> ParameterLayout:
        """The layout of ``module``'s trainable parameters (or of the ``names`` given)."""
        return cls.from_tensors(trainable_parameters(module, names))

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of coordinates in each block."""
        sizes = []
        for shape in self.shapes:
            size = 1
            for s in shape:
                size *= s
            sizes.append(size)
        return tuple(sizes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each block in the flat vector, followed by ``d``."""
        offsets = [0]
        for size in self.sizes:
            offsets.append(offsets[-1] + size)
        return tuple(offsets)

    @property
    def d(self) -> int:
        """Total number of coordinates."""
        return self.offsets[-1]

    def flatten(self, tensors: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> torch.Tensor:
        """Concatenate per-block tensors (a mapping by name, or a sequence in order) into ``(d,)``.

        Tensors with extra leading dimensions (e.g. a chunk of per-sample gradients ``(c, *shape)``)
        are flattened to ``(c, d)``.
        """
        blocks = self.ordered(tensors)
        lead = blocks[0].shape[: blocks[0].ndim - len(self.shapes[0])]
        return torch.cat([b.reshape(*lead, -1) for b in blocks], dim=-1)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a ``(..., d)`` tensor into ``{name: (..., *shape)}`` views."""
        if flat.shape[-1] != self.d:
            raise ValueError(
                f"flat must have last dimension d={self.d} for this layout; got {tuple(flat.shape)}"
            )
        lead = flat.shape[:-1]
        return {
            name: flat[..., start:stop].reshape(*lead, *shape)
            for name, shape, start, stop in zip(
                self.names, self.shapes, self.offsets[:-1], self.offsets[1:]
            )
        }

    def block_of(self, flat_index: torch.Tensor | Iterable[int]) -> torch.Tensor:
        """Block number of each flat coordinate index."""
        index = torch.as_tensor(flat_index, dtype=torch.int64)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.d):
            raise ValueError(
                f"flat_index must lie in [0, {self.d}); got {index.min()}..{index.max()}"
            )
        boundaries = torch.tensor(self.offsets[1:-1], dtype=torch.int64)
        return torch.bucketize(index, boundaries, right=True)

    def block_ids(self) -> torch.Tensor:
        """The block number of every coordinate, shape ``(d,)``."""
        return torch.repeat_interleave(
            torch.arange(len(self.names)), torch.tensor(self.sizes, dtype=torch.int64)
        )

    def ordered(
        self, tensors: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """The blocks in layout order (from a mapping by name or a sequence), shapes checked."""
        if isinstance(tensors, Mapping):
            missing = [n for n in self.names if n not in tensors]
            if missing:
                raise ValueError(f"tensors lack blocks {missing[:5]} of this layout")
            blocks = [tensors[n] for n in self.names]
        else:
            blocks = list(tensors)
            if len(blocks) != len(self.names):
                raise ValueError(
                    f"expected {len(self.names)} tensors for this layout; got {len(blocks)}"
                )
        for name, shape, block in zip(self.names, self.shapes, blocks):
            if tuple(block.shape[block.ndim - len(shape) :]) != shape:
                raise ValueError(
                    f"block {name!r} must end in shape {shape}; got {tuple(block.shape)}"
                )
        return blocks


def trainable_parameters(
    module: torch.nn.Module, names: Sequence[str] | None = None
) -> dict[str, torch.nn.Parameter]:
    """``{name: parameter}`` of the trainable parameters, tied tensors once, in module order.

    Args:
        module: the model.
        names: restrict to these parameter names (the others are held fixed by the measurements).

    Raises:
        ValueError: a name is not a trainable parameter of ``module``, or nothing is selected.
    """
    available = {n: p for n, p in module.named_parameters() if p.requires_grad}
    if names is None:
        selected = available
    else:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(
                f"parameter names {unknown[:5]} are not trainable parameters of the model; "
                f"choose from e.g. {list(available)[:5]}"
            )
        wanted = set(names)
        selected = {n: p for n, p in available.items() if n in wanted}
    if not selected:
        raise ValueError("the model has no trainable parameters to measure (requires_grad=False?)")
    return selected
