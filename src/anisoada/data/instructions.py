"""Instruction data ready for a causal LM: one preparation path for training and measurement.

:func:`prepare_lm_data` turns an :class:`LMDataSpec` — which records (synthetic instructions or
an Alpaca JSON/JSONL file), how many, held-out split, prompt template, maximum length and
vocabulary — into tokenised training and held-out splits (:class:`TokenizedExamples`, ragged
arrays with response-only labels). The training runs and the measurements
(:func:`anisoada.measure.language_model_problem`) both start here, so that for the same spec they
see the same examples, the same tokens and the same vocabulary.

The ``"compact"`` vocabulary keeps only the token ids the two splits use (a softmax over those,
see :func:`anisoada.models.restrict_vocabulary`). That is a *different objective* from GPT-2's
50,257-way softmax, not a faster way of computing the same one: the ~49k rows of tokens that never
occur are absent, so an optimizer cannot gain anything by pushing their logits down. It makes a
tiny model train in CPU minutes; numbers from it are labelled as such.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from anisoada.problems.language_model import IGNORE_INDEX

__all__ = [
    "LM_TEMPLATES",
    "LM_VOCABULARIES",
    "LMData",
    "LMDataSpec",
    "TokenizedExamples",
    "compact_vocabulary",
    "prepare_lm_data",
]

#: ``"full"``: GPT-2's vocabulary; ``"compact"``: only the tokens the data uses.
LM_VOCABULARIES = ("full", "compact")
#: ``"alpaca"``: the Stanford Alpaca prompt with its preamble; ``"short"``: the sections only.
LM_TEMPLATES = ("alpaca", "short")


@dataclasses.dataclass(frozen=True)
class TokenizedExamples:
    """Tokenized examples with response-only labels, stored as ragged int64 arrays.

    Attributes:
        input_ids: one 1-D int64 array of token ids per example.
        labels: the same shapes; ``labels[i][t]`` is the token the model must produce at position
            ``t`` (``transformers`` convention: equal to ``input_ids[i][t]``, the model predicts
            it from positions ``< t``) or :data:`IGNORE_INDEX` where position ``t`` is not scored.
    """

    input_ids: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.labels):
            raise ValueError(
                f"TokenizedExamples needs one label array per example; got "
                f"{len(self.input_ids)} input_ids and {len(self.labels)} labels."
            )
        for i, (ids, labels) in enumerate(zip(self.input_ids, self.labels)):
            if ids.shape != labels.shape or ids.ndim != 1:
                raise ValueError(
                    f"Example {i}: input_ids shape {ids.shape} and labels shape {labels.shape} "
                    "must be equal and 1-D."
                )

    @classmethod
    def from_any(cls, examples: Any) -> TokenizedExamples:
        """Accept a ``TokenizedExamples``, an object with ``input_ids``/``labels`` sequences
        (e.g. :func:`~anisoada.data.tokenize_instructions`' output or a ``dict``), or
        ``(input_ids, labels)`` pairs."""
        if isinstance(examples, cls):
            return examples
        if isinstance(examples, Mapping) or hasattr(examples, "input_ids"):
            fields = examples if isinstance(examples, Mapping) else vars(examples)
            ids, labels = fields["input_ids"], fields["labels"]
            mask = fields.get("attention_mask")
            if mask is not None:  # padded rows: keep the real tokens (either padding side)
                keep = [np.asarray(m, dtype=bool) for m in mask]
                ids = [np.asarray(x)[k] for x, k in zip(ids, keep)]
                labels = [np.asarray(x)[k] for x, k in zip(labels, keep)]
        else:
            pairs = list(examples)
            ids, labels = [p[0] for p in pairs], [p[1] for p in pairs]

        def as_array(values: Any) -> np.ndarray:
            return np.asarray(values, dtype=np.int64).reshape(-1)

        return cls(tuple(as_array(x) for x in ids), tuple(as_array(x) for x in labels))

    def __len__(self) -> int:
        return len(self.input_ids)

    def response_tokens(self) -> np.ndarray:
        """Number of scored tokens of each example (positions ``t ≥ 1`` with a label)."""
        return np.array([int((lab[1:] != IGNORE_INDEX).sum()) for lab in self.labels])

    def lengths(self) -> np.ndarray:
        """Tokens of each example (prompt + response)."""
        return np.array([ids.size for ids in self.input_ids], dtype=np.int64)

    def subset(self, rows: np.ndarray) -> TokenizedExamples:
        """The examples ``rows``, in that order."""
        return TokenizedExamples(
            tuple(self.input_ids[i] for i in rows), tuple(self.labels[i] for i in rows)
        )

    def map_tokens(self, mapping: np.ndarray) -> TokenizedExamples:
        """Re-index every token id ``x`` as ``mapping[x]`` (ignored labels stay ignored)."""
        ids = tuple(mapping[x] for x in self.input_ids)
        labels = tuple(
            np.where(lab == IGNORE_INDEX, IGNORE_INDEX, mapping[np.maximum(lab, 0)])
            for lab in self.labels
        )
        return TokenizedExamples(ids, labels)


def compact_vocabulary(*splits: TokenizedExamples) -> tuple[np.ndarray, np.ndarray]:
    """The token ids the splits use, and the map from original to compact ids.

    Returns ``(kept, mapping)``: ``kept`` is the sorted array of distinct token ids, and
    ``mapping[x]`` is the position of ``x`` in ``kept`` (``-1`` for unused ids). Pass ``kept``
    to :func:`anisoada.models.restrict_vocabulary` and ``mapping`` to
    :meth:`TokenizedExamples.map_tokens`.

    Example:
        >>> split = TokenizedExamples((np.array([7, 3, 7]),), (np.array([-100, 3, 7]),))
        >>> kept, mapping = compact_vocabulary(split)
        >>> kept.tolist(), mapping[[3, 7]].tolist()
        ([3, 7], [0, 1])
    """
    used = np.unique(np.concatenate([ids for split in splits for ids in split.input_ids]))
    mapping = np.full(int(used.max()) + 1, -1, dtype=np.int64)
    mapping[used] = np.arange(used.size)
    return used, mapping


@dataclasses.dataclass(frozen=True)
class LMDataSpec:
    """Which instruction data, how it is split, tokenised and (optionally) re-indexed.

    Attributes:
        source: ``"synthetic"`` (the data layer's deterministic instruction generator), or an
            Alpaca JSON/JSONL file (``alpaca_data.json``, optionally compressed).
        n_train: training examples (``None``: every record not held out; required for
            ``"synthetic"``).
        n_eval: held-out examples, drawn at random (seeded) before the training examples.
        max_length: longest tokenised example (prompt + response + EOS); responses that do not
            fit are cut at the tail and counted (see the data layer's truncation report).
        seed: seed of the held-out draw (and of the synthetic generator).
        vocabulary: ``"full"`` (GPT-2's 50257 tokens) or ``"compact"`` (only the tokens the two
            splits use: a different objective, see the module docstring).
        template: ``"alpaca"`` (the data layer's default prompt, with its one-sentence
            preamble) or ``"short"`` (the same ``### Instruction`` / ``### Input`` /
            ``### Response`` sections without the preamble: ≈ 17 fewer tokens per example,
            a third of a synthetic example's cost).
    """

    source: str = "synthetic"
    n_train: int | None = 4096
    n_eval: int = 256
    max_length: int = 256
    seed: int = 0
    vocabulary: str = "full"
    template: str = "alpaca"

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(
                f"Invalid data source: {self.source!r}; use 'synthetic' or an Alpaca file path."
            )
        if self.source == "synthetic" and self.n_train is None:
            raise ValueError("the synthetic instruction source needs n_train (an int >= 1).")
        if self.n_train is not None and not _positive_int(self.n_train):
            raise ValueError(f"Invalid n_train: {self.n_train!r}; use an int >= 1 (or all).")
        if not _positive_int(self.n_eval):
            raise ValueError(f"Invalid n_eval: {self.n_eval!r}; use an int >= 1.")
        if not _positive_int(self.max_length) or self.max_length < 2:
            raise ValueError(f"Invalid max_length: {self.max_length!r}; use an int >= 2.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"Invalid data seed: {self.seed!r}; use an integer.")
        if self.vocabulary not in LM_VOCABULARIES:
            raise ValueError(
                f"Invalid vocabulary: {self.vocabulary!r}; use one of {LM_VOCABULARIES}."
            )
        if self.template not in LM_TEMPLATES:
            raise ValueError(f"Invalid template: {self.template!r}; use one of {LM_TEMPLATES}.")

    @property
    def name(self) -> str:
        """Short label for results tables."""
        return "synthetic-instructions" if self.source == "synthetic" else Path(self.source).name

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (a TOML ``data = {...}`` table)."""
        return dataclasses.asdict(self)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _template(name: str) -> Any:
    from anisoada.data.alpaca import DEFAULT_TEMPLATE, PromptTemplate

    if name == "alpaca":
        return DEFAULT_TEMPLATE
    return PromptTemplate(
        with_input="### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
        without_input="### Instruction:\n{instruction}\n\n### Response:\n",
    )


@dataclasses.dataclass(frozen=True)
class LMData:
    """Tokenised splits of an :class:`LMDataSpec`.

    Attributes:
        train, eval: the splits (token ids re-indexed when the vocabulary is compact).
        kept_tokens: original GPT-2 ids of the compact vocabulary, or ``None`` (full).
        info: JSON-serialisable description (source, sizes, truncation, tokens per example).
    """

    train: TokenizedExamples
    eval: TokenizedExamples
    kept_tokens: np.ndarray | None
    info: dict[str, Any]


def prepare_lm_data(spec: LMDataSpec, *, tokenizer: Any = None) -> LMData:
    """Load, split and tokenise the instruction data of ``spec`` (offline).

    The held-out examples are a seeded random draw of ``n_eval`` records; the training split is
    the next ``n_train`` records of the same permutation (all the rest when ``n_train`` is
    ``None``).

    Args:
        spec: what to load.
        tokenizer: a GPT-2 tokenizer; default :func:`anisoada.data.gpt2_tokenizer`.

    Returns:
        The :class:`LMData`.

    Raises:
        FileNotFoundError: the Alpaca file does not exist.
        ValueError: fewer records than ``n_eval + 1`` (or ``n_train + n_eval``).
    """
    from anisoada.data.alpaca import load_alpaca, synthetic_instructions, tokenize_instructions
    from anisoada.data.tokenizer import gpt2_tokenizer

    if spec.source == "synthetic":
        assert spec.n_train is not None
        records: list[Any] = list(
            synthetic_instructions(spec.n_train + spec.n_eval, seed=spec.seed)
        )
    else:
        records = list(load_alpaca(spec.source))
    needed = spec.n_eval + (spec.n_train or 1)
    if len(records) < needed:
        raise ValueError(
            f"{spec.source} has {len(records)} records; n_eval={spec.n_eval} plus "
            f"n_train={spec.n_train} needs {needed}. Lower n_train or n_eval."
        )
    order = np.random.default_rng([spec.seed, 7]).permutation(len(records))
    eval_rows, train_rows = order[: spec.n_eval], order[spec.n_eval :]
    if spec.n_train is not None:
        train_rows = train_rows[: spec.n_train]
    tokenizer = tokenizer or gpt2_tokenizer()
    tokenized = {}
    reports = {}
    for split, rows in (("train", train_rows), ("eval", eval_rows)):
        out = tokenize_instructions(
            [records[i] for i in rows],
            tokenizer,
            max_length=spec.max_length,
            template=_template(spec.template),
        )
        tokenized[split] = TokenizedExamples.from_any(out)
        reports[split] = str(out.report)
    train_split, eval_split = tokenized["train"], tokenized["eval"]
    kept = None
    if spec.vocabulary == "compact":
        kept, mapping = compact_vocabulary(train_split, eval_split)
        train_split, eval_split = train_split.map_tokens(mapping), eval_split.map_tokens(mapping)
    info = {
        "spec": spec.to_dict(),
        "name": spec.name,
        "records": len(records),
        "n_train": len(train_split),
        "n_eval": len(eval_split),
        "truncation": reports,
        "tokens_per_example": float(np.mean([x.size for x in train_split.input_ids])),
        "response_tokens_per_example": float(train_split.response_tokens().mean()),
        "vocabulary_size": None if kept is None else int(kept.size),
    }
    return LMData(train_split, eval_split, kept, info)
