"""A user-defined PyTorch problem for ``anisoada advise --problem examples/tiny_mlp.py:problem``.

A two-layer MLP on a synthetic binary task whose inputs have very different scales per
feature (so the Hessian is anisotropic across coordinates and blocks). The function returns
``(model_factory, loss_fn, data)``: a factory of fresh models, the **mean** loss over a batch,
and the training samples as a tuple of tensors (samples first) — or a dict with ``"train"`` and
``"test"``. Everything runs on CPU in seconds.
"""

from __future__ import annotations

import torch


def problem(n: int = 1024, d: int = 16, hidden: int = 16, seed: int = 0):
    """The tiny MLP problem: ``(model_factory, loss_fn, {"train": (X, y), "test": (X, y)})``."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, -2, d, dtype=torch.float64)  # feature scales 1 … 0.01
    X = torch.randn(2 * n, d, generator=generator, dtype=torch.float64) * scales
    w = torch.randn(d, generator=generator, dtype=torch.float64) / scales
    y = (X @ w > 0).to(torch.float64)

    def model_factory() -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
        ).double()

    def loss_fn(model: torch.nn.Module, batch) -> torch.Tensor:
        inputs, labels = batch
        logits = model(inputs).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)

    return model_factory, loss_fn, {"train": (X[:n], y[:n]), "test": (X[n:], y[n:])}
