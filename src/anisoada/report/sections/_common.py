"""What every section builder shares: display names, "not run" sections, small formatters."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anisoada.report._model import Section, Text
from anisoada.report.presentation import method_style
from anisoada.schema import NO_VERDICT, TIE

__all__ = ["SECTIONS", "TITLES", "join", "method", "missing", "shown", "value_range"]


def method(key: str) -> str:
    """Display name of an optimizer key (a tie or a missing verdict is kept as it is)."""
    return key if key in ("n/a", TIE, NO_VERDICT) else method_style(str(key)).name


def shown(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``table`` with the optimizer keys of ``columns`` replaced by display names."""
    return table.assign(**{c: table[c].map(method) for c in columns if c in table})


#: Section ids and titles, in the order they appear.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "At a glance"),
    ("table1", "Table 1 — convergence rates"),
    ("table2", "Table 2 — measured constants"),
    ("figure1", "Figure 1 — generalized smoothness along a trajectory"),
    ("logreg", "Logistic regression across batch sizes"),
    ("lm", "Figure 2 and Table 4 — GPT-2 instruction tuning"),
    ("predicted", "Predicted vs observed advantage"),
    ("rotated", "Rotated-twin control"),
    ("prediction", "Does advise call the winner? — validation"),
    ("provenance", "Provenance"),
)
TITLES = dict(SECTIONS)


def missing(section_id: str, target: str, what: str) -> Section:
    return Section(
        section_id,
        TITLES[section_id],
        (
            Text(
                f"Not run — run `anisoada reproduce {target}` (add `--preset paper` for the "
                f"paper's setting), then `anisoada report` again. This section shows {what}.",
                "missing",
            ),
        ),
        status="missing",
    )


def join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def value_range(values: pd.Series, digits: int = 3) -> str:
    values = values[np.isfinite(values)]
    if values.empty:
        return "n/a"
    low, high = float(values.min()), float(values.max())
    return f"{low:.{digits}g}" if np.isclose(low, high) else f"{low:.{digits}g}–{high:.{digits}g}"
