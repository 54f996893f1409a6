"""One self-contained HTML page per report: the table, the plots, a timeline.

The plots are inlined SVG and the timeline is SVG drawn here, in the spirit
of Porcupine's visualiser: one row per client, each operation a bar from its
invocation to its completion, coloured by outcome (ok, fail, info), faults
shaded; hovering a bar shows the operation. A row of buttons switches between
configurations. The page loads nothing from anywhere.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from capsim.report.model import Run, Section
from capsim.report.tables import Column

_COLOURS = {"ok": "#2e7d32", "fail": "#c62828", "info": "#ef6c00"}
_ROW, _WIDTH, _LABEL = 16, 1000, 90

_STYLE = """
body{font:14px system-ui,sans-serif;margin:24px auto;max-width:1120px;color:#212121;padding:0 12px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left;font-weight:600}
.plot svg{max-width:100%;height:auto}.note{color:#555;font-size:13px}
.tabs button{margin:2px;padding:3px 10px;border:1px solid #999;background:#fff;border-radius:3px;cursor:pointer}
.tabs button.on{background:#1565c0;color:#fff}.timeline{overflow-x:auto;border:1px solid #ddd}
.legend span{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px}
"""

_SCRIPT = """
function showRun(i){document.querySelectorAll('.run').forEach((e,j)=>e.style.display=(i===j?'block':'none'));
document.querySelectorAll('.tabs button').forEach((b,j)=>b.className=(i===j?'on':''));}
showRun(0);
"""


def _table_html(columns: Sequence[Column], runs: Sequence[Run], transpose: bool = False, ident: str = "summary") -> str:
    if transpose:
        head = "<th></th>" + "".join(f"<th>{html.escape(run.name)}</th>" for run in runs)
        body = [[c.row_label, *(c.cell(run.row) for run in runs)] for c in columns]
    else:
        head = "<th>config</th>" + "".join(f"<th title='{html.escape(c.help)}'>{html.escape(c.header)}</th>"
                                           for c in columns)
        body = [[run.name, *(c.cell(run.row) for c in columns)] for run in runs]
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>" for cells in body)
    return f"<table id='{ident}'><tr>{head}</tr>{rows}</table>"


def _sections_html(sections: Sequence[Section]) -> list[str]:
    out = []
    for i, section in enumerate(sections):
        ident = "summary" if i == 0 else f"table-{section.key}"
        out += [f"<h2>{html.escape(section.title)}</h2>",
                _table_html(section.columns, section.runs, section.transpose, ident)]
        if section.note:
            out.append(f"<p class='note'>{html.escape(section.note)}</p>")
    return out


def _svg_inline(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index("<svg"):]  # drop the XML prologue and DOCTYPE


def timeline_svg(run: Run) -> str:
    """The run's operations as bars, one row per client, faults shaded."""
    pairs = run.completed()
    clients = sorted({invoke.get("client") or str(invoke["process"]) for invoke, _ in pairs})
    rows = {client: i for i, client in enumerate(clients)}
    end = max(run.duration(), 1e-9)
    scale = (_WIDTH - _LABEL) / end
    height = _ROW * len(clients) + 24
    parts = [f"<svg class='tl' xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{height}'>"]
    for window in run.windows:
        x = _LABEL + window.start * scale
        parts.append(f"<rect x='{x:.1f}' y='0' width='{max(1.0, (window.end - window.start) * scale):.1f}' "
                     f"height='{height - 20}' fill='#9e9e9e' opacity='0.2'><title>{html.escape(window.label)} "
                     f"{window.start:.3f}-{window.end:.3f}s</title></rect>")
    for client, i in rows.items():
        parts.append(f"<text x='2' y='{i * _ROW + 12}' font-size='11'>{html.escape(client)}</text>")
    for invoke, done in pairs:
        y = rows[invoke.get("client") or str(invoke["process"])] * _ROW + 3
        x = _LABEL + invoke["time"] * scale
        width = max(1.5, (done["time"] - invoke["time"]) * scale)
        detail = (f"{invoke['f']} {invoke.get('key')!r} {invoke.get('value')!r} -> {done['type']} "
                  f"{done.get('value')!r} via {invoke.get('node')} [{invoke['time']:.4f}, {done['time']:.4f}]s")
        parts.append(f"<rect class='op {done['type']}' x='{x:.1f}' y='{y}' width='{width:.1f}' height='{_ROW - 5}' "
                     f"fill='{_COLOURS.get(done['type'], '#555')}'><title>{html.escape(detail)}</title></rect>")
    ticks = 10
    for k in range(ticks + 1):
        t = end * k / ticks
        parts.append(f"<text x='{_LABEL + t * scale:.1f}' y='{height - 4}' font-size='10' "
                     f"text-anchor='middle'>{t:.2f}s</text>")
    parts.append("</svg>")
    return "".join(parts)


def write_page(out: Path, title: str, intro: str, columns: Sequence[Column], runs: Sequence[Run],
               plots: dict[str, list[Path]], notes: Sequence[str] = (), meta: dict | None = None,
               sections: Sequence[Section] | None = None, transpose: bool = False) -> Path:
    """Write ``out/index.html``; returns its path.

    Args:
        intro: a paragraph of plain text shown under the title.
        columns, runs: the summary table; ``runs`` with histories are drawn as timelines.
        plots: name -> [png, svg] as returned by ``write_plots``; the SVGs are inlined.
        notes: more paragraphs of plain text, shown after the table.
        meta: parameters of the run (seed, sizes), shown and embedded as JSON.
        sections: several titled tables instead of the one summary (the first is the summary).
        transpose: show the summary with one column per run.
    """
    out.mkdir(parents=True, exist_ok=True)
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>"]
    if meta:
        body.append("<p class='note'>" + html.escape(", ".join(f"{k}={v}" for k, v in meta.items())) + "</p>")
    if sections:
        body += _sections_html(sections)
    else:
        body += ["<h2>Summary</h2>", _table_html(columns, runs, transpose)]
    body += [f"<p class='note'>{html.escape(note)}</p>" for note in notes]
    for name, paths in plots.items():
        svg = next((p for p in paths if p.suffix == ".svg"), None)
        if svg is not None:
            body += [f"<h2>{html.escape(name.replace('_', ' ').title())}</h2>", f"<div class='plot' id='plot-{name}'>"
                     + _svg_inline(svg) + "</div>"]
    timed = [run for run in runs if run.history]
    if not timed:
        return _write(out, title, body, meta)
    runs = timed
    body.append("<h2>Timeline</h2><p class='legend'>" + "".join(
        f"<span style='background:{c}'></span>{k}" for k, c in _COLOURS.items()) + "<span style='background:#9e9e9e'>"
        "</span>fault</p>")
    body.append("<div class='tabs'>" + "".join(
        f"<button onclick='showRun({i})'>{html.escape(run.name)}</button>" for i, run in enumerate(runs)) + "</div>")
    body += [f"<div class='run timeline' data-config='{html.escape(run.name)}'>{timeline_svg(run)}</div>" for run in runs]
    return _write(out, title, body, meta)


def _write(out: Path, title: str, body: list[str], meta: dict | None) -> Path:
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(body)}"
            f"<script type='application/json' id='meta'>{html.escape(json.dumps(meta or {}))}</script>"
            f"<script>{_SCRIPT}</script></body></html>")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
