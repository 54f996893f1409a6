"""Tests of capsim/report/tables.py: Markdown, JSON and rich tables of runs."""

import json

from capsim.report import Column, Run, markdown_table, rich_table, write_tables
from capsim.report.tables import percent

COLUMNS = [Column("availability", "avail", percent, "fraction of operations that succeeded"), Column("ops", "ops")]


def test_markdown_and_json_tables_hold_every_run(runs, tmp_path):
    """table.md has a header and one row per run; table.json the same rows with config first."""
    md, js = write_tables(tmp_path, COLUMNS, runs, meta={"seed": 1})
    lines = md.read_text().splitlines()
    assert lines[0] == "| config | avail | ops |" and len(lines) == 2 + len(runs)
    data = json.loads(js.read_text())
    assert data["meta"] == {"seed": 1} and [row["config"] for row in data["rows"]] == ["seed 1", "seed 2"]
    assert markdown_table(COLUMNS, runs) == md.read_text()
    assert rich_table("t", COLUMNS, runs).row_count == 2


def test_cells_are_shown_as_written_in_markdown_and_in_the_terminal():
    """A '|' in a name or a cell does not split a Markdown row; '[b]' or '[/]' is text in the terminal, not a rich
    style (a '[/]' raised MarkupError, a '[b]' vanished)."""
    import re

    from rich.console import Console

    runs = [Run("a | b [/]", [], {"availability": 0.5, "ops": "[b]7 | 8"})]
    md = markdown_table(COLUMNS, runs).splitlines()
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 4 for line in md)
    assert md[2] == "| a \\| b [/] | 50.0% | [b]7 \\| 8 |"
    for transpose in (False, True):
        console = Console(record=True, width=200)
        console.print(rich_table("[bold]t[/]", COLUMNS, runs, transpose=transpose))
        text = console.export_text()
        assert "[bold]t[/]" in text and "a | b [/]" in text and "[b]7 | 8" in text
