"""A self-contained HTML timeline of a checked history, in the spirit of Porcupine's.

One row per process; each op is a bar from its invocation to its completion
(an indeterminate op runs to the right edge, striped; an op left out of the
search, such as a failed read, is faded). The x axis is history order, not
virtual time, so ops that share an instant stay readable; hovering a bar
shows the op in full, times included. Each op of the linearization found
(complete, or the longest prefix) carries its rank, and the op that could
not be linearized is solid red. Faults are dashed vertical lines. A row of
keys at the top highlights one key's ops; the first failing key is selected
when the page opens. The page uses no external resources.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.check.models import show
from emulator.check.ops import NemesisOp, Op, key_id

if TYPE_CHECKING:
    from emulator.check.verdict import Verdict

__all__ = ["render_html", "write_html"]

_PX_PER_EVENT = 14  # horizontal pixels per history position, before the minimum width applies

_STYLE = """
body{font:13px system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 6px}
.ok-verdict{color:#1a7f37}.bad-verdict{color:#c62828}.unknown-verdict{color:#9a6700}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;max-height:320px}
.keys button{margin:2px;border:1px solid #bbb;background:#fff;border-radius:3px;cursor:pointer}
.keys button.bad{border-color:#c62828;color:#c62828}.keys button.sel{background:#ddf}
.wrap{overflow-x:auto;border:1px solid #ddd}
.tl{position:relative;padding-top:14px}
.row{display:flex;height:24px;border-top:1px solid #eee}
.lbl{position:sticky;left:0;z-index:2;flex:0 0 48px;background:#fafafa;font-size:11px;color:#555;
 line-height:24px;padding-left:4px;border-right:1px solid #ddd}
.track{position:relative;flex:1 1 auto}
.op{position:absolute;top:4px;height:16px;min-width:3px;border-radius:3px;font-size:10px;line-height:16px;
 overflow:hidden;white-space:nowrap;box-sizing:border-box;padding-left:2px;color:#000;cursor:default}
.op.ok{background:#9fd3a9}.op.fail{background:#ddd;color:#777}
.op.info,.op.open{background:repeating-linear-gradient(45deg,#f5d68a,#f5d68a 4px,#fbeccb 4px,#fbeccb 8px)}
.op.dropped{opacity:.45}.op.stuck{background:#e57373;outline:2px solid #c62828}
.op.dim{opacity:.2}.op.hi{box-shadow:0 0 0 1px #3b5bdb}
.nems{position:absolute;top:0;bottom:0;left:48px;right:0;pointer-events:none}
.nem{position:absolute;top:0;bottom:0;border-left:2px dashed #8e24aa;pointer-events:auto}
.nem span{position:absolute;top:0;left:2px;font-size:10px;color:#8e24aa;white-space:nowrap}
"""

_SCRIPT = """
function pick(k){
  document.querySelectorAll('.keys button').forEach(b=>b.classList.toggle('sel',b.dataset.k===k));
  document.querySelectorAll('.op').forEach(o=>{
    o.classList.toggle('dim',k!=='' && o.dataset.k!==k);
    o.classList.toggle('hi',k!=='' && o.dataset.k===k);
  });
}
document.addEventListener('DOMContentLoaded',()=>{const b=document.querySelector('.keys button.bad');if(b)pick(b.dataset.k);});
"""


def render_html(verdict: Verdict) -> str:
    """The verdict's timeline as one HTML page (a string)."""
    kind = {True: "ok-verdict", False: "bad-verdict", None: "unknown-verdict"}[verdict.valid]
    body = [
        f'<h1 class="{kind}">{_e(verdict.summary())}</h1>',
        f"<pre>{_e(verdict.explain())}</pre>",
        _key_buttons(verdict),
        _timeline(verdict),
    ]
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>capsim check</title>"
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_html(verdict: Verdict, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path``; returns the path."""
    target = Path(path)
    target.write_text(render_html(verdict), encoding="utf-8")
    return target


def _key_buttons(verdict: Verdict) -> str:
    """One button per partition (failing ones red); clicking highlights its ops."""
    if len(verdict.partitions) < 2:
        return ""
    buttons = ['<button data-k="" onclick="pick(\'\')">all keys</button>']
    for index, part in enumerate(verdict.partitions):
        cls = " bad" if part.valid is False else ""
        mark = {True: "ok", False: "not linearizable", None: "unknown"}[part.valid]
        buttons.append(
            f'<button class="{cls.strip()}" data-k="{index}" onclick="pick(\'{index}\')">'
            f"{_e(show(part.key))}: {mark}</button>"
        )
    return '<div class="keys">' + "".join(buttons) + "</div>"


def _timeline(verdict: Verdict) -> str:
    """One row of bars per process, with the fault lines across all rows."""
    end = 1 + max([op.ret or op.call for op in verdict.ops] + [n.position for n in verdict.nemesis] + [0])
    width = max(900, end * _PX_PER_EVENT)
    parts = _part_index(verdict)
    ranks, stuck, searched = _marks(verdict)
    rows: dict[Any, list[str]] = {p: [] for p in _processes(verdict.ops)}
    for op in verdict.ops:
        classes = [op.status] + (["dropped"] if op.id not in searched else []) + (["stuck"] if op.id in stuck else [])
        rows[op.process].append(_bar(verdict, op, classes, parts, ranks.get(op.id), end))
    out = [f'<div class="wrap"><div class="tl" style="width:{width}px">']
    for process, bars in rows.items():
        out.append(f'<div class="row"><div class="lbl">p{_e(process)}</div><div class="track">')
        out += bars
        out.append("</div></div>")
    out.append('<div class="nems">' + "".join(_fault(n, end) for n in verdict.nemesis) + "</div>")
    out.append("</div></div>")
    return "\n".join(out)


def _bar(verdict: Verdict, op: Op, classes: list, parts: dict, rank: int | None, end: int) -> str:
    """One op's bar, with its details in the hover title."""
    stop = op.ret if op.ret is not None else end
    left = 100.0 * op.call / end
    span = 100.0 * max(stop - op.call, 0.5) / end
    label = (f"{rank}. " if rank is not None else "") + verdict.model.describe(op)
    part = parts.get(key_id(op.key), "")
    return (
        f'<div class="op {" ".join(classes)}" data-k="{part}" title="{_e(_details(op, rank, verdict))}" '
        f'style="left:{left:.4f}%;width:{span:.4f}%">{_e(label)}</div>'
    )


def _details(op: Op, rank: int | None, verdict: Verdict) -> str:
    """The hover text: every field of the op."""
    ret = "never" if op.ret is None else f"#{op.ret} at t={op.ret_time:g}"
    lines = [
        verdict.model.describe(op),
        f"process {op.process}, op {op.id}, {op.status}",
        f"key {show(op.key)}, value {show(op.value)}, output {show(op.output)}",
        f"invoked #{op.call} at t={op.call_time:g}, completed {ret}",
    ]
    if op.node is not None:
        lines.append(f"node {op.node}")
    if op.error is not None:
        lines.append(f"error {show(op.error)}")
    if rank is not None:
        lines.append(f"linearized {rank}")
    return "\n".join(lines)


def _fault(event: NemesisOp, end: int) -> str:
    """A dashed vertical line where a fault (or its repair) happened."""
    left = 100.0 * event.position / end
    text = f"{event.f} {show(event.value)}" if event.value is not None else event.f
    return f'<div class="nem" style="left:{left:.4f}%" title="{_e(text)}"><span>{_e(event.f)}</span></div>'


def _marks(verdict: Verdict) -> tuple[dict[int, int], set[int], set[int]]:
    """Linearization ranks, the ops that could not be linearized, and the ops that were searched."""
    ranks: dict[int, int] = {}
    stuck: set[int] = set()
    searched: set[int] = set()
    for part in verdict.partitions:
        ranks.update({op_id: i + 1 for i, op_id in enumerate(part.order)})
        searched.update(p.op.id for p in part.prepared)
        if part.valid is False:
            must, _ = part.blocked()
            if must is not None:
                stuck.add(must.op.id)
    return ranks, stuck, searched


def _part_index(verdict: Verdict) -> dict[Any, int]:
    """Key -> index of its partition (every key maps to 0 when unsplit)."""
    index: dict[Any, int] = {}
    for i, part in enumerate(verdict.partitions):
        for op in part.ops:
            index.setdefault(key_id(op.key), i)
    return index


def _processes(ops: list[Op]) -> list[Any]:
    """Processes in a stable order: numbers first, ascending, then the rest by name."""
    seen = {op.process: None for op in ops}
    return sorted(seen, key=lambda p: (0, p, "") if isinstance(p, int) else (1, 0, str(p)))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
