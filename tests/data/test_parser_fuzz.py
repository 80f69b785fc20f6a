"""Property-based fuzzing of the LIBSVM and Alpaca readers.

Two kinds of property, for both readers:

* round trip: data written by ``save_libsvm`` (or as Alpaca JSON / JSON Lines), in every
  compression, reads back equal;
* robustness: any bytes at all either load (and then satisfy the reader's guarantees) or raise
  the project's own errors (``ValueError`` subclasses, ``FileNotFoundError``), never a stray
  ``OverflowError``, ``RecursionError``, ``UnicodeDecodeError``, ``zlib.error`` and the like.

Examples per property: ``ANISOADA_FUZZ_EXAMPLES``, else the Hypothesis profile's (``ci``, the
default: 40, which keeps the CI run to a few seconds; ``long``: 10,000, outside CI). The long
campaign::

    HYPOTHESIS_PROFILE=long python -m pytest tests/data/test_parser_fuzz.py \\
        -p no:cacheprovider --hypothesis-show-statistics
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import math
import os
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_svmlight_file

from anisoada.data import (
    AlpacaFormatError,
    InstructionRecord,
    LibsvmFormatError,
    load_alpaca,
    load_libsvm,
    save_libsvm,
)
from anisoada.data import libsvm as libsvm_module
from anisoada.data.libsvm import load_libsvm_pair

#: Examples per property of each Hypothesis profile (``HYPOTHESIS_PROFILE``).
PROFILE_EXAMPLES = {"ci": 40, "long": 10_000}


def _examples() -> int:
    profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    if profile not in PROFILE_EXAMPLES:
        raise pytest.UsageError(
            f"HYPOTHESIS_PROFILE must be one of {sorted(PROFILE_EXAMPLES)}; got {profile!r}"
        )
    text = os.environ.get("ANISOADA_FUZZ_EXAMPLES", str(PROFILE_EXAMPLES[profile]))
    if not text.isdigit() or int(text) < 1:
        raise pytest.UsageError(f"ANISOADA_FUZZ_EXAMPLES must be a positive integer; got {text!r}")
    return int(text)


FUZZ = settings(
    max_examples=_examples(),
    deadline=None,
    database=None,  # nothing written into the working tree; failures print their example
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # tmp_path is reused: every example overwrites
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
COMPRESS = {
    "": lambda data: data,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
}
# What a reader may raise for bad input; anything else is a bug.
ALLOWED = (ValueError, FileNotFoundError)


def _damage(data: bytes, how: str, where: float) -> bytes:
    if not data or how == "none":
        return data
    position = min(int(where * len(data)), len(data) - 1)
    if how == "truncate":
        return data[:position]
    if how == "flip":
        return data[:position] + bytes([data[position] ^ 0x5A]) + data[position + 1 :]
    return data[:position] + data[position + 1 :]  # drop one byte


_compressions = st.sampled_from(sorted(COMPRESS))
_damages = st.tuples(st.sampled_from(["none", "none", "truncate", "flip", "drop"]), st.floats(0, 1))
# Names with and without suffixes, so that suffix and content disagree as often as they agree.
_names = st.sampled_from(["data", "data.txt", "data.gz", "data.bz2", "data.xz", "d.svm.xz"])


# ---------------------------------------------------------------------------------------------
# LIBSVM
# ---------------------------------------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)


@st.composite
def _sparse_problems(draw):
    n = draw(st.integers(2, 25))
    d = draw(st.integers(1, 40))
    nnz = draw(st.integers(0, min(n * d, 60)))
    cells = draw(st.lists(st.integers(0, n * d - 1), min_size=nnz, max_size=nnz, unique=True))
    values = draw(st.lists(_finite, min_size=nnz, max_size=nnz))  # zeros (and -0.0) too
    rows, cols = np.divmod(np.array(cells, dtype=np.int64), d)
    X = sp.csr_matrix((np.array(values, dtype=np.float64), (rows, cols)), shape=(n, d))
    coding = draw(st.sampled_from([(-1.0, 1.0), (0.0, 1.0), (1.0, 2.0), (-2.5, 1e9)]))
    positive = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    both = draw(st.integers(0, n - 1))  # two classes always, without rejecting draws
    positive[both], positive[(both + 1) % n] = True, False
    return X, np.where(positive, coding[1], coding[0]), np.where(positive, 1.0, -1.0)


@FUZZ
@given(problem=_sparse_problems(), suffix=_compressions)
def test_fuzz_libsvm_round_trip_is_exact(tmp_path, problem, suffix):
    X, labels, expected_y = problem
    path = save_libsvm(tmp_path / f"round{suffix}", X, labels)
    loaded_X, y = load_libsvm(path, cache=False, n_features=X.shape[1])
    assert loaded_X.shape == X.shape and loaded_X.dtype == np.float64
    assert loaded_X.has_sorted_indices and (loaded_X != X).nnz == 0  # bit-exact float64
    np.testing.assert_array_equal(y, expected_y)


_TOKENS = [
    "1", "-1", "+1", "0", "2", "1.5", "-0", ".5", "5.", "1e3", "1E-3", "nan", "inf", "-inf",
    "1e999", "1_0", "0x1", "3:1", "2:0.5", "5:-2", "7:1e-300", "9:9", "0:1", "-3:1", "+3:1",
    "1.5:2", "00:1", "007:1", "2147483647:1", "2147483648:1", "99999999999:1", "3:", ":1", ":",
    "1:1:1", "qid:2", "qid:x", "qidx:1", "qid:", "#", "# c", "x", "\x00", "é", "\xa0",
]  # fmt: skip
_SEPARATORS = [" ", "  ", "\t", "\r", "\x0b", "\x0c", "\x1c", ""]


@st.composite
def _libsvm_soup(draw):
    """Text made of LIBSVM-like tokens: mostly near-valid, often subtly wrong."""
    lines = draw(
        st.lists(
            st.lists(st.tuples(st.sampled_from(_TOKENS), st.sampled_from(_SEPARATORS)), max_size=7),
            max_size=8,
        )
    )
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    mark = draw(st.sampled_from(["", "", "", "\ufeff"]))  # a byte-order mark, now and then
    return (mark + newline.join("".join(t + s for t, s in line) for line in lines)).encode()


_libsvm_bytes = st.one_of(_libsvm_soup(), st.binary(max_size=200))
_BOM = b"\xef\xbb\xbf"


def _lines(data: bytes) -> list[bytes]:
    """The file's lines as the reader judges them: a leading byte-order mark is not content."""
    return data.removeprefix(_BOM).split(b"\n")


def _check_loaded(X, y, raw: bytes | None) -> None:
    """Guarantees of a successful load; ``raw``, when plain text, is compared with sklearn."""
    assert isinstance(X, sp.csr_matrix) and X.dtype == np.float64 and X.has_sorted_indices
    assert X.shape[0] == y.shape[0] >= 1 and np.isfinite(X.data).all() and (X.data != 0).all()
    assert set(np.unique(y)) <= {-1.0, 1.0}
    if raw is not None:  # the reader skips a leading byte-order mark; sklearn would not
        raw = raw.removeprefix(_BOM)
        X_ref, y_ref = load_svmlight_file(io.BytesIO(raw), zero_based=False, n_features=X.shape[1])
        X_ref.eliminate_zeros()
        assert (X_ref != X).nnz == 0
        np.testing.assert_array_equal(y == 1, y_ref == y_ref.max())  # larger label: +1


@FUZZ
@given(
    data=_libsvm_bytes, suffix=_compressions, damage=_damages, name=_names,
    n_features=st.sampled_from([None, None, 3, 1000]),
)  # fmt: skip
def test_fuzz_libsvm_any_bytes_load_or_raise_our_errors(
    tmp_path, data, suffix, damage, name, n_features
):
    stored = _damage(COMPRESS[suffix](data), *damage)
    path = tmp_path / name
    path.write_bytes(stored)
    try:
        X, y = load_libsvm(path, cache=False, n_features=n_features)
    except LibsvmFormatError as error:
        message = str(error)
        assert message.startswith(str(path)) and "\n" not in message and len(message) < 400
        if error.line_number is not None and stored == data:
            lines = _lines(data)
            assert libsvm_module._line_problem(lines[error.line_number - 1], n_features)
            assert not any(
                libsvm_module._line_problem(line, n_features)
                for line in lines[: error.line_number - 1]
            )
    except ALLOWED as error:  # allowed by the contract, but every file problem has our type
        pytest.fail(f"{type(error).__name__} that is not a LibsvmFormatError: {error}")
    else:
        _check_loaded(X, y, stored if stored == data and suffix == "" else None)
        if stored == data:
            assert not any(libsvm_module._line_problem(line, n_features) for line in _lines(data))


# Problems a regular expression cannot see; anything else _line_problem reports, the fast
# grammar check must reject too, and every line _line_problem accepts the check must accept.
_SEMANTIC = re.compile(r"must increase|is too large|is not a finite number")


@FUZZ
@given(line=st.one_of(_libsvm_soup(), st.binary(max_size=60)))
def test_fuzz_fast_line_check_agrees_with_the_line_scanner(line):
    for single in line.split(b"\n"):
        problem = libsvm_module._line_problem(single, None)
        matched = libsvm_module._LINE_RE.fullmatch(single) is not None
        if problem is None:
            assert matched, single
        elif matched:
            assert _SEMANTIC.search(problem), (single, problem)


@FUZZ
@given(n=st.integers(2, 60), fraction=st.floats(-0.5, 1.5), seed=st.integers(0, 2**32))
def test_fuzz_holdout_is_a_partition_or_a_clear_error(tmp_path, n, fraction, seed):
    path = tmp_path / "rows"
    path.write_bytes("".join(f"{(-1) ** i} 1:{i + 1}\n" for i in range(n)).encode())
    try:
        pair = load_libsvm_pair(path, holdout=fraction, seed=seed, cache=False)
    except ValueError as error:
        n_test = math.floor(fraction * n + 0.5)
        assert not 0 < fraction < 1 or n_test in (0, n), error
        assert str(error).startswith("holdout")
        return
    train = pair.train.X[:, 0].toarray().ravel()
    test = pair.test.X[:, 0].toarray().ravel()
    assert len(test) == math.floor(fraction * n + 0.5) and len(train) + len(test) == n
    assert sorted([*train, *test]) == list(range(1, n + 1))


# ---------------------------------------------------------------------------------------------
# Alpaca
# ---------------------------------------------------------------------------------------------

# Any Unicode text (not lone surrogates, which UTF-8 cannot hold), including the separators
# str.splitlines() would split on: U+2028, U+0085, \x0b, \r ...
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
_visible = st.characters(exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"])
_nonblank = st.builds(lambda a, c, b: a + c + b, _text, _visible, _text)


@st.composite
def _records(draw):
    record = {"instruction": draw(_nonblank), "output": draw(_nonblank)}
    if draw(st.booleans()):
        record["input"] = draw(_text)
    if draw(st.booleans()):  # an extra key (not one of the record's own): ignored
        extra = draw(_text.filter(lambda key: key not in ("instruction", "input", "output")))
        record[extra] = draw(st.one_of(_text, st.integers(), st.none()))
    return record


@FUZZ
@given(
    records=st.lists(_records(), min_size=1, max_size=6),
    lines=st.booleans(),
    indent=st.sampled_from([None, 1, "\t"]),
    ascii_only=st.booleans(),
    suffix=_compressions,
)
def test_fuzz_alpaca_round_trip(tmp_path, records, lines, indent, ascii_only, suffix):
    if lines:
        text = "\n".join(json.dumps(r, ensure_ascii=ascii_only) for r in records) + "\n"
        name = f"d.jsonl{suffix}"
    else:
        text = json.dumps(records, indent=indent, ensure_ascii=ascii_only)
        name = f"d.json{suffix}"
    path = tmp_path / name
    path.write_bytes(COMPRESS[suffix](text.encode("utf-8")))
    expected = [
        InstructionRecord(r["instruction"], r.get("input", ""), r["output"]) for r in records
    ]
    assert load_alpaca(path, max_field_chars=None) == expected


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _finite, _text),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_text, children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def _alpaca_soup(draw):
    """Files close to Alpaca data: valid JSON of any shape, records with bad fields, or text cut
    and spliced from such JSON."""
    kind = draw(st.sampled_from(["value", "records", "lines", "spliced"]))
    if kind == "value":
        return json.dumps(draw(_json_values))
    records = draw(
        st.lists(
            st.one_of(
                _records(), st.dictionaries(st.sampled_from(["instruction", "input", "output"]),
                                            _json_values)),
            max_size=4,
        )
    )  # fmt: skip
    if kind == "records":
        return json.dumps(records, ensure_ascii=draw(st.booleans()))
    if kind == "lines":
        return "\n".join(json.dumps(r, ensure_ascii=draw(st.booleans())) for r in records)
    text = json.dumps(records)
    cut = draw(st.integers(0, len(text)))
    return text[:cut] + draw(st.sampled_from(["", "[", "{", "]", "}", '"', ",", "\n", "\ufeff"]))


_alpaca_bytes = st.one_of(
    _alpaca_soup().map(lambda s: s.encode("utf-8")),
    st.binary(max_size=200),
    st.sampled_from(["[", "{", "["]).flatmap(
        lambda bracket: st.integers(1, 5000).map(lambda k: (bracket * k).encode())
    ),
)
_alpaca_names = st.sampled_from(["d.json", "d.jsonl", "d", "d.json.gz", "d.ndjson.xz", "d.bz2"])


@FUZZ
@given(
    data=_alpaca_bytes,
    suffix=_compressions,
    damage=_damages,
    name=_alpaca_names,
    limit=st.sampled_from([None, None, 0, 2]),
    empty_output=st.sampled_from(["skip", "keep", "error"]),
)
def test_fuzz_alpaca_any_bytes_load_or_raise_our_errors(
    tmp_path, data, suffix, damage, name, limit, empty_output
):
    path = tmp_path / name
    path.write_bytes(_damage(COMPRESS[suffix](data), *damage))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped empty outputs are announced, not errors
            records = load_alpaca(path, limit=limit, empty_output=empty_output)
    except AlpacaFormatError as error:
        message = str(error)
        assert message.startswith(str(path)) and "\n" not in message and len(message) < 400
    except ALLOWED as error:  # allowed by the contract, but every file problem has our type
        pytest.fail(f"{type(error).__name__} that is not an AlpacaFormatError: {error}")
    else:
        assert all(isinstance(r, InstructionRecord) for r in records)
        assert all(r.instruction.strip() for r in records)
        assert limit is None or len(records) <= limit
        if empty_output != "keep":
            assert all(r.output.strip() for r in records)


def test_fuzz_settings_follow_the_environment():
    profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    expected = os.environ.get("ANISOADA_FUZZ_EXAMPLES", str(PROFILE_EXAMPLES[profile]))
    assert FUZZ.max_examples == int(expected)
    assert PROFILE_EXAMPLES["long"] >= 10_000
