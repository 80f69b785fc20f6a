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

from anisoada.data.libsvm import DATA_HOME_ENV, data_home

__all__ = ["ALPACA_ENV", "DATA_HOME_ENV", "alpaca_path", "data_home"]

#: Environment variable naming the Alpaca JSON file.
ALPACA_ENV = "ANISOADA_ALPACA"


def alpaca_path() -> Path:
    """``$ANISOADA_ALPACA``, else ``<data home>/alpaca/alpaca_data.json`` (may not exist)."""
    configured = os.environ.get(ALPACA_ENV)
    if configured:
        return Path(configured).expanduser()
    return data_home() / "alpaca" / "alpaca_data.json"
