"""Models for the experiments: GPT-2 for the instruction-tuning reproduction (Figure 2, Table 4)."""

from anisoada.models.gpt2 import (
    ACTIVATIONS,
    GPT2_PRESETS,
    WEIGHTS_ENV,
    GPT2Build,
    GPT2Preset,
    build_gpt2,
    find_local_weights,
    restrict_vocabulary,
    weights_from_environment,
)

__all__ = [
    "ACTIVATIONS",
    "GPT2_PRESETS",
    "WEIGHTS_ENV",
    "GPT2Build",
    "GPT2Preset",
    "build_gpt2",
    "find_local_weights",
    "restrict_vocabulary",
    "weights_from_environment",
]
