"""Alpaca loading, validation, prompts, response-only tokenisation and synthetic instructions."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anisoada.data import (
    DEFAULT_TEMPLATE,
    IGNORE_INDEX,
    AlpacaFormatError,
    InstructionRecord,
    PromptTemplate,
    format_prompt,
    load_alpaca,
    synthetic_instructions,
    tokenize_instructions,
    validate_record,
)

RECORDS = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well."},
    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    {"instruction": "Sum the list.", "input": "1, 2, 3", "output": "6", "extra": "ignored"},
]


def _encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _write(path, text):
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write(text)
    return path


@pytest.mark.parametrize("name", ["data.json", "data.json.gz", "data.json.bz2", "data.json.xz"])
def test_load_json_list_plain_and_compressed(tmp_path, name):
    path = _write(tmp_path / name, json.dumps(RECORDS, indent=2))
    records = load_alpaca(path)
    assert records == [
        InstructionRecord(r["instruction"], r["input"], r["output"]) for r in RECORDS
    ]


@pytest.mark.parametrize("name", ["data.jsonl", "data.ndjson", "lines.json"])
def test_load_json_lines(tmp_path, name):
    text = "\n".join(json.dumps(r) for r in RECORDS) + "\n\n"  # blank lines are allowed
    records = load_alpaca(_write(tmp_path / name, text))
    assert [r.output for r in records] == ["Eat well.", "Bonjour", "6"]


def test_json_lines_split_only_at_newlines(tmp_path):
    # json.dumps(ensure_ascii=False) leaves U+0085, U+2028 and U+2029 unescaped inside strings;
    # str.splitlines() would cut a record there.
    records = [{"instruction": "a\u2028b", "input": "\x85", "output": "c\u2029d"}, RECORDS[1]]
    text = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\r\n"
    loaded = load_alpaca(_write(tmp_path / "d.jsonl", text))
    assert [r.to_dict() for r in loaded] == [records[0], records[1]]


def test_limit_keeps_the_first_records(tmp_path):
    path = _write(tmp_path / "d.json", json.dumps(RECORDS))
    assert [r.output for r in load_alpaca(path, limit=2)] == ["Eat well.", "Bonjour"]


def test_missing_input_key_reads_as_no_input():
    record = validate_record({"instruction": "Say hi.", "output": "Hi."})
    assert record == InstructionRecord("Say hi.", "", "Hi.")


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"input": "", "output": "x"}, "instruction", "missing required key"),
        ({"instruction": "x", "input": ""}, "output", "missing required key"),
        (
            {"instruction": "x", "input": 5, "output": "y"},
            "input",
            "expected a string, got the number 5",
        ),
        (
            {"instruction": "x", "input": "", "output": None},
            "output",
            "expected a string, got null",
        ),
        ({"instruction": ["x"], "input": "", "output": "y"}, "instruction", "got a list of 1 item"),
        (
            {"instruction": "x", "input": {"a": 1}, "output": "y"},
            "input",
            "got an object with 1 key",
        ),
        ({"instruction": "x", "input": "", "output": 1.5}, "output", "got the number 1.5"),
        ({"instruction": "x", "input": "", "output": False}, "output", "got false"),
        ({"instruction": "   ", "input": "", "output": "y"}, "instruction", "is empty"),
        ({"instruction": "x", "input": "", "output": " \n"}, "output", "is empty"),
        ({"instruction": "x", "input": "a" * 101, "output": "y"}, "input", "101 characters"),
    ],
)
def test_invalid_records_name_file_index_and_field(tmp_path, record, field, message):
    good = {"instruction": "ok", "input": "", "output": "ok"}
    path = _write(tmp_path / "bad.json", json.dumps([good, good, record]))
    with pytest.raises(AlpacaFormatError, match=re.escape(message)) as caught:
        load_alpaca(path, empty_output="error", max_field_chars=100)
    error = caught.value
    assert (error.index, error.field) == (2, field)
    assert str(error).startswith(f"{path}, record 2, field {field!r}: ")


def test_non_object_record_and_non_list_file(tmp_path):
    path = _write(tmp_path / "a.json", json.dumps([RECORDS[0], "text"]))
    with pytest.raises(AlpacaFormatError) as caught:
        load_alpaca(path)
    assert str(caught.value) == (
        f"{path}, record 1: expected a JSON object with keys instruction, input, output; "
        "got a string ('text')"
    )
    for text, kind in [("42", "the number 42"), ('"abc"', "a string ('abc')"), ("null", "null"),
                       ("true", "true"), ("1.5", "the number 1.5")]:  # fmt: skip
        path = _write(tmp_path / "b.json", text)
        with pytest.raises(AlpacaFormatError) as caught:
            load_alpaca(path)
        assert str(caught.value) == (
            f"{path}: expected a JSON list of records (or JSON Lines); the top level is {kind}"
        )


def test_invalid_json_gives_line_and_column(tmp_path):
    path = _write(tmp_path / "broken.json", '[\n  {"instruction": "x",\n  "output": }\n]')
    with pytest.raises(AlpacaFormatError, match=r"broken\.json: line 3, column 13: invalid JSON"):
        load_alpaca(path)
    lines = _write(tmp_path / "broken.jsonl", json.dumps(RECORDS[0]) + "\n{oops}\n")
    with pytest.raises(AlpacaFormatError, match=r"broken\.jsonl: line 2, column 2: invalid JSON"):
        load_alpaca(lines)


def _message(path, **kwargs):
    with pytest.raises(AlpacaFormatError) as caught:
        load_alpaca(path, **kwargs)
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, ""),
        ("deep-object.json", '{"a":' * 100_000 + "1" + "}" * 100_000, ""),
        ("unclosed.json", "[" * 100_000, ""),
        ("deep.jsonl", json.dumps(RECORDS[0]) + "\n" + "[" * 100_000 + "\n", ", line 2"),
    ],
)
def test_deeply_nested_json_is_refused_not_a_recursion_error(tmp_path, name, text, where):
    path = _write(tmp_path / name, text)
    assert _message(path) == (
        f"{path}{where}: JSON nested too deeply to read (Alpaca records are flat objects of "
        "strings); the file is damaged or not Alpaca data"
    )


@pytest.mark.parametrize("indent", [None, 2])
def test_an_object_holding_the_records_is_not_a_list_of_records(tmp_path, indent):
    path = _write(tmp_path / "wrapped.json", json.dumps({"data": RECORDS, "v": 1}, indent=indent))
    assert _message(path) == (
        f"{path}: expected a JSON list of records (or JSON Lines); the top level is an object "
        "with keys 'data', 'v', not a record. Put the records themselves in the file, as a list "
        "or one per line"
    )


@pytest.mark.parametrize("indent", [None, 2])
def test_a_single_record_object_is_a_one_record_file(tmp_path, indent):
    path = _write(tmp_path / "one.json", "\n\n" + json.dumps(RECORDS[1], indent=indent))
    assert load_alpaca(path) == [
        InstructionRecord("Translate to French.", "Good morning", "Bonjour")
    ]
    broken = _write(tmp_path / "broken.json", '\n{"instruction": "x",\n "output": 5}')
    assert _message(broken) == (
        f"{broken}, line 2, record 0, field 'output': expected a string, got the number 5"
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.json", "", "is empty; expected a JSON list of records or one record per line"),
        ("blank.jsonl", " \n\n\t\n", "is empty; expected a JSON list of records or one record "
         "per line"),
        ("bom.json", "\ufeff", "is empty; expected a JSON list of records or one record per line"),
        ("none.json", " [ ] ", "holds no records; expected a JSON list of records or one record "
         "per line"),
        ("empty.json.xz", "", "is empty; expected a JSON list of records or one record per line"),
    ],
)  # fmt: skip
def test_a_file_without_records_is_refused(tmp_path, name, text, message):
    path = _write(tmp_path / name, text)
    assert _message(path) == f"{path}: {message}"


def test_json_lines_errors_name_the_line(tmp_path):
    good = json.dumps(RECORDS[0])
    path = _write(tmp_path / "d.jsonl", f"{good}\n\n{good[:-1]}\n{good}\n")
    assert (
        _message(path)
        == f"{path}: line 3, column {len(good)}: invalid JSON (Expecting ',' delimiter)"
    )
    bad_record = json.dumps({"instruction": "x", "output": 5})
    path = _write(tmp_path / "e.jsonl", f"{good}\n\n{bad_record}\n")
    assert _message(path) == (
        f"{path}, line 3, record 1, field 'output': expected a string, got the number 5"
    )
    path = _write(tmp_path / "f.jsonl", f"{good}\n[1, 2]\n")
    assert _message(path) == (
        f"{path}, line 2, record 1: expected a JSON object with keys instruction, input, output; "
        "got a list of 2 items"
    )


def test_non_utf8_text_names_line_and_column_and_a_bom_is_accepted(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(RECORDS[0]).encode() + b'\n{"instruction": "caf\xe9"}\n')
    assert _message(path) == (
        f"{path}: line 2, column 21: byte 0xe9 is not UTF-8 text; save the file as UTF-8"
    )
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(RECORDS).encode())
    assert len(load_alpaca(bom)) == 3


def test_huge_lines_give_short_messages(tmp_path):
    field = _write(tmp_path / "field.json", json.dumps([{**RECORDS[0], "output": "x" * 5_000_000}]))
    assert _message(field) == (
        f"{field}, record 0, field 'output': 5000000 characters exceeds max_field_chars=100000 "
        "(raise the limit if this is intended)"
    )
    garbage = _write(tmp_path / "garbage.json", "[" + "x" * 5_000_000)
    assert _message(garbage) == f"{garbage}: line 1, column 2: invalid JSON (Expecting value)"
    key = _write(tmp_path / "key.json", json.dumps([{"k" * 100_000: "a", "output": "b"}]))
    assert _message(key) == (
        f"{key}, record 0, field 'instruction': missing required key (the record has "
        f"'{'k' * 27}...', 'output')"
    )
    many = _write(tmp_path / "many.json", json.dumps([{f"key{i}": "v" for i in range(1000)}]))
    assert _message(many).endswith("(the record has 'key0', 'key1', 'key10', 'key100', "
                                   "'key101', 'key102' and 994 more)")  # fmt: skip
    digits = _write(
        tmp_path / "digits.json", '[\n{"instruction": "a", "output": ' + "7" * 9000 + "}]"
    )
    assert _message(digits) == (
        f"{digits}, line 2: holds an integer of more than 4000 digits (Alpaca fields are "
        "strings); the file is damaged or not Alpaca data"
    )
    value = _write(tmp_path / "value.json", json.dumps([{**RECORDS[0], "output": 10**30}]))
    assert _message(value).endswith("field 'output': expected a string, got a long number")


def test_directories_and_bad_limits(tmp_path, monkeypatch):
    assert _message(tmp_path) == (
        f"{tmp_path}: is a directory, not an Alpaca file; give the JSON or JSONL file inside it"
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)  # shaped like a hub id, but local
    assert _message("owner/name") == (
        "owner/name: is a directory, not an Alpaca file; give the JSON or JSONL file inside it"
    )
    path = _write(tmp_path / "d.json", json.dumps(RECORDS))
    for limit in (True, -1, 1.5):
        with pytest.raises(ValueError, match="limit must be a non-negative integer or None"):
            load_alpaca(path, limit=limit)
    assert load_alpaca(path, limit=0) == []


def test_validate_record_with_keys_of_mixed_types():
    with pytest.raises(AlpacaFormatError) as caught:
        validate_record({1: "x", "input": "", None: 2}, index=4)
    assert str(caught.value) == (
        "record 4, field 'instruction': missing required key (the record has '1', 'None', 'input')"
    )


def test_corrupt_compressed_file_is_a_format_error(tmp_path):
    path = tmp_path / "data.json.xz"
    path.write_bytes(b"definitely not xz")
    with pytest.raises(AlpacaFormatError) as caught:
        load_alpaca(path)
    assert str(caught.value) == (
        f"{path}: is named .xz but does not start like xz data; the file is damaged or misnamed"
    )


COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compression_is_recognised_by_content_and_damage_is_one_line(tmp_path, kind):
    packed = COMPRESSORS[kind](json.dumps(RECORDS * 50).encode())
    misnamed = tmp_path / "records.json"  # no compression suffix: the first bytes decide
    misnamed.write_bytes(packed)
    assert len(load_alpaca(misnamed)) == 150
    truncated = tmp_path / "cut.json"
    truncated.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(AlpacaFormatError) as caught:
        load_alpaca(truncated)
    assert str(caught.value) == (
        f"{truncated}: cannot be read: its {kind} data is truncated; copy or download it again"
    )
    damaged = bytearray(packed)
    for position in range(len(damaged) // 3, len(damaged) // 3 + 8):
        damaged[position] ^= 0x55
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_bytes(bytes(damaged))
    with pytest.raises(AlpacaFormatError) as caught:
        load_alpaca(corrupt)
    assert str(caught.value) == (
        f"{corrupt}: cannot be read: its {kind} data is corrupt; copy or download it again"
    )


def test_empty_outputs_are_skipped_with_a_warning_kept_or_rejected(tmp_path):
    data = [RECORDS[0], {"instruction": "Draw a chart.", "input": "", "output": ""}, RECORDS[1]]
    path = _write(tmp_path / "d.json", json.dumps(data))
    with pytest.warns(
        UserWarning, match=r"skipped 1 record\(s\) with an empty output \(indices \[1\]"
    ):
        assert len(load_alpaca(path)) == 2
    assert load_alpaca(path, empty_output="keep")[1].output == ""
    with pytest.raises(AlpacaFormatError, match="record 1, field 'output': is empty"):
        load_alpaca(path, empty_output="error")
    with pytest.raises(ValueError, match="empty_output must be"):
        load_alpaca(path, empty_output="drop")


def test_missing_file_and_hub_without_datasets(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="No Alpaca file at"):
        load_alpaca(tmp_path / "nope.json")
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets → ImportError
    with pytest.raises(FileNotFoundError, match=r"`datasets` package is not installed"):
        load_alpaca("tatsu-lab/alpaca")


def test_hub_failure_offline_is_explained(monkeypatch):
    import types

    def load_dataset(hub_id, split):
        raise ConnectionError("Couldn't reach the hub")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(FileNotFoundError, match="Without network access, download the JSON"):
        load_alpaca("tatsu-lab/alpaca")


def test_hub_records_are_validated(monkeypatch):
    import types

    rows = [RECORDS[0], {"instruction": "x", "input": "", "output": 3}]
    fake = types.SimpleNamespace(load_dataset=lambda hub_id, split: rows)
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(AlpacaFormatError, match="tatsu-lab/alpaca, record 1, field 'output'"):
        load_alpaca("tatsu-lab/alpaca")


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_record = st.fixed_dictionaries(
    {
        "instruction": _text.filter(lambda s: s.strip()),
        "input": _text,
        "output": _text.filter(lambda s: s.strip()),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(_record, min_size=1, max_size=8), lines=st.booleans())
def test_any_valid_records_round_trip(tmp_path, records, lines):
    path = tmp_path / ("d.jsonl" if lines else "d.json")
    text = "\n".join(json.dumps(r) for r in records) if lines else json.dumps(records)
    path.write_text(text, encoding="utf-8")
    assert [r.to_dict() for r in load_alpaca(path)] == records


_bad_value = st.one_of(
    st.none(), st.integers(), st.floats(allow_nan=False), st.lists(st.integers())
)


@settings(max_examples=40, deadline=None)
@given(
    records=st.lists(_record, min_size=1, max_size=6),
    position=st.integers(0, 5),
    field=st.sampled_from(["instruction", "input", "output"]),
    value=_bad_value,
)
def test_any_non_string_field_is_reported_at_its_index(records, position, field, value):
    position %= len(records)
    records[position] = {**records[position], field: value}
    with pytest.raises(AlpacaFormatError) as caught:
        [validate_record(r, index=i) for i, r in enumerate(records)]
    assert (caught.value.index, caught.value.field) == (position, field)


# ---------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------


def test_prompt_variants_exact_text():
    with_input = format_prompt(RECORDS[1])
    assert with_input == (
        "Here is a task, together with some context for it. Write a reply that carries out the "
        "task.\n\n### Instruction:\nTranslate to French.\n\n### Input:\nGood morning\n\n"
        "### Response:\n"
    )
    without = format_prompt(RECORDS[0])
    assert without == (
        "Here is a task. Write a reply that carries out the task.\n\n"
        "### Instruction:\nGive three tips for staying healthy.\n\n### Response:\n"
    )
    blank_input = {"instruction": "Give three tips for staying healthy.", "input": "  \n"}
    assert format_prompt({**blank_input, "output": "x"}) == without


def test_template_must_use_exactly_its_fields():
    with pytest.raises(ValueError, match=r"with_input must use exactly the fields"):
        PromptTemplate(with_input="{instruction}", without_input="{instruction}")
    with pytest.raises(ValueError, match=r"without_input must use exactly"):
        PromptTemplate(with_input="{instruction}{input}", without_input="{instruction}{input}")


# ---------------------------------------------------------------------------------------------
# Tokenisation: the boundary bug class
# ---------------------------------------------------------------------------------------------


def test_rows_are_prompt_ids_plus_response_ids_plus_eos(gpt2):
    batch = tokenize_instructions(RECORDS, gpt2, max_length=128)
    for row, record in enumerate(RECORDS):
        prompt = _encode(gpt2, format_prompt(record))
        response = _encode(gpt2, record["output"])
        expected = [*prompt, *response, 50256]
        real = batch.attention_mask[row] == 1
        assert batch.input_ids[row][real].tolist() == expected
        assert batch.prompt_lengths[row] == len(prompt)
        assert batch.response_lengths[row] == len(response) + 1
        labels = batch.labels[row]
        # Off-by-one guard: the first label-bearing position is exactly the prompt length.
        assert np.flatnonzero(labels != IGNORE_INDEX)[0] == len(prompt)
        assert labels[: len(prompt)].tolist() == [IGNORE_INDEX] * len(prompt)
        assert labels[len(prompt) : len(expected)].tolist() == [*response, 50256]
        assert np.all(labels[~real] == IGNORE_INDEX)
        assert gpt2.decode(labels[labels != IGNORE_INDEX]) == record["output"] + "<|endoftext|>"


@pytest.mark.parametrize(
    ("template", "output"),
    [
        (DEFAULT_TEMPLATE, "\n\nA list:\n1. one"),  # "\n" + "\n\n" → "\n\n" merges across
        (PromptTemplate("Q: {instruction} {input}\nA: ", "Q: {instruction}\nA: "), "Paris"),
    ],
)
def test_no_token_merges_across_the_prompt_response_boundary(gpt2, template, output):
    record = {"instruction": "What is the capital of France?", "input": "", "output": output}
    prompt_text = format_prompt(record, template)
    prompt, response = _encode(gpt2, prompt_text), _encode(gpt2, output)
    joint = _encode(gpt2, prompt_text + output)
    assert joint != prompt + response  # the trap exists for this text ...
    batch = tokenize_instructions([record], gpt2, template=template, max_length=64)
    row = batch.input_ids[0][batch.attention_mask[0] == 1].tolist()
    assert row == [*prompt, *response, 50256]  # ... and we do not fall into it
    assert row[: batch.prompt_lengths[0]] == prompt  # exactly what generation will see
    labelled = batch.labels[0][batch.labels[0] != IGNORE_INDEX]
    assert gpt2.decode(labelled) == output + "<|endoftext|>"


def test_eos_appears_exactly_once_even_when_pad_is_eos_and_text_spells_it(gpt2):
    records = [
        {"instruction": "Echo the marker.", "input": "", "output": "the end <|endoftext|>"},
        {"instruction": "Say yes.", "input": "", "output": "yes"},
    ]
    batch = tokenize_instructions(records, gpt2, max_length=64)
    assert batch.pad_token_id == batch.eos_token_id == 50256  # GPT-2 pads with EOS
    for row in range(2):
        real = batch.attention_mask[row] == 1
        assert np.sum(batch.input_ids[row][real] == 50256) == 1
        assert batch.input_ids[row][real][-1] == 50256
        # The real EOS keeps its label; padding (same id) does not get one.
        assert np.sum(batch.labels[row] == 50256) == 1
    assert batch.input_ids.shape[1] > batch.attention_mask[1].sum()  # row 1 is padded


def test_padding_sides_hold_the_same_tokens_shifted(gpt2):
    right = tokenize_instructions(RECORDS, gpt2, max_length=96, padding_side="right")
    left = tokenize_instructions(RECORDS, gpt2, max_length=96, padding_side="left")
    width = right.input_ids.shape[1]
    for row in range(len(RECORDS)):
        length = int(right.attention_mask[row].sum())
        assert (
            right.attention_mask[row, :length].all()
            and not right.attention_mask[row, length:].any()
        )
        assert left.attention_mask[row, width - length :].all()
        assert not left.attention_mask[row, : width - length].any()
        np.testing.assert_array_equal(
            left.input_ids[row, width - length :], right.input_ids[row, :length]
        )
        np.testing.assert_array_equal(
            left.labels[row, width - length :], right.labels[row, :length]
        )
        np.testing.assert_array_equal(left.position_ids[row, width - length :], np.arange(length))
        np.testing.assert_array_equal(right.position_ids[row, :length], np.arange(length))
    fixed = tokenize_instructions(RECORDS, gpt2, max_length=96, pad_to="max_length")
    assert fixed.input_ids.shape == (3, 96)


def test_truncation_cuts_the_response_tail_and_counts_it(gpt2):
    long_output = " ".join(["word"] * 50)
    records = [RECORDS[0], {"instruction": "Repeat.", "input": "", "output": long_output}]
    prompt = _encode(gpt2, format_prompt(records[1]))
    response = _encode(gpt2, long_output)
    max_length = len(prompt) + 10
    batch = tokenize_instructions(records, gpt2, max_length=max_length)
    report = batch.report
    assert (report.n_examples, report.n_kept, report.n_truncated, report.n_dropped) == (2, 2, 1, 0)
    assert report.truncated_indices == (1,)
    assert report.response_tokens_cut == len(response) + 1 - 10
    row = batch.input_ids[1][batch.attention_mask[1] == 1].tolist()
    assert row == prompt + response[:10]  # tail cut, no EOS: the answer did not end here
    assert batch.response_lengths[1] == 10
    assert batch.input_ids.shape[1] <= max_length
    assert "1 responses truncated" in str(report)


def test_prompt_too_long_is_dropped_loudly_or_raises(gpt2):
    records = [RECORDS[0], RECORDS[1]]
    short = len(_encode(gpt2, format_prompt(RECORDS[0]))) + 3
    with pytest.warns(UserWarning, match=r"dropped 1 record\(s\).*first: \[1\]"):
        batch = tokenize_instructions(records, gpt2, max_length=short)
    assert batch.report.dropped_indices == (1,) and batch.source_indices.tolist() == [0]
    with pytest.raises(ValueError, match=r"record 1: the prompt is \d+ tokens"):
        tokenize_instructions(records, gpt2, max_length=short, on_overflow="error")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_length": 1}, "max_length must be an integer >= 2; got 1"),
        ({"padding_side": "middle"}, "padding_side must be 'right' or 'left'; got 'middle'"),
        ({"pad_to": "multiple"}, "pad_to must be"),
        ({"on_overflow": "ignore"}, "on_overflow must be"),
        ({"min_response_tokens": 0}, "min_response_tokens must be"),
    ],
)
def test_tokenize_rejects_bad_arguments(gpt2, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        tokenize_instructions(RECORDS, gpt2, **kwargs)


def test_tokenizer_without_eos_needs_an_explicit_id(gpt2):
    class NoEos:
        eos_token_id = None
        pad_token_id = None

        def __call__(self, texts, **kwargs):
            return gpt2(texts, **kwargs)

    with pytest.raises(ValueError, match="pass eos_token_id explicitly"):
        tokenize_instructions(RECORDS, NoEos())
    batch = tokenize_instructions(RECORDS, NoEos(), eos_token_id=7, pad_token_id=0)
    assert batch.input_ids[0][batch.attention_mask[0] == 1][-1] == 7


def test_as_torch_matches_arrays(gpt2):
    batch = tokenize_instructions(RECORDS, gpt2, max_length=64)
    tensors = batch.as_torch([0, 2])
    assert set(tensors) == {"input_ids", "attention_mask", "labels", "position_ids"}
    np.testing.assert_array_equal(tensors["labels"].numpy(), batch.labels[[0, 2]])
    assert tensors["input_ids"].dtype.is_floating_point is False and len(batch) == 3


# ---------------------------------------------------------------------------------------------
# Synthetic instructions
# ---------------------------------------------------------------------------------------------


def _solve(record: InstructionRecord) -> str:
    """An independent solver: recompute each task's answer from its text."""
    text, data = record.instruction, record.input
    numbers = [int(v) for v in re.findall(r"-?\d+", data)]
    if text == "Add the two numbers.":
        return str(sum(numbers))
    if match := re.fullmatch(r"What is (\d+) minus (\d+)\?", text):
        return str(int(match[1]) - int(match[2]))
    if match := re.fullmatch(r"Multiply (\d+) by (\d+)\.", text):
        return str(int(match[1]) * int(match[2]))
    if match := re.fullmatch(r"Is (\d+) even or odd\?", text):
        return "odd" if int(match[1]) % 2 else "even"
    if text == "Spell the word backwards.":
        return "".join(reversed(data))
    if text == "Write these words in reverse order.":
        return " ".join(reversed(data.split()))
    if text == "Sort the numbers from smallest to largest.":
        return ", ".join(str(v) for v in sorted(numbers))
    if text == "Which number is the largest?":
        return str(max(numbers))
    if match := re.fullmatch(r"How many times does the letter '(.)' appear in the text\?", text):
        return str(sum(ch == match[1] for ch in data))
    if text == "Count the words in the text.":
        return str(len(data.split()))
    if text == "Rewrite the text in capital letters.":
        return data.upper()
    if text == "Rewrite the text in lower case.":
        return data.lower()
    if text == "Capitalise the first letter of every word.":
        return " ".join(w[:1].upper() + w[1:] for w in data.split(" "))
    raise AssertionError(f"unknown task: {text!r}")


def test_synthetic_instructions_are_correct_and_cover_every_task():
    records = synthetic_instructions(600, seed=3)
    assert all(_solve(r) == r.output for r in records)
    kinds = {re.sub(r"\d+|'.'", "#", r.instruction) for r in records}
    assert len(kinds) == 13
    with_input = sum(bool(r.input) for r in records)
    assert 0.6 < with_input / len(records) < 0.9  # both prompt variants are exercised
    for r in records:
        assert validate_record(r) == r


def test_synthetic_instructions_are_deterministic_and_prefix_stable():
    assert synthetic_instructions(50, seed=1) == synthetic_instructions(50, seed=1)
    assert synthetic_instructions(80, seed=1)[:50] == synthetic_instructions(50, seed=1)
    assert synthetic_instructions(50, seed=1) != synthetic_instructions(50, seed=2)
    assert synthetic_instructions(0, seed=0) == []
    with pytest.raises(ValueError, match="n must be a non-negative integer; got -1"):
        synthetic_instructions(-1)


# ---------------------------------------------------------------------------------------------
# The real Alpaca subset
# ---------------------------------------------------------------------------------------------


@pytest.mark.real_data
def test_real_alpaca_subset_loads_and_tokenizes(shared_data, gpt2):
    path = shared_data / "alpaca" / "alpaca_random_9k.json.xz"
    with pytest.warns(UserWarning, match=r"skipped 4 record\(s\) with an empty output"):
        records = load_alpaca(path)
    # 9,229 records, 4 with an empty output; 3,666 with an input, one of which has no output.
    assert len(records) == 9225
    assert sum(bool(r.input.strip()) for r in records) == 3665
    assert len(load_alpaca(path, empty_output="keep")) == 9229
    sample = records[:300]
    batch = tokenize_instructions(sample, gpt2, max_length=256)
    complete = np.setdiff1d(np.arange(len(batch)), batch.report.truncated_indices)
    for row in complete[:100]:
        labelled = batch.labels[row][batch.labels[row] != IGNORE_INDEX]
        assert gpt2.decode(labelled) == sample[batch.source_indices[row]].output + "<|endoftext|>"
    assert batch.report.n_kept + batch.report.n_dropped == 300
