"""A third corpus: what the second probe found in the library layers (issue 14).

The probe of :mod:`test_unseen_inputs` tried about 300 more bad inputs; these are the ones that
ended in an out-of-memory kill, an internal error, a torch or ARPACK traceback, silence (a
``sys.exit`` in a user's problem file) or a silently wrong result, in the experiments, measure and
theory layers. Every command line meets :func:`corpus.check_one_line` (exit status 2, one line
naming the input, no internals); every library call raises the named exception on one line; a
refused command leaves a stored sweep byte for byte as it was.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from corpus import (
    SWEEP_TOML,
    Case,
    check_named_error,
    check_one_line,
    collect_into,
    run_case,
    sweep_file_cases,
)

from anisoada.cli import main

CASES: list[Case] = []
case = collect_into(CASES)


# ---------------------------------------------------------------------------------------------
# Sizes that ran out of memory: grids, seeds, dimensions, data sets
# ---------------------------------------------------------------------------------------------

_SWEEP = ["sweep", "--dataset", "synthetic", "--optimizer", "sgd", "--out", "{d}/out", "--quiet"]
_SWEEP4 = [*_SWEEP, "--batch-sizes", "4"]
_FILE_SWEEP4 = [*_SWEEP4[:2], "{d}/t.svm", *_SWEEP4[3:]]
SIZE_FLAGS: dict[str, tuple[list[str], str]] = {
    "lr-grid-a-billion-per-decade": ([*_SWEEP4, "--lr-grid", "0.1:1:1000000000"], "1000000001"),
    "lr-grid-100000-per-decade": ([*_SWEEP4, "--lr-grid", "0.001:10:100000"], "per_decade"),
    "lr-grid-one-rate-wide-extensions": ([*_SWEEP4, "--lr-grid", "1:1:20000"], "per_decade"),
    "seeds-a-billion": ([*_SWEEP4, "--seeds", "1000000000"], "9000000000 runs"),
    "epochs-below-one-step": ([*_SWEEP4, "--epochs", "1e-300"], "1e-300 epoch"),
    "epochs-below-one-step-of-a-file": ([*_FILE_SWEEP4, "--epochs", "1e-300"], "t.svm"),
    "option-given-twice": (
        [*_SWEEP4, "--option", "sgd.momentum=0.5", "--option", "sgd.momentum=0.9"],
        "sgd.momentum",
    ),
}
SIZE_FILES = {"epochs-below-one-step-of-a-file": {"t.svm": "+1 1:1\n-1 2:1\n+1 1:0.5\n-1 2:2\n"}}
for name, (argv, needle) in SIZE_FLAGS.items():
    case(f"flag-{name}", argv, needle, SIZE_FILES.get(name))

_TOML = SWEEP_TOML
_QUADRATIC = '[[problems]]\nkind = "quadratic"\nname = "q"\n'
TOML_BAD: dict[str, tuple[str, str]] = {
    "lr-grid-per-decade-100000": (_TOML + "[lr_grid]\nper_decade = 100000\n", "per_decade"),
    "lr-grid-extension-points-a-million": (
        _TOML + "[lr_grid]\nextension_points = 1000000\n",
        "extension_points",
    ),
    "lr-grid-ten-thousand-and-one-values": (
        _TOML + "[lr_grid]\nvalues = [" + ", ".join(f"{k + 1}e-3" for k in range(10_001)) + "]\n",
        "10001 rates",
    ),
    "seeds-a-billion": ("seeds = 1000000000\n" + _TOML, "runs"),
    "quadratic-smoothness-exponent-nan": (
        _TOML + _QUADRATIC + "smoothness_exponent = nan\n",
        "smoothness_exponent",
    ),
    "quadratic-noise-exponent-inf": (_TOML + _QUADRATIC + "noise_exponent = inf\n", "noise"),
    "quadratic-max-noise-nan": (_TOML + _QUADRATIC + "max_noise = nan\n", "max_noise"),
    "quadratic-dim-1e11": (_TOML + _QUADRATIC + "dim = 100000000000\n", "dim"),
    "synthetic-n-1e11": (_TOML.replace("n = 40", "n = 100000000000"), "n + n_test"),
    "synthetic-d-1e9": (_TOML.replace("d = 5", "d = 1000000000"), "d = 1000000000"),
    "synthetic-non-zeros": (
        _TOML.replace("n = 40", "n = 10000000").replace("d = 5", "d = 10000\ndensity = 1.0"),
        "non-zeros",
    ),
    "rotated-too-large-to-make-dense": (
        _TOML.replace('"synthetic"', '"rotated"')
        .replace("n = 40", "n = 100000")
        .replace("d = 5", "d = 1000"),
        "dense",
    ),
    "epochs-1e-300": (_TOML.replace("samples = 16", "epochs = 1e-300"), "epoch"),
}
CASES.extend(sweep_file_cases(TOML_BAD))

# ---------------------------------------------------------------------------------------------
# A user's PyTorch problem (--problem file.py:function) that breaks the README's contract
# ---------------------------------------------------------------------------------------------

# Each file is the README's example (examples/tiny_mlp.py) with one part of its return broken.
_EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "tiny_mlp.py").read_text()
_RETURNS = (
    _EXAMPLE + "\n\ndef f():\n    factory, loss, data = problem(n=64, d=4, hidden=3)\n"
    '    X, y = data["train"]\n    return '
)
PROBLEMS: dict[str, str] = {
    "import-error": "import no_such_dependency_xyz\ndef f(): pass\n",
    "syntax-error": "def f(:\n    pass\n",
    "runtime-error-at-import": "raise RuntimeError('boom')\n",
    "exit-at-import": "import sys\nsys.exit(3)\n",
    "exit-zero-at-import": "import sys\nsys.exit()\n",
    "function-raises": "def f():\n    raise KeyError('missing')\n",
    "function-needs-arguments": "def f(a):\n    return None\n",
    "factory-raises": _RETURNS + "(lambda: 1 / 0), loss, (X, y)\n",
    "factory-not-a-module": _RETURNS + "(lambda: 5), loss, (X, y)\n",
    "loss-not-scalar": _RETURNS + "factory, (lambda m, b: m(b[0]).squeeze(-1) - b[1]), (X, y)\n",
    "loss-item": _RETURNS + "factory, (lambda m, b: loss(m, b).item()), (X, y)\n",
    "loss-nan": _RETURNS + "factory, (lambda m, b: loss(m, b) * float('nan')), (X, y)\n",
    "integer-data": _RETURNS + "factory, loss, (X.long(), y.long())\n",
    "no-parameters": _RETURNS
    + "(lambda: torch.nn.Identity()), (lambda m, b: b[0].sum()), (X, y)\n",
    "scalar-tensor-data": _RETURNS + "factory, loss, torch.tensor(5.0)\n",
    "numpy-data": _RETURNS + "factory, loss, (X.numpy(), y.numpy())\n",
}
for name, source in PROBLEMS.items():
    case(
        f"sweep-problem-{name}",
        ["sweep", "--problem", "{d}/p.py:f", "--optimizer", "sgd", "--batch-sizes", "8",
         "--samples", "16", "--out", "{d}/out", "--quiet"],
        "p.py:f",
        {"p.py": source},
    )  # fmt: skip
# `measure --problem` reads the problem through the same wrappers (its own loss evaluation is
# the measurement's: the contract checks of the sweep's validate are not run there).
for name in ("syntax-error", "exit-at-import", "factory-raises", "integer-data", "numpy-data"):
    case(
        f"measure-problem-{name}",
        ["measure", "--problem", "{d}/p.py:f", "--out", "{d}/m"],
        "p.py:f",
        {"p.py": PROBLEMS[name]},
    )

# ---------------------------------------------------------------------------------------------
# LIBSVM values the closed-form measurement cannot take
# ---------------------------------------------------------------------------------------------

_MEASURE = ["measure", "--task", "logreg", "--dataset", "{d}/data.svm", "--out", "{d}/m"]
for name, content in {
    "value-1e308": "+1 1:1e308 2:1\n-1 2:1\n+1 1:0.5\n",
    "value-1e200": "+1 1:1e200 2:1\n-1 2:1\n+1 1:0.5\n",
    "all-zero-features": "+1 1:0\n-1 2:0\n",
}.items():
    case(f"libsvm-{name}", _MEASURE, "{d}/data.svm", {"data.svm": content})


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    return tmp_path_factory.mktemp("library")


@pytest.mark.parametrize("case_", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_with_status_2(case_, corpus_root, capsys, monkeypatch):
    directory = run_case(case_, corpus_root, capsys, monkeypatch)
    assert not (directory / "out").exists(), "refused before the store was made"


# ---------------------------------------------------------------------------------------------
# Refused after a sweep was stored: nothing computed is touched
# ---------------------------------------------------------------------------------------------

_STORED = [
    "sweep", "--dataset", "synthetic", "--optimizer", "sgd", "--batch-sizes", "4",
    "--samples", "16", "--lr-grid", "0.1:1:1", "--max-extensions", "0", "--evaluations", "2",
    "--quiet",
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--seeds", "1000000000"], "runs"),
        (["--lr-grid", "0.1:1:1000000000"], "per_decade"),
        (["--epochs", "1e-300"], "epoch"),
        (["--option", "sgd.momentum=0.5", "--option", "sgd.momentum=0.9"], "sgd.momentum"),
    ],
)
def test_a_refused_rerun_leaves_the_stored_sweep_as_it_was(extra, needle, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*_STORED, "--out", str(out)]) == 0
    before = {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    capsys.readouterr()
    status = main([*_STORED, *extra, "--out", str(out)])
    check_one_line(status, capsys.readouterr().err, needle, " ".join(extra))
    after = {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    assert after == before


# ---------------------------------------------------------------------------------------------
# The library's entry points: the named exception on one line, nothing deeper
# ---------------------------------------------------------------------------------------------

_X = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [0.5, 0.0, 1.0]])
_Y = np.array([1.0, -1.0, 1.0, -1.0])


def _api_cases(root: Path) -> dict:
    """Each case: a call (files and outputs under ``root``, made only when called), the
    exception it must raise and text its one-line message must hold."""
    from anisoada.experiments import (
        DatasetSpec,
        LRGrid,
        OptimizerSpec,
        SweepConfig,
        run_sweep,
    )
    from anisoada.experiments.optimizers import parse_optimizer_options
    from anisoada.experiments.runs import ModuleSpec, QuadraticSpec
    from anisoada.measure import SmoothnessCheckConfig, summarize_logistic
    from anisoada.theory import predict
    from anisoada.train import Budget

    def sweep(**fields):
        base = {
            "name": "s", "problems": (DatasetSpec.create("toy", "synthetic", {"n": 40, "d": 5}),),
            "optimizers": (OptimizerSpec.create("sgd"),), "batch_sizes": (4,),
            "budget": Budget(samples=16),
        }  # fmt: skip
        return SweepConfig(**{**base, **fields})

    def module_sweep(name: str):
        def call():
            path = root / f"{name.replace('-', '_')}.py"
            path.write_text(PROBLEMS[name])
            problem = ModuleSpec.create(f"{path}:f")
            return run_sweep(sweep(problems=(problem,)), root / "out", progress=False)

        return call

    def logistic(X=_X, y=_Y, w=None):
        return lambda: summarize_logistic(X, y, np.zeros(3) if w is None else w)

    def theory(**fields):
        arguments = {"L": [1.0, 2.0], "sigma": [1.0, 1.0], "D_inf": 1.0, "batch_sizes": [8],
                     "budget": 1e4, **fields}  # fmt: skip
        return lambda: predict(**arguments)

    huge = _X.copy()
    huge[0, 0] = 1e308
    nan = _X.copy()
    nan[1, 2] = math.nan
    return {
        "lr-grid-a-billion-per-decade": (
            lambda: LRGrid(low=0.1, high=1.0, per_decade=10**9),
            ValueError,
            "1000000001 rates",
        ),
        "lr-grid-extension-points-a-million": (
            lambda: LRGrid(extension_points=10**6),
            ValueError,
            "extension_points",
        ),
        "sweep-seeds-a-billion": (lambda: sweep(seeds=10**9), ValueError, "9000000000 runs"),
        "run-sweep-none": (lambda: run_sweep(None, root / "o"), TypeError, "SweepConfig"),
        "run-sweep-a-dict": (lambda: run_sweep({}, root / "o"), TypeError, "SweepConfig"),
        "option-given-twice": (
            lambda: parse_optimizer_options(["sgd.momentum=0", "sgd.momentum=1"], ["sgd"]),
            ValueError,
            "given twice",
        ),
        "quadratic-exponent-nan": (
            lambda: QuadraticSpec(smoothness_exponent=math.nan),
            ValueError,
            "smoothness_exponent",
        ),
        "quadratic-dim-1e11": (lambda: QuadraticSpec(dim=10**11), ValueError, "dim"),
        "synthetic-n-1e11": (
            lambda: DatasetSpec.create("big", "synthetic", {"n": 10**11}),
            ValueError,
            "n + n_test",
        ),
        "epochs-below-one-step": (
            lambda: sweep(budget=Budget(epochs=1e-300)).validate(),
            ValueError,
            "1e-300 epoch",
        ),
        "module-exits-at-import": (module_sweep("exit-at-import"), ValueError, "sys.exit(3)"),
        "module-loss-not-scalar": (module_sweep("loss-not-scalar"), ValueError, ".mean()"),
        "summarize-nan-X": (logistic(X=nan), ValueError, "NaN"),
        "summarize-1e308-X": (logistic(X=huge), ValueError, "overflow"),
        "summarize-empty-X": (logistic(X=np.zeros((0, 3)), y=_Y[:0]), ValueError, "empty"),
        "summarize-list-X": (logistic(X=_X.tolist()), TypeError, "list"),
        "summarize-3-D-X": (logistic(X=_X[None]), ValueError, "2-D"),
        "summarize-complex-X": (logistic(X=_X * 1j), ValueError, "complex128"),
        "summarize-nan-w": (logistic(w=np.full(3, math.nan)), ValueError, "w must be finite"),
        "smoothness-min-relative-move-nan": (
            lambda: SmoothnessCheckConfig(min_relative_move=math.nan),
            ValueError,
            "min_relative_move",
        ),
        "smoothness-eps-inf": (lambda: SmoothnessCheckConfig(eps=math.inf), ValueError, "eps"),
        "smoothness-betas-nan": (
            lambda: SmoothnessCheckConfig(betas=(0.9, math.nan)),
            ValueError,
            "betas",
        ),
        "predict-batch-size-twice": (theory(batch_sizes=[8, 8]), ValueError, "more than once"),
        "predict-budget-text": (theory(budget="1e4"), TypeError, "budget"),
        "predict-budget-bool": (theory(budget=True), TypeError, "budget"),
        "predict-batch-sizes-text": (theory(batch_sizes=["8"]), TypeError, "batch_sizes"),
    }


API_CASE_NAMES = sorted(_api_cases(Path("names-only")))


@pytest.mark.parametrize("name", API_CASE_NAMES)
def test_the_library_entry_points_raise_a_named_error(name, tmp_path):
    check_named_error(*_api_cases(tmp_path)[name])
    assert not (tmp_path / "out").exists()


def test_the_corpus_counts():
    assert len({c.id for c in CASES}) == len(CASES)
    assert len(CASES) + len(API_CASE_NAMES) + 4 >= 70
