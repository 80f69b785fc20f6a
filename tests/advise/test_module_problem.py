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
