"""Tests of capsim/report/html.py: the page and its timelines, checked in headless Chromium."""

import itertools
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capsim.demos import partition
from capsim.report import Column, Run, write_page, write_plots
from capsim.report.html import nice_ticks, timeline_data
from capsim.report.tables import percent
from tests.common.browser import dump_dom, layout, screenshot

COLUMNS = [Column("availability", "avail", percent, "fraction of operations that succeeded"), Column("ops", "ops")]


def test_the_page_renders_in_headless_chromium_with_table_plots_and_timeline(runs, tmp_path):
    """Chromium loads the page: the table rows, the inlined plots, one timeline bar per op, tabs working."""
    page = write_page(
        tmp_path,
        "Test report",
        "An intro.",
        COLUMNS,
        runs,
        write_plots(tmp_path, runs),
        notes=["A note."],
        meta={"seed": 1},
    )
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


@given(st.floats(1e-3, 1e6))
def test_timeline_ticks_are_round_and_cover_the_run(end):
    """0, s, 2s, ... with s one of 1, 2, 5 times a power of ten; 6 to 11 ticks, the last within a step of the end."""
    ticks = nice_ticks(end)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert ticks[0] == 0 and min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6
    assert 5 <= len(ticks) <= 11 and ticks[-1] <= end * (1 + 1e-9) < ticks[-1] + step * (1 + 1e-9)


def test_timeline_data_keeps_every_operation(runs):
    """Each completed op is one compact row whose times, outcome, function and node read back as they were."""
    data = timeline_data(runs[0])
    pairs = runs[0].completed()
    assert len(data["ops"]) == len(pairs)
    for (invoke, done), (_row, t0, t1, outcome, f, key, _value, _out, node, never) in zip(pairs, data["ops"]):
        assert abs(t0 / 1e4 - invoke["time"]) <= 5e-5 and abs(t1 / 1e4 - done["time"]) <= 5e-5
        assert data["outcomes"][outcome] == done["type"] and data["fs"][f] == invoke["f"]
        assert data["nodes"][node] == str(invoke.get("node")) and key == invoke.get("key") and never == 0


def test_the_timeline_is_legible_in_headless_chromium(runs, tmp_path):
    """Round tick labels, all inside the timeline and apart; rows of readable height; bars right of the names."""
    page = write_page(tmp_path, "Test report", "An intro.", COLUMNS, runs, write_plots(tmp_path, runs))
    seen = layout(page)
    for run, measured in zip(runs, seen["runs"]):
        left, _, right, _ = measured["svg"]
        labels = [text for text, _ in measured["ticks"]]
        assert [float(text.removesuffix(" s")) for text in labels] == pytest.approx(nice_ticks(run.duration()))
        boxes = [b for _, b in measured["ticks"]]
        assert all(left <= b[0] and b[2] <= right for b in boxes), "a tick label is cut off"
        assert all(a[2] < b[0] for a, b in itertools.pairwise(boxes)), "tick labels overlap"
        assert measured["fontPx"] >= 10
        names_end = max(b[2] for b in measured["clients"])
        assert all(b[0] >= names_end for b in measured["bars"]), "a bar covers the client names"
        rows = sorted({b[1] for b in measured["bars"]})
        assert min(b - a for a, b in itertools.pairwise(rows)) >= 14  # rows a reader can tell apart
        assert right - left >= 900
    assert all(b[3] - b[1] > 150 for _, b in seen["plots"])  # no squashed plot


def _lossy_run() -> Run:
    """The partition demo under loss (info ops: timeouts), with one more op invoked that never completed."""
    sim, clients = partition.build(962, loss=0.3, reorder=True)
    sim.run(partition.scenario(sim, clients))
    history = list(sim.history)
    end = max(op["time"] for op in history)
    never = {"process": 99, "type": "invoke", "f": "read", "key": "x", "value": None, "time": end - 0.5}
    return Run("lossy", [*history, {**never, "client": "carol", "node": "n0"}], {"availability": 0.5, "ops": 9})


def test_an_info_op_is_drawn_as_indeterminate_and_an_op_that_never_completed_is_drawn_at_all(tmp_path):
    """Jepsen's info: it may or may not have taken effect, at any time after its invocation. Each info bar has a
    dashed line on to the end of the run and says so when hovered; an op with no completion (it was left out of the
    timeline) is a bar to the end of the run. Counted from the raw history, in headless Chromium."""
    run = _lossy_run()
    pairs, open_ops = {}, {}
    for op in run.history:
        if op["type"] == "invoke":
            open_ops[op["process"]] = op
        elif op["process"] != "nemesis":
            pairs[id(open_ops[op["process"]])] = op
            del open_ops[op["process"]]
    infos = sum(op["type"] == "info" for op in pairs.values())
    early = sum(op["type"] == "info" and op["time"] < run.duration() for op in pairs.values())  # a line to draw
    assert infos > early >= 2 and len(open_ops) == 1
    data = timeline_data(run)
    assert len(data["ops"]) == len(pairs) + 1
    last = data["ops"][-1]
    assert last[9] == 1 and data["outcomes"][last[3]] == "info" and last[2] == round(run.duration() * 1e4)
    assert data["clients"].count("carol") == 1
    dom = dump_dom(write_page(tmp_path, "Lossy", "An intro.", COLUMNS, [run], {}))
    bars = re.findall(r'<rect class="op (ok|fail|info)"', dom)
    assert len(bars) == len(pairs) + 1 and bars.count("info") == infos + 1
    assert dom.count('<line class="maybe"') == early
    titles = re.findall(r"<title>([^<]*)</title>", dom)
    assert sum("indeterminate: it may or may not have taken effect" in t for t in titles) == infos + 1
    assert sum("-&gt; no completion" in t for t in titles) == 1
    assert "info (indeterminate: may have happened, then or later)" in dom
