"""Reproduction target ``smoothness``: Figure 1, generalized smoothness along an Adam trajectory.

``anisoada reproduce smoothness --preset quick|paper --out DIR/smoothness`` runs the measurement
core :func:`anisoada.measure.smoothness_check.run_smoothness_check` — Adam with **full** gradients
of a fixed instruction-data subset for 100 steps, recording per sampled coordinate
``x = |∂_j f(w)|`` against the secant ratio ``y = |∂_j f(w) − ∂_j f(w')| / |w_j − w'_j|`` — and
writes, into ``DIR/smoothness``:

* ``figure1.npz`` / ``figure1.json`` — the raw points, the envelope fits and the run record
  (:meth:`~anisoada.measure.smoothness_check.SmoothnessCheckResult.save`);
* ``envelope.csv`` — the envelope of every parameter tensor and the pooled one;
* ``reproduction.json`` — settings, whether the points were reused, what stands in for the
  paper's setting, wall time and provenance.

Stored points are reused when ``figure1.json`` records the same settings, so a re-run only
rewrites the table. The report draws the figure (the log–log scatter coloured by iteration with
the pooled affine envelope ``y ≈ L0 + L1·x`` that assumption A3 predicts) from the stored points.

The objective is the training objective of the LM experiment (the response-token mean, see
:mod:`anisoada.problems.language_model`) over a fixed subset prepared by the same path as the
training data (:func:`anisoada.data.prepare_lm_data`).

Presets (:data:`PRESETS`):

``quick`` (CPU): the ``tiny`` GPT-2 (2 layers, width 64), randomly initialised, on 32 of the
data layer's synthetic instructions (up to 128 tokens; the compact vocabulary of the tokens they
use), Adam lr 1e-3, 64 coordinates per parameter tensor — a stand-in for the paper's model and
data; a few seconds on two cores.

``paper`` (a GPU): GPT-2 124M from pretrained weights (``ANISOADA_GPT2_WEIGHTS``, a directory or
a cached hub id; default ``openai-community/gpt2`` from the local cache; ``random`` for a random
initialisation) on 64 Stanford Alpaca examples (``ANISOADA_ALPACA``, else
``<data home>/alpaca/alpaca_data.json``) of up to 256 tokens, Adam lr 1e-4, 256 coordinates per
tensor. The paper's subset size and learning rate are not published in what we could read; these
are our choices, recorded in the outputs.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from anisoada.data.instructions import LMDataSpec
from anisoada.reproduce import Reproduction, ReproductionOutput, finish_target, write_csv

__all__ = [
    "PRESETS",
    "REPRODUCTION",
    "SmoothnessSettings",
    "envelope_table",
    "gpt2_stand_ins",
    "run_smoothness",
]


@dataclasses.dataclass(frozen=True)
class SmoothnessSettings:
    """What the Figure 1 run measures (the identity of stored points).

    Attributes:
        model: GPT-2 preset of :func:`anisoada.models.build_gpt2` (``"tiny"``, ``"gpt2"``).
        weights: Pretrained weights (directory or cached hub id), or None for a random init.
        data: ``"synthetic"`` or an Alpaca-format JSON/JSONL file.
        examples: Size of the fixed data subset (the full-gradient objective).
        max_length: Longest tokenized example.
        steps: Adam iterations (the paper: 100).
        lr: Adam learning rate.
        coordinates_per_tensor: Coordinates sampled from every parameter tensor.
        coverage: Fraction of points each envelope must cover.
        chunk_size: Examples per gradient piece (memory only; the gradient is the same).
        seed: Seed of the subset, the initialisation and the coordinate sample.
    """

    model: str = "tiny"
    weights: str | None = None
    data: str = "synthetic"
    examples: int = 32
    max_length: int = 128
    steps: int = 100
    lr: float = 1e-3
    coordinates_per_tensor: int = 64
    coverage: float = 0.99
    chunk_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("examples", "max_length", "steps", "coordinates_per_tensor"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Invalid {name}: {value!r}; use a positive integer.")

    def identity(self) -> dict[str, Any]:
        """The fields that change the measured points (``chunk_size`` only changes memory)."""
        from anisoada.models import GPT2_PRESETS

        record = dataclasses.asdict(self)
        record.pop("chunk_size")
        preset = GPT2_PRESETS.get(self.model)  # an unknown name fails when the model is built
        record["architecture"] = None if preset is None else preset.identity()  # e.g. the GELU
        return record


#: The presets' settings; ``paper`` is completed from the environment by :func:`_settings`.
PRESETS: dict[str, SmoothnessSettings] = {
    "quick": SmoothnessSettings(),
    "paper": SmoothnessSettings(
        model="gpt2",
        weights="openai-community/gpt2",
        data="alpaca",
        examples=64,
        max_length=256,
        lr=1e-4,
        coordinates_per_tensor=256,
        chunk_size=16,
    ),
}


def _settings(preset: str) -> SmoothnessSettings:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}; got {preset!r}")
    settings = PRESETS[preset]
    if preset != "paper":
        return settings
    from anisoada.data import alpaca_path
    from anisoada.models import weights_from_environment

    alpaca = alpaca_path()
    if not alpaca.is_file():
        raise FileNotFoundError(
            f"The paper preset of Figure 1 needs Stanford Alpaca's alpaca_data.json at {alpaca}: "
            "download it from github.com/tatsu-lab/stanford_alpaca and put it there, or set "
            "ANISOADA_ALPACA to its path (or run --preset quick)."
        )
    weights = weights_from_environment() or settings.weights
    return dataclasses.replace(
        settings, data=str(alpaca), weights=None if weights == "random" else weights
    )


def envelope_table(result: Any) -> pd.DataFrame:
    """The envelope fits of a smoothness check as a table: pooled first, then per tensor.

    Columns: ``tensor``, ``L0``, ``L1``, ``coverage`` (asked), ``covered_fraction`` (achieved),
    ``n_points``, ``n_dropped``, ``size`` (coordinates of the tensor; total for pooled).
    """
    sizes = dict(zip(result.block_names, result.block_sizes))
    order = ["pooled", *[name for name in result.block_names if name in result.fits]]
    records = []
    for name in order:
        fit = result.fits[name]
        records.append(
            {
                "tensor": name,
                "L0": fit.L0,
                "L1": fit.L1,
                "coverage": fit.coverage,
                "covered_fraction": fit.covered_fraction,
                "n_points": fit.n_points,
                "n_dropped": fit.n_dropped,
                "size": int(sum(result.block_sizes)) if name == "pooled" else sizes[name],
            }
        )
    return pd.DataFrame.from_records(records)


def gpt2_stand_ins(preset: str | None, pretrained: bool, data: str | None) -> list[str]:
    """How a GPT-2 run differs from the paper's setting (pretrained GPT-2 124M on Alpaca).

    Example:
        >>> gpt2_stand_ins("gpt2", True, "alpaca_data.json")
        []
        >>> gpt2_stand_ins("gpt2", False, "synthetic")[1]
        'synthetic instructions, not Stanford Alpaca'
    """
    notes = []
    if preset != "gpt2":
        state = "a pretrained" if pretrained else "a randomly initialised"
        notes.append(f"{state} '{preset}' GPT-2, not the pretrained 124M model")
    elif not pretrained:
        notes.append("a randomly initialised GPT-2 124M, not the pretrained one")
    if data in ("synthetic", "synthetic_instructions"):
        notes.append("synthetic instructions, not Stanford Alpaca")
    return notes


def _stand_ins(record: dict[str, Any]) -> list[str]:
    model = record.get("model", {})
    data = record.get("data", {})
    notes = gpt2_stand_ins(
        record.get("preset"),
        model.get("source") != "random_init",
        data.get("source") if isinstance(data, dict) else data,
    )
    if record.get("compact_vocabulary"):
        notes.append("a softmax over the tokens the subset uses (compact vocabulary)")
    return notes


def _stored(stem: Path, settings: SmoothnessSettings) -> Any | None:
    from anisoada.measure.smoothness_check import SmoothnessCheckResult

    json_path = stem.with_suffix(".json")
    if not json_path.is_file() or not stem.with_suffix(".npz").is_file():
        return None
    try:
        document = json.loads(json_path.read_text())
    except json.JSONDecodeError:
        return None
    if document.get("provenance", {}).get("settings") != settings.identity():
        return None
    return SmoothnessCheckResult.load(stem)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def data_spec(settings: SmoothnessSettings) -> LMDataSpec:
    """The instruction data of the check, named as a training run would name it.

    The fixed subset is the ``examples`` training examples of a split with one held-out record;
    the tiny model uses the compact vocabulary (as the quick LM target does), GPT-2 124M the full
    one.
    """
    return LMDataSpec(
        source=settings.data,
        n_train=settings.examples,
        n_eval=1,
        max_length=settings.max_length,
        seed=settings.seed,
        vocabulary="compact" if settings.model == "tiny" else "full",
        template="alpaca",
    )


def _measure(settings: SmoothnessSettings, progress: bool) -> Any:
    from anisoada.measure.lm import language_model_problem
    from anisoada.measure.smoothness_check import SmoothnessCheckConfig, run_smoothness_check

    problem = language_model_problem(
        data_spec(settings),
        model=settings.model,
        weights=settings.weights,
        n_examples=None,
        seed=settings.seed,
        device=_device(),
    )
    # The settings of the same name carry over; the chunk size is the check's data_chunk_size.
    same = ("steps", "lr", "coordinates_per_tensor", "coverage", "seed")
    carried = {name: getattr(settings, name) for name in same}
    config = SmoothnessCheckConfig(data_chunk_size=settings.chunk_size, **carried)

    def report(t: int, loss: float) -> None:
        if progress and (t % 10 == 0 or t == settings.steps):
            print(f"smoothness: Adam step {t:4d}/{settings.steps}  f = {loss:.4f}", file=sys.stderr)

    result = run_smoothness_check(
        problem.model, problem.loss_fn, problem.batch, config, progress=report
    )
    return dataclasses.replace(
        result,
        provenance={
            **result.provenance,
            **problem.provenance,
            "preset": settings.model,
            "settings": settings.identity(),
        },
    )


def run_smoothness(
    preset: str,
    out: str | Path,
    *,
    jobs: int = 1,
    progress: bool = True,
    settings: SmoothnessSettings | None = None,
) -> ReproductionOutput:
    """Run (or reuse) the Figure 1 measurement and write its figure and tables into ``out``.

    Args:
        preset: ``"quick"`` or ``"paper"`` (see the module docstring).
        out: Output directory.
        jobs: Accepted for the registry's signature (one process; the GPU when there is one).
        progress: Print the loss every 10 Adam steps to stderr.
        settings: Settings to run instead of the preset's (``preset`` is then only a label).

    Returns:
        The :class:`~anisoada.reproduce.ReproductionOutput`.
    """
    started = time.perf_counter()
    out = Path(out)
    settings = _settings(preset) if settings is None else settings
    stem = out / "figure1"
    result = _stored(stem, settings)
    reused = result is not None
    if result is None:
        result = _measure(settings, progress)
        result.save(stem)
    elif progress:
        print(f"smoothness: reusing the stored points in {stem}.npz", file=sys.stderr)
    record = dict(result.provenance)
    stand_ins = _stand_ins(record)
    written = {
        "figure1.npz": stem.with_suffix(".npz"),
        "figure1.json": stem.with_suffix(".json"),
    }
    written["envelope.csv"] = write_csv(envelope_table(result), out / "envelope.csv")
    pooled = result.fits["pooled"]
    summary = (
        f"Figure 1 ({preset} preset{'; ' + '; '.join(stand_ins) if stand_ins else ''}): "
        f"{result.x.size} secant points, pooled envelope L0 = {pooled.L0:.4g}, "
        f"L1 = {pooled.L1:.4g} covering {100 * pooled.covered_fraction:.1f}%; "
        f"f {result.losses[0]:.4f} → {result.losses[-1]:.4f} over {settings.steps} Adam steps"
    )
    return finish_target(
        out,
        "smoothness",
        preset,
        started,
        written,
        summary=summary,
        tables={"Affine envelopes y ≤ L0 + L1·x (Figure 1)": written["envelope.csv"]},
        check_seconds=record.get("seconds"),
        reused=reused,
        settings=dataclasses.asdict(settings),
        stand_in=stand_ins,
        n_points=int(result.x.size),
        n_skipped=result.n_skipped,
        loss_first=float(result.losses[0]),
        loss_last=float(result.losses[-1]),
        pooled=pooled.to_dict(),
        measured={key: record.get(key) for key in ("model", "data", "d", "samples")},
    )


REPRODUCTION = Reproduction(
    name="smoothness",
    description="Figure 1: generalized smoothness (L0, L1) along a full-batch Adam run on GPT-2",
    run=run_smoothness,
)
