"""The optimizers of the paper: diagonal AdaGrad, AdaGrad-Norm and SGD.

Each is a ``torch.optim.Optimizer`` (parameter groups, closures, ``state_dict``) that validates
its options and owns its state, over a public functional form with keyword-only hyperparameters
that computes the update with a readable per-tensor ``"reference"`` kernel or the default
``"fast"`` one, which allocates nothing proportional to the parameters per step: torch's fused
kernels where they compute exactly the update and, for AdaGrad's other variants on large
tensors, a single pass compiled with ``torch.compile`` once per option set (``"eager"`` never
compiles; see :mod:`anisoada.optim._adagrad`).

``OPTIMIZERS`` maps a name to its class, so experiments and tests select optimizers by name
without special-casing any of them.
"""

from __future__ import annotations

import torch

from anisoada.optim._adagrad import AdaGrad, adagrad
from anisoada.optim._adagrad_norm import AdaGradNorm, adagrad_norm, squared_gradient_norm
from anisoada.optim._box import Bounds, RadiusBox
from anisoada.optim._sgd import SGD, sgd

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adagrad": AdaGrad,
    "adagrad_norm": AdaGradNorm,
    "sgd": SGD,
}
"""Optimizer classes by name."""

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "AdaGradNorm",
    "Bounds",
    "RadiusBox",
    "adagrad",
    "adagrad_norm",
    "sgd",
    "squared_gradient_norm",
]
