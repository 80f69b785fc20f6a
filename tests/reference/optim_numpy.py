"""Slow, obviously-correct NumPy transcriptions of the optimizer updates (float64, one step).

Each function is the formula of ../shared/PAPER.md ("Algorithms") or of the named library,
written coordinate by coordinate, with no attempt at speed. They share no code with
``anisoada.optim``.
"""

from __future__ import annotations

import math

import numpy as np


def _clip(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)


def adagrad_step(
    w: np.ndarray,
    g: np.ndarray,
    v: np.ndarray,
    *,
    lr: float | np.ndarray,
    eps: float,
    eps_placement: str,
    weight_decay: float = 0.0,
    maximize: bool = False,
    delayed: bool = False,
    low: float | np.ndarray = -math.inf,
    high: float | np.ndarray = math.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """One diagonal AdaGrad step; returns the new ``(w, v)``.

    Per coordinate ``j``: ``g_j ← ±g_j + λ w_j``; ``v_j ← v_j + g_j²``; with ``u_j`` the new
    (standard) or old (delayed) accumulator, ``w_j ← clip(w_j − η_j g_j / (√u_j + ε))`` (outside)
    or ``w_j ← clip(w_j − η_j g_j / √(u_j + ε))`` (inside).
    """
    w = np.array(w, dtype=np.float64)
    v_old = np.array(v, dtype=np.float64)
    v_new = v_old.copy()
    lr_b, low_b, high_b = (
        np.broadcast_to(np.asarray(x, dtype=np.float64), w.shape) for x in (lr, low, high)
    )
    for j in np.ndindex(w.shape):
        grad = (-g[j] if maximize else g[j]) + weight_decay * w[j]
        v_new[j] = v_old[j] + grad * grad
        u = v_old[j] if delayed else v_new[j]
        denominator = math.sqrt(u) + eps if eps_placement == "outside" else math.sqrt(u + eps)
        w[j] = _clip(w[j] - lr_b[j] * grad / denominator, low_b[j], high_b[j])
    return w, v_new


def optax_adagrad_step(
    w: np.ndarray, g: np.ndarray, sum_of_squares: np.ndarray, *, learning_rate: float, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """optax's ``adagrad`` = ``scale_by_rss(initial_accumulator_value, eps)`` then ``−lr``.

    From optax's formula: ``s ← g² + s``; ``update = where(s > 0, 1/√(s + eps), 0) · g``;
    ``w ← w − learning_rate · update``. (optax's default ``initial_accumulator_value`` is 0.1,
    ``eps`` 1e-7.)
    """
    w = np.array(w, dtype=np.float64)
    s = np.array(sum_of_squares, dtype=np.float64)
    for j in np.ndindex(w.shape):
        s[j] = g[j] ** 2 + s[j]
        scale = 1.0 / math.sqrt(s[j] + eps) if s[j] > 0 else 0.0
        w[j] = w[j] - learning_rate * (scale * g[j])
    return w, s


def adagrad_norm_step(
    ws: list[np.ndarray],
    gs: list[np.ndarray],
    b_squared: float | np.ndarray,
    *,
    lr: float | np.ndarray,
    eps: float,
    eps_placement: str,
    weight_decay: float = 0.0,
    maximize: bool = False,
    delayed: bool = False,
    per_column: bool = False,
    low: float = -math.inf,
    high: float = math.inf,
) -> tuple[list[np.ndarray], float | np.ndarray]:
    """One AdaGrad-Norm step over a group; returns the new ``(ws, b²)``.

    ``b² ← b² + Σ_{all tensors, all coordinates} g²`` (per last-dimension column with
    ``per_column``); ``w ← clip(w − η g / (b + ε))`` with ``b`` the new (or, delayed, old) value.
    """
    effective = [(-g if maximize else g) + weight_decay * w for w, g in zip(ws, gs)]
    old = np.array(b_squared, dtype=np.float64)
    new = old.copy()
    for g in effective:
        for j in np.ndindex(g.shape):
            if per_column:
                new[j[-1]] += g[j] ** 2
            else:
                new += g[j] ** 2
    used = old if delayed else new
    out = []
    for w, g in zip(ws, effective):
        w = np.array(w, dtype=np.float64)
        lr_b = np.broadcast_to(np.asarray(lr, dtype=np.float64), w.shape)
        for j in np.ndindex(w.shape):
            b2 = used[j[-1]] if per_column else used
            b = math.sqrt(b2) + eps if eps_placement == "outside" else math.sqrt(b2 + eps)
            w[j] = _clip(w[j] - lr_b[j] * g[j] / b, low, high)
        out.append(w)
    return out, new


def sgd_step(
    w: np.ndarray,
    g: np.ndarray,
    buffer: np.ndarray | None,
    *,
    lr: float | np.ndarray,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    low: float | np.ndarray = -math.inf,
    high: float | np.ndarray = math.inf,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One SGD step (torch's momentum convention); returns the new ``(w, buffer)``.

    ``g ← ±g + λ w``; ``b ← g`` at the first step, else ``μ b + (1 − τ) g``; direction
    ``g + μ b`` (Nesterov) or ``b``; ``w ← clip(w − η · direction)``.
    """
    w = np.array(w, dtype=np.float64)
    lr_b, low_b, high_b = (
        np.broadcast_to(np.asarray(x, dtype=np.float64), w.shape) for x in (lr, low, high)
    )
    new_buffer = None if momentum == 0 else np.zeros_like(w)
    for j in np.ndindex(w.shape):
        grad = (-g[j] if maximize else g[j]) + weight_decay * w[j]
        direction = grad
        if momentum != 0:
            b = grad if buffer is None else momentum * buffer[j] + (1 - dampening) * grad
            new_buffer[j] = b
            direction = grad + momentum * b if nesterov else b
        w[j] = _clip(w[j] - lr_b[j] * direction, low_b[j], high_b[j])
    return w, new_buffer
