"""GPT-2 presets: offline weight resolution, provenance, seeded init, vocabulary restriction."""

from __future__ import annotations

import dataclasses
import json

import huggingface_hub.constants
import pytest
import torch

from anisoada.models import GPT2_PRESETS, GPT2Preset, build_gpt2, restrict_vocabulary


def _gpt2_parameter_count(spec: GPT2Preset) -> int:
    """Closed form: tied embedding, positions, per block 2 LayerNorms + attention + 4x MLP."""
    e = spec.n_embd
    per_block = 4 * e + (3 * e * e + 3 * e) + (e * e + e) + (4 * e * e + 4 * e) + (4 * e * e + e)
    return spec.vocab_size * e + spec.n_positions * e + spec.n_layer * per_block + 2 * e


def test_gpt2_preset_is_the_124m_model():
    # The published GPT-2 small count is 124,439,808 parameters (tied embeddings).
    assert _gpt2_parameter_count(GPT2_PRESETS["gpt2"]) == 124_439_808
    with torch.device("meta"):
        _model, info = build_gpt2("gpt2")
    assert info["n_parameters"] == 124_439_808
    assert info["n_embedding_parameters"] == 50257 * 768


def test_tiny_preset_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first, info = build_gpt2("tiny", seed=7)
    assert torch.equal(torch.rand(3), expected_next)
    second, _ = build_gpt2("tiny", seed=7)
    other, _ = build_gpt2("tiny", seed=8)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(first.transformer.wte.weight, other.transformer.wte.weight)
    assert info["source"] == "random_init" and info["seed"] == 7 and info["weights"] is None
    assert info["n_parameters"] == _gpt2_parameter_count(GPT2_PRESETS["tiny"])
    json.dumps(info)  # provenance goes into run.json


def test_presets_are_deterministic_in_training_mode():
    # dropout 0 by default: two forwards of the same batch agree exactly, even in train mode.
    model, _ = build_gpt2("tiny")
    ids = torch.randint(0, 50257, (2, 9), generator=torch.Generator().manual_seed(0))
    assert model.training
    assert torch.equal(model(ids).logits, model(ids).logits)
    noisy, info = build_gpt2("tiny", dropout=0.5)
    assert info["config"]["dropout"] == 0.5
    assert not torch.equal(noisy(ids).logits, noisy(ids).logits)


def test_local_directory_round_trip(tmp_path):
    saved, _ = build_gpt2("tiny", seed=3)
    saved.save_pretrained(tmp_path)
    loaded, info = build_gpt2("tiny", weights=tmp_path)
    for (name, a), b in zip(saved.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert info["source"] == "local_directory"
    assert info["resolved_path"] == str(tmp_path)
    assert info["seed"] is None
    assert [f["name"] for f in info["weight_files"]] == ["model.safetensors"]
    assert info["weight_files"][0]["bytes"] == (tmp_path / "model.safetensors").stat().st_size


def test_hf_cache_is_searched_offline(tmp_path, monkeypatch):
    # Lay out a cache entry exactly as huggingface_hub writes one.
    repo_dir = tmp_path / "models--someone--tiny-gpt2"
    snapshot = repo_dir / "snapshots" / ("a" * 40)
    saved, _ = build_gpt2("tiny", seed=5)
    saved.save_pretrained(snapshot)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    loaded, info = build_gpt2("tiny", weights="someone/tiny-gpt2")
    assert info["source"] == "hf_cache"
    assert torch.equal(loaded.transformer.wte.weight, saved.transformer.wte.weight)
    with pytest.raises(FileNotFoundError, match="huggingface-cli download someone/absent"):
        build_gpt2("tiny", weights="someone/absent")


def test_bad_inputs_fail_with_clear_messages(tmp_path):
    with pytest.raises(ValueError, match="Unknown GPT-2 preset 'gpt5'"):
        build_gpt2("gpt5")
    with pytest.raises(FileNotFoundError, match="No saved model directory"):
        build_gpt2("tiny", weights=tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        build_gpt2("tiny", weights=tmp_path)
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_gpt2("tiny", weights="pretrained")
    wide, _ = build_gpt2(GPT2Preset(n_layer=1, n_head=2, n_embd=32, n_positions=16))
    wide.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="architecture"):
        build_gpt2("tiny", weights=tmp_path / "other")
    with pytest.raises(ValueError, match="n_head=3 does not divide n_embd=64"):
        GPT2Preset(n_layer=1, n_head=3, n_embd=64, n_positions=8)


def test_restricted_vocabulary_gives_the_kept_columns_of_the_full_logits():
    model, _ = build_gpt2("tiny", seed=2)
    keep = [50256, 13, 464, 11, 290, 7]
    full_ids = torch.tensor([[464, 13, 50256, 7, 7, 290]])
    with torch.no_grad():
        full_logits = model(full_ids).logits
        restrict_vocabulary(model, keep)
        compact_ids = torch.tensor([[keep.index(t) for t in full_ids[0].tolist()]])
        compact_logits = model(compact_ids).logits
    torch.testing.assert_close(compact_logits, full_logits[..., keep], rtol=0, atol=1e-6)
    assert model.config.vocab_size == len(keep)
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied
    assert model.config.eos_token_id == keep.index(50256)
    with pytest.raises(ValueError, match="distinct"):
        restrict_vocabulary(model, [0, 0])
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        restrict_vocabulary(model, [9])


def test_activation_kernels_agree_to_float_rounding_and_are_recorded():
    # "gelu_new" (GPT-2's seven elementwise ops) and "gelu_pytorch_tanh" (torch's fused kernel)
    # are one formula: float32 values differ by a few ulps at most (measured: 4.8e-7 absolute
    # on [-20, 20]), never more than 1e-6 after two blocks and the output layer here.
    tiny = GPT2_PRESETS["tiny"]
    assert tiny.activation == "gelu_pytorch_tanh" and GPT2_PRESETS["gpt2"].activation == "gelu_new"
    ids = torch.randint(0, 50257, (3, 17), generator=torch.Generator().manual_seed(1))
    fused, info = build_gpt2("tiny", seed=4)
    plain, plain_info = build_gpt2(dataclasses.replace(tiny, activation="gelu_new"), seed=4)
    assert info["config"]["activation"] == "gelu_pytorch_tanh"
    assert plain_info["config"]["activation"] == "gelu_new"
    assert tiny.identity() != dataclasses.replace(tiny, activation="gelu_new").identity()
    x = torch.linspace(-20, 20, 100_001)
    torch.testing.assert_close(
        fused.transformer.h[0].mlp.act(x), plain.transformer.h[0].mlp.act(x), rtol=0, atol=1e-6
    )
    torch.testing.assert_close(fused(ids).logits, plain(ids).logits, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="activation"):
        GPT2Preset(n_layer=1, n_head=1, n_embd=8, n_positions=8, activation="relu")


def test_single_threaded_is_a_flag_of_the_tiny_preset_and_not_of_its_identity():
    tiny = GPT2_PRESETS["tiny"]
    assert tiny.single_threaded and not GPT2_PRESETS["gpt2"].single_threaded
    # A compute setting, not part of the architecture: the run ids of stored runs stay.
    assert tiny.identity() == dataclasses.replace(tiny, single_threaded=False).identity()
    assert (
        tiny.config().to_dict()
        == dataclasses.replace(tiny, single_threaded=False).config().to_dict()
    )
    with pytest.raises(ValueError, match="single_threaded"):
        GPT2Preset(n_layer=1, n_head=1, n_embd=8, n_positions=8, single_threaded=1)


def test_no_key_value_cache_is_built_and_the_loss_is_bit_identical_without_it():
    from anisoada.problems.language_model import summed_response_loss

    ids = torch.randint(0, 50257, (4, 12), generator=torch.Generator().manual_seed(2))
    scored = torch.zeros(4, 12, dtype=torch.bool)
    scored[:, 5:11] = True
    targets = ids[:, 6:12].reshape(-1)
    grads = []
    for use_cache in (True, False):
        model, _ = build_gpt2("tiny", seed=5)
        assert model.config.use_cache is False
        model.config.use_cache = use_cache  # the loss passes use_cache=False itself
        loss = summed_response_loss(model, ids, scored, targets)
        loss.backward()
        grads.append([loss.detach(), *(p.grad for p in model.parameters())])
    for with_cache, without in zip(*grads):
        assert torch.equal(with_cache, without)
