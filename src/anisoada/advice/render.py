"""The terminal form of an :class:`~anisoada.advice.core.Advice`: verdicts first, then why."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from anisoada.advice.core import Advice

__all__ = ["markdown_table", "render_advice"]


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return lines


def markdown_table(table: pd.DataFrame) -> str:
    """A data frame as a Markdown table (numbers to 3 significant digits)."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = [
        "| " + " | ".join(_number(v) if isinstance(v, float) else str(v) for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def render_advice(advice: Advice) -> str:
    """Plain text: the verdict table, the checks, the constants, the framings, the cost."""
    evidence = advice.evidence
    lines = [f"AdaGrad vs SGD on {advice.problem} — {advice.description}"]
    if advice.stand_in:
        lines.append(f"(stand-in data: {advice.stand_in})")
    lines.append(
        f"budget {advice.budget.to_dict()} per run; batch sizes {list(advice.batch_sizes)}"
    )
    lines.append("")
    header = ["batch", "verdict", "confidence", "pilot ratio [95%]", "pilot test", "AdaGrad-Norm",
              "theory: box", "theory: distance", "regime"]  # fmt: skip
    rows = []
    for v in advice.verdicts:
        interval = f"{_number(v.pilot_ratio)} [{_number(v.pilot_low)}, {_number(v.pilot_high)}]"
        rows.append([
            str(v.batch_size), v.winner.upper() if v.winner != "tie" else "tie",
            _number(v.confidence, 2), interval, v.pilot_verdict,
            advice.adagrad_norm.get(v.batch_size, "n/a"),
            advice.theory_box.get(v.batch_size, "n/a"), v.theory, v.regime,
        ])  # fmt: skip
    lines += _table(header, rows)
    lines.append("ratio = (f_AdaGrad − f*)/(f_SGD − f*), tuned rates; < 1 favours AdaGrad")
    for size, reason in advice.skipped.items():
        lines.append(f"batch size {size} skipped: {reason}")
    lines.append("")
    lines.append("Checks:")
    for check in evidence.checks:
        lines.append(f"  [{check.status}] {check.name}: {check.detail}")
    lines.append("")
    lines.append(
        f"Constants (d = {evidence.d}, n = {evidence.n}; "
        f"reference point {evidence.reference_point}):"
    )
    values = evidence.to_dict()
    lines.append(
        "  ‖L‖_1 = {}, ‖L‖_∞ = {}, λ_max = {}, ‖σ‖_1 = {}, ‖σ‖_2 = {}".format(
            *(
                _number(values[k], 4)
                for k in ("L_l1", "L_linf", "lambda_max", "sigma_l1", "sigma_l2")
            )
        )
    )
    lines.append(
        "  ρ_L = {}, ρ_σ = {}, D_∞ = {}, D_2 = {}, ρ_D = {}".format(
            *(_number(values[k], 3) for k in ("rho_L", "rho_sigma", "D_inf", "D_2", "rho_D"))
        )
    )
    lines.append(
        f"  noise scale B_simple = tr Σ/‖∇f‖²: {_number(evidence.noise_scale_init)} at w_0, "
        f"{_number(evidence.noise_scale_mid)} {evidence.noise_scale_where}"
    )
    if evidence.block_heterogeneity:
        block = evidence.block_heterogeneity
        lines.append(
            f"  block heterogeneity over {block['blocks']} blocks: max/min mean |H_jj| = "
            f"{_number(block['max_over_min'])}, sd of log10 = {_number(block['log10_std'])}"
        )
    lines.append("")
    convex = "minimiser" in evidence.reference_point
    lines.append(
        "Bound ratio AdaGrad/SGD (convex bounds, up to absolute constants"
        + ("" if convex else "; applied to a nonconvex model: indicative only")
        + "):"
    )
    header = ["framing", "can favour SGD", "bias term", "noise term",
              *[f"M={m}" for m in advice.batch_sizes]]  # fmt: skip
    rows = [
        [f.name, "yes" if f.can_favour_sgd else "NO (AdaGrad by construction)",
         _number(f.bias_ratio), _number(f.noise_ratio),
         *[_number(f.ratios.get(m)) for m in advice.batch_sizes]]
        for f in advice.framings
    ]  # fmt: skip
    lines += _table(header, rows)
    lines.append("")
    pilot = advice.pilot
    lines.append(
        f"Pilot cost: {100 * pilot.cost_fraction:.1f}% of the full tuned sweep in sample-lanes "
        f"({pilot.cost_sample_lanes:.3g} of {pilot.reference_sample_lanes:.3g}; the sweep counted "
        "without grid extensions, so this is an upper bound); its runs took "
        f"{pilot.run_seconds:.2f} CPU-seconds, {pilot.wall_time:.1f} s of wall time in all "
        "(`anisoada reproduce prediction` measures the CPU fraction against real sweeps)"
    )
    lines.append("")
    lines.append("Rule and what would change each verdict:")
    for v in advice.verdicts:
        lines.append(f"  M={v.batch_size}: {v.rule}; {v.would_change}")
    if advice.out:
        lines.append(f"  (advice.json, advice.md and the pilot's sweeps are under {advice.out})")
    if advice.failed_checks:
        lines.append("")
        lines.append("FAILED CHECKS (theory evidence void; the pilot still stands):")
        lines += [f"  {line}" for line in advice.failed_checks]
    return "\n".join(lines)
