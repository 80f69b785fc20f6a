"""The comparison of rates (the paper's bounds table) as data, rendered as Markdown/LaTeX/HTML."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from anisoada.theory import _validate
from anisoada.theory.prediction import predict

__all__ = ["rates_table", "table1"]

Format = Literal["markdown", "latex", "html"]


class _RatesInputs(TypedDict, total=False):
    """The keyword arguments of :func:`rates_table`, as :func:`table1` forwards them."""

    L: ArrayLike | None
    sigma: ArrayLike | None
    D_inf: float | None
    D_2: float | None
    delta: float | None
    lambda_max: float | None
    L0: ArrayLike | None
    L1: ArrayLike | None
    G: ArrayLike | None
    budget: float | None


@dataclass(frozen=True)
class _Rate:
    variant: str
    setting: str
    method: str
    text: str
    latex: str
    large_batch: str
    large_batch_latex: str
    source: str


#: The inputs of each setting's bounds besides L, σ and λ_max; the first one is required.
_SETTING_INPUTS: dict[Literal["convex", "nonconvex"], tuple[str, ...]] = {
    "convex": ("D_inf", "D_2", "G"),
    "nonconvex": ("delta", "L0", "L1"),
}

_CONVEX_SCALING = ("bias ∝ M, noise flat", r"bias $\propto M$, noise flat")
_NONCONVEX_SCALING = ("bias ∝ √M, noise flat", r"bias $\propto \sqrt{M}$, noise flat")

_RATES: tuple[_Rate, ...] = (
    _Rate(
        "adagrad",
        "convex",
        "AdaGrad",
        "‖L‖₁D∞²/T + ‖σ‖₁D∞/√(MT)",
        r"$\|L\|_1 D_\infty^2/T + \|\sigma\|_1 D_\infty/\sqrt{MT}$",
        *_CONVEX_SCALING,
        "Thm 4.1",
    ),
    _Rate(
        "sgd",
        "convex",
        "SGD",
        "‖L‖∞D₂²/T + ‖σ‖₂D₂/√(MT)",
        r"$\|L\|_\infty D_2^2/T + \|\sigma\|_2 D_2/\sqrt{MT}$",
        *_CONVEX_SCALING,
        "Eq. 6",
    ),
    _Rate(
        "adagrad_norm",
        "convex",
        "AdaGrad-Norm",
        "‖L‖∞D₂²/T + ‖σ‖₂D₂/√(MT)",
        r"$\|L\|_\infty D_2^2/T + \|\sigma\|_2 D_2/\sqrt{MT}$",
        *_CONVEX_SCALING,
        "Eq. 6 form",
    ),
    _Rate(
        "sgd_lambda_max",
        "convex",
        "SGD (λ_max)",
        "λ_max·D₂²/T + ‖σ‖₂D₂/√(MT)",
        r"$\lambda_{\max} D_2^2/T + \|\sigma\|_2 D_2/\sqrt{MT}$",
        *_CONVEX_SCALING,
        "Eq. 6, ℓ2 constant",
    ),
    _Rate(
        "adagrad_nonsmooth",
        "convex, nonsmooth",
        "AdaGrad",
        "D∞‖G‖₁/√T = D∞‖G‖₁√(M/N)",
        r"$D_\infty\|G\|_1/\sqrt{T} = D_\infty\|G\|_1\sqrt{M/N}$",
        "∝ √M",
        r"$\propto \sqrt{M}$",
        "Duchi et al. 2011",
    ),
    _Rate(
        "adagrad",
        "nonconvex",
        "AdaGrad",
        "√(Δ‖L‖₁/T) + (Δ‖L‖₁‖σ‖₁²/(MT))^¼",
        r"$\sqrt{\Delta\|L\|_1/T} + (\Delta\|L\|_1\|\sigma\|_1^2/(MT))^{1/4}$",
        *_NONCONVEX_SCALING,
        "Thm 4.3",
    ),
    _Rate(
        "sgd",
        "nonconvex",
        "SGD",
        "√(dΔ‖L‖∞/T) + (d²Δ‖L‖∞‖σ‖₂²/(MT))^¼",
        r"$\sqrt{d\Delta\|L\|_\infty/T} + (d^2\Delta\|L\|_\infty\|\sigma\|_2^2/(MT))^{1/4}$",
        *_NONCONVEX_SCALING,
        "ℓ2 rate ×√d",
    ),
    _Rate(
        "adagrad_norm",
        "nonconvex",
        "AdaGrad-Norm",
        "√(dΔ‖L‖∞/T) + (d²Δ‖L‖∞‖σ‖₂²/(MT))^¼",
        r"$\sqrt{d\Delta\|L\|_\infty/T} + (d^2\Delta\|L\|_\infty\|\sigma\|_2^2/(MT))^{1/4}$",
        *_NONCONVEX_SCALING,
        "ℓ2 rate ×√d",
    ),
    _Rate(
        "sgd_lambda_max",
        "nonconvex",
        "SGD (λ_max)",
        "√(dΔλ_max/T) + (d²Δλ_max‖σ‖₂²/(MT))^¼",
        r"$\sqrt{d\Delta\lambda_{\max}/T} + (d^2\Delta\lambda_{\max}\|\sigma\|_2^2/(MT))^{1/4}$",
        *_NONCONVEX_SCALING,
        "ℓ2 rate ×√d, ℓ2 constant",
    ),
    _Rate(
        "adagrad_l0l1",
        "nonconvex, (L0,L1)",
        "AdaGrad",
        "√(Δ‖L0‖₁/T) + (Δ‖L0‖₁‖σ‖₁²/(MT))^¼ + Δ‖L1‖∞/√T + (Δ‖L1‖∞‖σ‖₁/√(MT))^½; η ≲ 1/‖L1‖∞",
        r"$\sqrt{\Delta\|L_0\|_1/T} + (\Delta\|L_0\|_1\|\sigma\|_1^2/(MT))^{1/4}"
        r" + \Delta\|L_1\|_\infty/\sqrt{T} + (\Delta\|L_1\|_\infty\|\sigma\|_1/\sqrt{MT})^{1/2}$;"
        r" $\eta \lesssim 1/\|L_1\|_\infty$",
        *_NONCONVEX_SCALING,
        "Thm 5.3 [recon]",
    ),
)

_HEADERS = {
    "setting": "Setting",
    "method": "Method",
    "rate": "Bound (up to constants)",
    "large_batch": "At fixed N = MT",
    "source": "Source",
    "bias_coef": "bias at M=T=1",
    "noise_coef": "noise at M=T=1",
    "bias_ratio": "bias ÷ SGD",
    "noise_ratio": "noise ÷ SGD",
    "critical_batch_size": "critical M",
}


def rates_table(**inputs: Unpack[_RatesInputs]) -> pd.DataFrame:
    """The comparison of rates as a DataFrame, with measured coefficients when inputs are given.

    One row per bound of the paper's table (convex: AdaGrad, SGD, AdaGrad-Norm, the nonsmooth
    Duchi et al. bound; nonconvex ℓ1 stationarity: AdaGrad, SGD, AdaGrad-Norm, the (L0, L1) bound)
    plus SGD with a measured ``λ_max`` when ``lambda_max`` is given. Columns: ``variant``,
    ``setting``, ``method``, ``rate`` (Unicode), ``rate_latex``, ``large_batch`` (how the terms
    scale with ``M`` at fixed ``N``), ``large_batch_latex``, ``source``. All bounds hold up to
    absolute constants (see :mod:`anisoada.theory.bounds` for each one's norms and tags).

    With ``L`` and ``sigma`` (and ``D_inf`` for the convex rows, ``delta`` for the nonconvex rows,
    ``L0``/``L1`` and ``G`` for theirs) the numeric columns are filled in; rows whose inputs are
    missing get NaN:

    * ``bias_coef``, ``noise_coef`` — the two terms at ``M = T = 1``, i.e. the coefficients of
      ``1/T`` and ``1/√(MT)`` (convex) or of ``1/√T`` and ``1/(MT)^{1/4}`` (nonconvex);
    * ``bias_ratio``, ``noise_ratio`` — those coefficients over SGD's in the same setting (the
      :func:`~anisoada.theory.ratios.term_ratios`); NaN for SGD's own row and the nonsmooth row;
    * ``critical_batch_size`` — only with ``budget``: the batch size where bias = noise at ``N``.

    Args (keyword arguments, each optional):
        L: Smoothness vector (A2).
        sigma: Per-coordinate noise standard deviation (A5).
        D_inf: ℓ∞ diameter (convex rows).
        D_2: ℓ2 diameter; default ``√d·D_∞`` (a box).
        delta: Initial suboptimality (nonconvex rows).
        lambda_max: Measured ℓ2 smoothness constant; adds the SGD (λ_max) rows.
        L0: Generalized smoothness, constant part (the (L0, L1) row).
        L1: Generalized smoothness, gradient part.
        G: Per-coordinate gradient bound (the nonsmooth row).
        budget: Sample budget ``N`` for the ``critical_batch_size`` column.

    Returns:
        The DataFrame, one row per bound.

    Example:
        >>> rates_table().loc[0, ["setting", "method", "rate"]].tolist()
        ['convex', 'AdaGrad', '‖L‖₁D∞²/T + ‖σ‖₁D∞/√(MT)']

    References:
        Liu, Pan, Zhang. "AdaGrad under Anisotropic Smoothness." ICLR 2025, Table 1 and Sections
        4–5; Duchi, Hazan, Singer (JMLR 2011).
    """
    given: dict[str, Any] = dict(inputs)
    unknown = sorted(set(given) - _RatesInputs.__optional_keys__)
    if unknown:
        raise TypeError(f"rates_table() got an unexpected keyword argument {unknown[0]!r}")
    L, sigma, budget = given.get("L"), given.get("sigma"), given.get("budget")
    lambda_max = given.get("lambda_max")
    rates = [r for r in _RATES if r.variant != "sgd_lambda_max" or lambda_max is not None]
    table = pd.DataFrame(
        {
            "variant": [r.variant for r in rates],
            "setting": [r.setting for r in rates],
            "method": [r.method for r in rates],
            "rate": [r.text for r in rates],
            "rate_latex": [r.latex for r in rates],
            "large_batch": [r.large_batch for r in rates],
            "large_batch_latex": [r.large_batch_latex for r in rates],
            "source": [r.source for r in rates],
        }
    )
    if L is None and sigma is None:
        return table
    if L is None or sigma is None:
        raise ValueError("give both L and sigma to fill in the measured coefficients")

    def at_batch_one(setting: Literal["convex", "nonconvex"], N: float) -> pd.DataFrame:
        """The bounds of ``setting`` at ``M = 1`` and budget ``N``, from that setting's inputs."""
        geometry = {name: given.get(name) for name in _SETTING_INPUTS[setting]}
        return predict(
            setting=setting,
            batch_sizes=[1],
            budget=N,
            L=L,
            sigma=sigma,
            lambda_max=lambda_max,
            **geometry,
        )

    measured: dict[tuple[str, str], pd.Series] = {}
    # A row's group (see _group) is its setting; a setting needs its first input (D_∞ or Δ).
    for group in _SETTING_INPUTS:
        if given.get(_SETTING_INPUTS[group][0]) is None:
            continue
        at_one = at_batch_one(group, 1)
        crit = None
        if budget is not None:
            budget = _validate.positive("budget", budget)
            crit = at_batch_one(group, budget)
        sgd = at_one.set_index("variant").loc["sgd"]
        for _, row in at_one.iterrows():
            comparable = row.variant not in ("sgd", "adagrad_nonsmooth")
            measured[(group, row.variant)] = pd.Series(
                {
                    "bias_coef": row.bias,
                    "noise_coef": row.noise,
                    "bias_ratio": _safe_ratio(row.bias, sgd.bias) if comparable else math.nan,
                    "noise_ratio": _safe_ratio(row.noise, sgd.noise) if comparable else math.nan,
                    "critical_batch_size": (
                        math.nan
                        if crit is None
                        else float(
                            crit.loc[crit.variant == row.variant, "critical_batch_size"].iloc[0]
                        )
                    ),
                }
            )
    columns = ["bias_coef", "noise_coef", "bias_ratio", "noise_ratio"]
    if budget is not None:
        columns.append("critical_batch_size")
    for column in columns:
        table[column] = [
            measured[(_group(r.setting), r.variant)][column]
            if (_group(r.setting), r.variant) in measured
            else math.nan
            for r in rates
        ]
    return table


def table1(
    fmt: Format = "markdown",
    *,
    caption: str | None = None,
    **inputs: Unpack[_RatesInputs],
) -> str:
    """Render the comparison of rates (:func:`rates_table`) as Markdown, LaTeX or HTML.

    Symbolic rows always; measured coefficients, AdaGrad/SGD term ratios and critical batch sizes
    when ``inputs`` (the keyword arguments of :func:`rates_table`) provide them. Numbers are
    printed with 3 significant digits; a missing value prints as "—". All bounds are up to
    absolute constants, which the rendered caption says.

    Args:
        fmt: ``"markdown"`` (a GitHub pipe table), ``"latex"`` (a ``booktabs`` ``table``) or
            ``"html"`` (a ``<table>`` with escaped cells).
        caption: Caption (LaTeX, HTML) or a line under the table (Markdown); a default mentions
            "up to absolute constants".
        **inputs: Forwarded to :func:`rates_table` (``L``, ``sigma``, ``D_inf``, ``D_2``,
            ``delta``, ``lambda_max``, ``L0``, ``L1``, ``G``, ``budget``).

    Returns:
        The rendered table as a string.

    Example:
        >>> print(table1("markdown").splitlines()[0])
        | Setting | Method | Bound (up to constants) | At fixed N = MT | Source |

    References:
        Liu, Pan, Zhang. "AdaGrad under Anisotropic Smoothness." ICLR 2025, Table 1.
    """
    table = rates_table(**inputs)
    caption = caption or (
        "Convergence bounds of AdaGrad and uniform-step methods, up to absolute constants "
        "(M: batch size, T: iterations, N = MT samples). Norms as in Liu, Pan & Zhang (2025); "
        "the forms are reconstructed, and Thm 5.3's ‖L1‖ terms most of all."
    )
    headers = dict(_HEADERS)
    budget = inputs.get("budget")
    if budget is not None and "critical_batch_size" in table.columns:
        headers["critical_batch_size"] = f"critical M at N={float(budget):.3g}"
    numeric = [c for c in _HEADERS if c in table.columns and c not in _TEXT_COLUMNS]
    columns = [*_TEXT_COLUMNS, *numeric]
    if fmt == "markdown":
        return _markdown(table, columns, headers, caption)
    if fmt == "latex":
        return _latex(table, columns, headers, caption)
    if fmt == "html":
        return _html(table, columns, headers, caption)
    raise ValueError(f"fmt must be 'markdown', 'latex' or 'html'; got {fmt!r}")


_TEXT_COLUMNS = ("setting", "method", "rate", "large_batch", "source")


def _group(setting: str) -> str:
    return "convex" if setting.startswith("convex") else "nonconvex"


def _safe_ratio(numerator: float, denominator: float) -> float:
    if denominator > 0:
        return numerator / denominator
    return math.nan


def _number(value: float, latex: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--" if latex else "—"
    if np.isinf(value):
        return r"$\infty$" if latex else "∞"
    return f"{value:.3g}"


def _cells(table: pd.DataFrame, columns: list[str], latex: bool) -> list[list[str]]:
    rows = []
    for _, row in table.iterrows():
        cells = []
        for column in columns:
            if column in ("rate", "large_batch") and latex:
                cells.append(row[f"{column}_latex"])
            elif column in _TEXT_COLUMNS:
                cells.append(_latex_escape(row[column]) if latex else str(row[column]))
            else:
                cells.append(_number(row[column], latex))
        rows.append(cells)
    return rows


def _markdown(
    table: pd.DataFrame, columns: list[str], headers: dict[str, str], caption: str
) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |"

    header = [headers[c] for c in columns]
    aligns = ["---" if c in _TEXT_COLUMNS else "---:" for c in columns]
    body = [line(cells) for cells in _cells(table, columns, latex=False)]
    return "\n".join([line(header), "| " + " | ".join(aligns) + " |", *body, "", caption]) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
# Unicode phrases in the text cells that pdflatex would reject, written as math instead.
_LATEX_PHRASES = {
    "λ_max": r"$\lambda_{\max}$",
    "‖L1‖": r"$\|L_1\|$",
    "√d": r"$\sqrt{d}$",
    "ℓ2": r"$\ell_2$",
    "×": r"$\times$",
    "÷": r"$\div$",
}
_LATEX_PHRASE_PATTERN = re.compile("|".join(re.escape(p) for p in _LATEX_PHRASES))


def _latex_escape(text: str) -> str:
    parts = []
    position = 0
    for match in _LATEX_PHRASE_PATTERN.finditer(text):
        parts.append("".join(_LATEX_SPECIAL.get(ch, ch) for ch in text[position : match.start()]))
        parts.append(_LATEX_PHRASES[match.group()])
        position = match.end()
    parts.append("".join(_LATEX_SPECIAL.get(ch, ch) for ch in text[position:]))
    return "".join(parts)


def _latex(table: pd.DataFrame, columns: list[str], headers: dict[str, str], caption: str) -> str:
    spec = "".join("l" if c in _TEXT_COLUMNS else "r" for c in columns)
    header = " & ".join(_latex_escape(headers[c]) for c in columns) + r" \\"
    body = [" & ".join(cells) + r" \\" for cells in _cells(table, columns, latex=True)]
    return (
        "\n".join(
            [
                r"\begin{table}[t]",
                r"\centering",
                f"\\caption{{{_latex_escape(caption)}}}",
                f"\\begin{{tabular}}{{{spec}}}",
                r"\toprule",
                header,
                r"\midrule",
                *body,
                r"\bottomrule",
                r"\end{tabular}",
                r"\end{table}",
            ]
        )
        + "\n"
    )


def _html(table: pd.DataFrame, columns: list[str], headers: dict[str, str], caption: str) -> str:
    def row(cells: list[str], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in cells) + "</tr>"

    head = row([headers[c] for c in columns], "th")
    body = [row(cells, "td") for cells in _cells(table, columns, latex=False)]
    return (
        "\n".join(
            [
                '<table class="anisoada-rates">',
                f"<caption>{html.escape(caption)}</caption>",
                f"<thead>{head}</thead>",
                "<tbody>",
                *body,
                "</tbody>",
                "</table>",
            ]
        )
        + "\n"
    )
