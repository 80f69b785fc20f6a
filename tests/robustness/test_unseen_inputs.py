"""A second corpus of bad and odd inputs: what a demanding new user tries after the first one.

Issue 14 said the project would be probed again with a corpus it had not seen; this is that
probe, kept so that what it found stays fixed. Every bad input meets the rule of
:func:`corpus.check_one_line` (exit status 2, one line naming the input, no internals). Every
odd but valid input (a byte-order mark, CRLF line ends, ``qid``, labels 2/-2, …) reads exactly as
its plain twin. The library's entry points raise ``ValueError``/``FileNotFoundError`` (or
``TypeError`` for an argument of the wrong type) naming the input, never an ``AttributeError``
from deep inside. A damaged store is redone or refused, never trusted; a second writer is
refused; Ctrl-C and SIGTERM mid-sweep end in one line and a re-run resumes to the same rows.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from corpus import (
    SWEEP_TOML,
    TINY_SWEEP,
    Case,
    check_named_error,
    check_one_line,
    collect_into,
    fifo,
    link_to,
    run_case,
    sweep_file_cases,
)

from anisoada.cli import main

CASES: list[Case] = []
case = collect_into(CASES)


# ---------------------------------------------------------------------------------------------
# LIBSVM files the first corpus did not try, read by `measure --task logreg --dataset FILE`
# ---------------------------------------------------------------------------------------------

_MEASURE = ["measure", "--task", "logreg", "--dataset", "{d}/data.svm", "--out", "{d}/m"]
LIBSVM_BAD: dict[str, bytes | str] = {
    "duplicate-index": "+1 1:1 1:2\n-1 1:1\n",
    "unsorted-index": "+1 3:1 1:2\n-1 1:1\n",
    "four-classes": "1 1:1\n2 1:1\n3 2:1\n4 1:1\n",
    "thirty-float-classes": "".join(f"{i / 10} 1:1\n" for i in range(30)),
    "label-sign-only": "+ 1:1\n- 1:1\n",
    "value-NaN": "1 1:NaN\n-1 1:1\n",
    "value-minus-inf": "1 1:-inf\n-1 1:1\n",
    "value-Infinity": "1 1:Infinity\n-1 1:1\n",
    "label-underscore": "1_0 1:1\n-1 1:1\n",
    "value-underscore": "1 1:1_0\n-1 1:1\n",
    "qid-after-a-feature": "1 1:1 qid:2\n-1 1:1\n",
    "qid-negative": "1 qid:-1 1:1\n-1 1:1\n",
    "index-zero": "1 0:1\n-1 1:1\n",
    "arabic-digit-index": "1 ١:1\n-1 1:1\n",
    "fullwidth-label": "１ 1:1\n-1 1:1\n",
    "no-break-space": "1\u00a01:1\n-1 1:1\n",
    "semicolons": "1 1:1;2:3\n-1 1:1\n",
    "decimal-comma": "1 1:1,5\n-1 1:1\n",
    "space-after-colon": "1 1: 1\n-1 1:1\n",
    "space-before-colon": "1 1 :1\n-1 1:1\n",
    "single-row": "1 1:1\n",
    "zstd": b"(\xb5/\xfd" + b"\x00" * 20,
    "zip": b"PK\x03\x04" + b"\x00" * 40,
    "7zip": b"7z\xbc\xaf'\x1c" + b"\x00" * 20,
    "utf16-without-bom": "1 1:1\n-1 1:1\n".encode("utf-16-le"),
    "cr-line-ends": "+1 1:0.5 3:1\r-1 2:1\r+1 1:1\r",
    "bom-only": b"\xef\xbb\xbf",
    "bom-on-line-two": "+1 1:1\n\ufeff-1 2:1\n",
    "trailing-lone-colon": "1 1:1 :\n-1 1:1\n",
}
for name, content in LIBSVM_BAD.items():
    case(f"libsvm-{name}", _MEASURE, "{d}/data.svm", {"data.svm": content})
for name, make in {"fifo": fifo, "dangling-link": link_to("nowhere.svm")}.items():
    case(f"libsvm-{name}", _MEASURE, "{d}/data.svm", {"data.svm": make})
case(
    "libsvm-looping-link",
    _MEASURE,
    "{d}/data.svm",
    {"data.svm": link_to("loop.svm"), "loop.svm": link_to("data.svm")},
)

# ---------------------------------------------------------------------------------------------
# Alpaca files, read by `measure --task lm --data FILE`
# ---------------------------------------------------------------------------------------------

_LM_MEASURE = ["measure", "--task", "lm", "--data", "{d}/data.json", "--out", "{d}/m"]
_RECORD = '{"instruction": "Add 2 and 3.", "input": "", "output": "5"}'
ALPACA_BAD: dict[str, bytes | str] = {
    "key-twice": '[{"instruction": "a", "instruction": "z", "input": "", "output": "b"}]',
    "key-twice-nested": '[{"instruction": "a", "output": "b", "meta": {"x": 1, "x": 2}}]',
    "array-per-line": f"[{_RECORD}]\n[{_RECORD}]\n",
    "garbage-after-list": f"[{_RECORD}] garbage",
    "null-input": '[{"instruction": "a", "input": null, "output": "b"}]',
    "long-integer-extra-key": '[{"instruction": "a", "output": "b", "n": ' + "9" * 5000 + "}]",
    "plain-text-named-gz": f"[{_RECORD}]",
}
for name, content in ALPACA_BAD.items():
    target = "data.json.gz" if name == "plain-text-named-gz" else "data.json"
    argv = [part.replace("data.json", target) for part in _LM_MEASURE]
    case(f"alpaca-{name}", argv, f"{{d}}/{target}", {target: content})
case(
    "alpaca-jsonl-key-twice",
    [part.replace("data.json", "data.jsonl") for part in _LM_MEASURE],
    "line 2",
    {"data.jsonl": f'{_RECORD}\n{{"output": "a", "output": "b", "instruction": "c"}}\n'},
)
for name, make in {"fifo": fifo, "dangling-link": link_to("nowhere.json")}.items():
    case(f"alpaca-{name}", _LM_MEASURE, "data.json", {"data.json": make})

# ---------------------------------------------------------------------------------------------
# Sweep TOML files
# ---------------------------------------------------------------------------------------------

_TOML = SWEEP_TOML
_TOP, _REST = _TOML.split("\n", 1)
TOML_BAD: dict[str, tuple[str | bytes, str]] = {
    "key-twice": ("batch_sizes = [4]\nbatch_sizes = [8]\n" + _REST, "s.toml"),
    "table-twice": (_TOML + "[budget]\nsamples = 8\n", "budget"),
    "budget-array-of-tables": (_TOML.replace("[budget]", "[[budget]]"), "budget"),
    "datasets-a-table": (_TOML.replace("[[datasets]]", "[datasets]"), "datasets"),
    "optimizers-a-table": (_TOML.replace("[[optimizers]]", "[optimizers]"), "optimizers"),
    "seeds-negative": ("seeds = -1\n" + _TOML, "seeds"),
    "seeds-beyond-64-bits": ("seeds = 99999999999999999999\n" + _TOML, "seeds"),
    "base-seed-beyond-64-bits": ("base_seed = -99999999999999999999\n" + _TOML, "base_seed"),
    "evaluations-float": ("evaluations = 2.0\n" + _TOML, "evaluations"),
    "divergence-zero": ("divergence_factor = 0\n" + _TOML, "divergence_factor"),
    "divergence-one": ("divergence_factor = 1\n" + _TOML, "divergence_factor"),
    "divergence-nan": ("divergence_factor = nan\n" + _TOML, "divergence_factor"),
    "divergence-None-capitalised": ('divergence_factor = "None"\n' + _TOML, "divergence_factor"),
    "divergence-bool": ("divergence_factor = true\n" + _TOML, "divergence_factor"),
    "tuning-seeds-string": ('tuning_seeds = "2"\n' + _TOML, "tuning_seeds"),
    "baseline-number": ("baseline = 5\n" + _TOML, "baseline"),
    "executor-unknown": ('executor = "slurm"\n' + _TOML, "slurm"),
    "executor-number": ("executor = 1\n" + _TOML, "executor"),
    "ray-address-number": ("ray_address = 5\n" + _TOML, "ray_address"),
    "name-empty": ('name = ""\n' + _TOML, "name"),
    "name-a-date": ("name = 1979-05-27T07:32:00Z\n" + _TOML, "name"),
    "budget-a-time": (_TOML.replace("samples = 16", "samples = 07:32:00"), "budget.samples"),
    "dataset-name-empty": (_TOML.replace('name = "toy"', 'name = ""'), "name"),
    "dataset-n-bool": (_TOML.replace("n = 40", "n = true"), "n"),
    "dataset-path-key": (_TOML.replace("n = 40", 'path = "x.svm"'), "path"),
    "lr-grid-high-inf": (_TOML + "[lr_grid]\nhigh = inf\n", "high"),
    "lr-grid-low-nan": (_TOML + "[lr_grid]\nlow = nan\n", "low"),
    "lr-grid-values-nan": (_TOML + "[lr_grid]\nvalues = [nan]\n", "lr grid"),
    "lr-grid-values-twice": (_TOML + "[lr_grid]\nvalues = [0.1, 0.1]\n", "distinct"),
    "lr-grid-extension-points-zero": (_TOML + "[lr_grid]\nextension_points = 0\n", "extension"),
    "selection-window-float": (_TOML + "[selection]\nwindow = 2.5\n", "window"),
    "selection-tolerance-nan": (_TOML + "[selection]\ntolerance = nan\n", "tolerance"),
    "selection-tolerance-string": (_TOML + '[selection]\ntolerance = "x"\n', "tolerance"),
    "budget-steps-zero": (_TOML.replace("samples = 16", "steps = 0"), "steps"),
    "problem-module-no-target": (_TOML + '[[problems]]\nkind = "module"\n', "target"),
    "problem-module-target-number": (_TOML + '[[problems]]\nkind = "module"\ntarget = 5\n', "5"),
    "problem-module-not-importable": (
        _TOML + '[[problems]]\nkind = "module"\ntarget = "nosuchmodule_xyz:f"\n',
        "nosuchmodule_xyz",
    ),
    "problem-kind-number": (_TOML + "[[problems]]\nkind = 5\n", "kind"),
    "problem-lm-data-unknown-key": (_TOML + '[[problems]]\nkind = "lm"\ndata = { x = 1 }\n', "x"),
    "problem-lm-n-train-text": (
        _TOML + '[[problems]]\nkind = "lm"\ndata = { n_train = "x" }\n',
        "n_train",
    ),
    "optimizer-option-a-table": (
        _TOML.replace('name = "sgd"', 'name = "adagrad"\noptions = { eps = { a = 1 } }'),
        "eps",
    ),
    "optimizer-option-a-list": (
        _TOML.replace('name = "sgd"', 'name = "adagrad"\noptions = { eps = [1e-8] }'),
        "eps",
    ),
    "optimizer-option-bool": (
        _TOML.replace('name = "sgd"', 'name = "adagrad"\noptions = { eps = true }'),
        "eps",
    ),
    "optimizer-momentum-nan": (
        _TOML.replace('name = "sgd"', 'name = "sgd"\noptions = { momentum = nan }'),
        "momentum",
    ),
    "optimizer-name-capitalised": (_TOML.replace('name = "sgd"', 'name = "SGD"'), "SGD"),
    "optimizer-name-empty": (_TOML.replace('name = "sgd"', 'name = ""'), "optimizer"),
    "nul-byte": ("batch_sizes = [4]\x00\n" + _REST, "s.toml"),
    "nested-too-deep": ("x = " + "[" * 5000 + "]" * 5000 + "\n" + _TOML, "s.toml"),
    "non-ascii-bare-key": ('nämé = "x"\n' + _TOML, "s.toml"),
}
CASES.extend(sweep_file_cases(TOML_BAD))
case("toml-a-directory", ["sweep", "{d}/conf", "--out", "{d}/out"], "conf", {"conf/x": "1"})
case("toml-a-fifo", ["sweep", "{d}/s.toml", "--out", "{d}/out"], "s.toml", {"s.toml": fifo})

# ---------------------------------------------------------------------------------------------
# Flags of every command: nan, inf, 1e400, -0, beyond int64, empty, given twice
# ---------------------------------------------------------------------------------------------

_BOUND = ["bound", "--L", "1,2", "--sigma", "1,1"]
_SWEEP = ["sweep", "--dataset", "synthetic", "--optimizer", "sgd", "--out", "{d}/out", "--quiet"]
_SWEEP4 = [*_SWEEP, "--batch-sizes", "4"]
_LM = ["lm", "--no-noise", "--samples", "8", "--batch-sizes", "4", "--out", "{d}/lm", "--quiet"]
_LOGREG = ["measure", "--task", "logreg", "--synthetic-n", "50", "--synthetic-d", "5"]
_CHECK = ["smoothness-check", "--out", "{d}/c"]
_BEYOND_INT64 = str(2**63)
FLAGS: dict[str, tuple[list[str], str]] = {
    "bound-samples-inf": ([*_BOUND, "--samples", "inf"], "--samples"),
    "bound-samples-1e400": ([*_BOUND, "--samples", "1e400"], "--samples"),
    "bound-samples-negative-zero": ([*_BOUND, "--samples", "-0"], "--samples"),
    "bound-samples-negative": ([*_BOUND, "--samples", "-5"], "--samples"),
    "bound-budget-alias-nan": ([*_BOUND, "--budget", "nan"], "--budget"),
    "bound-batch-sizes-twice": ([*_BOUND, "--batch-sizes", "8,8"], "--batch-sizes"),
    "bound-batch-sizes-inf": ([*_BOUND, "--batch-sizes", "inf"], "batch"),
    "bound-D-inf-inf": ([*_BOUND, "--D-inf", "inf"], "D_inf"),
    "bound-D-2-zero": ([*_BOUND, "--D-2", "0"], "D_2"),
    "bound-delta-zero": ([*_BOUND, "--setting", "nonconvex", "--delta", "0"], "delta"),
    "bound-lambda-max-zero": ([*_BOUND, "--lambda-max", "0"], "lambda_max"),
    "bound-L0-length": (
        [*_BOUND, "--setting", "nonconvex", "--delta", "1", "--L0", "1", "--L1", "1,1"],
        "L0",
    ),
    "bound-G-length": ([*_BOUND, "--G", "1"], "G"),
    "bound-L-from-an-empty-file": (["bound", "--L", "@{d}/empty", "--sigma", "1,1"], "empty"),
    "bound-L-from-a-binary-file": (["bound", "--L", "@{d}/bin", "--sigma", "1,1"], "bin"),
    "bound-L-from-a-directory": (["bound", "--L", "@{d}", "--sigma", "1,1"], "{d}"),
    "bound-plot-a-directory": ([*_BOUND, "--plot", "{d}"], "--plot"),
    "bound-plot-no-suffix": ([*_BOUND, "--plot", "{d}/plot"], "--plot"),
    "bound-plot-unknown-suffix": ([*_BOUND, "--plot", "{d}/plot.xyz"], "plot.xyz"),
    "bound-from-a-fifo": (["bound", "--from", "{d}/fifo.npz"], "fifo.npz"),
    "bound-from-a-directory": (["bound", "--from", "{d}"], "{d}"),
    "demo-samples-negative": (["demo", "--samples", "-5"], "--samples"),
    "demo-samples-beyond-int64": (["demo", "--samples", _BEYOND_INT64], "--samples"),
    "demo-seed-negative": (["demo", "--seed", "-1"], "--seed"),
    "demo-seed-text": (["demo", "--seed", "x"], "--seed"),
    "demo-batch-sizes-twice": (["demo", "--batch-sizes", "8", "8"], "--batch-sizes"),
    "demo-out-empty": (["demo", "--out", ""], "--out"),
    "demo-out-a-file": (
        ["demo", "--out", "{d}/f", "--samples", "64", "--dim", "10", "--batch-sizes", "8"],
        "{d}/f",
    ),
    "sweep-out-empty": ([*_SWEEP4[:5], "--batch-sizes", "4", "--out", ""], "--out"),
    "sweep-name-empty": ([*_SWEEP4, "--name", ""], "--name"),
    "sweep-optimizer-twice": ([*_SWEEP4, "--optimizer", "sgd"], "sgd"),
    "sweep-batch-sizes-twice": ([*_SWEEP, "--batch-sizes", "4,8", "4"], "--batch-sizes"),
    "sweep-dataset-twice": ([*_SWEEP4, "--dataset", "synthetic"], "synthetic"),
    "sweep-epochs-nan": ([*_SWEEP4, "--epochs", "nan"], "--epochs"),
    "sweep-epochs-inf": ([*_SWEEP4, "--epochs", "inf"], "--epochs"),
    "sweep-epochs-1e400": ([*_SWEEP4, "--epochs", "1e400"], "--epochs"),
    "sweep-epochs-negative-zero": ([*_SWEEP4, "--epochs", "-0"], "--epochs"),
    "sweep-samples-beyond-int64": ([*_SWEEP4, "--samples", _BEYOND_INT64], "--samples"),
    "sweep-samples-scientific": ([*_SWEEP4, "--samples", "1e3"], "--samples"),
    "sweep-lr-grid-nan": ([*_SWEEP4, "--lr-grid", "nan:1"], "lr grid"),
    "sweep-lr-grid-inf": ([*_SWEEP4, "--lr-grid", "0.1:inf"], "lr grid"),
    "sweep-lr-grid-per-decade-zero": ([*_SWEEP4, "--lr-grid", "0.1:1:0"], "per_decade"),
    "sweep-lr-grid-per-decade-negative": ([*_SWEEP4, "--lr-grid", "0.1:1:-2"], "per_decade"),
    "sweep-lr-grid-four-parts": ([*_SWEEP4, "--lr-grid", "0.1:1:2:3"], "--lr-grid"),
    "sweep-lr-grid-empty": ([*_SWEEP4, "--lr-grid", ""], "--lr-grid"),
    "sweep-lr-grid-commas": ([*_SWEEP4, "--lr-grid", "0.1,1"], "--lr-grid"),
    "sweep-max-extensions-text": ([*_SWEEP4, "--max-extensions", "x"], "--max-extensions"),
    "sweep-max-extensions-negative": ([*_SWEEP4, "--max-extensions", "-2"], "--max-extensions"),
    "sweep-base-seed-negative": ([*_SWEEP4, "--base-seed", "-1"], "--base-seed"),
    "sweep-base-seed-beyond-int64": ([*_SWEEP4, "--base-seed", _BEYOND_INT64], "--base-seed"),
    "sweep-seeds-beyond-int64": ([*_SWEEP4, "--seeds", _BEYOND_INT64], "--seeds"),
    "sweep-jobs-negative": ([*_SWEEP4, "--jobs", "-1"], "--jobs"),
    "sweep-holdout-nan": (
        ["sweep", "--dataset", "{d}/t.svm", "--holdout", "nan", "--optimizer", "sgd"],
        "--holdout",
    ),
    "sweep-holdout-inf": (
        ["sweep", "--dataset", "{d}/t.svm", "--holdout", "inf", "--optimizer", "sgd"],
        "--holdout",
    ),
    "sweep-option-nan": (
        [*_SWEEP4[:3], "--optimizer", "adagrad", "--option", "adagrad.eps=nan", "--out", "o"],
        "eps",
    ),
    "sweep-option-empty-value": (
        [*_SWEEP4[:3], "--optimizer", "adagrad", "--option", "adagrad.eps=", "--out", "o"],
        "eps",
    ),
    "sweep-option-without-optimizer-name": (
        [*_SWEEP4[:3], "--optimizer", "adagrad", "--option", "eps=1", "--out", "o"],
        "eps=1",
    ),
    "sweep-option-unknown-placement": (
        [
            *_SWEEP4[:3],
            "--optimizer",
            "adagrad",
            "--option",
            "adagrad.eps_placement=x",
            "--out",
            "o",
        ],
        "eps_placement",
    ),
    "sweep-executor-unknown": ([*_SWEEP4, "--executor", "slurm"], "slurm"),
    "reproduce-target-twice": (["reproduce", "theory", "theory", "--out", "{d}/r"], "theory"),
    "reproduce-target-empty": (["reproduce", "", "--out", "{d}/r"], "target"),
    "reproduce-all-and-another": (["reproduce", "all", "theory", "--out", "{d}/r"], "all"),
    "reproduce-preset-capitalised": (["reproduce", "--preset", "Quick"], "Quick"),
    "reproduce-out-empty": (["reproduce", "theory", "--out", ""], "--out"),
    "report-results-dir-empty": (["report", ""], "RESULTS_DIR"),
    "report-results-dir-a-file": (["report", "{d}/f"], "{d}/f"),
    "report-results-dir-a-fifo": (["report", "{d}/fifo"], "{d}/fifo"),
    "report-out-empty": (["report", "{d}", "--out", ""], "--out"),
    "data-list-home-a-file": (["data", "list", "--data-home", "{d}/f"], "{d}/f"),
    "data-list-json-home-a-file": (["data", "list", "--json", "--data-home", "{d}/f"], "{d}/f"),
    "data-fetch-home-a-file": (["data", "fetch", "a9a", "--data-home", "{d}/f"], "{d}/f"),
    "data-fetch-wrong-file-present": (
        ["data", "fetch", "w8a", "--split", "train", "--no-download", "--data-home", "{d}/h"],
        "w8a",
    ),
    "measure-seed-negative": ([*_LOGREG, "--seed", "-1", "--out", "{d}/m"], "--seed"),
    "measure-out-empty": ([*_LOGREG, "--out", ""], "--out"),
    "measure-out-a-directory": ([*_LOGREG, "--out", "{d}"], "--out"),
    "measure-out-trailing-slash": ([*_LOGREG, "--out", "{d}/sub/"], "--out"),
    "measure-at-an-npz": ([*_LOGREG, "--at", "{d}/w.npz", "--out", "{d}/m"], "w.npz"),
    "measure-at-nan-weights": ([*_LOGREG, "--at", "{d}/nan.npy", "--out", "{d}/m"], "nan.npy"),
    "measure-at-complex-weights": ([*_LOGREG, "--at", "{d}/c.npy", "--out", "{d}/m"], "c.npy"),
    "measure-at-string-weights": ([*_LOGREG, "--at", "{d}/s.npy", "--out", "{d}/m"], "s.npy"),
    "measure-secant-radius-nan": (
        ["measure", "--task", "lm", "--secant-radius", "nan", "--out", "{d}/m"],
        "--secant-radius",
    ),
    "measure-secant-radius-negative": (
        ["measure", "--task", "lm", "--secant-radius", "-1", "--out", "{d}/m"],
        "--secant-radius",
    ),
    "measure-envelope-from-missing": (
        ["measure", "--task", "lm", "--envelope-from", "{d}/none", "--out", "{d}/m"],
        "none",
    ),
    "measure-problem-and-task": (
        ["measure", "--problem", "x:f", "--task", "logreg", "--out", "{d}/m"],
        "--problem",
    ),
    "measure-problem-without-colon": (["measure", "--problem", "{d}/p.py", "--out", "m"], "p.py"),
    "measure-problem-module-not-found": (
        ["measure", "--problem", "nosuchmodule_xyz:f", "--out", "{d}/m"],
        "nosuchmodule_xyz",
    ),
    "measure-problem-no-such-function": (
        ["measure", "--problem", "{d}/p.py:g", "--out", "{d}/m"],
        "'g'",
    ),
    "measure-problem-returns-none": (
        ["measure", "--problem", "{d}/none.py:f", "--out", "{d}/m"],
        "none.py",
    ),
    "measure-problem-examples-zero": (
        ["measure", "--problem", "{d}/p.py:f", "--examples", "0", "--out", "{d}/m"],
        "--examples",
    ),
    "smoothness-check-lr-nan": ([*_CHECK, "--lr", "nan"], "--lr"),
    "smoothness-check-lr-negative": ([*_CHECK, "--lr", "-1"], "--lr"),
    "smoothness-check-radius-negative": ([*_CHECK, "--perturbation-radius", "-1"], "radius"),
    "smoothness-check-coverage-nan": ([*_CHECK, "--coverage", "nan"], "--coverage"),
    "smoothness-check-coverage-zero": ([*_CHECK, "--coverage", "0"], "--coverage"),
    "smoothness-check-min-move-nan": ([*_CHECK, "--min-relative-move", "nan"], "move"),
    "smoothness-check-min-move-negative": ([*_CHECK, "--min-relative-move", "-1"], "move"),
    "smoothness-check-seed-negative": ([*_CHECK, "--seed", "-1"], "--seed"),
    "smoothness-check-out-empty": (["smoothness-check", "--out", ""], "--out"),
    "lm-lr-grid-for-another-optimizer": (
        [*_LM, "--optimizer", "sgd", "--lr", "0.1", "--lr-grid", "adam=0.1"],
        "adam",
    ),
    "lm-lr-grid-twice": (
        [*_LM, "--optimizer", "sgd", "--lr-grid", "sgd=0.1", "--lr-grid", "sgd=0.2"],
        "sgd",
    ),
    "lm-lr-grid-zero": ([*_LM, "--optimizer", "sgd", "--lr-grid", "sgd=0"], "--lr-grid"),
    "lm-lr-grid-inf": ([*_LM, "--optimizer", "sgd", "--lr-grid", "sgd=inf"], "--lr-grid"),
    "lm-lr-grid-no-values": ([*_LM, "--optimizer", "sgd", "--lr-grid", "sgd="], "--lr-grid"),
    "lm-lr-grid-no-name": ([*_LM, "--optimizer", "sgd", "--lr-grid", "0.1"], "--lr-grid"),
    "lm-lr-twice": ([*_LM, "--optimizer", "sgd", "--lr", "0.1,0.1"], "--lr"),
    "lm-lr-grid-values-twice": ([*_LM, "--optimizer", "sgd", "--lr-grid", "sgd=0.1,0.1"], "0.1"),
    "lm-dropout-nan": ([*_LM, "--lr", "0.1", "--dropout", "nan"], "--dropout"),
    "lm-dropout-two": ([*_LM, "--lr", "0.1", "--dropout", "2"], "--dropout"),
    "lm-dropout-negative": ([*_LM, "--lr", "0.1", "--dropout", "-0.1"], "--dropout"),
    "lm-warmup-nan": ([*_LM, "--lr", "0.1", "--warmup-ratio", "nan"], "--warmup-ratio"),
    "lm-warmup-two": ([*_LM, "--lr", "0.1", "--warmup-ratio", "2"], "--warmup-ratio"),
    "lm-final-lr-negative": ([*_LM, "--lr", "0.1", "--final-lr-ratio", "-1"], "--final-lr"),
    "lm-clip-negative": ([*_LM, "--lr", "0.1", "--clip-norm", "-1"], "--clip-norm"),
    "lm-clip-nan": ([*_LM, "--lr", "0.1", "--clip-norm", "nan"], "--clip-norm"),
    "lm-clip-zero": ([*_LM, "--lr", "0.1", "--clip-norm", "0"], "--clip-norm"),
    "lm-micro-batch-zero": ([*_LM, "--lr", "0.1", "--micro-batch-size", "0"], "--micro-batch"),
    "lm-micro-batch-negative": ([*_LM, "--lr", "0.1", "--micro-batch-size", "-4"], "--micro"),
    "lm-micro-batch-text": ([*_LM, "--lr", "0.1", "--micro-batch-size", "x"], "--micro-batch"),
    "lm-max-extensions-negative": ([*_LM, "--lr", "0.1", "--max-extensions", "-1"], "--max-ext"),
    "lm-model-empty": ([*_LM, "--lr", "0.1", "--model", ""], "model"),
    "lm-model-capitalised": ([*_LM, "--lr", "0.1", "--model", "Tiny"], "Tiny"),
    "lm-optimizer-only-commas": ([*_LM, "--lr", "0.1", "--optimizer", ","], "--optimizer"),
    "lm-optimizer-twice": ([*_LM, "--lr", "0.1", "--optimizer", "sgd,sgd"], "sgd"),
    "lm-batch-sizes-twice": ([*_LM, "--lr", "0.1", "--batch-sizes", "8,8"], "--batch-sizes"),
    "lm-batch-size-alias-twice": ([*_LM, "--lr", "0.1", "--batch-size", "8", "8"], "--batch"),
    "lm-n-eval-zero": ([*_LM, "--lr", "0.1", "--n-eval", "0"], "--n-eval"),
    "lm-n-train-negative": ([*_LM, "--lr", "0.1", "--n-train", "-1"], "--n-train"),
    "lm-dataset-a-directory": ([*_LM, "--lr", "0.1", "--dataset", "{d}"], "{d}"),
    "lm-dataset-a-libsvm-file": ([*_LM, "--lr", "0.1", "--dataset", "{d}/t.svm"], "t.svm"),
    "lm-dataset-key-twice": ([*_LM, "--lr", "0.1", "--dataset", "{d}/dup.json"], "dup.json"),
    "lm-eval-batch-zero": ([*_LM, "--lr", "0.1", "--eval-batch-size", "0"], "--eval-batch"),
    "lm-checkpoint-every-zero": ([*_LM, "--lr", "0.1", "--checkpoint-every", "0"], "--checkpoint"),
    "lm-data-seed-negative": ([*_LM, "--lr", "0.1", "--data-seed", "-1"], "--data-seed"),
    "lm-base-seed-negative": ([*_LM, "--lr", "0.1", "--base-seed", "-1"], "--base-seed"),
    "lm-epochs-nan": (["lm", "--lr", "0.1", "--epochs", "nan", "--out", "{d}/lm"], "--epochs"),
    "lm-option-unknown": ([*_LM, "--lr", "0.1", "--optimizer", "sgd", "--option", "sgd.x=1"], "x"),
    "lm-option-other-optimizer": (
        [*_LM, "--lr", "0.1", "--optimizer", "sgd", "--option", "adagrad.eps=1"],
        "adagrad",
    ),
    "lm-out-empty": (["lm", "--lr", "0.1", "--out", ""], "--out"),
    "lm-jobs-zero": ([*_LM, "--lr", "0.1", "--jobs", "0"], "--jobs"),
    "env-data-home-a-file": (
        ["measure", "--task", "logreg", "--dataset", "w8a", "--out", "m"],
        "$ANISOADA_DATA",
    ),
    "env-data-home-unknown-user": (["data", "list"], "~nosuchuser_xyz"),
}
_WEIGHTS = {
    "w.npz": lambda path: np.savez(path, w=np.zeros(5)),
    "nan.npy": lambda path: np.save(path, np.full(5, np.nan)),
    "c.npy": lambda path: np.save(path, np.ones(5) * 1j),
    "s.npy": lambda path: np.save(path, np.array(["a"] * 5)),
}
_FLAG_FILES: dict[str, dict] = {
    "bound-L-from-an-empty-file": {"empty": ""},
    "bound-L-from-a-binary-file": {"bin": bytes(range(256))},
    "bound-from-a-fifo": {"fifo.npz": fifo},
    "demo-out-a-file": {"f": "a file"},
    "report-results-dir-a-file": {"f": "a file"},
    "report-results-dir-a-fifo": {"fifo": fifo},
    "data-list-home-a-file": {"f": "a file"},
    "data-list-json-home-a-file": {"f": "a file"},
    "data-fetch-home-a-file": {"f": "a file"},
    "data-fetch-wrong-file-present": {"h/libsvm/w8a": "+1 1:1\n-1 2:1\n"},
    "sweep-holdout-nan": {"t.svm": "+1 1:1\n-1 2:1\n"},
    "sweep-holdout-inf": {"t.svm": "+1 1:1\n-1 2:1\n"},
    "lm-dataset-a-libsvm-file": {"t.svm": "+1 1:1\n-1 2:1\n"},
    "lm-dataset-key-twice": {"dup.json": ALPACA_BAD["key-twice"]},
    "measure-problem-without-colon": {"p.py": "def f():\n    return None\n"},
    "measure-problem-no-such-function": {"p.py": "def f():\n    return None\n"},
    "measure-problem-returns-none": {"none.py": "def f():\n    return None\n"},
    "measure-problem-examples-zero": {"p.py": "def f():\n    return None\n"},
}
for name in ("measure-at-an-npz", "measure-at-nan-weights", "measure-at-complex-weights"):
    file_name = FLAGS[name][1]
    _FLAG_FILES[name] = {file_name: _WEIGHTS[file_name]}
_FLAG_FILES["measure-at-string-weights"] = {"s.npy": _WEIGHTS["s.npy"]}
_ENVIRONMENT = {
    "env-data-home-a-file": {"ANISOADA_DATA": "{d}/f"},
    "env-data-home-unknown-user": {"ANISOADA_DATA": "~nosuchuser_xyz/data"},
}
_FLAG_FILES["env-data-home-a-file"] = {"f": "a file"}
for name, (argv, needle) in FLAGS.items():
    case(f"flag-{name}", argv, needle, _FLAG_FILES.get(name))


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    return tmp_path_factory.mktemp("unseen")


@pytest.mark.parametrize("case_", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_with_status_2(case_, corpus_root, capsys, monkeypatch):
    environment = _ENVIRONMENT.get(case_.id.removeprefix("flag-"))
    run_case(case_, corpus_root, capsys, monkeypatch, environment)


# ---------------------------------------------------------------------------------------------
# Odd but valid: read exactly as the plain twin
# ---------------------------------------------------------------------------------------------

_PLAIN = "+1 1:0.5 3:1\n-1 2:1\n+1 1:1 2:0.25\n-1 3:2\n"
LIBSVM_TWINS: dict[str, bytes | str] = {
    "crlf": _PLAIN.replace("\n", "\r\n"),
    "byte-order-mark": "\ufeff" + _PLAIN,
    "byte-order-mark-gzip": gzip.compress(("\ufeff" + _PLAIN).encode()),
    "tabs": _PLAIN.replace(" ", "\t"),
    "vertical-tab-and-form-feed": _PLAIN.replace(" ", "\x0b", 1).replace(" ", "\x0c", 1),
    "qid": _PLAIN.replace("+1 ", "+1 qid:7 ").replace("-1 ", "-1 qid:8 "),
    "labels-2-and-minus-2": _PLAIN.replace("+1", "2").replace("-1", "-2"),
    "labels-0-and-1": _PLAIN.replace("+1", "1").replace("-1", "0"),
    "labels-1.5-and-2": _PLAIN.replace("+1", "2").replace("-1", "1.5"),
    "labels-+1.0-and--1.0": _PLAIN.replace("+1", "+1.0").replace("-1", "-1.0"),
    "comments": "# header\n" + _PLAIN.replace("\n", " # note\n", 2),
    "no-final-newline": _PLAIN.rstrip("\n"),
    "blank-lines": _PLAIN.replace("\n", "\n\n"),
    "leading-zeros": _PLAIN.replace("1:", "01:").replace("3:", "003:"),
    "explicit-zeros": _PLAIN.replace("2:1\n", "1:0 2:1 3:0\n"),
    "exponents": _PLAIN.replace("0.5", "5e-1").replace("0.25", "2.5E-1"),
    "bzip2": bz2.compress(_PLAIN.encode()),
}


@pytest.mark.parametrize("name", sorted(LIBSVM_TWINS))
def test_odd_but_valid_libsvm_reads_as_its_plain_twin(name, tmp_path):
    from anisoada.data import load_libsvm

    plain, odd = tmp_path / "plain.svm", tmp_path / "odd.svm"
    plain.write_text(_PLAIN)
    content = LIBSVM_TWINS[name]
    odd.write_bytes(content if isinstance(content, bytes) else content.encode())
    expected, got = load_libsvm(plain, cache=False), load_libsvm(odd, cache=False)
    assert got.X.shape == expected.X.shape and (got.X != expected.X).nnz == 0
    np.testing.assert_array_equal(got.y, expected.y)
    np.testing.assert_array_equal(got.y, [1.0, -1.0, 1.0, -1.0])


def test_a_line_of_200000_features_reads(tmp_path):
    from anisoada.data import load_libsvm

    path = tmp_path / "wide.svm"
    path.write_text("+1 " + " ".join(f"{j}:{j}" for j in range(1, 200_001)) + "\n-1 7:1\n")
    X, y = load_libsvm(path, cache=False)
    assert X.shape == (2, 200_000) and X.nnz == 200_001
    assert X[0, 199_999] == 200_000.0 and X[1, 6] == 1.0 and y.tolist() == [1.0, -1.0]


_ALPACA = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
    {"instruction": "Reverse", "input": "abc", "output": "cba"},
]
ALPACA_TWINS: dict[str, tuple[str, bytes]] = {
    "byte-order-mark": ("data.json", b"\xef\xbb\xbf" + json.dumps(_ALPACA).encode()),
    "crlf-json-lines": (
        "data.jsonl",
        "".join(json.dumps(r) + "\r\n" for r in _ALPACA).encode(),
    ),
    "blank-lines-between-records": (
        "data.jsonl",
        "\n\n".join(json.dumps(r) for r in _ALPACA).encode(),
    ),
    "extra-keys": (
        "data.json",
        json.dumps([{**r, "id": i, "meta": {"x": None}} for i, r in enumerate(_ALPACA)]).encode(),
    ),
    "bzip2": ("data.json.bz2", bz2.compress(json.dumps(_ALPACA).encode())),
    "byte-order-mark-json-lines": (
        "data.jsonl",
        b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in _ALPACA).encode(),
    ),
}


@pytest.mark.parametrize("name", sorted(ALPACA_TWINS))
def test_odd_but_valid_alpaca_reads_as_its_plain_twin(name, tmp_path):
    from anisoada.data import load_alpaca

    file_name, content = ALPACA_TWINS[name]
    (tmp_path / file_name).write_bytes(content)
    assert [r.to_dict() for r in load_alpaca(tmp_path / file_name)] == _ALPACA


@pytest.mark.parametrize("name", ["byte-order-mark", "crlf", "unicode-name"])
def test_odd_but_valid_sweep_files_read_as_their_plain_twin(name, tmp_path):
    from anisoada.experiments import load_sweep_config

    plain = tmp_path / "sweep.toml"
    plain.write_text('name = "swéep ☃"\n' + _TOML, encoding="utf-8")
    odd = tmp_path / "odd.toml"
    text = plain.read_text(encoding="utf-8")
    odd.write_bytes(
        {
            "byte-order-mark": b"\xef\xbb\xbf" + text.encode(),
            "crlf": text.replace("\n", "\r\n").encode(),
            "unicode-name": text.encode(),
        }[name]
    )
    assert load_sweep_config(odd) == load_sweep_config(plain)
    assert load_sweep_config(odd).name == "swéep ☃"


# ---------------------------------------------------------------------------------------------
# The library's entry points: a named ValueError/FileNotFoundError/TypeError, nothing deeper
# ---------------------------------------------------------------------------------------------


def _api_cases(root: Path) -> dict:
    from anisoada.data import load_alpaca, load_libsvm, load_libsvm_pair
    from anisoada.experiments import load_sweep_config, sweep_config_from_dict

    good = root / "good.svm"
    good.write_text(_PLAIN)
    (root / "pipe").exists() or os.mkfifo(root / "pipe")
    (root / "loop").is_symlink() or (root / "loop").symlink_to(root / "loop")
    (root / "home-file").write_text("x")
    return {
        "libsvm-int": (lambda: load_libsvm(5), TypeError, "int"),
        "libsvm-none": (lambda: load_libsvm(None), TypeError, "NoneType"),
        "libsvm-bytes": (lambda: load_libsvm(bytes(good)), TypeError, "bytes"),
        "libsvm-fifo": (lambda: load_libsvm(root / "pipe"), ValueError, "pipe"),
        "libsvm-looping-link": (lambda: load_libsvm(root / "loop"), FileNotFoundError, "loop"),
        "libsvm-n-features-float": (lambda: load_libsvm(good, n_features=3.0), ValueError, "3.0"),
        "libsvm-n-features-2^40": (lambda: load_libsvm(good, n_features=2**40), ValueError, "2"),
        "libsvm-n-features-too-few": (lambda: load_libsvm(good, n_features=2), ValueError, "3"),
        "libsvm-coding-a-string": (lambda: load_libsvm(good, label_coding="ab"), ValueError, "ab"),
        "libsvm-coding-three": (
            lambda: load_libsvm(good, label_coding=(1, 2, 3)),
            ValueError,
            "label_coding",
        ),
        "libsvm-coding-not-the-labels": (
            lambda: load_libsvm(good, label_coding=(0, 1)),
            ValueError,
            "good.svm",
        ),
        "libsvm-registered-split-unknown": (
            lambda: load_libsvm("a9a", split="dev"),
            ValueError,
            "dev",
        ),
        "libsvm-data-home-a-file": (
            lambda: load_libsvm("w8a", data_home=root / "home-file"),
            ValueError,
            "home-file",
        ),
        "libsvm-holdout-nan": (
            lambda: load_libsvm_pair(good, holdout=float("nan")),
            ValueError,
            "nan",
        ),
        "libsvm-seed-negative": (
            lambda: load_libsvm_pair(good, holdout=0.5, seed=-1),
            ValueError,
            "-1",
        ),
        "libsvm-test-and-holdout": (
            lambda: load_libsvm_pair(good, good, holdout=0.5),
            ValueError,
            "holdout",
        ),
        "alpaca-int": (lambda: load_alpaca(5), TypeError, "int"),
        "alpaca-none": (lambda: load_alpaca(None), TypeError, "NoneType"),
        "alpaca-fifo": (lambda: load_alpaca(root / "pipe"), ValueError, "pipe"),
        "alpaca-limit-negative": (lambda: load_alpaca(good, limit=-1), ValueError, "limit"),
        "alpaca-empty-output-mode": (
            lambda: load_alpaca(good, empty_output="drop"),
            ValueError,
            "drop",
        ),
        "sweep-file-a-directory": (lambda: load_sweep_config(root), FileNotFoundError, str(root)),
        "sweep-file-none": (lambda: load_sweep_config(None), TypeError, "NoneType"),
        "sweep-file-int": (lambda: load_sweep_config(5), TypeError, "int"),
        "sweep-dict-a-list": (lambda: sweep_config_from_dict([]), TypeError, "[]"),
        "sweep-dict-empty": (lambda: sweep_config_from_dict({}), ValueError, "budget"),
    }


API_CASE_NAMES = [
    "libsvm-int",
    "libsvm-none",
    "libsvm-bytes",
    "libsvm-fifo",
    "libsvm-looping-link",
    "libsvm-n-features-float",
    "libsvm-n-features-2^40",
    "libsvm-n-features-too-few",
    "libsvm-coding-a-string",
    "libsvm-coding-three",
    "libsvm-coding-not-the-labels",
    "libsvm-registered-split-unknown",
    "libsvm-data-home-a-file",
    "libsvm-holdout-nan",
    "libsvm-seed-negative",
    "libsvm-test-and-holdout",
    "alpaca-int",
    "alpaca-none",
    "alpaca-fifo",
    "alpaca-limit-negative",
    "alpaca-empty-output-mode",
    "sweep-file-a-directory",
    "sweep-file-none",
    "sweep-file-int",
    "sweep-dict-a-list",
    "sweep-dict-empty",
]


@pytest.mark.parametrize("name", API_CASE_NAMES)
def test_the_library_entry_points_raise_a_named_error(name, tmp_path):
    check_named_error(*_api_cases(tmp_path)[name])


def test_every_api_case_is_listed(tmp_path):
    assert sorted(_api_cases(tmp_path)) == sorted(API_CASE_NAMES)


# ---------------------------------------------------------------------------------------------
# Results stores: damage is redone, a newer format refused, a second writer refused
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("stored") / "out"
    assert main([*TINY_SWEEP, "--out", str(out)]) == 0
    return out


def _rows(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "results.parquet").drop(columns=["train_time"])


def _damage_run(out: Path, how: str) -> Path:
    info = next(out.glob("runs/*/run.json"))
    rows = info.parent / "rows.parquet"
    record = json.loads(info.read_text())
    if how == "another run's record":
        info.write_text(json.dumps({**record, "run_id": "0123456789abcdef"}))
    elif how == "an empty record":
        info.write_text("{}")
    elif how == "rows of another schema":
        pd.DataFrame({"x": [1, 2]}).to_parquet(rows)
    elif how == "no rows":
        pd.read_parquet(rows).iloc[:0].to_parquet(rows)
    elif how == "learning rates as text":
        table = pd.read_parquet(rows)
        table["lr"] = table["lr"].astype(str)
        table.to_parquet(rows)
    return info.parent


@pytest.mark.parametrize(
    "how",
    [
        "another run's record",
        "an empty record",
        "rows of another schema",
        "no rows",
        "learning rates as text",
    ],
)
def test_a_damaged_run_is_redone_to_the_same_rows(how, stored_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(stored_sweep, out)
    directory = _damage_run(out, how)
    capsys.readouterr()
    assert main([*TINY_SWEEP, "--out", str(out)]) == 0
    error = capsys.readouterr().err
    assert f"run directory {directory} is damaged" in error and "redoing the run" in error
    pd.testing.assert_frame_equal(_rows(out), _rows(stored_sweep))


def test_a_run_of_a_newer_store_format_is_refused_and_left_alone(stored_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(stored_sweep, out)
    info = next(out.glob("runs/*/run.json"))
    newer = {**json.loads(info.read_text()), "store_format": 99}
    info.write_text(json.dumps(newer))
    capsys.readouterr()
    status = main([*TINY_SWEEP, "--out", str(out)])
    check_one_line(status, capsys.readouterr().err, "newer anisoada", "newer-store")
    assert json.loads(info.read_text()) == newer


@pytest.mark.parametrize(
    ("where", "make"),
    [
        ("runs/{run}/run.json", "directory"),
        ("runs/{run}", "file"),
        ("runs", "file"),
        ("results.parquet", "directory"),
        ("selection.csv", "directory"),
        ("sweep.toml", "directory"),
    ],
)
def test_a_path_of_the_wrong_kind_in_a_store_is_named(where, make, stored_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(stored_sweep, out)
    run = next(out.glob("runs/*")).name
    path = out / where.format(run=run)
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.mkdir() if make == "directory" else path.write_text("in the way")
    kept = sorted(p.read_bytes() for p in out.glob("runs/*/rows.parquet"))
    capsys.readouterr()
    status = main([*TINY_SWEEP, "--out", str(out)])
    named = path.parent if path.name == "run.json" else path  # "delete <run directory>"
    check_one_line(status, capsys.readouterr().err, str(named), where)
    assert sorted(p.read_bytes() for p in out.glob("runs/*/rows.parquet")) == kept


@pytest.mark.parametrize("target", ["loop", "missing"])
def test_an_output_directory_that_is_a_broken_link_is_named(target, tmp_path, capsys):
    out = tmp_path / "out"
    out.symlink_to(out if target == "loop" else tmp_path / "nowhere" / "deeper")
    status = main([*TINY_SWEEP, "--out", str(out)])
    check_one_line(status, capsys.readouterr().err, str(out), target)


def test_a_second_writer_of_a_store_is_refused(stored_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(stored_sweep, out)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom anisoada.experiments.store import ResultsStore\n"
            "store = ResultsStore(sys.argv[1])\nstore.prepare()\nprint('held', flush=True)\n"
            "time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        status = main([*TINY_SWEEP, "--out", str(out)])
        error = capsys.readouterr().err
        check_one_line(status, error, str(out), "second writer")
        assert f"pid {holder.pid}" in error
    finally:
        holder.kill()
        holder.wait()
    # Once the first writer is gone the directory is free again, and nothing was lost.
    assert main([*TINY_SWEEP, "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(_rows(out), _rows(stored_sweep))


def test_warnings_are_one_line_each(tmp_path, capsys):
    (tmp_path / "cache").write_text("a file where the cache directory goes")
    data = tmp_path / "data.svm"
    data.write_text(_PLAIN)
    home = tmp_path / "home"
    (home / "libsvm").mkdir(parents=True)
    (home / "libsvm" / "cache").write_text("in the way")
    argv = ["measure", "--task", "logreg", "--dataset", str(data), "--data-home", str(home)]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(line.startswith("anisoada measure: warning: ") for line in lines)
    assert "could not write the cache" in lines[0] and "[Errno" not in lines[0]


# ---------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM in the middle of a sweep
# ---------------------------------------------------------------------------------------------

_LONG_SWEEP = [
    "sweep",
    "--dataset",
    "synthetic",
    "--optimizer",
    "sgd,adagrad",
    "--batch-sizes",
    "4,8,16",
    "--samples",
    "200000",
    "--lr-grid",
    "0.01:1:1",
    "--max-extensions",
    "0",
    "--evaluations",
    "3",
    "--quiet",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sent", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_a_signal_mid_sweep_ends_in_one_line_and_a_rerun_resumes(sent, status, word, tmp_path):
    out = tmp_path / "out"
    environment = {**os.environ, "ANISOADA_DATA": str(tmp_path / "home")}
    environment.pop("ANISOADA_TRACEBACK", None)
    command = [sys.executable, "-m", "anisoada", *_LONG_SWEEP, "--out", str(out)]
    # A suite started in the background (``cmd &``, nohup) hands its children SIGINT ignored,
    # and Python then leaves it ignored: the child starts with the default disposition, as a
    # command typed at a terminal does.
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=environment,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(out.glob("runs/*/run.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the sweep ended before the signal"
    process.send_signal(sent)
    _, error = process.communicate(timeout=120)
    assert process.returncode == status, error
    assert "Traceback" not in error
    assert error.strip().splitlines()[-1] == (
        f"anisoada sweep: {word}; finished runs are stored and a re-run resumes from them"
    )
    assert list(out.rglob("*.tmp")) == []
    finished = {path.parent.name for path in out.glob("runs/*/run.json")}
    assert finished
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "reference"
    again = [*command[:-1], str(reference)]
    assert subprocess.run(again, capture_output=True, env=environment, timeout=600).returncode == 0
    pd.testing.assert_frame_equal(_rows(out), _rows(reference))


def test_the_new_corpus_is_large_enough():
    total = len(CASES) + len(LIBSVM_TWINS) + len(ALPACA_TWINS) + len(API_CASE_NAMES) + 3 + 1
    total += 5 + 1 + 6 + 2 + 1 + 1 + 2  # the store, warning and signal cases
    assert total >= 150
    assert len({c.id for c in CASES}) == len(CASES)
