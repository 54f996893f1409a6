"""The table of a report, for the terminal (rich), Markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from capsim.report.model import Run


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


@dataclass
class Column:
    """One column: the row key it shows, its header, and how to format a value.

    Attributes:
        help: what the figure means (a transposed table's row label when there is no ``label``).
        label: a transposed table's row label.
    """

    key: str
    header: str
    fmt: Callable[[Any], str] = _plain
    help: str = ""
    label: str = ""

    def cell(self, row: dict) -> str:
        return self.fmt(row.get(self.key))

    @property
    def row_label(self) -> str:
        """The label of this figure's row in a transposed table."""
        return self.label or self.help or self.header


def percent(value) -> str:
    """0.973 -> '97.3%'; None -> '-'."""
    return "-" if value is None else f"{100 * value:.1f}%"


def millis(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def seconds(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def rich_table(title: str, columns: Sequence[Column], runs: Sequence[Run], transpose: bool = False) -> Table:
    """A terminal table, one row per run (or, transposed, one column per run); its text is never rich markup."""
    table = Table(title=Text(title), title_justify="left")
    if transpose:
        table.add_column("", style="bold", no_wrap=True)
        for run in runs:
            table.add_column(Text(run.name), justify="right")
        for column in columns:
            table.add_row(Text(column.row_label), *(Text(column.cell(run.row)) for run in runs))
        return table
    table.add_column("config", style="bold", no_wrap=True)
    for column in columns:
        table.add_column(Text(column.header), justify="right")
    for run in runs:
        table.add_row(Text(run.name), *(Text(column.cell(run.row)) for column in columns))
    return table


def markdown_table(columns: Sequence[Column], runs: Sequence[Run], transpose: bool = False) -> str:
    """A GitHub-flavoured Markdown table, one row per run (or, transposed, one column per run)."""
    if transpose:
        header = ["", *(run.name for run in runs)]
        body = [[column.row_label, *(column.cell(run.row) for run in runs)] for column in columns]
    else:
        header = ["config", *(c.header for c in columns)]
        body = [[run.name, *(c.cell(run.row) for c in columns)] for run in runs]
    lines = ["| " + " | ".join(map(_md, header)) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(map(_md, cells)) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """A Markdown table cell: a '|' in it escaped (it would end the cell), a line break made a space."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def json_rows(runs: Sequence[Run]) -> list[dict]:
    """The rows as JSON-ready dicts, ``config`` first."""
    return [{"config": run.name, **run.row} for run in runs]


def write_tables(
    out: Path,
    columns: Sequence[Column],
    runs: Sequence[Run],
    stem: str = "table",
    meta: dict | None = None,
    transpose: bool = False,
) -> list[Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` into ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{stem}.md"
    md.write_text(markdown_table(columns, runs, transpose), encoding="utf-8")
    js = out / f"{stem}.json"
    js.write_text(
        json.dumps({"meta": meta or {}, "rows": json_rows(runs)}, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return [md, js]
