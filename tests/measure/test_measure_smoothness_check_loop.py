"""The smoothness check runs Adam through the one training loop and records the same points as
a plain full-batch Adam loop written out here (the implementation it replaced, verbatim in
substance: gradient by weighted chunks into ``.grad``, perturbation before the base gradient)."""

import numpy as np
import pytest
import torch
from measure_reference import QuadraticWithNoise, balanced_signs, gpt2_batch, mean_loss, tiny_gpt2

import anisoada.measure.smoothness_check as smoothness_check
from anisoada.measure.layout import ParameterLayout, trainable_parameters
from anisoada.measure.secant import coordinate_secants, sample_coordinates
from anisoada.measure.smoothness_check import SmoothnessCheckConfig, run_smoothness_check
from anisoada.problems import response_token_loss as causal_lm_loss

pytest.importorskip("transformers", reason="the GPT-2 checks need the transformers package")

FIELDS = ("x", "y", "iteration", "coordinate", "block", "kind", "losses", "skipped")


def _reference_points(model, loss_fn, batch, config):
    """Full-batch Adam with its own forward/backward loop; the secant points as arrays."""
    params = list(trainable_parameters(model).values())
    layout = ParameterLayout.from_tensors(dict(trainable_parameters(model)))
    sample = sample_coordinates(layout, per_block=config.coordinates_per_tensor, seed=config.seed)
    n = batch["input_ids"].shape[0]
    size = config.data_chunk_size or n
    pieces = [
        (min(n, s + size) - s, {k: v[s : s + size] for k, v in batch.items()})
        for s in range(0, n, size)
    ]
    optimizer = torch.optim.Adam(params, lr=config.lr, betas=config.betas, eps=config.eps)
    generator = torch.Generator().manual_seed(config.seed + 1)
    model.eval()

    def gradient():
        optimizer.zero_grad(set_to_none=False)
        total = 0.0
        for count, piece in pieces:
            loss = loss_fn(model, piece) * (count / n)
            loss.backward()
            total += float(loss.detach())
        return total

    def flat(tensors):
        return torch.cat(
            [
                torch.zeros(p.numel(), dtype=torch.float64)
                if t is None
                else t.detach().reshape(-1).double()
                for t, p in zip(tensors, params)
            ]
        )[sample.index]

    rows, losses = [], np.zeros(config.steps + 1)
    skipped = np.zeros((config.steps + 1, 2), dtype=np.int64)

    def record(t, kind, w0, g0, w1, g1):
        s = coordinate_secants(
            w0, g0, w1, g1, min_move=config.min_move, min_relative_move=config.min_relative_move
        )
        moved = s.moved.numpy()
        skipped[t, kind] = s.n_skipped
        for j in np.flatnonzero(moved):
            rows.append(
                (
                    float(s.gradient_magnitude[j]),
                    float(s.ratio[j]),
                    t,
                    int(sample.index[j]),
                    int(sample.block[j]),
                    kind,
                )
            )

    previous = None
    for t in range(config.steps + 1):
        w_t = flat(params)
        if config.perturbation_radius is not None:
            saved = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p in params:
                    signs = torch.randint(0, 2, p.shape, generator=generator) * 2 - 1
                    p.add_(signs.to(p.dtype), alpha=config.perturbation_radius)
            gradient()
            perturbed = (flat(params), flat([p.grad for p in params]))
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
        losses[t] = gradient()
        g_t = flat([p.grad for p in params])
        if previous is not None:
            record(t - 1, 0, *previous, w_t, g_t)
        if config.perturbation_radius is not None:
            record(t, 1, w_t, g_t, *perturbed)
        previous = (w_t, g_t)
        if t < config.steps:
            optimizer.step()
    columns = [np.array(c) for c in zip(*rows)]
    return dict(zip(FIELDS, [*columns, losses, skipped]))


@pytest.mark.parametrize("chunk", [None, 4])
def test_points_equal_a_plain_full_batch_adam_loop_on_float32_gpt2(chunk):
    config = SmoothnessCheckConfig(
        steps=3,
        lr=1e-2,
        coordinates_per_tensor=4,
        perturbation_radius=1e-3,
        data_chunk_size=chunk,  # 6 samples as micro-batches of 4 and 2: unequal weights
        seed=5,
    )
    batch = gpt2_batch()
    expected_model = tiny_gpt2(dtype=torch.float32)
    expected = _reference_points(expected_model, causal_lm_loss, batch, config)
    model = tiny_gpt2(dtype=torch.float32)
    result = run_smoothness_check(model, causal_lm_loss, batch, config)

    assert result.x.size > 100 and set(result.kind.tolist()) == {0, 1}
    for name in FIELDS:
        # Same operations in the same order: equal to the last bit, not merely close.
        np.testing.assert_array_equal(getattr(result, name), expected[name], err_msg=name)
    for ours, theirs in zip(model.parameters(), expected_model.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)  # both end at w_T
    assert all(p.grad is None for p in model.parameters())


def test_micro_batches_accumulate_the_full_batch_gradient_on_gpt2():
    # float64 makes the chunked sum equal the one-piece mean up to ~1e-15 relative rounding.
    batch = gpt2_batch()
    runs = [
        run_smoothness_check(
            tiny_gpt2(),
            causal_lm_loss,
            batch,
            SmoothnessCheckConfig(steps=3, lr=1e-2, coordinates_per_tensor=4, data_chunk_size=c),
        )
        for c in (None, 1, 4)
    ]
    for chunked in runs[1:]:
        np.testing.assert_allclose(chunked.losses, runs[0].losses, rtol=1e-12)
        np.testing.assert_array_equal(chunked.coordinate, runs[0].coordinate)
        np.testing.assert_allclose(chunked.x, runs[0].x, rtol=1e-9, atol=1e-14)
        # A ratio of two tiny differences carries their rounding: absolute agreement at the
        # scale of the largest ratio (Adam's steps amplify 1e-16 gradient differences a bit).
        scale = np.abs(runs[0].y).max()
        np.testing.assert_allclose(chunked.y, runs[0].y, rtol=1e-6, atol=1e-5 * scale)


def test_adam_steps_go_through_the_training_loop(monkeypatch):
    calls = []

    def spy(task, optimizer, config, **kwargs):
        calls.append(
            (type(optimizer), config.batch_size, config.micro_batch_size, config.num_steps)
        )
        return real_train(task, optimizer, config, **kwargs)

    real_train = smoothness_check.train
    monkeypatch.setattr(smoothness_check, "train", spy)
    model = QuadraticWithNoise(np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))
    config = SmoothnessCheckConfig(steps=4, lr=0.1, data_chunk_size=3)
    result = run_smoothness_check(model, mean_loss, balanced_signs(8, 2), config)
    assert calls == [(torch.optim.Adam, 8, 3, 4)]
    assert result.losses.shape == (5,) and result.iteration.max() == 3


def test_the_callers_random_state_is_kept():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    model = QuadraticWithNoise(np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))
    run_smoothness_check(
        model, mean_loss, balanced_signs(4, 2), SmoothnessCheckConfig(steps=2, seed=9)
    )
    assert torch.equal(torch.get_rng_state(), before)
