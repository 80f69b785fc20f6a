"""The unused-token part of a full-vocabulary LM loss, against a brute-force decomposition."""

from __future__ import annotations

import numpy as np
import torch

from anisoada.data import TokenizedExamples
from anisoada.experiments.tasks import LanguageModelTask
from anisoada.models import GPT2Preset, build_gpt2
from anisoada.problems import IGNORE_INDEX

VOCAB = 40
USED = 17  # the data uses tokens 0 … 16 only; 17 … 39 never occur
SMALL = GPT2Preset(n_layer=1, n_head=2, n_embd=16, n_positions=32, vocab_size=VOCAB)


def _examples(n: int, seed: int) -> TokenizedExamples:
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        length = int(rng.integers(5, 15))
        prompt = int(rng.integers(2, length - 1))
        row = rng.integers(0, USED, length)
        label = row.copy()
        label[:prompt] = IGNORE_INDEX
        ids.append(row)
        labels.append(label)
    return TokenizedExamples(tuple(ids), tuple(labels))


def _task(**kwargs) -> LanguageModelTask:
    model, _ = build_gpt2(SMALL, seed=5)
    model.double()
    return LanguageModelTask(model, _examples(12, 0), _examples(6, 1), **kwargs)


def _brute_force(task: LanguageModelTask) -> tuple[float, float, float]:
    """Full loss, unused part and restricted-softmax loss over the task's training subset."""
    full, unused, restricted, count = 0.0, 0.0, 0.0, 0
    task.model.eval()
    with torch.no_grad():
        for row in task._train_subset:
            ids = torch.as_tensor(task.train_split.input_ids[row]).reshape(1, -1)
            labels = torch.as_tensor(task.train_split.labels[row])
            logits = task.model(input_ids=ids).logits[0, :-1]
            targets = labels[1:]
            keep = targets != IGNORE_INDEX
            z, y = logits[keep], targets[keep]
            log_all = torch.log_softmax(z, dim=-1)
            log_used = torch.log_softmax(z[:, :USED], dim=-1)
            full -= float(log_all.gather(1, y[:, None]).sum())
            restricted -= float(log_used.gather(1, y[:, None]).sum())
            unused += float(
                (torch.logsumexp(z, dim=-1) - torch.logsumexp(z[:, :USED], dim=-1)).sum()
            )
            count += int(keep.sum())
    return full / count, unused / count, restricted / count


def test_unused_part_is_the_mass_on_tokens_the_data_never_uses():
    plain = _task().evaluate()
    split = _task(used_tokens=np.arange(USED)).evaluate()
    # The loss itself is unchanged, to the last bit; only the new metric is added.
    assert split["train_loss"] == plain["train_loss"]
    assert split["eval_loss"] == plain["eval_loss"]
    assert "train_loss_unused" not in plain
    full, unused, restricted = _brute_force(_task(used_tokens=np.arange(USED)))
    np.testing.assert_allclose(split["train_loss"], full, rtol=1e-12)
    np.testing.assert_allclose(split["train_loss_unused"], unused, rtol=1e-12)
    # What is left is the loss of the softmax over the used tokens (the compact objective).
    np.testing.assert_allclose(split["train_loss"] - split["train_loss_unused"], restricted,
                               rtol=1e-12)  # fmt: skip
    # 23 of 40 tokens unused at a random init: their share of the mass is far from negligible.
    assert split["train_loss_unused"] > 0.1


def test_suppressing_unused_tokens_lowers_only_the_unused_part():
    """Pushing the unused rows' logits down (as per-coordinate steps do) leaves the restricted
    loss unchanged and drives the unused part towards 0."""
    task = _task(used_tokens=np.arange(USED))
    before = task.evaluate()
    with torch.no_grad():
        # Lower the unused tokens' logits by 50 through an output bias (GPT-2 has none).
        head = task.model.lm_head
        head.bias = torch.nn.Parameter(torch.zeros(VOCAB, dtype=torch.float64))
        head.bias[USED:] = -50.0
    after = task.evaluate()
    np.testing.assert_allclose(
        after["train_loss"] - after["train_loss_unused"],
        before["train_loss"] - before["train_loss_unused"],
        rtol=1e-12,
    )
    assert after["train_loss_unused"] < 1e-15 < before["train_loss_unused"]
