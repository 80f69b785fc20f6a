"""LIBSVM binary classification data sets: registry, robust parsing, verified downloads, a cache.

The paper's convex experiments are logistic regression on LIBSVM's binary sets. This module finds
them in the data home (or, for ``a9a``, in the copy bundled with the package), reads any other
LIBSVM file given by path, parses them (scikit-learn's fast reader behind our own grammar check,
which also locates errors), normalises the labels to ``{−1, +1}``, aligns train and test
features (:func:`load_libsvm_pair`, also for a holdout split), and caches the parsed arrays as
``.npz`` so that every later load is a memory copy rather than a parse.

File layout under the data home (:func:`data_home`)::

    <data home>/libsvm/a9a            # the file as published (or a9a.bz2 / a9a.xz / a9a.gz)
    <data home>/libsvm/a9a.t
    <data home>/libsvm/cache/...npz   # parsed arrays + metadata, rebuilt when stale or corrupt

``anisoada/data/_bundled/`` holds ``a9a.xz`` and ``a9a.t.xz`` (UCI Adult via LIBSVM, CC BY 4.0;
see the README there); a copy in the data home takes precedence.

Every write (downloads, caches, :func:`save_libsvm`) goes to a temporary file in the target
directory and is moved into place with ``os.replace``, so an interrupted load never leaves a
half-written file under a name a later load would trust.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.client
import io
import itertools
import json
import lzma
import math
import numbers
import os
import re
import shutil
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, TypedDict, Unpack

import numpy as np
import scipy.sparse as sp

from anisoada._io import atomic_open, atomic_path
from anisoada.data.home import DATA_HOME_ENV, user_cache_home
from anisoada.data.home import data_home as resolve_data_home

__all__ = ["LIBSVM_DATASETS", "ChecksumError", "LibsvmData", "LibsvmDataset", "LibsvmDownloadError",
           "LibsvmFile", "LibsvmFormatError", "LibsvmPair", "LoadOptions", "content_sha256",
           "libsvm_available", "load_libsvm", "load_libsvm_pair", "locate_libsvm",
           "save_libsvm"]  # fmt: skip

LIBSVM_BINARY_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"
# Bumped whenever the parsed representation changes, so older caches are rebuilt, not trusted.
_CACHE_FORMAT = 1
# (Binary streams: gzip's, bz2's and lzma's files are io.BufferedIOBase, not all typing.IO.)
_COMPRESSIONS: dict[str, Callable[..., io.BufferedIOBase]] = {
    ".bz2": bz2.open,
    ".gz": gzip.open,
    ".xz": lzma.open,
}
_CHUNK = 1 << 20


class LibsvmData(NamedTuple):
    """A binary classification data set: ``X`` (CSR, float64, ``(n, d)``) and ``y ∈ {−1, +1}``."""

    X: sp.csr_matrix
    y: np.ndarray


class LibsvmFormatError(ValueError):
    """A LIBSVM file that cannot be parsed; says which file and, when known, which line.

    Attributes:
        path: The file.
        line_number: 1-based line of the first problem (``None`` if it cannot be located).
    """

    def __init__(self, path: str | Path, line_number: int | None, message: str):
        location = f"{path}, line {line_number}" if line_number is not None else str(path)
        super().__init__(f"{location}: {message}")
        self.path, self.line_number = str(path), line_number


class ChecksumError(ValueError):
    """File content whose sha256 differs from the registry's."""


class LibsvmDownloadError(FileNotFoundError):
    """A file that is not present and could not be downloaded."""


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LibsvmFile:
    """One published file of a data set.

    Attributes:
        file_name: Name on the LIBSVM page (its suffix gives the compression, e.g. ``.bz2``).
        n_samples: Expected number of rows.
        sha256: sha256 of the **decompressed** content, when known; otherwise ``None`` and the
            file is verified by its shape only (rows and features).
        url: Download address; defaults to the LIBSVM binary page plus ``file_name``.
    """

    file_name: str
    n_samples: int
    sha256: str | None = None
    url: str | None = None

    @property
    def stem(self) -> str:
        """The file name without its compression suffix."""
        suffix = Path(self.file_name).suffix
        return self.file_name[: -len(suffix)] if suffix in _COMPRESSIONS else self.file_name

    @property
    def download_url(self) -> str:
        """Where ``download=True`` fetches the file from."""
        return self.url or LIBSVM_BINARY_URL + self.file_name


@dataclass(frozen=True)
class LibsvmDataset:
    """A registered binary data set.

    Attributes:
        name: Registry key, as on the LIBSVM page.
        n_features: Number of features (shared by every split, which is what aligns them).
        splits: ``{"train": LibsvmFile, "test": LibsvmFile?}``.
        label_coding: ``(negative, positive)`` label values in the file, or ``None`` to infer
            them (the smaller of two values is the negative class).
        description: Where the data come from.
    """

    name: str
    n_features: int
    splits: Mapping[str, LibsvmFile]
    label_coding: tuple[float, float] | None = None
    description: str = ""
    _frozen_splits: Mapping[str, LibsvmFile] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_frozen_splits", MappingProxyType(dict(self.splits)))
        object.__setattr__(self, "splits", self._frozen_splits)


def _dataset(
    name: str,
    n_features: int,
    train: tuple[str, int],
    test: tuple[str, int] | None = None,
    label_coding: tuple[float, float] | None = None,
) -> tuple[str, LibsvmDataset]:
    """A registry entry from its row of :data:`_REGISTRY` (checksums and descriptions apart)."""
    splits = {
        split: LibsvmFile(file_name, rows, _SHA256.get(file_name))
        for split, (file_name, rows) in (("train", train), ("test", test or ("", 0)))
        if file_name
    }
    return name, LibsvmDataset(name, n_features, splits, label_coding, _DESCRIPTIONS[name])


# Shapes and file names from the LIBSVM binary page: name, features, (train file, rows),
# (test file, rows), (negative, positive) label values where they are not inferred.
# fmt: off
_REGISTRY = (
    ("a9a", 123, ("a9a", 32_561), ("a9a.t", 16_281), (-1.0, 1.0)),
    ("w8a", 300, ("w8a", 49_749), ("w8a.t", 14_951), (-1.0, 1.0)),
    ("mushrooms", 112, ("mushrooms", 8_124), None, (1.0, 2.0)),
    ("real-sim", 20_958, ("real-sim.bz2", 72_309)),
    ("rcv1.binary", 47_236, ("rcv1_train.binary.bz2", 20_242), ("rcv1_test.binary.bz2", 677_399)),
    ("news20.binary", 1_355_191, ("news20.binary.bz2", 19_996)),
    ("covtype.binary", 54, ("covtype.libsvm.binary.bz2", 581_012), None, (1.0, 2.0)),
    ("ijcnn1", 22, ("ijcnn1.bz2", 49_990), ("ijcnn1.t.bz2", 91_701)),
    ("gisette", 5_000, ("gisette_scale.bz2", 6_000), ("gisette_scale.t.bz2", 1_000)),
    ("madelon", 500, ("madelon", 2_000), ("madelon.t", 600)),
    ("epsilon", 2_000, ("epsilon_normalized.bz2", 400_000), ("epsilon_normalized.t.bz2", 100_000)),
    ("phishing", 68, ("phishing", 11_055)),
)
# fmt: on
# sha256 of the decompressed content, recorded only where it was verified against a copy of the
# file; the other files are checked by their shape only.
_SHA256 = {
    "a9a": "f5d5ffd8d865ff41328e7ee043e4b020816914ff6843ff15b98905ddbedce906",
    "a9a.t": "1f448a153f0320399a7e40836eb207655b0bde0f21fc941cc472193daa9f5de9",
    "w8a": "b464b4f6ce6a5d9e181ffc793e19a04751036273722312398ef7673705014902",
    "mushrooms": "51919a59d92e6ec922259e77afd91d9a809299613ee0da052a19abe746aa2244",
}
_DESCRIPTIONS = {
    "a9a": "UCI Adult census income, binarised features (J. Platt)",
    "w8a": "web page keyword features (J. Platt, SMO paper)",
    "mushrooms": "UCI Mushroom, one-hot attributes; labels 1/2",
    "real-sim": "real vs simulated auto/aviation Usenet articles (bag of words)",
    "rcv1.binary": "Reuters RCV1-v2 news, two merged topic groups (tf-idf)",
    "news20.binary": "20 Newsgroups split into two halves (tf-idf)",
    "covtype.binary": "UCI Forest Covertype, class 2 vs rest; labels 1/2",
    "ijcnn1": "IJCNN 2001 challenge (training + validation; test)",
    "gisette": "NIPS 2003 feature selection challenge, 4 vs 9 digits (scaled)",
    "madelon": "NIPS 2003 feature selection challenge, synthetic XOR-like data",
    "epsilon": "PASCAL large-scale learning challenge, dense, row-normalised",
    "phishing": "UCI phishing websites",
}
LIBSVM_DATASETS: Mapping[str, LibsvmDataset] = MappingProxyType(
    dict(_dataset(*row) for row in _REGISTRY)
)


# ---------------------------------------------------------------------------------------------
# Caches (the data home itself: anisoada.data.home)
# ---------------------------------------------------------------------------------------------


def _default_cache_dir(home: Path) -> Path:
    """``<home>/libsvm/cache``, unless that data directory is read-only.

    A data directory whose permission bits grant no write access (a shared, read-only copy of
    the data) is left untouched even when the process could write it anyway (as root): its
    cache goes to the per-user ``~/.cache/anisoada/libsvm/cache`` instead.
    """
    folder = home / "libsvm"
    if folder.is_dir() and (folder.stat().st_mode & 0o222 == 0 or not os.access(folder, os.W_OK)):
        return user_cache_home() / "libsvm" / "cache"
    return folder / "cache"


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

# Registered files shipped inside the package, by the sha256 of their decompressed content: a
# registry entry uses the bundled copy only when it names exactly that content, and the parse
# verifies it again like any other file.
_BUNDLED_DIR = Path(__file__).resolve().parent / "_bundled"
_BUNDLED = {
    "f5d5ffd8d865ff41328e7ee043e4b020816914ff6843ff15b98905ddbedce906": "a9a.xz",
    "1f448a153f0320399a7e40836eb207655b0bde0f21fc941cc472193daa9f5de9": "a9a.t.xz",
}


class LibsvmPair(NamedTuple):
    """A training set and a test set with the same columns (``test`` is ``None`` if none)."""

    train: LibsvmData
    test: LibsvmData | None


class _Loaded(NamedTuple):
    X: sp.csr_matrix
    y: np.ndarray
    coding: tuple[float, float]
    source: Path
    fixed_width: bool  # the column count came from the registry or the caller, not the file


def load_libsvm(
    name_or_path: str | Path | LibsvmDataset,
    *,
    split: str = "train",
    data_home: str | Path | None = None,
    download: bool = False,
    n_features: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    label_coding: tuple[float, float] | None = None,
) -> LibsvmData:
    """Load a LIBSVM binary classification data set as CSR features and ``±1`` labels.

    ``name_or_path`` is a registered name (``LIBSVM_DATASETS``, e.g. ``"a9a"``), a
    :class:`LibsvmDataset`, or the path of any LIBSVM/svmlight file. A registered name wins over
    a file of the same name in the working directory (pass ``Path("a9a")`` or ``"./a9a"`` for the
    file). A registered file is looked up as ``<data home>/libsvm/<file name>``, also accepting the
    same content compressed differently (``a9a``, ``a9a.bz2``, ``a9a.xz``, ``a9a.gz``); ``a9a`` and
    ``a9a.t`` ship with the package and are read from that bundled copy (checksum-verified) when
    the data home has none. Plain, gzip, bzip2 and xz files are read; the compression is
    recognised by the file's first bytes, whatever its name.

    Labels: two values are mapped to ``−1`` (the negative class: ``label_coding``, the
    registry's coding, or else the smaller value) and ``+1``, so ``{0, 1}``, ``{1, 2}`` and
    ``{−1, 1}`` all become ``{−1, +1}``. More than two distinct labels is an error, and so is a
    single class unless ``label_coding`` (or the registry) says which class it is. Features use
    LIBSVM's 1-based indices; explicit zeros are dropped. Splits of a registered set share its
    ``n_features``, so train and test columns align; for your own files use
    :func:`load_libsvm_pair`, or pass ``n_features=X_train.shape[1]`` when loading the test file
    (a test file with a larger index is an error, never silently cut).

    The grammar is LIBSVM's: ``label [qid:N] index:value ...`` with an optional ``# comment``;
    labels and values finite decimal numbers, indices positive integers (below ``2**31``)
    strictly increasing within a line. Anything else, an empty file, and a damaged compressed
    file raise :class:`LibsvmFormatError` naming the file and, when there is one, the line.
    Parsed arrays are cached under ``<data home>/libsvm/cache`` with the source's size, mtime and
    sha256 and a digest of the arrays; a stale or corrupt cache is rebuilt (with a warning when
    corrupt), never used.

    Args:
        name_or_path: Registered name, :class:`LibsvmDataset`, or file path.
        split: ``"train"`` or ``"test"`` for registered sets (ignored for a path).
        data_home: Data directory; default :func:`data_home` (``ANISOADA_DATA``, else
            ``~/.cache/anisoada``).
        download: Fetch a missing registered file from the LIBSVM page (into a temporary file,
            checksum-verified when a sha256 is known, then renamed into place). Not needed for
            the bundled ``a9a``.
        n_features: Number of columns; default the registry's, or the file's largest index.
        cache: Read and write the ``.npz`` cache.
        cache_dir: Cache directory; default ``<data home>/libsvm/cache`` (or the per-user
            ``~/.cache/anisoada/libsvm/cache`` when the data directory is read-only). If it
            cannot be written, loading still works (with a warning) but parses every time.
        label_coding: ``(negative, positive)`` label values, overriding the registry/inference.

    Returns:
        :class:`LibsvmData` ``(X, y)``: ``X`` a ``scipy.sparse.csr_matrix`` (float64, sorted
        indices), ``y`` float64 in ``{−1, +1}``.

    Raises:
        FileNotFoundError: A path that does not exist, or a registered file that is neither in
            the data home nor bundled (the message says which file to place where);
            :class:`LibsvmDownloadError` if a download failed.
        LibsvmFormatError: A malformed, empty or damaged file, a directory, or labels that are
            not two classes (file name and, when known, line number).
        ChecksumError: Content differs from the registry's sha256.
        ValueError: A name that is neither registered nor an existing file, an unknown split,
            or a shape that differs from the registry's.

    Example:
        >>> X, y = load_libsvm("a9a")  # the bundled copy when the data home has none
        >>> X.shape, sorted(set(y.tolist()))
        ((32561, 123), [-1.0, 1.0])

    References:
        C.-C. Chang and C.-J. Lin. LIBSVM data sets,
        https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html
    """
    loaded = _load(
        name_or_path,
        split=split,
        data_home=data_home,
        download=download,
        n_features=n_features,
        cache=cache,
        cache_dir=cache_dir,
        label_coding=label_coding,
    )
    return LibsvmData(loaded.X, loaded.y)


class LoadOptions(TypedDict, total=False):
    """The options of :func:`load_libsvm` that :func:`load_libsvm_pair` applies to both sets."""

    data_home: str | Path | None
    download: bool
    n_features: int | None
    cache: bool
    cache_dir: str | Path | None
    label_coding: tuple[float, float] | None


def load_libsvm_pair(
    train: str | Path | LibsvmDataset,
    test: str | Path | LibsvmDataset | None = None,
    *,
    holdout: float | None = None,
    seed: int = 0,
    **options: Unpack[LoadOptions],
) -> LibsvmPair:
    """A training set and a test set whose columns and labels line up.

    The training data is loaded like :func:`load_libsvm` (a registered name, a
    :class:`LibsvmDataset` or a file). Then, at most one of:

    * ``test``: a file (or a registered name, whose ``"test"`` split is used). Both matrices get
      the same number of columns: ``n_features`` if given, else the registered set's, else the
      larger of the two files' highest indices (the narrower matrix gets empty columns). The
      test labels are read in the training set's coding, so a test file may hold one class.
    * ``holdout``: a fraction in ``(0, 1)`` of the training rows, drawn uniformly without
      replacement with ``numpy.random.default_rng(seed)``, becomes the test set
      (``round(holdout · n)`` rows, at least one in each part); both parts keep the file's row
      order, and the same file, fraction and seed always give the same split.

    With neither, ``test`` is ``None``.

    Args:
        train: Registered name, :class:`LibsvmDataset`, or file path of the training data.
        test: Test data, aligned to ``train``.
        holdout: Fraction of the training rows to hold out as the test set.
        seed: Seed of the holdout split (a non-negative integer).
        options: ``data_home``, ``download``, ``n_features``, ``cache``, ``cache_dir`` and
            ``label_coding`` (:class:`LoadOptions`), as for :func:`load_libsvm`, applied to both
            sets.

    Returns:
        :class:`LibsvmPair` ``(train, test)`` of :class:`LibsvmData`.

    Raises:
        ValueError: ``test`` and ``holdout`` both given, a fraction outside ``(0, 1)`` or one
            that leaves a part empty, a bad seed; and everything :func:`load_libsvm` raises.

    Example:
        >>> train, test = load_libsvm_pair("a9a", holdout=0.25, seed=1)
        >>> train.X.shape, test.X.shape
        ((24421, 123), (8140, 123))
    """
    unknown = sorted(set(options) - set(LoadOptions.__annotations__))
    if unknown:
        raise TypeError(f"load_libsvm_pair() got unexpected keyword argument(s) {unknown}")
    if test is not None and holdout is not None:
        raise ValueError("give either a test file or a holdout fraction, not both")
    fraction = _check_holdout(holdout)
    seed = _check_seed(seed)
    n_features, label_coding = options.get("n_features"), options.get("label_coding")
    shared: dict[str, Any] = {
        "data_home": options.get("data_home"),
        "download": options.get("download", False),
        "cache": options.get("cache", True),
        "cache_dir": options.get("cache_dir"),
    }
    first = _load(train, split="train", n_features=n_features, label_coding=label_coding, **shared)
    if fraction is not None:
        return _holdout(first, fraction, seed)
    if test is None:
        return LibsvmPair(LibsvmData(first.X, first.y), None)
    second = _load(
        test,
        split="test",
        n_features=first.X.shape[1] if first.fixed_width else None,
        label_coding=first.coding,
        coding_origin="of the training data",
        **shared,
    )
    width = max(first.X.shape[1], second.X.shape[1])
    return LibsvmPair(
        LibsvmData(_with_columns(first.X, width), first.y),
        LibsvmData(_with_columns(second.X, width), second.y),
    )


def _check_holdout(holdout: Any) -> float | None:
    if holdout is None:
        return None
    if isinstance(holdout, bool) or not isinstance(holdout, numbers.Real):
        raise ValueError(f"holdout must be a fraction between 0 and 1, e.g. 0.2; got {holdout!r}")
    value = float(holdout)
    if not 0.0 < value < 1.0:
        raise ValueError(
            f"holdout must be a fraction strictly between 0 and 1, e.g. 0.2; got {value:g}"
        )
    return value


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {_plain(seed)}")
    return int(seed)


def _holdout(loaded: _Loaded, fraction: float, seed: int) -> LibsvmPair:
    n = loaded.X.shape[0]
    n_test = math.floor(fraction * n + 0.5)  # half up: predictable, unlike round()'s half-even
    if n_test == 0 or n_test == n:
        empty, direction = ("test", "larger") if n_test == 0 else ("training", "smaller")
        raise ValueError(
            f"holdout {fraction:g} of the {n} rows of {loaded.source} leaves no {empty} rows; "
            f"use a {direction} fraction"
        )
    order = np.random.default_rng(seed).permutation(n)
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    return LibsvmPair(
        LibsvmData(_canonical_csr(loaded.X[train_rows]), loaded.y[train_rows]),
        LibsvmData(_canonical_csr(loaded.X[test_rows]), loaded.y[test_rows]),
    )


def _with_columns(X: sp.csr_matrix, width: int) -> sp.csr_matrix:
    if X.shape[1] == width:
        return X
    return _canonical_csr(sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width)))


def _load(
    name_or_path: str | Path | LibsvmDataset,
    *,
    split: str,
    data_home: str | Path | None,
    download: bool,
    n_features: Any,
    cache: bool,
    cache_dir: str | Path | None,
    label_coding: Any,
    coding_origin: str = "given as label_coding",
) -> _Loaded:
    n_features = _check_n_features(n_features)
    coding = _check_coding(label_coding)
    fixed_width = n_features is not None
    home = resolve_data_home(data_home)
    dataset, entry = _resolve_dataset(name_or_path, split)
    bundled = False
    if dataset is None or entry is None:
        source = Path(name_or_path).expanduser()  # type: ignore[arg-type]
        expected_sha, expected_rows = None, None
        what = str(source)
    else:
        source, bundled = _locate(dataset, entry, split, home, download)
        expected_sha, expected_rows = entry.sha256, entry.n_samples
        if coding is None and dataset.label_coding is not None:
            coding, coding_origin = dataset.label_coding, f"of {dataset.name}"
        if n_features is None:
            n_features = dataset.n_features
        elif n_features < dataset.n_features:
            raise ValueError(
                f"n_features={n_features} is below {dataset.name}'s {dataset.n_features} features"
            )
        fixed_width = True
        what = f"{dataset.name} ({split})"
    remedy = (
        "the copy bundled with anisoada is damaged: reinstall anisoada, or place a verified copy "
        f"at {home / 'libsvm' / entry.file_name}"
        if bundled and entry is not None
        else "the file is corrupt or a different version: delete it and download it again"
    )

    directory = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir(home)
    cache_path = _cache_path(directory, source, n_features) if cache else None
    X, raw_labels = None, None
    if cache_path is not None and cache_path.exists():
        cached = _read_cache(cache_path, source)
        if cached is not None:
            X, raw_labels, cached_sha = cached
            if expected_sha is not None and cached_sha != expected_sha:
                X = raw_labels = None  # the registry changed its mind: verify again
    if X is None or raw_labels is None:
        X, raw_labels, content_sha = _parse(source, n_features)
        if expected_sha is not None and content_sha != expected_sha:
            raise ChecksumError(
                f"{source}: sha256 of the content is {content_sha}, but {what} should be "
                f"{expected_sha}; {remedy}"
            )
        if cache_path is not None:
            _write_cache(cache_path, source, n_features, X, raw_labels, content_sha)
    if expected_rows is not None and X.shape[0] != expected_rows:
        raise ValueError(
            f"{source}: {what} should have {expected_rows} rows, but the file has {X.shape[0]}; "
            f"{remedy}"
        )
    y, coding = _to_plus_minus_one(raw_labels, coding, source, coding_origin)
    return _Loaded(X, y, coding, source, fixed_width)


def _check_n_features(n_features: Any) -> int | None:
    """``None``, or a positive integer up to the largest index the parser reads."""
    integral = isinstance(n_features, numbers.Integral) and not isinstance(n_features, bool)
    if n_features is not None and not (integral and int(n_features) >= 1):
        raise ValueError(f"n_features must be a positive integer or None; got {_plain(n_features)}")
    if integral and int(n_features) > _MAX_INDEX:
        raise ValueError(
            f"n_features={int(n_features)} is beyond the largest LIBSVM feature index read "
            f"({_MAX_INDEX})"
        )
    return None if n_features is None else int(n_features)


def _check_coding(label_coding: Any) -> tuple[float, float] | None:
    if label_coding is None:
        return None
    problem = "label_coding must be two different finite numbers (negative, positive); got "
    try:
        negative, positive = (float(value) for value in label_coding)
    except (TypeError, ValueError):
        raise ValueError(problem + _plain(label_coding)) from None
    if negative == positive or not (math.isfinite(negative) and math.isfinite(positive)):
        raise ValueError(problem + _plain(label_coding))
    return negative, positive


def _plain(value: Any) -> str:
    """``value`` for a message: numbers as ``str`` (``0.5``, not ``np.float64(0.5)``)."""
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_plain(item) for item in value) + ")"
    if isinstance(value, numbers.Number):
        return str(value.item() if isinstance(value, np.generic) else value)
    return repr(value)


def locate_libsvm(
    name: str, *, split: str = "train", data_home: str | Path | None = None
) -> Path | None:
    """The file :func:`load_libsvm` would read for a registered set, without downloading.

    The data home is searched first (any accepted compression), then the copies bundled with the
    package (``a9a``, ``a9a.t``).

    Args:
        name: Registered name (a key of ``LIBSVM_DATASETS``).
        split: ``"train"`` or ``"test"``.
        data_home: Data directory; default :func:`data_home`.

    Returns:
        The path, or ``None`` when neither the data home nor the package has the file (or the
        data set has no such split).
    """
    if name not in LIBSVM_DATASETS:
        raise ValueError(
            f"Unknown LIBSVM data set {name!r}; registered: {', '.join(sorted(LIBSVM_DATASETS))}"
        )
    entry = LIBSVM_DATASETS[name].splits.get(split)
    if entry is None:
        return None
    return _find_in_home(entry, resolve_data_home(data_home)) or _find_bundled(entry)


def libsvm_available(
    name: str, *, split: str = "train", data_home: str | Path | None = None
) -> bool:
    """Whether a registered data set can be loaded without downloading.

    True when the file is in the data home (any of the accepted compressions: ``a9a``,
    ``a9a.bz2``, ``a9a.xz``, ``a9a.gz``) or bundled with the package (``a9a`` and its test split).

    Args:
        name: Registered name (a key of ``LIBSVM_DATASETS``).
        split: ``"train"`` or ``"test"``; a split the data set does not have is ``False``.
        data_home: Data directory; default :func:`data_home`.

    Returns:
        ``True`` when :func:`load_libsvm` would find the file without downloading.
    """
    return locate_libsvm(name, split=split, data_home=data_home) is not None


def _resolve_dataset(
    name_or_path: str | Path | LibsvmDataset, split: str
) -> tuple[LibsvmDataset | None, LibsvmFile | None]:
    if isinstance(name_or_path, LibsvmDataset):
        dataset = name_or_path
    elif isinstance(name_or_path, str) and name_or_path in LIBSVM_DATASETS:
        dataset = LIBSVM_DATASETS[name_or_path]
    else:
        _check_file(name_or_path)
        return None, None
    if split not in dataset.splits:
        raise ValueError(
            f"{dataset.name} has no split {split!r}; available: {', '.join(dataset.splits)}"
        )
    return dataset, dataset.splits[split]


def _check_file(name_or_path: Any) -> None:
    """Refuse anything but an existing regular file, saying what was given instead."""
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(
            "expected a registered LIBSVM data set name or a file path; got "
            f"{type(name_or_path).__name__}"
        )
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        raise LibsvmFormatError(
            path, None, "is a directory, not a LIBSVM file; give the path of a file inside it"
        )
    if path.is_file():
        return
    if path.exists():
        raise LibsvmFormatError(path, None, "is not a regular file; give a LIBSVM file")
    if path.is_symlink():
        raise FileNotFoundError(
            f"No such LIBSVM file: {path} is a symbolic link to a missing file (or a loop of links)"
        )
    text = os.fspath(name_or_path)
    separators = {"/", os.sep, os.altsep or "/"}
    if (
        isinstance(name_or_path, os.PathLike)
        or text.startswith(("~", "."))
        or any(separator in text for separator in separators)
    ):
        raise FileNotFoundError(f"No such LIBSVM file: {path}")
    hint = next(
        (
            f"; {text!r} is the {split} file of {name}: use the name {name!r} with split {split!r}"
            for name, dataset in LIBSVM_DATASETS.items()
            for split, entry in dataset.splits.items()
            if text in (entry.file_name, entry.stem)
        ),
        "",
    )
    raise ValueError(
        f"{text!r} is neither a registered LIBSVM data set nor an existing file; give a "
        f"registered name ({', '.join(sorted(LIBSVM_DATASETS))}) or the path of a LIBSVM "
        f"file{hint}"
    )


def _candidates(entry: LibsvmFile) -> list[str]:
    names = [entry.file_name, entry.stem, *(entry.stem + suffix for suffix in _COMPRESSIONS)]
    return list(dict.fromkeys(names))


def _find_in_home(entry: LibsvmFile, home: Path) -> Path | None:
    folder = home / "libsvm"
    return next((folder / n for n in _candidates(entry) if (folder / n).is_file()), None)


def _find_bundled(entry: LibsvmFile) -> Path | None:
    name = _BUNDLED.get(entry.sha256 or "")
    if name is None or not (_BUNDLED_DIR / name).is_file():
        return None
    return _BUNDLED_DIR / name


def _locate(
    dataset: LibsvmDataset, entry: LibsvmFile, split: str, home: Path, download: bool
) -> tuple[Path, bool]:
    """The file to read and whether it is the bundled copy; downloads when asked and needed."""
    found = _find_in_home(entry, home)
    if found is not None:
        return found, False
    bundled = _find_bundled(entry)
    if bundled is not None:
        return bundled, True
    folder = home / "libsvm"
    target = folder / entry.file_name
    if not download:
        raise FileNotFoundError(
            f"{dataset.name} ({split}) is not in {folder}: place the file {entry.file_name!r} "
            f"there (any of {', '.join(_candidates(entry))} works; published at "
            f"{entry.download_url}) or fetch it with 'anisoada data fetch {dataset.name}'; set "
            f"{DATA_HOME_ENV} to use another data directory"
        )
    _download(entry.download_url, target, entry.sha256)
    return target, False


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

# File signatures (first bytes). Content decides, not the name: a gzip file called "train.txt"
# is read as gzip, and a file called "x.xz" that is not xz is refused rather than misparsed.
_SIGNATURES = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
_OPENERS: dict[str, Callable[..., io.BufferedIOBase]] = {
    "gzip": gzip.open,
    "bzip2": bz2.open,
    "xz": lzma.open,
}
_SUFFIX_KINDS = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}
_UNSUPPORTED = (
    (b"PK\x03\x04", "is a zip archive (or .npz); extract the LIBSVM file from it first"),
    (b"(\xb5/\xfd", "is zstd-compressed; decompress it, or recompress it as .xz, .gz or .bz2"),
    (b"7z\xbc\xaf'\x1c", "is a 7-Zip archive; extract the LIBSVM file from it first"),
)
# scikit-learn's reader keeps feature indices in a C int.
_MAX_INDEX = 2**31 - 1
_DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)
_BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark

# One LIBSVM line without its newline, matching exactly the lines _line_problem accepts apart
# from what a regular expression cannot see (index order, index and n_features bounds, values
# that overflow to inf): whitespace as bytes.split() sees it, ``label [qid:N] (index:value)*``
# and an optional comment. Possessive quantifiers keep a failing match linear in the line.
_WS = rb"[ \t\r\x0b\x0c]"
_NUM = rb"[-+]?+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][-+]?+[0-9]++)?+"
_LINE = (
    rb"(?>" + _WS + rb"*+(?:" + _NUM
    + rb"(?:" + _WS + rb"++qid:[0-9]++)?+"
    + rb"(?:" + _WS + rb"++0*+[1-9][0-9]{0,9}+:" + _NUM + rb")*+"
    + _WS + rb"*+)?+(?:#[^\n]*+)?+)"
)  # fmt: skip
_LINE_RE = re.compile(_LINE)
_LINES_RE = re.compile(rb"(?:" + _LINE + rb"\n)*+")
_NUMBER_RE = re.compile(_NUM)
_DIGITS_RE = re.compile(rb"[0-9]+")


class _Malformed(Exception):
    """Raised by :class:`_CheckingReader` at the first chunk with a line outside the grammar."""


def _compression(path: Path, *, named: Path | None = None) -> str | None:
    """``"gzip"``, ``"bzip2"`` or ``"xz"`` from the file's first bytes; ``None`` for plain text.

    ``named`` is the name to judge the suffix by (default ``path``): a file named ``.gz``,
    ``.bz2`` or ``.xz`` whose content is not compressed at all is damaged or misnamed.
    """
    with open(path, "rb") as handle:
        head = handle.read(8)
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    for signature, problem in _UNSUPPORTED:
        if head.startswith(signature):
            raise LibsvmFormatError(path, None, problem)
    suffix = (named or path).suffix.lower()
    claimed = _SUFFIX_KINDS.get(suffix)
    if claimed is not None and head:
        raise LibsvmFormatError(
            path,
            None,
            f"is named {suffix} but does not start like {claimed} data; the file is damaged or "
            "misnamed",
        )
    return None


def _open_binary(path: Path, kind: str | None) -> io.BufferedIOBase:
    opener = _OPENERS.get(kind) if kind is not None else None
    return opener(path, "rb") if opener is not None else open(path, "rb")


def _read_error(path: Path, kind: str | None, error: BaseException) -> LibsvmFormatError:
    """A one-line message for a file that cannot be read or decompressed (no library jargon)."""
    if kind is None or (isinstance(error, OSError) and error.errno is not None):
        reason = getattr(error, "strerror", None) or "read error"
        return LibsvmFormatError(path, None, f"cannot be read ({reason})")
    state = "is truncated" if isinstance(error, EOFError) else "is corrupt"
    return LibsvmFormatError(
        path,
        None,
        f"cannot be read or decompressed: its {kind} data {state}; copy or download it again",
    )


class _CheckingReader(io.RawIOBase):
    """Pass-through reader that hashes every byte and checks every line against the grammar.

    The parser sees bytes only after this reader has passed them, so scikit-learn's lenient
    reading (``int()``/``float()`` accept ``+3``, ``1_0``, ``nan``; any token starting ``qid`` is
    skipped) never turns a malformed line into data. A UTF-8 byte-order mark at the very start
    (Windows editors write one) is hashed with the content but not passed on.
    """

    def __init__(self, stream: io.BufferedIOBase):
        self._stream = stream
        self._tail: list[bytes] = []  # the current unfinished line, in pieces (no quadratic +=)
        self.digest = hashlib.sha256()
        self._at_start = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._stream.read(len(buffer))
        if self._at_start:
            self._at_start = False
            while chunk and len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                more = self._stream.read(len(buffer) - len(chunk))  # a short read: finish the mark
                if not more:
                    break
                chunk += more
            if chunk.startswith(_BOM):
                self.digest.update(_BOM)
                chunk = chunk[len(_BOM) :]
                if not chunk:
                    return self.readinto(buffer)
        count = len(chunk)
        buffer[:count] = chunk
        self.digest.update(chunk)
        self._check(chunk)
        return count

    def _check(self, chunk: bytes) -> None:
        if not chunk:  # end of file: the last line may lack its newline
            last = b"".join(self._tail)
            self._tail = []
            if _LINE_RE.fullmatch(last) is None:
                raise _Malformed
            return
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._tail.append(chunk)
            return
        lines = b"".join([*self._tail, chunk[: cut + 1]]) if self._tail else chunk[: cut + 1]
        self._tail = [chunk[cut + 1 :]]
        if _LINES_RE.fullmatch(lines) is None:
            raise _Malformed


def _parse(path: Path, n_features: int | None) -> tuple[sp.csr_matrix, np.ndarray, str]:
    """Parse with scikit-learn behind a grammar check; locate the first bad line if either balks."""
    from sklearn.datasets import load_svmlight_file

    kind = None
    try:
        kind = _compression(path)
        with _open_binary(path, kind) as raw:
            reader = _CheckingReader(raw)
            buffered = io.BufferedReader(reader, buffer_size=_CHUNK)
            X, y = load_svmlight_file(
                buffered, n_features=n_features, zero_based=False, dtype=np.float64
            )
            while buffered.read(_CHUNK):  # hash and check any tail the parser did not need
                pass
    except LibsvmFormatError:
        raise
    except (_Malformed, ValueError, OverflowError) as error:
        raise _located_error(path, kind, n_features) from error
    except _DECOMPRESSION_ERRORS as error:
        raise _read_error(path, kind, error) from error
    if X.shape[0] == 0:
        raise LibsvmFormatError(
            path,
            None,
            "has no data rows (it is empty, or holds only blank and comment lines); check that "
            "this is the intended file",
        )
    if not (np.isfinite(X.data).all() and np.isfinite(y).all()):
        raise _located_error(path, kind, n_features)
    X = _canonical_csr(X)
    return X, np.asarray(y, dtype=np.float64), reader.digest.hexdigest()


def _canonical_csr(X: Any) -> sp.csr_matrix:
    """CSR, float64, no explicit zeros, sorted indices, int32 indices when they fit."""
    X = sp.csr_matrix(X, dtype=np.float64)
    X.eliminate_zeros()
    X.sort_indices()
    if X.nnz < 2**31 - 1 and X.shape[1] < 2**31 - 1:
        X.indices = X.indices.astype(np.int32, copy=False)
        X.indptr = X.indptr.astype(np.int32, copy=False)
    return X


def _located_error(path: Path, kind: str | None, n_features: int | None) -> LibsvmFormatError:
    try:
        found = _first_bad_line(path, kind, n_features)
    except _DECOMPRESSION_ERRORS as error:  # the damage comes before any bad line
        return _read_error(path, kind, error)
    if found is None:  # not expected: the grammar check and the scan agree by construction
        return LibsvmFormatError(path, None, "cannot be parsed as LIBSVM data")
    return LibsvmFormatError(path, *found)


def _first_bad_line(path: Path, kind: str | None, n_features: int | None) -> tuple[int, str] | None:
    """Scan the file line by line and describe the first line LIBSVM's grammar rejects."""
    with _open_binary(path, kind) as handle:
        for line_number, line in enumerate(handle, start=1):
            problem = _line_problem(
                line.removeprefix(_BOM) if line_number == 1 else line, n_features
            )
            if problem is not None:
                return line_number, problem
    return None


def _line_problem(line: bytes, n_features: int | None) -> str | None:
    """What is wrong with one line, or ``None`` if it is valid (see :func:`_grammar_problem`);
    a bad line holding a carriage return inside it gets a hint about line endings."""
    problem = _grammar_problem(line, n_features)
    if problem is not None and b"\r" in line.split(b"#", 1)[0].strip():
        problem += (
            "; the line holds a carriage return (\\r) inside it: are its lines ended by \\r "
            "alone (classic Mac)? Save the file with \\n line endings"
        )
    return problem


def _grammar_problem(line: bytes, n_features: int | None) -> str | None:
    """What is wrong with one line, or ``None`` if it is valid.

    Grammar: ``label [qid:N] (index:value)*`` with an optional ``# comment``; ``label`` and
    ``value`` finite decimal numbers, ``index`` a positive integer below ``2**31``, strictly
    increasing within a line and at most ``n_features``; ``qid:N`` (a non-negative integer,
    ignored) may only follow the label. Only the comment may hold non-UTF-8 bytes.
    """
    content = line.split(b"#", 1)[0]
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as error:
        return (
            f"holds a byte that is not UTF-8 text (0x{content[error.start]:02x} at column "
            f"{error.start + 1}); is the file binary, or compressed other than as gzip, bzip2 "
            "or xz?"
        )
    tokens = content.split()
    if not tokens:
        return None
    if _number(tokens[0]) is None:
        return f"the label {_show(tokens[0])} is not a finite number"
    previous = 0
    for position, token in enumerate(tokens[1:]):
        index_text, colon, value_text = token.partition(b":")
        if not colon:
            return f"expected index:value, got {_show(token)}"
        if index_text == b"qid":
            if position != 0:
                return f"{_show(token)}: a query id may only come right after the label"
            if not _DIGITS_RE.fullmatch(value_text):
                return f"the query id in {_show(token)} is not a non-negative integer"
            continue
        if not _DIGITS_RE.fullmatch(index_text):
            return f"the feature index in {_show(token)} is not a positive integer"
        significant = index_text.lstrip(b"0")
        # Length first: int() refuses more than 4300 digits, and no index needs 11.
        if len(significant) > 10 or int(significant or b"0") > _MAX_INDEX:
            return (
                f"the feature index in {_show(token)} is too large (the largest supported is "
                f"{_MAX_INDEX})"
            )
        index = int(significant or b"0")
        if index == 0:
            return f"feature index 0 in {_show(token)}: LIBSVM indices start at 1"
        if index <= previous:
            return f"feature indices must increase; {index} follows {previous}"
        if n_features is not None and index > n_features:
            return (
                f"feature index {index} exceeds n_features={n_features} "
                "(the training data has fewer features)"
            )
        if _number(value_text) is None:
            return f"the value in {_show(token)} is not a finite number"
        previous = index
    return None


def _number(text: bytes) -> float | None:
    """A finite decimal number, or ``None`` (``float()`` alone would accept ``1_0`` and ``nan``)."""
    if _NUMBER_RE.fullmatch(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _show(token: bytes, width: int = 40) -> str:
    text = token.decode("utf-8", "replace")
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _to_plus_minus_one(
    labels: np.ndarray, coding: tuple[float, float] | None, source: Path, origin: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """Labels as ``±1``, and the ``(negative, positive)`` coding that was applied."""
    values = np.unique(labels)
    if values.size > 2:
        shown = ", ".join(f"{v:g}" for v in values[:10])
        raise LibsvmFormatError(
            source,
            None,
            f"{values.size} distinct labels ({shown}{' ...' if values.size > 10 else ''}); "
            "only binary classification (two label values) is supported",
        )
    if coding is None:
        if values.size < 2:
            raise LibsvmFormatError(
                source,
                None,
                f"every label is {values[0]:g}: the file holds a single class, but binary "
                "classification needs two",
            )
        coding = (float(values[0]), float(values[1]))
    negative, positive = coding
    unexpected = values[(values != negative) & (values != positive)]
    if unexpected.size:
        raise LibsvmFormatError(
            source,
            None,
            f"label {unexpected[0]:g} is neither {negative:g} (negative) nor {positive:g} "
            f"(positive), the classes {origin}",
        )
    return np.where(labels == positive, 1.0, -1.0), coding


# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------


def _cache_path(directory: Path, source: Path, n_features: int | None) -> Path:
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    return directory / f"{source.name}-{key}-{n_features or 'auto'}.npz"


def _arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """CRC-32 over names, dtypes, shapes and bytes: detects damage, costs ~0.1 ms per MB.

    (The cache guards against corruption, not against an adversary; sha256 would make a cached
    load several times slower.)
    """
    crc = 0
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        crc = zlib.crc32(f"{name}:{array.dtype.str}:{array.shape}".encode(), crc)
        crc = zlib.crc32(array.data.cast("B"), crc)  # array.data: the memoryview of its buffer
    return f"crc32:{crc:08x}"


def _source_stamp(source: Path) -> dict[str, Any]:
    stat = source.stat()
    return {"source": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_cache(
    path: Path,
    source: Path,
    n_features: int | None,
    X: sp.csr_matrix,
    labels: np.ndarray,
    content_sha: str,
) -> None:
    arrays = {"data": X.data, "indices": X.indices, "indptr": X.indptr, "labels": labels}
    meta = {
        "format": _CACHE_FORMAT,
        **_source_stamp(source),
        "n_features_requested": n_features,
        "shape": list(X.shape),
        "content_sha256": content_sha,
        "arrays_digest": _arrays_digest(arrays),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as handle:
            # mypy matches **arrays against savez's keyword allow_pickle: bool (no such key here)
            np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    except OSError as error:
        reason = error.strerror or type(error).__name__
        warnings.warn(
            f"could not write the cache {path} ({reason}: {error.filename}); the file will be "
            "parsed on every load. Pass cache_dir= to a writable directory.",
            stacklevel=3,
        )


def _read_cache(path: Path, source: Path) -> tuple[sp.csr_matrix, np.ndarray, str] | None:
    """The cached arrays if the cache is intact and matches ``source``; else ``None``."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {name: stored[name] for name in ("data", "indices", "indptr", "labels")}
        if meta.get("format") != _CACHE_FORMAT:
            return None
        stamp = _source_stamp(source)
        if any(meta.get(key) != value for key, value in stamp.items()):
            return None  # the source changed: stale, rebuild quietly
        if _arrays_digest(arrays) != meta["arrays_digest"]:
            raise ValueError("array digest mismatch")
        shape = tuple(meta["shape"])
        X = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        if X.indptr.size != shape[0] + 1 or arrays["labels"].shape != (shape[0],):
            raise ValueError("inconsistent shapes")
        return X, arrays["labels"], meta["content_sha256"]
    except Exception as error:  # any damage at all means: do not trust it
        warnings.warn(f"cache {path} is corrupt ({error!r}); rebuilding it", stacklevel=3)
        return None


# ---------------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------------


def content_sha256(path: str | Path) -> str:
    """SHA-256 of a LIBSVM file's decompressed content (the registry's checksum convention).

    Raises:
        LibsvmFormatError: the compressed data is truncated or corrupt.
    """
    try:
        return _content_sha256(Path(path))
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as error:
        raise LibsvmFormatError(path, None, f"cannot be read ({error})") from None


def _content_sha256(path: Path, *, named: Path | None = None) -> str:
    digest = hashlib.sha256()
    with _open_binary(path, _compression(path, named=named)) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, target: Path, expected_sha: str | None, *, timeout: float = 60.0) -> None:
    """Fetch ``url`` to ``target`` atomically.

    The bytes go to a temporary file beside ``target``; the download must have the announced
    length and decompress completely (and match ``expected_sha`` over the decompressed content
    when known) before it is renamed to ``target``. Any failure removes the temporary file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary, open(temporary, "wb") as handle:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                announced = response.headers.get("Content-Length")
                shutil.copyfileobj(response, handle, _CHUNK)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            # HTTPException covers protocol errors such as IncompleteRead.
            raise LibsvmDownloadError(
                f"Could not download {url} ({_describe(error)}). Without network access, "
                f"download it elsewhere and place it at {target}."
            ) from error
        handle.flush()
        received = handle.tell()
        if announced is not None and announced.isdigit() and int(announced) != received:
            raise LibsvmDownloadError(
                f"Could not download {url}: the connection closed after {received} of "
                f"{announced} bytes; nothing was saved. Retry, or place the file at {target}."
            )
        try:
            actual = _content_sha256(temporary, named=target)
        except (*_DECOMPRESSION_ERRORS, LibsvmFormatError) as error:
            raise LibsvmDownloadError(
                f"The download of {url} cannot be decompressed (it is truncated or not "
                f"{_SUFFIX_KINDS.get(target.suffix.lower(), 'the expected')} data); nothing was "
                "saved."
            ) from error
        if expected_sha is not None and actual != expected_sha:
            raise ChecksumError(
                f"The download of {url} has content sha256 {actual}, expected {expected_sha}; "
                f"nothing was saved. Retry, or place a verified copy at {target}."
            )


def _describe(error: BaseException) -> str:
    """The human part of a network error (``Connection refused``, ``HTTP 404: Not Found``)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}: {error.reason}"
    reason = getattr(error, "reason", None)
    if isinstance(reason, OSError):
        return reason.strerror or type(reason).__name__
    if isinstance(reason, str) and reason:
        return reason
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def save_libsvm(path: str | Path, X: Any, y: np.ndarray) -> Path:
    """Write ``(X, y)`` as a LIBSVM file (compressed by suffix: ``.bz2``, ``.gz``, ``.xz``).

    Values are written with Python's shortest round-trip ``repr``, so loading the file back gives
    exactly the same float64 numbers; integral labels are written as integers. Indices are
    1-based; zeros are not written. The write is atomic (temporary file + ``os.replace``).

    Args:
        path: Output file.
        X: ``(n, d)`` dense array or sparse matrix, finite.
        y: ``(n,)`` finite labels.

    Returns:
        The path written.
    """
    path = Path(path).expanduser()
    X = sp.csr_matrix(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X; got {y.shape}")
    if not (np.isfinite(X.data).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite to be written in LIBSVM format")
    X.eliminate_zeros()
    X.sort_indices()
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = _COMPRESSIONS.get(path.suffix.lower())
    with atomic_open(path, "wb") as raw:
        # A compressor opened on a file object does not close it: closing writes its trailer.
        stream = opener(raw, "wb") if opener is not None else raw
        lines = _libsvm_lines(X, y)
        while batch := "".join(itertools.islice(lines, 4096)):
            stream.write(batch.encode("ascii"))
        if stream is not raw:
            stream.close()
    return path


def _libsvm_lines(X: sp.csr_matrix, y: np.ndarray) -> Iterator[str]:
    indices, values = X.indices.tolist(), X.data.tolist()
    for row, label in enumerate(y.tolist()):
        start, stop = X.indptr[row], X.indptr[row + 1]
        features = " ".join(f"{indices[k] + 1}:{values[k]!r}" for k in range(int(start), int(stop)))
        label_text = str(int(label)) if float(label).is_integer() else repr(label)
        yield f"{label_text} {features}\n" if features else f"{label_text}\n"
