"""anisoada — AdaGrad under anisotropic smoothness, as working software.

Optimizers (:mod:`anisoada.optim`), measurement, theory and experiments for the paper
"AdaGrad under Anisotropic Smoothness" (Liu, Pan, Zhang, ICLR 2025; arXiv 2406.15244).

``anisoada.advise(...)`` — will AdaGrad beat SGD on a problem, at which batch size
(:func:`anisoada.advice.advise`) — is loaded on first use, so ``import anisoada`` stays light.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "advise"]


def __getattr__(name: str) -> Any:
    # The one lazy re-export: the advice layer sits high in the package (it imports torch and
    # the sweep engine), so it is imported by name on first use, not with the package.
    if name == "advise":
        import importlib

        return importlib.import_module("anisoada.advice").advise
    raise AttributeError(f"module 'anisoada' has no attribute {name!r}")
