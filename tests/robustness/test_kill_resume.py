"""SIGKILL at chosen points of a sweep, then a re-run: no lost or duplicated rows, no debris.

Each kill point is the k-th atomic rename of the sweep (every table, every run's rows and
``run.json``), hit either just before the rename (a complete temporary file is left behind, the
target not yet written) or just after it (the file is in place, the next one not). The killed
sweep runs in a forked child, so the kill is a real ``SIGKILL`` of a process in the middle of a
write; the re-run happens in this process and must give the rows of an uninterrupted sweep
with no temporary file left. A damaged run directory (garbage or empty ``run.json``, truncated
or missing ``rows.parquet``) is detected, reported on stderr and redone.

``ANISOADA_LONG_TESTS=1`` runs the longer variant: a sweep of four seeds killed at 50 points,
and 20 kill points of the LM run with checkpoints (4 in CI).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal

import pandas as pd
import pytest

from anisoada import _io
from anisoada.experiments import LRGrid, OptimizerSpec, QuadraticSpec, SweepConfig, run_sweep
from anisoada.schema import TIMING_COLUMNS
from anisoada.train import Budget

LONG = bool(os.environ.get("ANISOADA_LONG_TESTS"))
IDENTITY = ["dataset", "optimizer", "batch_size", "lr", "seed", "step"]


def _tiny_sweep(seeds: int = 4 if LONG else 1) -> SweepConfig:
    return SweepConfig(
        name="kill",
        problems=(QuadraticSpec(dim=20),),
        optimizers=(OptimizerSpec.create("sgd"), OptimizerSpec.create("adagrad")),
        batch_sizes=(4,),
        budget=Budget(samples=32),
        lr_grid=LRGrid(low=0.1, high=1.0, per_decade=1, max_extensions=1),
        seeds=seeds,
        evaluations=2,
        vectorize=False,  # one run per learning rate: more files, more kill points
    )


def _count_renames(config: SweepConfig, out) -> int:
    calls = 0
    real = os.replace

    def counting(source, target):
        nonlocal calls
        calls += 1
        real(source, target)

    _io.os.replace = counting  # type: ignore[attr-defined]
    try:
        run_sweep(config, out, progress=False)
    finally:
        _io.os.replace = real  # type: ignore[attr-defined]
    return calls


def _killed_child(config: SweepConfig, out, at: int, before: bool) -> None:
    """In a forked child: run the sweep and SIGKILL this process at the ``at``-th rename."""
    calls = 0
    real = os.replace

    def dying(source, target):
        nonlocal calls
        calls += 1
        if calls == at and before:
            os.kill(os.getpid(), signal.SIGKILL)
        real(source, target)
        if calls == at:
            os.kill(os.getpid(), signal.SIGKILL)

    _io.os.replace = dying  # type: ignore[attr-defined]
    run_sweep(config, out, progress=False)
    os._exit(0)  # not reached when killed


def _kill(config: SweepConfig, out, at: int, before: bool) -> int:
    child = multiprocessing.get_context("fork").Process(
        target=_killed_child, args=(config, out, at, before)
    )
    child.start()
    child.join(120)
    return child.exitcode


def _rows(root) -> pd.DataFrame:
    rows = pd.read_parquet(root / "results.parquet").drop(columns=list(TIMING_COLUMNS))
    return rows.sort_values(IDENTITY, kind="stable").reset_index(drop=True)


def _debris(root) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.tmp"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    renames = _count_renames(_tiny_sweep(), root)
    return root, renames


def _kill_points(renames: int, count: int, seed: int) -> list[tuple[int, bool]]:
    chooser = random.Random(seed)
    points = sorted(chooser.sample(range(1, renames + 1), min(count, renames)))
    return [(at, chooser.random() < 0.5) for at in points]


@pytest.mark.parametrize("count", [50 if LONG else 20])
def test_sigkill_at_random_writes_then_rerun_loses_and_duplicates_nothing(
    reference, tmp_path, count
):
    root_reference, renames = reference
    expected = _rows(root_reference)
    assert renames > 20 and len(expected) > 0
    assert not expected.duplicated(IDENTITY).any()
    debris_seen = 0
    for index, (at, before) in enumerate(_kill_points(renames, count, seed=14)):
        out = tmp_path / f"kill{index}"
        assert _kill(_tiny_sweep(), out, at, before) == -signal.SIGKILL
        debris_seen += bool(_debris(out))
        run_sweep(_tiny_sweep(), out, progress=False)
        assert _debris(out) == [], f"kill at rename {at} (before={before}) left debris"
        pd.testing.assert_frame_equal(_rows(out), expected)
    # The kills that hit before a rename left a temporary file, which the re-run removed.
    assert debris_seen >= 1


def test_a_second_kill_during_the_rerun_still_converges(reference, tmp_path):
    root_reference, renames = reference
    out = tmp_path / "twice"
    assert _kill(_tiny_sweep(), out, renames // 3, True) == -signal.SIGKILL
    assert _kill(_tiny_sweep(), out, 3, True) == -signal.SIGKILL
    run_sweep(_tiny_sweep(), out, progress=False)
    assert _debris(out) == []
    pd.testing.assert_frame_equal(_rows(out), _rows(root_reference))


DAMAGES = ("garbage run.json", "empty run.json", "list run.json", "truncated rows", "missing rows")


def _damage(directory, damage: str) -> None:
    info, rows = directory / "run.json", directory / "rows.parquet"
    if damage == "garbage run.json":
        info.write_bytes(b"\x00\xff garbage {")
    elif damage == "empty run.json":
        info.write_text("")
    elif damage == "list run.json":
        info.write_text("[1, 2]")
    elif damage == "truncated rows":
        rows.write_bytes(rows.read_bytes()[:100])
    else:
        rows.unlink()


def test_damaged_run_directories_are_detected_and_redone(reference, tmp_path, capsys):
    root_reference, _ = reference
    out = tmp_path / "damaged"
    run_sweep(_tiny_sweep(), out, progress=False)
    capsys.readouterr()
    victims = sorted((out / "runs").iterdir())
    assert len(victims) >= len(DAMAGES)
    for victim, damage in zip(victims, DAMAGES):
        _damage(victim, damage)
    run_sweep(_tiny_sweep(), out, progress=False)
    error = capsys.readouterr().err
    for victim, damage in zip(victims, DAMAGES):
        line = next(line for line in error.splitlines() if str(victim) in line)
        assert "is damaged" in line and line.endswith("redoing the run"), (damage, line)
    assert "missing" in error and "not readable JSON" in error and "unreadable" in error
    pd.testing.assert_frame_equal(_rows(out), _rows(root_reference))
    # Healed: the next run trusts the directories again and says nothing.
    run_sweep(_tiny_sweep(), out, progress=False)
    assert "damaged" not in capsys.readouterr().err


def test_written_files_are_readable_by_the_group_like_any_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        run_sweep(_tiny_sweep(), tmp_path, progress=False)
    finally:
        os.umask(old)
    modes = {
        path.name: path.stat().st_mode & 0o777 for path in tmp_path.rglob("*") if path.is_file()
    }
    assert modes["results.parquet"] == 0o644
    assert modes["selection.csv"] == 0o644
    assert set(modes.values()) == {0o644}
    old = os.umask(0o077)
    try:
        _io.write_json(tmp_path / "private.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600


_LM_ARGS = [
    "lm", "--quiet", "--device", "cpu", "--optimizer", "adagrad", "--lr", "0.01",
    "--n-train", "32", "--n-eval", "8", "--vocabulary", "compact", "--max-length", "96",
    "--batch-sizes", "8", "--micro-batch-size", "4", "--samples", "64", "--evaluations", "2",
    "--checkpoint-every", "1", "--out", "unused",
]  # fmt: skip


def _lm_sweep() -> SweepConfig:
    from anisoada.cli import build_parser
    from anisoada.cli.lm import sweep_from_args

    return sweep_from_args(build_parser().parse_args(_LM_ARGS))


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float reduction order in the killed child and here
    yield
    torch.set_num_threads(threads)


def test_sigkill_during_an_lm_run_with_checkpoints_then_rerun(tmp_path, one_thread):
    reference = tmp_path / "reference"
    renames = _count_renames(_lm_sweep(), reference)
    expected = _rows(reference)
    assert renames > 8 and len(expected) > 0
    for index, (at, before) in enumerate(_kill_points(renames, 20 if LONG else 4, seed=7)):
        out = tmp_path / f"kill{index}"
        assert _kill(_lm_sweep(), out, at, before) == -signal.SIGKILL
        run_sweep(_lm_sweep(), out, progress=False)
        assert _debris(out) == [], f"kill at rename {at} (before={before}) left debris"
        assert list(out.glob("runs/*/checkpoint.pt")) == []  # removed once the run completes
        pd.testing.assert_frame_equal(_rows(out), expected)
