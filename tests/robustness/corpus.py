"""What every corpus of bad inputs shares: a case, its files, and the one-line check.

A case is a command line (``{d}`` stands for the case's own directory), the files to write
there first, and the text its error message must contain. :func:`check_one_line` is the rule
every bad input must meet: exit status 2 (never 0, never 1, the status of an internal error),
exactly one line on stderr, ``anisoada <command>: error: …``, no traceback or Python internals,
and the input named.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Text that means a message leaks Python internals instead of naming the input.
LEAKS = ("Traceback", "np.float64(", "np.int64(", "internal error", "[Errno", "<class ")

#: The smallest sweep file that runs (a synthetic data set, SGD, one batch size): each TOML case
#: changes one part of it.
SWEEP_TOML = """\
batch_sizes = [4]
[budget]
samples = 16
[[datasets]]
name = "toy"
source = "synthetic"
n = 40
d = 5
[[optimizers]]
name = "sgd"
"""

#: The smallest sweep command line that runs and stores its runs (a synthetic data set, SGD,
#: one batch size, one learning rate): a test adds ``--out``.
TINY_SWEEP = [
    "sweep",
    "--dataset",
    "synthetic",
    "--optimizer",
    "sgd",
    "--batch-sizes",
    "4",
    "--samples",
    "16",
    "--lr-grid",
    "0.1:1:1",
    "--max-extensions",
    "0",
    "--evaluations",
    "2",
    "--quiet",
]

#: A file's content: bytes, text (written as UTF-8, lone surrogates kept), or a function that
#: makes the file itself (a FIFO, a symbolic link, a directory).
Content = bytes | str | Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One malformed input: files to write, the command line, text the message must contain.

    ``{d}`` in ``argv`` and ``needle`` is the case's own directory.
    """

    id: str
    argv: tuple[str, ...]
    needle: str
    files: dict[str, Content] = field(default_factory=dict)


def collect_into(cases: list[Case]) -> Callable[..., None]:
    """``case(id, argv, needle, files=None)``: a corpus module's way to append a :class:`Case`
    to ``cases``."""

    def case(
        id: str, argv: list[str], needle: str, files: dict[str, Content] | None = None
    ) -> None:
        cases.append(Case(id, tuple(argv), needle, dict(files or {})))

    return case


def sweep_file_cases(table: Mapping[str, tuple[Content, str]], file: str = "s.toml") -> list[Case]:
    """One case ``toml-<name>`` per entry ``name: (content, needle)``: ``anisoada sweep`` on a
    sweep file of that content."""
    return [
        Case(
            f"toml-{name}",
            ("sweep", f"{{d}}/{file}", "--out", "{d}/out", "--quiet"),
            needle,
            {file: content},
        )
        for name, (content, needle) in table.items()
    ]


def materialise(case_: Case, root: Path) -> tuple[list[str], str]:
    """Write the case's files under ``root/<id>``; its argv and needle with ``{d}`` filled in."""
    directory = root / case_.id
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in case_.files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
    argv = [part.replace("{d}", str(directory)) for part in case_.argv]
    return argv, case_.needle.replace("{d}", str(directory))


def check_one_line(status: int, error: str, needle: str, label: str) -> None:
    """Exit status 2 and one line on stderr naming ``needle``, with no Python internals."""
    lines = error.strip().splitlines()
    assert status == 2, f"{label}: exit status {status}, stderr {error!r}"
    assert len(lines) == 1, f"{label}: {len(lines)} lines on stderr: {error!r}"
    line = lines[0]
    assert line.startswith("anisoada") and ": error: " in line, f"{label}: {line!r}"
    assert not any(leak in line for leak in LEAKS), f"{label}: Python internals in {line!r}"
    assert needle.lower() in line.lower(), f"{label}: {needle!r} not named in {line!r}"


def fifo(path: Path) -> None:
    """Make ``path`` a named pipe (reading it would block until a writer comes)."""
    os.mkfifo(path)


def link_to(target: str) -> Callable[[Path], None]:
    """Make the file a symbolic link to ``target`` (relative to the link's directory)."""

    def make(path: Path) -> None:
        path.symlink_to(target)

    return make


def run_case(
    case_: Case, root: Path, capsys: Any, monkeypatch: Any, environment: dict | None = None
) -> Path:
    """Run a case's command line (with an empty data home and ``environment``, ``{d}`` filled
    in) and check the one-line rule; returns the case's directory."""
    from anisoada.cli import main

    monkeypatch.setenv("ANISOADA_DATA", str(root / "empty-data-home"))
    argv, needle = materialise(case_, root)
    for variable, value in (environment or {}).items():
        monkeypatch.setenv(variable, value.replace("{d}", str(root / case_.id)))
    capsys.readouterr()
    status = main(argv)
    check_one_line(status, capsys.readouterr().err, needle, case_.id)
    return root / case_.id


def check_named_error(call: Callable[[], Any], kind: type[Exception], needle: str) -> None:
    """``call()`` raises ``kind`` (the library's or a builtin) on one line naming ``needle``,
    with no Python internals."""
    with pytest.raises(kind) as caught:
        call()
    assert type(caught.value).__module__.startswith(("anisoada", "builtins"))
    message = str(caught.value)
    assert needle in message, message
    assert "\n" not in message and not any(leak in message for leak in LEAKS), message
