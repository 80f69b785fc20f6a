"""Run GPT-2 instruction tuning — one run, or a learning-rate × batch-size sweep — into a store.

A run is fully described by a frozen :class:`LMRunConfig`; its id is a hash of that config, so a
sweep re-run skips finished runs and an interrupted run continues from its checkpoint (model,
optimizer state, loop state with the RNG, and the data position, which is the step index). The
training itself is the one loop, :func:`anisoada.experiments.train`, with
:class:`~anisoada.experiments.lm.LanguageModelTask`.

Stored per run, in the :class:`~anisoada.experiments.store.ResultsStore` layout:
``rows.parquet`` (one row per evaluation point: identity columns ``dataset, optimizer,
batch_size, seed, lr``, then ``step, samples, epoch, current_lr, batch_loss, train_loss,
eval_loss, sigma_l1, sigma_l2, status, run_id``), ``noise.parquet`` (per-layer ``‖σ‖_1``,
``‖σ‖_2`` at measured steps) and ``run.json`` (config, model and data provenance, timing,
versions). Only rank 0 writes; every rank trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from anisoada._io import atomic_path, write_json
from anisoada.experiments.callbacks import Checkpointer, RowLogger, load_checkpoint
from anisoada.experiments.lm import LanguageModelTask, TokenizedExamples, compact_vocabulary
from anisoada.experiments.lm_distributed import DistributedContext
from anisoada.experiments.loop import Budget, TrainConfig, train
from anisoada.experiments.schedules import SCHEDULE_KINDS, LRSchedule
from anisoada.experiments.store import ResultsStore, provenance
from anisoada.experiments.sweep import OptimizerSpec, derive_seed, select_best

__all__ = [
    "LMData",
    "LMDataSpec",
    "LMRunConfig",
    "LMSweepConfig",
    "LMSweepResult",
    "prepare_lm_data",
    "run_lm",
    "run_lm_sweep",
]

_VOCABULARIES = ("full", "compact")
_TEMPLATES = ("alpaca", "short")
# Run-config fields that do not change the results (beyond float rounding); not in the run id.
# ``stand_in_for`` only labels a random initialisation. ``micro_batch_size`` is in the id of runs
# that measure the noise: the estimate is built from the step's micro-batches (see identity()).
_NOT_IDENTITY = (
    "micro_batch_size",
    "checkpoint_every",
    "eval_batch_size",
    "group_by_length",
    "stand_in_for",
)
_PRECISIONS = ("fp32", "bf16")


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
            splits use; see :func:`anisoada.models.restrict_vocabulary`).
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
        if self.source == "synthetic" and self.n_train is None:
            raise ValueError("LMDataSpec: the synthetic source needs n_train (an int >= 1).")
        if self.n_train is not None and (not isinstance(self.n_train, int) or self.n_train < 1):
            raise ValueError(f"Invalid n_train: {self.n_train!r}; use an int >= 1 or None.")
        if not isinstance(self.n_eval, int) or self.n_eval < 1:
            raise ValueError(f"Invalid n_eval: {self.n_eval!r}; use an int >= 1.")
        if self.vocabulary not in _VOCABULARIES:
            raise ValueError(
                f"Invalid vocabulary: {self.vocabulary!r}; use one of {_VOCABULARIES}."
            )
        if self.template not in _TEMPLATES:
            raise ValueError(f"Invalid template: {self.template!r}; use one of {_TEMPLATES}.")

    @property
    def name(self) -> str:
        """Short label for results tables."""
        return "synthetic-instructions" if self.source == "synthetic" else Path(self.source).name


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
    """Tokenised splits ready for :class:`LanguageModelTask`.

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

    Args:
        spec: what to load.
        tokenizer: a GPT-2 tokenizer; default :func:`anisoada.data.tokenizer.gpt2_tokenizer`.

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
        records = synthetic_instructions(spec.n_train + spec.n_eval, seed=spec.seed)
    else:
        records = load_alpaca(spec.source)
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
        "spec": dataclasses.asdict(spec),
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


@dataclasses.dataclass(frozen=True)
class LMRunConfig:
    """Everything that determines one instruction-tuning run.

    Attributes:
        data: the :class:`LMDataSpec`.
        model: GPT-2 preset (``"tiny"``, ``"gpt2"``).
        weights: ``None`` (random init), a directory, or a Hugging Face id in the local cache
            (see :func:`anisoada.models.build_gpt2`).
        stand_in_for: with ``weights=None``, the pretrained weights this random initialisation
            stands in for because they were not available locally; recorded in ``run.json``
            and shown in the reproduction's outputs (not part of the run id).
        optimizer: the optimizer and its options (``lr`` apart).
        lr: peak learning rate (the schedule multiplies it).
        batch_size: effective batch ``M`` (examples per optimizer step, over all processes).
        micro_batch_size: examples per forward/backward on each process (``None``: the whole
            per-process share of a step). A memory knob for the training itself; but the
            noise estimate is built from the step's micro-batches, so runs that measure noise
            need at least two of them per step (over all processes) and carry the size in
            their run id.
        budget_samples / budget_epochs: the budget, at most one (neither: one epoch). A sample
            budget ``N`` gives ``⌊N/M⌋`` steps, so larger batches take fewer steps.
        schedule: ``"constant"``, ``"linear"`` or ``"cosine"`` decay.
        warmup_ratio: fraction of the steps spent in linear warm-up.
        final_lr_ratio: the decayed schedules end at ``final_lr_ratio · lr``.
        clip_norm: clip the global gradient norm (``None``: off).
        seed: seed index of the run; with ``base_seed`` it derives the data order (shared by all
            optimizers and learning rates at a batch size) and the initialisation (shared by
            all runs of the index).
        base_seed: the one seed every run's seeds derive from.
        evaluations: evaluation points after the initial one.
        measure_noise: measure per-layer gradient noise at each evaluation step (needs at least
            two full micro-batches per step).
        checkpoint_every: steps between checkpoints (``None``: at each evaluation).
        divergence_factor: a run diverges when its mini-batch loss exceeds this multiple of its
            first one (or is NaN/inf).
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast).
        eval_batch_size: examples per forward pass in evaluation.
        dropout: overrides the preset's dropout (0 by default).
        group_by_length: similar lengths share a micro-batch within each step (less padding;
            the step's gradient is unchanged but for float rounding); see
            :class:`~anisoada.experiments.lm.LanguageModelTask`.
    """

    data: LMDataSpec = dataclasses.field(default_factory=LMDataSpec)
    model: str = "tiny"
    weights: str | None = None
    optimizer: OptimizerSpec = dataclasses.field(default_factory=lambda: OptimizerSpec("adagrad"))
    lr: float = 0.01
    batch_size: int = 256
    micro_batch_size: int | None = None
    budget_samples: int | None = None
    budget_epochs: float | None = None
    schedule: str = "constant"
    warmup_ratio: float = 0.0
    final_lr_ratio: float = 0.0
    clip_norm: float | None = None
    seed: int = 0
    base_seed: int = 0
    evaluations: int = 20
    measure_noise: bool = True
    checkpoint_every: int | None = None
    divergence_factor: float | None = 3.0
    precision: str = "fp32"
    eval_batch_size: int = 32
    dropout: float | None = None
    group_by_length: bool = False
    stand_in_for: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, float | int) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Invalid lr: {self.lr!r}; use a positive number.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"Invalid batch_size: {self.batch_size!r}; use an int >= 1.")
        micro = self.micro_batch_size
        if micro is not None and (not isinstance(micro, int) or micro < 1):
            raise ValueError(f"Invalid micro_batch_size: {micro!r}; use an int >= 1 or None.")
        if self.stand_in_for is not None and self.weights is not None:
            raise ValueError(
                f"Invalid stand_in_for={self.stand_in_for!r}: it labels a random "
                f"initialisation, but weights={self.weights!r} are loaded; drop one of them."
            )
        if self.budget_samples is not None and self.budget_epochs is not None:
            raise ValueError(
                "LMRunConfig takes at most one of budget_samples and budget_epochs; got "
                f"{self.budget_samples!r} and {self.budget_epochs!r}."
            )
        if self.budget_samples is not None and (
            not isinstance(self.budget_samples, int) or self.budget_samples < 1
        ):
            raise ValueError(f"Invalid budget_samples: {self.budget_samples!r}; use an int >= 1.")
        if self.budget_epochs is not None and not self.budget_epochs > 0:
            raise ValueError(f"Invalid budget_epochs: {self.budget_epochs!r}; use a number > 0.")
        if self.schedule not in SCHEDULE_KINDS:
            raise ValueError(f"Invalid schedule: {self.schedule!r}; use one of {SCHEDULE_KINDS}.")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"Invalid warmup_ratio: {self.warmup_ratio!r}; use 0 <= r < 1.")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"Invalid precision: {self.precision!r}; use one of {_PRECISIONS}.")
        if not isinstance(self.evaluations, int) or self.evaluations < 1:
            raise ValueError(f"Invalid evaluations: {self.evaluations!r}; use an int >= 1.")

    @property
    def run_id(self) -> str:
        """Readable prefix plus a hash of :meth:`identity`."""
        digest = hashlib.sha256(
            json.dumps(self.identity(), sort_keys=True, default=str).encode()
        ).hexdigest()[:10]
        return f"{self.optimizer.label}-b{self.batch_size}-lr{self.lr:.3g}-s{self.seed}-{digest}"

    def identity(self) -> dict[str, Any]:
        """The fields that determine the results: all but the memory and I/O knobs
        (:data:`_NOT_IDENTITY`), which change results by float rounding at most. A run stored
        or checkpointed with micro-batches of 8 is thus found, and continued, with 4 — unless
        it measures the gradient noise, whose estimate is the spread of the step's
        micro-batch gradients: then the micro-batch size is part of the identity, and a
        checkpoint of another size is refused rather than mixed."""
        payload = self.to_dict()
        for name in _NOT_IDENTITY:
            if name == "micro_batch_size" and self.measure_noise:
                continue
            payload.pop(name)
        return payload

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form of every field."""
        payload = dataclasses.asdict(self)
        payload["optimizer"] = {
            "name": self.optimizer.name,
            "label": self.optimizer.label,
            "options": dict(self.optimizer.options),
        }
        return payload

    def num_steps(self, n_train: int) -> int:
        """Optimizer steps of the run on a training set of ``n_train`` examples."""
        return self._budget(n_train).num_steps(self.batch_size)

    def _budget(self, n_train: int) -> Budget:
        if self.budget_samples is not None:
            return Budget(samples=self.budget_samples)
        epochs = 1.0 if self.budget_epochs is None else self.budget_epochs
        return Budget(samples=max(1, round(epochs * n_train)))


def run_lm(
    config: LMRunConfig,
    out: str | Path,
    *,
    context: DistributedContext | None = None,
    data: LMData | None = None,
    log: Callable[[str], None] | None = None,
    keep_checkpoint: bool = False,
) -> str:
    """Train one run (or finish it from its checkpoint) and store it under ``out``.

    Args:
        config: the run.
        out: the results-store root; the run lives in ``out/runs/<run_id>/``.
        context: this process's place in a data-parallel run (default: single process).
        data: the prepared data of ``config.data`` (prepared here when ``None``).
        log: called with one line per evaluation point (rank 0 only).
        keep_checkpoint: keep ``checkpoint.pt`` after the run completes (it is deleted by
            default: ``run.json`` marks the run complete, and a 124M-parameter AdaGrad
            checkpoint is 1.5 GB).

    Returns:
        The run id. A run already complete in the store is not trained again.
    """
    context = context or DistributedContext()
    _check_noise_microbatches(config, context.world_size)
    store = ResultsStore(out)
    run_id = config.run_id
    if _rank0_says(context, store.is_complete(run_id) if context.is_main else False):
        return run_id
    started = time.perf_counter()
    data = data or prepare_lm_data(config.data)
    task, model_info = _build_task(config, data, context)
    optimizer = _build_optimizer(config, task)
    n_train = len(data.train)
    steps = config.num_steps(n_train)
    eval_every = _eval_every(config, n_train)
    train_config = TrainConfig(
        batch_size=config.batch_size,
        budget=config._budget(n_train),
        micro_batch_size=config.micro_batch_size,
        seed=derive_seed(config.base_seed, data.info["name"], config.batch_size, config.seed),
        eval_every=eval_every,
        clip_norm=config.clip_norm,
        divergence_factor=config.divergence_factor,
    )
    schedule = _schedule(config, steps)
    checkpoint_path = store.run_dir(run_id) / "checkpoint.pt"
    callbacks = [
        *task.callbacks(),
        Checkpointer(
            checkpoint_path,
            every=config.checkpoint_every or eval_every,
            enabled=context.is_main,
            extra={"identity": config.identity()},
        ),
    ]
    if log is not None and context.is_main:
        callbacks.append(RowLogger(lambda row: log(_describe(run_id, row, steps))))
    resume = None
    if _rank0_says(context, checkpoint_path.is_file() if context.is_main else False):
        resume = load_checkpoint(checkpoint_path)
        if resume.get("extra", {}).get("identity") != json.loads(json.dumps(config.identity())):
            raise ValueError(
                f"{checkpoint_path} belongs to a different configuration; delete it to restart."
            )
    result = train(
        task, optimizer, train_config, schedule=schedule, callbacks=callbacks, resume=resume
    )
    wall_time = time.perf_counter() - started
    if context.is_main:
        rows, noise = _tables(config, data, task, result, run_id)
        train_time = float(rows["train_time"].max()) if len(rows) else 0.0
        info = {
            "run_id": run_id,
            "config": config.to_dict(),
            "status": result.status[0],
            "steps": result.steps[0],
            "steps_budget": steps,
            "eval_every": eval_every,
            "data_seed": train_config.seed,
            "init_seed": _init_seed(config),
            "model": model_info,
            "data": data.info,
            "distributed": {"world_size": context.world_size, "backend": context.backend},
            "device": context.device,
            "noise_convention": _NOISE_CONVENTION if config.measure_noise else None,
            "wall_time": wall_time,
            "train_time": train_time,
            "examples_per_second": float(rows["samples"].max() / train_time)
            if train_time
            else None,
            "tokens_per_example": task.tokens_per_example,
            "resumed_from_step": None if resume is None else int(resume["loop"]["step"]),
            "provenance": provenance(),
        }
        if len(noise):
            with atomic_path(store.run_dir(run_id) / "noise.parquet") as temporary:
                noise.to_parquet(temporary, index=False)
        store.write_run(run_id, rows, info)
        if not keep_checkpoint:
            checkpoint_path.unlink(missing_ok=True)
    context.barrier()
    return run_id


_NOISE_CONVENTION = (
    "sigma_j^2 = b * unbiased variance of the token-mean gradients of the step's k micro-batches "
    "of b examples (all ranks), at the parameters of that step's row; one 'sample' = one example"
)


def _check_noise_microbatches(config: LMRunConfig, world_size: int) -> None:
    """Refuse a noise measurement that would record nothing.

    The noise estimator is the spread of the step's ``k`` full micro-batch gradients over all
    processes, so it needs ``k >= 2``; with fewer, every step would be skipped silently.
    """
    if not config.measure_noise:
        return
    per_rank = config.batch_size // world_size
    micro = config.micro_batch_size or config.batch_size
    full = max(1, per_rank // micro) if per_rank else 0
    if full * world_size < 2:
        raise ValueError(
            f"Gradient-noise measurement needs at least two micro-batches per step, but "
            f"batch_size={config.batch_size} with micro_batch_size={config.micro_batch_size} "
            f"on {world_size} process(es) gives {full * world_size}. Pass a micro-batch size "
            f"of at most {config.batch_size // (2 * world_size) or 1} (--micro-batch-size), or "
            "turn the measurement off (--no-noise, measure_noise=False)."
        )


def _rank0_says(context: DistributedContext, value: bool) -> bool:
    """Rank 0's answer to a yes/no question, on every rank (they must branch alike)."""
    flag = torch.tensor([1.0 if value else 0.0], device=context.device)
    if context.distributed:
        torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def _init_seed(config: LMRunConfig) -> int:
    return derive_seed(config.base_seed, "init", config.seed)


def _build_task(
    config: LMRunConfig, data: LMData, context: DistributedContext
) -> tuple[LanguageModelTask, dict[str, Any]]:
    from anisoada.models import build_gpt2, restrict_vocabulary

    model, model_info = build_gpt2(
        config.model, weights=config.weights, seed=_init_seed(config), dropout=config.dropout
    )
    if data.kept_tokens is not None:
        restrict_vocabulary(model, data.kept_tokens.tolist())
        model_info = {
            **model_info,
            "vocabulary": "compact",
            "vocabulary_size": int(data.kept_tokens.size),
            "n_parameters_after_restriction": sum(p.numel() for p in model.parameters()),
        }
    else:
        model_info = {**model_info, "vocabulary": "full"}
    if config.stand_in_for is not None:
        model_info["stand_in_for"] = config.stand_in_for
        model_info["note"] = (
            f"random initialisation of the {config.model!r} configuration, standing in for the "
            f"pretrained {config.stand_in_for}, which was not available locally"
        )
    task = LanguageModelTask(
        model,
        data.train,
        data.eval,
        context=context,
        eval_batch_size=config.eval_batch_size,
        noise_every=_eval_every(config, len(data.train)) if config.measure_noise else None,
        precision=config.precision,
        group_by_length=config.group_by_length,
    )
    return task, model_info


def _eval_every(config: LMRunConfig, n_train: int) -> int:
    return max(1, config.num_steps(n_train) // config.evaluations)


def _build_optimizer(config: LMRunConfig, task: LanguageModelTask) -> torch.optim.Optimizer:
    from anisoada.optim import OPTIMIZERS

    if config.optimizer.name not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer {config.optimizer.name!r}; choose one of {sorted(OPTIMIZERS)}."
        )
    return OPTIMIZERS[config.optimizer.name](
        task.parameters(), lr=float(config.lr), **dict(config.optimizer.options)
    )


def _schedule(config: LMRunConfig, steps: int) -> LRSchedule | None:
    warmup = round(config.warmup_ratio * steps)
    if config.schedule != "constant":  # a decay needs at least one step after the warm-up
        warmup = min(warmup, steps - 1)
    if config.schedule == "constant" and warmup == 0:
        return None
    return LRSchedule(
        config.schedule,
        warmup_steps=warmup,
        total_steps=None if config.schedule == "constant" else steps,
        final_ratio=config.final_lr_ratio,
    )


def _describe(run_id: str, row: Mapping[str, Any], steps: int) -> str:
    return (
        f"{run_id} step {row['step']}/{steps}: batch_loss {row['batch_loss']:.4f} "
        f"train_loss {row.get('train_loss', float('nan')):.4f} "
        f"eval_loss {row['eval_loss']:.4f} lr {row['lr']:.3g}"
    )


def _tables(
    config: LMRunConfig, data: LMData, task: LanguageModelTask, result: Any, run_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = pd.DataFrame(result.rows).drop(columns=["lane"]).rename(columns={"lr": "current_lr"})
    identity = {
        "dataset": data.info["name"],
        "optimizer": config.optimizer.label,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "lr": float(config.lr),
    }
    for position, (column, value) in enumerate(identity.items()):
        rows.insert(position, column, value)
    rows["epoch"] = rows["samples"] / len(data.train)
    noise = pd.DataFrame(task.noise.rows if task.noise is not None else [])
    if len(noise):
        whole = noise[noise["layer"] == "all"].set_index("step")
        rows["sigma_l1"] = rows["step"].map(whole["sigma_l1"])
        rows["sigma_l2"] = rows["step"].map(whole["sigma_l2"])
        noise.insert(0, "run_id", run_id)
        for column, value in identity.items():
            noise[column] = value
    else:
        rows["sigma_l1"] = np.nan
        rows["sigma_l2"] = np.nan
    rows["status"] = result.status[0]
    rows["run_id"] = run_id
    return rows, noise


@dataclasses.dataclass(frozen=True)
class LMSweepConfig:
    """Optimizers × batch sizes × a learning-rate grid per optimizer × seeds.

    Attributes:
        base: the run every point of the sweep varies (its optimizer, lr, batch size and seed
            are replaced).
        optimizers: the optimizers compared.
        batch_sizes: the effective batch sizes.
        lr_grids: per optimizer label, the learning rates tried first.
        seeds: seed indices ``0 … seeds − 1``.
        max_extensions: when the best learning rate of an (optimizer, batch size) is the
            largest or smallest tried, try the next grid value beyond it (the grid's ratio
            between neighbours), at most this many times per group.
    """

    base: LMRunConfig
    optimizers: tuple[OptimizerSpec, ...]
    batch_sizes: tuple[int, ...]
    lr_grids: tuple[tuple[str, tuple[float, ...]], ...]
    seeds: int = 1
    max_extensions: int = 2

    def __post_init__(self) -> None:
        grids = dict(self.lr_grids)
        missing = [spec.label for spec in self.optimizers if spec.label not in grids]
        if missing:
            raise ValueError(f"LMSweepConfig: no lr grid for optimizer(s) {missing}.")
        for label, grid in grids.items():
            if not grid or any(not (lr > 0 and math.isfinite(lr)) for lr in grid):
                raise ValueError(f"Invalid lr grid for {label}: {grid!r}; use positive numbers.")

    def run_config(self, optimizer: OptimizerSpec, batch_size: int, lr: float, seed: int):
        """The :class:`LMRunConfig` of one point."""
        return dataclasses.replace(
            self.base, optimizer=optimizer, batch_size=batch_size, lr=float(lr), seed=seed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base.to_dict(),
            "optimizers": [dataclasses.asdict(o) for o in self.optimizers],
            "batch_sizes": list(self.batch_sizes),
            "lr_grids": {label: list(grid) for label, grid in self.lr_grids},
            "seeds": self.seeds,
            "max_extensions": self.max_extensions,
        }


@dataclasses.dataclass(frozen=True)
class LMSweepResult:
    """Every stored row, the per-layer noise rows, the best-lr selection, and where they are.

    ``selection`` has one row per (optimizer, batch size): the :func:`select_best` columns,
    ``eval_loss`` and ``final_batch_loss`` at the best lr, ``lrs`` (the sorted learning rates
    tried, a list of floats; ``selection.parquet`` only), ``lr_min``, ``lr_max``, ``n_lrs``,
    ``extensions`` and ``at_edge``.
    """

    rows: pd.DataFrame
    noise: pd.DataFrame
    selection: pd.DataFrame
    root: Path
    wall_time: float


def run_lm_sweep(
    sweep: LMSweepConfig,
    out: str | Path,
    *,
    context: DistributedContext | None = None,
    log: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> LMSweepResult:
    """Run (or finish) a sweep into ``out`` and write ``results``/``noise``/``selection`` tables.

    For each (optimizer, batch size) the best learning rate is the one with the lowest final
    ``train_loss`` (the loss at the final parameters on a fixed training subset), averaged over
    seeds, never a diverged one (:func:`anisoada.experiments.sweep.select_best`). Runs already
    stored are reused, and an interrupted run resumes from its checkpoint.

    Args:
        sweep: the sweep.
        out: results-store root.
        context: data-parallel context; every rank runs every run together. Rank 0 alone reads
            the store and decides the grid extensions, which it broadcasts.
        log: one line per evaluation point (rank 0); must be picklable when ``jobs > 1``.
        jobs: single-process runs trained side by side in worker processes, each with
            ``cpu_count // jobs`` threads (not with a distributed context).

    Returns:
        The :class:`LMSweepResult` (on ranks other than 0 its tables are empty).
    """
    context = context or DistributedContext()
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"Invalid jobs: {jobs!r}; use an int >= 1.")
    if jobs > 1 and context.distributed:
        raise ValueError("jobs > 1 runs separate processes; under torchrun use jobs=1.")
    for batch_size in sweep.batch_sizes:  # fail before any data is read or run trained
        _check_noise_microbatches(
            dataclasses.replace(sweep.base, batch_size=batch_size), context.world_size
        )
    started = time.perf_counter()
    root = Path(out)
    store = ResultsStore(root)
    if context.is_main:
        write_json(root / "sweep.json", {"config": sweep.to_dict(), "provenance": provenance()})
    data = _LazyData(sweep.base.data)  # tokenised only if some run still has to train
    grids = dict(sweep.lr_grids)
    groups = [(o, b) for o in sweep.optimizers for b in sweep.batch_sizes]
    tried = {(o.label, b): sorted(grids[o.label]) for o, b in groups}
    extensions = dict.fromkeys(tried, 0)
    run_ids: list[str] = []
    pending = [(o, b, lr) for o, b in groups for lr in tried[(o.label, b)]]
    while pending:
        configs = [
            sweep.run_config(optimizer, batch_size, lr, seed)
            for optimizer, batch_size, lr in pending
            for seed in range(sweep.seeds)
        ]
        run_ids += _run_all(configs, root, context, data, log, jobs)
        pending = []
        if context.is_main:
            selection = select_best(_read_rows(store, run_ids))
            for record in selection.to_dict("records"):
                key = (record["optimizer"], record["batch_size"])
                new = _extension(record["best_lr"], tried[key], extensions[key], sweep)
                if new is not None:
                    extensions[key] += 1
                    tried[key] = sorted([*tried[key], new])
                    spec = next(o for o in sweep.optimizers if o.label == key[0])
                    pending.append((spec, key[1], new))
        pending = context.broadcast_object(pending)
    if not context.is_main:
        context.barrier()
        return LMSweepResult(
            pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), root, time.perf_counter() - started
        )
    rows = _read_rows(store, run_ids)
    noise = _read_noise(store, run_ids)
    selection = _selection_table(rows, tried, extensions)
    store.write_table("results", rows)
    store.write_table("noise", noise)
    store.write_table("selection", selection)
    # CSV cells hold one number each: the tried grid is summarised by lr_min, lr_max, n_lrs.
    with atomic_path(root / "selection.csv") as temporary:
        selection.drop(columns="lrs").to_csv(temporary, index=False)
    context.barrier()
    return LMSweepResult(rows, noise, selection, root, time.perf_counter() - started)


def _extension(
    best_lr: float, lrs: Sequence[float], done: int, sweep: LMSweepConfig
) -> float | None:
    """The learning rate to add when the best one is the smallest or largest tried."""
    if done >= sweep.max_extensions or len(lrs) < 2:
        return None
    if math.isnan(best_lr) or best_lr == lrs[0]:
        return lrs[0] * lrs[0] / lrs[1]
    if best_lr == lrs[-1]:
        return lrs[-1] * lrs[-1] / lrs[-2]
    return None


class _LazyData:
    """The sweep's data, prepared on first use: re-running a stored sweep tokenises nothing."""

    def __init__(self, spec: LMDataSpec) -> None:
        self.spec = spec
        self._data: LMData | None = None

    def get(self) -> LMData:
        if self._data is None:
            self._data = prepare_lm_data(self.spec)
        return self._data


def _run_all(
    configs: Sequence[LMRunConfig],
    root: Path,
    context: DistributedContext,
    data: _LazyData,
    log: Callable[[str], None] | None,
    jobs: int,
) -> list[str]:
    store = ResultsStore(root)
    # Rank 0 decides what is left, so that every rank prepares the data (or not) alike.
    todo = [c.run_id for c in configs if not store.is_complete(c.run_id)] if context.is_main else []
    todo = set(context.broadcast_object(todo))
    pending = [c for c in configs if c.run_id in todo]
    if jobs == 1 or len(pending) <= 1:
        for config in pending:
            run_lm(config, root, context=context, data=data.get(), log=log)
        return [config.run_id for config in configs]
    import concurrent.futures
    import multiprocessing
    import os

    prepared = data.get()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=torch.set_num_threads,
        initargs=(threads,),
    ) as pool:
        futures = [pool.submit(run_lm, config, root, data=prepared, log=log) for config in pending]
        for future in futures:
            future.result()
    return [config.run_id for config in configs]


def _read_rows(store: ResultsStore, run_ids: Sequence[str]) -> pd.DataFrame:
    rows = store.read_rows(dict.fromkeys(run_ids))
    if rows.empty:
        return rows
    return rows.sort_values(["optimizer", "batch_size", "lr", "seed", "step"]).reset_index(
        drop=True
    )


def _read_noise(store: ResultsStore, run_ids: Sequence[str]) -> pd.DataFrame:
    frames = [
        pd.read_parquet(store.run_dir(run_id) / "noise.parquet")
        for run_id in dict.fromkeys(run_ids)
        if (store.run_dir(run_id) / "noise.parquet").is_file()
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _selection_table(
    rows: pd.DataFrame,
    tried: Mapping[tuple[str, int], Sequence[float]],
    extensions: Mapping[tuple[str, int], int],
) -> pd.DataFrame:
    selection = select_best(rows)
    finals = rows.sort_values("step").groupby(["optimizer", "batch_size", "lr", "seed"]).tail(1)
    eval_losses = finals.groupby(["optimizer", "batch_size", "lr"])["eval_loss"].mean()
    batch_losses = finals.groupby(["optimizer", "batch_size", "lr"])["batch_loss"].mean()
    selection["eval_loss"] = [
        eval_losses.get((r.optimizer, r.batch_size, r.best_lr), np.nan)
        for r in selection.itertuples()
    ]
    selection["final_batch_loss"] = [
        batch_losses.get((r.optimizer, r.batch_size, r.best_lr), np.nan)
        for r in selection.itertuples()
    ]
    grids = [sorted(tried[(r.optimizer, r.batch_size)]) for r in selection.itertuples()]
    selection["lrs"] = [[float(lr) for lr in grid] for grid in grids]
    selection["lr_min"] = [float(grid[0]) for grid in grids]
    selection["lr_max"] = [float(grid[-1]) for grid in grids]
    selection["n_lrs"] = [len(grid) for grid in grids]
    selection["extensions"] = [
        extensions[(r.optimizer, r.batch_size)] for r in selection.itertuples()
    ]
    selection["at_edge"] = [
        bool(
            np.isnan(r.best_lr)
            or r.best_lr
            in (min(tried[(r.optimizer, r.batch_size)]), max(tried[(r.optimizer, r.batch_size)]))
        )
        for r in selection.itertuples()
    ]
    return selection
