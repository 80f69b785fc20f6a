"""Per-batch-size prediction of AdaGrad vs uniform-step methods at a fixed sample budget."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from anisoada.theory import _validate, bounds
from anisoada.theory.bounds import Bound

__all__ = ["PREDICTION_COLUMNS", "TIE_FACTOR", "VARIANTS", "predict"]

#: Every bound ``predict`` can evaluate, keyed by variant: ``(method, label)``.
VARIANTS: dict[str, tuple[str, str]] = {
    "adagrad": ("adagrad", "AdaGrad"),
    "sgd": ("sgd", "SGD"),
    "adagrad_norm": ("adagrad_norm", "AdaGrad-Norm"),
    "sgd_lambda_max": ("sgd", "SGD (λ_max)"),
    "adagrad_l0l1": ("adagrad", "AdaGrad (L0,L1)"),
    "adagrad_nonsmooth": ("adagrad", "AdaGrad (nonsmooth)"),
}

#: Columns of the table returned by :func:`predict`, in order (the λ_max pair only with λ_max).
PREDICTION_COLUMNS: tuple[str, ...] = (
    "batch_size",
    "iterations",
    "budget",
    "variant",
    "method",
    "label",
    "setting",
    "theorem",
    "smoothness",
    "bias",
    "noise",
    "l1_term",
    "bound",
    "dominant",
    "critical_batch_size",
    "step_size",
    "ratio_to_sgd",
    "verdict",
    "ratio_to_sgd_lambda_max",
    "verdict_lambda_max",
)

#: Bounds within this factor of each other are a tie: they hold up to absolute constants that
#: are not known, so a ratio of 0.9 (or 1.5) says nothing about which method is faster.
TIE_FACTOR = 2.0

_CONSTANT_NAMES: tuple[str, ...] = ("c_bias", "c_noise")


@dataclass(frozen=True)
class _Curve:
    variant: str
    evaluate: Callable[..., Bound]  # keywords M and N (or T) -> Bound


def predict(
    *,
    L: ArrayLike,
    sigma: ArrayLike,
    batch_sizes: Sequence[float] | np.ndarray,
    budget: float,
    setting: Literal["convex", "nonconvex"] = "convex",
    D_inf: float | None = None,
    D_2: float | None = None,
    delta: float | None = None,
    lambda_max: float | None = None,
    L0: ArrayLike | None = None,
    L1: ArrayLike | None = None,
    G: ArrayLike | None = None,
    constants: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """Evaluate every applicable bound at each batch size for a fixed sample budget ``N``.

    For each batch size ``M`` the methods run whole steps, ``T = ⌊N/M⌋`` iterations on
    ``M·T ≤ N`` samples (the last partial batch is not taken); a batch size above the budget
    would give no step and is a ValueError. Rows (one per batch size and ``variant``; all bounds
    up to absolute constants, see :mod:`anisoada.theory.bounds`):

    * ``adagrad`` — Thm 4.1 (convex) or Thm 4.3 (nonconvex), ``‖L‖_1``, ``‖σ‖_1``, ``D_∞``;
    * ``sgd`` — Eq. 6 / SGD's ℓ2 rate ×√d with ``‖L‖_∞``, ``‖σ‖_2``, ``D_2`` (the reference);
    * ``adagrad_norm`` — the same form as SGD;
    * ``sgd_lambda_max`` — SGD with the measured ℓ2 constant ``λ_max`` (only if ``lambda_max``);
    * ``adagrad_l0l1`` — Thm 5.3 [recon] (nonconvex, only if ``L0`` and ``L1``);
    * ``adagrad_nonsmooth`` — Duchi et al.'s bound (convex, only if ``G``).

    ``ratio_to_sgd`` is the row's bound over SGD's (``‖L‖_∞`` framing) at the same batch size, and
    ``verdict`` is ``"better"`` (< 1/2), ``"worse"`` (> 2), ``"tie"`` (within a factor
    :data:`TIE_FACTOR` = 2 either way: the bounds hold up to unknown absolute constants) or
    ``"reference"``; with
    ``lambda_max`` the pair ``ratio_to_sgd_lambda_max`` / ``verdict_lambda_max`` compares with SGD
    under ``λ_max`` instead. Since ``λ_max ≤ ‖L‖_∞`` whenever ``L`` satisfies A2, that is the
    harder comparison for AdaGrad. ``dominant`` names the larger term and ``critical_batch_size``
    is the batch size at which the variant's bias and noise terms are equal at the budget ``N``
    (the bounds' continuous form, ``T = N/M``: the same on every row of a variant).

    Args:
        L: Smoothness vector (A2), shape ``(d,)``.
        sigma: Per-coordinate noise standard deviation of one sample (A5), shape ``(d,)``.
        batch_sizes: Distinct batch sizes ``M``, each a number in ``[1, budget]`` (whole numbers
            for a table; a real grid draws a continuous curve).
        budget: Sample budget ``N = M·T``, a number.
        setting: ``"convex"`` (needs ``D_inf``) or ``"nonconvex"`` (needs ``delta``).
        D_inf: ℓ∞ diameter of the feasible set (convex).
        D_2: ℓ2 diameter (convex); default ``√d·D_∞``, i.e. the set is a box.
        delta: Initial suboptimality ``Δ`` (nonconvex).
        lambda_max: Measured ℓ2 smoothness constant; adds the ``sgd_lambda_max`` rows.
        L0: Generalized smoothness (A3), constant part; with ``L1`` adds ``adagrad_l0l1``.
        L1: Generalized smoothness (A3), gradient-proportional part.
        G: Per-coordinate gradient bound; adds ``adagrad_nonsmooth`` (convex only).
        constants: Absolute constants per variant, e.g. ``{"adagrad": {"c_bias": 2.0}}``, passed
            to the bound function as keyword arguments (default: all 1).

    Raises:
        TypeError: ``budget`` or a batch size is not a number (text, a bool).
        ValueError: a value is out of range, or a batch size is given twice.

    Returns:
        A tidy DataFrame with the columns :data:`PREDICTION_COLUMNS` (without the two λ_max
        columns when ``lambda_max`` is None), one block of rows per batch size in the order given.
        ``iterations`` holds integers; so does ``batch_size`` when every batch size is a whole
        number (floats otherwise, e.g. a continuous grid for a plot).

    Example:
        >>> table = predict(L=[16.0, 1.0, 1.0, 1.0], sigma=[1.0, 1.0, 1.0, 1.0], D_inf=1.0,
        ...                 batch_sizes=[1, 100], budget=10_000)
        >>> columns = ["batch_size", "bias", "noise", "ratio_to_sgd", "verdict"]
        >>> table.loc[table.variant == "adagrad", columns].round(3)
           batch_size   bias  noise  ratio_to_sgd verdict
        0           1  0.002   0.04         0.903     tie
        3         100  0.190   0.04         0.338  better

        (Isotropic noise: at batch 1 the noise terms, equal for both, decide — a tie; at batch
        100 the anisotropic bias term does, ``ρ_L = 19/64``.)

    References:
        Liu, Pan, Zhang. "AdaGrad under Anisotropic Smoothness." ICLR 2025, Sections 4–5.
    """
    budget = _validate.positive("budget", _validate.real_number("budget", budget))
    sizes = _validate.batch_sizes(_validate.real_numbers("batch_sizes", batch_sizes), budget)
    distinct, counts = np.unique(sizes, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"batch_sizes gives {distinct[counts > 1][0]:g} more than once; give each batch "
            "size once"
        )
    L, sigma = _validate.vector("L", L), _validate.vector("sigma", sigma)
    d = _validate.same_length(("L", L), ("sigma", sigma))
    curves = _curves(setting, L, sigma, d, D_inf, D_2, delta, lambda_max, L0, L1, G, constants)

    whole = bool(np.all(sizes == np.floor(sizes)))
    rows = []
    for M in sizes:
        steps = int(budget // M)  # ≥ 1: every batch size is at most the budget
        evaluated = {curve.variant: curve.evaluate(M=float(M), T=steps) for curve in curves}
        at_budget = {curve.variant: curve.evaluate(M=float(M), N=budget) for curve in curves}
        for variant, bound in evaluated.items():
            method, label = VARIANTS[variant]
            row = {
                "batch_size": int(M) if whole else float(M),
                "iterations": steps,
                "budget": budget,
                "variant": variant,
                "method": method,
                "label": label,
                "setting": bound.setting,
                "theorem": bound.theorem,
                "smoothness": bound.smoothness,
                "bias": bound.bias,
                "noise": bound.noise,
                "l1_term": bound.l1_term,
                "bound": bound.total,
                "dominant": bound.dominant,
                "critical_batch_size": at_budget[variant].critical_batch_size,
                "step_size": bound.step_size,
            }
            row["ratio_to_sgd"], row["verdict"] = _compare(variant, "sgd", evaluated)
            if "sgd_lambda_max" in evaluated:
                row["ratio_to_sgd_lambda_max"], row["verdict_lambda_max"] = _compare(
                    variant, "sgd_lambda_max", evaluated
                )
            rows.append(row)
    columns = [c for c in PREDICTION_COLUMNS if lambda_max is not None or "lambda_max" not in c]
    return pd.DataFrame(rows, columns=columns)


def _compare(variant: str, reference: str, bounds: Mapping[str, Bound]) -> tuple[float, str]:
    if variant == reference:
        return 1.0, "reference"
    value, base = bounds[variant].total, bounds[reference].total
    # Both zero (no smoothness, no noise) is a tie; only SGD's zero bound is infinitely better.
    ratio = value / base if base > 0 else (1.0 if value == 0 else math.inf)
    if 1.0 / TIE_FACTOR <= ratio <= TIE_FACTOR:
        return ratio, "tie"
    return ratio, "better" if ratio < 1.0 else "worse"


#: The bound of each variant in the convex and in the nonconvex setting (None: not in that one).
_BOUNDS: dict[str, tuple[Callable[..., Bound] | None, Callable[..., Bound] | None]] = {
    "adagrad": (bounds.convex_adagrad_bound, bounds.nonconvex_adagrad_bound),
    "sgd": (bounds.convex_sgd_bound, bounds.nonconvex_sgd_bound),
    "adagrad_norm": (bounds.convex_adagrad_norm_bound, bounds.nonconvex_adagrad_norm_bound),
    "sgd_lambda_max": (bounds.convex_sgd_bound, bounds.nonconvex_sgd_bound),
    "adagrad_nonsmooth": (bounds.nonsmooth_adagrad_bound, None),
    "adagrad_l0l1": (None, bounds.generalized_adagrad_bound),
}


def _curves(
    setting: str,
    L: np.ndarray,
    sigma: np.ndarray,
    d: int,
    D_inf: float | None,
    D_2: float | None,
    delta: float | None,
    lambda_max: float | None,
    L0: ArrayLike | None,
    L1: ArrayLike | None,
    G: ArrayLike | None,
    constants: Mapping[str, Mapping[str, float]] | None,
) -> list[_Curve]:
    """The bounds to evaluate, each as a function of ``(M, N)``, after validating all inputs."""
    constants = dict(constants or {})
    unknown = sorted(set(constants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"constants has unknown variants {unknown}; known: {sorted(VARIANTS)}")
    if lambda_max is not None:
        lambda_max = _validate.positive("lambda_max", lambda_max)
    if (L0 is None) != (L1 is None):
        raise ValueError("give both L0 and L1 (the generalized smoothness pair) or neither")

    def c(variant: str) -> dict[str, float]:
        given = dict(constants.get(variant, {}))
        allowed = _CONSTANT_NAMES + (("c_l1", "c_ceiling") if variant == "adagrad_l0l1" else ())
        for name, value in given.items():
            if name not in allowed:
                raise ValueError(
                    f"constants[{variant!r}] has unknown constant {name!r}; known: {list(allowed)}"
                )
            given[name] = _validate.positive(f"constants[{variant!r}][{name!r}]", value)
        return given

    kw = {variant: c(variant) for variant in VARIANTS}
    vectors: dict[str, tuple[np.ndarray, ...]] = {}
    if setting == "convex":
        if D_inf is None:
            raise ValueError("D_inf is required for setting='convex' (AdaGrad's bound uses D_∞)")
        if delta is not None:
            raise ValueError("delta enters only the nonconvex bounds; drop it or set 'nonconvex'")
        if L0 is not None:
            raise ValueError("L0/L1 enter only the nonconvex (Thm 5.3) bound; use 'nonconvex'")
        D_inf, D_2 = _validate.diameters(D_inf, D_2, d)
        if G is not None:
            G = _validate.vector("G", G)
            _validate.same_length(("L", L), ("G", G))
            vectors["adagrad_nonsmooth"] = (G,)
    elif setting == "nonconvex":
        if delta is None:
            raise ValueError("delta (= f(w_1) − inf f) is required for setting='nonconvex'")
        delta = _validate.positive("delta", delta)
        if G is not None:
            raise ValueError("G (the nonsmooth bound) is a convex result; use setting='convex'")
        if L0 is not None and L1 is not None:  # both or neither (checked above)
            L0, L1 = _validate.vector("L0", L0), _validate.vector("L1", L1)
            _validate.same_length(("L", L), ("L0", L0), ("L1", L1))
            vectors["adagrad_l0l1"] = (L0, L1, sigma)
    else:
        raise ValueError(f"setting must be 'convex' or 'nonconvex'; got {setting!r}")
    if "sgd_lambda_max" in constants and lambda_max is None:
        raise ValueError("constants for 'sgd_lambda_max' given but lambda_max is None")

    curves = []
    for variant in ("adagrad", "sgd", "adagrad_norm", "sgd_lambda_max", *vectors):
        bound = _BOUNDS[variant][setting == "nonconvex"]
        assert bound is not None  # each variant is in vectors only for its setting
        # AdaGrad's convex bounds are in the ℓ∞ geometry, the uniform-step methods' in ℓ2.
        inputs: dict[str, float | None] = {"delta": delta}
        if setting == "convex":
            inputs = {"D_inf": D_inf} if VARIANTS[variant][0] == "adagrad" else {"D_2": D_2}
        if variant == "sgd_lambda_max":
            if lambda_max is None:
                continue
            inputs["lambda_max"] = lambda_max
        evaluate = partial(bound, *vectors.get(variant, (L, sigma)), **inputs, **kw[variant])
        curves.append(_Curve(variant, evaluate))
    return curves
