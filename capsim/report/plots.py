"""Plots of a report, as PNG and SVG (matplotlib, no display needed).

Each run-based plot has one panel per configuration, on a shared time axis,
with the fault windows shaded so the eye finds the partition at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from capsim.report.model import Run

#: The one line said when a plot is wanted and matplotlib is not installed.
NO_MATPLOTLIB = "plots need matplotlib, which is not installed: pip install 'capsim[plots]'"

_SIDE_COLOURS = {"minority": "#c62828", "majority": "#1565c0", "all": "#2e7d32"}
_OUTCOME_COLOURS = {"ok": "#2e7d32", "fail": "#c62828", "info": "#ef6c00"}


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only), with reproducible SVG ids.

    Raises:
        ImportError: matplotlib is not installed (the ``plots`` extra); the message says so in one line.
    """
    try:
        import matplotlib
    except ImportError:
        raise ImportError(NO_MATPLOTLIB) from None

    matplotlib.use("Agg")  # files only: never needs a display
    matplotlib.rcParams["svg.hashsalt"] = "capsim"  # the same ids in every run: reproducible files
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as <text>, not glyph paths: a third of the bytes
    import matplotlib.pyplot as plt

    return plt


def require_plots(option: str = "--out") -> None:
    """Before a command runs: refuse ``option`` in one line if it would draw plots without matplotlib.

    Raises:
        UsageError: matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: F401 - only whether it imports
    except ImportError:
        from capsim.cli import UsageError

        raise UsageError(f"{option} writes plots; {NO_MATPLOTLIB}, or leave out {option}") from None


def _bucket(duration: float) -> float:
    """A bucket width giving about 60 buckets, rounded to a readable value."""
    for width in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0):
        if duration / width <= 80:
            return width
    return duration / 60


def _shaded(runs: Sequence[Run]) -> str:
    """'(shaded: partition)' from the windows' labels."""
    labels = sorted({window.label for run in runs for window in run.windows})
    return f" (shaded: {', '.join(labels)})" if labels else ""


def _panels(runs: Sequence[Run], title: str, ylabel: str):
    plt = pyplot()
    title += _shaded(runs)
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 1.9 * len(runs) + 0.8), sharex=True, squeeze=False)
    fig.suptitle(title)
    for ax, run in zip(axes[:, 0], runs):
        for window in run.windows:
            ax.axvspan(window.start, window.end, color="#9e9e9e", alpha=0.18, lw=0)
        ax.set_title(run.name, fontsize=9, loc="left")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
    axes[-1, 0].set_xlabel("virtual time (s)")
    return plt, fig, axes[:, 0]


def _spans(width: float, end: float) -> list[float]:
    """The length of each bucket of ``width`` from 0 up to ``end``.

    The last one ends with the run, so a rate in it is its count over that
    shorter span, not over the whole width (an empty last bucket keeps the width).
    """
    last = int(end // width) + 1
    return [min(width, end - i * width) if end > i * width else width for i in range(last)]


def plot_throughput(runs: Sequence[Run]):
    """Successful operations per second over time, one line per side: each ok op counted at its invocation."""
    _plt, fig, axes = _panels(runs, "successful operations per second, by invocation time", "ok ops/s")
    width = _bucket(max(run.duration() for run in runs) or 1.0)
    for ax, run in zip(axes, runs):
        counts: dict[str, dict[int, int]] = {}
        for invoke, done in run.completed():
            if done["type"] == "ok":
                slots = counts.setdefault(run.side_of(invoke), {})
                slot = int(invoke["time"] // width)
                slots[slot] = slots.get(slot, 0) + 1
        spans = _spans(width, run.duration())
        for side in sorted(counts):
            ax.step(
                [i * width for i in range(len(spans))],
                [counts[side].get(i, 0) / span for i, span in enumerate(spans)],
                where="post",
                label=side,
                color=_SIDE_COLOURS.get(side),
                lw=1.2,
            )
        ax.legend(fontsize=7, loc="upper right")
    return fig


def plot_latency(runs: Sequence[Run]):
    """Latency of every completed operation against the time it was invoked."""
    _plt, fig, axes = _panels(runs, "operation latency", "latency (ms)")
    for ax, run in zip(axes, runs):
        for outcome, colour in _OUTCOME_COLOURS.items():
            points = [(i["time"], 1000 * (d["time"] - i["time"])) for i, d in run.completed() if d["type"] == outcome]
            if points:
                xs, ys = zip(*points)
                # thousands of points: a bitmap inside the SVG, axes and text stay vector
                ax.scatter(xs, ys, s=3, color=colour, label=outcome, alpha=0.6, lw=0, rasterized=True)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.legend(fontsize=7, loc="upper right", markerscale=3)
    return fig


def plot_staleness(runs: Sequence[Run]):
    """Stale reads (reads that missed an acknowledged write) per second over time.

    Only configurations with a stale read get a panel; with none anywhere there is no plot (None).
    """
    runs = [run for run in runs if run.stale]
    if not runs:
        return None
    _plt, fig, axes = _panels(runs, "stale reads per second", "stale reads/s")
    width = _bucket(max(run.duration() for run in runs) or 1.0)
    for ax, run in zip(axes, runs):
        spans = _spans(width, run.duration())
        counts = [0] * len(spans)
        for t in run.stale:
            counts[min(int(t // width), len(spans) - 1)] += 1
        rates = [c / span for c, span in zip(counts, spans)]
        ax.step([i * width for i in range(len(spans))], rates, where="post", color="#6a1b9a", lw=1.2)
    return fig


#: name -> function(runs) -> matplotlib Figure
PLOTS: dict[str, Callable] = {
    "throughput": plot_throughput,
    "latency": plot_latency,
    "staleness": plot_staleness,
}


def save(fig, stem: Path) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg``; close it; return the paths."""
    plt = pyplot()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110, metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Date": None})
    plt.close(fig)
    return paths


def write_plots(out: Path, runs: Sequence[Run], names: Sequence[str] = tuple(PLOTS)) -> dict[str, list[Path]]:
    """Draw the named run plots into ``out``; returns name -> [png, svg] (a plot with nothing to show is left out)."""
    figures = {name: PLOTS[name](runs) for name in names}
    return {name: save(fig, out / name) for name, fig in figures.items() if fig is not None}


def xy_plot(
    stem: Path,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    markers: bool = True,
) -> list[Path]:
    """A plain line plot of named (xs, ys) series, saved as PNG and SVG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o" if markers else None, ms=3, lw=1.2, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, stem)
