"""A user's PyTorch problem (``--problem module:function``) through the sweep and ``advise``."""

from __future__ import annotations

from pathlib import Path

import pytest

from anisoada.experiments import LRGrid, OptimizerSpec, SweepConfig, run_sweep
from anisoada.experiments.runs import PROBLEM_KINDS, ModuleSpec
from anisoada.train import Budget

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny_mlp.py"


def test_module_problem_runs_through_the_one_sweep(tmp_path):
    spec = ModuleSpec.create(f"{EXAMPLE}:problem", options={"n": 128})
    assert PROBLEM_KINDS["module"] is ModuleSpec and spec.sha256
    config = SweepConfig(
        name="module", problems=(spec,),
        optimizers=(OptimizerSpec.create("sgd"), OptimizerSpec.create("adagrad")),
        batch_sizes=(32,), budget=Budget(epochs=1.0),
        lr_grid=LRGrid.explicit([0.1, 1.0]), seeds=2,
    )  # fmt: skip
    result = run_sweep(config, tmp_path, progress=False)
    assert set(result.selection["optimizer"]) == {"sgd", "adagrad"}
    assert len(result.verdicts) == 1 and result.verdicts.iloc[0]["metric"] == "loss"
    first = result.rows[result.rows["step"] == 0]
    # Every optimizer and rate of a seed starts from the same initial weights.
    for _, group in first.groupby("seed"):
        assert group["train_loss"].nunique() == 1
    assert {"train_loss", "test_loss"} <= set(result.rows.columns)
    again = run_sweep(config, tmp_path, progress=False)  # stored runs are reused
    assert again.rows["train_loss"].tolist() == result.rows["train_loss"].tolist()


def test_module_target_errors_are_one_line():
    with pytest.raises(ValueError, match="module:function"):
        ModuleSpec.create("no_colon_here")
    with pytest.raises(FileNotFoundError):
        ModuleSpec.create("missing_file.py:problem")
    with pytest.raises(ValueError, match="cannot import"):
        ModuleSpec.create("anisoada_no_such_module:problem").load()


def test_advise_on_a_module_problem_flags_the_hutchinson_L(tmp_path):
    from anisoada.advice import PilotSettings, advise

    advice = advise(
        problem=ModuleSpec.create(f"{EXAMPLE}:problem", options={"n": 128}),
        batch_sizes=[32], budget=Budget(epochs=1.0), out=tmp_path,
        pilot=PilotSettings(grid=LRGrid.explicit([0.1, 1.0])),
    )  # fmt: skip
    checks = {c.name: c for c in advice.evidence.checks}
    # |diag H| of a network is no A2 vector: the certificate ‖L‖_∞ ≥ λ_max fails and says so.
    assert checks["A2 certificate ‖L‖_∞ ≥ λ_max"].failed
    assert advice.failed_checks and "FAILED CHECKS" in advice.render()
    assert advice.evidence.block_heterogeneity["blocks"] == 4
    assert advice.evidence.D_inf is not None and advice.evidence.D_inf > 0
    assert advice.verdict(32).theory == "void"


def test_module_problem_round_trips_through_a_sweep_file(tmp_path):
    from anisoada.experiments import dump_sweep_config, load_sweep_config

    spec = ModuleSpec.create(f"{EXAMPLE}:problem", name="mlp", options={"n": 512})
    config = SweepConfig(
        name="m", problems=(spec,), optimizers=(OptimizerSpec.create("sgd"),),
        batch_sizes=(32,), budget=Budget(epochs=1.0),
    )  # fmt: skip
    dump_sweep_config(config, tmp_path / "sweep.toml")
    text = (tmp_path / "sweep.toml").read_text()
    assert 'kind = "module"' in text and "sha256" in text
    assert load_sweep_config(tmp_path / "sweep.toml").problems == (spec,)


_HEAD = """import torch
X = torch.randn(64, 3, dtype=torch.float64)
y = (X[:, 0] > 0).double()
def factory():
    return torch.nn.Linear(3, 1).double()
def loss(model, batch):
    inputs, labels = batch
    logits = model(inputs).squeeze(-1)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
"""
#: A user's problem file that breaks the contract, and what the one-line error must say.
BROKEN_PROBLEMS: dict[str, tuple[str, str]] = {
    "import-error": ("import no_such_dependency_xyz\ndef f(): pass\n", "No module named"),
    "syntax-error": ("def f(:\n    pass\n", "SyntaxError"),
    "raises-at-import": ("raise RuntimeError('boom at import')\n", "boom at import"),
    "exits-at-import": ("import sys\nsys.exit(3)\n", "sys.exit(3)"),
    "function-raises": ("def f():\n    raise KeyError('missing thing')\n", "'missing thing'"),
    "function-needs-arguments": ("def f(a, b):\n    return None\n", "missing 2 required"),
    "factory-raises": (
        _HEAD + "def f():\n    def bad():\n        raise RuntimeError('no model')\n"
        "    return bad, loss, (X, y)\n",
        "model_factory() raised RuntimeError: no model",
    ),
    "factory-not-a-module": (
        _HEAD + "def f():\n    return (lambda: 5), loss, (X, y)\n",
        "model_factory() must return a torch.nn.Module; got int",
    ),
    "loss-not-scalar": (
        _HEAD + "def f():\n    return factory, (lambda m, b: (m(b[0]).squeeze(-1) - b[1]) ** 2),"
        " (X, y)\n",
        "got a tensor of shape (8,) (reduce it with .mean())",
    ),
    "loss-item": (
        _HEAD + "def f():\n    return factory, (lambda m, b: loss(m, b).item()), (X, y)\n",
        "got float (a Python number: drop .item())",
    ),
    "loss-detached": (
        _HEAD + "def f():\n    return factory, (lambda m, b: loss(m, b).detach()), (X, y)\n",
        "a tensor without a gradient",
    ),
    "loss-nan": (
        _HEAD + "def f():\n    return factory, (lambda m, b: loss(m, b) * float('nan')), (X, y)\n",
        "loss_fn returned nan on the first 8 training samples",
    ),
    "loss-raises": (
        _HEAD + "def f():\n    return factory, (lambda m, b: b['x']), (X, y)\n",
        "loss_fn(model, batch) raised TypeError",
    ),
    "integer-data": (
        _HEAD + "def f():\n    return factory, loss, (X.long(), y.long())\n",
        "the batch holds int64 tensors",
    ),
    "no-parameters": (
        _HEAD + "def f():\n    return (lambda: torch.nn.Identity()), (lambda m, b: b[0].sum()),"
        " (X, y)\n",
        "has no trainable parameters",
    ),
    "loss-ignores-the-model": (
        _HEAD + "def f():\n    w = torch.ones(1, requires_grad=True)\n"
        "    return factory, (lambda m, b: (w * b[1]).mean()), (X, y)\n",
        "does not depend on the model's trainable parameters",
    ),
    "scalar-tensor-data": (
        _HEAD + "def f():\n    return factory, loss, torch.tensor(5.0)\n",
        "got a 0-d tensor (5.0)",
    ),
    "numpy-data": (
        _HEAD + "def f():\n    return factory, loss, (X.numpy(), y.numpy())\n",
        "got numpy.ndarray: convert it with torch.from_numpy",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN_PROBLEMS))
def test_a_broken_problem_is_one_value_error_naming_it_before_any_run(name, tmp_path):
    # Each ended as an internal error (exit 1), a torch traceback or, for sys.exit, silence.
    source, needle = BROKEN_PROBLEMS[name]
    path = tmp_path / f"{name.replace('-', '_')}.py"
    path.write_text(source)
    spec = ModuleSpec.create(f"{path}:f")
    config = SweepConfig(
        name="broken", problems=(spec,), optimizers=(OptimizerSpec.create("sgd"),),
        batch_sizes=(8,), budget=Budget(samples=16), lr_grid=LRGrid.explicit([0.1]),
    )  # fmt: skip
    with pytest.raises(ValueError) as caught:
        run_sweep(config, tmp_path / "out", progress=False)
    message = str(caught.value)
    assert f"{path.name}:f" in message and needle in message, message
    assert "\n" not in message and "<class" not in message
    assert not (tmp_path / "out").exists()


def test_a_problem_file_fixed_after_a_failed_import_is_read_again(tmp_path):
    path = tmp_path / "problem.py"
    path.write_text("raise RuntimeError('not yet')\n")
    with pytest.raises(ValueError, match="not yet"):
        ModuleSpec.create(f"{path}:problem").load()
    path.write_text(EXAMPLE.read_text())
    problem = ModuleSpec.create(f"{path}:problem", options={"n": 16}).load()
    assert problem.train[0].shape == (16, 16)


def test_the_check_passes_the_example_and_leaves_torch_random_state_alone():
    import torch

    from anisoada.experiments.tasks.module import check_module_problem

    spec = ModuleSpec.create(f"{EXAMPLE}:problem", options={"n": 64})
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check_module_problem(spec.load(), spec.target, rows=32)
    assert torch.equal(torch.rand(3), expected)
