"""``anisoada data list`` / ``fetch``."""

from __future__ import annotations

import argparse

import pytest

from anisoada.cli import data as _cli
from anisoada.cli import main


def _run(argv):
    parser = argparse.ArgumentParser(prog="anisoada")
    _cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.real_data
def test_list_shows_present_and_missing_files(shared_data, capsys):
    assert _run(["data", "list", "--data-home", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert f"data home: {shared_data / 'libsvm'}" in out
    a9a_test = next(
        line for line in out.splitlines() if line.startswith("a9a ") and " test " in line
    )
    assert "16,281" in a9a_test and "known" in a9a_test and a9a_test.endswith("a9a.t.xz")
    real_sim = next(line for line in out.splitlines() if line.startswith("real-sim"))
    assert real_sim.endswith("- (real-sim.bz2)") and "shape" in real_sim


def test_list_shows_the_bundled_a9a_when_the_data_home_is_empty(tmp_path, capsys):
    assert _run(["data", "list", "--data-home", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    a9a = [line for line in lines if line.startswith("a9a ")]
    assert [line.endswith("(bundled)") for line in a9a] == [True, True]
    w8a = next(line for line in lines if line.startswith("w8a ") and " train " in line)
    assert w8a.endswith("- (w8a)")


@pytest.mark.real_data
def test_fetch_parses_and_caches_present_files(shared_data, tmp_path, capsys):
    (tmp_path / "libsvm").mkdir()
    (tmp_path / "libsvm" / "mushrooms.xz").symlink_to(shared_data / "libsvm" / "mushrooms.xz")
    assert _run(["data", "fetch", "mushrooms", "--data-home", str(tmp_path), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert (
        out.strip()
        == "mushrooms (train): 8,124 x 112, nnz 170,604, 4,208 positive / 3,916 negative"
    )
    assert len(list((tmp_path / "libsvm" / "cache").glob("mushrooms.xz-*.npz"))) == 1


def test_fetch_of_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    # w8a is not bundled with the package (a9a is), so an empty data home has none.
    status = main(["data", "fetch", "w8a", "--split", "test", "--data-home", str(tmp_path),
                   "--no-download"])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("anisoada data fetch: error: w8a (test) is not in")
    assert "'w8a.t'" in err and err.count("\n") == 1
