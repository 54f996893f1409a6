"""Tests of capsim/report/tables.py: Markdown, JSON and rich tables of runs."""

import json

from capsim.report import Column, markdown_table, rich_table, write_tables
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
