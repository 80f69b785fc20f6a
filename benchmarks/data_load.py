"""Data-layer speed: LIBSVM parse vs cached load, and the synthetic sparse generator.

Baselines measured in the same run:

* ``load_libsvm(..., cache=False)`` — a full parse of a9a (decompression + scikit-learn's reader +
  checks) — against ``load_libsvm`` served from the ``.npz`` cache (target: ≥ 10× faster).
* ``make_sparse_logistic(100_000, 50_000, density=0.001)`` (5 M non-zeros), timed against
  building the same CSR matrix from pre-drawn random indices with ``scipy.sparse`` (the cost of
  merely assembling that many non-zeros).

a9a is read from ``$ANISOADA_TEST_DATA/libsvm`` or ``../shared/data/libsvm``; without it, an
a9a-shaped stand-in (same rows, columns and density) is written to a temporary directory.

Run: ``python benchmarks/data_load.py``
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from anisoada.data import load_libsvm, make_sparse_logistic, save_libsvm


def _median_seconds(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _a9a_file(scratch: Path) -> tuple[Path, str]:
    configured = os.environ.get("ANISOADA_TEST_DATA")
    shared = (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    if (shared / "libsvm" / "a9a.xz").is_file():
        return shared / "libsvm" / "a9a.xz", "a9a (shared/data, xz)"
    rng = np.random.default_rng(0)
    n, d, per_row = 32_561, 123, 14
    columns = np.sort(rng.random((n, d)).argsort(axis=1)[:, :per_row], axis=1)
    X = sp.csr_matrix(
        (np.ones(n * per_row), columns.ravel(), np.arange(0, n * per_row + 1, per_row)), (n, d)
    )
    y = np.where(rng.random(n) < 0.24, 1.0, -1.0)
    return save_libsvm(scratch / "a9a.xz", X, y), "a9a-shaped stand-in (xz)"


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        source, label = _a9a_file(scratch)
        kwargs = {"n_features": 123, "cache_dir": scratch / "cache"}
        load_libsvm(source, **kwargs)  # warm imports and write the cache
        parse = _median_seconds(lambda: load_libsvm(source, cache=False, **kwargs), repeats=5)
        cached = _median_seconds(lambda: load_libsvm(source, **kwargs), repeats=15)

    n, d, density = 100_000, 50_000, 0.001
    make_sparse_logistic(1_000, 100, seed=0)  # warm-up
    generate = _median_seconds(
        lambda: make_sparse_logistic(n, d, density=density, seed=1), repeats=3
    )
    problem = make_sparse_logistic(n, d, density=density, seed=1)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, n, problem.X.nnz)
    columns = rng.integers(0, d, problem.X.nnz)
    assemble = _median_seconds(
        lambda: sp.csr_matrix((np.ones(rows.size), (rows, columns)), shape=(n, d)), repeats=3
    )

    print(f"{'measurement':<58} {'seconds':>9} {'ratio':>8}")
    print(f"{'a9a parse, load_libsvm(cache=False) [baseline]':<58} {parse:9.4f} {'':>8}")
    print(f"{'a9a cached load, load_libsvm()':<58} {cached:9.4f} {parse / cached:7.1f}x")
    print(f"{'  (source: ' + label + ')':<58}")
    print(f"{'assemble CSR from 5M random (row, col) [baseline]':<58} {assemble:9.4f} {'':>8}")
    print(
        f"{f'make_sparse_logistic {n:,} x {d:,}, nnz {problem.X.nnz:,}':<58} "
        f"{generate:9.4f} {generate / assemble:7.1f}x"
    )
    verdict = "OK" if parse / cached >= 10 else "BELOW TARGET"
    print(f"cached/parse speed-up {parse / cached:.1f}x (target >= 10x): {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    raise SystemExit(main())
