"""Atomic file writes and checked reads.

Writes: a reader (or a rerun after a kill) never sees a half-written file, and a written file
has the mode any new file gets (``0666`` less the umask, as ``open`` would), not the ``0600`` of
a temporary file. Reads: :func:`read_json` and :func:`load_npz` turn any damage (truncation,
garbage, the wrong format) into a ``ValueError`` that names the file and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: Temporary files of :func:`atomic_path` are named ``.<target name>.<random>.tmp``.
TEMPORARY_GLOB = ".*.tmp"


def new_file_mode() -> int:
    """``0o666`` less the process's umask: the mode ``open(path, "w")`` would give."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The rename is atomic on POSIX file systems, so ``path`` holds either its old content or
    the complete new one, whenever the process dies. On error the temporary file is removed.
    A ``path`` that is a directory is refused before anything is written (``IsADirectoryError``
    naming it), and a failed rename names ``path``, not the temporary file.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, new_file_mode())
        try:
            os.replace(temporary, target)
        except OSError as error:
            raise type(error)(error.errno, error.strerror, str(target)) from None
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` atomically when closed."""
    with atomic_path(path) as temporary, open(temporary, mode) as handle:
        yield handle


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_open(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")


def remove_temporary_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_path` left in ``directory``.

    Only call it where no writer of this process tree is active (e.g. before a sweep starts its
    runs). Returns the removed paths.
    """
    removed: list[Path] = []
    folder = Path(directory)
    if not folder.is_dir():
        return removed
    for path in folder.glob(TEMPORARY_GLOB):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_json(path: str | os.PathLike[str], *, what: str, advice: str) -> Any:
    """Parse a JSON file; any damage becomes a ``ValueError`` naming the file.

    Args:
        path: the file.
        what: what it should be, e.g. ``"a measurement summary"``.
        advice: what to do when it is damaged, e.g. ``"write it again with anisoada measure"``.

    Raises:
        FileNotFoundError: it does not exist.
        ValueError: it cannot be read, is not UTF-8 or is not JSON.
    """
    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"{target} not found ({what}); {advice}")
    try:
        text = target.read_bytes().decode("utf-8")
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{target} is damaged, not {what} ({_reason(error)}); {advice}") from None
    except OSError as error:
        raise ValueError(
            f"{target} cannot be read as {what} ({error.strerror or error}); {advice}"
        ) from None


def load_npz(path: str | os.PathLike[str], *, what: str, advice: str) -> dict[str, Any]:
    """Every array of an ``.npz`` archive (no pickled objects); damage → ``ValueError``.

    Raises:
        FileNotFoundError: it does not exist.
        ValueError: it is truncated, not an ``.npz`` archive, or holds pickled objects.
    """
    import zipfile
    import zlib

    import numpy as np

    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"{target} not found ({what}); {advice}")
    try:
        loaded = np.load(target, allow_pickle=False)
        if not hasattr(loaded, "files"):  # a bare .npy array
            raise ValueError("a single .npy array, not an .npz archive")
        with loaded as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError, KeyError, OSError) as error:
        reason = _reason(error)
        if "pickle" in reason:
            reason = "not an .npz archive of numeric arrays"
        raise ValueError(f"{target} is damaged or not {what} ({reason}); {advice}") from None


def _reason(error: BaseException) -> str:
    text = str(error).strip().rstrip(".") or type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."


def package_versions(*names: str) -> dict[str, str | None]:
    """Installed versions of ``names`` (None for a package that is not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
