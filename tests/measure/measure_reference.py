"""Slow, obviously-correct twins of the measurement estimators, and small test problems.

Everything here uses plain ``loss.backward()`` / ``torch.autograd.grad`` on the model itself —
no ``torch.func`` — so agreement with the fast estimators is a real check.
"""

from __future__ import annotations

import numpy as np
import torch


def flat_grad(model: torch.nn.Module) -> torch.Tensor:
    """Concatenated ``.grad`` of the trainable parameters, float64 (zeros where ``None``)."""
    return torch.cat(
        [
            (torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1).double()
            for p in model.parameters()
            if p.requires_grad
        ]
    )


def per_sample_gradients_loop(model, loss_fn, batch_slices) -> torch.Tensor:
    """``(n, d)`` per-sample gradients, one ordinary backward pass per sample."""
    rows = []
    for sample in batch_slices:
        model.zero_grad(set_to_none=True)
        loss_fn(model, sample).backward()
        rows.append(flat_grad(model))
    model.zero_grad(set_to_none=True)
    return torch.stack(rows)


def exact_hessian(model, loss_fn, batch) -> torch.Tensor:
    """Dense ``(d, d)`` Hessian by differentiating each gradient coordinate (double backward)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model, batch), params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    rows = []
    for j in range(flat.numel()):
        row = torch.autograd.grad(flat[j], params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [(torch.zeros_like(p) if r is None else r).reshape(-1) for r, p in zip(row, params)]
            )
        )
    return torch.stack(rows).double()


class Mlp(torch.nn.Module):
    """A small tanh network: curvature with off-diagonal structure, float64."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.hidden = torch.nn.Linear(3, 4).double()
        self.out = torch.nn.Linear(4, 1).double()
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x))).squeeze(-1)


def mse_loss(model, batch):
    x, target = batch
    return 0.5 * (model(x) - target).square().mean()


def mlp_problem(n: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    target = torch.randn(n, generator=g, dtype=torch.float64)
    return Mlp(seed), (x, target)


class QuadraticWithNoise(torch.nn.Module):
    """``ℓ_i(w) = ½ Σ_j L_j (w_j − w*_j)² + Σ_j σ_j ζ_ij w_j``: ``∇²f = diag(L)`` and the
    per-sample gradients ``L ⊙ (w − w*) + σ ⊙ ζ_i``; with each column of ``ζ`` an exactly
    balanced ±1 pattern their population standard deviation is exactly ``σ``."""

    def __init__(self, L: np.ndarray, sigma: np.ndarray, minimiser: np.ndarray, w0: np.ndarray):
        super().__init__()
        self.register_buffer("L", torch.tensor(L))
        self.register_buffer("sigma", torch.tensor(sigma))
        self.register_buffer("minimiser", torch.tensor(minimiser))
        self.w = torch.nn.Parameter(torch.tensor(w0))

    def forward(self, zeta: torch.Tensor) -> torch.Tensor:
        quadratic = 0.5 * (self.L * (self.w - self.minimiser).square()).sum()
        return quadratic + zeta @ (self.sigma * self.w)


def mean_loss(model, zeta):
    return model(zeta).mean()


def balanced_signs(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """``(n, d)`` ±1 with exactly n/2 of each sign per column (n even), rows shuffled."""
    rng = np.random.default_rng(seed)
    column = np.repeat([1.0, -1.0], n // 2)
    return torch.tensor(np.stack([rng.permutation(column) for _ in range(d)], axis=1))


def logistic_model(X: np.ndarray, w: np.ndarray):
    """Logistic regression as a module: ``ℓ_i = softplus(−y_i ⟨x_i, w⟩)``."""
    model = torch.nn.Linear(X.shape[1], 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w).reshape(1, -1))
    return model


def logistic_loss_fn(model, batch):
    x, y = batch
    return torch.nn.functional.softplus(-y * model(x).squeeze(-1)).mean()


def tiny_gpt2(seed: int = 0, vocab: int = 40, dtype=torch.float64):
    """A GPT2LMHeadModel small enough for exact checks: LayerNorm, tied embeddings."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=8,
        n_positions=16,
        vocab_size=vocab,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).to(dtype).eval()


def gpt2_batch(n: int = 6, length: int = 10, vocab: int = 40, seed: int = 0):
    """Right-padded token batch with prompt tokens masked (-100) and ragged lengths, with the
    ``token_scale`` (1 / mean response tokens per example) of the response-token-mean loss."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, length), generator=g)
    labels = ids.clone()
    for i in range(n):
        prompt = 2 + i % 3
        real = length - i % 4
        labels[i, :prompt] = -100
        labels[i, real:] = -100
        ids[i, real:] = 0
    tokens = (labels[:, 1:] != -100).sum(dim=1).double()
    return {
        "input_ids": ids,
        "labels": labels,
        "token_scale": torch.full((n,), 1.0 / float(tokens.mean()), dtype=torch.float64),
    }
