"""LIBSVM binary classification data sets: registry, robust parsing, verified downloads, a cache.

The paper's convex experiments are logistic regression on LIBSVM's binary sets. This module finds
them in the data home, parses them (scikit-learn's fast reader, with our own error locations),
normalises the labels to ``{−1, +1}``, aligns train and test features, and caches the parsed
arrays as ``.npz`` so that every later load is a memory copy rather than a parse.

File layout under the data home (:func:`data_home`)::

    <data home>/libsvm/a9a            # the file as published (or a9a.bz2 / a9a.xz / a9a.gz)
    <data home>/libsvm/a9a.t
    <data home>/libsvm/cache/...npz   # parsed arrays + metadata, rebuilt when stale or corrupt

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
from typing import IO, Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from anisoada._io import atomic_open, atomic_path

__all__ = [
    "DATA_HOME_ENV",
    "LIBSVM_DATASETS",
    "ChecksumError",
    "LibsvmData",
    "LibsvmDataset",
    "LibsvmDownloadError",
    "LibsvmFile",
    "LibsvmFormatError",
    "data_home",
    "libsvm_available",
    "load_libsvm",
    "save_libsvm",
]

DATA_HOME_ENV = "ANISOADA_DATA"
LIBSVM_BINARY_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"
# Bumped whenever the parsed representation changes, so older caches are rebuilt, not trusted.
_CACHE_FORMAT = 1
_COMPRESSIONS: dict[str, Callable[..., IO[bytes]]] = {
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
    train: LibsvmFile,
    test: LibsvmFile | None = None,
    *,
    label_coding: tuple[float, float] | None = None,
    description: str,
) -> tuple[str, LibsvmDataset]:
    splits = {"train": train} if test is None else {"train": train, "test": test}
    return name, LibsvmDataset(name, n_features, splits, label_coding, description)


# Shapes and file names from the LIBSVM binary page. sha256 values (of the decompressed content)
# are recorded only where they were verified against a copy of the file; the other files are
# checked by their shape only.
LIBSVM_DATASETS: Mapping[str, LibsvmDataset] = MappingProxyType(
    dict(
        [
            _dataset(
                "a9a",
                123,
                LibsvmFile(
                    "a9a",
                    32_561,
                    "f5d5ffd8d865ff41328e7ee043e4b020816914ff6843ff15b98905ddbedce906",
                ),
                LibsvmFile(
                    "a9a.t",
                    16_281,
                    "1f448a153f0320399a7e40836eb207655b0bde0f21fc941cc472193daa9f5de9",
                ),
                label_coding=(-1.0, 1.0),
                description="UCI Adult census income, binarised features (J. Platt)",
            ),
            _dataset(
                "w8a",
                300,
                LibsvmFile(
                    "w8a",
                    49_749,
                    "b464b4f6ce6a5d9e181ffc793e19a04751036273722312398ef7673705014902",
                ),
                LibsvmFile("w8a.t", 14_951),
                label_coding=(-1.0, 1.0),
                description="web page keyword features (J. Platt, SMO paper)",
            ),
            _dataset(
                "mushrooms",
                112,
                LibsvmFile(
                    "mushrooms",
                    8_124,
                    "51919a59d92e6ec922259e77afd91d9a809299613ee0da052a19abe746aa2244",
                ),
                label_coding=(1.0, 2.0),
                description="UCI Mushroom, one-hot attributes; labels 1/2",
            ),
            _dataset(
                "real-sim",
                20_958,
                LibsvmFile("real-sim.bz2", 72_309),
                description="real vs simulated auto/aviation Usenet articles (bag of words)",
            ),
            _dataset(
                "rcv1.binary",
                47_236,
                LibsvmFile("rcv1_train.binary.bz2", 20_242),
                LibsvmFile("rcv1_test.binary.bz2", 677_399),
                description="Reuters RCV1-v2 news, two merged topic groups (tf-idf)",
            ),
            _dataset(
                "news20.binary",
                1_355_191,
                LibsvmFile("news20.binary.bz2", 19_996),
                description="20 Newsgroups split into two halves (tf-idf)",
            ),
            _dataset(
                "covtype.binary",
                54,
                LibsvmFile("covtype.libsvm.binary.bz2", 581_012),
                label_coding=(1.0, 2.0),
                description="UCI Forest Covertype, class 2 vs rest; labels 1/2",
            ),
            _dataset(
                "ijcnn1",
                22,
                LibsvmFile("ijcnn1.bz2", 49_990),
                LibsvmFile("ijcnn1.t.bz2", 91_701),
                description="IJCNN 2001 challenge (training + validation; test)",
            ),
            _dataset(
                "gisette",
                5_000,
                LibsvmFile("gisette_scale.bz2", 6_000),
                LibsvmFile("gisette_scale.t.bz2", 1_000),
                description="NIPS 2003 feature selection challenge, 4 vs 9 digits (scaled)",
            ),
            _dataset(
                "madelon",
                500,
                LibsvmFile("madelon", 2_000),
                LibsvmFile("madelon.t", 600),
                description="NIPS 2003 feature selection challenge, synthetic XOR-like data",
            ),
            _dataset(
                "epsilon",
                2_000,
                LibsvmFile("epsilon_normalized.bz2", 400_000),
                LibsvmFile("epsilon_normalized.t.bz2", 100_000),
                description="PASCAL large-scale learning challenge, dense, row-normalised",
            ),
            _dataset(
                "phishing",
                68,
                LibsvmFile("phishing", 11_055),
                description="UCI phishing websites",
            ),
        ]
    )
)


# ---------------------------------------------------------------------------------------------
# Data home
# ---------------------------------------------------------------------------------------------


def data_home(path: str | Path | None = None) -> Path:
    """The directory that holds downloaded data and caches.

    Resolution order: the ``path`` argument; the ``ANISOADA_DATA`` environment variable;
    ``$XDG_CACHE_HOME/anisoada``; ``~/.cache/anisoada``. The directory is not created here.

    Example:
        >>> data_home("/tmp/anisoada-data")
        PosixPath('/tmp/anisoada-data')
    """
    return _resolve_data_home(path)


def _resolve_data_home(path: str | Path | None) -> Path:
    if path is not None:
        return Path(path).expanduser()
    configured = os.environ.get(DATA_HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    return _user_cache_home()


def _user_cache_home() -> Path:
    cache_root = os.environ.get("XDG_CACHE_HOME")
    root = Path(cache_root).expanduser() if cache_root else Path.home() / ".cache"
    return root / "anisoada"


def _default_cache_dir(home: Path) -> Path:
    """``<home>/libsvm/cache``, unless that data directory is read-only.

    A data directory whose permission bits grant no write access (a shared, read-only copy of
    the data) is left untouched even when the process could write it anyway (as root): its
    cache goes to the per-user ``~/.cache/anisoada/libsvm/cache`` instead.
    """
    folder = home / "libsvm"
    if folder.is_dir() and (folder.stat().st_mode & 0o222 == 0 or not os.access(folder, os.W_OK)):
        return _user_cache_home() / "libsvm" / "cache"
    return folder / "cache"


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


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
    :class:`LibsvmDataset`, or the path of any LIBSVM-format file. A registered file is looked
    up as ``<data home>/libsvm/<file name>``, also accepting the same content compressed
    differently (``a9a``, ``a9a.bz2``, ``a9a.xz``, ``a9a.gz``). Plain, ``.bz2``, ``.gz`` and
    ``.xz`` files are read.

    Labels: two values are mapped to ``−1`` (the negative class: the registry's coding, or else
    the smaller value) and ``+1``, so ``{0, 1}``, ``{1, 2}`` and ``{−1, 1}`` all become
    ``{−1, +1}``; more than two distinct labels is an error. Features use LIBSVM's 1-based
    indices; explicit zeros are dropped. Splits of a registered set share its ``n_features``,
    so train and test columns align; for your own files pass ``n_features=X_train.shape[1]``
    when loading the test file (a test file with a larger index is an error, never silently
    cut).

    Parsing uses scikit-learn's reader; when it rejects a file, the file is scanned again to
    report the first bad line. Parsed arrays are cached under ``<data home>/libsvm/cache`` with
    the source's size, mtime and sha256 and a digest of the arrays; a stale or corrupt cache is
    rebuilt (with a warning when corrupt), never used.

    Args:
        name_or_path: Registered name, :class:`LibsvmDataset`, or file path.
        split: ``"train"`` or ``"test"`` for registered sets (ignored for a path).
        data_home: Data directory; default :func:`data_home` (``ANISOADA_DATA``, else
            ``~/.cache/anisoada``).
        download: Fetch a missing registered file from the LIBSVM page (into a temporary file,
            checksum-verified when a sha256 is known, then renamed into place).
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
        FileNotFoundError: The file is missing (the message says which file to place where, or
            to pass ``download=True``); :class:`LibsvmDownloadError` if a download failed.
        LibsvmFormatError: A malformed file (file name and line number).
        ChecksumError: Content differs from the registry's sha256.
        ValueError: Unknown split, more than two classes, or a shape that differs from the
            registry's.

    Example:
        >>> X, y = load_libsvm("a9a", download=True)  # doctest: +SKIP
        >>> X.shape, sorted(set(y))  # doctest: +SKIP
        ((32561, 123), [-1.0, 1.0])

    References:
        C.-C. Chang and C.-J. Lin. LIBSVM data sets,
        https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html
    """
    home = _resolve_data_home(data_home)
    dataset, entry = _resolve_dataset(name_or_path, split)
    if dataset is None or entry is None:
        source = Path(str(name_or_path)).expanduser()
        expected_sha, expected_rows = None, None
        coding = label_coding
        what = str(source)
    else:
        source = _locate(dataset, entry, split, home, download)
        expected_sha, expected_rows = entry.sha256, entry.n_samples
        coding = label_coding if label_coding is not None else dataset.label_coding
        if n_features is None:
            n_features = dataset.n_features
        elif n_features < dataset.n_features:
            raise ValueError(
                f"n_features={n_features} is below {dataset.name}'s {dataset.n_features} features"
            )
        what = f"{dataset.name} ({split})"
    if n_features is not None and (not isinstance(n_features, int) or n_features < 1):
        raise ValueError(f"n_features must be a positive integer or None; got {n_features!r}")
    if coding is not None and (len(coding) != 2 or coding[0] == coding[1]):
        raise ValueError(f"label_coding must be two different values; got {coding!r}")

    directory = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir(home)
    cache_path = _cache_path(directory, source, n_features) if cache else None
    X, raw_labels = None, None
    if cache_path is not None and cache_path.exists():
        loaded = _read_cache(cache_path, source)
        if loaded is not None:
            X, raw_labels, cached_sha = loaded
            if expected_sha is not None and cached_sha != expected_sha:
                X = raw_labels = None  # the registry changed its mind: verify again
    if X is None:
        X, raw_labels, content_sha = _parse(source, n_features)
        if expected_sha is not None and content_sha != expected_sha:
            raise ChecksumError(
                f"{source}: sha256 of the content is {content_sha}, but {what} should be "
                f"{expected_sha}; the file is corrupt or a different version. Delete it and "
                "download it again."
            )
        if cache_path is not None:
            _write_cache(cache_path, source, n_features, X, raw_labels, content_sha)
    if expected_rows is not None and X.shape[0] != expected_rows:
        raise ValueError(
            f"{source}: {what} should have {expected_rows} rows, but the file has {X.shape[0]}; "
            "it is incomplete or a different version. Delete it and download it again."
        )
    return LibsvmData(X, _to_plus_minus_one(raw_labels, coding, source))


def libsvm_available(
    name: str, *, split: str = "train", data_home: str | Path | None = None
) -> bool:
    """Whether a registered data set's file is already in the data home (never downloads).

    Any of the accepted compressions counts (``a9a``, ``a9a.bz2``, ``a9a.xz``, ``a9a.gz``).

    Args:
        name: Registered name (a key of ``LIBSVM_DATASETS``).
        split: ``"train"`` or ``"test"``; a split the data set does not have is ``False``.
        data_home: Data directory; default :func:`data_home`.

    Returns:
        ``True`` when :func:`load_libsvm` would find the file without downloading.
    """
    if name not in LIBSVM_DATASETS:
        raise ValueError(
            f"Unknown LIBSVM data set {name!r}; registered: {', '.join(sorted(LIBSVM_DATASETS))}"
        )
    entry = LIBSVM_DATASETS[name].splits.get(split)
    if entry is None:
        return False
    folder = _resolve_data_home(data_home) / "libsvm"
    return any((folder / candidate).is_file() for candidate in _candidates(entry))


def _resolve_dataset(
    name_or_path: str | Path | LibsvmDataset, split: str
) -> tuple[LibsvmDataset | None, LibsvmFile | None]:
    if isinstance(name_or_path, LibsvmDataset):
        dataset = name_or_path
    elif isinstance(name_or_path, str) and name_or_path in LIBSVM_DATASETS:
        dataset = LIBSVM_DATASETS[name_or_path]
    else:
        path = Path(name_or_path).expanduser()
        if path.is_file():
            return None, None
        raise FileNotFoundError(
            f"{str(name_or_path)!r} is neither an existing file nor a registered LIBSVM data set "
            f"(registered: {', '.join(sorted(LIBSVM_DATASETS))})"
        )
    if split not in dataset.splits:
        raise ValueError(
            f"{dataset.name} has no split {split!r}; available: {sorted(dataset.splits)}"
        )
    return dataset, dataset.splits[split]


def _candidates(entry: LibsvmFile) -> list[str]:
    names = [entry.file_name, entry.stem, *(entry.stem + suffix for suffix in _COMPRESSIONS)]
    return list(dict.fromkeys(names))


def _locate(
    dataset: LibsvmDataset, entry: LibsvmFile, split: str, home: Path, download: bool
) -> Path:
    folder = home / "libsvm"
    for name in _candidates(entry):
        if (folder / name).is_file():
            return folder / name
    target = folder / entry.file_name
    if not download:
        raise FileNotFoundError(
            f"{dataset.name} ({split}) is not in {folder}. Place the file {entry.file_name!r} "
            f"there (any of {', '.join(_candidates(entry))} works), e.g. from "
            f"{entry.download_url}, or pass download=True; set {DATA_HOME_ENV} to use another "
            "data directory."
        )
    _download(entry.download_url, target, entry.sha256)
    return target


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _open_binary(path: Path, *, compression_of: Path | None = None) -> IO[bytes]:
    """Decompressing reader chosen by the suffix of ``compression_of`` (default ``path``)."""
    opener = _COMPRESSIONS.get((compression_of or path).suffix.lower())
    return opener(path, "rb") if opener is not None else open(path, "rb")


class _HashingReader(io.RawIOBase):
    """Pass-through reader that hashes every byte the parser consumes."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._stream.read(len(buffer))
        count = len(chunk)
        buffer[:count] = chunk
        self.digest.update(chunk)
        return count


def _parse(path: Path, n_features: int | None) -> tuple[sp.csr_matrix, np.ndarray, str]:
    """Parse with scikit-learn; locate the first bad line ourselves if it refuses."""
    from sklearn.datasets import load_svmlight_file

    try:
        with _open_binary(path) as raw:
            reader = _HashingReader(raw)
            buffered = io.BufferedReader(reader, buffer_size=_CHUNK)
            X, y = load_svmlight_file(
                buffered, n_features=n_features, zero_based=False, dtype=np.float64
            )
            while buffered.read(_CHUNK):  # hash any tail the parser did not need
                pass
    except (OSError, EOFError, lzma.LZMAError) as error:
        raise LibsvmFormatError(path, None, f"cannot be read or decompressed ({error})") from error
    except ValueError as error:
        line_number, message = _first_bad_line(path, n_features) or (None, str(error))
        raise LibsvmFormatError(path, line_number, message) from error
    if not (np.isfinite(X.data).all() and np.isfinite(y).all()):
        line_number, message = _first_bad_line(path, n_features) or (None, "non-finite value")
        raise LibsvmFormatError(path, line_number, message)
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


_INDEX = re.compile(rb"^[0-9]+$")


def _first_bad_line(path: Path, n_features: int | None) -> tuple[int, str] | None:
    """Scan the file line by line and describe the first line LIBSVM's grammar rejects.

    Grammar: ``label (index:value)*`` with an optional ``# comment``; ``label`` and ``value``
    finite numbers, ``index`` a positive integer, strictly increasing within a line and at most
    ``n_features``; ``qid:<int>`` tokens are allowed and ignored (as scikit-learn does).
    """
    with _open_binary(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            problem = _line_problem(line, n_features)
            if problem is not None:
                return line_number, problem
    return None


def _line_problem(line: bytes, n_features: int | None) -> str | None:
    content = line.split(b"#", 1)[0]
    tokens = content.split()
    if not tokens:
        return None
    label = _number(tokens[0])
    if label is None:
        return f"the label {_show(tokens[0])} is not a finite number"
    previous = 0
    for token in tokens[1:]:
        index_text, colon, value_text = token.partition(b":")
        if not colon:
            return f"expected index:value, got {_show(token)}"
        if index_text == b"qid" and _INDEX.match(value_text):
            continue
        if not _INDEX.match(index_text):
            return f"the feature index in {_show(token)} is not a positive integer"
        index = int(index_text)
        if index == 0:
            return f"feature index 0 in {_show(token)}: LIBSVM indices start at 1"
        if index <= previous:
            return f"feature indices must increase; {index} follows {previous}"
        if n_features is not None and index > n_features:
            return (
                f"feature index {index} exceeds n_features={n_features} "
                "(load the training file's n_features, or raise it)"
            )
        if _number(value_text) is None:
            return f"the value in {_show(token)} is not a finite number"
        previous = index
    return None


def _number(text: bytes) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _show(token: bytes, width: int = 40) -> str:
    text = token.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= width else text[: width - 3] + "...")


# A file holding a single class: −1 and 0 are negatives, 1 and 2 positives.
_SINGLE_CLASS_CODING = {-1.0: (-1.0, 1.0), 0.0: (0.0, 1.0), 1.0: (-1.0, 1.0), 2.0: (1.0, 2.0)}


def _to_plus_minus_one(
    labels: np.ndarray, coding: tuple[float, float] | None, source: Path
) -> np.ndarray:
    values = np.unique(labels)
    if values.size > 2:
        shown = ", ".join(f"{v:g}" for v in values[:10])
        raise ValueError(
            f"{source}: {values.size} distinct labels ({shown}{' ...' if values.size > 10 else ''})"
            "; load_libsvm is for binary classification"
        )
    if coding is None:
        if values.size == 2:
            coding = (float(values[0]), float(values[1]))
        elif values.size == 0:
            coding = (-1.0, 1.0)
        else:  # one class only: read it in the usual codings −1/+1, 0/1 and 1/2
            coding = _SINGLE_CLASS_CODING.get(float(values[0]))
            if coding is None:
                raise ValueError(
                    f"{source}: every label is {values[0]:g}, which is not in a known coding "
                    "(−1/+1, 0/1, 1/2); pass label_coding=(negative, positive)"
                )
    negative, positive = coding
    unexpected = values[(values != negative) & (values != positive)]
    if unexpected.size:
        raise ValueError(
            f"{source}: label {unexpected[0]:g} is neither {negative:g} (negative) nor "
            f"{positive:g} (positive); pass label_coding=(negative, positive)"
        )
    return np.where(labels == positive, 1.0, -1.0)


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
        crc = zlib.crc32(memoryview(array).cast("B"), crc)
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
            np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
    except OSError as error:
        warnings.warn(
            f"could not write the cache {path} ({error}); the file will be parsed on every load. "
            "Pass cache_dir= to a writable directory.",
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


def _content_sha256(path: Path, *, compression_of: Path | None = None) -> str:
    digest = hashlib.sha256()
    with _open_binary(path, compression_of=compression_of) as handle:
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
                f"Could not download {url} ({error}). Without network access, download it "
                f"elsewhere and place it at {target}."
            ) from error
        handle.flush()
        received = handle.tell()
        if announced is not None and announced.isdigit() and int(announced) != received:
            raise LibsvmDownloadError(
                f"Could not download {url}: the connection closed after {received} of "
                f"{announced} bytes; nothing was saved. Retry, or place the file at {target}."
            )
        try:
            actual = _content_sha256(temporary, compression_of=target)
        except (OSError, EOFError, lzma.LZMAError) as error:
            raise LibsvmDownloadError(
                f"The download of {url} cannot be decompressed ({error}); nothing was saved."
            ) from error
        if expected_sha is not None and actual != expected_sha:
            raise ChecksumError(
                f"The download of {url} has content sha256 {actual}, expected {expected_sha}; "
                f"nothing was saved. Retry, or place a verified copy at {target}."
            )


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
