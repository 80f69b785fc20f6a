"""Causal language models as measurement problems: GPT-2 on Alpaca-format instructions.

The measured objective is ``f(w) = (1/n) Σ_i ℓ_i(w)`` over a fixed set of ``n`` tokenized
examples, where one **sample is one example** and its loss ``ℓ_i`` is the mean cross-entropy over
its response tokens (prompt and padding carry the label ``-100`` and are not scored). This is the
per-sample convention every estimator in :mod:`anisoada.measure` assumes; it weights examples
equally, whereas a training step's token mean weights them by their response lengths.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["IGNORE_INDEX", "LanguageModelProblem", "causal_lm_loss", "language_model_problem"]

#: Label of tokens that are not scored (``transformers`` / ``cross_entropy`` convention).
IGNORE_INDEX = -100


def causal_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over examples of each example's mean response-token cross-entropy.

    ``ℓ_i = (1/|R_i|) Σ_{t ∈ R_i} −log p(x_{i,t} | x_{i,<t})`` with ``R_i`` the positions whose
    label is not ``-100`` (labels aligned with ``input_ids``, shifted here as in
    ``transformers``); the batch loss is ``(1/b) Σ_i ℓ_i``. An example without scored tokens
    contributes 0.

    Rows must be right-padded: under causal attention, trailing padding is invisible to the real
    tokens, so no attention mask is passed (which keeps ``vmap`` over examples free of the
    data-dependent mask logic inside ``transformers``).

    Args:
        model: a causal LM returning ``.logits`` of shape ``(b, T, V)`` (e.g. GPT2LMHeadModel).
        batch: ``{"input_ids": (b, T) int64, "labels": (b, T) int64, ...}``.

    Returns:
        Scalar loss.
    """
    logits = model(input_ids=batch["input_ids"]).logits[:, :-1]
    targets = batch["labels"][:, 1:]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # a softmax over many classes needs more than 8 mantissa bits
    token_loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1).clamp_min(0),
        reduction="none",
    ).reshape(targets.shape)
    scored = (targets != IGNORE_INDEX).to(token_loss.dtype)
    per_example = (token_loss * scored).sum(-1) / scored.sum(-1).clamp_min(1.0)
    return per_example.mean()


@dataclasses.dataclass(frozen=True, eq=False)
class LanguageModelProblem:
    """A GPT-2 and a fixed tokenized batch, ready for :mod:`anisoada.measure` estimators.

    Attributes:
        model: the ``GPT2LMHeadModel`` (on ``device``).
        batch: ``{"input_ids", "labels"}`` int64 ``(n, T)`` tensors, right-padded.
        provenance: JSON-serialisable record (model build, data source, vocabulary, lengths).
    """

    model: torch.nn.Module
    batch: dict[str, torch.Tensor]
    provenance: dict[str, Any]


def language_model_problem(
    *,
    preset: str = "tiny",
    data: str | Path | None = None,
    n_examples: int = 64,
    max_length: int = 128,
    seed: int = 0,
    weights: str | Path | None = None,
    restrict_vocabulary: bool | None = None,
    device: str | torch.device = "cpu",
) -> LanguageModelProblem:
    """Build GPT-2 and a fixed subset of instruction examples (offline).

    Args:
        preset: GPT-2 preset of :func:`anisoada.models.build_gpt2` (``"tiny"``, ``"gpt2"``).
        data: an Alpaca-format JSON/JSONL file (optionally compressed), or ``None`` /
            ``"synthetic"`` for :func:`anisoada.data.synthetic_instructions`.
        n_examples: size of the fixed subset (a seeded sample of the file's records).
        max_length: longest tokenized row (responses are cut at the tail, prompts never).
        seed: seed of the subset and of the random initialisation.
        weights: pretrained weights (see ``build_gpt2``); ``None`` for random init.
        restrict_vocabulary: keep only the embedding rows of tokens the subset uses (softmax over
            those tokens; see :func:`anisoada.models.restrict_vocabulary`); default: yes for the
            tiny preset, no otherwise.
        device: where the model and batch live.

    Returns:
        :class:`LanguageModelProblem`.
    """
    from anisoada.data import (
        gpt2_tokenizer,
        load_alpaca,
        synthetic_instructions,
        tokenize_instructions,
    )
    from anisoada.models.gpt2 import GPT2_PRESETS, build_gpt2
    from anisoada.models.gpt2 import restrict_vocabulary as restrict

    if not isinstance(n_examples, int) or n_examples < 1:
        raise ValueError(f"Invalid n_examples: {n_examples!r}; use a positive integer.")
    if preset in GPT2_PRESETS and max_length > GPT2_PRESETS[preset].n_positions:
        raise ValueError(
            f"max_length={max_length} exceeds the {preset!r} preset's "
            f"{GPT2_PRESETS[preset].n_positions} positions; lower --max-length"
        )
    # Candidates beyond n_examples stand in for records whose prompt leaves no room for a
    # response at max_length, so that the batch has exactly n_examples rows.
    pool = n_examples + max(16, n_examples // 2)
    if data is None or str(data) == "synthetic":
        candidates = synthetic_instructions(pool, seed=seed)
        source = "synthetic_instructions"
    else:
        everything = load_alpaca(data)
        if len(everything) < n_examples:
            raise ValueError(
                f"{data} has {len(everything)} usable records, fewer than n_examples={n_examples}"
            )
        order = np.random.default_rng(seed).permutation(len(everything))[:pool]
        candidates = [everything[i] for i in order]
        source = str(data)
    with warnings.catch_warnings():
        # Dropped candidates are expected here and counted in the provenance below.
        warnings.simplefilter("ignore", UserWarning)
        tokenized = tokenize_instructions(
            candidates, gpt2_tokenizer(), max_length=max_length, padding_side="right"
        )
    if len(tokenized) < n_examples:
        raise ValueError(
            f"only {len(tokenized)} of {len(candidates)} candidate examples fit in "
            f"max_length={max_length} tokens ({tokenized.report}); raise --max-length or lower "
            "--examples"
        )
    model, model_record = build_gpt2(preset, weights=weights, seed=seed)
    real = tokenized.attention_mask[:n_examples].astype(bool)
    length = int(real.sum(axis=1).max())  # drop padding columns no kept row needs
    real = real[:, :length]
    input_ids = tokenized.input_ids[:n_examples, :length].copy()
    labels = tokenized.labels[:n_examples, :length].copy()
    if restrict_vocabulary is None:
        restrict_vocabulary = preset == "tiny"
    vocabulary = int(model.get_input_embeddings().weight.shape[0])
    if restrict_vocabulary:
        kept = np.unique(input_ids[real])
        mapping = np.full(vocabulary, -1, dtype=np.int64)
        mapping[kept] = np.arange(kept.size)
        restrict(model, kept.tolist())
        # Padding sits after the real tokens and is never attended to or scored: any id works.
        input_ids = np.where(real, mapping[input_ids], 0)
        labels = np.where(labels == IGNORE_INDEX, IGNORE_INDEX, mapping[np.maximum(labels, 0)])
        vocabulary = int(kept.size)
    model.to(device)
    batch = {
        "input_ids": torch.from_numpy(input_ids).to(device),
        "labels": torch.from_numpy(labels).to(device),
    }
    provenance = {
        "model": model_record,
        "data": source,
        "n_examples": n_examples,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "candidates_dropped": int(tokenized.report.n_dropped),
        "max_length": max_length,
        "sequence_length": int(input_ids.shape[1]),
        "response_tokens": int((labels[:, 1:] != IGNORE_INDEX).sum()),
        "responses_truncated": len(
            set(tokenized.report.truncated_indices)
            & set(tokenized.source_indices[:n_examples].tolist())
        ),
        "vocabulary": vocabulary,
        "restricted_vocabulary": bool(restrict_vocabulary),
        "seed": seed,
        "sample": "one example; loss = mean cross-entropy over its response tokens",
    }
    return LanguageModelProblem(model, batch, provenance)
