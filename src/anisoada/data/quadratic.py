"""A stochastic quadratic whose smoothness and noise are prescribed exactly.

:class:`StochasticQuadratic` — ``f(w) = ½ Σ_j L_j (w_j − w*_j)²`` with a stochastic gradient whose
per-coordinate noise standard deviation is exactly ``σ_j/√M`` at batch size ``M``: an exact oracle
for testing bounds and estimators, with the oracle vocabulary of the synthetic logistic problems
(:mod:`anisoada.data.synthetic`, which re-exports it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from anisoada.data._checks import check_batch_size, check_positive_int

__all__ = ["NoiseKind", "StochasticQuadratic"]

NoiseKind = Literal["gaussian", "rademacher"]


@dataclass(frozen=True, eq=False)
class StochasticQuadratic:
    """``f(w) = ½ Σ_j L_j (w_j − w*_j)²`` with per-coordinate gradient noise of exact size ``σ_j``.

    The stochastic gradient of a batch of ``M`` samples is the mean of ``M`` i.i.d. one-sample
    gradients ``∇f(w) + σ ⊙ ζ_m`` with ``E ζ_mj = 0`` and ``E ζ_mj² = 1``, so

        E[g] = ∇f(w) = L ⊙ (w − w*),    std(g_j) = σ_j / √M   exactly,

    i.e. A2 holds with the tight constant ``L`` (``∇²f = diag(L)``) and A5 with the tight ``σ``.
    ``noise="gaussian"`` draws the batch mean directly as ``σ/√M · N(0, 1)`` (the exact law of a
    mean of Gaussians); ``noise="rademacher"`` uses bounded ``ζ = ±1`` and draws the batch mean
    exactly as ``σ (2B − M)/M`` with ``B ~ Binomial(M, ½)``. ``inf f = 0`` at ``w*``.

    ``w`` may be a ``(d,)`` vector or a ``(d, K)`` matrix of K independent runs (one column each),
    as a numpy array (with a ``numpy.random.Generator``) or a torch tensor (with a
    ``torch.Generator`` on the tensor's device); results keep the input's type, dtype and device.

    Attributes:
        L: Smoothness vector, ``L_j ≥ 0``, shape ``(d,)``.
        sigma: One-sample noise standard deviations, ``σ_j ≥ 0``, shape ``(d,)``.
        minimiser: ``w*`` (zeros by default), shape ``(d,)``.
        noise_kind: ``"gaussian"`` or ``"rademacher"``.

    Example:
        >>> q = StochasticQuadratic(L=np.array([4.0, 1.0]), sigma=np.array([1.0, 0.5]))
        >>> q.grad(np.array([1.0, 1.0])).tolist(), float(q.loss(np.array([1.0, 1.0])))
        ([4.0, 1.0], 2.5)
    """

    L: np.ndarray
    sigma: np.ndarray
    minimiser: np.ndarray | None = None
    noise_kind: NoiseKind = "gaussian"
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        L = _finite_nonnegative_vector("L", self.L)
        sigma = _finite_nonnegative_vector("sigma", self.sigma)
        if sigma.shape != L.shape:
            raise ValueError(f"sigma must have the shape of L {L.shape}; got {sigma.shape}")
        if self.minimiser is None:
            minimiser = np.zeros_like(L)
        else:
            minimiser = np.asarray(self.minimiser, dtype=np.float64)
            if minimiser.shape != L.shape or not np.isfinite(minimiser).all():
                raise ValueError(
                    f"minimiser must be a finite vector of shape {L.shape}; got {minimiser.shape}"
                )
        if self.noise_kind not in ("gaussian", "rademacher"):
            raise ValueError(
                f"noise_kind must be 'gaussian' or 'rademacher'; got {self.noise_kind!r}"
            )
        for name, value in (("L", L), ("sigma", sigma), ("minimiser", minimiser)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def power_law(
        cls,
        d: int,
        *,
        smoothness_exponent: float,
        noise_exponent: float,
        L_max: float = 1.0,
        sigma_max: float = 1.0,
        minimiser: np.ndarray | None = None,
        noise_kind: NoiseKind = "gaussian",
    ) -> StochasticQuadratic:
        """``L_j = L_max (j+1)^(−a)`` and ``σ_j = σ_max (j+1)^(−b)``: tunable anisotropy.

        Exponent 0 gives the isotropic problem (``ρ_L = ρ_σ = 1``); larger exponents concentrate
        curvature and noise on the first coordinates (``ρ → 1/d`` and ``1/√d``).
        """
        check_positive_int("d", d)
        for name, value in (
            ("smoothness_exponent", smoothness_exponent),
            ("noise_exponent", noise_exponent),
        ):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
        index = np.arange(1, d + 1, dtype=np.float64)
        return cls(
            L=L_max * index ** (-smoothness_exponent),
            sigma=sigma_max * index ** (-noise_exponent),
            minimiser=minimiser,
            noise_kind=noise_kind,
        )

    @property
    def d(self) -> int:
        """Dimension."""
        return int(self.L.size)

    @property
    def smoothness(self) -> np.ndarray:
        """The tight A2 vector: ``∇²f = diag(L)``."""
        return self.L

    @property
    def hessian_diagonal_bound(self) -> np.ndarray:
        """Same as :attr:`smoothness` (the Hessian is diagonal and constant)."""
        return self.L

    def noise(self, w: Any = None) -> np.ndarray:
        """One-sample noise standard deviations ``σ`` (independent of ``w``)."""
        return self.sigma

    def loss(self, w: Any) -> Any:
        """``f(w) = ½ Σ_j L_j (w_j − w*_j)²`` (one value per column for ``(d, K)`` input)."""
        L, minimiser = self._constants(w)
        return 0.5 * (L * (w - minimiser) ** 2).sum(0)

    def grad(self, w: Any) -> Any:
        """``∇f(w) = L ⊙ (w − w*)``."""
        L, minimiser = self._constants(w)
        return L * (w - minimiser)

    def stochastic_grad(self, w: Any, batch_size: int, generator: Any) -> Any:
        """Mean of ``batch_size`` one-sample gradients: ``∇f(w) + σ ⊙ ζ̄`` with ``std(ζ̄_j) = 1/√M``.

        Args:
            w: ``(d,)`` or ``(d, K)`` numpy array or torch tensor.
            batch_size: ``M ≥ 1``.
            generator: ``numpy.random.Generator`` for numpy input, ``torch.Generator`` for torch.

        Returns:
            A stochastic gradient of ``w``'s shape, type, dtype and device; columns get independent
            noise.
        """
        check_batch_size(batch_size)
        gradient = self.grad(w)
        sigma = self._as_like("sigma", self.sigma, w)
        if _is_torch(w):
            import torch

            if not isinstance(generator, torch.Generator):
                raise ValueError(
                    "generator must be a torch.Generator for torch input; "
                    f"got {type(generator).__name__}"
                )
            if self.noise_kind == "gaussian":
                mean_noise = torch.randn(
                    w.shape, generator=generator, dtype=w.dtype, device=w.device
                ) / math.sqrt(batch_size)
            else:
                count = torch.full(w.shape, float(batch_size), dtype=w.dtype, device=w.device)
                successes = torch.binomial(count, torch.full_like(count, 0.5), generator=generator)
                mean_noise = (2.0 * successes - batch_size) / batch_size
        else:
            if not isinstance(generator, np.random.Generator):
                raise ValueError(
                    "generator must be a numpy.random.Generator for numpy input; "
                    f"got {type(generator).__name__}"
                )
            shape = np.shape(w)
            if self.noise_kind == "gaussian":
                mean_noise = generator.standard_normal(shape) / math.sqrt(batch_size)
            else:
                mean_noise = (2.0 * generator.binomial(batch_size, 0.5, shape) - batch_size) / (
                    batch_size
                )
        return gradient + sigma * mean_noise

    def _constants(self, w: Any) -> tuple[Any, Any]:
        shape = tuple(w.shape)
        if not shape or shape[0] != self.d or len(shape) > 2:
            raise ValueError(f"w must have shape ({self.d},) or ({self.d}, K); got {shape}")
        assert self.minimiser is not None  # None stands for zeros only until __post_init__
        return self._as_like("L", self.L, w), self._as_like("minimiser", self.minimiser, w)

    def _as_like(self, name: str, value: np.ndarray, w: Any) -> Any:
        """``value`` as a column broadcastable against ``w``, in ``w``'s array library."""
        column = value if np.ndim(w) == 1 or len(w.shape) == 1 else value[:, None]
        if not _is_torch(w):
            return column
        import torch

        key = (name, len(w.shape), w.dtype, str(w.device))
        cached = self._cache.get(key)
        if cached is None:
            cached = torch.tensor(np.array(column), dtype=w.dtype, device=w.device)
            self._cache[key] = cached
        return cached


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def _finite_nonnegative_vector(name: str, value: Any) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector; got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        index = int(np.flatnonzero(~np.isfinite(array) | (array < 0))[0])
        raise ValueError(
            f"{name} must be finite and >= 0; {name}[{index}] = {float(array[index])!r}"
        )
    return array
