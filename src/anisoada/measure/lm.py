"""Causal language models as measurement problems: GPT-2 on Alpaca-format instructions.

The measured objective is the training objective of :mod:`anisoada.problems.language_model`,
the response-token mean over a fixed set of ``n`` examples prepared exactly as the training runs
prepare them (:func:`anisoada.data.prepare_lm_data`: same records, template, truncation and
vocabulary for the same :class:`~anisoada.data.LMDataSpec`). For the estimators it is written
as a mean over examples, ``f = (1/n) Σ_i ℓ_i`` with ``ℓ_i = S_i / T̄`` (``S_i`` the example's
summed response-token loss, ``T̄`` the set's mean response tokens per example): one sample is
one example, and ``f``, ``∇f``, the Hessian, ``L`` and ``λ_max`` are exactly those of the token
mean that SGD and AdaGrad optimise. The loss function is
:func:`anisoada.problems.response_token_loss`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from anisoada.data.instructions import LMDataSpec, prepare_lm_data
from anisoada.problems.language_model import IGNORE_INDEX, response_token_loss

__all__ = [
    "IGNORE_INDEX",
    "LanguageModelProblem",
    "language_model_problem",
    "response_token_loss",
]


@dataclasses.dataclass(frozen=True, eq=False)
class LanguageModelProblem:
    """A GPT-2 and a fixed tokenized batch, ready for :mod:`anisoada.measure` estimators.

    Attributes:
        model: the ``GPT2LMHeadModel`` (on ``device``).
        batch: ``{"input_ids", "labels"}`` int64 ``(n, T)`` tensors, right-padded, and
            ``"token_scale"`` ``(n,)`` float64 holding ``1/T̄`` (the loss function's contract).
        provenance: JSON-serialisable record (model build, data, vocabulary, lengths).
    """

    model: torch.nn.Module
    batch: dict[str, torch.Tensor]
    provenance: dict[str, Any]

    loss_fn = staticmethod(response_token_loss)


def language_model_problem(
    data: LMDataSpec,
    *,
    model: str = "tiny",
    weights: str | None = None,
    n_examples: int | None = 64,
    seed: int = 0,
    init_seed: int | None = None,
    split: str = "train",
    device: str | torch.device = "cpu",
) -> LanguageModelProblem:
    """Build GPT-2 and a fixed set of examples of ``data`` (offline).

    Args:
        data: the instruction data, exactly as a training run names it.
        model: GPT-2 preset of :func:`anisoada.models.build_gpt2` (``"tiny"``, ``"gpt2"``).
        weights: pretrained weights (see ``build_gpt2``); ``None`` for random init.
        n_examples: size of the fixed set, a seeded sample of the split (``None``: all of it).
        seed: seed of the sample.
        init_seed: seed of a random initialisation (default ``seed``).
        split: ``"train"`` (the training objective) or ``"eval"`` (the held-out split).
        device: where the model and batch live.

    Returns:
        :class:`LanguageModelProblem`; its ``loss_fn`` is
        :func:`~anisoada.problems.response_token_loss`.
    """
    from anisoada.models.gpt2 import GPT2_PRESETS, build_gpt2, restrict_vocabulary

    if split not in ("train", "eval"):
        raise ValueError(f"Invalid split {split!r}; use 'train' or 'eval'.")
    if n_examples is not None and (
        isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1
    ):
        raise ValueError(f"Invalid number of examples: {n_examples!r}; use a positive integer.")
    if model in GPT2_PRESETS and data.max_length > GPT2_PRESETS[model].n_positions:
        raise ValueError(
            f"max_length={data.max_length} exceeds the {model!r} preset's "
            f"{GPT2_PRESETS[model].n_positions} positions; lower the maximum length"
        )
    prepared = prepare_lm_data(data)
    examples = prepared.train if split == "train" else prepared.eval
    scored = examples.response_tokens()
    candidates = np.flatnonzero(scored > 0)
    if n_examples is not None and candidates.size < n_examples:
        raise ValueError(
            f"the {split} split has {candidates.size} examples with a response token, fewer "
            f"than the {n_examples} asked for; lower the number of examples or raise n_train"
        )
    rows = candidates
    if n_examples is not None:
        rows = np.sort(np.random.default_rng(seed).choice(candidates, n_examples, replace=False))
    chosen = examples.subset(rows)
    length = int(chosen.lengths().max())
    input_ids = np.zeros((rows.size, length), dtype=np.int64)
    labels = np.full((rows.size, length), IGNORE_INDEX, dtype=np.int64)
    for k, (ids, lab) in enumerate(zip(chosen.input_ids, chosen.labels)):
        input_ids[k, : ids.size] = ids
        labels[k, : lab.size] = lab
    tokens = chosen.response_tokens()
    mean_tokens = float(tokens.mean())
    network, model_record = build_gpt2(
        model, weights=weights, seed=seed if init_seed is None else init_seed
    )
    if prepared.kept_tokens is not None:
        restrict_vocabulary(network, prepared.kept_tokens.tolist())
    # Moved through its nn.Module type: transformers wraps PreTrainedModel.to with
    # functools.wraps, whose typing mypy cannot bind to an instance (same method at run time).
    module: torch.nn.Module = network
    module.to(device)
    batch = {
        "input_ids": torch.from_numpy(input_ids).to(device),
        "labels": torch.from_numpy(labels).to(device),
        "token_scale": torch.full((rows.size,), 1.0 / mean_tokens, dtype=torch.float64).to(device),
    }
    embedding = network.get_input_embeddings().weight
    assert isinstance(embedding, torch.Tensor)  # typed "tensor or module": a module's attribute
    provenance = {
        "model": model_record,
        "data": data.to_dict(),
        "data_info": prepared.info,
        "split": split,
        "n_examples": int(rows.size),
        "n_parameters": sum(p.numel() for p in network.parameters()),
        "sequence_length": length,
        "response_tokens": int(tokens.sum()),
        "mean_response_tokens": mean_tokens,
        "vocabulary": int(embedding.shape[0]),
        "compact_vocabulary": prepared.kept_tokens is not None,
        "seed": seed,
        "objective": "response-token mean over the fixed examples (the training objective)",
        "sample": "one example; loss = its summed response-token cross-entropy / mean tokens "
        "per example of the fixed set",
    }
    return LanguageModelProblem(network, batch, provenance)
