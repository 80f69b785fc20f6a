"""Small stored results for the report tests: settings, hand-written LM outputs, expectations.

``logreg``, ``smoothness`` and ``theory`` are the real targets run at tiny settings (seconds);
the ``lm`` outputs are written directly in the format of :mod:`anisoada.reproduce.lm`
(a real LM sweep takes minutes even at toy sizes) with values chosen here, so the tests know
them exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from anisoada.experiments import DatasetSpec, LRGrid, OptimizerSpec, SweepConfig, provenance
from anisoada.reproduce.smoothness import SmoothnessSettings
from anisoada.train import Budget

TINY_SYNTHETIC = {"n": 300, "n_test": 60, "d": 30, "density": 0.1}

TINY_SWEEP = SweepConfig(
    name="logreg-tiny",
    problems=(
        DatasetSpec.create("synthetic", "synthetic", TINY_SYNTHETIC),
        DatasetSpec.create("rotated", "rotated", TINY_SYNTHETIC, stream="synthetic"),
    ),
    optimizers=tuple(OptimizerSpec.create(name) for name in ("sgd", "adagrad", "adagrad_norm")),
    batch_sizes=(4, 32),
    lr_grid=LRGrid(low=0.1, high=10.0, per_decade=1, max_extensions=0),
    budget=Budget(epochs=2.0),
    evaluations=3,
    seeds=3,
)

TINY_SMOOTHNESS = SmoothnessSettings(examples=4, max_length=48, steps=3, coordinates_per_tensor=8)

#: Table 4 of the hand-written LM results: AdaGrad wins at 256 (by train loss), a tie at 512
#: (SGD's mean train loss is lower there, but not at every seed).
LM_TABLE4 = pd.DataFrame(
    {
        "batch_size": [256, 256, 512, 512],
        "optimizer": ["adagrad", "sgd", "adagrad", "sgd"],
        "best_lr": [0.01, 1.0, 0.01, 3.0],
        "train_loss": [2.125, 2.5, 2.75, 2.625],
        "eval_loss": [2.25, 2.625, 2.5, 2.875],
        "final_batch_loss": [2.1, 2.4, 2.7, 2.6],
        "rho_sigma": [0.3, 0.35, 0.4, 0.45],
        "lr_min": [0.003, 0.3, 0.003, 1.0],
        "lr_max": [0.03, 3.0, 0.03, 10.0],
        "lrs_tried": [3, 3, 3, 3],
        "at_edge": [False, False, False, True],
        "gap_vs_sgd": [-0.375, 0.0, 0.125, 0.0],
        "initialisation": ["random init"] * 4,
        "seeds": [2, 2, 2, 2],
        "verdict": ["adagrad", None, "tie", None],
    }
)


def write_lm_results(directory: Path) -> None:
    """The files ``reproduce lm`` writes (Table 4, rows, noise rows, record), by hand."""
    (directory / "sweep").mkdir(parents=True)
    LM_TABLE4.to_csv(directory / "table4.csv", index=False)
    rows = [
        {
            "dataset": "synthetic-instructions",
            "optimizer": record["optimizer"],
            "batch_size": record["batch_size"],
            "seed": 0,
            "lr": record["best_lr"],
            "step": step,
            "samples": step * record["batch_size"],
            "batch_loss": np.nan if step == 0 else record["final_batch_loss"],
            "train_loss": 3.0 - step * (3.0 - record["train_loss"]) / 2,
            "eval_loss": 3.0 - step * (3.0 - record["eval_loss"]) / 2,
            "status": "finished",
        }
        for record in LM_TABLE4.to_dict("records")
        for step in (0, 1, 2)
    ]
    pd.DataFrame(rows).to_parquet(directory / "sweep" / "results.parquet", index=False)
    noise = []
    for record in LM_TABLE4.to_dict("records"):
        for step, scale in ((10, 1.0), (20, 0.5)):
            for layer, d, l1, l2 in (("h.0", 100, 40.0, 8.0), ("all", 400, 120.0, 10.0)):
                noise.append(
                    {
                        "run_id": "x",
                        "step": step,
                        "layer": layer,
                        "d": d,
                        "sigma_l1": l1 * scale,
                        "sigma_l2": l2 * (scale if step == 10 else 1.0),
                        "microbatches": 4,
                        "microbatch_size": 64,
                        "dataset": "synthetic",
                        "optimizer": record["optimizer"],
                        "batch_size": record["batch_size"],
                        "seed": 0,
                        "lr": record["best_lr"],
                    }
                )
    pd.DataFrame(noise).to_parquet(directory / "sweep" / "noise.parquet", index=False)
    problem = {
        "kind": "lm",
        "model": "tiny",
        "weights": None,
        "data": {"source": "synthetic", "seed": 0},
    }
    record = {
        "target": "lm",
        "preset": "quick",
        "wall_time": 12.5,
        "sweep_wall_time": 11.0,
        "world_size": 1,
        "sweep": {"problems": [problem], "batch_sizes": [256, 512], "seeds": 1, "base_seed": 0},
        "stand_in": "a randomly initialised 'tiny' GPT-2, not the pretrained 124M model; "
        "synthetic instructions, not Stanford Alpaca",
        "files": {"table4.csv": "table4.csv"},
        "provenance": provenance(),
    }
    (directory / "reproduction.json").write_text(json.dumps(record))


def lm_noise_expected() -> dict[str, float]:
    """ρ_σ of the hand-written noise rows: step 10 and step 20, per layer."""
    rho = {}
    for layer, d, l1, l2 in (("h.0", 100, 40.0, 8.0), ("all", 400, 120.0, 10.0)):
        first = l1 / (np.sqrt(d) * l2)  # step 10: the norms as given
        last = 0.5 * l1 / (np.sqrt(d) * l2)  # step 20: ‖σ‖₁ halved, ‖σ‖₂ kept
        rho[layer] = (first, last)
    return rho


class ReportPage:
    """The parts of a built ``report.html`` the tests look at (parsed with the standard library).

    Attributes:
        sections: ``id → status`` of every ``<section>``, in page order.
        tables: ``table id → rows``; a row is a list of cells ``(text, data-value or None)``.
        headers: ``table id → header texts``.
        images: ``src`` of every ``<img>``.
        section_text: ``id → the section's visible text``.
    """

    def __init__(self, text: str) -> None:
        from html.parser import HTMLParser

        self.sections: dict[str, str] = {}
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.headers: dict[str, list[str]] = {}
        self.images: list[str] = []
        self.section_text: dict[str, str] = {}
        page = self

        class _Parser(HTMLParser):
            section: str | None = None
            table: str | None = None
            cell: list[str] | None = None
            value: str | None = None
            in_head = False

            def handle_starttag(self, tag, attrs):
                attrs = dict(attrs)
                if tag == "section":
                    self.section = attrs["id"]
                    page.sections[self.section] = attrs.get("data-status", "")
                    page.section_text[self.section] = ""
                elif tag == "table":
                    self.table = attrs["id"].removeprefix("table-")
                    page.tables[self.table] = []
                    page.headers[self.table] = []
                elif tag == "thead":
                    self.in_head = True
                elif tag == "tr" and self.table and not self.in_head:
                    page.tables[self.table].append([])
                elif tag in ("td", "th") and self.table:
                    self.cell, self.value = [], attrs.get("data-value")
                elif tag == "img":
                    page.images.append(attrs["src"])

            def handle_endtag(self, tag):
                if tag == "section":
                    self.section = None
                elif tag == "table":
                    self.table = None
                elif tag == "thead":
                    self.in_head = False
                elif tag in ("td", "th") and self.cell is not None:
                    text = "".join(self.cell).strip()
                    if self.in_head:
                        page.headers[self.table].append(text)
                    else:
                        page.tables[self.table][-1].append((text, self.value))
                    self.cell = None

            def handle_data(self, data):
                if self.cell is not None:
                    self.cell.append(data)
                if self.section is not None:
                    page.section_text[self.section] += data

        _Parser().feed(text)

    def column(self, table: str, header: str) -> list[tuple[str, str | None]]:
        """The cells of one column of a table, by its header text."""
        index = self.headers[table].index(header)
        return [row[index] for row in self.tables[table]]
