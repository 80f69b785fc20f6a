"""The model-agnostic estimators on transformers' GPT2LMHeadModel (LayerNorm, tied embeddings)."""

import numpy as np
import pytest
import torch
from measure_reference import flat_grad, gpt2_batch, per_sample_gradients_loop, tiny_gpt2

from anisoada.measure import (
    gradient_noise,
    hessian_vector_product,
    secant_smoothness,
    top_hessian_eigenvalue,
)
from anisoada.measure.smoothness_check import SmoothnessCheckConfig, run_smoothness_check
from anisoada.measure.summarize import summarize_model
from anisoada.problems import response_token_loss as causal_lm_loss

pytest.importorskip("transformers", reason="the GPT-2 checks need the transformers package")


@pytest.fixture(scope="module")
def gpt2():
    return tiny_gpt2(), gpt2_batch()


def _one(batch, i):
    return {k: v[i : i + 1] for k, v in batch.items()}


def test_measured_loss_is_the_trained_response_token_mean(gpt2):
    from anisoada.problems import pad_examples, summed_response_loss

    model, batch = gpt2
    logits = model(input_ids=batch["input_ids"]).logits
    summed, tokens = [], []
    for i in range(batch["input_ids"].shape[0]):
        scored = torch.nonzero(batch["labels"][i, 1:] != -100).reshape(-1)
        logp = torch.log_softmax(logits[i, :-1], -1)
        summed.append(-logp[scored, batch["labels"][i, 1:][scored]].sum())
        tokens.append(scored.numel())
    token_mean = torch.stack(summed).sum() / sum(tokens)
    loss = causal_lm_loss(model, batch).detach()
    # The token mean over every response token of the set (long answers weigh more) ...
    assert float(loss) == pytest.approx(float(token_mean.detach()), rel=1e-12)
    # ... which is transformers' own loss over the padded batch (float32 inside, hence 1e-6) ...
    hf = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss.detach()
    assert float(loss) == pytest.approx(float(hf), rel=1e-6)
    # ... and the training task's objective: its summed response loss over the step's tokens.
    ids = [row.numpy() for row in batch["input_ids"]]
    labels = [row.numpy() for row in batch["labels"]]
    padded, scored, targets = pad_examples(ids, labels, np.arange(len(ids)))
    trained = summed_response_loss(model, padded, scored, targets) / targets.numel()
    assert float(trained.detach()) == pytest.approx(float(loss), rel=1e-12)
    # One sample is one example: its loss is its summed loss over the set's mean token count,
    # so that the mean over the samples is the token mean — not its own per-token mean.
    one = causal_lm_loss(model, _one(batch, 0)).detach()
    mean_tokens = sum(tokens) / len(tokens)
    assert float(one) == pytest.approx(float(summed[0].detach()) / mean_tokens, rel=1e-12)
    assert float(one) != pytest.approx(float(summed[0].detach()) / tokens[0], rel=1e-3)
    with pytest.raises(ValueError, match="token_scale"):
        causal_lm_loss(model, {k: v for k, v in batch.items() if k != "token_scale"})


def test_per_sample_noise_on_gpt2_matches_a_backward_loop(gpt2):
    model, batch = gpt2
    n = batch["input_ids"].shape[0]
    loop = per_sample_gradients_loop(model, causal_lm_loss, [_one(batch, i) for i in range(n)])
    estimate = gradient_noise(model, causal_lm_loss, batch, chunk_size=4)
    names = estimate.layout.names
    # Tied output layer: one tensor (the input embedding) whose gradient includes both uses.
    assert "transformer.wte.weight" in names and "lm_head.weight" not in names
    assert estimate.layout.d == sum(p.numel() for p in model.parameters())
    np.testing.assert_allclose(estimate.mean_gradient.numpy(), loop.mean(0), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(
        estimate.sigma.numpy(), loop.std(0, unbiased=False), rtol=1e-8, atol=1e-12
    )


def test_hessian_vector_products_on_gpt2_agree_with_finite_differences(gpt2):
    model, batch = gpt2
    d = sum(p.numel() for p in model.parameters())
    v = torch.randn(d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    forward = hessian_vector_product(model, causal_lm_loss, batch, v, method="forward")
    reverse = hessian_vector_product(model, causal_lm_loss, batch, v, method="reverse")
    np.testing.assert_allclose(forward.numpy(), reverse.numpy(), rtol=1e-9, atol=1e-11)

    def gradient_at(shift):
        with torch.no_grad():
            for p, piece in zip(
                model.parameters(), torch.split(shift, [p.numel() for p in model.parameters()])
            ):
                p.add_(piece.reshape(p.shape))
        model.zero_grad()
        causal_lm_loss(model, batch).backward()
        grad = flat_grad(model)
        with torch.no_grad():
            for p, piece in zip(
                model.parameters(), torch.split(shift, [p.numel() for p in model.parameters()])
            ):
                p.sub_(piece.reshape(p.shape))
        return grad

    h = 1e-6
    central = (gradient_at(h * v) - gradient_at(-h * v)) / (2 * h)
    model.zero_grad(set_to_none=True)
    # Central differences: truncation O(h²‖v‖³‖∇⁴f‖) plus rounding O(ε‖∇f‖/h) ≈ 1e-10, both
    # far below 1e-6 of the product's scale.
    scale = float(forward.abs().max())
    assert float((central - forward).abs().max()) < 1e-6 * scale


def test_curvature_and_secants_run_on_gpt2(gpt2):
    model, batch = gpt2
    eigen = top_hessian_eigenvalue(model, causal_lm_loss, batch, max_iterations=15, tol=1e-3)
    v = eigen.vector
    hv = hessian_vector_product(model, causal_lm_loss, batch, v)
    # Rayleigh quotient of the returned vector reproduces the value.
    assert float(v @ hv) == pytest.approx(eigen.value, rel=1e-6)
    secants = secant_smoothness(model, causal_lm_loss, batch, radius=1e-4, n_perturbations=2)
    assert secants.n_skipped == 0 and torch.isfinite(secants.L).all()


def test_summary_and_smoothness_check_on_gpt2(gpt2):
    model, batch = gpt2
    summary = summarize_model(
        model, causal_lm_loss, batch, n_probes=2, power_iterations=3, chunk_size=3
    )
    noise = gradient_noise(model, causal_lm_loss, batch)
    np.testing.assert_allclose(summary.sigma, noise.sigma.numpy(), rtol=1e-12)
    assert summary.d == noise.layout.d and summary.block_names == noise.layout.names
    np.testing.assert_array_equal(summary.L, np.abs(summary.hessian_diagonal))

    trained = tiny_gpt2()
    config = SmoothnessCheckConfig(
        steps=3, lr=1e-2, coordinates_per_tensor=4, perturbation_radius=1e-3, coverage=0.9
    )
    result = run_smoothness_check(trained, causal_lm_loss, batch, config)
    n_coordinates = sum(min(4, p.numel()) for p in trained.parameters())
    total_pairs = n_coordinates * (3 + 4)
    assert result.x.size + result.n_skipped == total_pairs
    assert result.losses[-1] < result.losses[0]
    assert result.fits["pooled"].covered_fraction >= 0.9
    assert set(result.fits) >= {"pooled", "transformer.wte.weight"}
