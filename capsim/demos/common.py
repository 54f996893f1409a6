"""What the fundamentals demos share: open-loop load, phase figures, and the report.

A demo builds a ``Report`` — its tables (each a list of ``capsim.report.Run``
with the columns that show it, and a paragraph saying what the numbers
show), its figures for ``--json`` and a function drawing its plots — and
hands it to ``emit``, which prints it, dumps it as JSON, or writes it to a
directory with the same machinery as ``capsim cap`` (Markdown and JSON
tables, PNG and SVG plots, one ``index.html``).

The load is open-loop (Poisson arrivals at a fixed rate, each operation on an
idle client, a new client when all are busy), so a slow system does not slow
its callers down: the queue grows instead, as it does in production.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape

import emulator as em
from capsim import output
from capsim.report import Section, rich_table, write_page, write_tables
from capsim.report.tables import json_rows

#: A demo's table: the report package's Section (title, columns, runs, note, transpose).
Table = Section

__all__ = [
    "Report",
    "Table",
    "emit",
    "intro",
    "live",
    "nearest_rank",
    "phase",
    "poisson_load",
    "share",
    "write_report",
]

N = TypeVar("N", bound=em.Node)

#: an operation to start: (f, key, value, destination node)
OpSpec = tuple[str, Any, Any, str]


async def poisson_load(
    sim: em.Simulation,
    rate: float,
    until: float,
    make_op: Callable[[Any], OpSpec],
    timeout: float = 2.0,
    stream: str = "load",
    prefix: str = "c",
) -> int:
    """Start operations at Poisson arrivals of ``rate`` per second until virtual ``until``; await them all.

    Call from the simulation's workload coroutine. Each arrival runs
    ``make_op(rng)`` on an idle client (a new one, ``<prefix><n>``, when every
    client is busy); outcomes land in ``sim.history``. Returns the operations started.

    Raises:
        ConfigError: ``rate`` is not a positive finite number (a ``ValueError``).
    """
    if not 0 < rate < math.inf:  # an infinite rate draws gaps of 0: arrivals without end at one instant
        raise em.ConfigError(f"rate must be operations per second > 0 and finite, got {rate!r}")
    rng = sim.rng(stream)
    idle: list[em.Client] = []
    made: list[em.Client] = []
    tasks: list[asyncio.Task] = []

    async def one(client: em.Client, op: OpSpec) -> None:
        f, key, value, dest = op
        try:
            await client.invoke(f, key=key, value=value, dest=dest, timeout=timeout)
        except (em.RPCError, em.Timeout):
            pass  # recorded in the history as fail or info
        finally:
            idle.append(client)

    loop = asyncio.get_running_loop()
    while True:
        gap = rng.expovariate(rate)
        if sim.now + gap >= until:
            break
        await asyncio.sleep(gap)
        if not idle:
            made.append(sim.add_client(f"{prefix}{len(made)}"))
            idle.append(made[-1])
        tasks.append(loop.create_task(one(idle.pop(), make_op(rng))))
    await asyncio.gather(*tasks)
    return len(tasks)


def live(sim: em.Simulation, name: str, cls: type[N]) -> N:
    """The live incarnation of ``name``, a ``cls``: a demo reads its own nodes' counters at the end of a run.

    Raises:
        TypeError: ``name`` is crashed (None) or not a ``cls``, a mistake in the demo.
    """
    node = sim.node(name)
    if not isinstance(node, cls):
        raise TypeError(f"{name} is {node!r}, not a live {cls.__name__}")
    return node


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """The smallest value with ``percent`` % of ``values`` at or below it (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def phase(pairs: Sequence[tuple[dict, dict | None]], start: float, end: float) -> dict:
    """Figures of the operations invoked in ``[start, end)``, every outcome counted.

    Returns:
        ops, ok, fail (definite errors), info (indefinite), ok_per_s, error_rate,
        and p50_ms / p99_ms over all completed operations (errors included: a
        caller waits for those too), ok_p50_ms / ok_p99_ms over the successful ones.
    """
    chosen = [(i, d) for i, d in pairs if start <= i["time"] < end]
    done = [(i, d) for i, d in chosen if d is not None]
    counts = {kind: sum(d["type"] == kind for _, d in done) for kind in ("ok", "fail", "info")}
    waits = [1000 * (d["time"] - i["time"]) for i, d in done]
    ok_waits = sorted(1000 * (d["time"] - i["time"]) for i, d in done if d["type"] == "ok")
    span = max(end - start, 1e-9)
    return {
        "ops": len(chosen),
        **counts,
        "ok_per_s": counts["ok"] / span,
        "error_rate": (len(chosen) - counts["ok"]) / len(chosen) if chosen else None,
        "p50_ms": nearest_rank(waits, 50),
        "p99_ms": nearest_rank(waits, 99),
        "ok_p50_ms": nearest_rank(ok_waits, 50),
        "ok_p99_ms": nearest_rank(ok_waits, 99),
    }


def intro(doc: str) -> str:
    """A module docstring's paragraphs after the first line, as one plain-text paragraph (no reST markup)."""
    return " ".join(" ".join(doc.split("\n\n")[1:]).replace("``", "").split())


def share(counts: dict[str, int]) -> dict[str, float]:
    """Counts as fractions of their total (all 0 when the total is 0)."""
    total = sum(counts.values())
    return {name: (count / total if total else 0.0) for name, count in counts.items()}


@dataclass
class Report:
    """A demo's outcome: tables, figures for --json, and how to draw its plots.

    Attributes:
        timeline: index of the table whose runs' histories the page draws as
            timelines (None: no timeline; that table's summary goes first).
        plots: ``plots(out)`` draws the plots into ``out``; returns name -> [png, svg].
    """

    name: str
    title: str
    intro: str
    tables: list[Table]
    meta: dict
    figures: dict = field(default_factory=dict)
    plots: Callable[[Path], dict[str, list[Path]]] | None = None
    timeline: int | None = 0

    def to_json(self) -> dict:
        return {
            "demo": self.name,
            "meta": self.meta,
            "figures": self.figures,
            "tables": {t.key: json_rows(t.runs) for t in self.tables},
        }


def emit(report: Report, console: Console | None = None, as_json: bool = False, out: Path | None = None) -> int:
    """Print ``report`` (tables and their paragraphs, or JSON); write it to ``out`` if given. Returns 0."""
    console = console or output.console(stderr=as_json)
    if as_json:
        json.dump(report.to_json(), sys.stdout, indent=2, default=str)
        print()
    else:
        console.print(
            f"[bold]capsim demo: {escape(report.name)}[/bold]  "
            + escape("  ".join(f"{k}={v}" for k, v in report.meta.items()))
        )
        for table in report.tables:
            console.print()
            console.print(rich_table(table.title, table.columns, table.runs, transpose=table.transpose))
            if table.note:
                console.print(table.note, highlight=False, markup=False)
    if out is not None:
        console.print(f"report: {write_report(report, Path(out))}")
    return 0


def write_report(report: Report, out: Path) -> Path:
    """Markdown and JSON per table, ``<name>.json``, the plots, and ``index.html``; returns the page."""
    out.mkdir(parents=True, exist_ok=True)
    for table in report.tables:
        write_tables(out, table.columns, table.runs, stem=table.key, meta=report.meta, transpose=table.transpose)
    (out / f"{report.name}.json").write_text(
        json.dumps(report.to_json(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    plots = report.plots(out) if report.plots else {}
    index = report.timeline if report.timeline is not None else 0
    main = report.tables[index]
    runs = main.runs if report.timeline is not None else [replace(run, history=[]) for run in main.runs]
    sections = [main, *(table for table in report.tables if table is not main)]
    return write_page(out, report.title, report.intro, main.columns, runs, plots, meta=report.meta, sections=sections)
