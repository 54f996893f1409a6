"""A self-contained HTML timeline of a checked history, in the spirit of Porcupine's.

One row per process; each op is a bar over real time, from its invocation to
its completion, as Porcupine draws it (an indeterminate op runs to the right
edge, striped; an op left out of the search, such as a failed read, is
faded). The time scale is chosen so that most bars are wide enough for their
label, and a label is never cut: it runs past a short bar, and hovering
brings it to the front with the op in full (process, times, positions,
value, error). Each op of the linearization found (complete, or the longest
linearizable prefix) carries its rank and a green edge; the op that cannot
follow the prefix is solid red, the ops that could have come instead have an
orange edge, and a red line marks where the search got stuck. When a look
at the reads refuted a key without the search (a stale read, a read of a
value no op could have left), the ops its note names have a dashed purple
border and their part in it in their details. Faults are dashed vertical
lines. A row of keys at the top highlights one key's ops; the first failing
key is selected when the page opens. The page uses no external resources.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from emulator.check.explain import explanation, summary_line
from emulator.check.ops import NemesisOp, Op, key_id
from emulator.check.results import VerdictData
from emulator.check.values import show

__all__ = ["render_html", "write_html"]

_CHAR_PX = 6.2  # about one character of the 10 px label font
_MIN_WIDTH, _MAX_WIDTH = 1000, 60000  # pixels of the time axis

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
 overflow:visible;white-space:nowrap;box-sizing:border-box;padding-left:2px;color:#000;cursor:default}
.op.witness{border:2px dashed #6a1b9a}
.op:hover{z-index:5;box-shadow:0 0 0 2px #333}.op:hover span{background:#fff}
.op.lin{border-left:3px solid #1a7f37}.op.alt{outline:2px solid #e8710a}
.stuckline{position:absolute;top:0;bottom:0;border-left:2px solid #c62828;pointer-events:none}
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
document.addEventListener('DOMContentLoaded',()=>{
  const b=document.querySelector('.keys button.bad');if(b)pick(b.dataset.k);
});
"""


def render_html(verdict: VerdictData) -> str:
    """The verdict's timeline as one HTML page (a string)."""
    kind = {True: "ok-verdict", False: "bad-verdict", None: "unknown-verdict"}[verdict.valid]
    body = [
        f'<h1 class="{kind}">{_e(summary_line(verdict))}</h1>',
        f"<pre>{_e(explanation(verdict))}</pre>",
        _key_buttons(verdict),
        _timeline(verdict),
    ]
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>capsim check</title>'
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_html(verdict: VerdictData, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path``; returns the path."""
    target = Path(path)
    # a lone surrogate (JSON's "\ud800", which a history may hold) has no UTF-8: written as its escape
    target.write_text(render_html(verdict), encoding="utf-8", errors="backslashreplace")
    return target


def _key_buttons(verdict: VerdictData) -> str:
    """One button per partition (failing ones red); clicking highlights its ops."""
    if len(verdict.partitions) < 2:
        return ""
    buttons = ['<button data-k="" onclick="pick(\'\')">all keys</button>']
    for index, part in enumerate(verdict.partitions):
        cls = " bad" if part.valid is False else ""
        mark = {True: "ok", False: "not linearizable", None: "unknown"}[part.valid]
        buttons.append(
            f'<button class="{cls.strip()}" data-k="{index}" onclick="pick(\'{index}\')">'
            f"{_e(show(part.ops[0].key if part.ops else part.key))}: {mark}</button>"
        )
    return '<div class="keys">' + "".join(buttons) + "</div>"


def _timeline(verdict: VerdictData) -> str:
    """One row of bars per process over real time, with the fault lines across all rows."""
    axis = _Axis(verdict)
    parts = _part_index(verdict)
    ranks, stuck, alternatives, searched, stuck_at = _marks(verdict)
    witnesses = {op_id: why for part in verdict.failures for op_id, why in part.witnesses.items()}
    rows: dict[Any, list[str]] = {p: [] for p in _processes(verdict.ops)}
    for op in verdict.ops:
        classes = [op.status] + (["dropped"] if op.id not in searched else [])
        classes += ["lin"] if op.id in ranks else []
        classes += ["stuck"] if op.id in stuck else (["alt"] if op.id in alternatives else [])
        classes += ["witness"] if op.id in witnesses else []
        bar = _bar(verdict, op, classes, parts, ranks.get(op.id), axis, witnesses.get(op.id))
        rows[op.process].append(bar)
    out = [f'<div class="wrap"><div class="tl" style="width:{axis.width + 60:.0f}px">']
    for process, bars in rows.items():
        out.append(f'<div class="row"><div class="lbl">p{_e(process)}</div><div class="track">')
        out += bars
        out.append("</div></div>")
    lines = [_fault(n, axis) for n in verdict.nemesis]
    lines += [
        f'<div class="stuckline" style="left:{axis.x(t):.1f}px" title="the search got stuck here"></div>'
        for t in stuck_at
    ]
    out.append('<div class="nems">' + "".join(lines) + "</div>")
    out.append("</div></div>")
    return "\n".join(out)


class _Axis:
    """Real time to pixels: wide enough that most bars hold their label."""

    def __init__(self, verdict: VerdictData) -> None:
        times = [op.call_time for op in verdict.ops] + [op.ret_time for op in verdict.ops if op.ret_time is not None]
        times += [n.time for n in verdict.nemesis]
        self.start = min(times, default=0.0)
        self.end = max(times, default=1.0)
        span = max(self.end - self.start, 1e-9)
        needs = sorted(
            (len(verdict.model.describe(op)) + 5) * _CHAR_PX / max(op.ret_time - op.call_time, span / 1e6)
            for op in verdict.ops
            if op.ret_time is not None
        )
        scale = needs[int(0.9 * (len(needs) - 1))] if needs else 1.0
        self.width = min(max(_MIN_WIDTH, span * scale), _MAX_WIDTH)
        self.scale = self.width / span
        self.end += 40 / self.scale  # room to the right for ops that never returned

    def x(self, t: float) -> float:
        return (t - self.start) * self.scale


def _bar(
    verdict: VerdictData,
    op: Op,
    classes: list[str],
    parts: dict[Any, int],
    rank: int | None,
    axis: _Axis,
    witness: str | None = None,
) -> str:
    """One op's bar, with its whole label and its details in the hover title."""
    stop = op.ret_time if op.ret_time is not None else axis.end
    left, width = axis.x(op.call_time), max(axis.x(stop) - axis.x(op.call_time), 3.0)
    label = (f"{rank}. " if rank is not None else "") + verdict.model.describe(op)
    part = parts.get(key_id(op.key), "")
    return (
        f'<div class="op {" ".join(classes)}" data-k="{part}" title="{_e(_details(op, rank, verdict, witness))}" '
        f'style="left:{left:.1f}px;width:{width:.1f}px"><span>{_e(label)}</span></div>'
    )


def _details(op: Op, rank: int | None, verdict: VerdictData, witness: str | None = None) -> str:
    """The hover text: every field of the op, and its part in the proof that refuted its key, if any."""
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
    if witness is not None:
        lines.append(f"no order exists: this op {witness}")
    return "\n".join(lines)


def _fault(event: NemesisOp, axis: _Axis) -> str:
    """A dashed vertical line where a fault (or its repair) happened."""
    text = f"{event.f} {show(event.value)}" if event.value is not None else event.f
    return (
        f'<div class="nem" style="left:{axis.x(event.time):.1f}px" title="{_e(text)}"><span>{_e(event.f)}</span></div>'
    )


def _marks(verdict: VerdictData) -> tuple[dict[int, int], set[int], set[int], set[int], list[float]]:
    """Linearization ranks, the ops that could not follow, their alternatives, the ops searched, where it stuck."""
    ranks: dict[int, int] = {}
    stuck: set[int] = set()
    alternatives: set[int] = set()
    searched: set[int] = set()
    stuck_at: list[float] = []
    for part in verdict.partitions:
        ranks.update({op_id: i + 1 for i, op_id in enumerate(part.order)})
        searched.update(p.op.id for p in part.prepared)
        if part.valid is False:
            must, candidates = part.blocked()
            if must is not None:
                stuck.add(must.op.id)
                alternatives.update(c.op.id for c in candidates if c is not must)
                if must.op.ret_time is not None:
                    stuck_at.append(must.op.ret_time)
    return ranks, stuck, alternatives, searched, stuck_at


def _part_index(verdict: VerdictData) -> dict[Any, int]:
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
