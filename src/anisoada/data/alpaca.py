"""Alpaca-format instruction data, prompts, and tokenisation with the loss on responses only.

A record is ``{"instruction": str, "input": str, "output": str}``; ``input`` is often empty. The
model is trained on ``prompt(record) + output + EOS`` with the loss on the response tokens only.

The pipeline is written against the bug class these pipelines are known for:

* **Boundary merges.** Byte-level BPE can merge characters across the prompt/response boundary
  (``"\\n" + "\\nfoo"`` tokenises as ``"\\n\\n" + "foo"``), so masking "the first
  ``len(tokenize(prompt))`` tokens" of the tokenised concatenation can mask part of the response or
  leave part of the prompt in the loss. We tokenise prompt and response **separately** and
  concatenate the ids: the prompt ids are exactly what the model sees at generation time, and the
  mask boundary is exact by construction.
* **Mask off-by-one.** Labels are aligned with ``input_ids`` (the Hugging Face causal-LM
  convention: the model shifts by one internally); the first label-bearing position is exactly
  ``prompt_length``.
* **EOS twice or missing.** The EOS id is appended once, after complete responses; text that
  spells ``<|endoftext|>`` is tokenised as plain text, never as the EOS id; masks come from
  lengths, never from comparing ids with a pad id that may equal the EOS id.
* **Padding side.** Explicit (``"right"`` for training, ``"left"`` for batched generation), with
  ``position_ids`` that skip left padding.
* **Silent truncation.** Responses are cut only at the tail, prompts never; every cut and every
  example whose prompt leaves no room for a response is counted in a :class:`TruncationReport`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import numbers
import os
import re
import string
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "DEFAULT_TEMPLATE",
    "IGNORE_INDEX",
    "AlpacaFormatError",
    "InstructionRecord",
    "PromptTemplate",
    "TokenizedInstructions",
    "TruncationReport",
    "format_prompt",
    "load_alpaca",
    "synthetic_instructions",
    "tokenize_instructions",
    "validate_record",
]

# The label value ignored by torch.nn.functional.cross_entropy (its default ``ignore_index``).
IGNORE_INDEX = -100
# Longest field accepted by default: Alpaca's longest output is ≈ 5 000 characters; anything far
# beyond is almost certainly a broken file (a whole document pasted into one field).
DEFAULT_MAX_FIELD_CHARS = 100_000
_FIELDS = ("instruction", "input", "output")


class AlpacaFormatError(ValueError):
    """A record or file that does not follow the Alpaca format.

    Attributes:
        source: File name (or hub id) of the data, when known.
        index: 0-based record index, when the problem is in one record.
        field: The offending field name, when there is one.
        line: 1-based line of a JSON Lines record, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        index: int | None = None,
        field: str | None = None,
        line: int | None = None,
    ):
        where = []
        if source is not None:
            where.append(source)
        if line is not None:
            where.append(f"line {line}")
        if index is not None:
            where.append(f"record {index}")
        if field is not None:
            where.append(f"field {_preview(field)}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.source, self.index, self.field, self.line = source, index, field, line


@dataclass(frozen=True, slots=True)
class InstructionRecord:
    """One instruction-following example: ``instruction``, ``input`` and ``output``.

    ``input`` is ``""`` for a record without one (Alpaca's "no input" variant).
    """

    instruction: str
    input: str
    output: str

    def to_dict(self) -> dict[str, str]:
        """The record as an Alpaca JSON object."""
        return {"instruction": self.instruction, "input": self.input, "output": self.output}


def validate_record(
    record: Any,
    *,
    index: int | None = None,
    source: str | None = None,
    allow_empty_output: bool = False,
    max_field_chars: int | None = DEFAULT_MAX_FIELD_CHARS,
    line: int | None = None,
) -> InstructionRecord:
    """Check one Alpaca record and return it as an :class:`InstructionRecord`.

    Rules (each failure raises :class:`AlpacaFormatError` naming the record index and field):

    * the record is a JSON object (``dict``) or an :class:`InstructionRecord`;
    * ``instruction`` and ``output`` are present; ``input`` may be absent (read as ``""``, the
      "no input" variant — several Alpaca derivatives drop the key when it is empty);
    * every present field is a string (``None``, numbers and lists are rejected, not coerced);
    * ``instruction`` is not blank; ``output`` is not blank unless ``allow_empty_output``;
    * no field is longer than ``max_field_chars`` characters (``None`` disables the check).

    Extra keys are ignored. Text is kept byte for byte (no stripping), since whitespace changes
    the tokens. ``line`` (the record's line in a JSON Lines file) only adds to the message.
    """
    where: dict[str, Any] = {"source": source, "index": index, "line": line}
    if isinstance(record, InstructionRecord):
        record = record.to_dict()
    if not isinstance(record, dict):
        raise AlpacaFormatError(
            f"expected a JSON object with keys {', '.join(_FIELDS)}; got {_describe(record)}",
            **where,
        )
    values = {}
    for name in _FIELDS:
        if name not in record:
            if name == "input":
                values[name] = ""
                continue
            raise AlpacaFormatError(
                f"missing required key (the record has {_keys(record)})", field=name, **where
            )
        value = record[name]
        if not isinstance(value, str):
            raise AlpacaFormatError(
                f"expected a string, got {_describe(value)}", field=name, **where
            )
        if max_field_chars is not None and len(value) > max_field_chars:
            raise AlpacaFormatError(
                f"{len(value)} characters exceeds max_field_chars={max_field_chars} "
                "(raise the limit if this is intended)",
                field=name,
                **where,
            )
        values[name] = value
    if not values["instruction"].strip():
        raise AlpacaFormatError("is empty", field="instruction", **where)
    if not allow_empty_output and not values["output"].strip():
        raise AlpacaFormatError(
            "is empty (nothing to learn; pass allow_empty_output=True to keep such records, "
            "which then train only the EOS token)",
            field="output",
            **where,
        )
    return InstructionRecord(**values)


def load_alpaca(
    path_or_hub_id: str | Path,
    *,
    split: str = "train",
    limit: int | None = None,
    empty_output: Literal["skip", "keep", "error"] = "skip",
    max_field_chars: int | None = DEFAULT_MAX_FIELD_CHARS,
) -> list[InstructionRecord]:
    """Load and validate Alpaca-format records from a JSON / JSONL file or the Hugging Face hub.

    Local files: a JSON list of objects (``alpaca_data.json``) or JSON Lines (one object per
    line; ``.jsonl`` / ``.ndjson``, or detected from the first character), optionally compressed
    with gzip, bzip2 or xz (recognised by the file's first bytes, whatever its name). The text
    must be UTF-8 (a byte-order mark is allowed). Every record is checked by
    :func:`validate_record`. A file that is empty, holds no records, or holds a JSON object that
    is not a record (say ``{"data": [...]}``) is an error, as is JSON nested deeper than Python
    can read: every problem is an :class:`AlpacaFormatError` naming the file (and the line, the
    record or the field when there is one).

    Records whose ``output`` is blank (the original Alpaca data has a few, e.g. "Create a flow
    chart …") are skipped with a warning that lists their indices by default, since a blank
    response teaches only the EOS token. The ``<noinput>`` / ``<nooutput>`` markers that the
    original data contains in a few records are kept verbatim.

    A string that is not an existing path and looks like ``owner/name`` is loaded with the
    ``datasets`` package (``pip install 'anisoada[hub]'``) when it is installed and the network
    is reachable; otherwise the error says so and how to use a local file instead.

    Args:
        path_or_hub_id: A local file, or a hub dataset id such as ``"tatsu-lab/alpaca"``.
        split: Hub split to load (ignored for files).
        limit: Keep only the first ``limit`` records of the file (all are parsed; only those are
            validated).
        empty_output: Records with a blank ``output``: ``"skip"`` (with a warning), ``"keep"``,
            or ``"error"``.
        max_field_chars: Longest accepted field, or ``None`` for no limit.

    Returns:
        The records, in file order.

    Raises:
        FileNotFoundError: No such file (and not a hub id).
        AlpacaFormatError: Malformed JSON (with line and column), an unreadable, empty or
            non-UTF-8 file, or an invalid record (with its index and field).

    Example:
        >>> records = load_alpaca("alpaca_data.json")  # doctest: +SKIP
        >>> print(format_prompt(records[0]))  # doctest: +SKIP
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None; got {limit!r}")
    if empty_output not in ("skip", "keep", "error"):
        raise ValueError(f"empty_output must be 'skip', 'keep' or 'error'; got {empty_output!r}")
    if not isinstance(path_or_hub_id, str | os.PathLike):
        raise TypeError(
            "expected the path of an Alpaca JSON/JSONL file or a hub id; got "
            f"{type(path_or_hub_id).__name__}"
        )
    path = Path(path_or_hub_id).expanduser()
    lines: list[int] | None = None
    if path.is_file():
        source = str(path)
        raw, lines = _read_records(path)
    elif path.is_dir():
        raise AlpacaFormatError(
            "is a directory, not an Alpaca file; give the JSON or JSONL file inside it",
            source=str(path),
        )
    elif path.exists():
        raise AlpacaFormatError(
            "is not a regular file; give a JSON or JSONL file", source=str(path)
        )
    elif _looks_like_hub_id(str(path_or_hub_id)):
        source = str(path_or_hub_id)
        raw = _read_hub(source, split)
    else:
        raise FileNotFoundError(
            f"No Alpaca file at {path}. Give a JSON/JSONL file (e.g. alpaca_data.json from "
            "github.com/tatsu-lab/stanford_alpaca) or a hub id like 'tatsu-lab/alpaca'"
        )
    if not raw:
        raise AlpacaFormatError(
            "holds no records; expected a JSON list of records or one record per line",
            source=source,
        )
    if limit is not None:
        raw = raw[:limit]
    records, skipped = [], []
    for index, item in enumerate(raw):
        record = validate_record(
            item,
            index=index,
            source=source,
            allow_empty_output=empty_output != "error",
            max_field_chars=max_field_chars,
            line=lines[index] if lines is not None else None,
        )
        if empty_output == "skip" and not record.output.strip():
            skipped.append(index)
        else:
            records.append(record)
    if skipped:
        warnings.warn(
            f"{source}: skipped {len(skipped)} record(s) with an empty output (indices "
            f"{skipped[:10]}{' ...' if len(skipped) > 10 else ''}); pass empty_output='keep' "
            "to keep them",
            stacklevel=2,
        )
    return records


# First bytes of the compressed formats read; the name alone does not decide.
# (gzip's, bz2's and lzma's files are io.BufferedIOBase; typeshed's GzipFile is not typing.IO.)
_SIGNATURES: tuple[tuple[bytes, str, Callable[..., io.BufferedIOBase]], ...] = (
    (b"\x1f\x8b", "gzip", gzip.open),
    (b"BZh", "bzip2", bz2.open),
    (b"\xfd7zXZ\x00", "xz", lzma.open),
)
_SUFFIX_KINDS = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}
# json turns integers into Python ints, and int() refuses more than 4300 digits by default.
_MAX_INT_DIGITS = 4000


class _LongNumber(Exception):
    """An integer too long for ``int()``; raised from inside ``json.loads``."""


class _DuplicateKey(Exception):
    """An object with the same key twice (``json`` would silently keep the last value)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        keys = [key for key, _ in pairs]
        raise _DuplicateKey(next(key for i, key in enumerate(keys) if key in keys[:i]))
    return record


def _loads(text: str) -> Any:
    """JSON with integers bounded in length and every object's keys distinct."""
    return json.loads(text, parse_int=_json_int, object_pairs_hook=_unique_keys)


def _json_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise _LongNumber
    return int(text)


def _read_bytes(path: Path) -> bytes:
    """The file's (decompressed) bytes, with one-line errors for unreadable or damaged files."""
    source = str(path)
    kind = None
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
        found = next((entry for entry in _SIGNATURES if head.startswith(entry[0])), None)
        if found is None:
            suffix = path.suffix.lower()
            if suffix in _SUFFIX_KINDS and head:
                raise AlpacaFormatError(
                    f"is named {suffix} but does not start like {_SUFFIX_KINDS[suffix]} data; "
                    "the file is damaged or misnamed",
                    source=source,
                )
            return path.read_bytes()
        _, kind, opener = found
        with opener(path, "rb") as handle:
            return handle.read()
    except EOFError as error:
        raise AlpacaFormatError(
            f"cannot be read: its {kind} data is truncated; copy or download it again",
            source=source,
        ) from error
    except OSError as error:
        if kind is None or error.errno is not None:
            reason = error.strerror or "read error"
            raise AlpacaFormatError(f"cannot be read ({reason})", source=source) from error
        raise AlpacaFormatError(
            f"cannot be read: its {kind} data is corrupt; copy or download it again",
            source=source,
        ) from error
    except (lzma.LZMAError, zlib.error) as error:
        raise AlpacaFormatError(
            f"cannot be read: its {kind} data is corrupt; copy or download it again",
            source=source,
        ) from error


def _read_records(path: Path) -> tuple[list[Any], list[int] | None]:
    """The file's records and, for JSON Lines, the line each came from."""
    source = str(path)
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - raw.rfind(b"\n", 0, error.start)
        raise AlpacaFormatError(
            f"line {line}, column {column}: byte 0x{raw[error.start]:02x} is not UTF-8 text; "
            "save the file as UTF-8",
            source=source,
        ) from None
    if not text.strip():
        raise AlpacaFormatError(
            "is empty; expected a JSON list of records or one record per line", source=source
        )
    stem = path.name.lower()
    for compression in _SUFFIX_KINDS:
        stem = stem.removesuffix(compression)
    if stem.endswith((".jsonl", ".ndjson")):
        return _json_lines(text, source)
    if text.lstrip().startswith("{"):
        # One object on its own is either a one-record JSON Lines file or a container such as
        # {"data": [...]}; "Extra data" after the first object means JSON Lines.
        try:
            data = _loads(text)
        except json.JSONDecodeError as error:
            if error.msg == "Extra data":
                return _json_lines(text, source)
            raise _invalid_json(error, source) from None
        except (RecursionError, _LongNumber, _DuplicateKey) as error:
            raise _unreadable_json(error, text, source) from None
        if isinstance(data, dict) and not any(name in data for name in _FIELDS):
            raise AlpacaFormatError(
                f"expected a JSON list of records (or JSON Lines); the top level is an object "
                f"with keys {_keys(data)}, not a record. Put the records themselves in the "
                "file, as a list or one per line",
                source=source,
            )
        return [data], [text[: text.index("{")].count("\n") + 1]
    try:
        data = _loads(text)
    except json.JSONDecodeError as error:
        raise _invalid_json(error, source) from None
    except (RecursionError, _LongNumber, _DuplicateKey) as error:
        raise _unreadable_json(error, text, source) from None
    if not isinstance(data, list):
        raise AlpacaFormatError(
            f"expected a JSON list of records (or JSON Lines); the top level is {_describe(data)}",
            source=source,
        )
    return data, None


def _json_lines(text: str, source: str) -> tuple[list[Any], list[int]]:
    records, lines = [], []
    # Only "\n" ends a JSON Lines record (a "\r" before it is whitespace); str.splitlines()
    # would also split inside strings at U+0085, U+2028 and others that JSON leaves unescaped.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(_loads(line))
        except json.JSONDecodeError as error:
            raise AlpacaFormatError(
                f"line {line_number}, column {error.colno}: invalid JSON ({error.msg})",
                source=source,
            ) from None
        except (RecursionError, _LongNumber, _DuplicateKey) as error:
            raise _unreadable_json(error, line, source, line_number) from None
        lines.append(line_number)
    return records, lines


def _invalid_json(error: json.JSONDecodeError, source: str) -> AlpacaFormatError:
    return AlpacaFormatError(
        f"line {error.lineno}, column {error.colno}: invalid JSON ({error.msg})", source=source
    )


def _unreadable_json(
    error: BaseException, text: str, source: str, line: int | None = None
) -> AlpacaFormatError:
    """Valid-looking JSON that Python's reader cannot hold: too deeply nested, a huge integer,
    or an object with a key twice (which value is meant?)."""
    if isinstance(error, _DuplicateKey):
        message = (
            f"a JSON object has the key {_preview(error.key)} twice (which value is meant?); "
            "keep one"
        )
    elif isinstance(error, RecursionError):
        message = (
            "JSON nested too deeply to read (Alpaca records are flat objects of strings); the "
            "file is damaged or not Alpaca data"
        )
    else:
        message = (
            f"holds an integer of more than {_MAX_INT_DIGITS} digits (Alpaca fields are strings); "
            "the file is damaged or not Alpaca data"
        )
        if line is None:
            found = re.search(f"[0-9]{{{_MAX_INT_DIGITS + 1},}}", text)
            line = text.count("\n", 0, found.start()) + 1 if found else None
    return AlpacaFormatError(message, source=source, line=line)


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not text.startswith((".", "~"))
        and Path(text).suffix.lower() not in (".json", ".jsonl", ".gz", ".xz", ".bz2")
    )


def _read_hub(hub_id: str, split: str) -> list[Any]:
    try:
        import datasets
    except ImportError as error:
        raise FileNotFoundError(
            f"{hub_id!r} is not a local file and the Hugging Face `datasets` package is not "
            "installed (pip install 'anisoada[hub]'). Download the JSON file and pass its path."
        ) from error
    try:
        dataset = datasets.load_dataset(hub_id, split=split)
    except Exception as error:  # offline, unknown id or split: several exception types
        raise FileNotFoundError(
            f"Could not load {hub_id!r} (split {split!r}) from the Hugging Face hub: "
            f"{type(error).__name__}: {error}. Without network access, download the JSON file "
            "elsewhere and pass its path."
        ) from error
    return [dict(row) for row in dataset]


def _preview(value: str, width: int = 40) -> str:
    """A string quoted for a message, escaped onto one line and at most ``width`` + 2 long.

    The bound holds for the escaped form: a character such as U+11AF9 is ten characters once
    escaped (``\\U00011af9``), so the text is cut until its escaped form fits.
    """
    shown = repr(value)
    if len(shown) <= width + 2:
        return shown
    cut = value[:width]
    while cut and len(repr(cut + "...")) > width + 2:
        cut = cut[:-1]
    return repr(cut + "...")


def _describe(value: Any) -> str:
    """A value as a message names it: JSON's vocabulary, bounded in length, never a deep repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        number = int(value)
        return f"the number {number}" if number.bit_length() <= 64 else "a long number"
    if isinstance(value, numbers.Real):
        return f"the number {float(value)!r}"
    if isinstance(value, str):
        return f"a string ({_preview(value)})"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object with {len(value)} key{'' if len(value) == 1 else 's'}"
    return f"a {type(value).__name__} value"


def _keys(record: dict[Any, Any], limit: int = 6) -> str:
    names = sorted(str(key) for key in record)
    if not names:
        return "no keys"
    shown = ", ".join(_preview(name, 30) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ---------------------------------------------------------------------------------------------
# Prompt template
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptTemplate:
    """The two prompt variants: with and without the ``input`` field.

    Each is a ``str.format`` template with ``{instruction}`` (and ``{input}``) and must end where
    the response begins. A record uses the "with input" variant iff ``input.strip()`` is not empty.
    """

    with_input: str
    without_input: str

    def __post_init__(self) -> None:
        for name, text, keys in (
            ("with_input", self.with_input, {"instruction", "input"}),
            ("without_input", self.without_input, {"instruction"}),
        ):
            found = {field for _, field, _, _ in string.Formatter().parse(text) if field}
            if found != keys:
                raise ValueError(
                    f"PromptTemplate.{name} must use exactly the fields {sorted(keys)}; "
                    f"it uses {sorted(found)}"
                )


# Our own wording of the usual structure: a preamble, then "### Instruction", optionally
# "### Input", and "### Response" followed by a newline, after which the response starts.
DEFAULT_TEMPLATE = PromptTemplate(
    with_input=(
        "Here is a task, together with some context for it. "
        "Write a reply that carries out the task.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
    ),
    without_input=(
        "Here is a task. Write a reply that carries out the task.\n\n"
        "### Instruction:\n{instruction}\n\n### Response:\n"
    ),
)


def format_prompt(
    record: InstructionRecord | dict[str, Any], template: PromptTemplate = DEFAULT_TEMPLATE
) -> str:
    """The prompt for ``record``: everything before the response.

    Two variants (our wording of the usual Alpaca structure)::

        Here is a task, together with some context for it. Write a reply that carries out the task.

        ### Instruction:
        {instruction}

        ### Input:
        {input}

        ### Response:

    and, when ``input`` is blank, the same without the ``### Input`` section and with the first
    sentence shortened to "Here is a task.". The prompt ends with a newline; the response text
    follows it directly.

    Args:
        record: An :class:`InstructionRecord` or a dict (validated).
        template: The two variants to use.

    Returns:
        The prompt string.

    Example:
        >>> print(format_prompt({"instruction": "Add 2 and 3.", "input": "", "output": "5"}))
        Here is a task. Write a reply that carries out the task.
        <BLANKLINE>
        ### Instruction:
        Add 2 and 3.
        <BLANKLINE>
        ### Response:
        <BLANKLINE>
    """
    if not isinstance(record, InstructionRecord):
        record = validate_record(record, allow_empty_output=True, max_field_chars=None)
    if record.input.strip():
        return template.with_input.format(instruction=record.instruction, input=record.input)
    return template.without_input.format(instruction=record.instruction)


# ---------------------------------------------------------------------------------------------
# Tokenisation with response-only loss
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TruncationReport:
    """What truncation to ``max_length`` did; nothing is cut without being counted here.

    Attributes:
        max_length: The limit applied.
        n_examples: Records given.
        n_kept: Rows in the output (``n_examples − n_dropped``).
        n_truncated: Kept rows whose response was cut at the tail (they get no EOS: the model must
            not learn to stop mid-answer).
        n_dropped: Records dropped because the prompt left fewer than ``min_response_tokens``.
        response_tokens_cut: Response + EOS tokens removed from truncated rows.
        truncated_indices: Record indices of truncated rows.
        dropped_indices: Record indices of dropped records.
    """

    max_length: int
    n_examples: int
    n_kept: int
    n_truncated: int
    n_dropped: int
    response_tokens_cut: int
    truncated_indices: tuple[int, ...]
    dropped_indices: tuple[int, ...]

    def __str__(self) -> str:
        return (
            f"{self.n_kept}/{self.n_examples} examples kept at max_length={self.max_length}: "
            f"{self.n_truncated} responses truncated ({self.response_tokens_cut} tokens cut), "
            f"{self.n_dropped} dropped (prompt too long)"
        )


@dataclass(frozen=True, eq=False)
class TokenizedInstructions:
    """Padded token arrays for causal-LM training with the loss on responses only.

    Row ``i`` is ``prompt ids + response ids + [EOS]`` (no EOS if the response was truncated),
    padded to a common length on ``padding_side``. All arrays are ``int64`` of shape ``(N, T)``.

    Attributes:
        input_ids: Token ids; padding positions hold ``pad_token_id``.
        attention_mask: 1 on real tokens, 0 on padding.
        labels: ``input_ids`` on response and EOS positions, ``IGNORE_INDEX`` (−100) on prompt and
            padding. Aligned with ``input_ids``: a causal LM shifts them by one internally.
        position_ids: 0, 1, … over the real tokens (padding gets 0), so left padding does not
            shift positions.
        prompt_lengths: Prompt tokens per row, shape ``(N,)``.
        response_lengths: Label-bearing tokens per row (response + EOS when present), ``(N,)``.
        source_indices: Index of each row's record in the input, ``(N,)``.
        report: The :class:`TruncationReport`.
        padding_side: ``"right"`` or ``"left"``.
        pad_token_id, eos_token_id: The ids used.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray
    prompt_lengths: np.ndarray
    response_lengths: np.ndarray
    source_indices: np.ndarray
    report: TruncationReport
    padding_side: Literal["right", "left"]
    pad_token_id: int
    eos_token_id: int

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def as_torch(self, rows: Sequence[int] | np.ndarray | slice | None = None) -> dict[str, Any]:
        """``input_ids``, ``attention_mask``, ``labels``, ``position_ids`` as torch tensors."""
        import torch

        selection = slice(None) if rows is None else rows
        return {
            name: torch.from_numpy(np.ascontiguousarray(getattr(self, name)[selection]))
            for name in ("input_ids", "attention_mask", "labels", "position_ids")
        }


def tokenize_instructions(
    records: Iterable[InstructionRecord | dict[str, Any]],
    tokenizer: Any,
    *,
    max_length: int = 512,
    template: PromptTemplate = DEFAULT_TEMPLATE,
    padding_side: Literal["right", "left"] = "right",
    pad_to: Literal["longest", "max_length"] = "longest",
    pad_token_id: int | None = None,
    eos_token_id: int | None = None,
    min_response_tokens: int = 1,
    on_overflow: Literal["drop", "error"] = "drop",
) -> TokenizedInstructions:
    """Tokenise records for response-only causal-LM training.

    For each record, ``p = tokenize(format_prompt(record))`` and ``r = tokenize(output)`` are
    computed **separately** (no BPE merge across the boundary) and the row is ``p + r + [EOS]``
    with labels ``[−100]·|p| + r + [EOS]``. Text is encoded as plain text: a literal
    ``<|endoftext|>`` inside a record never becomes the EOS id.

    Truncation when ``|p| + |r| + 1 > max_length``: the response tail (and the EOS) is cut to
    ``max_length − |p|`` tokens if that leaves at least ``min_response_tokens``; otherwise the
    record is dropped (``on_overflow="drop"``, with a warning) or an error is raised
    (``on_overflow="error"``). Prompts are never cut. Everything is counted in ``report``.

    Args:
        records: Alpaca records (validated).
        tokenizer: A Hugging Face tokenizer (e.g. :func:`gpt2_tokenizer`); it is called as
            ``tokenizer(texts, add_special_tokens=False, split_special_tokens=True)``.
        max_length: Longest row, ``≥ 2``.
        template: Prompt variants.
        padding_side: ``"right"`` (training) or ``"left"`` (batched generation). The tokenizer's
            own ``padding_side`` is not consulted.
        pad_to: Pad to the longest row or to ``max_length``.
        pad_token_id: Padding id; defaults to the tokenizer's pad id, else its EOS id (GPT-2 has
            no pad token — harmless, since padding is masked by length, not by id).
        eos_token_id: EOS id; defaults to ``tokenizer.eos_token_id``.
        min_response_tokens: Fewest response tokens a kept row may have, ``≥ 1``.
        on_overflow: What to do when a prompt leaves too little room.

    Returns:
        :class:`TokenizedInstructions`.

    Example:
        >>> tok = gpt2_tokenizer()  # doctest: +SKIP
        >>> batch = tokenize_instructions(synthetic_instructions(8, seed=0), tok)  # doctest: +SKIP
        >>> int((batch.labels[0] != -100).sum()) == batch.response_lengths[0]  # doctest: +SKIP
        True
    """
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2; got {max_length!r}")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left'; got {padding_side!r}")
    if pad_to not in ("longest", "max_length"):
        raise ValueError(f"pad_to must be 'longest' or 'max_length'; got {pad_to!r}")
    if on_overflow not in ("drop", "error"):
        raise ValueError(f"on_overflow must be 'drop' or 'error'; got {on_overflow!r}")
    if not isinstance(min_response_tokens, int) or not 1 <= min_response_tokens < max_length:
        raise ValueError(
            "min_response_tokens must be an integer in [1, max_length); "
            f"got {min_response_tokens!r}"
        )
    eos = eos_token_id if eos_token_id is not None else getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ValueError("The tokenizer has no eos_token_id; pass eos_token_id explicitly")
    pad = pad_token_id if pad_token_id is not None else getattr(tokenizer, "pad_token_id", None)
    pad = eos if pad is None else pad

    checked = [
        record
        if isinstance(record, InstructionRecord)
        else validate_record(record, index=index, allow_empty_output=True, max_field_chars=None)
        for index, record in enumerate(records)
    ]
    prompts = _encode(tokenizer, [format_prompt(record, template) for record in checked])
    responses = _encode(tokenizer, [record.output for record in checked])

    rows: list[tuple[list[int], int, int, int]] = []  # (ids, prompt length, label count, source)
    truncated: list[int] = []
    dropped: list[int] = []
    tokens_cut = 0
    for index, (prompt, response) in enumerate(zip(prompts, responses)):
        room = max_length - len(prompt)
        if len(response) + 1 <= room:
            rows.append((prompt + response + [eos], len(prompt), len(response) + 1, index))
        elif room >= min_response_tokens:
            rows.append((prompt + response[:room], len(prompt), room, index))
            truncated.append(index)
            tokens_cut += len(response) + 1 - room
        elif on_overflow == "error":
            raise ValueError(
                f"record {index}: the prompt is {len(prompt)} tokens, leaving {max(room, 0)} of "
                f"max_length={max_length} for the response (min_response_tokens="
                f"{min_response_tokens}); raise max_length or shorten the record"
            )
        else:
            dropped.append(index)
    report = TruncationReport(
        max_length=max_length,
        n_examples=len(checked),
        n_kept=len(rows),
        n_truncated=len(truncated),
        n_dropped=len(dropped),
        response_tokens_cut=tokens_cut,
        truncated_indices=tuple(truncated),
        dropped_indices=tuple(dropped),
    )
    if dropped:
        warnings.warn(
            f"tokenize_instructions dropped {len(dropped)} record(s) whose prompt leaves fewer "
            f"than {min_response_tokens} response token(s) at max_length={max_length} "
            f"(first: {dropped[:5]}); see the returned report",
            stacklevel=2,
        )

    width = max_length if pad_to == "max_length" else max((len(r[0]) for r in rows), default=0)
    shape = (len(rows), width)
    input_ids = np.full(shape, pad, dtype=np.int64)
    attention_mask = np.zeros(shape, dtype=np.int64)
    labels = np.full(shape, IGNORE_INDEX, dtype=np.int64)
    position_ids = np.zeros(shape, dtype=np.int64)
    for row, (ids, prompt_length, _, _) in enumerate(rows):
        start = 0 if padding_side == "right" else width - len(ids)
        span = slice(start, start + len(ids))
        input_ids[row, span] = ids
        attention_mask[row, span] = 1
        position_ids[row, span] = np.arange(len(ids))
        labels[row, start + prompt_length : start + len(ids)] = ids[prompt_length:]
    return TokenizedInstructions(
        input_ids=input_ids,
        attention_mask=attention_mask,
        labels=labels,
        position_ids=position_ids,
        prompt_lengths=np.array([r[1] for r in rows], dtype=np.int64),
        response_lengths=np.array([r[2] for r in rows], dtype=np.int64),
        source_indices=np.array([r[3] for r in rows], dtype=np.int64),
        report=report,
        padding_side=padding_side,
        pad_token_id=int(pad),
        eos_token_id=int(eos),
    )


def _encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Plain-text ids: no BOS/EOS added, special-token spellings kept as ordinary text."""
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False, split_special_tokens=True)
    return [list(ids) for ids in encoded["input_ids"]]


# ---------------------------------------------------------------------------------------------
# Synthetic instructions
# ---------------------------------------------------------------------------------------------

_WORDS = (
    "apple", "river", "garden", "window", "planet", "yellow", "music", "forest", "candle",
    "silver", "market", "orange", "pencil", "winter", "rocket", "bridge", "dragon", "castle",
    "summer", "coffee", "spider", "island", "butter", "jacket", "mirror", "thunder", "violet",
    "anchor", "basket", "cotton", "desert", "engine", "falcon", "ginger", "harbor", "jungle",
    "kettle", "lemon", "meadow", "needle", "ocean", "pepper", "quartz", "ribbon", "saddle",
    "tunnel", "velvet", "walnut", "zebra", "cloud", "stone", "light", "paper", "table", "horse",
    "green", "sugar", "tiger", "water", "bread",
)  # fmt: skip


def _task_add(rng: np.random.Generator) -> tuple[str, str, str]:
    a, b = (int(v) for v in rng.integers(0, 1000, size=2))
    return "Add the two numbers.", f"{a} and {b}", str(a + b)


def _task_subtract(rng: np.random.Generator) -> tuple[str, str, str]:
    a, b = (int(v) for v in rng.integers(0, 1000, size=2))
    return f"What is {a} minus {b}?", "", str(a - b)


def _task_multiply(rng: np.random.Generator) -> tuple[str, str, str]:
    a, b = (int(v) for v in rng.integers(2, 100, size=2))
    return f"Multiply {a} by {b}.", "", str(a * b)


def _words(rng: np.random.Generator, low: int, high: int) -> list[str]:
    count = int(rng.integers(low, high + 1))
    return [_WORDS[int(i)] for i in rng.integers(0, len(_WORDS), size=count)]


def _task_reverse_word(rng: np.random.Generator) -> tuple[str, str, str]:
    word = _words(rng, 1, 1)[0]
    return "Spell the word backwards.", word, word[::-1]


def _task_reverse_order(rng: np.random.Generator) -> tuple[str, str, str]:
    words = _words(rng, 3, 7)
    return "Write these words in reverse order.", " ".join(words), " ".join(words[::-1])


def _task_sort(rng: np.random.Generator) -> tuple[str, str, str]:
    numbers = [int(v) for v in rng.integers(0, 100, size=int(rng.integers(3, 9)))]
    listed = ", ".join(map(str, numbers))
    return (
        "Sort the numbers from smallest to largest.",
        listed,
        ", ".join(map(str, sorted(numbers))),
    )


def _task_maximum(rng: np.random.Generator) -> tuple[str, str, str]:
    numbers = [int(v) for v in rng.integers(0, 1000, size=int(rng.integers(3, 9)))]
    return "Which number is the largest?", ", ".join(map(str, numbers)), str(max(numbers))


def _task_count_letter(rng: np.random.Generator) -> tuple[str, str, str]:
    words = _words(rng, 2, 6)
    text = " ".join(words)
    letter = text[int(rng.integers(0, len(text)))]
    while letter == " ":
        letter = text[int(rng.integers(0, len(text)))]
    return (
        f"How many times does the letter '{letter}' appear in the text?",
        text,
        str(text.count(letter)),
    )


def _task_count_words(rng: np.random.Generator) -> tuple[str, str, str]:
    words = _words(rng, 1, 12)
    return "Count the words in the text.", " ".join(words), str(len(words))


def _task_upper(rng: np.random.Generator) -> tuple[str, str, str]:
    text = " ".join(_words(rng, 2, 6))
    return "Rewrite the text in capital letters.", text, text.upper()


def _task_lower(rng: np.random.Generator) -> tuple[str, str, str]:
    text = " ".join(word.upper() for word in _words(rng, 2, 6))
    return "Rewrite the text in lower case.", text, text.lower()


def _task_title(rng: np.random.Generator) -> tuple[str, str, str]:
    text = " ".join(_words(rng, 2, 6))
    return "Capitalise the first letter of every word.", text, text.title()


def _task_parity(rng: np.random.Generator) -> tuple[str, str, str]:
    value = int(rng.integers(0, 10_000))
    return f"Is {value} even or odd?", "", "even" if value % 2 == 0 else "odd"


_TASKS = (
    _task_add,
    _task_subtract,
    _task_multiply,
    _task_reverse_word,
    _task_reverse_order,
    _task_sort,
    _task_maximum,
    _task_count_letter,
    _task_count_words,
    _task_upper,
    _task_lower,
    _task_title,
    _task_parity,
)


def synthetic_instructions(n: int, *, seed: int = 0) -> list[InstructionRecord]:
    """``n`` deterministic instruction-following records with exactly computable answers.

    Thirteen task families, drawn uniformly: addition, subtraction, multiplication, parity,
    spelling a word backwards, reversing word order, sorting numbers, the maximum of a list,
    counting a letter, counting words, upper / lower / title case. Tasks with data use the
    ``input`` field, the others put everything in the instruction, so both prompt variants occur.
    The same ``(n, seed)`` always gives the same records, and a prefix of a longer list equals
    the shorter list.

    Args:
        n: Number of records, ``≥ 0``.
        seed: Seed of the generator.

    Returns:
        A list of :class:`InstructionRecord`.

    Example:
        >>> len(synthetic_instructions(3, seed=0))
        3
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer; got {n!r}")
    records = []
    for index in range(n):
        # One child stream per record: record i does not depend on how many draws record i−1 made,
        # so prefixes are stable and records can be generated independently.
        rng = np.random.default_rng([seed, index])
        task = _TASKS[int(rng.integers(0, len(_TASKS)))]
        instruction, input_text, output = task(rng)
        records.append(InstructionRecord(instruction, input_text, output))
    return records
