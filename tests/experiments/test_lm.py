"""The LM task against brute-force references: loss, gradient, micro-batching, data order, noise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from anisoada.data import LMData, LMDataSpec, TokenizedExamples, compact_vocabulary
from anisoada.experiments import (
    LMSpec,
    LRGrid,
    OptimizerSpec,
    RunSettings,
    SweepConfig,
    run_sweep,
)
from anisoada.experiments.tasks import LanguageModelTask
from anisoada.models import GPT2Preset, build_gpt2
from anisoada.problems import IGNORE_INDEX
from anisoada.train import (
    Budget,
    Callback,
    DistributedContext,
    TrainConfig,
    init_distributed,
    train,
)

VOCAB = 40
SMALL = GPT2Preset(n_layer=1, n_head=2, n_embd=16, n_positions=32, vocab_size=VOCAB)


def _examples(n: int, seed: int) -> TokenizedExamples:
    """Random token rows of lengths 5..20 with a prompt of 2..length-2 tokens (varied counts)."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        length = int(rng.integers(5, 21))
        prompt = int(rng.integers(2, length - 1))
        row = rng.integers(0, VOCAB, length)
        label = row.copy()
        label[:prompt] = IGNORE_INDEX
        ids.append(row)
        labels.append(label)
    return TokenizedExamples(tuple(ids), tuple(labels))


def _task(train_split=None, **kwargs) -> LanguageModelTask:
    model, _ = build_gpt2(SMALL, seed=3)
    model.double()  # float64: the references below then agree to 1e-12, not float32 rounding
    split = train_split if train_split is not None else _examples(24, seed=0)
    return LanguageModelTask(model, split, _examples(10, seed=1), **kwargs)


def _reference_loss(model, split: TokenizedExamples, rows) -> torch.Tensor:
    """The causal-LM loss the plain way: the full output layer at every position, labels
    shifted by one (transformers' convention), token mean over all non-ignored labels."""
    length = max(split.input_ids[r].size for r in rows)
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE_INDEX)
    for k, r in enumerate(rows):
        ids[k, : split.input_ids[r].size] = torch.from_numpy(split.input_ids[r])
        labels[k, : split.labels[r].size] = torch.from_numpy(split.labels[r])
    logits = model(input_ids=ids).logits  # transformers' own loss would round to float32
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1)
    )


def test_step_loss_and_gradient_equal_transformers_loss_on_the_whole_batch():
    task = _task()
    rows = task._step_indices(seed=5, step=0, batch_size=12)
    micro_batches = next(task.batches(seed=5, batch_size=12, micro_batch_size=5, start_step=0))
    assert [b.n_examples for b in micro_batches] == [5, 5, 2]
    weights = [task.weight(b) for b in micro_batches]
    total = 0.0
    for batch, weight in zip(micro_batches, weights):  # what the loop does
        loss = task.loss(batch) * (weight / sum(weights))
        loss.backward()
        total += float(loss.detach())
    ours = {n: p.grad.clone() for n, p in task.model.named_parameters()}
    task.model.zero_grad()
    reference = _reference_loss(task.model, task.train_split, rows)
    reference.backward()
    assert total == pytest.approx(float(reference.detach()), rel=1e-12)
    for name, param in task.model.named_parameters():
        torch.testing.assert_close(ours[name], param.grad, rtol=1e-10, atol=1e-13, msg=name)


def test_per_micro_batch_normalisation_would_differ():
    # The control for the test above: averaging micro-batch means (the common bug) is a
    # different number here, because the micro-batches hold different numbers of tokens.
    task = _task()
    micro_batches = next(task.batches(seed=5, batch_size=12, micro_batch_size=5, start_step=0))
    counts = [b.n_local for b in micro_batches]
    assert len(set(counts)) > 1
    with torch.no_grad():
        means = [float(task.loss(b)) for b in micro_batches]
    token_mean = sum(m * c for m, c in zip(means, counts)) / sum(counts)
    naive = float(np.mean(means))
    assert abs(naive - token_mean) > 1e-3


@pytest.mark.parametrize(
    ("micro_batch_size", "group_by_length"), [(1, False), (4, True), (7, False)]
)
def test_micro_batch_size_does_not_change_training(micro_batch_size, group_by_length):
    def run(micro, grouped=False):
        task = _task(group_by_length=grouped)
        optimizer = torch.optim.Adagrad(task.parameters(), lr=0.05)
        config = TrainConfig(
            batch_size=8, budget=Budget(steps=5), micro_batch_size=micro, eval_every=1
        )
        result = train(task, optimizer, config)
        return pd.DataFrame(result.rows), task.model.state_dict()

    whole, whole_params = run(None)
    split, split_params = run(micro_batch_size, group_by_length)
    columns = ["batch_loss", "eval_loss", "train_loss"]
    np.testing.assert_allclose(split[columns], whole[columns], rtol=1e-11)
    # Parameters: atol 1e-8, not 1e-12. The attention's key bias has an exactly-zero gradient
    # (softmax ignores a shift shared by all keys), so its computed gradient is pure rounding
    # noise (~1e-18), which AdaGrad divides by (|g| + eps = 1e-10) into steps of ~lr·1e-8.
    for name, value in whole_params.items():
        torch.testing.assert_close(split_params[name], value, rtol=1e-9, atol=1e-8)


def test_group_by_length_sorts_each_steps_examples_into_micro_batches():
    plain, grouped = _task(), _task(group_by_length=True)
    step = [
        next(t.batches(seed=2, batch_size=12, micro_batch_size=4, start_step=0))
        for t in (plain, grouped)
    ]
    widths = [b.input_ids.shape[1] for b in step[1]]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    assert step[0][0].n_step == step[1][0].n_step  # the same examples, split differently


def test_data_stream_is_a_pure_function_of_seed_and_step_and_covers_each_epoch():
    task = _task()
    n = len(task.train_split)
    stream = task.batches(seed=9, batch_size=10, micro_batch_size=4, start_step=0)
    steps = [next(stream) for _ in range(6)]
    resumed = next(task.batches(seed=9, batch_size=10, micro_batch_size=4, start_step=4))
    for a, b in zip(steps[4], resumed):
        assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.targets, b.targets)
    # 60 positions = 2.5 epochs of 24; each full epoch is a permutation of the training set.
    order = np.concatenate([task._step_indices(9, s, 10) for s in range(6)])
    assert sorted(order[:n]) == list(range(n)) and sorted(order[n : 2 * n]) == list(range(n))
    other = np.concatenate([task._step_indices(10, s, 10) for s in range(2)])
    assert not np.array_equal(order[:20], other)


def test_evaluate_is_the_token_mean_over_the_split_and_changes_nothing():
    task = _task(train_eval_examples=6)
    state_before = {k: v.clone() for k, v in task.model.state_dict().items()}
    rng_before = torch.get_rng_state()
    metrics = task.evaluate()
    ids = task.eval_split
    with torch.no_grad():
        expected = _reference_loss(task.model, ids, list(range(len(ids))))
    assert metrics["eval_loss"] == pytest.approx(float(expected), rel=1e-12)
    subset = task._train_subset
    assert subset.size == 6 and subset[0] == 0 and subset[-1] == len(task.train_split) - 1
    with torch.no_grad():
        expected_train = _reference_loss(task.model, task.train_split, subset.tolist())
    assert metrics["train_loss"] == pytest.approx(float(expected_train), rel=1e-12)
    assert torch.equal(torch.get_rng_state(), rng_before)
    for name, value in task.model.state_dict().items():
        assert torch.equal(value, state_before[name])


def test_noise_monitor_matches_per_micro_batch_gradients_computed_one_by_one():
    task = _task(noise_every=2)
    optimizer = torch.optim.SGD(task.parameters(), lr=0.1)
    # 11 examples in micro-batches of 3: three full ones and a partial one (left out of σ̂).
    config = TrainConfig(batch_size=11, budget=Budget(steps=3), micro_batch_size=3)
    snapshot = {}

    class KeepParameters(Callback):
        def on_micro_batch_start(self, state, index, count):
            if state.step == 2 and index == 0:
                snapshot.update({k: v.clone() for k, v in task.model.state_dict().items()})

    train(task, optimizer, config, callbacks=[*task.callbacks(), KeepParameters()])
    rows = pd.DataFrame(task.noise.rows)
    assert sorted(rows["step"].unique()) == [0, 2]
    assert set(rows["microbatches"]) == {3} and set(rows["microbatch_size"]) == {3}

    # Brute force at step 2: each full micro-batch's token-mean gradient by its own backward.
    task.model.load_state_dict(snapshot)
    grads = []
    for batch in next(task.batches(seed=0, batch_size=11, micro_batch_size=3, start_step=2))[:3]:
        task.model.zero_grad()
        summed = task._summed_loss(batch.input_ids, batch.scored, batch.targets)
        (summed / batch.n_local).backward()
        grads.append({n: p.grad.clone() for n, p in task.model.named_parameters()})
    layers = {"wte": [], "wpe": [], "h.0": [], "ln_f": []}
    for name in grads[0]:
        stacked = torch.stack([g[name].reshape(-1) for g in grads])
        sigma = (3 * stacked.var(dim=0, unbiased=True)).sqrt()
        layer = next(key for key in layers if f".{key}." in f".{name}")
        layers[layer].append(sigma)
    measured = rows[rows["step"] == 2].set_index("layer")
    everything = torch.cat([torch.cat(parts) for parts in layers.values()])
    layers["all"] = [everything]
    for layer, parts in layers.items():
        sigma = torch.cat(parts)
        assert measured.loc[layer, "d"] == sigma.numel()
        assert measured.loc[layer, "sigma_l1"] == pytest.approx(float(sigma.sum()), rel=1e-8)
        assert measured.loc[layer, "sigma_l2"] == pytest.approx(float(sigma.norm()), rel=1e-8)


def test_compact_vocabulary_keeps_the_used_tokens_in_order():
    split = TokenizedExamples(
        (np.array([5, 9, 5, 2]), np.array([9, 30])),
        (np.array([-100, 9, 5, 2]), np.array([-100, 30])),
    )
    kept, mapping = compact_vocabulary(split)
    assert kept.tolist() == [2, 5, 9, 30]
    mapped = split.map_tokens(mapping)
    assert mapped.input_ids[0].tolist() == [1, 2, 1, 0]
    assert mapped.labels[0].tolist() == [-100, 2, 1, 0]
    assert mapped.labels[1].tolist() == [-100, 3]


def test_padded_rows_from_the_data_layer_are_trimmed_by_their_attention_mask():
    padded = {
        "input_ids": np.array([[7, 8, 9, 0], [4, 5, 0, 0]]),
        "labels": np.array([[-100, 8, 9, -100], [-100, 5, -100, -100]]),
        "attention_mask": np.array([[1, 1, 1, 0], [1, 1, 0, 0]]),
    }
    split = TokenizedExamples.from_any(padded)
    assert [x.tolist() for x in split.input_ids] == [[7, 8, 9], [4, 5]]
    assert split.response_tokens().tolist() == [2, 1]


def test_bad_inputs_fail_with_clear_messages():
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        task = _task()
        task.context = DistributedContext(rank=0, world_size=3, backend="gloo")
        next(task.batches(seed=0, batch_size=8, micro_batch_size=2, start_step=0))
    unscored = TokenizedExamples((np.array([1, 2, 3]),), (np.array([-100, -100, -100]),))
    with pytest.raises(ValueError, match="no example with a response token"):
        _task(unscored)
    outside = TokenizedExamples((np.array([1, VOCAB + 5]),), (np.array([-100, VOCAB + 5]),))
    with pytest.raises(ValueError, match=f"token id {VOCAB + 5} is outside"):
        _task(outside)
    with pytest.raises(ValueError, match="Invalid precision"):
        _task(precision="fp8")
    with pytest.raises(ValueError, match="exactly one of steps, samples or epochs"):
        Budget(samples=10, epochs=1.0)
    with pytest.raises(ValueError, match="positive and finite"):
        LRGrid.explicit([-1.0])
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        OptimizerSpec("adam")
    # Rows longer than the model's positions are refused when the spec is built, not at the
    # first forward pass after the data were prepared.
    with pytest.raises(ValueError, match="exceeds the 'tiny' model's 256 positions"):
        LMSpec(data=LMDataSpec(max_length=512), model="tiny")
    with pytest.raises(ValueError, match="start the run with `torchrun"):
        init_distributed({"WORLD_SIZE": "2"})


def test_sweep_extends_the_grid_at_an_edge_and_selects_the_best_lr(tmp_path, monkeypatch):
    # The training itself is replaced by a run whose final loss is (log10 lr + 1)²: the best
    # lr is 0.1, beyond the first grid {1, 10}, so one downward extension must find it.
    import anisoada.experiments.runs.language_model as lm_runs
    from anisoada.experiments import ResultsStore

    def fake_execute(run, root, *, context=None, log=None, **_):
        loss = (np.log10(run.lr) + 1) ** 2 + 0.1 * run.batch_size / 8
        rows = pd.DataFrame(
            {
                "dataset": run.problem.name,
                "optimizer": run.optimizer.label,
                "batch_size": run.batch_size,
                "seed": run.seed,
                "lr": run.lr,
                "step": [0, 1],
                "batch_loss": [np.nan, loss],
                "train_loss": [9.0, loss],
                "eval_loss": [9.0, loss + 1],
                "status": "finished",
            }
        )
        ResultsStore(root).write_run(run.run_id, rows, {"status": "finished"})

    monkeypatch.setattr(lm_runs.LMRun, "execute", fake_execute)
    grid = LRGrid.explicit([1.0, 10.0], max_extensions=2)
    sweep = SweepConfig(
        name="lm",
        problems=(LMSpec(data=LMDataSpec(n_train=8), measure_noise=False),),
        optimizers=(OptimizerSpec.create("sgd", lr_grid=grid),),
        batch_sizes=(8, 16),
        budget=Budget(samples=16),
    )
    result = run_sweep(sweep, tmp_path, progress=False)
    selection = result.selection.set_index("batch_size")
    assert selection.loc[8, "best_lr"] == pytest.approx(0.1)
    lrs = sorted(result.rows.loc[result.rows["batch_size"] == 8, "lr"].unique())
    np.testing.assert_allclose(lrs, [0.01, 0.1, 1.0, 10.0])
    assert selection.loc[8, "extensions_down"] == 2 and not selection.loc[8, "at_edge"]
    assert selection.loc[8, "lrs_tried"] == 4
    assert selection.loc[16, "eval_loss"] == pytest.approx(1.2)
    assert (tmp_path / "selection.csv").is_file() and (tmp_path / "results.parquet").is_file()
    csv = pd.read_csv(tmp_path / "selection.csv").set_index("batch_size")
    assert csv.loc[8, "lr_min"] == pytest.approx(0.01) and csv.loc[8, "lr_max"] == 10.0
    assert csv["lr_min"].dtype == np.float64

    # Re-running the fully stored sweep reuses every run and tokenises nothing.
    def no_data(spec):
        raise AssertionError("a fully stored sweep must not prepare its data")

    monkeypatch.setattr(lm_runs, "prepared_lm_data", no_data)
    again = run_sweep(sweep, tmp_path, progress=False)
    pd.testing.assert_frame_equal(again.selection, result.selection)


def test_command_line_builds_the_sweep_and_rejects_bad_options(tmp_path, capsys):
    from anisoada.cli import build_parser, main
    from anisoada.cli.lm import sweep_from_args

    command = (
        "lm --optimizer sgd adagrad --lr 0.1 --lr-grid adagrad=0.01,0.03 "
        "--option adagrad.eps=1e-8 --batch-size 256 512 --epochs 2 "
        "--schedule cosine --warmup-ratio 0.03 --vocabulary compact"
    )
    args = build_parser().parse_args(command.split())
    sweep = sweep_from_args(args)
    grids = {spec.label: spec.lr_grid.values() for spec in sweep.optimizers}
    assert grids == {"sgd": (0.1,), "adagrad": (0.01, 0.03)}
    assert sweep.optimizers[1].options == (("eps", 1e-8),)
    assert sweep.batch_sizes == (256, 512) and sweep.budget == Budget(epochs=2.0)
    spec = sweep.problems[0]
    assert spec.schedule == "cosine" and spec.data.vocabulary == "compact"
    assert main(["lm", "--out", str(tmp_path), "--lr-grid", "sgd=fast"]) == 2
    assert "--lr-grid 'sgd=fast': expected NAME=LR,LR,..." in capsys.readouterr().err
    assert main(["lm", "--out", str(tmp_path), "--optimizer", "sgd"]) == 2
    assert "no learning rate for ['sgd']" in capsys.readouterr().err


def test_a_stored_run_follows_its_schedule_and_records_its_provenance(tmp_path):
    import json
    import math

    data = LMData(
        _examples(32, seed=0),
        _examples(8, seed=1),
        np.arange(VOCAB),  # "compact" vocabulary: the tiny preset's first 40 rows
        {"name": "random-tokens", "n_train": 32},
    )
    spec = LMSpec(
        data=LMDataSpec(n_train=32, n_eval=8),
        schedule="cosine",
        warmup_ratio=0.34,  # 2 warm-up steps
        final_lr_ratio=0.1,
        clip_norm=1.0,
        measure_noise=False,
        stand_in_for="someone/pretrained-tiny",
    )
    settings = RunSettings(budget=Budget(samples=48), evaluations=6)  # 6 steps
    run = spec.make_run(OptimizerSpec("sgd"), 8, [0.2], 0, settings)
    run.execute(tmp_path, data=data)
    run_id = run.run_id
    rows = pd.read_parquet(tmp_path / "runs" / run_id / "rows.parquet")
    info = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())

    def multiplier(t):  # warm-up 2 steps, then cosine from 1 to 0.1 over the 4 remaining
        if t < 2:
            return (t + 1) / 2
        progress = (t - 2) / 4
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    # The row after s updates carries the lr of update s (0-based s − 1; the first row: 0).
    expected = [0.2 * multiplier(max(s - 1, 0)) for s in rows["step"]]
    np.testing.assert_allclose(rows["current_lr"], expected, rtol=1e-12)
    assert list(rows["step"]) == list(range(7)) and set(rows["lr"]) == {0.2}
    assert info["model"]["source"] == "random_init" and info["model"]["vocabulary"] == "compact"
    assert info["model"]["vocabulary_size"] == VOCAB
    assert info["model"]["pretrained"] is False
    assert info["model"]["stand_in_for"] == "someone/pretrained-tiny"
    assert "not available locally" in info["model"]["note"]
    assert info["spec"]["clip_norm"] == 1.0 and info["steps"] == {"0.2": 6}
    assert info["distributed"] == {"world_size": 1, "backend": None}
    assert not (tmp_path / "runs" / run_id / "checkpoint.pt").exists()


def test_noise_measurement_needs_two_micro_batches_and_keys_runs_by_their_size(tmp_path):
    data = LMData(
        _examples(16, seed=0), _examples(4, seed=1), np.arange(VOCAB), {"name": "random-tokens"}
    )
    spec = LMSpec(data=LMDataSpec(n_train=16, n_eval=4))
    settings = RunSettings(budget=Budget(samples=16))

    def run_of(spec, batch_size=8):
        return spec.make_run(OptimizerSpec("sgd"), batch_size, [0.1], 0, settings)

    # Default micro_batch_size (None): one micro-batch per step, so no noise estimate exists.
    with pytest.raises(ValueError, match=r"at least two micro-batches.*at most 4"):
        run_of(spec).execute(tmp_path, data=data)
    with pytest.raises(ValueError, match="turn the noise measurement off"):
        run_of(dataclasses.replace(spec, micro_batch_size=5)).execute(tmp_path, data=data)
    sweep = SweepConfig(
        name="noise",
        problems=(dataclasses.replace(spec, micro_batch_size=4),),
        optimizers=(OptimizerSpec.create("sgd", lr_grid=LRGrid.explicit([0.1])),),
        batch_sizes=(8, 4),  # 4 examples in micro-batches of 4: one per step
        budget=Budget(samples=16),
    )
    with pytest.raises(ValueError, match="batch size 4 with micro-batch size 4"):
        run_sweep(sweep, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # refused before anything was read or written
    # The noise estimate is built from the micro-batches: their size is part of the run id
    # when noise is measured, and only then.
    four, two = (run_of(dataclasses.replace(spec, micro_batch_size=m)) for m in (4, 2))
    assert four.run_id != two.run_id and four.identity()["spec"]["micro_batch_size"] == 4
    quiet = dataclasses.replace(spec, measure_noise=False)
    assert run_of(dataclasses.replace(quiet, micro_batch_size=2)).run_id == run_of(quiet).run_id
    four.execute(tmp_path, data=data)
    noise = pd.read_parquet(tmp_path / "runs" / four.run_id / "noise.parquet")
    assert set(noise["microbatch_size"]) == {4} and set(noise["microbatches"]) == {2}


def test_the_models_activation_kernel_is_part_of_the_run_id(monkeypatch):
    from anisoada.models import GPT2_PRESETS

    spec = LMSpec(data=LMDataSpec(source="synthetic", n_train=8, n_eval=2, max_length=32))
    settings = RunSettings(budget=Budget(samples=16))
    fused = spec.make_run(OptimizerSpec("sgd"), 4, [0.1], 0, settings)
    assert fused.identity()["architecture"] == {"activation": "gelu_pytorch_tanh"}
    fused_id = fused.run_id
    plain = dataclasses.replace(GPT2_PRESETS["tiny"], activation="gelu_new")
    monkeypatch.setitem(GPT2_PRESETS, "tiny", plain)
    assert spec.make_run(OptimizerSpec("sgd"), 4, [0.1], 0, settings).run_id != fused_id


def test_a_tiny_model_trains_on_one_cpu_thread_and_the_process_keeps_its_own(monkeypatch, tmp_path):
    # GPT2Preset.single_threaded: the tiny preset's runs take one torch thread wherever they run
    # (the main process as a pool worker), so their numbers do not depend on where they ran;
    # a preset without the flag trains with whatever the process has.
    import anisoada.experiments.runs.language_model as lm_runs
    from anisoada.models import GPT2_PRESETS

    seen = []
    monkeypatch.setattr(
        lm_runs.LMRun, "_execute", lambda run, *args: seen.append(torch.get_num_threads())
    )
    spec = LMSpec(data=LMDataSpec(n_train=8), measure_noise=False, device="cpu")
    run = spec.make_run(OptimizerSpec("sgd"), 4, [0.1], 0, RunSettings(budget=Budget(samples=8)))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run.execute(tmp_path)
        assert torch.get_num_threads() == 2  # restored
        monkeypatch.setitem(
            GPT2_PRESETS, "tiny", dataclasses.replace(GPT2_PRESETS["tiny"], single_threaded=False)
        )
        run.execute(tmp_path)
    finally:
        torch.set_num_threads(previous)
    assert seen == [1, 2]
    assert GPT2_PRESETS["gpt2"].single_threaded is False  # 124M: the process's threads


def test_tail_evaluations_keep_only_the_last_points_of_the_cadence(tmp_path):
    data = LMData(
        _examples(32, seed=0), _examples(8, seed=1), np.arange(VOCAB), {"name": "random-tokens"}
    )
    spec = LMSpec(data=LMDataSpec(n_train=32, n_eval=8), measure_noise=False)
    every = RunSettings(budget=Budget(samples=48), evaluations=6)  # 6 steps, evaluated at 0 … 6
    tail = dataclasses.replace(every, tail_evaluations=2)
    stored = {}
    for settings in (every, tail):
        run = spec.make_run(OptimizerSpec("sgd"), 8, [0.2], 0, settings)
        run.execute(tmp_path, data=data)
        stored[settings] = pd.read_parquet(tmp_path / "runs" / run.run_id / "rows.parquet")
    assert list(stored[every]["step"]) == list(range(7))
    # The initial point and the last two of the cadence, those of the run that evaluated
    # everywhere to the last bit.
    kept = stored[every].set_index("step").loc[[0, 5, 6], "train_loss"]
    assert list(stored[tail]["step"]) == [0, 5, 6]
    np.testing.assert_array_equal(stored[tail]["train_loss"], kept)
