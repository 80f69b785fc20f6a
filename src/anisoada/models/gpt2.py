"""GPT-2 language models for the paper's instruction-tuning experiment (Figure 2, Table 4).

Two presets: ``"gpt2"`` is the 124M-parameter configuration the paper fine-tunes, and ``"tiny"``
is a 2-layer, 64-wide GPT-2 that trains on a laptop CPU. Weights come from a local directory or
the Hugging Face cache when the user has them — never from the network — and otherwise from a
seeded random initialisation of the preset's configuration. Which of the two happened is returned
as a provenance record, so that results can say what model they were produced with.

A GPT-2's input embedding (tied to its output layer) holds ``vocab_size × n_embd`` parameters:
50257 × 64 ≈ 3.2M of the tiny preset's 3.3M. :func:`restrict_vocabulary` keeps only the rows of
the tokens a corpus uses, which brings the tiny model to a few hundred thousand parameters and
makes the output softmax — the dominant cost on a CPU — 25× cheaper.

**Activation.** GPT-2's MLP uses the tanh approximation of GELU, ``0.5·x·(1 + tanh(√(2/π)·(x +
0.044715·x³)))``. ``transformers`` computes it two ways: ``"gelu_new"``, GPT-2's own, as seven
elementwise operations (each a pass over the activations, forward and backward), and
``"gelu_pytorch_tanh"``, the same formula as torch's one fused ``gelu(approximate="tanh")``
kernel. They differ by float rounding only (float32: at most 4.8e-7 absolute on [−20, 20], 0.4%
of inputs differ at all; float64: 8.9e-16), and the fused one makes a tiny GPT-2's training
step ≈ 23% faster on a CPU. The ``tiny`` preset uses the fused kernel; ``gpt2`` keeps
``"gelu_new"``, as its pretrained weights were trained with. The activation is part of a
preset's :meth:`GPT2Preset.identity`, so results of the two are never mixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = [
    "ACTIVATIONS",
    "GPT2_PRESETS",
    "GPT2Build",
    "GPT2Preset",
    "build_gpt2",
    "find_local_weights",
    "restrict_vocabulary",
]

_GPT2_VOCAB_SIZE = 50257
_EOS_ID = 50256
# Weight files ``from_pretrained`` understands, in the order it prefers them.
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
#: The two ``transformers`` implementations of GPT-2's tanh-approximated GELU (see the module
#: docstring): GPT-2's own elementwise form and torch's fused kernel of the same formula.
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")
# The integer sizes of an architecture, named as GPT2Config names them.
_SIZES = ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size")


@dataclasses.dataclass(frozen=True)
class GPT2Preset:
    """Architecture of a named GPT-2 configuration.

    Attributes:
        n_layer: number of transformer blocks.
        n_head: attention heads per block; must divide ``n_embd``.
        n_embd: width of the residual stream.
        n_positions: longest sequence the learned position embedding covers.
        vocab_size: rows of the (tied) token embedding; 50257 is GPT-2's BPE vocabulary.
        dropout: probability for the embedding, attention and residual dropouts. The presets use
            0.0 so that a training step is a deterministic function of the batch: the micro-batch
            split and the number of data-parallel processes then change results only by float
            rounding (dropout masks would be drawn differently for each split).
        hub_name: the Hugging Face repository whose pretrained weights match this architecture,
            looked up in the local cache only; ``None`` when there is none.
        activation: the MLP's GELU implementation, one of :data:`ACTIVATIONS` (the same
            function up to float rounding; ``"gelu_pytorch_tanh"`` is one fused kernel).
        single_threaded: train on one torch thread on the CPU. The ``tiny`` preset's matrices
            are 64 wide: a second thread costs more in synchronisation than it computes (a
            quick-preset run at batch 512 took 41 s of CPU and 75 s on two threads against
            7 s and 12 s on one, on two busy cores), so its runs take one thread and a sweep's
            parallelism comes from runs side by side. The thread count changes the order of
            float sums, so this also makes a run's numbers the same wherever it trains (a
            pool worker or the main process).
    """

    n_layer: int
    n_head: int
    n_embd: int
    n_positions: int
    vocab_size: int = _GPT2_VOCAB_SIZE
    dropout: float = 0.0
    hub_name: str | None = None
    activation: str = "gelu_new"
    single_threaded: bool = False

    def __post_init__(self) -> None:
        for name in _SIZES:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Invalid GPT2Preset.{name}: {value!r}; use a positive integer.")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"Invalid GPT2Preset: n_head={self.n_head} does not divide n_embd={self.n_embd}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Invalid GPT2Preset.dropout: {self.dropout!r}; use 0 <= p < 1.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"Invalid GPT2Preset.activation: {self.activation!r}; use one of {ACTIVATIONS}."
            )
        if not isinstance(self.single_threaded, bool):
            raise ValueError(
                f"Invalid GPT2Preset.single_threaded: {self.single_threaded!r}; use True or False."
            )

    def identity(self) -> dict[str, Any]:
        """What of the architecture changes a run's numbers beyond its preset's name: the
        activation's implementation (results with ``gelu_new`` and with the fused kernel
        differ by float rounding, and stored results must say which they are)."""
        return {"activation": self.activation}

    def config(self) -> Any:
        """The ``transformers.GPT2Config`` of this architecture."""
        from transformers import GPT2Config

        # The sizes carry over under their own names; the three dropouts share one probability.
        sizes = {name: getattr(self, name) for name in _SIZES}
        dropouts: dict[str, Any] = dict.fromkeys(
            ("resid_pdrop", "embd_pdrop", "attn_pdrop"), self.dropout
        )
        return GPT2Config(
            **sizes,
            **dropouts,
            activation_function=self.activation,
            tie_word_embeddings=True,
            # Training never reuses keys and values: no cache to build (same numbers).
            use_cache=False,
            # GPT-2's <|endoftext|> (50256) only exists in a vocabulary that large.
            bos_token_id=_EOS_ID if self.vocab_size > _EOS_ID else None,
            eos_token_id=_EOS_ID if self.vocab_size > _EOS_ID else None,
        )


GPT2_PRESETS: dict[str, GPT2Preset] = {
    # Radford et al. (2019) "small" GPT-2, the model of the paper's Figure 2 (124M parameters).
    "gpt2": GPT2Preset(
        n_layer=12, n_head=12, n_embd=768, n_positions=1024, hub_name="openai-community/gpt2"
    ),
    # ~0.1M parameters outside the embedding; CPU-sized. No pretrained weights exist for it.
    "tiny": GPT2Preset(
        n_layer=2,
        n_head=2,
        n_embd=64,
        n_positions=256,
        activation="gelu_pytorch_tanh",
        single_threaded=True,
    ),
}


class GPT2Build(NamedTuple):
    """A built model and the record of where its weights came from.

    ``provenance`` is JSON-serialisable: ``preset``, ``source`` (``"random_init"``,
    ``"local_directory"`` or ``"hf_cache"``), ``pretrained`` (whether weights were loaded),
    ``weights`` (what was asked for), ``resolved_path``
    (the directory the weights were read from, or ``None``), ``seed`` (for random init), ``config``
    (the architecture actually built), ``n_parameters``, ``n_embedding_parameters``,
    ``transformers_version``, and ``weight_files`` (name and size of each file read).
    """

    model: PreTrainedModel
    provenance: dict[str, Any]


def build_gpt2(
    preset: str | GPT2Preset,
    *,
    weights: str | Path | None = None,
    seed: int = 0,
    dropout: float | None = None,
) -> GPT2Build:
    """Build a ``transformers.GPT2LMHeadModel`` from a preset, offline.

    Args:
        preset: a key of :data:`GPT2_PRESETS` (``"tiny"``, ``"gpt2"``) or a :class:`GPT2Preset`.
        weights: ``None`` for a random initialisation of the preset's configuration (GPT-2's own
            scheme: normal(0, 0.02) weights, residual projections scaled by 1/√(2·n_layer)),
            seeded by ``seed``; a directory holding ``config.json`` and a weight file (as written
            by ``save_pretrained``); or a Hugging Face repository name (e.g.
            ``"openai-community/gpt2"``) or ``"pretrained"`` (the preset's ``hub_name``), looked
            up in the local cache only. Pretrained weights must match the preset's architecture.
        seed: seed of the random initialisation; the global torch RNG is left untouched.
        dropout: overrides the preset's dropout probability (also for pretrained weights).

    Returns:
        ``GPT2Build(model, provenance)``; the model is in training mode, float32, on the CPU.

    Raises:
        ValueError: unknown preset, or pretrained weights whose architecture differs from it.
        FileNotFoundError: ``weights`` names a directory or repository that is not available
            locally; the message says how to make it available.

    Example:
        >>> model, info = build_gpt2("tiny", seed=1)
        >>> info["source"], info["config"]["n_layer"]
        ('random_init', 2)

    References:
        Radford, Wu, Child, Luan, Amodei, Sutskever (2019), "Language Models are Unsupervised
        Multitask Learners" (GPT-2).
    """
    from transformers import GPT2LMHeadModel

    spec = _resolve_preset(preset)
    if dropout is not None:
        spec = dataclasses.replace(spec, dropout=dropout)
    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = GPT2LMHeadModel(spec.config())
        source, resolved, files = "random_init", None, []
    else:
        directory, source = _locate_weights(weights, spec)
        model = GPT2LMHeadModel.from_pretrained(
            directory,
            local_files_only=True,
            resid_pdrop=spec.dropout,
            embd_pdrop=spec.dropout,
            attn_pdrop=spec.dropout,
            activation_function=spec.activation,
            use_cache=False,
        )
        _check_architecture(model.config, spec, directory)
        resolved = str(directory)
        files = [
            {"name": name, "bytes": (directory / name).stat().st_size}
            for name in _WEIGHT_FILES
            if (directory / name).is_file()
        ]
    model.train()
    return GPT2Build(
        model, _provenance(model, spec, preset, weights, source, resolved, seed, files)
    )


def restrict_vocabulary(model: PreTrainedModel, keep_token_ids: Sequence[int]) -> PreTrainedModel:
    """Keep only some rows of a GPT-2's (tied) token embedding, in place.

    Token ``keep_token_ids[k]`` of the original vocabulary becomes token ``k`` of the new one, so
    inputs must be re-indexed the same way. With a tied output layer the logits are
    ``h · E_keepᵀ``: the model's softmax runs over the kept tokens only, i.e. the loss is the
    cross-entropy of the model conditioned on the next token being one of them. That equals the
    full-vocabulary loss only when the other tokens have negligible probability — never at a
    random initialisation, where they hold most of the mass. It is a different objective, not
    a cheaper way to compute the same one: with the full vocabulary, lowering the logits of
    tokens that never occur lowers the loss, and AdaGrad's per-coordinate steps do that much
    faster than SGD's (``anisoada reproduce lm`` measures how much of AdaGrad's lead that is:
    ``vocabulary_audit.csv``). Read results of a restricted model as results on that problem.

    Args:
        model: a ``GPT2LMHeadModel`` with tied input/output embeddings.
        keep_token_ids: distinct token ids of the current vocabulary, in the new order.

    Returns:
        The same model, its ``config.vocab_size`` set to ``len(keep_token_ids)``.

    Example:
        >>> model, _ = build_gpt2("tiny")
        >>> restrict_vocabulary(model, [50256, 13, 11]).config.vocab_size
        3
    """
    weight = _input_embedding_weight(model)
    rows = torch.as_tensor(list(keep_token_ids), dtype=torch.long)
    old_size = weight.shape[0]
    if rows.ndim != 1 or rows.numel() == 0:
        raise ValueError("Invalid keep_token_ids: give a non-empty sequence of token ids.")
    if int(rows.min()) < 0 or int(rows.max()) >= old_size:
        raise ValueError(
            f"Invalid keep_token_ids: ids must lie in [0, {old_size}); got range "
            f"[{int(rows.min())}, {int(rows.max())}]."
        )
    if rows.unique().numel() != rows.numel():
        raise ValueError("Invalid keep_token_ids: ids must be distinct.")
    if model.get_output_embeddings().weight is not weight:
        raise ValueError(
            "restrict_vocabulary needs tied input/output embeddings (GPT-2's default)."
        )
    new_embedding = torch.nn.Embedding(rows.numel(), weight.shape[1])
    with torch.no_grad():
        new_embedding.weight.copy_(weight[rows])
    model.set_input_embeddings(new_embedding)
    model.config.vocab_size = rows.numel()
    kept = rows.tolist()
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        old_id = getattr(model.config, name, None)
        setattr(model.config, name, kept.index(old_id) if old_id in kept else None)
    model.tie_weights()
    return model


#: Environment variable naming GPT-2 weights (a ``save_pretrained`` directory or a cached hub id;
#: ``random`` asks for a random initialisation).
WEIGHTS_ENV = "ANISOADA_GPT2_WEIGHTS"


def weights_from_environment() -> str | None:
    """``$ANISOADA_GPT2_WEIGHTS`` when set and non-empty (the one place that reads it)."""
    import os

    return os.environ.get(WEIGHTS_ENV) or None


def find_local_weights(weights: str | Path, preset: str | GPT2Preset = "gpt2") -> Path | None:
    """The local directory of pretrained ``weights``, or ``None`` when they are not available.

    Looks exactly where :func:`build_gpt2` looks — a directory written by ``save_pretrained``,
    else the local Hugging Face cache — and never downloads. Callers that may run without the
    weights use it to choose a random initialisation *before* building, so that the choice is
    part of the run's configuration rather than a silent substitution.

    Args:
        weights: a directory, a Hugging Face repository name, or ``"pretrained"`` (the
            preset's ``hub_name``).
        preset: the preset whose ``hub_name`` ``"pretrained"`` refers to.

    Returns:
        The directory holding ``config.json`` and a weight file, or ``None``.

    Example:
        >>> find_local_weights("/nonexistent/gpt2") is None
        True
    """
    try:
        return _locate_weights(weights, _resolve_preset(preset))[0]
    except (FileNotFoundError, ValueError):
        return None


def _resolve_preset(preset: str | GPT2Preset) -> GPT2Preset:
    if isinstance(preset, GPT2Preset):
        return preset
    if preset not in GPT2_PRESETS:
        raise ValueError(f"Unknown GPT-2 preset {preset!r}; choose one of {sorted(GPT2_PRESETS)}.")
    return GPT2_PRESETS[preset]


def _locate_weights(weights: str | Path, spec: GPT2Preset) -> tuple[Path, str]:
    """The local directory holding ``weights``, and whether it was a directory or the cache."""
    path = Path(weights).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() or not any(
            (path / name).is_file() for name in _WEIGHT_FILES
        ):
            raise FileNotFoundError(
                f"{path} is not a saved model: it needs config.json and one of {_WEIGHT_FILES} "
                "(write one with model.save_pretrained(path))."
            )
        return path, "local_directory"
    repo_id = spec.hub_name if str(weights) == "pretrained" else str(weights)
    if repo_id is None:
        raise ValueError(
            f"weights='pretrained' but this preset has no pretrained weights ({spec}); "
            "pass weights=None for a random initialisation."
        )
    if str(weights).startswith(("/", ".", "~")) or path.exists():
        raise FileNotFoundError(
            f"No saved model directory at {path}; give a directory written by save_pretrained."
        )
    from huggingface_hub import snapshot_download

    try:
        snapshot = snapshot_download(repo_id, local_files_only=True)
    except Exception as error:  # the hub raises several types for "not cached"
        raise FileNotFoundError(
            f"{weights!r} is neither a model directory nor in the local Hugging Face cache "
            f"(nothing is downloaded at run time). On a machine with network access run "
            f"`huggingface-cli download {repo_id}` (or save the model with save_pretrained and "
            f"pass its directory), or use weights=None for a random initialisation."
        ) from error
    return Path(snapshot), "hf_cache"


def _check_architecture(config: Any, spec: GPT2Preset, directory: Path) -> None:
    found = {name: getattr(config, name) for name in ("n_layer", "n_head", "n_embd")}
    expected = {name: getattr(spec, name) for name in found}
    if found != expected:
        raise ValueError(
            f"The weights in {directory} have architecture {found}, but the preset asks for "
            f"{expected}; choose the matching preset."
        )


def _input_embedding_weight(model: PreTrainedModel) -> torch.Tensor:
    """The weight of ``model``'s input embedding (``.weight`` of a module types as tensor or
    module; an embedding's is a tensor)."""
    weight = model.get_input_embeddings().weight
    assert isinstance(weight, torch.Tensor)
    return weight


def _provenance(
    model: PreTrainedModel,
    spec: GPT2Preset,
    preset: str | GPT2Preset,
    weights: str | Path | None,
    source: str,
    resolved: str | None,
    seed: int,
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    import transformers

    config = model.config
    embedding = _input_embedding_weight(model)
    return {
        "preset": preset if isinstance(preset, str) else "custom",
        "source": source,
        "pretrained": source != "random_init",
        "weights": None if weights is None else str(weights),
        "resolved_path": resolved,
        "seed": seed if source == "random_init" else None,
        "config": {
            "n_layer": config.n_layer,
            "n_head": config.n_head,
            "n_embd": config.n_embd,
            "n_positions": config.n_positions,
            "vocab_size": config.vocab_size,
            "dropout": spec.dropout,
            "activation": config.activation_function,
        },
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "n_embedding_parameters": embedding.numel(),
        "transformers_version": transformers.__version__,
        "weight_files": files,
    }
