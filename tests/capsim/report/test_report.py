"""Reports: tables, plots and the HTML page, checked in headless Chromium."""

import json
import re

import pytest

from capsim.demos import partition
from capsim.report import Column, Run, Window, markdown_table, rich_table, write_page, write_plots, write_tables
from capsim.report.tables import percent
from tests.common.browser import dump_dom, screenshot

COLUMNS = [Column("availability", "avail", percent, "fraction of operations that succeeded"),
           Column("ops", "ops")]


@pytest.fixture(scope="module")
def runs():
    out = []
    for seed in (1, 2):
        sim, clients = partition.build(seed)
        sim.run(partition.scenario(sim, clients))
        faults = {op["f"]: op["time"] for op in sim.history.nemesis_ops()}
        ok = sum(op["type"] == "ok" for op in sim.history)
        done = sum(op["type"] != "invoke" for op in sim.history.client_ops())
        out.append(Run(f"seed {seed}", list(sim.history), {"availability": ok / done, "ops": done},
                       sides={"minority": ["bob"], "majority": ["alice"]},
                       windows=[Window(faults["partition"], faults["heal"], "partition")], stale=[0.5, 1.2]))
    return out


def test_markdown_and_json_tables_hold_every_run(runs, tmp_path):
    """table.md has a header and one row per run; table.json the same rows with config first."""
    md, js = write_tables(tmp_path, COLUMNS, runs, meta={"seed": 1})
    lines = md.read_text().splitlines()
    assert lines[0] == "| config | avail | ops |" and len(lines) == 2 + len(runs)
    data = json.loads(js.read_text())
    assert data["meta"] == {"seed": 1} and [row["config"] for row in data["rows"]] == ["seed 1", "seed 2"]
    assert markdown_table(COLUMNS, runs) == md.read_text()
    assert rich_table("t", COLUMNS, runs).row_count == 2


def test_plots_are_written_as_png_and_svg_the_same_every_time(runs, tmp_path):
    """Each plot exists as a PNG and an SVG, and drawing again gives identical files."""
    plots = write_plots(tmp_path / "a", runs)
    again = write_plots(tmp_path / "b", runs)
    assert set(plots) == {"throughput", "latency", "staleness"}
    for name, (png, svg) in plots.items():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "<svg" in svg.read_text()
        assert svg.read_bytes() == again[name][1].read_bytes() and png.read_bytes() == again[name][0].read_bytes()


def test_the_page_renders_in_headless_chromium_with_table_plots_and_timeline(runs, tmp_path):
    """Chromium loads the page: the table rows, the inlined plots, one timeline bar per op, tabs working."""
    page = write_page(tmp_path, "Test report", "An intro.", COLUMNS, runs, write_plots(tmp_path, runs),
                      notes=["A note."], meta={"seed": 1})
    dom = dump_dom(page)
    assert dom.count("<tr>") == 1 + len(runs)
    for name in ("throughput", "latency", "staleness"):
        assert f'id="plot-{name}"' in dom
    bars = re.findall(r'<rect class="op (ok|fail|info)"', dom)
    assert len(bars) == sum(len(run.completed()) for run in runs)
    visible = re.findall(r'class="run timeline" data-config="([^"]+)" style="display: (\w+);"', dom)
    assert visible == [("seed 1", "block"), ("seed 2", "none")]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.read_text())  # loads nothing from anywhere
    png = screenshot(page, tmp_path / "page.png")
    assert png.stat().st_size > 10_000
