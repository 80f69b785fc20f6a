"""Instruction tuning of a causal language model: the paper's nonconvex objective, defined once.

Every part of anisoada that trains or measures a language model — the training task
(:class:`anisoada.experiments.tasks.LanguageModelTask`), the per-sample and Hessian estimators of
:mod:`anisoada.measure` (:func:`anisoada.measure.language_model_problem`) and the noise monitor of
the training loop — optimises or describes this one objective.

**The objective: the response-token mean.** A set ``B`` of tokenized examples has response
positions ``R_i`` per example (prompt tokens and padding carry the label :data:`IGNORE_INDEX` and
are not scored). With the summed loss of example ``i``

    S_i(w) = Σ_{t ∈ R_i} −log p_w(x_{i,t} | x_{i,<t}),     T_i = |R_i|,

the loss of ``B`` is

    f_B(w) = Σ_{i ∈ B} S_i(w) / Σ_{i ∈ B} T_i,

the mean over every response token of ``B`` — the usual convention of instruction tuning, where a
long answer weighs more than a short one. A training step's ``B`` is its whole effective batch
(over every micro-batch and process); the full objective is ``f`` over the training set.

**One sample is one example.** The estimators of :mod:`anisoada.measure` need ``f`` as a mean of
per-sample losses. Over a fixed set of ``n`` examples with mean token count ``T̄ = Σ T_i / n``,

    f(w) = (1/n) Σ_i ℓ_i(w),    ℓ_i(w) = S_i(w) / T̄,

exactly (the scale ``1/T̄`` is a constant of the set, so ``∇f``, the Hessian, ``L`` and ``λ_max``
are those of the token mean). ``σ_j² = Var_i ∂_j ℓ_i`` is then the per-example noise. A training
mini-batch's gradient ``Σ_B ∇S_i / Σ_B T_i`` is a ratio estimator of ``∇f``; to first order in
``1/|B|`` its covariance is ``Var_i(∇ℓ_i − ∇f · T_i/T̄) / |B|``, which differs from ``σ²/|B|``
only through the spread of the token counts times ``∇f`` (small near a stationary point, zero
when every example has the same length). The micro-batch noise monitor measures that ratio form
directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "IGNORE_INDEX",
    "PRECISIONS",
    "pad_examples",
    "response_token_loss",
    "summed_response_loss",
    "summed_response_loss_parts",
]

#: Label of tokens that are not scored (prompt, padding), as in ``transformers``.
IGNORE_INDEX = -100

#: Forward-pass precisions: float32, or bfloat16 autocast (the loss is reduced in float32).
PRECISIONS = ("fp32", "bf16")


def pad_examples(
    input_ids: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    rows: np.ndarray,
    pad_token_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad examples ``rows`` into ``(ids, scored, targets)``.

    Position ``t`` of a row predicts token ``t + 1``: ``scored[k, t]`` is true when the label at
    ``t + 1`` is scored, and ``targets`` lists those labels in row-major order. Right padding is
    invisible to the real tokens under causal attention, so no attention mask is needed.

    Example:
        >>> ids = [np.array([5, 6, 7]), np.array([8, 9])]
        >>> labels = [np.array([-100, 6, 7]), np.array([-100, 9])]
        >>> padded, scored, targets = pad_examples(ids, labels, np.array([0, 1]))
        >>> padded.tolist(), scored.tolist(), targets.tolist()
        ([[5, 6, 7], [8, 9, 0]], [[True, True, False], [True, False, False]], [6, 7, 9])
    """
    length = max(input_ids[r].size for r in rows)
    ids = np.full((rows.size, length), pad_token_id, dtype=np.int64)
    padded_labels = np.full((rows.size, length), IGNORE_INDEX, dtype=np.int64)
    for k, r in enumerate(rows):
        size = input_ids[r].size
        ids[k, :size] = input_ids[r]
        padded_labels[k, :size] = labels[r]
    next_labels = padded_labels[:, 1:]
    scored = np.zeros_like(ids, dtype=bool)
    scored[:, :-1] = next_labels != IGNORE_INDEX
    targets = next_labels[next_labels != IGNORE_INDEX]
    return torch.from_numpy(ids), torch.from_numpy(scored), torch.from_numpy(targets)


def summed_response_loss(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    scored: torch.Tensor,
    targets: torch.Tensor,
    *,
    precision: str = "fp32",
) -> torch.Tensor:
    """``Σ_i S_i``: the summed cross-entropy over the scored positions of a padded batch.

    The output layer runs on the scored positions only (for GPT-2's 50,257-token softmax that is
    most of the cost). Half-precision logits are reduced in float32.

    Args:
        model: a GPT-2-style causal LM with a ``.transformer`` body and an ``.lm_head``.
        input_ids, scored, targets: from :func:`pad_examples`.
        precision: ``"fp32"`` or ``"bf16"`` (autocast on the model's device).
    """
    logits = _scored_logits(model, input_ids, scored, precision)
    return F.cross_entropy(logits, targets, reduction="sum")


def _scored_logits(
    model: torch.nn.Module, input_ids: torch.Tensor, scored: torch.Tensor, precision: str
) -> torch.Tensor:
    """The output layer at the scored positions only, reduced in float32 or wider."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    body, head = model.transformer, model.lm_head
    assert isinstance(body, torch.nn.Module) and isinstance(head, torch.nn.Module)
    autocast = torch.autocast(
        device_type=input_ids.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
    )
    with autocast:
        # No key/value cache: training never reuses one (the same numbers, less work).
        hidden = body(input_ids=input_ids, use_cache=False).last_hidden_state
        logits = head(hidden[scored])
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return logits


def summed_response_loss_parts(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    scored: torch.Tensor,
    targets: torch.Tensor,
    used_tokens: torch.Tensor,
    *,
    precision: str = "fp32",
) -> torch.Tensor:
    """``[Σ_i S_i, Σ_i U_i]``: the summed cross-entropy and its part due to the unused tokens.

    With logits ``z`` over the full vocabulary ``V`` and the set ``U ⊂ V`` of tokens the data
    uses (every target is in ``U``), a position's cross-entropy splits exactly as

        −log softmax(z)_y = (lse_U(z) − z_y) + (lse_V(z) − lse_U(z)),  lse_S = log Σ_{s∈S} e^{z_s},

    the loss of the softmax restricted to ``U`` (what the compact vocabulary trains) plus
    ``log(1 + Σ_{v∉U} e^{z_v} / Σ_{u∈U} e^{z_u}) ≥ 0``, the probability mass the model puts on
    tokens that never occur. An optimizer that lowers the second term has learned to suppress
    unreachable tokens, not the data. The first entry is :func:`summed_response_loss` computed
    from the same logits (bit for bit), the second ``Σ_i`` of that unused-mass term.

    Args:
        model, input_ids, scored, targets, precision: as for :func:`summed_response_loss`.
        used_tokens: ids of ``U`` (1-D, int64, on the model's device).
    """
    logits = _scored_logits(model, input_ids, scored, precision)
    total = F.cross_entropy(logits, targets, reduction="sum")
    unused = (
        torch.logsumexp(logits, dim=-1) - torch.logsumexp(logits[:, used_tokens], dim=-1)
    ).sum()
    return torch.stack([total, unused])


def response_token_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(1/b) Σ_i ℓ_i`` with ``ℓ_i = S_i / T̄``: the token-mean objective as a per-sample mean.

    The ``loss_fn`` of :mod:`anisoada.measure` for language models (see the module docstring).
    Written with a mask over full-width logits rather than by gathering the scored positions, so
    that ``torch.func.vmap`` over examples sees no data-dependent shapes.

    Args:
        model: a causal LM returning ``.logits`` of shape ``(b, T, V)``.
        batch: ``{"input_ids": (b, T), "labels": (b, T), "token_scale": (b,)}``, right-padded;
            ``token_scale`` holds ``1/T̄`` of the fixed example set (the same for every row). It
            is required: a scale computed from the rows passed in would turn one example's loss
            into its own token mean, a different objective.

    Returns:
        Scalar loss.
    """
    if "token_scale" not in batch:
        raise ValueError(
            "response_token_loss needs batch['token_scale'] = 1 / (mean response tokens per "
            "example of the whole fixed set); build the batch with "
            "anisoada.measure.language_model_problem"
        )
    logits = model(input_ids=batch["input_ids"], use_cache=False).logits[:, :-1]
    targets = batch["labels"][:, 1:]
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    token_loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1).clamp_min(0),
        reduction="none",
    ).reshape(targets.shape)
    scored = (targets != IGNORE_INDEX).to(token_loss.dtype)
    summed = (token_loss * scored).sum(-1)
    return (summed * batch["token_scale"].to(summed.dtype)).mean()
