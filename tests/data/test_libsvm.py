"""LIBSVM loading: exact parsing, labels, alignment, located errors, cache and download."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import json
import lzma
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.datasets import dump_svmlight_file

from anisoada.data import (
    LIBSVM_DATASETS,
    ChecksumError,
    LibsvmDataset,
    LibsvmDownloadError,
    LibsvmFile,
    LibsvmFormatError,
    data_home,
    libsvm_available,
    load_libsvm,
    save_libsvm,
)
from anisoada.data import libsvm as libsvm_module
from anisoada.data.libsvm import locate_libsvm

SMALL = b"""# a comment line
+1 1:0.5 3:2 # trailing comment
-1

-1 2:-1.25e-3 3:0 4:7
1 qid:3 4:1
"""
SMALL_X = np.array(
    [[0.5, 0, 2, 0], [0, 0, 0, 0], [0, -1.25e-3, 0, 7], [0, 0, 0, 1]], dtype=np.float64
)
SMALL_Y = np.array([1.0, -1.0, -1.0, 1.0])
OPENERS = {"": open, ".bz2": bz2.open, ".gz": gzip.open, ".xz": lzma.open}


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with OPENERS[path.suffix if path.suffix in OPENERS else ""](path, "wb") as handle:
        handle.write(content)
    return path


def _load(path, tmp_path, **kwargs):
    return load_libsvm(path, data_home=tmp_path / "home", **kwargs)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".bz2", ".gz", ".xz"])
def test_small_file_parses_exactly_in_every_compression(tmp_path, suffix):
    path = _write(tmp_path / f"small{suffix}", SMALL)
    X, y = _load(path, tmp_path)
    assert isinstance(X, sp.csr_matrix) and X.dtype == np.float64 and X.has_sorted_indices
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    np.testing.assert_array_equal(y, SMALL_Y)
    assert X.nnz == 5  # the explicit "3:0" is dropped


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([0, 1, 1, 0], [-1, 1, 1, -1]),
        ([1, 2, 2, 1], [-1, 1, 1, -1]),
        ([-1, 1, 1, -1], [-1, 1, 1, -1]),
        ([2, 4, 4, 2], [-1, 1, 1, -1]),  # breast-cancer's coding
        ([0.5, -3, -3, 0.5], [1, -1, -1, 1]),
    ],
)
def test_labels_are_normalised_to_plus_minus_one(tmp_path, labels, expected):
    content = "".join(f"{label} 1:1\n" for label in labels).encode()
    _, y = _load(_write(tmp_path / "labels", content), tmp_path)
    np.testing.assert_array_equal(y, expected)


def test_more_than_two_classes_and_a_single_class_are_errors(tmp_path):
    path = _write(tmp_path / "multi", b"1 1:1\n2 1:1\n3 1:1\n")
    with pytest.raises(LibsvmFormatError) as caught:
        _load(path, tmp_path)
    assert str(caught.value) == (
        f"{path}: 3 distinct labels (1, 2, 3); only binary classification (two label values) "
        "is supported"
    )
    many = _write(tmp_path / "many", "".join(f"{k} 1:1\n" for k in range(12)).encode())
    with pytest.raises(LibsvmFormatError, match=r"12 distinct labels \(0, 1, .*, 9 \.\.\.\)"):
        _load(many, tmp_path)
    for label in (5, 1, 0, -1, 2):
        single = _write(tmp_path / f"single{label}", f"{label} 1:1\n{label} 2:1\n".encode())
        with pytest.raises(LibsvmFormatError) as caught:
            _load(single, tmp_path)
        assert str(caught.value) == (
            f"{single}: every label is {label}: the file holds a single class, but binary "
            "classification needs two"
        )
    # Saying which class it is makes a one-class file (e.g. a small test file) readable.
    _, y = _load(single, tmp_path, label_coding=(-1, 2))
    np.testing.assert_array_equal(y, [1, 1])
    with pytest.raises(
        LibsvmFormatError,
        match=r"label 2 is neither 0 \(negative\) nor 1 \(positive\), the classes given as "
        "label_coding",
    ):
        _load(single, tmp_path, label_coding=(0, 1))


@pytest.mark.parametrize(
    ("coding", "shown"),
    [((1, 1), "(1, 1)"), ((0, float("nan")), "(0, nan)"), ((1,), "(1)"), ("ab", "'ab'"),
     ((np.float64(0.0), np.float64(0.0)), "(0.0, 0.0)")],
)  # fmt: skip
def test_bad_label_coding_is_refused_in_plain_words(tmp_path, coding, shown):
    path = _write(tmp_path / "two", b"1 1:1\n-1 1:1\n")
    with pytest.raises(ValueError) as caught:
        _load(path, tmp_path, label_coding=coding)
    assert str(caught.value) == (
        f"label_coding must be two different finite numbers (negative, positive); got {shown}"
    )


def test_train_and_test_features_align_through_n_features(tmp_path):
    train = _write(tmp_path / "train", b"1 1:1 5:1\n-1 2:1\n")
    test = _write(tmp_path / "test", b"1 3:1\n-1 1:2\n")
    X_train, _ = _load(train, tmp_path)
    X_test, _ = _load(test, tmp_path, n_features=X_train.shape[1])
    assert X_train.shape == (2, 5) and X_test.shape == (2, 5)
    np.testing.assert_array_equal(X_test.toarray(), [[0, 0, 1, 0, 0], [2, 0, 0, 0, 0]])
    wide = _write(tmp_path / "wide", b"1 1:1\n-1 2:1 7:1\n")
    with pytest.raises(
        LibsvmFormatError, match=r"wide, line 2: feature index 7 exceeds n_features=5"
    ):
        _load(wide, tmp_path, n_features=5)
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        _load(train, tmp_path, n_features=0)


BAD_LINES = [
    (b"1 3\n", "expected index:value, got '3'"),
    (b"1 3:\n", "the value in '3:' is not a finite number"),
    (b"1 :2\n", "the feature index in ':2' is not a positive integer"),
    (b"1 3.5:1\n", "the feature index in '3.5:1' is not a positive integer"),
    (b"1 0:1\n", "feature index 0 in '0:1': LIBSVM indices start at 1"),
    (b"1 -2:1\n", "the feature index in '-2:1' is not a positive integer"),
    (b"1 4:1 2:1\n", "feature indices must increase; 2 follows 4"),
    (b"1 2:1 2:1\n", "feature indices must increase; 2 follows 2"),
    (b"abc 1:1\n", "the label 'abc' is not a finite number"),
    (b"1,2 1:1\n", "the label '1,2' is not a finite number"),
    (b"1 2:abc\n", "the value in '2:abc' is not a finite number"),
    (b"1 2:1e999\n", "the value in '2:1e999' is not a finite number"),
    (b"1 2:nan\n", "the value in '2:nan' is not a finite number"),
    (b"inf 2:1\n", "the label 'inf' is not a finite number"),
    (b"1 2:1 junk\n", "expected index:value, got 'junk'"),
    # Indices beyond a C int (scikit-learn's reader overflows on them).
    (b"1 1000000000000:1\n", "the feature index in '1000000000000:1' is too large (the largest "
     "supported is 2147483647)"),
    (b"1 2147483648:1\n", "the feature index in '2147483648:1' is too large (the largest "
     "supported is 2147483647)"),
    (b"1 " + b"9" * 5000 + b":1\n", f"the feature index in '{'9' * 37}...' is too large (the "
     "largest supported is 2147483647)"),
    # Spellings Python's int()/float() accept but LIBSVM's grammar does not.
    (b"1 +3:1\n", "the feature index in '+3:1' is not a positive integer"),
    (b"1 3:1_0\n", "the value in '3:1_0' is not a finite number"),
    (b"1_0 3:1\n", "the label '1_0' is not a finite number"),
    (b"1 3:0x1f\n", "the value in '3:0x1f' is not a finite number"),
    (b"1 3:infinity\n", "the value in '3:infinity' is not a finite number"),
    (b"-nan 3:1\n", "the label '-nan' is not a finite number"),
    # scikit-learn skips any first token that starts with "qid" and never reads its value.
    (b"1 qidx:4 2:1\n", "the feature index in 'qidx:4' is not a positive integer"),
    (b"1 qid:x 2:1\n", "the query id in 'qid:x' is not a non-negative integer"),
    (b"1 2:1 qid:4\n", "'qid:4': a query id may only come right after the label"),
    (b"1 2:1\xff\xfe\n", "holds a byte that is not UTF-8 text (0xff at column 6); is the file "
     "binary, or compressed other than as gzip, bzip2 or xz?"),
    (b"1 2:1\xa03:1\n", "holds a byte that is not UTF-8 text (0xa0 at column 6); is the file "
     "binary, or compressed other than as gzip, bzip2 or xz?"),
    ("1 2:1\u00a03:1\n".encode(), "the value in '2:1\\xa03:1' is not a finite number"),
    (b"1 2:1\x00\n", "the value in '2:1\\x00' is not a finite number"),
    (b"1 2:1 3:2:1\n", "the value in '3:2:1' is not a finite number"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "message"), BAD_LINES)
def test_malformed_line_reports_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path / "data.txt.bz2", b"1 1:1\n# comment\n" + bad + b"-1 2:1\n")
    with pytest.raises(LibsvmFormatError) as caught:
        _load(path, tmp_path)
    assert caught.value.line_number == 3 and caught.value.path == str(path)
    assert str(caught.value) == f"{path}, line 3: {message}"


def test_corrupt_compressed_file_is_a_format_error(tmp_path):
    path = tmp_path / "data.xz"
    path.write_bytes(lzma.compress(SMALL)[:-20])
    with pytest.raises(LibsvmFormatError, match=r"data\.xz: cannot be read or decompressed"):
        _load(path, tmp_path)


# ---------------------------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------------------------


@st.composite
def _datasets(draw, limit=None):
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 9))
    values = st.floats(
        allow_nan=False, allow_infinity=False, min_value=limit and -limit, max_value=limit
    )
    dense = np.array(
        draw(st.lists(st.lists(values, min_size=d, max_size=d), min_size=n, max_size=n))
    )
    keep = np.array(draw(st.lists(st.booleans(), min_size=n * d, max_size=n * d))).reshape(n, d)
    dense = np.where(keep, dense, 0.0)
    dense[:, -1] = np.where(dense[:, -1] == 0, 1.0, dense[:, -1])  # fixes d by its last column
    coding = draw(st.sampled_from([(-1.0, 1.0), (0.0, 1.0), (1.0, 2.0)]))
    positive = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    assume(positive.any() and not positive.all())
    labels = np.where(positive, coding[1], coding[0])
    return dense, labels, np.where(positive, 1.0, -1.0)


_property_settings = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_property_settings
@given(data=_datasets(), suffix=st.sampled_from(["", ".bz2", ".gz", ".xz"]))
def test_our_writer_round_trips_exactly(tmp_path, data, suffix):
    dense, labels, expected_y = data
    path = save_libsvm(tmp_path / f"ours{suffix}", dense, labels)
    X, y = load_libsvm(path, cache=False)
    np.testing.assert_array_equal(X.toarray(), dense)  # exact: repr round-trips float64
    np.testing.assert_array_equal(y, expected_y)


@_property_settings
@given(data=_datasets(limit=1e300))
def test_sklearn_writer_round_trips(tmp_path, data):
    dense, labels, expected_y = data
    path = tmp_path / "sklearn.svm"
    dump_svmlight_file(dense, labels, str(path), zero_based=False)
    X, y = load_libsvm(path, cache=False)
    # scikit-learn writes 16 significant digits ("%.16g"), which is not always enough for float64
    # (its writer even turns the largest float into inf): equal up to the 17th digit.
    np.testing.assert_allclose(X.toarray(), dense, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(y, expected_y)


_TOKENS = st.sampled_from(
    ["1", "-1", "+1", "0", "2", "3:1", "2:0.5", "5:-2", "0:1", "3", ":", "3:", "x", "1:e",
     "qid:2", "#", "1e999", "7:nan", "4:1e-3", "\t", "9:9", "1:1:1", "-3:1", "1.5:2"]
)  # fmt: skip


@_property_settings
@given(lines=st.lists(st.lists(_TOKENS, max_size=5).map(" ".join), min_size=1, max_size=6))
def test_random_lines_load_or_raise_our_error_at_a_bad_line(tmp_path, lines):
    path = tmp_path / "random.txt"
    path.write_bytes("\n".join(lines).encode())
    try:
        X, y = load_libsvm(path, cache=False)
    except LibsvmFormatError as error:
        if error.line_number is None:  # whole-file problems: no rows, or not two classes
            assert all(libsvm_module._line_problem(x.encode(), None) is None for x in lines)
            assert re.search("no data rows|distinct labels|every label is", str(error))
        else:
            bad = lines[error.line_number - 1].encode()
            assert libsvm_module._line_problem(bad, None) is not None
            assert all(
                libsvm_module._line_problem(x.encode(), None) is None
                for x in lines[: error.line_number - 1]
            )
    else:
        assert X.shape[0] == len(y) <= len(lines)
        assert all(libsvm_module._line_problem(x.encode(), None) is None for x in lines)


@_property_settings
@given(data=_datasets(), cut=st.floats(0.0, 1.0), suffix=st.sampled_from(["", ".xz", ".gz"]))
def test_truncated_files_load_a_prefix_or_raise_our_error(tmp_path, data, cut, suffix):
    dense, labels, _ = data
    full = save_libsvm(tmp_path / f"full{suffix}", dense, labels)
    raw = full.read_bytes()
    truncated = tmp_path / f"cut{suffix}"
    truncated.write_bytes(raw[: int(cut * len(raw))])
    try:
        X, _ = load_libsvm(truncated, cache=False, n_features=dense.shape[1])
    except LibsvmFormatError as error:
        assert str(error).startswith(str(truncated))
    else:
        rows = X.shape[0]
        if suffix == "" and rows:  # plain text: a prefix of the rows loaded, the last maybe cut
            np.testing.assert_array_equal(X.toarray()[: rows - 1], dense[: rows - 1])


# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------


def _cache_files(tmp_path):
    return sorted((tmp_path / "home" / "libsvm" / "cache").glob("*.npz"))


def _forbid_parsing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("parsed although a valid cache exists")

    monkeypatch.setattr(libsvm_module, "_parse", fail)


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    path = _write(tmp_path / "small.bz2", SMALL)
    first = _load(path, tmp_path)
    (cache,) = _cache_files(tmp_path)
    meta = json.loads(str(np.load(cache)["meta"]))
    assert meta["shape"] == [4, 4] and meta["source"] == str(path.resolve())
    assert meta["content_sha256"] == hashlib.sha256(SMALL).hexdigest()
    _forbid_parsing(monkeypatch)
    second = _load(path, tmp_path)
    assert (first.X != second.X).nnz == 0
    np.testing.assert_array_equal(first.y, second.y)
    assert not list(cache.parent.glob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "tampered_arrays"])
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, monkeypatch, damage):
    path = _write(tmp_path / "small", SMALL)
    _load(path, tmp_path)
    (cache,) = _cache_files(tmp_path)
    raw = bytearray(cache.read_bytes())
    if damage == "truncate":
        cache.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        position = raw.index(b"\x93NUMPY") + 200  # inside the first array's bytes
        raw[position] ^= 0xFF
        cache.write_bytes(bytes(raw))
    elif damage == "garbage":
        cache.write_bytes(b"not a zip file at all")
    else:  # a well-formed npz whose arrays no longer match the recorded digest
        with np.load(cache) as stored:
            arrays = {name: stored[name].copy() for name in stored.files}
        arrays["data"][0] += 1.0
        np.savez(cache, **arrays)
    with pytest.warns(UserWarning, match="is corrupt"):
        X, _ = _load(path, tmp_path)
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    _forbid_parsing(monkeypatch)  # the rebuilt cache is trusted again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_load(path, tmp_path).X.toarray(), SMALL_X)


def test_changed_source_invalidates_the_cache(tmp_path):
    path = _write(tmp_path / "small", SMALL)
    _load(path, tmp_path)
    _write(path, SMALL + b"-1 1:9\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stale is not corrupt: rebuilt quietly
        X, _ = _load(path, tmp_path)
    assert X.shape == (5, 4) and X[4, 0] == 9.0


def test_unwritable_cache_warns_and_still_loads(tmp_path):
    path = _write(tmp_path / "small", SMALL)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(UserWarning, match="could not write the cache"):
        X, _ = load_libsvm(path, cache_dir=blocker / "cache")
    np.testing.assert_array_equal(X.toarray(), SMALL_X)


def test_cache_false_writes_nothing(tmp_path):
    _load(_write(tmp_path / "small", SMALL), tmp_path, cache=False)
    assert not (tmp_path / "home").exists()


def test_interrupted_cache_write_leaves_nothing_behind(tmp_path, monkeypatch):
    path = _write(tmp_path / "small", SMALL)

    def crash(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # a killed process: not even an OSError

    monkeypatch.setattr(libsvm_module.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        _load(path, tmp_path)
    cache_dir = tmp_path / "home" / "libsvm" / "cache"
    assert list(cache_dir.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Registry, data home, missing files
# ---------------------------------------------------------------------------------------------


def test_registry_entries_are_consistent():
    expected = {"a9a", "w8a", "mushrooms", "real-sim", "rcv1.binary", "news20.binary"}
    assert expected | {"covtype.binary", "ijcnn1", "gisette"} <= set(LIBSVM_DATASETS)
    for name, dataset in LIBSVM_DATASETS.items():
        assert dataset.name == name and dataset.n_features > 0 and "train" in dataset.splits
        for entry in dataset.splits.values():
            assert entry.n_samples > 0
            assert entry.sha256 is None or len(bytes.fromhex(entry.sha256)) == 32
            assert entry.download_url.endswith("/" + entry.file_name)
    a9a = LIBSVM_DATASETS["a9a"]
    assert (a9a.n_features, a9a.splits["train"].n_samples, a9a.splits["test"].n_samples) == (
        123,
        32_561,
        16_281,
    )
    assert LIBSVM_DATASETS["real-sim"].splits["train"].stem == "real-sim"
    with pytest.raises(TypeError):
        LIBSVM_DATASETS["a9a"].splits["valid"] = a9a.splits["train"]  # read-only


def test_data_home_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("ANISOADA_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home(tmp_path / "arg") == tmp_path / "arg"
    assert data_home() == tmp_path / "env"
    monkeypatch.delenv("ANISOADA_DATA")
    assert data_home() == tmp_path / "xdg" / "anisoada"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_home() == Path.home() / ".cache" / "anisoada"


def test_missing_registered_file_says_what_to_place_where(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load_libsvm("real-sim", data_home=tmp_path)
    message = str(caught.value)
    assert f"is not in {tmp_path / 'libsvm'}" in message
    assert "'real-sim.bz2'" in message and "'anisoada data fetch real-sim'" in message
    assert "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/real-sim.bz2" in message
    assert "\n" not in message and "download=True" not in message


def test_unknown_name_and_split(tmp_path):
    names = ", ".join(sorted(LIBSVM_DATASETS))
    with pytest.raises(ValueError) as caught:
        load_libsvm("no-such-set", data_home=tmp_path)
    assert not isinstance(caught.value, FileNotFoundError)
    assert str(caught.value) == (
        "'no-such-set' is neither a registered LIBSVM data set nor an existing file; give a "
        f"registered name ({names}) or the path of a LIBSVM file"
    )
    with pytest.raises(ValueError, match=r"'w8a\.t' is the test file of w8a: use the name 'w8a'"):
        load_libsvm("w8a.t", data_home=tmp_path)
    with pytest.raises(ValueError, match=r"mushrooms has no split 'test'; available: train$"):
        load_libsvm("mushrooms", split="test", data_home=tmp_path)


def test_registered_file_found_under_another_compression(tmp_path):
    dataset = _toy_dataset(tmp_path, url=None)
    _write(tmp_path / "home" / "libsvm" / "toy.xz", SMALL)  # published as toy.bz2
    X, _ = load_libsvm(dataset, data_home=tmp_path / "home")
    np.testing.assert_array_equal(X.toarray(), SMALL_X)


def test_registry_shape_and_checksum_are_enforced(tmp_path):
    home = tmp_path / "home"
    _write(home / "libsvm" / "toy.bz2", SMALL)
    wrong_rows = _toy_dataset(tmp_path, url=None, n_samples=5)
    with pytest.raises(ValueError, match="toy \\(train\\) should have 5 rows, but the file has 4"):
        load_libsvm(wrong_rows, data_home=home)
    wrong_sha = _toy_dataset(tmp_path, url=None, sha256="0" * 64)
    with pytest.raises(ChecksumError, match="sha256 of the content is"):
        load_libsvm(wrong_sha, data_home=home)


# ---------------------------------------------------------------------------------------------
# Download (no internet: file:// URLs and a localhost HTTP server)
# ---------------------------------------------------------------------------------------------


def _toy_dataset(tmp_path, *, url, sha256=None, n_samples=4, file_name="toy.bz2"):
    entry = LibsvmFile(file_name, n_samples, sha256, url)
    return LibsvmDataset("toy", 4, {"train": entry}, description="test data")


def test_download_from_a_file_url_is_verified_and_atomic(tmp_path):
    published = _write(tmp_path / "published.bz2", SMALL)
    good = _toy_dataset(tmp_path, url=published.as_uri(), sha256=hashlib.sha256(SMALL).hexdigest())
    X, _ = load_libsvm(good, data_home=tmp_path / "home", download=True)
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    target = tmp_path / "home" / "libsvm" / "toy.bz2"
    assert target.read_bytes() == published.read_bytes()
    assert [p.name for p in target.parent.iterdir() if p.is_file()] == ["toy.bz2"]


def test_download_with_a_wrong_checksum_saves_nothing(tmp_path):
    published = _write(tmp_path / "published.bz2", SMALL)
    bad = _toy_dataset(tmp_path, url=published.as_uri(), sha256="ab" * 32)
    with pytest.raises(ChecksumError, match="nothing was saved"):
        load_libsvm(bad, data_home=tmp_path / "home", download=True)
    assert list((tmp_path / "home" / "libsvm").iterdir()) == []


def test_download_of_a_missing_url_explains_where_to_put_the_file(tmp_path):
    missing = _toy_dataset(tmp_path, url=(tmp_path / "nowhere.bz2").as_uri())
    with pytest.raises(LibsvmDownloadError, match=r"place it at .*toy\.bz2"):
        load_libsvm(missing, data_home=tmp_path / "home", download=True)
    assert list((tmp_path / "home" / "libsvm").iterdir()) == []


class _Server:
    """A localhost HTTP server that serves one body, optionally cut short."""

    def __init__(self, body: bytes, *, announce: int | None = None):
        body_bytes, length = body, announce if announce is not None else len(body)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body_bytes)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/toy.bz2"

    def __exit__(self, *args):
        self.server.shutdown()
        self.server.server_close()


def test_download_over_http_from_localhost(tmp_path):
    with _Server(bz2.compress(SMALL)) as url:
        dataset = _toy_dataset(tmp_path, url=url, sha256=hashlib.sha256(SMALL).hexdigest())
        X, y = load_libsvm(dataset, data_home=tmp_path / "home", download=True)
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    np.testing.assert_array_equal(y, SMALL_Y)


def test_connection_closed_mid_download_leaves_no_file(tmp_path):
    body = bz2.compress(SMALL)
    with _Server(body[:20], announce=len(body)) as url:
        dataset = _toy_dataset(tmp_path, url=url)
        with pytest.raises(LibsvmDownloadError, match="Could not download"):
            load_libsvm(dataset, data_home=tmp_path / "home", download=True)
    assert list((tmp_path / "home" / "libsvm").iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The real files
# ---------------------------------------------------------------------------------------------


@pytest.mark.real_data
def test_real_a9a_train_and_test(shared_data, tmp_path):
    kwargs = {"data_home": shared_data, "cache_dir": tmp_path}
    X, y = load_libsvm("a9a", **kwargs)
    assert X.shape == (32_561, 123) and X.nnz == 451_592
    assert (int((y == -1).sum()), int((y == 1).sum())) == (24_720, 7_841)
    assert set(np.unique(X.data)) == {1.0}
    X_test, y_test = load_libsvm("a9a", split="test", **kwargs)
    assert X_test.shape == (16_281, 123) and X_test.nnz == 225_731  # padded to 123 columns
    assert (int((y_test == -1).sum()), int((y_test == 1).sum())) == (12_435, 3_846)
    cached = load_libsvm("a9a", **kwargs)
    assert (cached.X != X).nnz == 0


@pytest.mark.real_data
def test_real_mushrooms_and_w8a_through_the_environment(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ANISOADA_DATA", str(shared_data))
    X, y = load_libsvm("mushrooms", cache_dir=tmp_path)
    assert X.shape == (8_124, 112) and X.nnz == 170_604
    assert (int((y == -1).sum()), int((y == 1).sum())) == (3_916, 4_208)  # labels 1 → −1, 2 → +1
    X, y = load_libsvm("w8a", cache_dir=tmp_path)
    assert X.shape == (49_749, 300) and X.nnz == 579_586
    assert int((np.diff(X.indptr) == 0).sum()) == 4_203  # label-only rows are kept
    assert (int((y == -1).sum()), int((y == 1).sum())) == (48_270, 1_479)


def test_truncated_compressed_download_is_not_renamed_into_place(tmp_path):
    body = bz2.compress(SMALL)
    with _Server(body[:20]) as url:  # the announced length matches: only decompression can tell
        dataset = _toy_dataset(tmp_path, url=url)
        with pytest.raises(LibsvmDownloadError, match="cannot be decompressed"):
            load_libsvm(dataset, data_home=tmp_path / "home", download=True)
    assert list((tmp_path / "home" / "libsvm").iterdir()) == []
    with pytest.raises(FileNotFoundError, match="is not in"):  # a later load trusts nothing
        load_libsvm(dataset, data_home=tmp_path / "home")


def test_read_only_data_directory_gets_its_cache_in_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    home = tmp_path / "shared"
    _write(home / "libsvm" / "toy.bz2", SMALL)
    (home / "libsvm").chmod(0o555)  # read-only by its bits, even for root
    try:
        X, _ = load_libsvm(_toy_dataset(tmp_path, url=None), data_home=home)
    finally:
        (home / "libsvm").chmod(0o755)
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    assert not (home / "libsvm" / "cache").exists()
    assert len(list((tmp_path / "user-cache" / "anisoada" / "libsvm" / "cache").glob("*.npz"))) == 1


def test_libsvm_available_checks_every_accepted_compression(tmp_path):
    assert not libsvm_available("w8a", data_home=tmp_path)
    _write(tmp_path / "libsvm" / "w8a.t.gz", SMALL)
    assert libsvm_available("w8a", split="test", data_home=tmp_path)
    found = locate_libsvm("w8a", split="test", data_home=tmp_path)
    assert found == tmp_path / "libsvm" / "w8a.t.gz"
    assert not libsvm_available("w8a", data_home=tmp_path)
    assert locate_libsvm("w8a", data_home=tmp_path) is None
    assert not libsvm_available("mushrooms", split="test", data_home=tmp_path)
    with pytest.raises(ValueError, match="Unknown LIBSVM data set 'a10a'"):
        libsvm_available("a10a", data_home=tmp_path)
