"""Per-sample and micro-batch noise estimators against brute force and known σ (float64)."""

import os
import socket

import numpy as np
import pytest
import torch
from measure_reference import (
    QuadraticWithNoise,
    balanced_signs,
    flat_grad,
    logistic_loss_fn,
    logistic_model,
    mean_loss,
    mlp_problem,
    mse_loss,
    per_sample_gradients_loop,
)

from anisoada.data import StochasticQuadratic
from anisoada.measure import (
    MicrobatchNoise,
    ParameterLayout,
    gradient_noise,
    logistic_noise,
    per_sample_gradients,
)


@pytest.fixture
def logistic():
    rng = np.random.default_rng(3)
    n, d = 40, 6
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.6)
    y = np.where(rng.random(n) < 0.4, -1.0, 1.0)
    w = rng.normal(size=d)
    batch = (torch.tensor(X), torch.tensor(y))
    return X, y, w, logistic_model(X, w), batch


def test_loop_equals_vmap_equals_closed_form_on_logistic_regression(logistic):
    X, y, w, model, batch = logistic
    loop = per_sample_gradients_loop(
        model, logistic_loss_fn, [(batch[0][i : i + 1], batch[1][i : i + 1]) for i in range(40)]
    )
    vmapped = torch.cat(
        [
            g["weight"].reshape(stop - start, -1)
            for start, stop, g in per_sample_gradients(model, logistic_loss_fn, batch, chunk_size=7)
        ]
    )
    np.testing.assert_allclose(vmapped.numpy(), loop.numpy(), rtol=1e-12, atol=1e-15)
    estimate = gradient_noise(model, logistic_loss_fn, batch, chunk_size=7)
    # Three independent routes to σ: closed form (sparse products), loop, chunked vmap + Chan.
    np.testing.assert_allclose(estimate.sigma.numpy(), logistic_noise(X, y, w), rtol=1e-10)
    np.testing.assert_allclose(estimate.sigma.numpy(), loop.std(0, unbiased=False), rtol=1e-10)
    np.testing.assert_allclose(estimate.mean_gradient.numpy(), loop.mean(0), rtol=1e-12)
    assert estimate.n_observations == 40 and estimate.ddof == 0
    assert "n=40" in estimate.convention and "variance / n" in estimate.convention


def test_chunk_size_and_unbiased_convention():
    model, batch = mlp_problem(n=13)
    loop = per_sample_gradients_loop(
        model, mse_loss, [(batch[0][i : i + 1], batch[1][i : i + 1]) for i in range(13)]
    )
    results = [gradient_noise(model, mse_loss, batch, chunk_size=c).sigma for c in (1, 4, None)]
    for sigma in results:
        np.testing.assert_allclose(sigma.numpy(), loop.std(0, unbiased=False).numpy(), rtol=1e-11)
    unbiased = gradient_noise(model, mse_loss, batch, chunk_size=5, unbiased=True)
    np.testing.assert_allclose(
        unbiased.sigma.numpy(), loop.std(0, unbiased=True).numpy(), rtol=1e-11
    )
    blocks = unbiased.per_block()
    assert list(blocks) == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert blocks["hidden.weight"].shape == (4, 3)


def test_known_sigma_is_recovered_exactly_on_a_noisy_quadratic():
    d, n = 5, 64
    L = np.array([4.0, 1.0, 0.25, 9.0, 0.5])
    sigma = np.array([1.0, 0.1, 3.0, 0.0, 2.0])
    model = QuadraticWithNoise(L, sigma, np.ones(d), np.arange(d, dtype=float))
    estimate = gradient_noise(model, mean_loss, balanced_signs(n, d), chunk_size=10)
    np.testing.assert_allclose(estimate.sigma.numpy(), sigma, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        estimate.mean_gradient.numpy(), L * (np.arange(d) - 1.0), rtol=1e-12, atol=1e-15
    )


def test_parameter_names_restrict_the_measurement():
    model, batch = mlp_problem()
    full = gradient_noise(model, mse_loss, batch)
    part = gradient_noise(model, mse_loss, batch, parameter_names=["out.weight"])
    assert part.layout.names == ("out.weight",)
    np.testing.assert_allclose(part.sigma.numpy(), full.per_block()["out.weight"].reshape(-1))
    with pytest.raises(ValueError, match="not trainable parameters"):
        gradient_noise(model, mse_loss, batch, parameter_names=["nope"])


def test_bad_batches_are_rejected():
    model, (x, target) = mlp_problem()
    with pytest.raises(ValueError, match="leading"):
        gradient_noise(model, mse_loss, (x, target[:-1]))
    with pytest.raises(ValueError, match="at least 2"):
        gradient_noise(model, mse_loss, (x[:1], target[:1]), unbiased=True)
    with pytest.raises(ValueError, match="chunk size"):
        gradient_noise(model, mse_loss, (x, target), chunk_size=0)


def _random_microbatches(k=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "a": torch.randn(2, 3, generator=g, dtype=torch.float64) + 5.0,
            "b": torch.randn(4, generator=g, dtype=torch.float64),
        }
        for _ in range(k)
    ]


def test_microbatch_estimate_is_b_times_unbiased_variance_and_merges_exactly():
    grads = _random_microbatches()
    layout = ParameterLayout.from_tensors(grads[0])
    stacked = torch.stack([layout.flatten(g) for g in grads])
    expected = (6 * stacked.var(0, unbiased=True)).sqrt()

    whole = MicrobatchNoise(micro_batch_size=6)
    for g in grads:
        whole.update(g)
    result = whole.result()
    np.testing.assert_allclose(result.sigma.numpy(), expected.numpy(), rtol=1e-12)
    np.testing.assert_allclose(result.mean_gradient.numpy(), stacked.mean(0).numpy(), rtol=1e-13)
    assert (result.n_observations, result.samples_per_observation, result.ddof) == (9, 6, 1)

    first, second = MicrobatchNoise(6), MicrobatchNoise(6)
    for g in grads[:4]:
        first.update(g)
    for g in grads[4:]:
        second.update(g)
    first.merge(second)
    np.testing.assert_allclose(first.result().sigma.numpy(), expected.numpy(), rtol=1e-12)

    restored = MicrobatchNoise(6)
    restored.load_state_dict(whole.state_dict())
    restored.update(grads[0])
    whole.update(grads[0])
    np.testing.assert_allclose(restored.result().sigma.numpy(), whole.result().sigma.numpy())

    with pytest.raises(ValueError, match="micro_batch_size"):
        first.merge(MicrobatchNoise(5))
    with pytest.raises(ValueError, match="at least 2"):
        MicrobatchNoise(3).result()
    with pytest.raises(ValueError, match="Invalid micro_batch_size"):
        MicrobatchNoise(0)


@pytest.mark.parametrize("noise_kind", ["gaussian", "rademacher"])
def test_microbatch_estimator_recovers_sigma_of_stochastic_quadratic(noise_kind):
    problem = StochasticQuadratic.power_law(
        20, smoothness_exponent=1.0, noise_exponent=0.7, sigma_max=2.0, noise_kind=noise_kind
    )
    w = torch.linspace(-1, 1, 20, dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    b, k = 8, 4000
    noise = MicrobatchNoise(b)
    for _ in range(k):
        noise.update([problem.stochastic_grad(w, b, generator)])
    estimate = noise.result().sigma.numpy()
    # σ̂²/σ² has relative standard deviation ≈ √(2/(k−1)) ≈ 0.022 (Gaussian), so σ̂/σ ≈ 0.011;
    # 0.06 is five standard deviations for every one of the 20 coordinates.
    np.testing.assert_allclose(estimate, problem.sigma, rtol=0.06)


def test_update_from_accumulated_recovers_each_microbatch_gradient():
    model, (x, target) = mlp_problem(n=12)
    pieces = [(x[i : i + 4], target[i : i + 4]) for i in (0, 4, 8)]
    direct = MicrobatchNoise(4)
    for piece in pieces:
        model.zero_grad()
        mse_loss(model, piece).backward()
        direct.update({name: p.grad.clone() for name, p in model.named_parameters()})

    tapped = MicrobatchNoise(4)
    for _step in range(2):  # two optimizer steps: begin_accumulation resets the tap
        model.zero_grad(set_to_none=True)
        tapped.begin_accumulation()
        for piece in pieces:
            (mse_loss(model, piece) / 3).backward()
            tapped.update_from_accumulated(dict(model.named_parameters()), loss_scale=1 / 3)
    assert tapped.count == 6
    np.testing.assert_allclose(
        tapped.result().mean_gradient.numpy(), direct.result().mean_gradient.numpy(), rtol=1e-12
    )
    # Each micro-batch seen twice: Σ(g − ḡ)² doubles, k − 1 goes from 2 to 5, so σ̂² × 4/5.
    np.testing.assert_allclose(
        tapped.result().sigma.numpy(), direct.result().sigma.numpy() * np.sqrt(0.8), rtol=1e-10
    )
    # The accumulated gradient itself is untouched.
    model.zero_grad()
    for piece in pieces:
        (mse_loss(model, piece) / 3).backward()
    full = flat_grad(model)
    np.testing.assert_allclose(full.numpy(), direct.result().mean_gradient.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="loss_scale"):
        tapped.update_from_accumulated(model.parameters(), loss_scale=0.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank: int, world: int, port: int, queue) -> None:
    import torch.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        grads = _random_microbatches(k=9, seed=0)
        mine = grads[:4] if rank == 0 else grads[4:]
        noise = MicrobatchNoise(6)
        for g in mine:
            noise.update(g)
        reduced = noise.reduce_across_ranks()
        queue.put((rank, reduced.count, reduced.result().sigma.numpy(), noise.count))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch was built without the gloo distributed backend",
)
def test_reduce_across_two_gloo_ranks_equals_single_process():
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    processes = [ctx.Process(target=_rank_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in processes:
        p.start()
    results = [queue.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    whole = MicrobatchNoise(6)
    for g in _random_microbatches(k=9, seed=0):
        whole.update(g)
    for _rank, count, sigma, local_count in results:
        assert count == 9 and local_count in (4, 5)
        np.testing.assert_allclose(sigma, whole.result().sigma.numpy(), rtol=1e-12)


def test_reduce_without_process_group_explains():
    noise = MicrobatchNoise(2)
    noise.update([torch.ones(2)])
    with pytest.raises(ValueError, match="init_process_group"):
        noise.reduce_across_ranks()
