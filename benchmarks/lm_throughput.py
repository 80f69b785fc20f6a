"""LM training throughput: our step (one loop + LanguageModelTask) vs a ``transformers`` Trainer.

Both train the same tiny GPT-2 (same initial weights), on the same tokenised synthetic
instructions (the ``quick`` reproduction's data: short prompt template, ≈ 32 tokens each), with
the same effective batch (256 examples as 4 micro-batches of 64, gradient accumulation) and the
same optimizer (our AdaGrad), in this process, with the same threads.
Measured: tokens per second (real, unpadded tokens of the examples trained on, per second of
optimizer steps), after warm-up steps, as the median of alternating repetitions. Two settings:
GPT-2's full 50257-token vocabulary, and the compact vocabulary of the ``quick`` reproduction.

Baseline: ``transformers.Trainer`` with a padding collator (``input_ids``, ``attention_mask``,
``labels`` with −100 on the prompt and padding), ``per_device_train_batch_size=64``,
``gradient_accumulation_steps=4``, no logging, no evaluation, no checkpoints. Its loss is the
model's own: logits at every position, then the masked cross-entropy. Ours runs the output layer
on the scored (response) positions only and passes no attention mask (right padding is
invisible to earlier positions under causal attention). Targets (issue 16): ratio ≥ 1.5 with
the compact vocabulary, ≥ 1.0 with the full one (where the Trainer's logits at every position
over 50257 tokens dominate, so the ratio is far larger); exit status 1 when one is missed.

Needs ``accelerate`` (required by ``Trainer``). Run: ``python benchmarks/lm_throughput.py``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np
import torch

from anisoada.data import TokenizedExamples, prepare_lm_data
from anisoada.experiments.tasks import LanguageModelTask
from anisoada.models import build_gpt2, restrict_vocabulary
from anisoada.optim import OPTIMIZERS
from anisoada.reproduce.lm import QUICK
from anisoada.train import Budget, Callback, TrainConfig, train

BATCH, MICRO, LR = 256, 64, 0.01


class _StepClock(Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, state, task, optimizer) -> None:
        self.times.append(time.perf_counter())


def _model(kept: np.ndarray | None):
    model, _ = build_gpt2("tiny", seed=0)
    if kept is not None:
        restrict_vocabulary(model, kept.tolist())
    return model


def _ours(split: TokenizedExamples, kept, warmup: int, steps: int) -> float:
    task = LanguageModelTask(
        _model(kept),
        split,
        TokenizedExamples(split.input_ids[:1], split.labels[:1]),
        train_eval_examples=0,
    )
    optimizer = OPTIMIZERS["adagrad"](task.parameters(), lr=LR)
    clock = _StepClock()
    total = warmup + steps + 1  # the last step also evaluates: leave it out of the window
    config = TrainConfig(batch_size=BATCH, budget=Budget(steps=total), micro_batch_size=MICRO)
    train(task, optimizer, config, callbacks=[clock])
    tokens = sum(
        int(sum(split.input_ids[i].size for i in task._step_indices(config.seed, s, BATCH)))
        for s in range(warmup, warmup + steps)
    )
    return tokens / (clock.times[warmup + steps - 1] - clock.times[warmup - 1])


def padded_collate(counted: list[int]):
    """The Trainer baseline's collate: right-padded ids, labels (-100 on padding) and mask;
    appends each batch's real token count to ``counted`` (the tokens/s numerator)."""

    def collate(batch):
        length = max(len(item["input_ids"]) for item in batch)
        ids = torch.zeros(len(batch), length, dtype=torch.long)
        labels = torch.full((len(batch), length), -100, dtype=torch.long)
        mask = torch.zeros(len(batch), length, dtype=torch.long)
        for row, item in enumerate(batch):
            n = len(item["input_ids"])
            ids[row, :n] = torch.tensor(item["input_ids"])
            labels[row, :n] = torch.tensor(item["labels"])
            mask[row, :n] = 1
        counted.append(int(mask.sum()))
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return collate


def _trainer(split: TokenizedExamples, kept, warmup: int, steps: int) -> float:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    examples = [
        {"input_ids": ids.tolist(), "labels": labels.tolist()}
        for ids, labels in zip(split.input_ids, split.labels)
    ]
    counted: list[int] = []

    collate = padded_collate(counted)

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.tokens: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())
            self.tokens.append(sum(counted))

    model = _model(kept)
    optimizer = OPTIMIZERS["adagrad"](model.parameters(), lr=LR)
    clock = Clock()
    arguments = TrainingArguments(
        output_dir="/tmp/anisoada-lm-throughput",
        per_device_train_batch_size=MICRO,
        gradient_accumulation_steps=BATCH // MICRO,
        max_steps=warmup + steps,
        report_to=[],
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=examples,
        data_collator=collate,
        optimizers=(optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)),
        callbacks=[clock],
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # no end-of-training metrics print
    trainer.train()
    # A step's micro-batches are collated before its end: tokens of steps warmup+1..end.
    tokens = clock.tokens[warmup + steps - 1] - clock.tokens[warmup - 1]
    return tokens / (clock.times[warmup + steps - 1] - clock.times[warmup - 1])


#: Least tokens/s ratio (ours over the Trainer's) per vocabulary.
TARGETS = {"compact": 1.5, "full": 1.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per repeat")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repetitions")
    args = parser.parse_args()
    import transformers

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads; batch {BATCH} = {BATCH // MICRO} x {MICRO}; "
        f"{args.steps} timed steps x {args.repeats} repeats"
    )
    header = f"{'vocabulary':<22}{'ours tok/s':>12}{'Trainer tok/s':>15}{'ratio':>8}  target"
    print(header)
    missed = []
    for vocabulary, target in TARGETS.items():
        spec = dataclasses.replace(
            QUICK.problems[0].data, n_train=2048, n_eval=1, vocabulary=vocabulary
        )
        data = prepare_lm_data(spec)
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(_ours(data.train, data.kept_tokens, args.warmup, args.steps))
            theirs.append(_trainer(data.train, data.kept_tokens, args.warmup, args.steps))
        size = 50257 if data.kept_tokens is None else data.kept_tokens.size
        a, b = statistics.median(ours), statistics.median(theirs)
        met = a / b >= target
        missed += [] if met else [vocabulary]
        print(f"{vocabulary + f' ({size})':<22}{a:>12.0f}{b:>15.0f}{a / b:>8.2f}"
              f"  >= {target:g}: {'PASS' if met else 'MISS'}")  # fmt: skip
    print("all targets met" if not missed else f"missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
