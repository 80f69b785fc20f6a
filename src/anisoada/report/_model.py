"""The report as data: sections made of text, tables and figures, rendered to HTML or Markdown.

Section builders (:mod:`anisoada.report.sections`) only read stored results and return these
records; the renderers (:mod:`anisoada.report._render`) only format them. Text may contain
``backtick`` spans, rendered as code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

TextKind = Literal["text", "lead", "note", "stand-in", "missing"]
SectionStatus = Literal["ok", "partial", "missing"]


@dataclass(frozen=True)
class Text:
    """A paragraph. ``kind`` picks the style: plain, lead (larger), note, stand-in, missing."""

    text: str
    kind: TextKind = "text"


@dataclass(frozen=True)
class Bullets:
    """A list of short items."""

    items: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Table:
    """A table of stored values.

    Attributes:
        name: Identifier (the HTML table's id is ``table-<name>``).
        frame: The rows, exactly as read from the stored file (or computed from it).
        columns: Column → header, in display order (absent columns are skipped).
        caption: One line above the table.
        source: The stored file the values come from, relative to the results directory.
        digits: Significant digits of floats.
        stand_in: If set, a badge saying what stands in for the paper's setting.
        winner_columns: Columns whose cells name a method (coloured by method).
        collapsed: Render folded (HTML ``<details>``) with this summary line.
        command: The command that reproduces the table's numbers (shown under it).
    """

    name: str
    frame: pd.DataFrame
    columns: Mapping[str, str]
    caption: str = ""
    source: str = ""
    digits: int = 4
    stand_in: str | None = None
    winner_columns: tuple[str, ...] = ()
    collapsed: str | None = None
    command: str = ""

    def shown_columns(self) -> list[str]:
        """The columns present in the frame, in display order."""
        return [column for column in self.columns if column in self.frame.columns]


@dataclass(frozen=True)
class Figure:
    """A stored PNG with a one-sentence caption saying what to see in it."""

    path: Path
    caption: str
    stand_in: str | None = None


@dataclass(frozen=True)
class FigureRow:
    """Figures shown side by side (they are meant to be compared)."""

    figures: tuple[Figure, ...]


Block = Text | Bullets | Table | Figure | FigureRow


@dataclass(frozen=True)
class Section:
    """One section of the report.

    Attributes:
        id: HTML id (stable: tests and links use it).
        title: Heading.
        blocks: Content, in order.
        status: ``"ok"``, ``"partial"`` (some inputs missing) or ``"missing"`` (not run).
    """

    id: str
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    status: SectionStatus = "ok"
