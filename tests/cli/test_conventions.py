"""One convention across every subcommand: lists, flag names, defaults in help, --json, errors."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest

from anisoada.cli import build_parser, main


def _subcommands(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subcommands(sub, f"{prefix}{name} ")
    if prefix:
        yield prefix.strip(), parser


COMMANDS = dict(_subcommands(build_parser()))


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_shows_every_real_default_and_no_python_values(command):
    parser = COMMANDS[command]
    text = parser.format_help()
    assert "(default: None)" not in text and "``" not in text and ":func:" not in text
    for action in parser._actions:
        if action.help is argparse.SUPPRESS or not action.option_strings:
            continue
        if action.default in (None, False, [], argparse.SUPPRESS) or action.dest == "help":
            continue
        help_text = parser._get_formatter()._expand_help(action)
        assert "default" in help_text, f"{command} {action.option_strings[0]}: {help_text!r}"


def test_list_options_take_commas_spaces_or_both_in_every_command():
    assert _parse("sweep", "--batch-sizes", "8,64", "512", "--out", "x").batch_sizes == [8, 64, 512]
    repeated = ["--optimizer", "sgd,adagrad", "--optimizer", "adagrad_norm"]
    assert _parse("sweep", *repeated, "--out", "x").optimizer == ["sgd", "adagrad", "adagrad_norm"]
    assert _parse("demo", "--batch-sizes", "8,64", "512").batch_sizes == [8, 64, 512]
    assert _parse("demo", "--batch-sizes", "16").batch_sizes == [16]
    lm = _parse("lm", "--batch-sizes", "256,512", "--optimizer", "sgd", "adagrad", "--lr", "0.1,1")
    assert (lm.batch_size, lm.optimizer, lm.lr) == ([256, 512], ["sgd", "adagrad"], [0.1, 1.0])
    bound = _parse("bound", "--L", "1,2", "3", "--batch-sizes", "1", "8,64")
    assert np.asarray(bound.L).tolist() == [1.0, 2.0, 3.0]
    assert np.asarray(bound.batch_sizes).tolist() == [1.0, 8.0, 64.0]


HIDDEN = ("--budget-samples", "--budget-epochs", "--no-progress", "--batch-size", "--data")
HIDDEN += ("--preset", "--budget")


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["sweep", "--budget-samples", "100", "--out", "x"], "samples", 100),
        (["sweep", "--budget-epochs", "2", "--out", "x"], "epochs", 2.0),
        (["sweep", "--no-progress", "--out", "x"], "quiet", True),
        (["reproduce", "--no-progress"], "quiet", True),
        (["lm", "--batch-size", "256", "512"], "batch_size", [256, 512]),
        (["lm", "--data", "x.json"], "data", "x.json"),
        (["lm", "--no-progress"], "quiet", True),
        (["measure", "--task", "lm", "--preset", "gpt2", "--out", "s"], "preset", "gpt2"),
        (["measure", "--task", "lm", "--data", "a.json", "--out", "s"], "dataset", "a.json"),
        (["smoothness-check", "--preset", "gpt2", "--out", "s"], "preset", "gpt2"),
        (["bound", "--budget", "1e4"], "budget", 1e4),
    ],
)
def test_old_spellings_still_work_but_are_hidden(argv, dest, value):
    assert getattr(_parse(*argv), dest) == value
    old = next(part for part in argv if part in HIDDEN)
    assert not re.search(rf"{old}(?![\w-])", COMMANDS[argv[0]].format_help())


@pytest.mark.parametrize(
    ("command", "new"),
    [
        ("sweep", ["--samples", "--epochs", "--quiet", "--json", "--batch-sizes"]),
        ("lm", ["--samples", "--epochs", "--quiet", "--json", "--batch-sizes", "--dataset"]),
        ("demo", ["--samples", "--json", "--batch-sizes"]),
        ("bound", ["--samples", "--json", "--batch-sizes"]),
        ("measure", ["--model", "--dataset", "--json"]),
        ("smoothness-check", ["--model", "--dataset", "--json"]),
        ("data list", ["--json"]),
    ],
)
def test_one_name_per_concept(command, new):
    text = COMMANDS[command].format_help()
    for flag in new:
        assert flag in text, (command, flag)


def test_bare_command_is_a_usage_error(capsys):
    assert main([]) == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: anisoada") and "give a command" in error


def test_usage_errors_are_one_line(capsys):
    assert main(["sweep", "--seeds", "x", "--out", "o"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("anisoada sweep: error: argument --seeds")


def test_an_internal_error_is_one_line_with_status_1(monkeypatch, capsys):
    import anisoada.cli.bound as bound

    def broken(args):
        raise KeyError("column")

    monkeypatch.setattr(bound, "run_bound", broken)
    monkeypatch.delenv("ANISOADA_TRACEBACK", raising=False)
    assert main(["bound", "--L", "1", "--sigma", "1"]) == 1
    error = capsys.readouterr().err
    assert error == (
        "anisoada bound: error: internal error (KeyError: column); set ANISOADA_TRACEBACK=1 "
        "to see where, and report it\n"
    )
    monkeypatch.setenv("ANISOADA_TRACEBACK", "1")
    with pytest.raises(KeyError):
        main(["bound", "--L", "1", "--sigma", "1"])


def test_json_output_of_demo_bound_and_measure(tmp_path, capsys):
    assert main(["demo", "--dim", "50", "--samples", "256", "--batch-sizes", "8", "--json"]) == 0
    demo = json.loads(capsys.readouterr().out)
    assert {(r["batch_size"], r["optimizer"]) for r in demo["selection"]} == {
        (8, "adagrad"),
        (8, "sgd"),
    }
    assert all(isinstance(r["batch_size"], int) for r in demo["selection"])
    assert main(["bound", "--L", "1,2", "--sigma", "1,1", "--batch-sizes", "1,8", "--json"]) == 0
    bound = json.loads(capsys.readouterr().out)
    assert [row["batch_size"] for row in bound["rows"]][:2] == [1, 1]
    stem = tmp_path / "m"
    argv = ["measure", "--task", "logreg", "--synthetic-n", "200", "--synthetic-d", "10"]
    assert main([*argv, "--out", str(stem), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["d"] == 10 and measured["npz"] == f"{stem}.npz"
    record = json.loads((tmp_path / "m.json").read_text())
    import anisoada

    assert record["provenance"]["packages"]["anisoada"] == anisoada.__version__
    assert record["provenance"]["packages"]["torch"] is not None
    assert (tmp_path / "m.json").stat().st_mode & 0o044 == 0o044  # group and others read


def test_smoothness_check_json_is_the_stored_envelope(tmp_path, capsys):
    stem = tmp_path / "check"
    argv = ["smoothness-check", "--out", str(stem), "--model", "tiny", "--steps", "2",
            "--examples", "4", "--coordinates-per-tensor", "2", "--json"]  # fmt: skip
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((tmp_path / "check.json").read_text())
    assert printed["points"] == stored["n_points"] and printed["skipped"] == stored["n_skipped"]
    for key in ("L0", "L1", "covered_fraction", "coverage"):
        assert printed["pooled"][key] == stored["envelope"]["pooled"][key]
    assert printed["files"] == [str(stem) + suffix for suffix in (".npz", ".json", ".png")]
