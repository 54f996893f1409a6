"""One self-contained HTML page per report: the table, the plots, a timeline.

The plots are inlined SVG (text as text, dense scatters as an embedded
bitmap) and the timeline is SVG that the page's script draws from compact
JSON (``timeline_data``), in the spirit of Porcupine's visualiser: one row per client, each operation a bar from its
invocation to its completion, coloured by outcome (ok, fail, info), faults
shaded, under an axis of round ticks (``nice_ticks``); hovering a bar
shows the operation. An ``info`` op is indeterminate, as in Jepsen: it may
or may not have taken effect, at any time after its invocation, so a dashed
line runs on from its bar to the end of the run; an op that never completed
is drawn as an info op whose bar runs to the end. A row of buttons switches
between configurations. The page loads nothing from anywhere.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

from capsim.report.model import Run, Section
from capsim.report.tables import Column

_COLOURS = {"ok": "#2e7d32", "fail": "#c62828", "info": "#ef6c00"}

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
const SVG='http://www.w3.org/2000/svg';
function el(tag,attrs,parent){const e=document.createElementNS(SVG,tag);
for(const k in attrs)e.setAttribute(k,attrs[k]);if(parent)parent.appendChild(e);return e;}
function niceStep(end,most){const p=Math.pow(10,Math.floor(Math.log10(end/most)));
for(const m of [1,2,5,10]){if(end/(m*p)<=most)return m*p;}}
function show(v){return v===null?'nil':typeof v==='string'?v:JSON.stringify(v);}
function drawTimeline(div,d,width){
const row=18,label=64,right=36,top=4,axis=24,plot=width-label-right,scale=plot/d.end;
const height=top+row*d.clients.length+axis,base=height-axis+2;
const svg=el('svg',{class:'tl',width:width,height:height,viewBox:'0 0 '+width+' '+height},div);
for(const [s,e,l] of d.windows){const r=el('rect',{x:label+s*scale,y:0,width:Math.max(1,(e-s)*scale),
height:base,fill:'#9e9e9e',opacity:0.2},svg);el('title',{},r).textContent=l+' '+s.toFixed(3)+'-'+e.toFixed(3)+' s';}
d.clients.forEach((c,i)=>{el('text',{class:'client',x:4,y:top+i*row+13,'font-size':12},svg).textContent=c;});
for(const [r,t0,t1,o,f,k,v,out,n,open] of d.ops){const w=Math.max(1.5,(t1-t0)/1e4*scale);
const x1=label+t0/1e4*scale+w,y=top+r*row+2+(row-5)/2;
if(d.outcomes[o]==='info'&&!open&&x1<label+plot)el('line',{class:'maybe',x1:x1.toFixed(1),x2:(label+plot).toFixed(1),
y1:y,y2:y,stroke:d.colours[o],'stroke-dasharray':'2,3',opacity:0.5},svg);
const bar=el('rect',{class:'op '+d.outcomes[o],x:(label+t0/1e4*scale).toFixed(1),y:top+r*row+2,
width:w.toFixed(1),height:row-5,fill:d.colours[o]},svg);
const said=open?'no completion':d.outcomes[o]+' '+show(out);
el('title',{},bar).textContent=d.fs[f]+' key '+show(k)+' '+show(v)+' -> '+said+
' via '+d.nodes[n]+' ['+(t0/1e4).toFixed(4)+', '+(open?'end':(t1/1e4).toFixed(4))+'] s'+
(d.outcomes[o]==='info'?' (indeterminate: it may or may not have taken effect, at any time after its invocation)':'');}
const step=niceStep(d.end,10),places=Math.max(0,-Math.floor(Math.log10(step)+1e-9));
el('line',{x1:label,x2:label+plot,y1:base,y2:base,stroke:'#999'},svg);
for(let k=0;k*step<=d.end*(1+1e-9);k++){const x=label+k*step*scale;
el('line',{x1:x,x2:x,y1:base,y2:base+4,stroke:'#999'},svg);
el('text',{class:'tick',x:x.toFixed(1),y:height-4,'font-size':11,'text-anchor':'middle'},svg)
.textContent=(k*step).toFixed(places)+' s';}}
function showRun(i){document.querySelectorAll('.run').forEach((e,j)=>e.style.display=(i===j?'block':'none'));
document.querySelectorAll('.tabs button').forEach((b,j)=>b.className=(i===j?'on':''));}
const data=document.getElementById('timelines');
if(data){const runs=JSON.parse(data.textContent),width=Math.max(900,document.body.clientWidth-30);
document.querySelectorAll('.run').forEach((div,i)=>drawTimeline(div,runs[i],width));showRun(0);}
"""


def _table_html(columns: Sequence[Column], runs: Sequence[Run], transpose: bool = False, ident: str = "summary") -> str:
    if transpose:
        head = "<th></th>" + "".join(f"<th>{html.escape(run.name)}</th>" for run in runs)
        body = [[c.row_label, *(c.cell(run.row) for run in runs)] for c in columns]
    else:
        head = "<th>config</th>" + "".join(
            f"<th title='{html.escape(c.help)}'>{html.escape(c.header)}</th>" for c in columns
        )
        body = [[run.name, *(c.cell(run.row) for c in columns)] for run in runs]
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>" for cells in body)
    return f"<table id='{ident}'><tr>{head}</tr>{rows}</table>"


def _sections_html(sections: Sequence[Section]) -> list[str]:
    out = []
    for i, section in enumerate(sections):
        ident = "summary" if i == 0 else f"table-{section.key}"
        out += [
            f"<h2>{html.escape(section.title)}</h2>",
            _table_html(section.columns, section.runs, section.transpose, ident),
        ]
        if section.note:
            out.append(f"<p class='note'>{html.escape(section.note)}</p>")
    return out


def _svg_inline(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index("<svg") :]  # drop the XML prologue and DOCTYPE


_OUTCOMES = ("ok", "fail", "info")
#: The legend's words: what an outcome means (Jepsen's): fail did not happen; info may have, then or later.
_LEGEND = {"fail": "fail (did not happen)", "info": "info (indeterminate: may have happened, then or later)"}


def timeline_data(run: Run) -> dict:
    """The run's operations, compact, for the page's script to draw: one row per client.

    Each op is ``[row, start, end, outcome, f, key, value, result, node, open]``
    with times in tenths of a virtual millisecond and ``outcome``, ``f`` and
    ``node`` as indexes into the lists beside them: about a third of the bytes
    of one SVG element per op, so a default ``capsim cap`` page stays small.
    The completed ops come first, in the order they completed, then those that
    never did (``open`` 1): outcome info, ending at the end of the run.
    """
    end = run.duration()
    completed = run.completed()
    pairs = [*completed, *((invoke, {"type": "info", "time": end}) for invoke in run.pending())]
    clients = sorted({invoke.get("client") or str(invoke["process"]) for invoke, _ in pairs})
    rows = {client: i for i, client in enumerate(clients)}
    fs: dict[str, int] = {}
    nodes: dict[str, int] = {}
    ops = []
    for i, (invoke, done) in enumerate(pairs):
        row = rows[invoke.get("client") or str(invoke["process"])]
        outcome = _OUTCOMES.index(done["type"]) if done["type"] in _OUTCOMES else 2
        f = fs.setdefault(str(invoke["f"]), len(fs))
        node = nodes.setdefault(str(invoke.get("node")), len(nodes))
        ops.append(
            [
                row,
                round(invoke["time"] * 1e4),
                round(done["time"] * 1e4),
                outcome,
                f,
                _plain(invoke.get("key")),
                _plain(invoke.get("value")),
                _plain(done.get("value")),
                node,
                int(i >= len(completed)),
            ]
        )
    return {
        "name": run.name,
        "clients": clients,
        "end": max(run.duration(), 1e-9),
        "outcomes": list(_OUTCOMES),
        "colours": [_COLOURS[o] for o in _OUTCOMES],
        "fs": list(fs),
        "nodes": list(nodes),
        "windows": [[w.start, w.end, w.label] for w in run.windows],
        "ops": ops,
    }


def _plain(value):
    """A JSON value as it is, anything else as its repr."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def nice_ticks(end: float, most: int = 10) -> list[float]:
    """Tick times 0, s, 2s, ... <= ``end`` with s a 1, 2 or 5 times a power of ten, at most ``most + 1`` ticks.

    The page's script uses the same rule (``niceStep``), tested against this one.
    """
    if end <= 0:
        return [0.0]
    power = 10.0 ** math.floor(math.log10(end / most))
    step = next(m * power for m in (1, 2, 5, 10) if end / (m * power) <= most)
    return [round(k * step, 9) for k in range(int(end / step + 1e-9) + 1)]


def write_page(
    out: Path,
    title: str,
    intro: str,
    columns: Sequence[Column],
    runs: Sequence[Run],
    plots: dict[str, list[Path]],
    notes: Sequence[str] = (),
    meta: dict | None = None,
    sections: Sequence[Section] | None = None,
    transpose: bool = False,
) -> Path:
    """Write ``out/index.html``; returns its path.

    Args:
        out: the directory to write into (made if missing).
        title: the page's heading and title.
        intro: a paragraph of plain text shown under the title.
        columns: the summary table's columns.
        runs: the summary table's rows; those with histories are also drawn as timelines.
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
            body += [
                f"<h2>{html.escape(name.replace('_', ' ').title())}</h2>",
                f"<div class='plot' id='plot-{name}'>" + _svg_inline(svg) + "</div>",
            ]
    timed = [run for run in runs if run.history]
    if not timed:
        return _write(out, title, body, meta)
    runs = timed
    body.append(
        "<h2>Timeline</h2><p class='legend'>"
        + "".join(f"<span style='background:{c}'></span>{_LEGEND.get(k, k)}" for k, c in _COLOURS.items())
        + "<span style='background:#9e9e9e'>"
        "</span>fault</p>"
    )
    body.append(
        "<div class='tabs'>"
        + "".join(f"<button onclick='showRun({i})'>{html.escape(run.name)}</button>" for i, run in enumerate(runs))
        + "</div>"
    )
    body += [f"<div class='run timeline' data-config='{html.escape(run.name)}'></div>" for run in runs]
    blob = json.dumps([timeline_data(run) for run in runs], separators=(",", ":")).replace("</", "<\\/")
    body.append(f"<script type='application/json' id='timelines'>{blob}</script>")
    return _write(out, title, body, meta)


def _write(out: Path, title: str, body: list[str], meta: dict | None) -> Path:
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}"
        f"<script type='application/json' id='meta'>{html.escape(json.dumps(meta or {}))}</script>"
        f"<script>{_SCRIPT}</script></body></html>"
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
