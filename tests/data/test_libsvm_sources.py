"""Where LIBSVM data comes from: the bundled a9a, any file by path, train/test pairs, holdout."""

from __future__ import annotations

import bz2
import fnmatch
import gzip
import hashlib
import lzma
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from anisoada.data import (
    LIBSVM_DATASETS,
    ChecksumError,
    LibsvmFormatError,
    libsvm_available,
    load_libsvm,
)
from anisoada.data import libsvm as libsvm_module
from anisoada.data.libsvm import LibsvmPair, load_libsvm_pair, locate_libsvm

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED = Path(libsvm_module.__file__).resolve().parent / "_bundled"
COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}
SMALL = b"# small\n+1 1:0.5 3:2\n-1\n-1 2:-1.25e-3 4:7\n1 qid:3 4:1\n"
SMALL_X = np.array([[0.5, 0, 2, 0], [0, 0, 0, 0], [0, -1.25e-3, 0, 7], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory):
    """A data home with no data files (caches written there are shared by this module)."""
    return tmp_path_factory.mktemp("empty-home")


# ---------------------------------------------------------------------------------------------
# The bundled a9a
# ---------------------------------------------------------------------------------------------


def test_bundled_files_are_the_registry_content():
    for split, name in (("train", "a9a.xz"), ("test", "a9a.t.xz")):
        with lzma.open(BUNDLED / name) as handle:
            sha = hashlib.sha256(handle.read()).hexdigest()
        assert sha == LIBSVM_DATASETS["a9a"].splits[split].sha256
    notice = (BUNDLED / "README.txt").read_text()
    assert "CC BY 4.0" in notice and "UCI Adult" in notice and "J. Platt" in notice


def test_bundled_files_are_declared_as_package_data():
    """Every bundled file matches a package-data glob, so a built wheel ships it."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["anisoada.data"]
    shipped = sorted(p.name for p in BUNDLED.iterdir())
    assert shipped == ["README.txt", "a9a.t.xz", "a9a.xz"]
    for name in shipped:
        assert any(fnmatch.fnmatch(f"_bundled/{name}", pattern) for pattern in patterns), name


def test_a9a_loads_from_the_bundled_copy_with_an_empty_data_home(empty_home, monkeypatch):
    monkeypatch.setenv("ANISOADA_DATA", str(empty_home))
    assert libsvm_available("a9a") and libsvm_available("a9a", split="test")
    assert locate_libsvm("a9a") == BUNDLED / "a9a.xz"
    assert locate_libsvm("a9a", split="test") == BUNDLED / "a9a.t.xz"
    assert not libsvm_available("w8a") and not libsvm_available("mushrooms")
    X, y = load_libsvm("a9a")
    assert X.shape == (32_561, 123) and X.nnz == 451_592
    assert (int((y == -1).sum()), int((y == 1).sum())) == (24_720, 7_841)
    X_test, y_test = load_libsvm("a9a", split="test")
    assert X_test.shape == (16_281, 123) and X_test.nnz == 225_731  # n_features=123, not 122
    assert (int((y_test == -1).sum()), int((y_test == 1).sum())) == (12_435, 3_846)
    assert sorted(p.name for p in (empty_home / "libsvm").iterdir()) == ["cache"]  # no data copied


@pytest.mark.real_data
def test_bundled_a9a_equals_the_shared_copy(shared_data, empty_home, tmp_path):
    for split, name in (("train", "a9a.xz"), ("test", "a9a.t.xz")):
        shared = shared_data / "libsvm" / name
        assert (BUNDLED / name).read_bytes() == shared.read_bytes()
        bundled_X, bundled_y = load_libsvm("a9a", split=split, data_home=empty_home)
        # The shared copy read as an anonymous file: no registry, its own label inference.
        X, y = load_libsvm(shared, n_features=123, cache_dir=tmp_path)
        assert X.shape == bundled_X.shape
        assert (bundled_X != X).nnz == 0
        np.testing.assert_array_equal(y, bundled_y)


def test_a_copy_in_the_data_home_takes_precedence_over_the_bundled_one(tmp_path):
    home = tmp_path / "home"
    (home / "libsvm").mkdir(parents=True)
    (home / "libsvm" / "a9a.gz").write_bytes(gzip.compress(SMALL))
    assert locate_libsvm("a9a", data_home=home) == home / "libsvm" / "a9a.gz"
    with pytest.raises(ChecksumError, match=r"a9a\.gz: sha256 of the content is .*delete it"):
        load_libsvm("a9a", data_home=home)  # verified like any copy, never silently replaced


@pytest.mark.parametrize("damage", ["other content", "truncated"])
def test_a_damaged_bundled_copy_is_a_clear_error(tmp_path, monkeypatch, damage):
    fake = tmp_path / "bundled"
    fake.mkdir()
    original = (BUNDLED / "a9a.t.xz").read_bytes()
    fake_file = fake / "a9a.t.xz"
    fake_file.write_bytes(lzma.compress(SMALL) if damage == "other content" else original[:5000])
    monkeypatch.setattr(libsvm_module, "_BUNDLED_DIR", fake)
    home = tmp_path / "home"
    if damage == "other content":
        with pytest.raises(ChecksumError) as caught:
            load_libsvm("a9a", split="test", data_home=home)
        expected_sha = LIBSVM_DATASETS["a9a"].splits["test"].sha256
        assert str(caught.value) == (
            f"{fake_file}: sha256 of the content is {hashlib.sha256(SMALL).hexdigest()}, but a9a "
            f"(test) should be {expected_sha}; the copy bundled with anisoada is damaged: "
            f"reinstall anisoada, or place a verified copy at {home / 'libsvm' / 'a9a.t'}"
        )
    else:
        with pytest.raises(LibsvmFormatError) as caught:
            load_libsvm("a9a", split="test", data_home=home)
        assert str(caught.value) == (
            f"{fake_file}: cannot be read or decompressed: its xz data is truncated; copy or "
            "download it again"
        )


# ---------------------------------------------------------------------------------------------
# Any file by path
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
@pytest.mark.parametrize("name", ["train.txt", "train", "train.svm.gz", "train.bz2"])
def test_compression_is_recognised_by_content_not_name(tmp_path, kind, name):
    path = tmp_path / name
    path.write_bytes(COMPRESSORS[kind](SMALL))
    X, y = load_libsvm(path, cache=False)
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    np.testing.assert_array_equal(y, [1, -1, -1, 1])


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_plain_text_under_a_compression_suffix_is_refused(tmp_path, suffix):
    kind = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}[suffix]
    path = tmp_path / f"train{suffix}"
    path.write_bytes(SMALL)
    with pytest.raises(LibsvmFormatError) as caught:
        load_libsvm(path, cache=False)
    assert str(caught.value) == (
        f"{path}: is named {suffix} but does not start like {kind} data; the file is damaged or "
        "misnamed"
    )


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_compressed_files_name_the_file_and_the_damage(tmp_path, kind, damage):
    packed = bytearray(COMPRESSORS[kind](SMALL * 200))
    if damage == "truncated":
        packed = packed[: len(packed) // 2]
    else:
        for position in range(len(packed) // 3, len(packed) // 3 + 8):
            packed[position] ^= 0x55
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(packed))
    with pytest.raises(LibsvmFormatError) as caught:
        load_libsvm(path, cache=False)
    state = "is truncated" if damage == "truncated" else "is corrupt"
    assert str(caught.value) == (
        f"{path}: cannot be read or decompressed: its {kind} data {state}; copy or download it "
        "again"
    )
    assert caught.value.line_number is None


def test_archives_and_other_formats_are_named(tmp_path):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("train.txt", SMALL)
    with pytest.raises(LibsvmFormatError, match=r"data\.zip: is a zip archive \(or \.npz\)"):
        load_libsvm(archive, cache=False)
    zstd = tmp_path / "data.zst"
    zstd.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20)
    with pytest.raises(LibsvmFormatError, match=r"data\.zst: is zstd-compressed; decompress it"):
        load_libsvm(zstd, cache=False)


@pytest.mark.parametrize(
    "content", [b"", b"   \n\n\t\r\n", b"# only a comment\n\n# and another\n", b"\n"]
)
@pytest.mark.parametrize("kind", ["plain", *sorted(COMPRESSORS)])
def test_a_file_without_data_rows_is_refused(tmp_path, content, kind):
    path = tmp_path / "empty"
    path.write_bytes(content if kind == "plain" else COMPRESSORS[kind](content))
    with pytest.raises(LibsvmFormatError) as caught:
        load_libsvm(path, data_home=tmp_path / "home")
    assert str(caught.value) == (
        f"{path}: has no data rows (it is empty, or holds only blank and comment lines); check "
        "that this is the intended file"
    )
    assert not (tmp_path / "home" / "libsvm" / "cache").exists()  # nothing cached


def test_non_utf8_bytes_in_a_comment_are_fine(tmp_path):
    path = tmp_path / "latin1"
    path.write_bytes(b"1 1:1 # caf\xe9\n-1 2:1 # \xff\xfe\n")
    X, y = load_libsvm(path, cache=False)
    np.testing.assert_array_equal(X.toarray(), [[1, 0], [0, 1]])
    np.testing.assert_array_equal(y, [1, -1])


def test_a_directory_or_a_missing_path_is_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(LibsvmFormatError) as caught:
        load_libsvm(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: is a directory, not a LIBSVM file; give the path of a file inside it"
    )
    monkeypatch.chdir(tmp_path)
    for given in (tmp_path / "nope.txt", "./nope", "sub/nope.svm", Path("nope"), "~/nope/x"):
        with pytest.raises(FileNotFoundError) as caught:
            load_libsvm(given)
        assert str(caught.value) == f"No such LIBSVM file: {Path(given).expanduser()}"


def test_a_registered_name_wins_over_a_file_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a9a").write_bytes(SMALL)
    assert load_libsvm(Path("a9a"), cache=False).X.shape == (4, 4)  # a Path is a file
    assert load_libsvm("./a9a", cache=False).X.shape == (4, 4)
    assert load_libsvm("a9a", data_home=tmp_path / "home").X.shape == (32_561, 123)


def test_a_file_in_the_working_directory_loads_by_bare_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine.txt").write_bytes(SMALL)
    np.testing.assert_array_equal(load_libsvm("mine.txt", cache=False).X.toarray(), SMALL_X)


def test_user_files_are_cached_by_their_stamp(tmp_path, monkeypatch):
    path = tmp_path / "mine.xz"
    path.write_bytes(lzma.compress(SMALL))
    home = tmp_path / "home"
    first = load_libsvm(path, data_home=home)
    assert len(list((home / "libsvm" / "cache").glob("mine.xz-*-auto.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("parsed although a valid cache exists")

    monkeypatch.setattr(libsvm_module, "_parse", fail)
    second = load_libsvm(path, data_home=home)
    assert (first.X != second.X).nnz == 0
    monkeypatch.undo()
    path.write_bytes(lzma.compress(SMALL + b"1 5:1\n"))  # a new stamp: parsed again
    assert load_libsvm(path, data_home=home).X.shape == (5, 5)


# ---------------------------------------------------------------------------------------------
# Train/test pairs and holdout
# ---------------------------------------------------------------------------------------------


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_pair_aligns_the_columns_both_ways(tmp_path):
    train = _file(tmp_path / "train", b"1 1:1 5:1\n0 2:1\n")
    narrow = _file(tmp_path / "narrow", b"1 3:1\n0 1:2\n")
    wide = _file(tmp_path / "wide", b"1 7:1\n")
    pair = load_libsvm_pair(train, narrow, cache=False)
    assert isinstance(pair, LibsvmPair)
    assert pair.train.X.shape == (2, 5) and pair.test.X.shape == (2, 5)
    np.testing.assert_array_equal(pair.test.X.toarray(), [[0, 0, 1, 0, 0], [2, 0, 0, 0, 0]])
    np.testing.assert_array_equal(pair.test.y, [1, -1])
    pair = load_libsvm_pair(train, wide, cache=False)  # the test file is wider: both widen
    assert pair.train.X.shape == (2, 7) and pair.test.X.shape == (1, 7)
    np.testing.assert_array_equal(pair.train.X.toarray()[:, :5], [[1, 0, 0, 0, 1], [0, 1, 0, 0, 0]])
    assert pair.train.X.has_sorted_indices and pair.train.X.indices.dtype == np.int32
    # A one-class test file is read in the training file's coding (0 → −1, 1 → +1).
    np.testing.assert_array_equal(pair.test.y, [1])
    with pytest.raises(LibsvmFormatError, match=r"wide, line 1: feature index 7 exceeds n_feat"):
        load_libsvm_pair(train, wide, n_features=6, cache=False)


def test_pair_test_labels_must_be_in_the_training_coding(tmp_path):
    train = _file(tmp_path / "train", b"1 1:1\n0 2:1\n")
    test = _file(tmp_path / "test", b"1 1:1\n2 2:1\n")
    with pytest.raises(LibsvmFormatError) as caught:
        load_libsvm_pair(train, test, cache=False)
    assert str(caught.value) == (
        f"{test}: label 2 is neither 0 (negative) nor 1 (positive), the classes of the "
        "training data"
    )


def test_pair_with_a_registered_training_set_keeps_its_width(tmp_path, empty_home):
    test = _file(tmp_path / "test", b"-1 1:1 122:1\n")
    pair = load_libsvm_pair("a9a", test, data_home=empty_home)
    assert pair.train.X.shape == (32_561, 123) and pair.test.X.shape == (1, 123)
    np.testing.assert_array_equal(pair.test.y, [-1])
    too_wide = _file(tmp_path / "too-wide", b"-1 1:1 130:1\n")
    with pytest.raises(LibsvmFormatError, match=r"too-wide, line 1: feature index 130 exceeds"):
        load_libsvm_pair("a9a", too_wide, data_home=empty_home)
    # A registered name as the test data means its test split.
    pair = load_libsvm_pair("a9a", "a9a", data_home=empty_home)
    assert pair.test.X.shape == (16_281, 123)
    assert load_libsvm_pair("a9a", data_home=empty_home).test is None


def _numbered(path: Path, n: int) -> Path:
    """Row i holds the value i + 1 in column 1 (so rows can be told apart after a split)."""
    return _file(path, "".join(f"{(-1) ** i} 1:{i + 1}\n" for i in range(n)).encode())


@pytest.mark.parametrize(("n", "fraction", "n_test"), [(10, 0.25, 3), (10, 0.2, 2), (7, 0.5, 4)])
def test_holdout_is_a_deterministic_partition_in_file_order(tmp_path, n, fraction, n_test):
    path = _numbered(tmp_path / "rows", n)
    pair = load_libsvm_pair(path, holdout=fraction, seed=3, cache=False)
    train_rows = pair.train.X[:, 0].toarray().ravel().astype(int) - 1
    test_rows = pair.test.X[:, 0].toarray().ravel().astype(int) - 1
    assert len(test_rows) == n_test  # round half up: 2.5 → 3, 3.5 → 4
    assert sorted([*train_rows, *test_rows]) == list(range(n))  # a partition of the rows
    assert list(train_rows) == sorted(train_rows) and list(test_rows) == sorted(test_rows)
    np.testing.assert_array_equal(pair.train.y, np.where(train_rows % 2 == 0, 1, -1))
    np.testing.assert_array_equal(pair.test.y, np.where(test_rows % 2 == 0, 1, -1))
    order = np.random.default_rng(3).permutation(n)  # the documented draw
    np.testing.assert_array_equal(test_rows, np.sort(order[:n_test]))
    again = load_libsvm_pair(path, holdout=fraction, seed=3, cache=False)
    assert (again.test.X != pair.test.X).nnz == 0
    splits = {
        tuple(load_libsvm_pair(path, holdout=fraction, seed=s, cache=False).test.X.data)
        for s in range(8)
    }
    assert len(splits) > 1  # the seed matters


def test_holdout_of_the_bundled_a9a_matches_the_docstring(empty_home):
    train, test = load_libsvm_pair("a9a", holdout=0.25, seed=1, data_home=empty_home)
    assert (train.X.shape, test.X.shape) == ((24_421, 123), (8_140, 123))
    assert train.X.nnz + test.X.nnz == 451_592


@pytest.mark.parametrize(
    ("holdout", "message"),
    [
        (0, "holdout must be a fraction strictly between 0 and 1, e.g. 0.2; got 0"),
        (1, "holdout must be a fraction strictly between 0 and 1, e.g. 0.2; got 1"),
        (-0.5, "holdout must be a fraction strictly between 0 and 1, e.g. 0.2; got -0.5"),
        (1.5, "holdout must be a fraction strictly between 0 and 1, e.g. 0.2; got 1.5"),
        (float("nan"), "holdout must be a fraction strictly between 0 and 1, e.g. 0.2; got nan"),
        (np.float64(2.0), "holdout must be a fraction strictly between 0 and 1, e.g. 0.2; got 2"),
        (True, "holdout must be a fraction between 0 and 1, e.g. 0.2; got True"),
        ("0.2", "holdout must be a fraction between 0 and 1, e.g. 0.2; got '0.2'"),
        (0.01, "holdout 0.01 of the 10 rows of {path} leaves no test rows; use a larger fraction"),
        (0.99, "holdout 0.99 of the 10 rows of {path} leaves no training rows; use a smaller "
               "fraction"),
    ],
)  # fmt: skip
def test_bad_holdout_fractions_are_explained(tmp_path, holdout, message):
    path = _numbered(tmp_path / "rows", 10)
    with pytest.raises(ValueError) as caught:
        load_libsvm_pair(path, holdout=holdout, cache=False)
    assert str(caught.value) == message.format(path=path)


def test_bad_pair_arguments_are_explained(tmp_path):
    path = _numbered(tmp_path / "rows", 10)
    with pytest.raises(ValueError, match=r"^give either a test file or a holdout fraction, not b"):
        load_libsvm_pair(path, path, holdout=0.2)
    for seed, shown in ((-1, "-1"), (1.5, "1.5"), (np.int64(-2), "-2"), (None, "None")):
        with pytest.raises(ValueError) as caught:
            load_libsvm_pair(path, holdout=0.2, seed=seed)
        assert str(caught.value) == f"seed must be a non-negative integer; got {shown}"
    assert len(load_libsvm_pair(path, holdout=0.2, seed=np.int64(4), cache=False).test.y) == 2


@pytest.mark.parametrize(
    ("n_features", "shown"), [(0, "0"), (-3, "-3"), (True, "True"), (np.float64(3.0), "3.0"),
                              ("4", "'4'")]
)  # fmt: skip
def test_bad_n_features_are_shown_plainly(tmp_path, n_features, shown):
    path = _file(tmp_path / "two", b"1 1:1\n-1 2:1\n")
    with pytest.raises(ValueError) as caught:
        load_libsvm(path, n_features=n_features, cache=False)
    assert str(caught.value) == f"n_features must be a positive integer or None; got {shown}"
    assert load_libsvm(path, n_features=np.int64(5), cache=False).X.shape == (2, 5)
