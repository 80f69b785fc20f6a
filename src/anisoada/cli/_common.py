"""Conventions shared by every subcommand: lists, common flags, help text and error messages.

One concept has one flag name in every command, lists take ``8,64,512`` as well as
``8 64 512`` (or both mixed), help shows each option's default, and every failure ends in one
line on stderr with exit status 2. Commands call these helpers rather than repeating them:

* :func:`add_list` — a list option (``nargs="+"``, commas or spaces, each item checked);
* :func:`add_quiet`, :func:`add_json` — ``--quiet`` (old spelling ``--no-progress`` kept hidden)
  and ``--json``;
* :func:`hidden_alias` — an old spelling that still works but is not shown in ``--help``;
* :class:`HelpFormatter` — defaults in help, descriptions printed as written;
* :func:`error_message` — any exception as one line that names the input and says what to do.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "HelpFormatter",
    "add_json",
    "add_list",
    "add_quiet",
    "error_message",
    "hidden_alias",
    "list_of",
    "positive_float",
    "positive_int",
    "print_json",
]


class HelpFormatter(argparse.HelpFormatter):
    """Paragraphs kept, and ``(default: …)`` after every option that has a real one.

    Descriptions are filled paragraph by paragraph (blank lines separate paragraphs; indented
    lines, such as examples, are kept as written). Unlike
    :class:`argparse.ArgumentDefaultsHelpFormatter`, it says nothing for a default of ``None``,
    ``False`` or an empty list (an absent option, a flag) and leaves help that already states
    its default alone.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = textwrap.dedent(text).strip("\n").split("\n\n")
        filled = []
        for paragraph in paragraphs:
            if any(line.startswith(" ") for line in paragraph.splitlines()):
                filled.append("\n".join(indent + line for line in paragraph.splitlines()))
            else:
                filled.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(filled)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default is False
            or default is argparse.SUPPRESS
            or (isinstance(default, list | tuple) and not default)
            or "default" in text
            or "%(default)" in text
            or not action.option_strings
        ):
            return text
        if isinstance(default, list | tuple):
            shown = " ".join(str(item) for item in default)
        else:
            shown = str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


#: The largest integer a count may take: every count ends up in an int64 (numpy, torch, parquet).
INT64_MAX = 2**63 - 1


def _integer(text: str, *, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
    if value > INT64_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is too large (at most {INT64_MAX})")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1 that fits in int64 (``argparse`` type; the message names the value)."""
    return _integer(text, low=1, what="a positive integer")


def non_negative_int(text: str) -> int:
    """An integer ≥ 0 that fits in int64 (seeds, counts that may be zero)."""
    return _integer(text, low=0, what="a non-negative integer")


def _real(text: str, accept: Callable[[float], bool], what: str) -> float:
    """A finite number that ``accept`` takes; ``nan``, ``inf`` and ``1e400`` never pass."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and accept(value)):
        raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
    return value + 0.0  # -0.0 -> 0.0


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _real(text, lambda value: value > 0, "a positive number")


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0."""
    return _real(text, lambda value: value >= 0, "a number >= 0")


def finite_float(text: str) -> float:
    """Any finite number."""
    return _real(text, lambda value: True, "a finite number")


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    return _real(text, lambda value: 0 <= value <= 1, "a number between 0 and 1")


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a holdout share, an envelope's coverage)."""
    return _real(text, lambda value: 0 < value < 1, "a number strictly between 0 and 1")


def positive_fraction(text: str) -> float:
    """A number in (0, 1] (a coverage, a density)."""
    return _real(text, lambda value: 0 < value <= 1, "a number above 0 and at most 1")


def unit_fraction(text: str) -> float:
    """A number in [0, 1) (a dropout probability, a warm-up share)."""
    return _real(text, lambda value: 0 <= value < 1, "a number >= 0 and below 1")


def output_directory(text: str) -> Path:
    """A directory to write into; an empty string (which would mean the working directory)
    is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a directory; got {text!r}")
    return Path(text)


def output_stem(text: str) -> Path:
    """The stem of output files (``STEM.npz``, ``STEM.json``): not empty, not a directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a file stem such as results/a9a; got {text!r}")
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a directory; give a file stem inside it, such as {path / 'measurement'}"
        )
    return path


def list_of(item: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """An ``argparse`` type for one token holding items separated by commas (or spaces)."""

    def parse(text: str) -> list[Any]:
        tokens = text.replace(",", " ").split()
        if not tokens:
            raise argparse.ArgumentTypeError(f"expected a list such as 8,64,512; got {text!r}")
        return [item(token) for token in tokens]

    parse.__name__ = getattr(item, "__name__", "list")
    return parse


class Extend(argparse.Action):
    """Collects every token of ``nargs="+"`` (each possibly comma-separated) into one list.

    Given twice, the later occurrence replaces the earlier one (as any single-valued option),
    unless the option is repeatable (``append``): then each occurrence adds to the list.
    ``unique``: an item given twice is a usage error (a batch size or an optimizer listed twice
    would run twice, or be silently merged).
    """

    def __init__(
        self, *args: Any, append: bool = False, unique: bool = False, **keywords: Any
    ) -> None:
        super().__init__(*args, **keywords)
        self.append, self.unique = append, unique

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, list)
        items = [item for value in values for item in value]
        if self.append:  # repeatable: every occurrence adds to the list
            items = [*(getattr(namespace, self.dest, None) or []), *items]
        if self.unique:
            repeated = first_repeated(items)
            if repeated is not None:
                raise argparse.ArgumentError(self, f"{repeated} is given twice; give each once")
        setattr(namespace, self.dest, items)


def first_repeated(items: Sequence[Any]) -> Any:
    """The first item that occurs earlier in ``items`` too, or ``None``."""
    return next((item for i, item in enumerate(items) if item in items[:i]), None)


_LR_RANGE = re.compile(r"([^:]+):([^:]+)(?::([^:]+))?")


def lr_range(text: str) -> tuple[float, float, int]:
    """``LOW:HIGH[:PER_DECADE]``: a log-spaced learning-rate grid (checked by ``LRGrid``)."""
    match = _LR_RANGE.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        return float(match[1]), float(match[2]), int(match[3] or 2)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH[:PER_DECADE]; got {text!r}") from None


def add_list(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *flags: str,
    item: Callable[[str], Any] = str,
    default: Sequence[Any] | None = None,
    help: str,
    metavar: str = "LIST",
    append: bool = False,
    old_spelling: str | None = None,
    **keywords: Any,
) -> argparse.Action:
    """A list option: ``--flag 8,64,512``, ``--flag 8 64 512`` or both mixed, items checked,
    each item at most once.

    ``append``: the option may be repeated, each occurrence adding to the list.
    ``old_spelling``: a hidden alias filling the same list (see :func:`hidden_alias`).
    """
    parse: dict[str, Any] = {"nargs": "+", "type": list_of(item), "action": Extend}
    parse.update(append=append, unique=True)
    action = parser.add_argument(
        *flags,
        default=None if default is None else list(default),
        metavar=metavar,
        help=help,
        **parse,
        **keywords,
    )
    if old_spelling is not None:
        hidden_alias(parser, old_spelling, action.dest, **parse)
    return action


def hidden_alias(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, dest: str, **keywords: Any
) -> argparse.Action:
    """An old spelling of an option: accepted, stored in ``dest``, never shown in ``--help``."""
    keywords.setdefault("default", argparse.SUPPRESS)
    return parser.add_argument(flag, dest=dest, help=argparse.SUPPRESS, **keywords)


def add_budget(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    default: str,
    samples: Callable[[str], Any] = positive_int,
) -> None:
    """``--samples N`` or ``--epochs E`` per run (old spellings ``--budget-samples``,
    ``--budget-epochs`` and ``--budget`` kept hidden); give ``parser`` a mutually exclusive
    group so that at most one is given."""
    parser.add_argument(
        "--samples", type=samples, default=None, help=f"sample budget per run (default: {default})"
    )
    parser.add_argument("--epochs", type=positive_float, default=None, help="epoch budget per run")
    hidden_alias(parser, "--budget-samples", "samples", type=samples)
    hidden_alias(parser, "--budget-epochs", "epochs", type=positive_float)


def optimizer_names() -> str:
    """The registered optimizers' names, for help texts: ``adagrad, adagrad_norm, sgd``."""
    from anisoada.optim import OPTIMIZERS

    return ", ".join(sorted(OPTIMIZERS))


def add_quiet(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    """``--quiet`` (the old ``--no-progress`` kept as a hidden alias)."""
    parser.add_argument("--quiet", action="store_true", help=help)
    hidden_alias(parser, "--no-progress", "quiet", action="store_true")


def add_json(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--json``: print one JSON object on stdout instead of the table."""
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead of the table"
    )


def json_safe(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats → null, numpy scalars and arrays → Python values."""
    import numpy as np

    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < 2**53:
            return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    try:
        import pandas as pd

        if value is pd.NaT or (not isinstance(value, str | bytes) and pd.isna(value)):
            return None
    except (TypeError, ValueError, ImportError):
        pass
    return value


def table_records(table: Any) -> list[dict[str, Any]]:
    """A data frame's rows as JSON-safe records (integral float columns as integers)."""
    records = []
    for record in table.to_dict(orient="records"):
        records.append({str(k): json_safe(v) for k, v in record.items()})
    return records


def print_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON (non-finite numbers as null)."""
    print(json.dumps(json_safe(payload), indent=2, ensure_ascii=False, allow_nan=False))


# ---------------------------------------------------------------------------------------------
# Errors: one line naming the input and what to do
# ---------------------------------------------------------------------------------------------

_OS_ADVICE = {
    errno.EACCES: "check its permissions or choose another location",
    errno.EPERM: "check its permissions or choose another location",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "the disk is full; free some space or choose another location",
    errno.EDQUOT: "the disk quota is exhausted; free some space or choose another location",
    errno.ENOTDIR: "a part of this path is a file, not a directory; choose another location",
    errno.EEXIST: "it exists and is not a directory; choose another location",
    errno.EISDIR: "it is a directory; give a file",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    errno.EIO: "the device reported an I/O error; check the disk",
}


def _os_message(error: OSError) -> str:
    reason = error.strerror or type(error).__name__
    target = error.filename
    if target is None:
        text = str(error)
        return text if text else reason
    where = os.fsdecode(target) if isinstance(target, bytes | os.PathLike) else str(target)
    advice = _OS_ADVICE.get(error.errno or -1, "check the path and try again")
    if os.path.islink(where) and not os.path.exists(where):
        reason = "is a symbolic link to a missing location (or a loop of links)"
        advice = "remove the link or make it point to a directory"
    return f"{where}: {reason.lower() if reason[:1].isupper() else reason} ({advice})"


def is_internal(error: BaseException) -> bool:
    """Whether ``error`` is a bug rather than bad input or a failing file system.

    Bad input raises ``ValueError`` (or a subclass) or ``FileNotFoundError``, the file system
    raises ``OSError``, and the project's own exception types carry their own message; any
    other type from outside the project (``KeyError``, ``TypeError``, ...) is a bug.
    """
    if isinstance(error, ValueError | OSError | MemoryError | RecursionError):
        return False
    return not type(error).__module__.startswith("anisoada")


def error_message(error: BaseException) -> str:
    """One line for any exception: the project's own messages as they are, others explained.

    ``ValueError``/``FileNotFoundError`` raised by the library already name the input and what
    to do; an ``OSError`` becomes the path, the reason and advice; anything else (a bug) is
    named as one, with how to see its traceback.
    """
    if isinstance(error, OSError) and not type(error).__module__.startswith("anisoada"):
        text = _os_message(error)
    elif isinstance(error, MemoryError):
        text = "out of memory; use a smaller problem, batch size or --jobs"
    elif isinstance(error, RecursionError):
        text = "input nested too deeply to read; check the input files"
    elif is_internal(error):
        detail = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        text = (
            f"internal error ({type(error).__name__}: {detail}); set ANISOADA_TRACEBACK=1 to "
            "see where, and report it"
        )
    else:
        text = str(error)
    return " ".join(text.split()) or type(error).__name__


def fail(command: str | None, error: BaseException) -> int:
    """Print ``error`` as one line on stderr; the exit status: 2, or 1 for a bug."""
    prefix = f"anisoada {command}" if command else "anisoada"
    print(f"{prefix}: error: {error_message(error)}", file=sys.stderr)
    return 1 if is_internal(error) else 2


class Parser(argparse.ArgumentParser):
    """``argparse`` with the project's conventions: defaults in help, one-line usage errors.

    Subcommand parsers made by ``add_subparsers().add_parser`` are of this class too.
    """

    def __init__(self, *args: Any, **keywords: Any) -> None:
        keywords.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **keywords)

    def error(self, message: str) -> Any:
        """Print one line (not the whole usage) and exit with status 2."""
        print(
            f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)",
            file=sys.stderr,
        )
        raise SystemExit(2)


# ---------------------------------------------------------------------------------------------
# Warnings and signals while a command runs
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def one_line_warnings(command: str) -> Iterator[None]:
    """Show each warning as ``anisoada <command>: warning: <message>`` on one line.

    Python's default shows the warning's source file, line and code: internals a user of the
    command line cannot act on.
    """
    previous = warnings.showwarning

    def show(message: Warning | str, *args: Any, **keywords: Any) -> None:
        text = " ".join(str(message).split())
        print(f"anisoada {command}: warning: {text}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it ends like Ctrl-C (runs stay stored)."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` instead of killing the process
    outright (only in the main thread, where Python delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: Callable[[argparse.Namespace], int | None],
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """A subcommand ``name`` that calls ``run(args)``, with a one-line ``help`` for
    ``anisoada --help`` and its ``description``; its parser follows the conventions."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(func=run)
    return parser
