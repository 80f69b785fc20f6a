"""Real processes: 2-rank torchrun (gloo) equals one process; a SIGKILLed run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anisoada.cli import main

# Tiny but real: GPT-2 "tiny" on synthetic instructions with the compact vocabulary.
_COMMON = [
    "lm",
    "--quiet",
    "--device",
    "cpu",
    "--optimizer",
    "adagrad",
    "--lr",
    "0.01",
    "--n-train",
    "48",
    "--n-eval",
    "16",
    "--vocabulary",
    "compact",
    "--max-length",
    "96",
]
_LOSSES = ["batch_loss", "train_loss", "eval_loss"]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    return env


def _rows(out: Path) -> tuple[pd.DataFrame, dict]:
    (run_dir,) = (out / "runs").iterdir()
    info = json.loads((run_dir / "run.json").read_text())
    return pd.read_parquet(run_dir / "rows.parquet"), info


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_process_torchrun_gives_the_single_process_losses(tmp_path):
    args = [*_COMMON, "--batch-size", "16", "--micro-batch-size", "4", "--samples", "64"]
    args += ["--evaluations", "2"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "anisoada", *args, "--out", str(tmp_path / "ddp")]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main([*args, "--out", str(tmp_path / "single")]) == 0

    ddp, ddp_info = _rows(tmp_path / "ddp")
    single, single_info = _rows(tmp_path / "single")
    assert ddp_info["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert single_info["distributed"]["world_size"] == 1
    assert ddp_info["run_id"] == single_info["run_id"]
    assert list(ddp["step"]) == list(single["step"]) == [0, 2, 4]
    # Same effective batch: only the float summation order differs (float32 model).
    np.testing.assert_allclose(ddp[_LOSSES], single[_LOSSES], rtol=2e-5)
    # The noise estimate merges the micro-batches of both ranks: k = 16 / 4 in both runs.
    ddp_noise = pd.read_parquet(next((tmp_path / "ddp" / "runs").iterdir()) / "noise.parquet")
    assert set(ddp_noise["microbatches"]) == {4}
    # Only rank 0 wrote: one run directory, no stray files from rank 1.
    assert len(list((tmp_path / "ddp" / "runs").iterdir())) == 1


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_killed_run_resumes_from_its_checkpoint_with_identical_results(tmp_path):
    args = [*_COMMON, "--batch-size", "8", "--micro-batch-size", "4", "--samples", "480"]
    args += ["--evaluations", "6", "--checkpoint-every", "1"]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "anisoada", *args, "--out", str(killed)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    checkpoint = None
    while time.monotonic() < deadline and process.poll() is None:
        found = list(killed.glob("runs/*/checkpoint.pt"))
        if found:
            checkpoint = found[0]
            break
        time.sleep(0.02)
    assert checkpoint is not None, process.stderr.read().decode()[-3000:] if process.stderr else ""
    time.sleep(0.1)  # a few more steps, so the kill lands mid-run, after several checkpoints
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    import torch

    saved_step = torch.load(checkpoint, weights_only=False)["loop"]["step"]
    assert 1 <= saved_step < 60, "the kill must land mid-run for this test to mean anything"
    assert not (checkpoint.parent / "run.json").exists()

    # One thread, as in the killed process: float reductions then happen in the same order.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*args, "--out", str(killed)]) == 0  # resumes
        assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    finally:
        torch.set_num_threads(threads)
    resumed, resumed_info = _rows(killed)
    straight, _ = _rows(tmp_path / "straight")
    assert resumed_info["resumed_from_step"] == saved_step
    assert not checkpoint.exists()  # removed once run.json marks the run complete
    columns = [c for c in straight.columns if c != "train_time"]
    pd.testing.assert_frame_equal(resumed[columns], straight[columns], check_exact=True)
    noise = [
        pd.read_parquet(next((d / "runs").iterdir()) / "noise.parquet")
        for d in (killed, tmp_path / "straight")
    ]
    pd.testing.assert_frame_equal(noise[0], noise[1], check_exact=True)
