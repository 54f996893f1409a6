"""The PACELC table and plots: staleness against latency, and t-visibility."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from capsim.report import Column, Run, write_page, write_tables
from capsim.report import pyplot, save, xy_plot
from capsim.report.tables import millis


def _prob(value) -> str:
    return "-" if value is None else f"{value:.3f}"


COLUMNS = [
    Column("strict", "R+W>N", lambda v: "-" if v is None else ("yes" if v else "no"),
           "a read quorum always meets the last write quorum"),
    Column("stale", "stale t=0", _prob, "P(read right after the write's ack misses it)"),
    Column("pbs_measured", "PBS meas.", _prob, "measured with writes to exactly W, reads from exactly R"),
    Column("pbs_closed_form", "PBS formula", _prob, "C(N-W, R) / C(N, R)"),
    Column("stale_10ms", "stale t=10ms", _prob, "P(stale) for a read 10 ms after the ack"),
    Column("read_p99_ms", "read p99", millis, "ms"),
    Column("write_p99_ms", "write p99", millis, "ms"),
]


def to_runs(rows: list[dict]) -> list[Run]:
    runs = []
    for row in rows:
        curve = row["t_visibility"]
        runs.append(Run(row["config"], [], {**row, "stale_10ms": curve.get(10, curve.get("10"))}))
    return runs


def plot_tradeoff(rows: list[dict], stem: Path) -> list[Path]:
    """Stale-read probability (t=0) against p99 latency, one labelled point per configuration."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for row in rows:
        colour = "#1565c0" if row["kind"] == "quorum" else "#c62828"
        marker = "s" if row["strict"] is None else ("o" if row["strict"] else "^")
        ax.scatter(row["p99_ms"], row["stale"], color=colour, marker=marker, s=36)
        ax.annotate(row["config"], (row["p99_ms"], row["stale"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_xlabel("p99 latency of reads and writes (ms)")
    ax.set_ylabel("P(read misses the last acknowledged write)")
    ax.set_title("PACELC: else, latency or consistency\n(circles R+W>N, triangles partial quorums, "
                 "squares primary-replica with replica reads)", fontsize=10)
    ax.grid(alpha=0.3)
    return save(fig, stem)


def plot_visibility(rows: list[dict], stem: Path) -> list[Path]:
    """P(stale) against the time between the write's ack and the read (PBS t-visibility)."""
    series = {}
    for row in rows:
        if row["strict"] is True:
            continue
        points = sorted((float(t), p) for t, p in row["t_visibility"].items() if p is not None)
        series[row["config"]] = ([max(t, 0.5) for t, _ in points], [p for _, p in points])
    return xy_plot(stem, series, "t-visibility: staleness falls with time since the write",
                   "ms between the write's acknowledgement and the read (0 drawn at 0.5)", "P(stale read)",
                   logx=True)


def write_report(out: Path, runs: list[Run], rows: list[dict], sweep) -> Path:
    write_tables(out, COLUMNS, runs, stem="pacelc", meta=asdict(sweep))
    (out / "pacelc.json").write_text(json.dumps({"meta": asdict(sweep), "rows": rows}, indent=2, default=str) + "\n",
                                     encoding="utf-8")
    plots = {"tradeoff": plot_tradeoff(rows, out / "tradeoff"), "t_visibility": plot_visibility(rows, out / "t_visibility")}
    intro = ("No partition here: the PACELC 'else'. Every configuration serves the same write-then-read trials; "
             "waiting for more replicas costs latency and buys freshness. Partial quorums (R + W <= N) are "
             "stale with the probability PBS predicts, less so the longer the reader waits.")
    return write_page(out, "PACELC, measured", intro, COLUMNS, runs, plots, meta=asdict(sweep))
