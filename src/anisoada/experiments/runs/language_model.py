"""GPT-2 instruction tuning as a run kind of the one sweep: its problem spec and its run.

An :class:`LMSpec` names the instruction data (:class:`anisoada.data.LMDataSpec`), the model and
how a run trains (micro-batching, schedule, precision, noise measurement); :class:`LMRun` is one
(optimizer, learning rate, batch size, seed) of it. A run's id is a hash of everything that
determines its results, so a sweep re-run skips finished runs, and an interrupted run continues
from its checkpoint (model, optimizer state, loop state with the RNG, and the data position,
which is the step index). The training itself is the one loop, :func:`anisoada.train.train`,
with :class:`~anisoada.experiments.tasks.LanguageModelTask`; under ``torchrun`` every process
trains each run together (data parallel) and only rank 0 writes.

Stored per run, in the :class:`~anisoada.experiments.ResultsStore` layout: ``rows.parquet`` (one
row per evaluation point: identity columns ``dataset, optimizer, batch_size, seed, lr``, then
``step, samples, epoch, current_lr, batch_loss, train_loss, eval_loss, sigma_l1, sigma_l2,
status, run_id``), ``noise.parquet`` (per-layer ``‖σ‖_1``, ``‖σ‖_2`` at measured steps) and
``run.json`` (identity, model and data provenance, timing, versions).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from anisoada._io import atomic_path
from anisoada.data.instructions import LMData, LMDataSpec, prepare_lm_data
from anisoada.experiments.optimizers import OptimizerSpec, build_optimizer
from anisoada.experiments.runs.base import (
    ProblemSpecBase,
    Resources,
    RunClock,
    RunSettings,
    derive_seed,
    identity_hash,
    run_record,
    run_rows,
    settings_identity,
    spec_from_table,
    thread_policy,
)
from anisoada.experiments.store import ResultsStore
from anisoada.experiments.tasks.language_model import LanguageModelTask
from anisoada.problems.language_model import PRECISIONS
from anisoada.train import (
    SCHEDULE_KINDS,
    Budget,
    Checkpointer,
    DistributedContext,
    LRSchedule,
    RowLogger,
    TrainConfig,
    load_checkpoint,
    train,
)

__all__ = ["NOISE_CONVENTION", "LMRun", "LMSpec", "prepared_lm_data"]

#: How ``sigma_l1``/``sigma_l2`` and ``noise.parquet`` are estimated during training.
NOISE_CONVENTION = (
    "sigma_j^2 = b * unbiased variance of the token-mean gradients of the step's k micro-batches "
    "of b examples (all ranks), at the parameters of that step's row; one 'sample' = one example"
)

# Spec fields that do not change the results (beyond float rounding): not in the run id.
# ``stand_in_for`` only labels a random initialisation. ``micro_batch_size`` is in the id of runs
# that measure the noise: the estimate is built from the step's micro-batches.
_NOT_IDENTITY = (
    "name",
    "micro_batch_size",
    "checkpoint_every",
    "eval_batch_size",
    "group_by_length",
    "stand_in_for",
    "device",
)
_DEVICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=2)
def prepared_lm_data(spec: LMDataSpec) -> LMData:
    """:func:`anisoada.data.prepare_lm_data`, once per process (every run of a sweep shares it)."""
    return prepare_lm_data(spec)


@dataclasses.dataclass(frozen=True)
class LMSpec(ProblemSpecBase["LMRun"]):
    """Instruction tuning of a GPT-2: the data, the model and how each run trains.

    Attributes:
        data: the :class:`~anisoada.data.LMDataSpec`.
        model: GPT-2 preset (``"tiny"``, ``"gpt2"``).
        weights: ``None`` (random init), a directory, or a Hugging Face id in the local cache
            (see :func:`anisoada.models.build_gpt2`).
        stand_in_for: with ``weights=None``, the pretrained weights this random initialisation
            stands in for because they were not available locally; recorded in ``run.json``
            and shown in the outputs (not part of the run id).
        name: label in results tables (default: the data's name).
        noise_microbatches: instead of a fixed micro-batch size, split every step into this many
            micro-batches over all processes (``k``, the noise estimator's sample count), the
            same at every batch size. The estimate of ``ρ_σ = ‖σ‖₁/(√d‖σ‖₂)`` from ``k``
            micro-batches is biased low by a factor that depends on ``k`` (≈ c4(k), 0.92 at
            k = 4 and 0.965 at k = 8 for Gaussian gradients), so comparing batch sizes needs
            the same ``k``.
        micro_batch_size: examples per forward/backward on each process (``None``: the whole
            per-process share of a step). A memory knob for the training itself; but the
            noise estimate is built from the step's micro-batches, so runs that measure noise
            need at least two of them per step (over all processes) and carry the size in
            their run id.
        schedule: ``"constant"``, ``"linear"`` or ``"cosine"`` decay.
        warmup_ratio: fraction of the steps spent in linear warm-up.
        final_lr_ratio: the decayed schedules end at ``final_lr_ratio · lr``.
        clip_norm: clip the global gradient norm (``None``: off).
        measure_noise: measure per-layer gradient noise at each evaluation step (needs at least
            two full micro-batches per step).
        checkpoint_every: steps between checkpoints (``None``: at each evaluation).
        precision: ``"fp32"`` or ``"bf16"`` (autocast).
        eval_batch_size: examples per forward pass in evaluation.
        dropout: overrides the preset's dropout (0 by default).
        group_by_length: similar lengths share a micro-batch within each step (less padding;
            the step's gradient is unchanged but for float rounding).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"`` for single-process
            runs (under ``torchrun`` each rank uses its own GPU).
    """

    kind: ClassVar[str] = "lm"
    lanes: ClassVar[bool] = False
    extra_tables: ClassVar[tuple[str, ...]] = ("noise",)
    distributed: ClassVar[bool] = True

    data: LMDataSpec = dataclasses.field(default_factory=LMDataSpec)
    model: str = "tiny"
    weights: str | None = None
    stand_in_for: str | None = None
    name: str = ""
    micro_batch_size: int | None = None
    noise_microbatches: int | None = None
    schedule: str = "constant"
    warmup_ratio: float = 0.0
    final_lr_ratio: float = 0.0
    clip_norm: float | None = None
    measure_noise: bool = True
    checkpoint_every: int | None = None
    precision: str = "fp32"
    eval_batch_size: int = 32
    dropout: float | None = None
    group_by_length: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        from anisoada.models import GPT2_PRESETS

        if not isinstance(self.data, LMDataSpec):
            raise ValueError(f"LMSpec.data must be an LMDataSpec; got {self.data!r}")
        if not self.name:
            object.__setattr__(self, "name", self.data.name)
        if self.model not in GPT2_PRESETS:
            raise ValueError(f"Invalid model {self.model!r}; use one of {sorted(GPT2_PRESETS)}.")
        positions = GPT2_PRESETS[self.model].n_positions
        if self.data.max_length > positions:
            raise ValueError(
                f"sequence length {self.data.max_length} (--max-length, max_length in a sweep "
                f"file) exceeds the {self.model!r} model's {positions} positions; use "
                f"--max-length {positions} or less"
            )
        micro = self.micro_batch_size
        if micro is not None and (
            isinstance(micro, bool) or not isinstance(micro, int) or micro < 1
        ):
            raise ValueError(f"Invalid micro_batch_size: {micro!r}; use an int >= 1.")
        k = self.noise_microbatches
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 2):
            raise ValueError(f"Invalid noise_microbatches: {k!r}; use an int >= 2.")
        if k is not None and micro is not None:
            raise ValueError("give micro_batch_size or noise_microbatches, not both")
        if self.stand_in_for is not None and self.weights is not None:
            raise ValueError(
                f"Invalid stand_in_for={self.stand_in_for!r}: it labels a random "
                f"initialisation, but weights={self.weights!r} are loaded; drop one of them."
            )
        if self.schedule not in SCHEDULE_KINDS:
            raise ValueError(f"Invalid schedule: {self.schedule!r}; use one of {SCHEDULE_KINDS}.")
        for field in ("warmup_ratio", "final_lr_ratio"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise ValueError(f"Invalid {field}: {value!r}; use a number in [0, 1).")
        if self.clip_norm is not None and not (
            isinstance(self.clip_norm, int | float) and self.clip_norm > 0
        ):
            raise ValueError(f"Invalid clip_norm: {self.clip_norm!r}; use a positive number.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"Invalid precision: {self.precision!r}; use one of {PRECISIONS}.")
        if isinstance(self.eval_batch_size, bool) or not isinstance(self.eval_batch_size, int):
            raise ValueError(f"Invalid eval_batch_size: {self.eval_batch_size!r}; use an int.")
        if self.eval_batch_size < 1:
            raise ValueError(f"Invalid eval_batch_size: {self.eval_batch_size!r}; use an int >= 1.")
        every = self.checkpoint_every
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every < 1
        ):
            raise ValueError(f"Invalid checkpoint_every: {every!r}; use an int >= 1.")
        if not isinstance(self.measure_noise, bool) or not isinstance(self.group_by_length, bool):
            raise ValueError("measure_noise and group_by_length must be true or false")
        if self.device not in _DEVICES:
            raise ValueError(f"Invalid device: {self.device!r}; use one of {_DEVICES}.")

    @property
    def stream_key(self) -> str:
        return self.data.name

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML form of the spec (a ``[[problems]]`` table without its ``kind``)."""
        payload = dataclasses.asdict(self)
        payload["data"] = self.data.to_dict()
        return payload

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> LMSpec:
        """Inverse of :meth:`to_dict`: a ``[[problems]]`` table with ``kind = "lm"``."""
        fields = dict(table)
        data = fields.pop("data", {})
        if not isinstance(data, dict):
            raise ValueError(f"{where}: data must be a table; got {data!r}")
        return spec_from_table(
            cls, {**fields, "data": spec_from_table(LMDataSpec, data, f"{where}.data")}, where
        )

    def stand_in(self) -> str | None:
        """How this setting differs from the paper's (pretrained GPT-2 124M on Alpaca)."""
        notes = []
        if self.model != "gpt2":
            state = "a pretrained" if self.weights else "a randomly initialised"
            notes.append(f"{state} '{self.model}' GPT-2, not the pretrained 124M model")
        elif self.weights is None:
            notes.append("a randomly initialised GPT-2 124M, not the pretrained one")
        if self.data.source == "synthetic":
            notes.append("synthetic instructions, not Stanford Alpaca")
        if self.data.vocabulary == "compact":
            notes.append(
                "a softmax over the tokens the data uses only (compact vocabulary), "
                "not GPT-2's 50,257"
            )
        return "; ".join(notes) or None

    def reference_loss(self) -> float | None:
        """Unknown for a language model: the verdicts compare losses."""
        return None

    def validate(
        self, optimizers: Sequence[OptimizerSpec], batch_sizes: Sequence[int], settings: RunSettings
    ) -> None:
        """Refuse before any data is read: too few noise micro-batches, budgets under a step."""
        for batch_size in batch_sizes:
            self.check_noise_microbatches(batch_size, world_size=1)
            if settings.budget.epochs is None:
                settings.budget.num_steps(batch_size)

    def micro_size(self, batch_size: int, world_size: int = 1) -> int | None:
        """Examples per micro-batch on each process at ``batch_size`` (``None``: no split)."""
        if self.noise_microbatches is None:
            return self.micro_batch_size
        return max(1, -(-batch_size // (self.noise_microbatches * world_size)))

    def check_noise_microbatches(self, batch_size: int, world_size: int) -> None:
        """Refuse a noise measurement that would record nothing.

        The noise estimator is the spread of the step's ``k`` full micro-batch gradients over
        all processes, so it needs ``k >= 2``; with fewer, every step would be skipped silently.
        """
        if not self.measure_noise:
            return
        per_rank = batch_size // world_size
        micro = self.micro_size(batch_size, world_size) or batch_size
        full = max(1, per_rank // micro) if per_rank else 0
        if full * world_size < 2:
            given = self.micro_size(batch_size, world_size)
            shown = "the whole batch" if given is None else str(given)
            raise ValueError(
                f"gradient-noise measurement needs at least two micro-batches per step, but "
                f"batch size {batch_size} with micro-batch size {shown} on "
                f"{world_size} process(es) gives {full * world_size}; give a micro-batch size "
                f"of at most {batch_size // (2 * world_size) or 1} (--micro-batch-size), or "
                "turn the noise measurement off (--no-noise)"
            )

    def _run_class(self) -> type[LMRun]:
        return LMRun


@dataclasses.dataclass(frozen=True)
class LMRun:
    """One instruction-tuning run: (spec, optimizer, lr, batch size, seed) at the sweep's budget."""

    problem: LMSpec
    optimizer: OptimizerSpec
    batch_size: int
    seed: int
    lrs: tuple[float, ...]
    settings: RunSettings

    @property
    def lr(self) -> float:
        """The run's peak learning rate (the schedule multiplies it)."""
        return self.lrs[0]

    def identity(self) -> dict[str, Any]:
        """The fields that determine the results: all but the memory and I/O knobs, which
        change results by float rounding at most. A run stored or checkpointed with
        micro-batches of 8 is thus found, and continued, with 4 — unless it measures the
        gradient noise, whose estimate is the spread of the step's micro-batch gradients: then
        the micro-batch size is part of the identity, and a checkpoint of another size is
        refused rather than mixed."""
        spec = self.problem.to_dict()
        for name in _NOT_IDENTITY:
            if name == "micro_batch_size" and self.problem.measure_noise:
                # noise_microbatches is always in the identity (it is never a memory knob).
                continue
            spec.pop(name)
        from anisoada.models import GPT2_PRESETS

        return {
            "kind": self.problem.kind,
            "spec": spec,
            # e.g. the activation's kernel: numbers that change while the preset's name does not
            "architecture": GPT2_PRESETS[self.problem.model].identity(),
            "optimizer": self.optimizer.identity(),
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            **settings_identity(self.settings),
        }

    @property
    def run_id(self) -> str:
        """Readable prefix plus a hash of :meth:`identity`."""
        digest = identity_hash(self.identity(), length=10)
        return f"{self.optimizer.label}-b{self.batch_size}-lr{self.lr:.3g}-s{self.seed}-{digest}"

    @property
    def resources(self) -> Resources:
        gpu = self.problem.device == "cuda" or (
            self.problem.device == "auto" and torch.cuda.is_available()
        )
        return Resources(num_cpus=1.0, num_gpus=1.0 if gpu else 0.0)

    @property
    def init_seed(self) -> int:
        """Seed of the model's initialisation (shared by every run of the seed index)."""
        return derive_seed(self.settings.base_seed, "init", self.seed)

    @property
    def data_seed(self) -> int:
        """Seed of the data order (shared by every optimizer and lr at the batch size)."""
        return derive_seed(
            self.settings.base_seed, self.problem.stream_key, self.batch_size, self.seed
        )

    def num_steps(self, n_train: int) -> int:
        """Optimizer steps of the run on a training set of ``n_train`` examples."""
        return self.settings.budget.num_steps(self.batch_size, n_train)

    def execute(
        self,
        root: Path,
        *,
        context: DistributedContext | None = None,
        log: Callable[[str], None] | None = None,
        keep_checkpoint: bool = False,
        data: LMData | None = None,
    ) -> None:
        """Train the run (or finish it from its checkpoint) and store it under ``root``.

        Args:
            root: the results-store root; the run lives in ``root/runs/<run_id>/``.
            context: this process's place in a data-parallel run (default: one process on
                the spec's device).
            log: called with one line per evaluation point (rank 0 only).
            keep_checkpoint: keep ``checkpoint.pt`` after the run completes (it is deleted by
                default: ``run.json`` marks the run complete, and a 124M-parameter AdaGrad
                checkpoint is 1.5 GB).
            data: the prepared data of ``problem.data`` (default: prepared here, once per
                process).
        """
        from anisoada.models import GPT2_PRESETS

        context = context or _single_process(self.problem.device)
        # A small model trains on one CPU thread wherever it runs (GPT2Preset.single_threaded).
        one_thread = GPT2_PRESETS[self.problem.model].single_threaded and context.device == "cpu"
        with thread_policy("torch" if one_thread else "any"):
            self._execute(root, context, log, keep_checkpoint, data)

    def _execute(
        self,
        root: Path,
        context: DistributedContext,
        log: Callable[[str], None] | None,
        keep_checkpoint: bool,
        data: LMData | None,
    ) -> None:
        self.problem.check_noise_microbatches(self.batch_size, context.world_size)
        store = ResultsStore(root)
        run_id = self.run_id
        if _rank0_says(context, store.is_complete(run_id) if context.is_main else False):
            return
        started = RunClock()
        data = data if data is not None else prepared_lm_data(self.problem.data)
        n_train = len(data.train)
        steps = self.num_steps(n_train)
        eval_every, eval_from = self.settings.evaluation_steps(steps)
        task, model_info = self._build_task(data, context, eval_every)
        optimizer = build_optimizer(self.optimizer, task.parameters(), self.lr)
        budget = self.settings.budget
        train_config = TrainConfig(
            batch_size=self.batch_size,
            budget=budget if budget.epochs is None else Budget(samples=budget.samples_for(n_train)),
            micro_batch_size=self.problem.micro_size(self.batch_size, context.world_size),
            seed=self.data_seed,
            eval_every=eval_every,
            eval_from=eval_from,
            clip_norm=self.problem.clip_norm,
            divergence_factor=self.settings.divergence_factor,
        )
        checkpoint_path = store.run_dir(run_id) / "checkpoint.pt"
        callbacks = [
            *task.callbacks(),
            Checkpointer(
                checkpoint_path,
                every=self.problem.checkpoint_every or eval_every,
                enabled=context.is_main,
                extra={"identity": self.identity()},
            ),
        ]
        if log is not None and context.is_main:
            callbacks.append(RowLogger(lambda row: log(_describe(run_id, row, steps))))
        resume = None
        if _rank0_says(context, checkpoint_path.is_file() if context.is_main else False):
            resume = load_checkpoint(checkpoint_path)
            if resume.get("extra", {}).get("identity") != json.loads(json.dumps(self.identity())):
                raise ValueError(
                    f"{checkpoint_path} belongs to a different configuration; delete it to "
                    "restart the run."
                )
        result = train(
            task,
            optimizer,
            train_config,
            schedule=self._schedule(steps),
            callbacks=callbacks,
            resume=resume,
        )
        if context.is_main:
            rows, noise = self._tables(data, task, result, run_id)
            train_time = float(rows["train_time"].max()) if len(rows) else 0.0
            info = run_record(
                self,
                started,
                result,
                spec=self.problem.to_dict(),
                steps_budget=steps,
                eval_every=eval_every,
                data_seed=self.data_seed,
                init_seed=self.init_seed,
                model=model_info,
                data=data.info,
                distributed={"world_size": context.world_size, "backend": context.backend},
                device=context.device,
                noise_convention=NOISE_CONVENTION if self.problem.measure_noise else None,
                train_time=train_time,
                examples_per_second=float(rows["samples"].max() / train_time)
                if train_time
                else None,
                tokens_per_example=task.tokens_per_example,
                resumed_from_step=None if resume is None else int(resume["loop"]["step"]),
            )
            if len(noise):
                with atomic_path(store.run_dir(run_id) / "noise.parquet") as temporary:
                    noise.to_parquet(temporary, index=False)
            if not keep_checkpoint:
                # Before run.json marks the run complete: a kill in between redoes the run
                # instead of leaving a checkpoint beside a complete run for ever.
                checkpoint_path.unlink(missing_ok=True)
            store.write_run(run_id, rows, info)
        context.barrier()

    def _build_task(
        self, data: LMData, context: DistributedContext, eval_every: int
    ) -> tuple[LanguageModelTask, dict[str, Any]]:
        from anisoada.data.instructions import compact_vocabulary
        from anisoada.models import build_gpt2, restrict_vocabulary

        spec = self.problem
        used_tokens = None
        model, model_info = build_gpt2(
            spec.model, weights=spec.weights, seed=self.init_seed, dropout=spec.dropout
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
            # The tokens the data uses: train_loss_unused measures the mass on all the others.
            used_tokens, _ = compact_vocabulary(data.train, data.eval)
        if spec.stand_in_for is not None:
            model_info["stand_in_for"] = spec.stand_in_for
            model_info["note"] = (
                f"random initialisation of the {spec.model!r} configuration, standing in for "
                f"the pretrained {spec.stand_in_for}, which was not available locally"
            )
        task = LanguageModelTask(
            model,
            data.train,
            data.eval,
            context=context,
            eval_batch_size=spec.eval_batch_size,
            noise_every=eval_every if spec.measure_noise else None,
            precision=spec.precision,
            group_by_length=spec.group_by_length,
            used_tokens=used_tokens if data.kept_tokens is None else None,
        )
        return task, model_info

    def _schedule(self, steps: int) -> LRSchedule | None:
        spec = self.problem
        warmup = round(spec.warmup_ratio * steps)
        if spec.schedule != "constant":  # a decay needs at least one step after the warm-up
            warmup = min(warmup, steps - 1)
        if spec.schedule == "constant" and warmup == 0:
            return None
        return LRSchedule(
            spec.schedule,
            warmup_steps=warmup,
            total_steps=None if spec.schedule == "constant" else steps,
            final_ratio=spec.final_lr_ratio,
        )

    def _tables(
        self, data: LMData, task: LanguageModelTask, result: Any, run_id: str
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        noise = pd.DataFrame(task.noise.rows if task.noise is not None else [])
        samples = np.array([row["samples"] for row in result.rows])
        steps = pd.Series([row["step"] for row in result.rows])
        extra: dict[str, Any] = {"epoch": samples / len(data.train)}
        if len(noise):
            whole = noise[noise["layer"] == "all"].set_index("step")
            extra["sigma_l1"] = steps.map(whole["sigma_l1"]).to_numpy()
            extra["sigma_l2"] = steps.map(whole["sigma_l2"]).to_numpy()
            noise.insert(0, "run_id", run_id)
            for column, value in (
                ("dataset", self.problem.name),
                ("optimizer", self.optimizer.label),
                ("batch_size", self.batch_size),
                ("seed", self.seed),
                ("lr", self.lr),
            ):
                noise[column] = value
        else:
            extra["sigma_l1"] = extra["sigma_l2"] = np.full(samples.size, np.nan)
        return run_rows(self, result, scheduled_lr=True, extra=extra), noise


def _single_process(device: str) -> DistributedContext:
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available; use auto or cpu")
    return DistributedContext(device="cuda:0" if use_cuda else "cpu")


def _rank0_says(context: DistributedContext, value: bool) -> bool:
    """Rank 0's answer to a yes/no question, on every rank (they must branch alike)."""
    flag = torch.tensor([1.0 if value else 0.0], device=context.device)
    if context.distributed:
        torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def _describe(run_id: str, row: Mapping[str, Any], steps: int) -> str:
    return (
        f"{run_id} step {row['step']}/{steps}: batch_loss {row['batch_loss']:.4f} "
        f"train_loss {row.get('train_loss', math.nan):.4f} "
        f"eval_loss {row['eval_loss']:.4f} lr {row['lr']:.3g}"
    )
