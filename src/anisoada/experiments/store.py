"""The results store: tidy parquet rows, a ``run.json`` of provenance per run, ``.npz`` vectors.

Layout under a sweep's output directory::

    sweep.json                       the sweep's config and provenance
    runs/<run_id>/rows.parquet       one row per evaluation point (and per lane)
    runs/<run_id>/vectors.npz        per-coordinate vectors (e.g. final weights, one column/lane)
    runs/<run_id>/run.json           full config, status, seeds, versions, git revision
    runs/<run_id>/<table>.parquet    per-run extra tables (e.g. an LM run's per-layer noise)
    runs/<run_id>/failed.json        the error of a run that raised (removed when it completes)
    results.parquet, selection.*     tables assembled from the runs

Every file is written atomically (temporary file + rename). ``run.json`` is written **last**:
its presence is what marks a run complete, so a process killed at any moment leaves either a
complete run or one that is simply redone. :meth:`ResultsStore.prepare` (called before a sweep
starts its runs) removes the temporary files a killed writer left behind, and
:meth:`ResultsStore.is_complete` checks a run before trusting it: a ``run.json`` that is not a
JSON object, or a ``rows.parquet`` that is missing or unreadable, makes the run incomplete
again (the damaged files are removed and the run redone, with a line on stderr naming the
directory), so a damaged store heals on the next run instead of failing every time. A run is
damaged, too, when its ``run.json`` names another run (or none) or its rows lack the identity
columns (:data:`~anisoada.schema.IDENTITY_COLUMNS` and ``step``). A ``run.json`` written by a
newer store format (``store_format`` above :data:`STORE_FORMAT`) is refused, never redone: the
newer results are left as they are.

One process writes a store at a time: :meth:`ResultsStore.prepare` takes an exclusive lock
(``.anisoada.lock``, held until the store is released), and a second process preparing the same
directory is refused with a message naming it, instead of deleting the first one's temporary
files under it.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import sys
import weakref
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anisoada._io import (
    atomic_path,
    load_npz,
    new_file_mode,
    package_versions,
    read_json,
    remove_temporary_files,
    write_json,
)
from anisoada.schema import IDENTITY_COLUMNS

__all__ = ["STORE_FORMAT", "ResultsStore", "StoreBusyError", "provenance"]

#: Version of the store's layout, recorded in every ``run.json`` as ``store_format``.
STORE_FORMAT = 1
#: The lock file of :meth:`ResultsStore.prepare`, in the store's root.
LOCK_FILE = ".anisoada.lock"

_PACKAGES = ("anisoada", "torch", "numpy", "scipy", "pandas", "pyarrow", "scikit-learn")


@cache
def _git_revision() -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes (None outside git)."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@cache
def _package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that produce results (read once per process)."""
    return package_versions(*_PACKAGES)


def provenance() -> dict[str, Any]:
    """Versions of the packages that produce results, Python, the machine and the git revision.

    Example:
        >>> sorted(provenance())
        ['git', 'machine', 'packages', 'python']
    """
    return {
        "packages": dict(_package_versions()),
        "python": sys.version.split()[0],
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "git": _git_revision(),
    }


class StoreBusyError(RuntimeError):
    """Another process holds the store's lock (it is running a sweep into the same directory)."""


# Locks this process holds: resolved root -> [file descriptor, number of stores holding it].
_LOCKS: dict[str, list[int]] = {}


def _lock(root: Path) -> str:
    """Take (or share, within this process) the exclusive lock of the store at ``root``."""
    key = str(root.resolve())
    if key in _LOCKS:
        _LOCKS[key][1] += 1
        return key
    descriptor = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, new_file_mode())
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(descriptor, 32).decode("ascii", "replace").strip()
        os.close(descriptor)
        by = f" (pid {holder})" if holder.isdigit() else ""
        raise StoreBusyError(
            f"{root} is being written by another anisoada process{by}; wait for it to finish, "
            "or give another output directory"
        ) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    _LOCKS[key] = [descriptor, 1]
    return key


def _unlock(key: str) -> None:
    held = _LOCKS.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _LOCKS[key]
        os.close(held[0])  # closing the descriptor releases the lock


class ResultsStore:
    """Reads and writes the runs of one output directory (see the module docstring).

    Example:
        >>> import tempfile, pandas as pd
        >>> store = ResultsStore(tempfile.mkdtemp())
        >>> store.write_run("abc", pd.DataFrame({"step": [0, 1]}), {"status": "finished"})
        >>> store.is_complete("abc"), len(store.read_rows(["abc"]))
        (True, 2)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # Runs found intact, with the mtimes of run.json and rows.parquet then (re-checked
        # when either changes).
        self._intact: dict[str, tuple[int, int]] = {}
        self._lock_key: str | None = None

    def run_dir(self, run_id: str) -> Path:
        """Directory of one run."""
        return self.root / "runs" / run_id

    def prepare(self) -> None:
        """Create the store's directory and remove what killed writers left there.

        A sweep calls it before starting its runs: it takes the store's lock (held until this
        store object is released; :class:`StoreBusyError` when another process holds it), then
        deletes every ``.<name>.<random>.tmp`` beside the tables and in each run directory.
        """
        runs = self.root / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        if self._lock_key is None:
            self._lock_key = _lock(self.root)
            weakref.finalize(self, _unlock, self._lock_key)
        remove_temporary_files(self.root)
        for directory in runs.iterdir():
            if directory.is_dir():
                remove_temporary_files(directory)

    def is_complete(self, run_id: str) -> bool:
        """Whether the run finished writing: ``run.json`` exists and the run is intact.

        A run whose ``run.json`` is not a JSON object or names another run, or whose
        ``rows.parquet`` is missing, unreadable or lacks the identity columns, is damaged: its
        ``run.json`` is removed (so the run is redone and the directory no longer claims to be
        complete), a line on stderr says so, and the answer is ``False``.

        Raises:
            ValueError: ``run.json`` was written by a newer store format (the run is left
                alone), or a damaged ``run.json`` cannot be removed (say, it is a directory).
        """
        directory = self.run_dir(run_id)
        info_path, rows_path = directory / "run.json", directory / "rows.parquet"
        try:
            stamp = (info_path.stat().st_mtime_ns, rows_path.stat().st_mtime_ns)
        except FileNotFoundError:
            if not info_path.exists():
                return False
            stamp = None
        if stamp is not None and self._intact.get(run_id) == stamp:
            return True
        problem = self._damage(run_id, info_path, rows_path)
        if problem is None:
            assert stamp is not None
            self._intact[run_id] = stamp
            return True
        self._intact.pop(run_id, None)
        try:
            info_path.unlink(missing_ok=True)
        except OSError as error:
            raise ValueError(
                f"run directory {directory} is damaged ({problem}) and its run.json cannot be "
                f"removed ({error.strerror}); delete {directory} and re-run"
            ) from None
        print(
            f"anisoada: run directory {directory} is damaged ({problem}); redoing the run",
            file=sys.stderr,
        )
        return False

    @staticmethod
    def _damage(run_id: str, info_path: Path, rows_path: Path) -> str | None:
        """What is wrong with a finished run's files, or None when they are intact."""
        try:
            info = json.loads(info_path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return "run.json is not readable JSON"
        if not isinstance(info, dict):
            return "run.json is not a JSON object"
        written = info.get("store_format", 1)
        if isinstance(written, int) and not isinstance(written, bool) and written > STORE_FORMAT:
            raise ValueError(
                f"{info_path} was written by a newer anisoada (store format {written}; this one "
                f"reads up to {STORE_FORMAT}); upgrade anisoada, or give another output directory"
            )
        if info.get("run_id") != run_id:
            return f"run.json is the record of run {info.get('run_id')!r}, not of {run_id!r}"
        if not rows_path.is_file():
            return "rows.parquet is missing"
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        try:
            metadata = pq.read_metadata(rows_path)
        except (OSError, ValueError) as error:  # pyarrow's errors derive from these
            return f"rows.parquet is unreadable: {' '.join(str(error).split())[:100]}"
        schema = metadata.schema.to_arrow_schema()
        missing = [name for name in (*IDENTITY_COLUMNS, "step") if name not in schema.names]
        if missing or metadata.num_rows == 0:
            return f"rows.parquet has no rows or lacks the columns {missing}"
        import pyarrow as pa

        numeric = (pa.types.is_integer, pa.types.is_floating)
        wrong = [
            name
            for name in ("batch_size", "seed", "lr", "step")
            if not any(is_kind(schema.field(name).type) for is_kind in numeric)
        ]
        if wrong:
            return f"rows.parquet holds non-numeric {wrong}"
        return None

    def write_run(
        self,
        run_id: str,
        rows: pd.DataFrame,
        info: Mapping[str, Any],
        vectors: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Store a finished run: rows, then vectors, then ``run.json`` (the completion mark,
        with ``run_id`` and ``store_format`` added)."""
        directory = self.run_dir(run_id)
        with atomic_path(directory / "rows.parquet") as temporary:
            rows.to_parquet(temporary, index=False)
        if vectors:
            with atomic_path(directory / "vectors.npz") as temporary, open(temporary, "wb") as f:
                arrays = {name: np.asarray(value) for name, value in vectors.items()}
                # mypy matches **arrays against savez's keyword allow_pickle: bool (a vector
                # named allow_pickle would be the same clash at run time)
                np.savez(f, **arrays)  # type: ignore[arg-type]
        write_json(directory / "run.json", {**info, "run_id": run_id, "store_format": STORE_FORMAT})
        (directory / "failed.json").unlink(missing_ok=True)

    def write_failure(self, run_id: str, record: Mapping[str, Any]) -> None:
        """Record why a run raised (``failed.json``); the run stays incomplete and is retried."""
        write_json(self.run_dir(run_id) / "failed.json", dict(record))

    def read_info(self, run_id: str) -> dict[str, Any]:
        """A run's ``run.json``."""
        path = self.run_dir(run_id) / "run.json"
        if not path.is_file():
            raise FileNotFoundError(f"run {run_id} has no run.json under {self.root}")
        info = read_json(path, what="a run's record", advice="re-run the sweep to redo the run")
        if not isinstance(info, dict):
            raise ValueError(f"{path} is not a run record; re-run the sweep to redo the run")
        return info

    def read_vectors(self, run_id: str) -> dict[str, np.ndarray]:
        """A run's ``vectors.npz`` as a dict of arrays."""
        path = self.run_dir(run_id) / "vectors.npz"
        if not path.is_file():
            raise FileNotFoundError(f"run {run_id} has no vectors.npz under {self.root}")
        return load_npz(path, what="a run's vectors", advice="re-run the sweep to redo the run")

    def read_rows(self, run_ids: Iterable[str]) -> pd.DataFrame:
        """The rows of the given complete runs, concatenated (empty frame when none)."""
        frames = [
            _read_parquet(self.run_dir(run_id) / "rows.parquet", "re-run the sweep to redo it")
            for run_id in run_ids
            if self.is_complete(run_id)
        ]
        frames = [frame for frame in frames if len(frame)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def read_run_tables(self, name: str, run_ids: Iterable[str]) -> pd.DataFrame:
        """The per-run tables ``runs/<id>/<name>.parquet`` of complete runs, concatenated."""
        frames = []
        for run_id in run_ids:
            path = self.run_dir(run_id) / f"{name}.parquet"
            if self.is_complete(run_id) and path.is_file():
                frames.append(_read_parquet(path, f"delete {path.parent} and re-run the sweep"))
        frames = [frame for frame in frames if len(frame)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def write_table(self, name: str, table: pd.DataFrame, *, csv: bool = False) -> Path:
        """Write ``<root>/<name>.parquet`` (and ``.csv`` when asked) atomically."""
        path = self.root / f"{name}.parquet"
        with atomic_path(path) as temporary:
            table.to_parquet(temporary, index=False)
        if csv:
            with atomic_path(self.root / f"{name}.csv") as temporary:
                table.to_csv(temporary, index=False)
        return path

    def read_table(self, name: str) -> pd.DataFrame:
        """Read ``<root>/<name>.parquet``."""
        path = self.root / f"{name}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no table {name!r} under {self.root} (run the sweep first)")
        return _read_parquet(path, "re-run the sweep to rewrite it")


def _read_parquet(path: Path, advice: str) -> pd.DataFrame:
    """A parquet table; a damaged file is a ``ValueError`` naming it and what to do."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found; {advice}") from None
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:120]
        raise ValueError(f"{path} is damaged ({reason}); {advice}") from None
