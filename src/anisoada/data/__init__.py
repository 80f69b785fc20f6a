"""Data: synthetic anisotropic problems with known constants, LIBSVM sets, Alpaca and GPT-2 BPE.

* :mod:`~anisoada.data.synthetic` — sparse power-law logistic regression, its rotated twin, and a
  stochastic quadratic with prescribed ``L`` and ``σ``.
* :mod:`~anisoada.data.alpaca` — Alpaca-format records, prompts, response-only tokenisation and a
  synthetic instruction generator.
* :mod:`~anisoada.data.instructions` — one preparation path from instruction data to tokenised
  splits (:func:`prepare_lm_data`), shared by training and measurement;
* :mod:`~anisoada.data.tokenizer` — GPT-2's BPE tokenizer built offline;
* :mod:`~anisoada.data.home` — the data home and the Alpaca file from the environment.
* :mod:`~anisoada.data.libsvm` — LIBSVM binary data sets: registry, parsing, verified downloads,
  an ``.npz`` cache under :func:`data_home`.
"""

from anisoada.data.alpaca import (
    DEFAULT_TEMPLATE,
    IGNORE_INDEX,
    AlpacaFormatError,
    InstructionRecord,
    PromptTemplate,
    TokenizedInstructions,
    TruncationReport,
    format_prompt,
    load_alpaca,
    synthetic_instructions,
    tokenize_instructions,
    validate_record,
)
from anisoada.data.home import ALPACA_ENV, DATA_HOME_ENV, alpaca_path, data_home
from anisoada.data.instructions import (
    LM_TEMPLATES,
    LM_VOCABULARIES,
    LMData,
    LMDataSpec,
    TokenizedExamples,
    compact_vocabulary,
    prepare_lm_data,
)
from anisoada.data.libsvm import (
    LIBSVM_DATASETS,
    ChecksumError,
    LibsvmData,
    LibsvmDataset,
    LibsvmDownloadError,
    LibsvmFile,
    LibsvmFormatError,
    LibsvmPair,
    content_sha256,
    libsvm_available,
    load_libsvm,
    load_libsvm_pair,
    locate_libsvm,
    save_libsvm,
)
from anisoada.data.synthetic import (
    LogisticProblem,
    StochasticQuadratic,
    logistic_problem,
    make_sparse_logistic,
    power_law_frequencies,
    random_orthogonal,
    rotated_twin,
)
from anisoada.data.tokenizer import GPT2_EOS_TOKEN, GPT2_VOCAB_SIZE, gpt2_tokenizer

__all__ = [
    "ALPACA_ENV",
    "DATA_HOME_ENV",
    "DEFAULT_TEMPLATE",
    "GPT2_EOS_TOKEN",
    "GPT2_VOCAB_SIZE",
    "IGNORE_INDEX",
    "LIBSVM_DATASETS",
    "LM_TEMPLATES",
    "LM_VOCABULARIES",
    "AlpacaFormatError",
    "ChecksumError",
    "InstructionRecord",
    "LMData",
    "LMDataSpec",
    "LibsvmData",
    "LibsvmDataset",
    "LibsvmDownloadError",
    "LibsvmFile",
    "LibsvmFormatError",
    "LibsvmPair",
    "LogisticProblem",
    "PromptTemplate",
    "StochasticQuadratic",
    "TokenizedExamples",
    "TokenizedInstructions",
    "TruncationReport",
    "alpaca_path",
    "compact_vocabulary",
    "content_sha256",
    "data_home",
    "format_prompt",
    "gpt2_tokenizer",
    "libsvm_available",
    "load_alpaca",
    "load_libsvm",
    "load_libsvm_pair",
    "locate_libsvm",
    "logistic_problem",
    "make_sparse_logistic",
    "power_law_frequencies",
    "prepare_lm_data",
    "random_orthogonal",
    "rotated_twin",
    "save_libsvm",
    "synthetic_instructions",
    "tokenize_instructions",
    "validate_record",
]
