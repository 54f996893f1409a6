"""The CAP table: columns, many-seed summaries, and the written report."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from capsim.cap.metrics import FIGURES
from capsim.report import Column, Run, markdown_table, write_page, write_plots, write_tables
from capsim.report.tables import percent
from emulator.validate import is_number

#: The keys of ``--json``, per configuration, in order.
JSON_KEYS = (
    "config",
    "availability",
    "availability_minority",
    "availability_majority",
    "linearizable",
    "stale_read_fraction",
    "lost_writes",
    "silently_overwritten",
    "p50_ms",
    "p99_ms",
    "convergence_s",
    "diverged_s",
)


def _verdict(row: dict) -> str:
    value = row.get("linearizable")
    if isinstance(value, dict):  # many seeds: how many were linearizable
        unknown = value.get("unknown", 0)
        return f"{value['yes']}/{value['runs']} yes" + (f", {unknown} unknown" if unknown else "")
    word = {True: "yes", False: "NO", None: "unknown"}[value]
    return word if value is not False else f"NO ({row.get('unordered', 0)} ops)"


def _phases(key: str):
    def fmt(row: dict) -> str:
        value = row.get(key) or {}
        return "/".join(
            "-" if value.get(p) is None else _num(value[p], 0 if value[p] >= 10 else 1)
            for p in ("before", "during", "after")
        )

    return fmt


def _num(value, digits: int) -> str:
    if isinstance(value, dict):  # many seeds: median and range
        return f"{value['median']:.{digits}f} [{value['min']:.{digits}f}-{value['max']:.{digits}f}]"
    return f"{value:.{digits}f}"


def _pct(value) -> str:
    if isinstance(value, dict):
        return f"{100 * value['median']:.1f}% [{100 * value['min']:.1f}-{100 * value['max']:.1f}]"
    return percent(value)


def _lost(row: dict) -> str:
    lost, acked, unread = row.get("lost_writes"), row.get("acknowledged_writes"), row.get("unread_keys")
    if isinstance(lost, dict):  # many seeds
        most = unread["max"] if isinstance(unread, dict) else 0
        return _num(lost, 0) + (f" (up to {most:.0f} keys unread)" if most else "")
    return f"{lost} of {acked}" + (f" ({unread} keys unread)" if unread else "")


def _seconds(value) -> str:
    return "-" if value is None else _num(value, 2)


def _converged(row: dict) -> str:
    """'a-b' (converged after a, by b), '<=b' when no read after the heal disagreed; over seeds, b's spread."""
    upper, lower = row.get("convergence_s"), row.get("diverged_s")
    if upper is None or isinstance(upper, dict):
        return _seconds(upper)
    return f"<={upper:.2f}" if lower is None else f"{lower:.2f}-{upper:.2f}"


def _count(value) -> str:
    return "-" if value is None else _num(value, 0)


class _RowColumn(Column):
    """A column whose formatter sees the whole row (for composite cells)."""

    def cell(self, row: dict) -> str:
        return self.fmt(row)


_FORMATS = {
    "availability": (Column, "avail", _pct),
    "availability_minority": (Column, "avail minority", _pct),
    "availability_majority": (Column, "avail majority", _pct),
    "linearizable": (_RowColumn, "linearizable", _verdict),
    "stale_read_fraction": (Column, "stale reads", _pct),
    "lost_writes": (_RowColumn, "lost writes", _lost),
    "silently_overwritten": (Column, "overwritten", _count),
    "p50_ms": (_RowColumn, "p50 ms", _phases("p50_ms")),
    "p99_ms": (_RowColumn, "p99 ms", _phases("p99_ms")),
    "convergence_s": (_RowColumn, "converge s", _converged),
}

#: The table's rows (it is transposed: one column per configuration), each with its definition.
COLUMNS = [
    _FORMATS[key][0](key, _FORMATS[key][1], _FORMATS[key][2], definition, label) for key, label, definition in FIGURES
]


def definitions() -> list[str]:
    """``label: definition`` for every figure of the table, in order (the docs and ``--help`` print these)."""
    return [f"{column.label}: {column.help}" for column in COLUMNS]


#: What a cell of a many-seed table holds.
SEEDS_NOTE = (
    "Each cell: the median over the seeds, then [lowest-highest]; but a latency cell holds each phase's median "
    "over the seeds alone, and the linearizable row how many seeds passed (and how many were unknown, if any)."
)


def markdown(runs: list[Run], command: str) -> str:
    """The table and the definitions as Markdown, as the README shows them, with the command that made them."""
    seeds = any(isinstance(run.row.get("availability"), dict) for run in runs)
    note = f" {SEEDS_NOTE}" if seeds else ""
    lines = [
        markdown_table(COLUMNS, runs, transpose=True),
        f"\n<sub>`{command}`.{note}</sub>\n\n",
        *(f"- **{column.label}**: {column.help}.\n" for column in COLUMNS),
    ]
    return "".join(lines)


def json_rows(runs: list[Run]) -> list[dict]:
    """Per configuration: the documented keys first, then the rest of its figures."""
    rows = []
    for run in runs:
        row = {"config": run.name, **{k: run.row.get(k) for k in JSON_KEYS[1:]}}
        row.update({k: v for k, v in run.row.items() if k not in row})
        rows.append(row)
    return rows


def summarize(name: str, rows: list[dict]) -> dict:
    """Many seeds' rows of one configuration as distributions: median, min, max, values."""
    out: dict = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key == "linearizable":
            out[key] = {
                "yes": sum(v is True for v in values),
                "no": sum(v is False for v in values),
                "unknown": sum(v is None for v in values),
                "runs": len(values),
            }
        elif isinstance(values[0], dict):
            out[key] = {phase: _spread([v[phase] for v in values]) for phase in values[0]}
            out[key] = {phase: (s["median"] if s else None) for phase, s in out[key].items()}
        else:
            out[key] = _spread(values)
    return out


def _spread(values: list):
    numbers = [float(v) for v in values if is_number(v)]
    if not numbers:
        return None
    return {"median": statistics.median(numbers), "min": min(numbers), "max": max(numbers), "values": numbers}


def write_report(out: Path, runs: list[Run], meta: dict) -> Path:
    """The table (Markdown, JSON), the plots (PNG, SVG) and index.html, in ``out``."""
    write_tables(out, COLUMNS, runs, stem="cap", meta=meta, transpose=True)
    (out / "cap.json").write_text(
        json.dumps({"meta": meta, "rows": json_rows(runs)}, indent=2, default=str) + "\n", encoding="utf-8"
    )
    plots = write_plots(out, runs) if any(run.history for run in runs) else {}  # many seeds: no one history
    notes = [
        f"{run.name}: {run.extra.get('label', '')}. Claim: {run.extra.get('claim', '')}."
        + (f" Conditions: {run.extra['conditions']}." if run.extra.get("conditions") else "")
        for run in runs
    ]
    return write_page(out, "CAP, measured", INTRO, COLUMNS, runs, plots, notes=notes, meta=meta)


INTRO = (
    "The same clients, on both sides of the cluster, read, write and compare-and-set a few keys while the "
    "network is healthy, then partitioned into a majority and a minority, then healed. Each configuration "
    "made a different choice when the partition came: refuse (consistency) or answer (availability). "
    "The numbers below are what each choice cost."
)
