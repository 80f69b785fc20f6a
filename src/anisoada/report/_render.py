"""Render report sections as one self-contained HTML page or as Markdown.

The HTML embeds every figure as a base64 PNG ``data:`` URI and carries its own stylesheet, so the
file can be mailed or archived alone. Every numeric table cell keeps the stored value in a
``data-value`` attribute (full precision) next to the rounded text a reader sees.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anisoada.report._model import Block, Bullets, Figure, FigureRow, Section, Table, Text
from anisoada.report.presentation import METHOD_STYLES

_CODE = re.compile(r"`([^`]+)`")
#: Display name → CSS class of a method (its colour in the stylesheet below).
_METHOD_CLASSES = {style.name: key.replace("_", "-") for key, style in METHOD_STYLES.items()}
# A tie is a verdict too: shown in its own neutral colour, never as a win.
_METHOD_CLASSES["tie"] = "tie"

_CSS = """
:root {
  --ink: #1d232b; --muted: #5b6673; --line: #dfe3e8; --bg: #f5f7fa; --card: #ffffff;
  --accent: #2f5d8a; --sgd: #1f77b4; --adagrad: #d62728; --adagrad-norm: #2ca02c;
  --amber-bg: #fff6e0; --amber: #8a5a00; --grey-bg: #f0f1f3;
}
* { box-sizing: border-box; }
html { scroll-behavior: smooth; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
header.top { background: linear-gradient(120deg, #22384f, #2f5d8a); color: #fff;
  padding: 28px 40px 22px; }
header.top h1 { margin: 0 0 6px; font-size: 26px; font-weight: 650; letter-spacing: .2px; }
header.top p { margin: 2px 0; color: #d7e3ef; font-size: 14px; }
header.top code { background: rgba(255,255,255,.14); color: #fff; }
.layout { display: grid; grid-template-columns: 230px minmax(0, 1fr); gap: 28px;
  max-width: 1380px; margin: 0 auto; padding: 24px 28px 60px; }
nav.toc { position: sticky; top: 16px; align-self: start; background: var(--card);
  border: 1px solid var(--line); border-radius: 10px; padding: 14px 14px 10px; font-size: 14px; }
nav.toc h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .08em; color: var(--muted);
  margin: 0 0 8px; }
nav.toc ol { list-style: none; margin: 0; padding: 0; }
nav.toc li { margin: 0 0 6px; display: flex; align-items: baseline; gap: 8px; }
nav.toc a { color: var(--ink); text-decoration: none; }
nav.toc a:hover { color: var(--accent); text-decoration: underline; }
.dot { width: 8px; height: 8px; border-radius: 50%; flex: none; display: inline-block;
  transform: translateY(-1px); }
.dot.ok { background: #2e9d55; } .dot.partial { background: #e0a100; }
.dot.missing { background: #b8bec6; }
main { min-width: 0; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px;
  padding: 22px 28px 24px; margin: 0 0 22px; box-shadow: 0 1px 2px rgba(20,30,40,.04); }
section.card h2 { margin: 0 0 12px; font-size: 21px; font-weight: 650; display: flex;
  align-items: center; gap: 10px; }
section.card h2 .status { font-size: 11px; font-weight: 600; text-transform: uppercase;
  letter-spacing: .06em; padding: 2px 8px; border-radius: 999px; }
.status.missing { background: var(--grey-bg); color: var(--muted); }
.status.partial { background: var(--amber-bg); color: var(--amber); }
p { margin: 8px 0 12px; }
p.lead { font-size: 16.5px; }
p.note { color: var(--muted); font-size: 14px; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--grey-bg); padding: 1px 5px; border-radius: 4px; }
.callout { border-radius: 8px; padding: 10px 14px; margin: 10px 0 14px; font-size: 14px; }
.callout.stand-in { background: var(--amber-bg); color: #5c3d00; border-left: 4px solid #e0a100; }
.callout.missing { background: var(--grey-bg); color: var(--muted); border: 1px dashed #b8bec6;
  font-size: 15px; padding: 16px 18px; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; letter-spacing: .03em;
  padding: 1px 7px; border-radius: 999px; margin-left: 6px; vertical-align: 1px; }
.badge.stand-in { background: var(--amber-bg); color: var(--amber); border: 1px solid #f0d49a; }
ul.bullets { margin: 6px 0 14px; padding-left: 20px; }
ul.bullets li { margin: 3px 0; }
.table-block { margin: 14px 0 18px; }
.table-caption { font-weight: 600; font-size: 14px; margin: 0 0 6px; }
.table-source { color: var(--muted); font-weight: 400; font-size: 12px; margin-left: 6px; }
.table-command { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; }
table.data { border-collapse: collapse; width: 100%; font-size: 13px;
  font-variant-numeric: tabular-nums; }
table.data th { background: #f2f4f7; text-align: left; font-weight: 600; padding: 7px 8px;
  border-bottom: 1px solid var(--line); vertical-align: bottom; line-height: 1.3; }
table.data td { padding: 6px 8px; border-bottom: 1px solid #eef0f3; vertical-align: top; }
table.data tbody tr:nth-child(even) td { background: #fafbfc; }
table.data tbody tr:hover td { background: #eef4fa; }
table.data td.num { text-align: right; white-space: nowrap; }
table.data th.num { text-align: right; }
table.data td.method { font-weight: 600; white-space: nowrap; }
td.method.adagrad { color: var(--adagrad); } td.method.sgd { color: var(--sgd); }
td.method.adagrad-norm { color: var(--adagrad-norm); }
td.winner { text-align: center; white-space: nowrap; }
td.winner span { display: inline-block; min-width: 64px; padding: 1px 8px; border-radius: 6px;
  font-weight: 600; font-size: 12.5px; }
td.winner.adagrad span { background: #fbe3e3; color: #a11d1d; }
td.winner.sgd span { background: #e1ecf7; color: #17558a; }
td.winner.adagrad-norm span { background: #e2f3e2; color: #1f6f1f; }
td.winner.tie span { background: #eceef1; color: #4a5360; }
td.empty { color: #b8bec6; text-align: center; }
details { margin: 10px 0 16px; }
details summary { cursor: pointer; color: var(--accent); font-weight: 600; font-size: 14px; }
figure { margin: 14px 0 20px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto;
  border: 1px solid var(--line); border-radius: 8px; background: #fff; }
figure.single img { max-width: min(100%, 1000px); max-height: 620px; width: auto; }
figcaption { color: var(--muted); font-size: 13.5px; margin: 8px 4px 0; text-align: left; }
.figure-row { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr));
  gap: 18px; align-items: start; }
.figure-row figure { margin: 8px 0 12px; }
footer { color: var(--muted); font-size: 12.5px; text-align: center; padding: 10px 0 30px; }
@media (max-width: 900px) { .layout { grid-template-columns: 1fr; } nav.toc { position: static; } }
@media print { nav.toc { display: none; } .layout { display: block; } section.card {
  break-inside: avoid-page; box-shadow: none; } }
"""


def _inline(text: str) -> str:
    """Escape ``text`` for HTML and turn backtick spans into ``<code>``."""
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))


def format_value(value: Any, digits: int = 4) -> str:
    """How a table cell reads: floats to ``digits`` significant digits, NaN as "n/a"."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{float(value):.{digits}g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _html_table(table: Table) -> str:
    columns = table.shown_columns()
    records = table.frame.to_dict("records")
    numeric = {c: any(_is_number(r[c]) for r in records) for c in columns}
    head = "".join(
        f'<th class="{"num" if numeric[c] else "text"}">{_inline(table.columns[c])}</th>'
        for c in columns
    )
    rows = []
    for record in records:
        cells = []
        for column in columns:
            value = record[column]
            text = format_value(value, table.digits)
            if column in table.winner_columns:
                css = _METHOD_CLASSES.get(str(value))
                if css is None:
                    cells.append(f'<td class="empty">{html.escape(text)}</td>')
                else:
                    cells.append(
                        f'<td class="winner {css}" data-value="{html.escape(str(value))}">'
                        f"<span>{html.escape(text)}</span></td>"
                    )
            elif _is_number(value):
                cells.append(f'<td class="num" data-value="{float(value)!r}">{text}</td>')
            elif str(value) in _METHOD_CLASSES:
                css = _METHOD_CLASSES[str(value)]
                cells.append(f'<td class="method {css}">{html.escape(text)}</td>')
            else:
                cells.append(f"<td>{_inline(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    badge = (
        f'<span class="badge stand-in" title="{html.escape(table.stand_in)}">stand-in</span>'
        if table.stand_in
        else ""
    )
    source = (
        f'<span class="table-source">from <code>{html.escape(table.source)}</code></span>'
        if table.source
        else ""
    )
    caption = (
        f'<div class="table-caption">{_inline(table.caption)}{badge}{source}</div>'
        if table.caption or badge or source
        else ""
    )
    body = (
        f'<div class="table-block">{caption}<div class="table-wrap">'
        f'<table class="data" id="table-{html.escape(table.name)}"'
        f' data-source="{html.escape(table.source)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        + (
            f'<div class="table-command">reproduce: <code>{html.escape(table.command)}</code></div>'
            if table.command
            else ""
        )
        + "</div>"
    )
    if table.collapsed:
        return f"<details><summary>{_inline(table.collapsed)}</summary>{body}</details>"
    return body


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html_figure(figure: Figure, single: bool) -> str:
    badge = (
        f' <span class="badge stand-in" title="{html.escape(figure.stand_in)}">stand-in</span>'
        if figure.stand_in
        else ""
    )
    return (
        f'<figure class="{"single" if single else "paired"}">'
        f'<img src="{_data_uri(figure.path)}" alt="{html.escape(figure.caption)}"'
        f' data-file="{html.escape(figure.path.name)}">'
        f"<figcaption>{_inline(figure.caption)}{badge}</figcaption></figure>"
    )


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        if block.kind in ("stand-in", "missing"):
            return f'<div class="callout {block.kind}">{_inline(block.text)}</div>'
        return f'<p class="{block.kind}">{_inline(block.text)}</p>'
    if isinstance(block, Bullets):
        items = "".join(f"<li>{_inline(item)}</li>" for item in block.items)
        return f'<ul class="bullets">{items}</ul>'
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Figure):
        return _html_figure(block, single=True)
    if isinstance(block, FigureRow):
        inner = "".join(_html_figure(figure, single=False) for figure in block.figures)
        return f'<div class="figure-row">{inner}</div>'
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(sections: Sequence[Section], *, title: str, subtitle: Sequence[str]) -> str:
    """The whole report as one HTML document (figures embedded, stylesheet inline)."""
    toc = "".join(
        f'<li><span class="dot {s.status}"></span><a href="#{s.id}">{html.escape(s.title)}</a></li>'
        for s in sections
    )
    parts = []
    for section in sections:
        status = (
            f'<span class="status {section.status}">'
            f"{'not run' if section.status == 'missing' else 'partial'}</span>"
            if section.status != "ok"
            else ""
        )
        body = "".join(_html_block(block) for block in section.blocks)
        parts.append(
            f'<section class="card" id="{section.id}" data-status="{section.status}">'
            f"<h2>{html.escape(section.title)}{status}</h2>{body}</section>"
        )
    lines = "".join(f"<p>{_inline(line)}</p>" for line in subtitle)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header class="top"><h1>{html.escape(title)}</h1>{lines}</header>'
        f'<div class="layout"><nav class="toc"><h2>Contents</h2><ol>{toc}</ol></nav>'
        f"<main>{''.join(parts)}</main></div>"
        "<footer>Built by <code>anisoada report</code> from stored results only; nothing was "
        "trained to make this page.</footer></body></html>\n"
    )


def _markdown_table(table: Table) -> str:
    columns = table.shown_columns()

    def cell(text: str) -> str:
        return text.replace("|", r"\|").replace("\n", " ")

    lines = []
    if table.caption or table.stand_in:
        badge = f" _(stand-in: {table.stand_in})_" if table.stand_in else ""
        source = f" — `{table.source}`" if table.source else ""
        lines.append(f"**{table.caption}**{badge}{source}\n")
    lines.append("| " + " | ".join(cell(table.columns[c]) for c in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for record in table.frame.to_dict("records"):
        cells = [cell(format_value(record[c], table.digits)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    if table.command:
        lines.append(f"\n_reproduce:_ `{table.command}`")
    return "\n".join(lines) + "\n"


def _markdown_figure(figure: Figure, base: Path) -> str:
    target = os.path.relpath(figure.path, base)
    badge = f" _(stand-in: {figure.stand_in})_" if figure.stand_in else ""
    return f"![{figure.path.stem}]({target})\n\n_{figure.caption}_{badge}\n"


def _markdown_block(block: Block, base: Path) -> str:
    if isinstance(block, Text):
        if block.kind == "missing":
            return f"> **Not run.** {block.text}\n"
        if block.kind == "stand-in":
            return f"> {block.text}\n"
        return block.text + "\n"
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items) + "\n"
    if isinstance(block, Table):
        return _markdown_table(block)
    if isinstance(block, Figure):
        return _markdown_figure(block, base)
    if isinstance(block, FigureRow):
        return "\n".join(_markdown_figure(figure, base) for figure in block.figures)
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_markdown(
    sections: Sequence[Section], *, title: str, subtitle: Sequence[str], base: Path
) -> str:
    """The report as Markdown; figures are linked relative to ``base`` (the file's directory)."""
    lines = [f"# {title}", "", *[f"{line}  " for line in subtitle], ""]
    for section in sections:
        flag = " (not run)" if section.status == "missing" else ""
        lines += [f"## {section.title}{flag}", ""]
        for block in section.blocks:
            lines += [_markdown_block(block, base), ""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"
