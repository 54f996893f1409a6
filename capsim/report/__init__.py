"""Reports: the tables, plots and HTML page of capsim's demonstrations.

Every demonstration (``capsim cap``, ``capsim pacelc``, ``capsim demo NAME``)
hands this package a list of ``Run``s — one per configuration, each with its
history and its row of figures — and gets back a terminal table, Markdown,
JSON, PNG and SVG plots, and one self-contained HTML page.
"""

from capsim.report.html import write_page
from capsim.report.model import Run, Section, Window
from capsim.report.plots import PLOTS, pyplot, require_plots, save, write_plots, xy_plot
from capsim.report.tables import Column, markdown_table, rich_table, write_tables

__all__ = [
    "PLOTS",
    "Column",
    "Run",
    "Section",
    "Window",
    "markdown_table",
    "pyplot",
    "require_plots",
    "rich_table",
    "save",
    "write_page",
    "write_plots",
    "write_tables",
    "xy_plot",
]
