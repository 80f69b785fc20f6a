"""Shared test fixtures.

Real datasets come from ``ANISOADA_TEST_DATA`` (default: ``../shared/data`` beside the repository);
tests that need them skip with a reason when they are absent. Nothing is ever copied into the repo.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    configured = os.environ.get("ANISOADA_TEST_DATA")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the shared real datasets (``libsvm/``, ``alpaca/``); skips when absent."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path}; set ANISOADA_TEST_DATA to the directory")
    return path
