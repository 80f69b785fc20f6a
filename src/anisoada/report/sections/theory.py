"""Table 1: the paper's rates, symbolic and with this run's measured coefficients."""

from __future__ import annotations

from anisoada.report._model import Block, Section, Table, Text
from anisoada.report._results import ResultsDirectory
from anisoada.report.sections._common import TITLES, missing

_RATE_COLUMNS = {
    "setting": "Setting",
    "method": "Method",
    "rate": "Bound (up to constants)",
    "large_batch": "At fixed N = MT",
    "source": "Source",
}
_MEASURED_RATE_COLUMNS = {
    "method": "Method",
    "bias_coef": "bias at M=T=1",
    "noise_coef": "noise at M=T=1",
    "bias_ratio": "bias ÷ SGD",
    "noise_ratio": "noise ÷ SGD",
    "critical_batch_size": "critical M",
}


def table1_section(results: ResultsDirectory) -> Section:
    theory = results.theory
    if not theory.present:
        return missing("table1", "theory", "the paper's comparison of rates")
    blocks: list[Block] = [
        Text(
            "The paper's bounds for AdaGrad and the uniform-step methods. All hold up to absolute "
            "constants; AdaGrad's use ℓ1 norms of L and σ and the ℓ∞ diameter, SGD's the "
            "worst coordinate of L, the ℓ2 norm of σ and the ℓ2 diameter."
        )
    ]
    symbolic = theory.csv("table1.csv")
    if symbolic is not None:
        blocks.append(
            Table(
                "table1",
                symbolic,
                _RATE_COLUMNS,
                caption="Table 1: convergence bounds (M batch size, T iterations, N = MT)",
                source="theory/table1.csv",
            )
        )
    record = theory.present_record
    if record.get("fallback_synthetic"):
        blocks.append(
            Text(
                "No stored logistic measurements were found when the theory target ran, so the "
                "coefficients below are the embedded synthetic problem's exact L and σ(0). Run "
                "`anisoada reproduce logreg` then `anisoada reproduce theory` for measured ones.",
                "stand-in",
            )
        )
    for problem in record.get("problems", []):
        name = problem["name"]
        rates = theory.csv(f"rates_{name}.csv")
        if rates is None:
            continue
        rates = rates[rates["setting"] == "convex"].reset_index(drop=True)
        stand_in = results.logreg_stand_in(name) or (
            "embedded synthetic problem" if problem.get("stand_in") else None
        )
        blocks.append(
            Table(
                f"rates-{name}",
                rates,
                _MEASURED_RATE_COLUMNS,
                caption=(
                    f"{name}: convex bounds with this run's coefficients (N = "
                    f"{problem['budget']:.3g}, box W, up to constants)"
                ),
                source=f"theory/rates_{name}.csv",
                digits=3,
                stand_in=stand_in,
            )
        )
    return Section("table1", TITLES["table1"], tuple(blocks))
