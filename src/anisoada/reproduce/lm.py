"""Reproduction of the paper's nonconvex evidence: GPT-2 instruction tuning, SGD vs AdaGrad.

``anisoada reproduce lm --preset quick|paper --out DIR`` (or, for data parallelism,
``torchrun --nproc_per_node=N -m anisoada reproduce lm --preset paper --out DIR``) runs, into
``DIR``:

1. a sweep (:func:`anisoada.experiments.run_sweep` of an :class:`~anisoada.experiments.LMSpec`)
   of SGD and AdaGrad at the effective batch sizes 256 and 512, each optimizer's learning rate
   tuned per batch size by final training loss (grid extended by one step when the best value
   is at an edge), at the same sample budget for both batch sizes (``DIR/sweep/``);
2. Table 4: final training and held-out loss of the tuned runs, with the measured gradient-noise
   anisotropy ``ρ_σ = ‖σ‖_1 / (√d ‖σ‖_2)`` (``DIR/table4.csv``).

Figure 2 (the training-loss curves of the tuned runs) is drawn by the report from the stored
rows.

Presets:

``quick`` (CPU, about 70 s on two cores, ≈ 120 s of CPU): the ``tiny`` GPT-2 (2 layers,
width 64) trained from a random initialisation on the data layer's synthetic instructions (4096
training, 256 held-out examples, the short prompt template, ≈ 32 tokens per example), with the
compact vocabulary (the ≈1.8k tokens the data uses), batches 256 and 512 at a budget of 8,192
examples (2 epochs: 32 steps at batch 256, 16 at 512), cosine decay after a 5% warm-up,
learning-rate grids of three values per optimizer (half a decade apart) plus up to two
extensions of one value at an edge, 2 seeds (rates tuned on the first; see :data:`QUICK`),
then the vocabulary audit (:func:`vocabulary_audit_config`). It stands in for the paper's
setting at a size a laptop trains in minutes; its numbers are not the paper's.

``paper`` (GPUs): GPT-2 124M from the pretrained weights (a directory given by
``ANISOADA_GPT2_WEIGHTS``, else ``openai-community/gpt2`` in the local Hugging Face cache;
nothing is downloaded). When neither is available the runs start from a seeded random
initialisation of the same 124M configuration instead: a warning says so, ``run.json`` records
``source: random_init`` with ``stand_in_for`` naming the missing weights, and Table 4 and
Figure 2 are labelled as a stand-in. Stanford Alpaca (``alpaca_data.json``, 52,002 records,
found as ``$ANISOADA_DATA/alpaca/alpaca_data.json`` or given by ``ANISOADA_ALPACA``), 1,000
held out, sequences up to 512 tokens, 3 epochs, cosine
schedule with 3% warm-up (the Stanford Alpaca recipe, with the optimizer swapped), bf16 autocast
on CUDA, micro-batches of 16 per device. The paper's exact schedule and grids are not published
in what we could read; these are our choices, recorded in ``sweep.json``.
Cost, from arithmetic (not run here: this project's machines have no GPU): an Alpaca example
is ≈ 107 tokens with its prompt (measured on the 9k-record random subset in shared/data), so 3
epochs of the 51k training examples are ≈ 16.5M tokens per run; at ``6 × 124M`` FLOPs per
token that is ≈ 1.2 × 10^16 FLOPs, 1.5–2 minutes on one H100 at a realistic 100–150 TFLOP/s
for a model this small (``group_by_length`` keeps padding low). The sweep is 2 optimizers ×
2 batch sizes × 4 learning rates (+ up to 2 extensions each) ≈ 16–24 runs on the tuning seed,
plus 4 confirmation runs per further seed (3 seeds: 8 more) ≈ 24–32 runs: ≈ 40–65 minutes on
one H100, a few minutes on 8. Memory per GPU: weights, gradients and AdaGrad's accumulator
≈ 1.5 GB in fp32; activations of a 16 × 512 micro-batch under bf16 ≈ 6–8 GB at most; the noise
monitor ≈ 2.5 GB more during measured steps: ≈ 12 GB, so a 16 GB GPU fits (lower
``micro_batch_size`` otherwise; it does not change the results).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from anisoada.data.instructions import LMDataSpec
from anisoada.experiments import LMSpec, LRGrid, OptimizerSpec, SweepConfig, run_sweep
from anisoada.reproduce import Reproduction, ReproductionOutput, finish_target, write_csv
from anisoada.reproduce._pool import WarmPool
from anisoada.schema import files
from anisoada.train import Budget, DistributedContext, init_distributed, shutdown_distributed

__all__ = [
    "QUICK",
    "REPRODUCTION",
    "lm_table",
    "paper_config",
    "run_lm_reproduction",
    "vocabulary_audit_config",
    "vocabulary_audit_table",
]


def _optimizers(grids: dict[str, LRGrid]) -> tuple[OptimizerSpec, ...]:
    return tuple(OptimizerSpec.create(name, lr_grid=grids[name]) for name in ("sgd", "adagrad"))


def _grid(low: float, high: float) -> LRGrid:
    """Half-decade lattice points in [low, high]; an extension adds one more point."""
    return LRGrid(low=low, high=high, per_decade=2, max_extensions=2, extension_points=1)


def _sweep(
    name: str,
    problem: LMSpec,
    grids: dict[str, LRGrid],
    budget: Budget,
    *,
    evaluations: int,
    seeds: int,
) -> SweepConfig:
    """A preset's sweep: SGD and AdaGrad at batch sizes 256 and 512, the learning rates tuned
    on the first seed and confirmed at the others, a run diverged once its mini-batch loss
    exceeds 3× its first."""
    return SweepConfig(
        name=name,
        problems=(problem,),
        optimizers=_optimizers(grids),
        batch_sizes=(256, 512),
        budget=budget,
        evaluations=evaluations,
        divergence_factor=3.0,
        seeds=seeds,
        tuning_seeds=1,
    )


#: The ``quick`` preset: tiny GPT-2, synthetic instructions, CPU-sized. Two seeds: the learning
#: rates are tuned on seed 0 and confirmed at seed 1 (``tuning_seeds=1``), which keeps the demo
#: within minutes; every step is split into k = 4 micro-batches at both batch sizes, so the
#: noise anisotropy is estimated alike at 256 and 512.
QUICK = _sweep(
    "lm-quick",
    LMSpec(
        data=LMDataSpec(
            source="synthetic",
            n_train=4096,
            n_eval=256,
            max_length=128,
            vocabulary="compact",
            template="short",
        ),
        model="tiny",
        noise_microbatches=4,
        schedule="cosine",
        warmup_ratio=0.05,
        measure_noise=True,
        group_by_length=True,
    ),
    {"sgd": _grid(0.1, 1.0), "adagrad": _grid(0.01, 0.1)},
    Budget(samples=8192),
    evaluations=8,
    seeds=2,
)


def paper_config(
    alpaca: str | os.PathLike[str] | None = None, weights: str | None = None
) -> SweepConfig:
    """The ``paper`` preset (see the module docstring), with the Alpaca file and GPT-2 weights.

    Args:
        alpaca: the Alpaca JSON file; default ``$ANISOADA_ALPACA``, else
            ``<data home>/alpaca/alpaca_data.json`` (:func:`anisoada.data.data_home`:
            ``$ANISOADA_DATA``, else the per-user cache).
        weights: GPT-2 124M weights (directory or cached hub id); default
            ``$ANISOADA_GPT2_WEIGHTS``. Weights named here or there must exist (building the
            model fails otherwise). With neither, ``openai-community/gpt2`` is used when it is
            in the local Hugging Face cache; when it is not, the runs start from a random
            initialisation of the GPT-2 124M configuration (``weights=None``,
            ``stand_in_for="openai-community/gpt2"``) and a warning says so.

    Raises:
        FileNotFoundError: no Alpaca file; the message says where to put it.
    """
    from anisoada.data import alpaca_path
    from anisoada.models import GPT2_PRESETS, find_local_weights, weights_from_environment

    path = Path(alpaca) if alpaca else alpaca_path()
    if not path.expanduser().is_file():
        raise FileNotFoundError(
            f"The paper preset needs Stanford Alpaca's alpaca_data.json (52,002 records) at "
            f"{path}: download it from github.com/tatsu-lab/stanford_alpaca and put it there, "
            "or set ANISOADA_ALPACA to its path."
        )
    weights = weights or weights_from_environment()
    stand_in_for = None
    if weights is None:
        hub_name = GPT2_PRESETS["gpt2"].hub_name
        assert hub_name is not None  # the gpt2 preset names its pretrained weights
        if find_local_weights(hub_name, "gpt2") is not None:
            weights = hub_name
        else:
            stand_in_for = hub_name
            warnings.warn(
                f"Pretrained GPT-2 weights ({hub_name}) are not in the local Hugging Face cache "
                "and ANISOADA_GPT2_WEIGHTS is not set: the paper preset starts from a RANDOM "
                "initialisation of the GPT-2 124M configuration instead, and its outputs are "
                f"labelled as a stand-in. Run `huggingface-cli download {hub_name}` (or set "
                "ANISOADA_GPT2_WEIGHTS to a save_pretrained directory) to fine-tune the "
                "pretrained model as the paper does.",
                stacklevel=2,
            )
    spec = LMSpec(
        data=LMDataSpec(
            source=str(path.expanduser()),
            n_train=None,
            n_eval=1000,
            max_length=512,
            vocabulary="full",
        ),
        model="gpt2",
        weights=weights,
        stand_in_for=stand_in_for,
        noise_microbatches=16,
        schedule="cosine",
        warmup_ratio=0.03,
        measure_noise=True,
        precision="bf16",
        eval_batch_size=32,
        group_by_length=True,
    )
    grids = {"sgd": _grid(0.03, 1.0), "adagrad": _grid(1e-4, 3.2e-3)}
    return _sweep("lm-paper", spec, grids, Budget(epochs=3.0), evaluations=20, seeds=3)


def lm_table(out: str | Path) -> pd.DataFrame:
    """Table 4 from the stored sweep under ``out/sweep``: one row per batch size and optimizer.

    Columns: ``batch_size, optimizer, best_lr``; ``train_loss`` (the selection rule's tail loss
    on the fixed training subset, mean over seeds) with ``train_loss_min``/``train_loss_max``
    (its range over seeds) and ``final_train_loss`` (the last evaluation, mean over seeds);
    ``eval_loss`` (held-out, tail mean); ``final_batch_loss`` (mean mini-batch loss of the last
    interval); ``seeds``; ``rho_sigma`` (mean over the measured steps of ``‖σ‖_1/(√d‖σ‖_2)``,
    whole model) with ``noise_k``, the micro-batches it was estimated from; ``lr_min``,
    ``lr_max``, ``lrs_tried``, ``at_edge``; ``initialisation`` (``"pretrained <weights>"``, or
    ``"random init (stand-in for <weights>)"`` / ``"random init"``); ``gap_vs_sgd``
    (``train_loss − SGD's`` at the same batch size); and against the baseline the paired
    verdict of the sweep (:mod:`anisoada.experiments.verdict`): ``ratio_vs_sgd`` (loss ratio,
    geometric mean over seeds), ``ratio_low``/``ratio_high`` (95% interval) and ``verdict``.
    A full-vocabulary sweep adds ``train_loss_unused`` (the mass on tokens the data never uses,
    at the last evaluation, mean over seeds) and ``unused_share``, the fraction of the lead over
    SGD that this part accounts for.
    """
    root = Path(out) / "sweep"
    selection = pd.read_parquet(root / "selection.parquet")
    noise_path = root / "noise.parquet"
    noise = pd.read_parquet(noise_path) if noise_path.is_file() else pd.DataFrame()
    verdicts_path = root / f"{files.VERDICTS}.csv"
    verdicts = pd.read_csv(verdicts_path) if verdicts_path.is_file() else pd.DataFrame()
    initialisation = _initialisation(root)
    records = []
    for row in selection.sort_values(["batch_size", "optimizer"]).to_dict("records"):
        rho, k = np.nan, np.nan
        if len(noise):
            mine = noise[
                (noise["layer"] == "all")
                & (noise["optimizer"] == row["optimizer"])
                & (noise["batch_size"] == row["batch_size"])
                & np.isclose(noise["lr"], row["best_lr"])
            ]
            if len(mine):
                rho = float((mine["sigma_l1"] / (np.sqrt(mine["d"]) * mine["sigma_l2"])).mean())
                k = float(mine["microbatches"].median())
        record = {
            "batch_size": int(row["batch_size"]),
            "optimizer": row["optimizer"],
            "best_lr": row["best_lr"],
            "train_loss": row["train_loss"],
            "train_loss_min": row.get("train_loss_min", np.nan),
            "train_loss_max": row.get("train_loss_max", np.nan),
            "final_train_loss": row.get("final_train_loss", np.nan),
            "eval_loss": row.get("eval_loss", np.nan),
            "final_batch_loss": row.get("final_batch_loss", np.nan),
            "seeds": int(row["seeds"]),
            "rho_sigma": rho,
            "noise_k": k,
            "lr_min": float(row["lr_min"]),
            "lr_max": float(row["lr_max"]),
            "lrs_tried": int(row["lrs_tried"]),
            "at_edge": bool(row["at_edge"]),
            "initialisation": initialisation,
        }
        if len(verdicts):
            mine = verdicts[
                (verdicts["optimizer"] == row["optimizer"])
                & (verdicts["batch_size"] == row["batch_size"])
            ]
            if len(mine):
                verdict = mine.iloc[0]
                record.update(
                    ratio_vs_sgd=verdict["ratio"],
                    ratio_low=verdict["ratio_low"],
                    ratio_high=verdict["ratio_high"],
                    verdict=verdict["verdict"],
                )
        records.append(record)
    table = pd.DataFrame.from_records(records)
    sgd = table[table["optimizer"] == "sgd"].set_index("batch_size")["train_loss"]
    table["gap_vs_sgd"] = [r.train_loss - sgd.get(r.batch_size, np.nan) for r in table.itertuples()]
    unused = _final_unused(root, selection)
    if unused is not None:
        table["train_loss_unused"] = [
            unused.get((int(r.batch_size), str(r.optimizer)), np.nan) for r in table.itertuples()
        ]
        sgd_unused = table[table["optimizer"] == "sgd"].set_index("batch_size")
        shares = []
        for r in table.itertuples():
            lead = -float(r.gap_vs_sgd)
            lead_unused = float(sgd_unused["train_loss_unused"].get(r.batch_size, np.nan)) - float(
                r.train_loss_unused
            )
            shares.append(lead_unused / lead if lead else np.nan)
        table["unused_share"] = shares
    return table


def _final_unused(root: Path, selection: pd.DataFrame) -> dict[tuple[int, str], float] | None:
    """Full-vocabulary sweeps: ``train_loss_unused`` at each tuned run's last evaluation, mean
    over seeds, per (batch size, optimizer); ``None`` when the rows do not have it."""
    path = root / f"{files.RESULTS}.parquet"
    if not path.is_file():
        return None
    rows = pd.read_parquet(path)
    if "train_loss_unused" not in rows:
        return None
    out: dict[tuple[int, str], float] = {}
    for r in selection.to_dict("records"):
        mine = rows[
            (rows["optimizer"] == r["optimizer"])
            & (rows["batch_size"] == r["batch_size"])
            & np.isclose(rows["lr"], r["best_lr"])
        ]
        if mine.empty:
            continue
        last = mine[mine["step"] == mine.groupby("seed")["step"].transform("max")]
        out[(int(r["batch_size"]), str(r["optimizer"]))] = float(last["train_loss_unused"].mean())
    return out


def _initialisation(root: Path) -> str:
    """How the sweep's models were initialised, from its stored ``sweep.json``."""
    path = root / files.SWEEP_JSON
    problems = json.loads(path.read_text())["config"]["problems"] if path.is_file() else []
    base = problems[0] if problems else {}
    if base.get("weights"):
        return f"pretrained {base['weights']}"
    if base.get("stand_in_for"):
        return f"random init (stand-in for {base['stand_in_for']})"
    return "random init"


#: The vocabulary audit of a compact-vocabulary sweep: a few full-vocabulary steps from one
#: initialisation, small enough for the demo (batch 16, 12 steps, at most 64 held-out examples,
#: which also size the training subset the loss is split on).
AUDIT_BATCH_SIZE = 16
AUDIT_STEPS = 12
AUDIT_EXAMPLES = 64


def vocabulary_audit_config(sweep: SweepConfig, lrs: dict[str, float]) -> SweepConfig:
    """The audit of a compact-vocabulary LM sweep: its problem with GPT-2's full vocabulary.

    Each optimizer runs :data:`AUDIT_STEPS` steps at batch :data:`AUDIT_BATCH_SIZE` from the
    same initialisation at one learning rate (``lrs``: the rates the compact sweep tuned), with
    ``train_loss`` split into the loss over the tokens the data uses and ``train_loss_unused``,
    the mass on the ~48k that never occur
    (:func:`anisoada.problems.language_model.summed_response_loss_parts`). Noise is not
    measured and nothing diverges early (the point is the first steps' split, not a tuned run).
    """
    base = sweep.problems[0]
    assert isinstance(base, LMSpec)
    problem = dataclasses.replace(
        base,
        data=dataclasses.replace(
            base.data, vocabulary="full", n_eval=min(AUDIT_EXAMPLES, base.data.n_eval)
        ),
        measure_noise=False,
        noise_microbatches=None,
        schedule="constant",
        warmup_ratio=0.0,
    )
    optimizers = tuple(
        OptimizerSpec.create(name, lr_grid=LRGrid(values_=(lrs[name],), max_extensions=0))
        for name in ("sgd", "adagrad")
        if name in lrs
    )
    return SweepConfig(
        name=f"{sweep.name}-vocabulary-audit",
        problems=(problem,),
        optimizers=optimizers,
        batch_sizes=(AUDIT_BATCH_SIZE,),
        budget=Budget(steps=AUDIT_STEPS),
        evaluations=2,
        seeds=1,
        divergence_factor=None,
    )


def vocabulary_audit_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer at the audit's last step: the loss, its parts and the lead over SGD.

    Columns: ``optimizer, batch_size, lr, step, train_loss`` (full vocabulary),
    ``train_loss_unused`` (the mass on unused tokens), ``train_loss_used`` (their difference:
    the restricted-softmax loss), and against SGD ``lead`` (SGD's ``train_loss`` minus this
    one's), ``lead_unused`` (the same for the unused part) and
    ``unused_share = lead_unused / lead``, the fraction of the lead that comes from suppressing
    tokens that never occur.
    """
    last = rows[rows["step"] == rows["step"].max()]
    table = pd.DataFrame(
        {
            "optimizer": last["optimizer"].to_numpy(),
            "batch_size": last["batch_size"].astype(int).to_numpy(),
            "lr": last["lr"].to_numpy(),
            "step": last["step"].astype(int).to_numpy(),
            "train_loss": last["train_loss"].to_numpy(),
            "train_loss_unused": last["train_loss_unused"].to_numpy(),
        }
    )
    table["train_loss_used"] = table["train_loss"] - table["train_loss_unused"]
    sgd = table[table["optimizer"] == "sgd"]
    if len(sgd):
        reference = sgd.iloc[0]
        table["lead"] = reference["train_loss"] - table["train_loss"]
        table["lead_unused"] = reference["train_loss_unused"] - table["train_loss_unused"]
        with np.errstate(divide="ignore", invalid="ignore"):
            table["unused_share"] = np.where(
                table["lead"] != 0, table["lead_unused"] / table["lead"], np.nan
            )
    return table


def _tuned_rates(selection: pd.DataFrame) -> dict[str, float]:
    """Each optimizer's tuned rate at the smallest batch size of a sweep."""
    smallest = selection[selection["batch_size"] == selection["batch_size"].min()]
    return {str(r["optimizer"]): float(r["best_lr"]) for r in smallest.to_dict("records")}


def run_lm_reproduction(
    preset: str,
    out: str | Path,
    *,
    jobs: int = 1,
    progress: bool = True,
    sweep: SweepConfig | None = None,
    context: DistributedContext | None = None,
    audit: bool = True,
) -> ReproductionOutput:
    """Run the reproduction (see the module docstring) into ``out``; reuses stored runs.

    Args:
        preset: ``"quick"`` or ``"paper"``.
        out: output directory.
        jobs: single-process runs trained side by side in worker processes (CPU), the same
            workers for every round of the sweep and for the audit
            (:class:`~anisoada.reproduce._pool.WarmPool`); for several GPUs start the command
            with ``torchrun`` instead (then ``jobs`` must be 1).
        progress: show the run progress bar and one line per evaluation point on stderr.
        sweep: a sweep to run instead of the preset's (``preset`` is then only a label).
        context: the data-parallel context (default: from the ``torchrun`` environment).
        audit: for a compact-vocabulary sweep, also run the vocabulary audit
            (:func:`vocabulary_audit_config`) into ``out/vocabulary_audit`` and write
            ``out/vocabulary_audit.csv``.
    """
    started = time.perf_counter()
    out = Path(out)
    if sweep is None:
        if preset not in ("quick", "paper"):
            raise ValueError(f"Unknown preset {preset!r}; use 'quick' or 'paper'.")
        sweep = QUICK if preset == "quick" else paper_config()
    own_context = context is None
    context = context or init_distributed()
    # One set of warm worker processes for every round of the sweep and for the audit.
    pool = (
        WarmPool(jobs)
        if jobs > 1 and not context.distributed and sweep.executor == "local"
        else None
    )
    with pool or contextlib.nullcontext():
        try:
            result = run_sweep(
                sweep,
                out / "sweep",
                context=context,
                jobs=jobs,
                executor=pool,
                progress=progress,
                log=_log_line if progress else None,
            )
        finally:
            if own_context:
                shutdown_distributed(context)
        written: dict[str, Path] = {}
        problem = sweep.problems[0]
        if (
            context.is_main
            and audit
            and isinstance(problem, LMSpec)
            and problem.data.vocabulary == "compact"
            and len(result.selection)
        ):
            audited = run_sweep(
                vocabulary_audit_config(sweep, _tuned_rates(result.selection)),
                out / "vocabulary_audit",
                executor=pool,
                progress=False,
            )
            written["vocabulary_audit.csv"] = write_csv(
                vocabulary_audit_table(audited.rows), out / "vocabulary_audit.csv"
            )
    summary = (
        f"GPT-2 instruction tuning ({preset} preset; model: "
        f"{_initialisation(out / 'sweep') if context.is_main else ''}): SGD vs AdaGrad at batch "
        f"sizes {', '.join(map(str, sweep.batch_sizes))}, learning rates tuned per batch size."
    )
    if not context.is_main:  # the other ranks only took part in training
        return ReproductionOutput("lm", preset, out, time.perf_counter() - started, {}, summary)
    written["table4.csv"] = write_csv(lm_table(out), out / "table4.csv")
    return finish_target(
        out,
        "lm",
        preset,
        started,
        written,
        summary=summary,
        tables={"Table 4: final losses at the tuned learning rates": written["table4.csv"]},
        sweep_wall_time=result.wall_time,
        world_size=context.world_size,
        sweep=sweep.to_dict(),
        stand_in=sweep.problems[0].stand_in(),
    )


def _log_line(line: str) -> None:
    """One progress line to stderr (module-level, so worker processes can pickle it)."""
    print(line, file=sys.stderr, flush=True)


REPRODUCTION = Reproduction(
    name="lm",
    description="GPT-2 instruction tuning: SGD vs AdaGrad at batch sizes 256 and 512",
    run=run_lm_reproduction,
)
