"""A corpus of malformed inputs: each ends in one line on stderr naming the input, exit status 2.

Every case runs ``anisoada.cli.main([...])`` in this process (a handful go through a real
subprocess at the end) and must:

* return 2 (never raise, never 0 for bad input, never 1, the status of an internal error);
* print exactly one line on stderr, ``anisoada <command>: error: …``, with no traceback and no
  Python internals (``np.float64(``, ``Traceback``, ``internal error``, ``Errno``);
* name what was wrong: the file, flag or key (each case says which text must appear).

The corpus covers LIBSVM files, Alpaca JSON/JSONL, sweep TOML, command-line flags,
measurement files, results directories and a failing file system (read-only, full, a path
through a regular file); the store cases also check that finished runs survive the failure.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import json
import lzma
import os
import subprocess
import sys

import numpy as np
import pytest
from corpus import TINY_SWEEP, Case, check_one_line, run_case, sweep_file_cases

from anisoada.cli import main

CASES: list[Case] = []


def case(id: str, argv: list[str], needle: str, **files: bytes | str) -> None:
    files = {name.replace("__", "."): content for name, content in files.items()}
    CASES.append(Case(id, tuple(argv), needle, files))


# ---------------------------------------------------------------------------------------------
# LIBSVM files, read by `measure --task logreg` (and a few by `sweep --dataset FILE`)
# ---------------------------------------------------------------------------------------------

_GOOD_LIBSVM = "+1 1:0.5 3:1\n-1 2:1\n+1 1:1 2:0.25\n-1 3:2\n"
LIBSVM_BAD: dict[str, bytes | str] = {
    "empty": "",
    "whitespace": "   \n\n \t \n",
    "comments-only": "# a comment\n# another\n",
    "huge-index": "1 1000000000000:1\n-1 1:1\n",
    "index-2^31": "1 2147483648:1\n-1 1:1\n",
    "negative-index": "1 -3:1\n-1 1:1\n",
    "index-not-number": "1 a:1\n-1 1:1\n",
    "value-not-number": "1 1:abc\n-1 1:1\n",
    "value-nan": "1 1:nan\n-1 1:1\n",
    "value-inf": "1 1:inf\n-1 1:1\n",
    "label-text": "yes 1:1\n-1 1:1\n",
    "label-nan": "nan 1:1\n-1 1:1\n",
    "label-inf": "inf 1:1\n-1 2:1\n",
    "missing-colon": "1 1 2\n-1 1:1\n",
    "empty-value": "1 1:\n-1 1:1\n",
    "empty-index": "1 :1\n-1 1:1\n",
    "double-colon": "1 1::1\n-1 1:1\n",
    "three-classes": "1 1:1\n2 1:1\n3 2:1\n",
    "one-class": "1 1:1\n1 2:1\n1 3:1\n",
    "binary-garbage": bytes(range(256)) * 4,
    "nul-bytes": b"1 1:1\x00\x00\n-1 1:1\n",
    "utf16": "1 1:1\n-1 2:1\n".encode("utf-16"),
    "latin1-label": "\xe9 1:1\n-1 1:1\n".encode("latin-1"),
    "json-instead": '{"a": 1}\n',
    "csv-instead": "label,f1,f2\n1,0.5,1\n0,1,0\n",
    "multilabel": "1,2 1:1\n-1 1:1\n",
    "only-labels-one-class": "1\n1\n",
    "value-overflow": "1 1:1e999\n-1 1:1\n",
    "label-overflow": "1e999 1:1\n-1 1:1\n",
    "long-garbage-line": "1 " + "x" * 100_000 + "\n-1 1:1\n",
    "tab-separated-bad": "1\t1=1\n-1\t1=2\n",
    "qid-only": "qid:3\n",
    "index-float": "1 1.5:1\n-1 1:1\n",
    "index-hex": "1 0x1f:1\n-1 1:1\n",
    "pipe-garbage": "|||\n:::\n",
    "html": "<html><body>Not Found</body></html>\n",
    "lone-colon": "1 :\n-1 1:1\n",
}
for name, content in LIBSVM_BAD.items():
    case(
        f"libsvm-{name}",
        ["measure", "--task", "logreg", "--dataset", "{d}/data.svm", "--out", "{d}/m"],
        "{d}/data.svm",
        data__svm=content,
    )
for suffix, compress in (("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)):
    packed = compress(_GOOD_LIBSVM.encode() * 50)
    for how, data in (
        ("truncated", packed[: len(packed) // 2]),
        ("garbage", packed[:10] + b"\x00" * 40 + packed[50:]),
        ("header-only", packed[:6]),
        ("of-garbage", compress(bytes(range(256)) * 8)),
        ("of-empty", compress(b"")),
    ):
        case(
            f"libsvm-{suffix}-{how}",
            [
                "measure",
                "--task",
                "logreg",
                "--dataset",
                f"{{d}}/data.svm.{suffix}",
                "--out",
                "{d}/m",
            ],
            f"{{d}}/data.svm.{suffix}",
            **{f"data__svm__{suffix}": data},
        )
case(
    "libsvm-directory",
    ["measure", "--task", "logreg", "--dataset", "{d}/folder.svm", "--out", "{d}/m"],
    "{d}/folder.svm",
    **{"folder.svm/inner": "x"},
)
case(
    "libsvm-missing-file",
    ["measure", "--task", "logreg", "--dataset", "{d}/absent.svm", "--out", "{d}/m"],
    "absent.svm",
)
for name in ("empty", "huge-index", "three-classes", "binary-garbage", "value-nan"):
    case(
        f"libsvm-sweep-{name}",
        [
            "sweep",
            "--dataset",
            "{d}/train.svm",
            "--holdout",
            "0.25",
            "--optimizer",
            "sgd",
            "--batch-sizes",
            "2",
            "--samples",
            "8",
            "--out",
            "{d}/out",
            "--quiet",
        ],
        "{d}/train.svm",
        train__svm=LIBSVM_BAD[name],
    )
for name in ("empty", "huge-index", "label-text"):
    case(
        f"libsvm-test-file-{name}",
        [
            "sweep",
            "--dataset",
            "{d}/train.svm",
            "--test",
            "{d}/test.svm",
            "--optimizer",
            "sgd",
            "--batch-sizes",
            "2",
            "--samples",
            "8",
            "--out",
            "{d}/out",
            "--quiet",
        ],
        "{d}/test.svm",
        train__svm=_GOOD_LIBSVM,
        test__svm=LIBSVM_BAD[name],
    )
for holdout in ("0", "1", "-0.5", "2", "abc", "0.99"):
    case(
        f"libsvm-holdout-{holdout}",
        [
            "sweep",
            "--dataset",
            "{d}/train.svm",
            "--holdout",
            holdout,
            "--optimizer",
            "sgd",
            "--batch-sizes",
            "2",
            "--samples",
            "8",
            "--out",
            "{d}/out",
            "--quiet",
        ],
        "holdout",
        train__svm=_GOOD_LIBSVM,
    )

# ---------------------------------------------------------------------------------------------
# Alpaca JSON / JSON Lines, read by `measure --task lm --data FILE`
# ---------------------------------------------------------------------------------------------

_RECORD = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
ALPACA_BAD: dict[str, bytes | str] = {
    "empty": "",
    "whitespace": "  \n\n",
    "empty-list": "[]",
    "deep-array": "[" * 100_000 + "]" * 100_000,
    "deep-object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "data-wrapper": json.dumps({"data": [_RECORD]}),
    "single-object": json.dumps(_RECORD),
    "number": "42",
    "string": '"hello"',
    "null": "null",
    "list-of-numbers": "[1, 2, 3]",
    "list-of-lists": "[[1], [2]]",
    "missing-instruction": json.dumps([{"input": "", "output": "5"}]),
    "missing-output": json.dumps([{"instruction": "Add", "input": ""}]),
    "instruction-number": json.dumps([{"instruction": 5, "input": "", "output": "5"}]),
    "output-list": json.dumps([{"instruction": "a", "input": "", "output": ["5"]}]),
    "input-object": json.dumps([{"instruction": "a", "input": {"x": 1}, "output": "5"}]),
    "instruction-empty": json.dumps([{"instruction": "", "input": "", "output": "5"}]),
    "instruction-blank": json.dumps([{"instruction": "  \n", "input": "", "output": "5"}]),
    "truncated": json.dumps([_RECORD] * 5)[:-7],
    "trailing-comma": '[{"instruction": "a", "output": "b"},]',
    "single-quotes": "[{'instruction': 'a', 'output': 'b'}]",
    "nan-literal": '[{"instruction": NaN, "output": "b"}]',
    "huge-int": '[{"instruction": ' + "9" * 10_000 + ', "output": "b"}]',
    "binary": bytes(range(256)) * 4,
    "utf16": json.dumps([_RECORD]).encode("utf-16"),
    "invalid-utf8": b'[{"instruction": "\xff\xfe", "output": "b"}]',
    "jsonl-bad-line": json.dumps(_RECORD) + "\n{not json}\n",
    "jsonl-number-line": json.dumps(_RECORD) + "\n7\n",
    "jsonl-missing-key": json.dumps(_RECORD) + '\n{"instruction": "x"}\n',
    "html": "<html><body>Rate limited</body></html>",
    "csv": "instruction,input,output\nAdd,,5\n",
    "lone-surrogate": '[{"instruction": "\\ud800", "output": "b"}]',
    "duplicate-keys-ok-but-nested": '[{"instruction": {"instruction": "a"}, "output": "b"}]',
}
for name, content in ALPACA_BAD.items():
    case(
        f"alpaca-{name}",
        ["measure", "--task", "lm", "--data", "{d}/data.json", "--out", "{d}/m"],
        "{d}/data.json",
        data__json=content,
    )
for suffix, compress in (("gz", gzip.compress), ("xz", lzma.compress)):
    packed = compress(json.dumps([_RECORD] * 50).encode())
    case(
        f"alpaca-{suffix}-truncated",
        ["measure", "--task", "lm", "--data", f"{{d}}/data.json.{suffix}", "--out", "{d}/m"],
        f"{{d}}/data.json.{suffix}",
        **{f"data__json__{suffix}": packed[: len(packed) // 2]},
    )
    case(
        f"alpaca-{suffix}-of-garbage",
        ["measure", "--task", "lm", "--data", f"{{d}}/data.json.{suffix}", "--out", "{d}/m"],
        f"{{d}}/data.json.{suffix}",
        **{f"data__json__{suffix}": compress(bytes(range(256)))},
    )
case(
    "alpaca-missing",
    ["measure", "--task", "lm", "--data", "{d}/absent.json", "--out", "{d}/m"],
    "absent.json",
)
case(
    "alpaca-directory",
    ["measure", "--task", "lm", "--data", "{d}/folder.json", "--out", "{d}/m"],
    "folder.json",
    **{"folder.json/x": "1"},
)

# ---------------------------------------------------------------------------------------------
# Sweep TOML files
# ---------------------------------------------------------------------------------------------

_TOML = """\
batch_sizes = [4]
{top}
[budget]
{budget}

[[datasets]]
name = "toy"
source = "synthetic"
{dataset}

[[optimizers]]
name = "sgd"
{optimizer}
{tail}
"""


def _toml(top="", budget="samples = 16", dataset="n = 40\nd = 5", optimizer="", tail=""):
    return _TOML.format(top=top, budget=budget, dataset=dataset, optimizer=optimizer, tail=tail)


TOML_BAD: dict[str, tuple[str | bytes, str]] = {
    # (file content, text the message must contain)
    "not-toml": ("batch_sizes = [4\n", "not valid TOML"),
    "not-utf8": (b'name = "\xff\xfe"\n', "not UTF-8"),
    "binary": (bytes(range(256)), "sweep.toml"),
    "empty": ("", "budget"),
    "unknown-top-key": (_toml(top="colour = 1"), "colour"),
    "batch-true": (_toml().replace("[4]", "[true]"), "batch_sizes"),
    "batch-zero": (_toml().replace("[4]", "[0]"), "batch_sizes"),
    "batch-negative": (_toml().replace("[4]", "[-4]"), "batch_sizes"),
    "batch-float": (_toml().replace("[4]", "[4.5]"), "batch_sizes"),
    "batch-string": (_toml().replace("[4]", '["4"]'), "batch_sizes"),
    "batch-empty": (_toml().replace("[4]", "[]"), "batch_sizes"),
    "batch-scalar": (_toml().replace("[4]", "4"), "batch_sizes"),
    "batch-missing": (_toml().replace("batch_sizes = [4]", ""), "batch_sizes"),
    "budget-missing": (_toml().replace("[budget]\nsamples = 16", ""), "budget"),
    "budget-number": (
        _toml(top="budget = 5").replace("[budget]\nsamples = 16\n", ""),
        "budget",
    ),
    "budget-empty": (_toml(budget=""), "budget"),
    "budget-two": (_toml(budget="samples = 16\nepochs = 1"), "budget"),
    "budget-unknown": (_toml(budget="minutes = 5"), "minutes"),
    "budget-epochs-string": (_toml(budget='epochs = "1"'), "epoch"),
    "budget-samples-zero": (_toml(budget="samples = 0"), "budget"),
    "budget-samples-negative": (_toml(budget="samples = -16"), "budget"),
    "budget-samples-float": (_toml(budget="samples = 1.5"), "budget"),
    "budget-steps-bool": (_toml(budget="steps = true"), "budget"),
    "budget-epochs-nan": (_toml(budget="epochs = nan"), "budget"),
    "budget-epochs-inf": (_toml(budget="epochs = inf"), "budget"),
    "budget-below-one-batch": (
        _toml(budget="samples = 2").replace("[4]", "[100000]"),
        "batch size",
    ),
    "seeds-zero": (_toml(top="seeds = 0"), "seeds"),
    "seeds-string": (_toml(top='seeds = "3"'), "seeds"),
    "seeds-float": (_toml(top="seeds = 2.5"), "seeds"),
    "base-seed-negative": (_toml(top="base_seed = -1"), "seed"),
    "base-seed-string": (_toml(top='base_seed = "x"'), "seed"),
    "evaluations-zero": (_toml(top="evaluations = 0"), "evaluations"),
    "evaluations-bool": (_toml(top="evaluations = true"), "evaluations"),
    "vectorize-string": (_toml(top='vectorize = "no"'), "vectorize"),
    "vectorize-int": (_toml(top="vectorize = 1"), "vectorize"),
    "divergence-negative": (_toml(top="divergence_factor = -1"), "divergence"),
    "divergence-string": (_toml(top='divergence_factor = "big"'), "divergence"),
    "tuning-seeds-too-many": (_toml(top="seeds = 2\ntuning_seeds = 5"), "tuning_seeds"),
    "tuning-seeds-zero": (_toml(top="tuning_seeds = 0"), "tuning_seeds"),
    "baseline-unknown": (_toml(top='baseline = "adam"'), "adam"),
    "name-number": (_toml(top="name = 5"), "name"),
    "selection-not-table": (_toml(top="selection = 3"), "selection"),
    "selection-unknown": (_toml(tail="[selection]\nwidth = 3"), "width"),
    "selection-window-zero": (_toml(tail="[selection]\nwindow = 0"), "window"),
    "selection-tolerance-negative": (_toml(tail="[selection]\ntolerance = -1"), "tolerance"),
    "lr-grid-not-table": (_toml(top='lr_grid = "1e-2:1"'), "lr_grid"),
    "lr-grid-low-string": (_toml(tail='[lr_grid]\nlow = "a"'), "low"),
    "lr-grid-low-zero": (_toml(tail="[lr_grid]\nlow = 0.0"), "low"),
    "lr-grid-low-negative": (_toml(tail="[lr_grid]\nlow = -1.0"), "low"),
    "lr-grid-inverted": (_toml(tail="[lr_grid]\nlow = 10.0\nhigh = 0.1"), "lr"),
    "lr-grid-per-decade-zero": (_toml(tail="[lr_grid]\nper_decade = 0"), "per_decade"),
    "lr-grid-per-decade-float": (_toml(tail="[lr_grid]\nper_decade = 1.5"), "per_decade"),
    "lr-grid-extensions-negative": (_toml(tail="[lr_grid]\nmax_extensions = -1"), "extensions"),
    "lr-grid-unknown-key": (_toml(tail="[lr_grid]\nstep = 2"), "step"),
    "lr-grid-values-empty": (_toml(tail="[lr_grid]\nvalues = []"), "values"),
    "lr-grid-values-strings": (_toml(tail='[lr_grid]\nvalues = ["a"]'), "lr"),
    "lr-grid-values-and-low": (_toml(tail="[lr_grid]\nvalues = [0.1]\nlow = 0.01"), "values"),
    "datasets-not-array": (
        _toml()
        .replace('[[datasets]]\nname = "toy"\nsource = "synthetic"\nn = 40\nd = 5', "")
        .replace("batch_sizes = [4]", "batch_sizes = [4]\ndatasets = 5"),
        "datasets",
    ),
    "dataset-no-name": (_toml().replace('name = "toy"\n', ""), "name"),
    "dataset-source-unknown": (_toml().replace('"synthetic"', '"mnist"'), "mnist"),
    "dataset-n-negative": (_toml(dataset="n = -5"), "n"),
    "dataset-n-string": (_toml(dataset='n = "x"'), "option n"),
    "dataset-n-float": (_toml(dataset="n = 40.5"), "option n"),
    "dataset-d-zero": (_toml(dataset="d = 0"), "option d"),
    "dataset-density-two": (_toml(dataset="density = 2.0"), "density"),
    "dataset-unknown-option": (_toml(dataset="colour = 1"), "colour"),
    "dataset-libsvm-unknown-name": (
        _toml().replace('name = "toy"\nsource = "synthetic"', 'name = "nosuchset"'),
        "nosuchset",
    ),
    "dataset-duplicate-name": (
        _toml(tail='[[datasets]]\nname = "toy"\nsource = "synthetic"'),
        "toy",
    ),
    "problems-unknown-kind": (_toml(tail='[[problems]]\nkind = "svm"'), "svm"),
    "problem-quadratic-dim-zero": (_toml(tail='[[problems]]\nkind = "quadratic"\ndim = 0'), "dim"),
    "problem-quadratic-unknown": (
        _toml(tail='[[problems]]\nkind = "quadratic"\nwidth = 3'),
        "width",
    ),
    "problem-lm-bad-model": (_toml(tail='[[problems]]\nkind = "lm"\nmodel = "gpt5"'), "gpt5"),
    "problem-lm-data-not-table": (_toml(tail='[[problems]]\nkind = "lm"\ndata = 5'), "data"),
    "optimizers-missing": (_toml().replace('[[optimizers]]\nname = "sgd"', ""), "optimizer"),
    "optimizer-unknown": (_toml().replace('name = "sgd"', 'name = "adam"'), "adam"),
    "optimizer-no-name": (_toml().replace('name = "sgd"', 'label = "x"'), "name"),
    "optimizer-name-number": (_toml().replace('name = "sgd"', "name = 5"), "optimizer"),
    "optimizer-unknown-key": (_toml(optimizer="colour = 1"), "colour"),
    "optimizer-option-unknown": (_toml(optimizer="options = { nope = 1 }"), "nope"),
    "optimizer-options-number": (_toml(optimizer="options = 5"), "options"),
    "optimizer-option-bad-value": (
        _toml().replace('name = "sgd"', 'name = "adagrad"\noptions = { eps = -1.0 }'),
        "eps",
    ),
    "optimizer-option-wrong-type": (
        _toml().replace('name = "sgd"', 'name = "adagrad"\noptions = { eps = "small" }'),
        "eps",
    ),
    "optimizer-eps-placement": (
        _toml().replace('name = "sgd"', 'name = "adagrad"\noptions = { eps_placement = "x" }'),
        "eps_placement",
    ),
    "optimizer-lr-grid-list": (_toml(optimizer="lr_grid = []"), "lr_grid"),
    "optimizer-lr-grid-string": (_toml(optimizer='lr_grid = "1e-2:1"'), "lr_grid"),
    "optimizer-lr-grid-low-zero": (_toml(optimizer="lr_grid = { low = 0.0 }"), "low"),
    "optimizer-duplicate-label": (_toml(tail='[[optimizers]]\nname = "sgd"'), "sgd"),
    "optimizer-label-number": (_toml(optimizer="label = 3"), "label"),
}
CASES.extend(sweep_file_cases(TOML_BAD, file="sweep.toml"))
case("toml-missing", ["sweep", "{d}/absent.toml", "--out", "{d}/out"], "absent.toml")
case(
    "toml-directory",
    ["sweep", "{d}/folder.toml", "--out", "{d}/out"],
    "folder.toml",
    **{"folder.toml/x": "1"},
)
case(
    "toml-only-unknown",
    ["sweep", "{d}/sweep.toml", "--only", "nosuch", "--out", "{d}/out"],
    "nosuch",
    sweep__toml=_toml(),
)

# ---------------------------------------------------------------------------------------------
# Command-line flags of every command
# ---------------------------------------------------------------------------------------------

_SWEEP = ["sweep", "--dataset", "synthetic", "--optimizer", "sgd", "--out", "{d}/out", "--quiet"]
FLAGS: dict[str, tuple[list[str], str]] = {
    "unknown-command": (["frobnicate"], "frobnicate"),
    "unknown-top-flag": (["--colour"], "--colour"),
    "sweep-unknown-flag": ([*_SWEEP, "--batch-sizes", "4", "--colour", "red"], "--colour"),
    "sweep-batch-sizes-text": ([*_SWEEP, "--batch-sizes", "a,b"], "batch-sizes"),
    "sweep-batch-sizes-zero": ([*_SWEEP, "--batch-sizes", "0"], "batch"),
    "sweep-batch-sizes-negative": ([*_SWEEP, "--batch-sizes", "4,-8"], "batch"),
    "sweep-batch-sizes-float": ([*_SWEEP, "--batch-sizes", "4.5"], "batch-sizes"),
    "sweep-batch-sizes-empty": ([*_SWEEP, "--batch-sizes", ","], "batch-sizes"),
    "sweep-batch-sizes-missing-value": ([*_SWEEP, "--batch-sizes"], "batch-sizes"),
    "sweep-no-batch-sizes": (_SWEEP, "--batch-sizes"),
    "sweep-no-out": (["sweep", "--dataset", "synthetic"], "--out"),
    "sweep-unknown-dataset": (
        [
            "sweep",
            "--dataset",
            "nosuchset",
            "--optimizer",
            "sgd",
            "--batch-sizes",
            "4",
            "--out",
            "{d}/out",
        ],
        "nosuchset",
    ),
    "sweep-unknown-optimizer": (
        [
            "sweep",
            "--dataset",
            "synthetic",
            "--optimizer",
            "adam",
            "--batch-sizes",
            "4",
            "--out",
            "{d}/out",
        ],
        "adam",
    ),
    "sweep-option-unknown": (
        [*_SWEEP, "--batch-sizes", "4", "--option", "sgd.nope=1"],
        "nope",
    ),
    "sweep-option-no-equals": ([*_SWEEP, "--batch-sizes", "4", "--option", "sgd.eps"], "sgd.eps"),
    "sweep-option-other-optimizer": (
        [*_SWEEP, "--batch-sizes", "4", "--option", "adagrad.eps=1"],
        "adagrad",
    ),
    "sweep-option-without-optimizer": (
        [
            "sweep",
            "--dataset",
            "synthetic",
            "--batch-sizes",
            "4",
            "--option",
            "sgd.x=1",
            "--out",
            "{d}/out",
        ],
        "--option",
    ),
    "sweep-lr-grid-text": ([*_SWEEP, "--batch-sizes", "4", "--lr-grid", "a:b"], "lr-grid"),
    "sweep-lr-grid-one": ([*_SWEEP, "--batch-sizes", "4", "--lr-grid", "0.1"], "lr-grid"),
    "sweep-lr-grid-inverted": ([*_SWEEP, "--batch-sizes", "4", "--lr-grid", "1:0.1"], "lr"),
    "sweep-lr-grid-zero": ([*_SWEEP, "--batch-sizes", "4", "--lr-grid", "0:1"], "low"),
    "sweep-seeds-zero": ([*_SWEEP, "--batch-sizes", "4", "--seeds", "0"], "seeds"),
    "sweep-seeds-text": ([*_SWEEP, "--batch-sizes", "4", "--seeds", "many"], "seeds"),
    "sweep-jobs-zero": ([*_SWEEP, "--batch-sizes", "4", "--jobs", "0"], "jobs"),
    "sweep-samples-zero": ([*_SWEEP, "--batch-sizes", "4", "--samples", "0"], "samples"),
    "sweep-samples-text": ([*_SWEEP, "--batch-sizes", "4", "--samples", "lots"], "samples"),
    "sweep-epochs-negative": ([*_SWEEP, "--batch-sizes", "4", "--epochs", "-1"], "epochs"),
    "sweep-samples-and-epochs": (
        [*_SWEEP, "--batch-sizes", "4", "--samples", "8", "--epochs", "1"],
        "epochs",
    ),
    "sweep-budget-below-one-batch": (
        [*_SWEEP, "--batch-sizes", "100000", "--samples", "1600"],
        "batch size",
    ),
    "sweep-evaluations-zero": (
        [*_SWEEP, "--batch-sizes", "4", "--evaluations", "0"],
        "evaluations",
    ),
    "sweep-max-extensions-negative": (
        [*_SWEEP, "--batch-sizes", "4", "--max-extensions", "-1"],
        "extensions",
    ),
    "sweep-only-without-file": ([*_SWEEP, "--batch-sizes", "4", "--only", "x"], "--only"),
    "sweep-test-without-file-dataset": (
        [*_SWEEP, "--batch-sizes", "4", "--test", "{d}/t.svm"],
        "--test",
    ),
    "sweep-holdout-and-test": (
        [*_SWEEP, "--batch-sizes", "4", "--holdout", "0.2", "--test", "x"],
        "--test",
    ),
    "reproduce-unknown-target": (["reproduce", "nosuchtarget", "--out", "{d}/r"], "nosuchtarget"),
    "reproduce-unknown-preset": (["reproduce", "--preset", "huge", "--out", "{d}/r"], "huge"),
    "reproduce-jobs-zero": (["reproduce", "--jobs", "0", "--out", "{d}/r"], "jobs"),
    "bound-nothing": (["bound"], "--from"),
    "bound-only-L": (["bound", "--L", "1,2"], "--sigma"),
    "bound-L-text": (["bound", "--L", "1,x", "--sigma", "1,1"], "--L"),
    "bound-L-empty": (["bound", "--L", ",", "--sigma", "1,1"], "--L"),
    "bound-L-negative": (["bound", "--L", "1,-2", "--sigma", "1,1"], "L"),
    "bound-L-nan": (["bound", "--L", "1,nan", "--sigma", "1,1"], "L"),
    "bound-L-inf": (["bound", "--L", "1,inf", "--sigma", "1,1"], "L"),
    "bound-sigma-length": (["bound", "--L", "1,2", "--sigma", "1,1,1"], "sigma"),
    "bound-L-file-missing": (["bound", "--L", "@{d}/absent.txt", "--sigma", "1,1"], "absent.txt"),
    "bound-batch-zero": (["bound", "--L", "1,2", "--sigma", "1,1", "--batch-sizes", "0"], "batch"),
    "bound-batch-text": (["bound", "--L", "1,2", "--sigma", "1", "--batch-sizes", "a"], "batch"),
    "bound-batch-over-budget": (
        ["bound", "--L", "1,2", "--sigma", "1,1", "--batch-sizes", "10", "--samples", "5"],
        "budget",
    ),
    "bound-budget-zero": (["bound", "--L", "1,2", "--sigma", "1,1", "--samples", "0"], "--samples"),
    "bound-budget-text": (["bound", "--L", "1,2", "--sigma", "1,1", "--samples", "x"], "samples"),
    "bound-budget-nan": (
        ["bound", "--L", "1,2", "--sigma", "1,1", "--samples", "nan"],
        "--samples",
    ),
    "bound-setting-unknown": (
        ["bound", "--L", "1,2", "--sigma", "1,1", "--setting", "weird"],
        "weird",
    ),
    "bound-nonconvex-no-delta": (
        ["bound", "--L", "1,2", "--sigma", "1,1", "--setting", "nonconvex"],
        "--delta",
    ),
    "bound-delta-convex": (["bound", "--L", "1,2", "--sigma", "1,1", "--delta", "1"], "--delta"),
    "bound-L0-only": (
        [
            "bound",
            "--L",
            "1,2",
            "--sigma",
            "1,1",
            "--setting",
            "nonconvex",
            "--delta",
            "1",
            "--L0",
            "1,1",
        ],
        "--L1",
    ),
    "bound-L0-convex": (
        ["bound", "--L", "1,2", "--sigma", "1,1", "--L0", "1,1", "--L1", "1,1"],
        "--L0",
    ),
    "bound-G-nonconvex": (
        [
            "bound",
            "--L",
            "1,2",
            "--sigma",
            "1,1",
            "--setting",
            "nonconvex",
            "--delta",
            "1",
            "--G",
            "1,1",
        ],
        "--G",
    ),
    "bound-D-inf-zero": (["bound", "--L", "1,2", "--sigma", "1,1", "--D-inf", "0"], "D_inf"),
    "bound-D-2-inconsistent": (
        ["bound", "--L", "1,2", "--sigma", "1,1", "--D-inf", "1", "--D-2", "100"],
        "D_2",
    ),
    "bound-lambda-max-negative": (
        ["bound", "--L", "1,2", "--sigma", "1,1", "--lambda-max", "-1"],
        "lambda",
    ),
    "bound-from-and-L": (
        ["bound", "--from", "{d}/m.npz", "--L", "1", "--sigma", "1"],
        "--from",
    ),
    "bound-from-missing": (["bound", "--from", "{d}/absent.npz"], "absent"),
    "demo-dim-zero": (["demo", "--dim", "0"], "dim"),
    "demo-dim-text": (["demo", "--dim", "big"], "dim"),
    "demo-samples-zero": (["demo", "--samples", "0"], "samples"),
    "demo-batch-zero": (["demo", "--batch-sizes", "0"], "batch"),
    "demo-batch-text": (["demo", "--batch-sizes", "8,x"], "batch"),
    "demo-batch-over-budget": (["demo", "--batch-sizes", "100000", "--samples", "64"], "batch"),
    "data-no-action": (["data"], "data"),
    "data-unknown-action": (["data", "delete"], "delete"),
    "data-fetch-unknown-name": (["data", "fetch", "nosuchset"], "nosuchset"),
    "data-fetch-no-name": (["data", "fetch"], "NAME"),
    "data-fetch-bad-split": (["data", "fetch", "a9a", "--split", "dev"], "dev"),
    "data-fetch-missing-offline": (
        ["data", "fetch", "w8a", "--split", "test", "--no-download", "--data-home", "{d}/home"],
        "w8a",
    ),
    "measure-no-task": (["measure", "--out", "{d}/m"], "--task"),
    "measure-unknown-task": (["measure", "--task", "svm", "--out", "{d}/m"], "svm"),
    "measure-no-out": (["measure", "--task", "logreg"], "--out"),
    "measure-unknown-dataset": (
        ["measure", "--task", "logreg", "--dataset", "nosuchset", "--out", "{d}/m"],
        "nosuchset",
    ),
    "measure-at-unknown": (
        [
            "measure",
            "--task",
            "logreg",
            "--synthetic-n",
            "50",
            "--synthetic-d",
            "5",
            "--at",
            "{d}/absent.npy",
            "--out",
            "{d}/m",
        ],
        "absent.npy",
    ),
    "measure-synthetic-n-zero": (
        ["measure", "--task", "logreg", "--synthetic-n", "0", "--out", "{d}/m"],
        "n",
    ),
    "measure-density-two": (
        ["measure", "--task", "logreg", "--density", "2", "--out", "{d}/m"],
        "density",
    ),
    "measure-unknown-model": (
        ["measure", "--task", "lm", "--model", "gpt5", "--out", "{d}/m"],
        "gpt5",
    ),
    "measure-max-length-one": (
        ["measure", "--task", "lm", "--max-length", "1", "--out", "{d}/m"],
        "max",
    ),
    "measure-max-length-over-positions": (
        ["measure", "--task", "lm", "--max-length", "100000", "--out", "{d}/m"],
        "positions",
    ),
    "measure-probes-zero": (
        ["measure", "--task", "lm", "--probes", "0", "--out", "{d}/m"],
        "probes",
    ),
    "smoothness-check-no-out": (["smoothness-check"], "--out"),
    "smoothness-check-steps-zero": (
        ["smoothness-check", "--steps", "0", "--out", "{d}/c"],
        "steps",
    ),
    "smoothness-check-coverage-two": (
        ["smoothness-check", "--coverage", "2", "--out", "{d}/c"],
        "coverage",
    ),
    "smoothness-check-replot-missing": (
        ["smoothness-check", "--replot", "--out", "{d}/absent"],
        "absent",
    ),
    "lm-unknown-optimizer": (
        ["lm", "--optimizer", "adam", "--lr", "0.1", "--out", "{d}/lm"],
        "adam",
    ),
    "lm-no-lr": (["lm", "--out", "{d}/lm"], "--lr"),
    "lm-lr-text": (["lm", "--lr", "fast", "--out", "{d}/lm"], "--lr"),
    "lm-lr-grid-bad": (["lm", "--lr-grid", "sgd=a,b", "--out", "{d}/lm"], "--lr-grid"),
    "lm-batch-zero": (["lm", "--lr", "0.1", "--batch-sizes", "0", "--out", "{d}/lm"], "batch"),
    "lm-unknown-model": (["lm", "--lr", "0.1", "--model", "gpt5", "--out", "{d}/lm"], "gpt5"),
    "lm-max-length-over-positions": (
        ["lm", "--lr", "0.1", "--max-length", "512", "--out", "{d}/lm"],
        "256",
    ),
    "lm-missing-data": (
        ["lm", "--lr", "0.1", "--no-noise", "--data", "{d}/absent.json", "--out", "{d}/lm"],
        "absent",
    ),
    "lm-micro-batch-too-big": (
        ["lm", "--lr", "0.1", "--batch-sizes", "8", "--micro-batch-size", "8", "--out", "{d}/lm"],
        "micro-batch",
    ),
    "lm-samples-and-epochs": (
        ["lm", "--lr", "0.1", "--samples", "8", "--epochs", "1", "--out", "{d}/lm"],
        "epochs",
    ),
    "lm-unknown-schedule": (["lm", "--lr", "0.1", "--schedule", "step", "--out", "{d}/lm"], "step"),
    "lm-precision": (["lm", "--lr", "0.1", "--precision", "fp8", "--out", "{d}/lm"], "fp8"),
    "report-missing-dir": (["report", "{d}/absent"], "absent"),
    "report-empty-dir": (["report", "{d}/emptydir"], "emptydir"),
    "report-no-arg": (["report"], "RESULTS_DIR"),
}
for name, (argv, needle) in FLAGS.items():
    files: dict[str, bytes | str] = {}
    if name == "report-empty-dir":
        files = {"emptydir/.keep": ""}
    case(f"flag-{name}", argv, needle, **{k.replace(".", "__"): v for k, v in files.items()})

# ---------------------------------------------------------------------------------------------
# Measurement files: bound --from, measure --at, --envelope-from, smoothness-check --replot
# ---------------------------------------------------------------------------------------------


def _npz(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


_GOOD_NPZ = _npz(L=np.array([1.0, 2.0]), sigma=np.array([0.5, 0.5]))
MEASUREMENTS: dict[str, tuple[dict[str, bytes | str], str]] = {
    "truncated": ({"m.npz": _GOOD_NPZ[: len(_GOOD_NPZ) // 2]}, "m.npz"),
    "text": ({"m.npz": "hello"}, "m.npz"),
    "empty": ({"m.npz": b""}, "m.npz"),
    "zip-garbage": ({"m.npz": b"PK\x03\x04" + b"\x00" * 60}, "m.npz"),
    "npy-not-npz": ({"m.npz": b"\x93NUMPY" + b"\x01\x00" + b"v\x00" + b" " * 118}, "m.npz"),
    "no-L": ({"m.npz": _npz(sigma=np.ones(2))}, "'L'"),
    "no-sigma": ({"m.npz": _npz(L=np.ones(2))}, "'sigma'"),
    "L-strings": ({"m.npz": _npz(L=np.array(["a", "b"]), sigma=np.ones(2))}, "'L'"),
    "L-empty": ({"m.npz": _npz(L=np.array([]), sigma=np.array([]))}, "'L'"),
    "L-negative": ({"m.npz": _npz(L=np.array([1.0, -1.0]), sigma=np.ones(2))}, "L"),
    "L-nan": ({"m.npz": _npz(L=np.array([1.0, np.nan]), sigma=np.ones(2))}, "L"),
    "sizes-differ": ({"m.npz": _npz(L=np.ones(2), sigma=np.ones(3))}, "sigma"),
    "json-garbage": ({"m.npz": _GOOD_NPZ, "m.json": "{garbage"}, "m.json"),
    "json-not-object": ({"m.npz": _GOOD_NPZ, "m.json": "[1, 2]"}, "m.json"),
    "json-binary": ({"m.npz": _GOOD_NPZ, "m.json": b"\xff\xfe\x00"}, "m.json"),
    "json-wrong-d": ({"m.npz": _GOOD_NPZ, "m.json": '{"d": 7}'}, "m.json"),
    "json-d-string": ({"m.npz": _GOOD_NPZ, "m.json": '{"d": "two"}'}, "m.json"),
    "json-lambda-string": ({"m.npz": _GOOD_NPZ, "m.json": '{"lambda_max": "big"}'}, "lambda_max"),
}
for name, (files, needle) in MEASUREMENTS.items():
    case(
        f"measurement-bound-{name}",
        ["bound", "--from", "{d}/m.npz"],
        needle,
        **{k.replace(".", "__"): v for k, v in files.items()},
    )
for name in ("truncated", "text", "empty"):
    case(
        f"measurement-at-{name}",
        [
            "measure",
            "--task",
            "logreg",
            "--synthetic-n",
            "50",
            "--synthetic-d",
            "5",
            "--at",
            "{d}/w.npy",
            "--out",
            "{d}/m",
        ],
        "w.npy",
        w__npy=MEASUREMENTS[name][0]["m.npz"],
    )
case(
    "measurement-at-wrong-size",
    [
        "measure",
        "--task",
        "logreg",
        "--synthetic-n",
        "50",
        "--synthetic-d",
        "5",
        "--at",
        "{d}/w.npy",
        "--out",
        "{d}/m",
    ],
    "w.npy",
    w__npy=b"",
)
for name, files in {
    "json-garbage": {"c.npz": _GOOD_NPZ, "c.json": "{garbage"},
    "json-other-format": {"c.npz": _GOOD_NPZ, "c.json": '{"format": "other"}'},
    "json-incomplete": {"c.npz": _GOOD_NPZ, "c.json": '{"format": "anisoada-smoothness-check/1"}'},
    "npz-missing": {"c.json": "{}"},
}.items():
    case(
        f"measurement-replot-{name}",
        ["smoothness-check", "--replot", "--out", "{d}/c"],
        "{d}/c",
        **{k.replace(".", "__"): v for k, v in files.items()},
    )

# ---------------------------------------------------------------------------------------------
# Results directories: report inputs and sweep outputs that cannot be written
# ---------------------------------------------------------------------------------------------

REPORTS: dict[str, dict[str, bytes | str]] = {
    "garbage-record": {"logreg/reproduction.json": "garbage{"},
    "empty-record": {"logreg/reproduction.json": ""},
    "binary-record": {"logreg/reproduction.json": b"\xff\x00\xfe"},
    "list-record": {"logreg/reproduction.json": "[1]"},
    "garbage-csv": {
        "logreg/reproduction.json": '{"preset": "quick"}',
        "logreg/table2.csv": b"\xff\xfe\x00\x01 garbage",
    },
    "lm-garbage-record": {"lm/reproduction.json": "{"},
    "theory-garbage-record": {"theory/reproduction.json": "nope"},
}
for name, files in REPORTS.items():
    first = next(iter(files)) if "csv" not in name else "logreg/table2.csv"
    case(
        f"store-report-{name}",
        ["report", "{d}/results"],
        f"{{d}}/results/{first}",
        **{"results/" + k.replace(".", "__"): v for k, v in files.items()},
    )
for name, argv in {
    "sweep-out-is-file": [*_SWEEP, "--batch-sizes", "4", "--samples", "8"],
    "measure-out-under-file": [
        "measure",
        "--task",
        "logreg",
        "--synthetic-n",
        "50",
        "--synthetic-d",
        "5",
        "--out",
        "{d}/out/m",
    ],
    "bound-plot-under-file": ["bound", "--L", "1,2", "--sigma", "1,1", "--plot", "{d}/out/p.png"],
    "report-out-under-file": ["report", "{d}/results", "--out", "{d}/out/report"],
}.items():
    case(
        f"store-{name}",
        argv,
        "{d}/out",
        out="a regular file, not a directory",
        **{"results/logreg/reproduction.json": '{"preset": "quick"}'},
    )


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 250
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


@pytest.mark.parametrize("case_", CASES, ids=[c.id for c in CASES])
def test_malformed_input_is_one_line_with_status_2(case_, corpus_root, capsys, monkeypatch):
    run_case(case_, corpus_root, capsys, monkeypatch)


# A failing file system, simulated where a root user cannot make one: every atomic write
# raises the given errno for its target.
@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EDQUOT, errno.EIO])
@pytest.mark.parametrize("command", ["sweep", "bound", "measure"])
def test_a_failing_file_system_is_one_line_naming_the_path(
    command, code, tmp_path, capsys, monkeypatch
):
    import tempfile

    import matplotlib.figure

    def failing(*args, dir=None, **kwargs):
        raise OSError(code, os.strerror(code), str(dir))

    def failing_savefig(self, path, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(tempfile, "mkstemp", failing)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", failing_savefig)
    argv = {
        "sweep": [*_SWEEP, "--batch-sizes", "4", "--samples", "8"],
        "bound": ["bound", "--L", "1,2", "--sigma", "1,1", "--plot", "{d}/out/p.png"],
        "measure": [
            "measure",
            "--task",
            "logreg",
            "--synthetic-n",
            "50",
            "--synthetic-d",
            "5",
            "--out",
            "{d}/out/m",
        ],
    }[command]
    argv = [part.replace("{d}", str(tmp_path)) for part in argv]
    status = main(argv)
    error = capsys.readouterr().err
    check_one_line(status, error, str(tmp_path / "out"), f"{command}-{code}")
    assert os.strerror(code).lower() in error.lower()


def test_a_failed_command_keeps_the_runs_already_stored(tmp_path, capsys):
    out = tmp_path / "out"
    base = [*TINY_SWEEP, "--out", str(out)]
    assert main(base) == 0
    stored = sorted(path.read_bytes() for path in out.glob("runs/*/rows.parquet"))
    assert stored
    for bad in (["--seeds", "0"], ["--batch-sizes", "x"], ["--option", "sgd.nope=1"]):
        assert main([*base, *bad]) == 2
    capsys.readouterr()
    # Nothing already computed is lost: the same run files, byte for byte, and a re-run reuses them.
    assert sorted(path.read_bytes() for path in out.glob("runs/*/rows.parquet")) == stored
    assert main(base) == 0
    assert sorted(path.read_bytes() for path in out.glob("runs/*/rows.parquet")) == stored


SUBPROCESS = [  # each start imports torch: a few seconds apiece
    ["sweep", "--dataset", "synthetic", "--batch-sizes", "x", "--out", "unused"],
    ["bound", "--from", "{d}/m.npz"],
    [],
]


def test_a_few_cases_through_a_real_process(tmp_path):
    (tmp_path / "m.npz").write_bytes(b"PK\x03\x04 truncated")
    environment = {**os.environ, "ANISOADA_DATA": str(tmp_path / "home")}
    environment.pop("ANISOADA_TRACEBACK", None)
    for argv in SUBPROCESS:
        argv = [part.replace("{d}", str(tmp_path)) for part in argv]
        done = subprocess.run(
            [sys.executable, "-m", "anisoada", *argv],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
        )
        assert done.returncode == 2, (argv, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""
        assert done.stderr.strip().splitlines()[-1].startswith("anisoada")
