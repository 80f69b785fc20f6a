"""Where data lives: the data home and the Alpaca file, read from the environment in one place.

* ``$ANISOADA_DATA`` — the data home (default: the per-user cache, ``~/.cache/anisoada``); LIBSVM
  files and caches live in ``<data home>/libsvm/``, Alpaca in ``<data home>/alpaca/``;
* ``$ANISOADA_ALPACA`` — Stanford Alpaca's ``alpaca_data.json`` (default
  ``<data home>/alpaca/alpaca_data.json``).

GPT-2 weights are the models' concern: :func:`anisoada.models.weights_from_environment`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ALPACA_ENV", "DATA_HOME_ENV", "alpaca_path", "data_home", "user_cache_home"]

#: Environment variable naming the data home.
DATA_HOME_ENV = "ANISOADA_DATA"
#: Environment variable naming the Alpaca JSON file.
ALPACA_ENV = "ANISOADA_ALPACA"


def data_home(path: str | os.PathLike[str] | None = None) -> Path:
    """The directory that holds downloaded data and caches.

    Resolution order: the ``path`` argument; the ``ANISOADA_DATA`` environment variable;
    ``$XDG_CACHE_HOME/anisoada``; ``~/.cache/anisoada``. The directory is not created here.

    Raises:
        ValueError: the chosen path exists but is not a directory, or names the home of a user
            that does not exist (``~nobody/data``); the message says where it came from.

    Example:
        >>> data_home("/tmp/anisoada-data")
        PosixPath('/tmp/anisoada-data')
    """
    if path is not None:
        return _checked(Path(path), "the data home")
    configured = os.environ.get(DATA_HOME_ENV)
    if configured:
        return _checked(Path(configured), f"${DATA_HOME_ENV}")
    return user_cache_home()


def _checked(path: Path, origin: str) -> Path:
    """``path`` with ``~`` expanded, refused when it is something other than a directory."""
    try:
        home = path.expanduser()
    except RuntimeError:  # ~user of no such user, or no home directory at all
        raise ValueError(
            f"{origin} {path} starts with a ~ that names no home directory; give a full path"
        ) from None
    if home.exists() and not home.is_dir():
        raise ValueError(f"{origin} {home} is a file, not a directory; give a directory")
    return home


def user_cache_home() -> Path:
    """The per-user cache, ``$XDG_CACHE_HOME/anisoada`` or ``~/.cache/anisoada``."""
    cache_root = os.environ.get("XDG_CACHE_HOME")
    root = Path(cache_root).expanduser() if cache_root else Path.home() / ".cache"
    return root / "anisoada"


def alpaca_path() -> Path:
    """``$ANISOADA_ALPACA``, else ``<data home>/alpaca/alpaca_data.json`` (may not exist)."""
    configured = os.environ.get(ALPACA_ENV)
    if configured:
        return Path(configured).expanduser()
    return data_home() / "alpaca" / "alpaca_data.json"
