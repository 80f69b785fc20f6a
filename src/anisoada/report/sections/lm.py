"""GPT-2: Figure 1 (the smoothness check) and Figure 2 / Table 4 (instruction tuning)."""

from __future__ import annotations

from pathlib import Path

from anisoada.report import figures
from anisoada.report._model import Block, Figure, Section, Table, Text
from anisoada.report._results import ResultsDirectory
from anisoada.report.sections._common import TITLES, join, method, missing

_ENVELOPE_COLUMNS = {
    "tensor": "tensor",
    "L0": "L0",
    "L1": "L1",
    "covered_fraction": "covered",
    "n_points": "points",
    "size": "coordinates",
}


def figure1_section(results: ResultsDirectory, figure_dir: Path) -> Section:
    target = results.smoothness
    points = target.file("figure1.npz") if target.present else None
    figure = None
    if points is not None:
        figure = figures.smoothness_figure(
            target.directory / "figure1", figure_dir / "smoothness" / "figure1.png"
        )
    if figure is None:
        return missing("figure1", "smoothness", "Figure 1 (the (L0, L1) smoothness check)")
    record = target.present_record
    stand_in = "; ".join(results.smoothness_stand_ins) or None
    settings = record.get("settings", {})
    blocks: list[Block] = [
        Text(
            f"Adam ran {settings.get('steps', '?')} steps with full gradients on a fixed subset "
            f"of {settings.get('examples', '?')} instruction examples; at each step, for sampled "
            "coordinates j, the secant ratio |∂ⱼf(w) − ∂ⱼf(w')|/|wⱼ − w'ⱼ| between consecutive "
            "iterates is plotted against |∂ⱼf(w)|. Assumption A3 says these points lie under "
            "an affine envelope L0 + L1·x; the loss went from "
            f"{record.get('loss_first', float('nan')):.4g} to "
            f"{record.get('loss_last', float('nan')):.4g}."
        )
    ]
    if stand_in:
        blocks.append(Text(f"Stand-in: {stand_in}.", "stand-in"))
    blocks.append(
        Figure(
            figure,
            "Each dot is one coordinate at one iteration (colour: iteration); see whether the "
            "local smoothness grows with the gradient magnitude along the red affine envelope "
            "L0 + L1·x, as assumption A3 allows, instead of staying under one constant.",
            stand_in=stand_in,
        )
    )
    envelope = target.csv("envelope.csv")
    if envelope is not None:
        pooled = envelope[envelope["tensor"] == "pooled"]
        tensors = envelope[envelope["tensor"] != "pooled"]
        blocks.append(
            Table(
                "envelope-pooled",
                pooled,
                _ENVELOPE_COLUMNS,
                caption=f"Pooled envelope (asked to cover {100 * record['pooled']['coverage']:.0f}"
                "% of the points)",
                source="smoothness/envelope.csv",
                stand_in=stand_in,
            )
        )
        if len(tensors):
            blocks.append(
                Table(
                    "envelope-tensors",
                    tensors,
                    _ENVELOPE_COLUMNS,
                    caption="Envelope per parameter tensor",
                    source="smoothness/envelope.csv",
                    stand_in=stand_in,
                    collapsed=f"Envelope of each of the {len(tensors)} parameter tensors",
                )
            )
    return Section("figure1", TITLES["figure1"], tuple(blocks))


_TABLE4_COLUMNS = {
    "batch_size": "batch",
    "optimizer": "optimizer",
    "best_lr": "tuned lr",
    "train_loss": "final train loss",
    "eval_loss": "final held-out loss",
    "gap_vs_sgd": "train loss − SGD's",
    "rho_sigma": "ρ_σ (whole model)",
    "lr_min": "lowest lr tried",
    "lr_max": "highest lr tried",
    "lrs_tried": "lrs tried",
    "at_edge": "tuned lr at grid edge",
    "initialisation": "initialisation",
}
_LM_NOISE_COLUMNS = {
    "batch_size": "batch",
    "optimizer": "optimizer",
    "layer": "layer",
    "d": "d",
    "rho_sigma_first": "ρ_σ first",
    "rho_sigma_last": "ρ_σ last",
    "rho_sigma_mean": "ρ_σ mean",
    "noise_ratio_ceiling": "√ρ_σ (noise-term ratio ≤)",
}


def lm_section(results: ResultsDirectory, figure_dir: Path) -> Section:
    target = results.lm
    table4 = target.csv("table4.csv") if target.present else None
    if table4 is None:
        return missing("lm", "lm", "Figure 2 and Table 4 (SGD vs AdaGrad on GPT-2)")
    stand_in = "; ".join(results.lm_stand_ins) or None
    table4 = table4.assign(optimizer=table4["optimizer"].map(method))
    problems = target.present_record.get("sweep", {}).get("problems", [])
    base = problems[0] if problems else {}
    blocks: list[Block] = [
        Text(
            "SGD and AdaGrad fine-tune GPT-2 on instruction data (loss on the response tokens), "
            f"at batch sizes {join([str(s) for s in sorted(table4['batch_size'].unique())])}, "
            "each with its learning rate tuned per batch size by final training loss; the paper "
            "reports AdaGrad ahead in both panels."
            + (f" Model: '{base.get('model')}' preset." if base else "")
        )
    ]
    if stand_in:
        blocks.append(Text(f"Stand-in: {stand_in}. These are not the paper's numbers.", "stand-in"))
    figure2 = figures.figure2(target.directory, figure_dir / "lm" / "figure2.png")
    if figure2 is not None:
        blocks.append(
            Figure(
                figure2,
                "Training loss (solid) and held-out loss (dashed) of the tuned SGD and AdaGrad "
                "runs, one panel per batch size; see whether AdaGrad's curve lies below SGD's in "
                "both panels.",
                stand_in=stand_in,
            )
        )
    blocks.append(
        Table(
            "table4",
            table4,
            _TABLE4_COLUMNS,
            caption="Table 4: final losses at the tuned learning rates",
            source="lm/table4.csv",
            stand_in=stand_in,
        )
    )
    noise = results.theory.csv("lm_noise.csv") if results.theory.present else None
    noise_figure = (
        figures.lm_noise_figure(noise, figure_dir / "theory" / "lm_noise.png")
        if noise is not None
        else None
    )
    if noise_figure is not None:
        blocks.append(
            Figure(
                noise_figure,
                "Gradient-noise anisotropy ρ_σ per layer at the tuned runs (1 = isotropic): bars "
                "well below 1 mean AdaGrad's ‖σ‖₁ noise term is smaller than SGD's √d‖σ‖₂.",
                stand_in=stand_in,
            )
        )
    if noise is not None:
        blocks.append(
            Table(
                "lm-noise",
                noise.assign(optimizer=noise["optimizer"].map(method)),
                _LM_NOISE_COLUMNS,
                caption="Per-layer noise anisotropy (the nonconvex noise-term ratio "
                "(ρ_L ρ_σ²)^¼ is at most √ρ_σ)",
                source="theory/lm_noise.csv",
                digits=3,
                stand_in=stand_in,
                collapsed="Per-layer gradient-noise anisotropy table",
            )
        )
    return Section("lm", TITLES["lm"], tuple(blocks))
