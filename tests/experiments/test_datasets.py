"""Logistic datasets of a sweep: a user's file with a test file or a holdout, and bad options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from anisoada.cli import main
from anisoada.data import load_libsvm, save_libsvm
from anisoada.experiments import DatasetSpec, load_dataset, load_sweep_config
from anisoada.experiments.runs.logistic import SYNTHETIC_DEFAULTS


def _write(path, n=120, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.3, random_state=seed, format="csr")
    X.data[:] = 1.0
    y = np.where(rng.random(n) < 0.4, 1.0, -1.0)
    save_libsvm(path, X, y)
    return X, y


def test_a_file_with_a_holdout_splits_the_rows_the_loader_splits(tmp_path):
    path = tmp_path / "mine.svm"
    X, _ = _write(path)
    spec = DatasetSpec.from_file(path, holdout=0.25, holdout_seed=3)
    assert spec.name == "mine.svm" and spec.option("sha256")
    data = load_dataset(spec)
    assert data.X.shape[0] + data.X_test.shape[0] == X.shape[0]
    assert data.X_test.shape[0] == 30
    # The rows are the file's: every training and test row is one of X's rows, once.
    rows = {tuple(r) for r in X.toarray().tolist()}
    assert {tuple(r) for r in data.X.toarray().tolist()} <= rows
    assert "0.25 held out (seed 3)" in data.description


def test_a_file_with_a_test_file_aligns_the_columns(tmp_path):
    _write(tmp_path / "train.svm", d=12)
    _write(tmp_path / "test.svm", n=40, d=9, seed=1)
    data = load_dataset(DatasetSpec.from_file(tmp_path / "train.svm", test=tmp_path / "test.svm"))
    assert data.X.shape[1] == data.X_test.shape[1] and data.X_test.shape[0] == 40
    expected = load_libsvm(tmp_path / "test.svm").X.toarray()
    np.testing.assert_array_equal(data.X_test.toarray()[:, : expected.shape[1]], expected)


def test_a_changed_file_is_refused_rather_than_reused(tmp_path):
    path = tmp_path / "mine.svm"
    _write(path)
    spec = DatasetSpec.from_file(path)
    _write(path, seed=5)
    with pytest.raises(ValueError, match=r"has changed since dataset 'mine\.svm' was defined"):
        load_dataset(spec)


def test_the_sweep_command_takes_a_file_and_a_holdout_and_writes_a_toml_it_accepts(tmp_path):
    path = tmp_path / "mine.svm.gz"
    _write(path)
    out = tmp_path / "out"
    argv = ["sweep", "--dataset", str(path), "--holdout", "0.2", "--optimizer", "sgd"]
    argv += ["--batch-sizes", "8", "--lr-grid", "0.1:1:1", "--max-extensions", "0"]
    argv += ["--budget-samples", "160", "--evaluations", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    rows = pd.read_parquet(out / "results.parquet")
    assert set(rows["dataset"]) == {"mine.svm"} and rows["test_accuracy"].notna().all()
    again = load_sweep_config(out / "sweep.toml")
    (spec,) = again.problems
    assert spec.option("holdout") == 0.2 and spec.option("dataset") == str(path)
    # Fed back, the written configuration names exactly the runs already stored.
    assert main(["sweep", str(out / "sweep.toml"), "--out", str(out), "--no-progress"]) == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "results.parquet").drop(columns="train_time"),
        rows.drop(columns="train_time"),
    )


def test_unknown_datasets_and_misplaced_flags_are_one_line_errors(tmp_path, capsys):
    base = ["sweep", "--optimizer", "sgd", "--batch-sizes", "8", "--out", str(tmp_path / "o")]
    assert main([*base, "--dataset", "no-such-set"]) == 2
    assert "neither 'synthetic', 'rotated', a registered LIBSVM set" in capsys.readouterr().err
    assert main([*base, "--dataset", "synthetic", "--holdout", "0.2"]) == 2
    assert "apply to a --dataset file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": -5}, "option n must be an integer >= 2"),
        ({"n": "x"}, "option n must be an integer >= 2"),
        ({"density": 0.0}, r"option density must be in \(0.0, 1.0\]"),
        ({"label_noise": 0.7}, r"option label_noise must be in \[0.0, 0.5\]"),
        ({"seed": True}, "option seed must be an integer >= 0"),
        ({"rows": 3}, "unknown option"),
    ],
)
def test_synthetic_options_are_checked_when_the_spec_is_built(options, message):
    with pytest.raises(ValueError, match=message):
        DatasetSpec.create("toy", "synthetic", options)
    assert set(SYNTHETIC_DEFAULTS) >= {"n", "density", "label_noise", "seed"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"holdout": 1.0}, "option holdout must be below 1"),
        ({"holdout": 0.2, "test_file": "t.svm"}, "a test file or a holdout fraction, not both"),
        ({"test": "yes"}, "option test must be true or false"),
    ],
)
def test_libsvm_options_are_checked_when_the_spec_is_built(options, message):
    with pytest.raises(ValueError, match=message):
        DatasetSpec.create("mine", "libsvm", options)


def test_training_only_keeps_the_columns_and_the_optimum_and_drops_the_test_metrics(tmp_path):
    # A test file with a feature the training file lacks widens both to its columns: the
    # training-only spec must see the same 9-column training rows (and f*), only no test set.
    from anisoada.experiments.runs import DatasetSpec, dataset_optimum, load_dataset

    train, test = tmp_path / "tr.svm", tmp_path / "te.svm"
    train.write_text("+1 1:1 3:1\n-1 2:1\n+1 1:0.5 2:1\n-1 3:1\n")
    test.write_text("+1 1:1 9:1\n-1 2:1\n")
    spec = DatasetSpec.from_file(train, test=test)
    lean = spec.training_only()
    full, quick = load_dataset(spec), load_dataset(lean)
    assert full.X.shape == quick.X.shape == (4, 9) and full.X_test is not None
    assert quick.X_test is None and quick.y_test is None
    assert (full.X != quick.X).nnz == 0
    assert dataset_optimum(lean) is dataset_optimum(spec)  # one solve, shared
    assert lean.with_test_metrics() == spec and lean != spec
    with pytest.raises(ValueError, match="test_metrics must be true or false"):
        spec.with_options(test_metrics="no")
