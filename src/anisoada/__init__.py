"""anisoada — AdaGrad under anisotropic smoothness, as working software.

Optimizers (:mod:`anisoada.optim`), measurement, theory and experiments for the paper
"AdaGrad under Anisotropic Smoothness" (Liu, Pan, Zhang, ICLR 2025; arXiv 2406.15244).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
