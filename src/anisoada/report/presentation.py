"""How results are shown: optimizer display names and colours, and Markdown tables.

The one place for them, shared by the report's tables and figures and the command line's printed
tables, so that a method has the same name and colour everywhere. Tables store optimizer
*keys* (registry keys of :data:`anisoada.optim.OPTIMIZERS`, or a sweep's labels); the display
name is applied only when rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "METHOD_STYLES",
    "MethodStyle",
    "markdown_table",
    "method_style",
    "results_columns",
    "results_labels",
]


class MethodStyle(NamedTuple):
    """Display name, matplotlib colour and marker of one optimizer."""

    name: str
    color: str
    marker: str


#: Registry key → style (colours are matplotlib's tab10, as in the report's stylesheet).
METHOD_STYLES: Mapping[str, MethodStyle] = {
    "sgd": MethodStyle("SGD", "tab:blue", "o"),
    "adagrad": MethodStyle("AdaGrad", "tab:red", "s"),
    "adagrad_norm": MethodStyle("AdaGrad-Norm", "tab:green", "^"),
}


def method_style(key: str) -> MethodStyle:
    """The style of an optimizer key; an unknown key is shown as itself, in grey.

    Example:
        >>> method_style("adagrad").name, method_style("my-variant").name
        ('AdaGrad', 'my-variant')
    """
    return METHOD_STYLES.get(key, MethodStyle(key, "tab:gray", "x"))


def markdown_table(
    table: pd.DataFrame,
    columns: Mapping[str, str] | Sequence[str] | None = None,
    digits: int = 4,
) -> str:
    """A GitHub Markdown table of ``table``'s selected columns.

    Floats are written with ``digits`` significant digits and non-finite ones as ``n/a``;
    a column missing from a row leaves its cell empty.

    Args:
        table: The rows.
        columns: Column → header mapping, a list of columns (headers = names), or None (all).
        digits: Significant digits of floats.

    Returns:
        The table, one line per row, ending with a newline.

    Example:
        >>> print(markdown_table(pd.DataFrame({"a": [1.23456, float("nan")]}), {"a": "A"}), end="")
        | A |
        |---|
        | 1.235 |
        | n/a |
    """
    if columns is None:
        columns = list(table.columns)
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    lines = ["| " + " | ".join(headers.values()) + " |", "|" + "---|" * len(headers)]
    for record in table.to_dict("records"):
        cells = []
        for column in headers:
            value = record.get(column, "")
            if isinstance(value, float | np.floating):
                value = "n/a" if not np.isfinite(value) else f"{value:.{digits}g}"
            cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_columns(labels: Sequence[str]) -> dict[str, str]:
    """Column → header of the logistic target's ``results.csv`` for its optimizer labels."""
    columns = {"dataset": "dataset", "batch_size": "batch"}
    for label in labels:
        name = method_style(label).name
        columns[f"{label}_loss"] = f"{name} loss"
        columns[f"{label}_lr"] = f"{name} lr"
    columns["adagrad_vs_sgd"] = "gap AdaGrad/SGD"
    columns["adagrad_vs_sgd_low"] = "95% low"
    columns["adagrad_vs_sgd_high"] = "95% high"
    columns["winner"] = "verdict"
    return columns


def results_labels(results: pd.DataFrame) -> list[str]:
    """The optimizer labels of a ``results.csv`` table, in column order.

    A label is a ``<label>_loss`` column with its ``<label>_lr`` beside it (so the spread
    columns ``<label>_loss_min``/``_max`` and any other ``…_loss`` are not labels).
    """
    columns = set(results.columns)
    return [
        c.removesuffix("_loss")
        for c in results.columns
        if c.endswith("_loss") and f"{c.removesuffix('_loss')}_lr" in columns
    ]
