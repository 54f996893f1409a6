"""The PACELC report: the model's table, the store's table, what differs, and the plots.

Every figure is defined once, in its column's ``help``; ``capsim pacelc
--help``, the Markdown report and the README print those same words.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from capsim.cap.pacelc import TIMEOUT
from capsim.cap.wars import CONFIDENCE, NOT_RUNNABLE, VISIBILITY
from capsim.report import Column, Run, Section, markdown_table, pyplot, save, write_page, write_tables
from capsim.report.tables import millis


def _prob(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _at(key: str, wait):
    """A formatter reading ``row[key][wait]`` (curves are keyed by t in ms)."""

    def fmt(row: dict) -> str:
        curve = row.get(key) or {}
        return _prob(curve.get(wait, curve.get(str(wait))))

    return fmt


def _count(value) -> str:
    return "-" if value is None else str(value)


def _pair(low: str, high: str):
    def fmt(row: dict) -> str:
        return f"{millis(row.get(low))}/{millis(row.get(high))}"

    return fmt


class _RowColumn(Column):
    """A column whose formatter sees the whole row."""

    def cell(self, row: dict) -> str:
        return self.fmt(row)


def _t(wait) -> str:
    return "t=0" if not wait else f"t={wait:g}ms"


def probe_ms(waits_ms) -> float:
    """The second t shown in the tables: 10 ms when swept, else the largest t."""
    return 10 if 10 in waits_ms else max(waits_ms)


def model_columns(waits_ms) -> list[Column]:
    """The model's table: exact-W closed form, WARS computed and WARS run on capsim."""
    first, probe = waits_ms[0], probe_ms(waits_ms)
    return [
        Column(
            "strict",
            "R+W>N",
            lambda v: "yes" if v else "no",
            "every read quorum meets every write quorum, so neither model can read stale",
        ),
        Column(
            "closed_form",
            "exact-W",
            _prob,
            "P(stale) when a write reaches exactly W replicas and never spreads, and a read asks R random "
            "replicas: C(N-W, R) / C(N, R), the closed form of PBS",
        ),
        _RowColumn(
            "wars",
            f"WARS {_t(first)}",
            _at("wars", first),
            f"P(stale) under WARS, PBS's model: a read started {first:g} ms after the commit (Monte Carlo)",
        ),
        _RowColumn(
            "wars_capsim",
            f"capsim {_t(first)}",
            _at("wars_capsim", first),
            "the same read, measured on capsim's store set up as WARS (capsim pacelc --wars; partial quorums only)",
        ),
        _RowColumn(
            "wars",
            f"WARS {_t(probe)}",
            _at("wars", probe),
            f"P(stale) under WARS for a read started {probe:g} ms after the commit",
        ),
        _RowColumn(
            "wars_capsim",
            f"capsim {_t(probe)}",
            _at("wars_capsim", probe),
            "the same, measured on capsim's store set up as WARS",
        ),
        _RowColumn(
            "visible_999_ms",
            f"{100 * VISIBILITY:g}% ms",
            visibility_cell,
            VISIBILITY_HELP,
        ),
    ]


VISIBILITY_HELP = (
    f"ms after the commit until t-visibility (PBS's P(consistent) of a read t after it) reaches "
    f"{100 * VISIBILITY:g}% under WARS, and in brackets its {100 * CONFIDENCE:g}% confidence interval: two order "
    "statistics of the model's trials, chosen by binomial ranks, so it holds whatever the distribution "
    "('?' when the trials are too few to bound it above)"
)


def visibility_cell(row: dict) -> str:
    """'3.1 (2.8-3.7)': the t-visibility t and its confidence interval, in ms."""
    if row.get("visible_999_ms") is None:
        return "-"
    low, high = row.get("visible_999_low_ms"), row.get("visible_999_high_ms")
    if low is None:  # a row without the interval (one made by hand)
        return millis(row["visible_999_ms"])
    return f"{millis(row['visible_999_ms'])} ({millis(low)}-{'?' if high is None else millis(high)})"


def store_columns(waits_ms) -> list[Column]:
    """The store's table: staleness after the client's acknowledgement, and latency as the client sees it."""
    first, probe = waits_ms[0], probe_ms(waits_ms)
    return [
        _RowColumn(
            "t_visibility",
            f"stale {_t(first)}",
            _at("t_visibility", first),
            f"P(stale) on capsim's store: a read from a random node (a random replica, on the primary-replica "
            f"rows) {first:g} ms after the writing "
            "client got its acknowledgement misses the write (over the trials answered)",
        ),
        _RowColumn(
            "t_visibility",
            f"stale {_t(probe)}",
            _at("t_visibility", probe),
            f"the same, {probe:g} ms after the acknowledgement",
        ),
        _RowColumn(
            "read_p50_ms",
            "read p50/p99",
            _pair("read_p50_ms", "read_p99_ms"),
            "ms from the client's read request to its answer ('no such key' included), median and 99th "
            "percentile by nearest rank",
        ),
        _RowColumn(
            "write_p50_ms",
            "write p50/p99",
            _pair("write_p50_ms", "write_p99_ms"),
            "ms from the client's write request to its acknowledgement, median and 99th percentile by nearest rank",
        ),
        Column(
            "unanswered",
            "no answer",
            _count,
            f"trials, over all the t, whose write or read got no answer (the client's {TIMEOUT:g} s timeout ran out, "
            "or a refusal): left out of the staleness, and of the latency percentiles, which are over answers only",
        ),
    ]


#: Said under the model's table when capsim could not run its legs.
NOT_RUN = f"The capsim columns are empty: {NOT_RUNNABLE}."

#: How capsim's store differs from WARS, one line each.
DIFFERENCES = (
    "FIFO links: a message waits behind any sent before it on its link, so one slow leg holds up the next "
    "(WARS draws every leg on its own).",
    "A coordinator that owns a copy: W=1 commits and R=1 reads on its own copy with no network leg, which makes "
    "small quorums staler (WARS: the coordinator holds no copy).",
    "t from the client's acknowledgement: the reply's trip back and the read's trip out give the write more time "
    "to spread, which makes every quorum fresher (WARS: t from the commit, at the coordinator).",
)


def model_runs(rows: list[dict]) -> list[Run]:
    return [Run(row["config"], [], row) for row in rows if row["kind"] == "quorum"]


def store_runs(rows: list[dict]) -> list[Run]:
    return [Run(row["config"], [], row) for row in rows]


def definitions(columns: list[Column]) -> list[str]:
    """``header: definition``, once per distinct header."""
    seen, lines = set(), []
    for column in columns:
        if column.header not in seen:
            seen.add(column.header)
            lines.append(f"{column.header}: {column.help}")
    return lines


def store_trials(rows: list[dict], trials: int) -> str:
    """'N trials per point, standard error at most X', X from the fewest answered trials a point can have had."""
    missing = max((row.get("unanswered") or 0 for row in rows), default=0)
    answered = max(1, trials - missing)
    note = f" (up to {missing} without an answer)" if missing else ""
    return f"{trials} trials per point{note}, standard error at most {math.sqrt(0.25 / answered):.2f}"


def markdown(rows: list[dict], sweep) -> str:
    """The whole report as Markdown: both tables, what differs, and the definitions."""
    models, stores = model_columns(sweep.waits_ms), store_columns(sweep.waits_ms)
    se = math.sqrt(0.25 / sweep.trials)
    parts = [
        f"The model (N/R/W; {sweep.legs_text()}; WARS computed from {sweep.model_trials:,} trials, "
        f"run on capsim with {sweep.trials} per point, standard error at most {se:.2f}):\n\n",
        markdown_table(models, model_runs(rows)),
        *([f"\n{NOT_RUN}\n"] if not sweep.wars_legs().runnable else []),
        f"\ncapsim's store (every link {sweep.latency}; {store_trials(rows, sweep.trials)}):\n\n",
        markdown_table(stores, store_runs(rows)),
        "\nHow the store differs from WARS:\n\n",
        *(f"- {line}\n" for line in DIFFERENCES),
        "\nWhat each column means:\n\n",
        *(f"- {line}\n" for line in definitions(models + stores)),
    ]
    return "".join(parts)


#: The partial quorums the t-visibility plot shows when the sweep has them (more would crowd it).
PLOTTED = ("3/1/1", "3/1/2", "5/1/2", "5/2/2")


def plot_visibility(rows: list[dict], stem: Path) -> list[Path]:
    """P(stale) against t for partial quorums: WARS computed (line), WARS on capsim (dots), the store (dashed)."""
    plt = pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8.5, 5))
    partial = [row for row in rows if row["kind"] == "quorum" and not row["strict"]]
    shown = [row for row in partial if row["config"] in PLOTTED] or partial[:4]
    colours = plt.get_cmap("tab10")
    for i, row in enumerate(shown):
        colour = colours(i % 10)
        fine = [(t, p) for t, p in row["wars_fine"] if p > 0]
        if fine:
            ax.plot(*zip(*fine), color=colour, lw=1.4, label=row["config"])
        capsim = _positive(row["wars_capsim"])
        if capsim:
            se = {float(t): value for t, value in row["wars_capsim_se"].items()}
            below = [min(se[t], 0.9 * p) for t, p in capsim]  # a log axis cannot go to zero
            ax.errorbar(
                *zip(*capsim), yerr=[below, [se[t] for t, _ in capsim]], fmt="o", ms=4, color=colour, capsize=2, lw=0.8
            )
        store = _positive(row["t_visibility"])
        if store:
            ax.plot(*zip(*store), ls="--", marker="s", ms=3, color=colour, lw=1.0)
    ax.axhline(1 - VISIBILITY, color="#616161", ls=":", lw=1)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1)
    ax.set_xlim(0, max((float(t) for row in shown for t in row["t_visibility"]), default=100) * 1.2)
    ax.set_xlabel("t (ms): from the commit (WARS), from the writing client's acknowledgement (store)")
    ax.set_ylabel("P(stale read)")
    ax.set_title("P(a read t after the write misses it): 1 - t-visibility", fontsize=11)
    ax.grid(alpha=0.3, which="both")
    styles = [
        Line2D([], [], color="#424242", lw=1.4, label="WARS computed"),
        Line2D([], [], color="#424242", marker="o", ls="", label="WARS run on capsim (±1 s.e.)"),
        Line2D([], [], color="#424242", marker="s", ls="--", label="capsim's store"),
        Line2D([], [], color="#616161", ls=":", label=f"{100 * VISIBILITY:g}% consistent"),
    ]
    first = ax.legend(fontsize=8, title="N/R/W", title_fontsize=8, loc="upper right")
    ax.add_artist(first)
    ax.legend(handles=styles, fontsize=8, loc="lower left")
    return save(fig, stem)


def _positive(curve: dict) -> list[tuple[float, float]]:
    """(t, p) points of a curve with p > 0, sorted by t (a log axis cannot show 0)."""
    return sorted((float(t), p) for t, p in curve.items() if p)


def plot_tradeoff(rows: list[dict], stem: Path) -> list[Path]:
    """The store's stale-read probability (first t) against p99 latency, one labelled point per configuration."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for row in rows:
        colour = "#1565c0" if row["kind"] == "quorum" else "#c62828"
        marker = "s" if row["strict"] is None else ("o" if row["strict"] else "^")
        ax.scatter(row["p99_ms"], row["stale"], color=colour, marker=marker, s=36)
        ax.annotate(row["config"], (row["p99_ms"], row["stale"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel("p99 latency of reads and writes, as the client sees them (ms)")
    ax.set_ylabel("P(read right after the acknowledgement misses the write)")
    ax.set_title(
        "PACELC on capsim's store: else, latency or consistency\n(circles R+W>N, triangles partial "
        "quorums N/R/W, squares primary-replica with replica reads)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    return save(fig, stem)


def write_report(out: Path, rows: list[dict], sweep) -> Path:
    """Markdown, JSON, the two plots and a page, in ``out``."""
    meta = sweep.meta()
    models, stores = model_columns(sweep.waits_ms), store_columns(sweep.waits_ms)
    write_tables(out, models, model_runs(rows), stem="pacelc-model", meta=meta)
    write_tables(out, stores, store_runs(rows), stem="pacelc-store", meta=meta)
    (out / "pacelc.md").write_text(markdown(rows, sweep), encoding="utf-8")
    (out / "pacelc.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2, default=str) + "\n", encoding="utf-8"
    )
    plots = {
        "t_visibility": plot_visibility(rows, out / "t_visibility"),
        "tradeoff": plot_tradeoff(rows, out / "tradeoff"),
    }
    intro = (
        "No partition here: the PACELC 'else'. The first table is the model of Bailis et al. (PBS, VLDB 2012): "
        "the exact-W closed form and WARS, computed and run on capsim in WARS's own setup. The second is "
        "capsim's store as a client meets it."
    )
    sections = [
        Section(
            "pacelc-model",
            f"The model (N/R/W; {sweep.legs_text()})",
            models,
            model_runs(rows),
            note=" ".join(definitions(models)),
        ),
        Section(
            "pacelc-store",
            "capsim's store",
            stores,
            store_runs(rows),
            note="How the store differs from WARS: " + " ".join(DIFFERENCES),
        ),
    ]
    return write_page(
        out,
        "PACELC, measured",
        intro,
        models,
        model_runs(rows),
        plots,
        meta=meta,
        notes=definitions(stores),
        sections=sections,
    )
