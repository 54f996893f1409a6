"""``capsim pacelc``: else (no partition), latency or consistency? The model and the store, measured.

capsim pacelc                              # the model's table, the store's table, what differs
capsim pacelc --out report/                # plus plots (t-visibility, staleness vs latency) and a page
capsim pacelc --wars --quorums 3/1/1,5/2/2 --t 0,1ms,5ms,10ms --latency exponential:5ms --json
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import tempfile
import threading
import time

from rich.console import Console
from rich.table import Table

import emulator as em
from capsim import limits, output
from capsim.cap import pacelc_limits, wars
from capsim.cap.legs import PRESETS, parse_legs
from capsim.cap.pacelc import QUORUMS, Sweep, jobs, run_job
from capsim.cap.pacelc_report import (
    DIFFERENCES,
    NOT_RUN,
    VISIBILITY_HELP,
    definitions,
    markdown,
    model_columns,
    model_runs,
    store_columns,
    store_runs,
    store_trials,
    visibility_cell,
    write_report,
)
from capsim.cli import SUMMARIES, LinesFormatter, UsageError
from capsim.output import writable_dir
from capsim.parallel import ProgressLines, map_unordered, positive_int, seed_value, workers_for
from capsim.report import require_plots, rich_table
from capsim.workers import WorkerPool

#: ``--wars`` without ``--quorums``: the partial quorums (R + W <= N) of the default sweep.
WARS_QUORUMS = tuple(q for q in QUORUMS if q[1] + q[2] <= q[0])
WARS_TIMES_MS = (0, 1, 5, 10, 20)
WARS_TRIALS = 2000
WARS_MODEL_TRIALS = 200_000


def register(subparsers) -> None:
    sweep = Sweep()
    figures = definitions(model_columns(sweep.waits_ms) + store_columns(sweep.waits_ms))
    parser = subparsers.add_parser(
        "pacelc",
        help=SUMMARIES["pacelc"],
        description="With no fault, sweep quorum stores over N, R, W and primary-replica over sync, semi-sync "
        "and async. The model's table: the exact-W closed form of PBS and the WARS model, computed "
        "and run on capsim in WARS's setup. The store's table: capsim's store as a client meets it. "
        "--wars: only WARS, capsim beside the model at every point, with standard errors.",
        formatter_class=LinesFormatter,
        epilog="figures:\n"
        + "\n".join(f"  {line}" for line in figures)
        + "\n\nhow the store differs from WARS:\n"
        + "\n".join(f"  {line}" for line in DIFFERENCES)
        + "\n\n--wars --json: one row per (N, R, W, t) with n, r, w, t_ms, p_stale (capsim), se "
        "(its standard error, sqrt(p (1 - p) / trials)), trials, model_p_stale, model_se, z ("
        + wars.Z_DEFINITION
        + "), visible_999_ms (the t at which the model's t-visibility reaches 99.9%) and visible_999_low_ms, "
        "visible_999_high_ms (its 95% confidence interval by order statistics; high null when the model's "
        "trials are too few to bound it)",
    )
    parser.add_argument("--seed", type=seed_value, default=sweep.seed, help=f"root seed (default {sweep.seed})")
    parser.add_argument(
        "--trials",
        type=positive_int,
        help=f"write-then-read trials per point (default {sweep.trials}; {WARS_TRIALS} with --wars)",
    )
    parser.add_argument(
        "--model-trials",
        type=positive_int,
        metavar="N",
        help=f"Monte Carlo trials of the WARS model per quorum (default {sweep.model_trials:,}; "
        f"{WARS_MODEL_TRIALS:,} with --wars)",
    )
    parser.add_argument(
        "--latency",
        metavar="SPEC",
        default=str(sweep.latency),
        help=f"every link's latency: constant:2ms, uniform:1ms:5ms, exponential:5ms, "
        f"lognormal:MEDIAN:SIGMA, pareto:SCALE:ALPHA[:CAP] (default {sweep.latency})",
    )
    parser.add_argument(
        "--legs",
        metavar="SPEC",
        help="WARS's four legs, each its own distribution, as PBS defines them: w=SPEC,a=SPEC,r=SPEC,s=SPEC "
        "(w: write to a replica, a: its ack, r: read request, s: the answer; a leg left out is --latency), or "
        f"a preset of the paper's production fits ({', '.join(PRESETS)}). The model takes any legs; capsim's "
        "run of WARS needs w like r and a like s (a link direction carries one latency: W and R both go "
        "coordinator->replica), so --wars refuses other legs and the sweep leaves its capsim columns empty. "
        "The store's table always uses --latency",
    )
    parser.add_argument(
        "--quorums",
        metavar="N/R/W,...",
        help="quorums to sweep (default: "
        + ",".join("/".join(map(str, q)) for q in QUORUMS)
        + "; with --wars the partial ones)",
    )
    parser.add_argument(
        "--t",
        dest="times",
        metavar="LIST",
        help="times after the write, e.g. 0,1ms,5ms,10ms (default "
        + ",".join(f"{t}ms" if t else "0" for t in sweep.waits_ms)
        + "; with --wars "
        + ",".join(f"{t}ms" if t else "0" for t in WARS_TIMES_MS)
        + ")",
    )
    parser.add_argument(
        "--wars",
        action="store_true",
        help="reproduce PBS's WARS model on capsim, beside the model computed, at every point",
    )
    form = parser.add_mutually_exclusive_group()  # both printed JSON and dropped the Markdown silently
    form.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    form.add_argument("--markdown", action="store_true", help="print the report as Markdown (as in the README)")
    parser.add_argument(
        "--out", type=output.path_of, metavar="DIR", help="write the report (Markdown, JSON, plots, HTML)"
    )
    parser.add_argument("--jobs", type=positive_int, metavar="J", help="worker processes (default: CPUs)")
    parser.set_defaults(func=run)


def _sweep(args) -> Sweep:
    try:
        latency = em.parse_distribution(args.latency)
    except em.ConfigError as exc:
        raise UsageError(f"--latency: {exc}") from None
    legs = None
    if args.legs is not None:
        legs = parse_legs(args.legs, latency)
        if args.wars and not legs.runnable:
            raise UsageError(f"--legs {args.legs}: {wars.NOT_RUNNABLE}; leave out --wars to see the model alone")
    quorums = times = None
    if args.quorums is not None:
        if not args.quorums.strip():
            raise UsageError("--quorums: give one or more N/R/W, such as 3/1/1,3/2/2 (or leave it out)")
        quorums = tuple(wars.parse_quorums(args.quorums))
        _once("--quorums", ["/".join(map(str, q)) for q in quorums])
        _fits(quorums)
    if args.times is not None:
        if not args.times.strip():
            raise UsageError("--t: give one or more times, such as 0,1ms,5ms (or leave it out)")
        times = tuple(_ms(t) for t in wars.parse_times(args.times))
        _once("--t", [f"{t:g} ms" for t in times])
    base = Sweep()
    return Sweep(
        seed=args.seed,
        latency=latency,
        trials=args.trials or (WARS_TRIALS if args.wars else base.trials),
        model_trials=args.model_trials or (WARS_MODEL_TRIALS if args.wars else base.model_trials),
        quorums=quorums or (WARS_QUORUMS if args.wars else base.quorums),
        waits_ms=times or (WARS_TIMES_MS if args.wars else base.waits_ms),
        replication=() if args.quorums else base.replication,
        legs=legs,
    )


def _once(flag: str, points: list[str]) -> None:
    """Refuse a point given twice: it would be run, and printed, twice."""
    for point in points:
        if points.count(point) > 1:
            raise UsageError(f"{flag}: {point} is given twice; give each once")


def _fits(quorums: tuple) -> None:
    """Refuse a quorum whose N servers alone would not fit in memory (``capsim.limits``), before any run."""
    n, r, w = max(quorums)
    try:
        limits.check(n, 0)
    except limits.TooBig as exc:
        raise UsageError(f"--quorums {n}/{r}/{w}: {exc}") from None


def _ms(seconds: float) -> float | int:
    ms = round(seconds * 1000, 9)
    return int(ms) if ms == int(ms) else ms


def run(args) -> int:
    if args.wars and (args.out is not None or args.markdown):
        flag = "--out" if args.out is not None else "--markdown"
        raise UsageError(f"--wars prints a table or --json, and writes no report: leave out {flag}, or --wars")
    sweep = _sweep(args)
    plan = _plan(sweep, wars_only=args.wars)  # before --out's directory is made
    if args.out is not None:
        writable_dir(args.out)
        require_plots()
    console = output.console(stderr=bool(args.json or args.markdown))
    if args.wars:
        return _run_wars(args, sweep, console, plan)
    work = jobs(sweep)
    workers = _workers(plan, workers_for(len(work), args.jobs))
    counts = [
        pacelc_limits.trials_of(None if kind == "replication" else q, len(sweep.waits_ms), sweep.trials)
        for _, kind, q in work
    ]
    model_counts = [sweep.model_trials if kind == "quorum" else 0 for _, kind, _ in work]
    rows = _with_trial_progress(run_job, work, counts, model_counts, workers)
    order = {(j[1], j[2] if isinstance(j[2], str) else tuple(j[2])): i for i, j in enumerate(work)}
    rows.sort(
        key=lambda row: order[
            (row["kind"], row["mode"] if row["kind"] == "replication" else (row["n"], row["r"], row["w"]))
        ]
    )
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        print()
    elif args.markdown:
        print(markdown(rows, sweep), end="")
    else:
        _print_tables(console, rows, sweep)
    if args.out:
        console.print(f"report: {write_report(args.out, rows, sweep)}")
    return 0


def _print_tables(console: Console, rows: list[dict], sweep: Sweep) -> None:
    console.print(
        rich_table(
            f"The model: PBS (Bailis et al., VLDB 2012), {sweep.legs_text()}; N/R/W",
            model_columns(sweep.waits_ms),
            model_runs(rows),
        )
    )
    if not sweep.wars_legs().runnable:
        console.print(NOT_RUN, highlight=False)
    console.print(
        rich_table(
            f"capsim's store: every link {sweep.latency}, {store_trials(rows, sweep.trials)}, seed {sweep.seed}",
            store_columns(sweep.waits_ms),
            store_runs(rows),
        )
    )
    console.print("How the store differs from WARS:", highlight=False)
    for line in DIFFERENCES:
        console.print(f"- {line}", highlight=False)
    console.print(
        "Definitions: capsim pacelc --help. WARS against capsim point by point: capsim pacelc --wars.", highlight=False
    )


def wars_job(job: tuple, progress=None) -> list[dict]:
    """One quorum of ``--wars`` in a worker: capsim's points beside the model's, as JSON rows."""
    (n, r, w), times_ms, latency, trials, model_trials, seed = job
    measured = wars.measure(n, r, w, [t / 1000 for t in times_ms], latency, trials, seed, progress)
    computed = wars.model(n, r, w, latency, model_trials, seed, progress)
    rows = []
    for t_ms, point in zip(times_ms, measured):
        expected = computed.point(t_ms / 1000)
        z = wars.z_score(point, expected)
        rows.append(
            {
                **point.to_dict(),
                "t_ms": t_ms,
                "model_p_stale": expected.p_stale,
                "model_se": expected.se,
                "z": z,
                **wars.visibility(computed),
            }
        )
    return rows


def _run_wars(args, sweep: Sweep, console: Console, plan: pacelc_limits.Plan) -> int:
    work = [(q, sweep.waits_ms, sweep.wars_legs(), sweep.trials, sweep.model_trials, sweep.seed) for q in sweep.quorums]
    workers = _workers(plan, workers_for(len(work), args.jobs))
    counts = [len(sweep.waits_ms) * sweep.trials] * len(work)
    results = _with_trial_progress(wars_job, work, counts, [sweep.model_trials] * len(work), workers)
    rows = sorted((row for result in results for row in result), key=lambda r: (r["n"], r["r"], r["w"], r["t_ms"]))
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    table = Table(
        title=f"WARS on capsim beside WARS computed: {sweep.legs_text()}, {sweep.trials} trials "
        f"per point on capsim, {sweep.model_trials} in the model, seed {sweep.seed}",
        title_justify="left",
    )
    for header in ("N/R/W", "t ms", "capsim", "± s.e.", "model", "± s.e.", "z", "99.9% ms"):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(
            f"{row['n']}/{row['r']}/{row['w']}",
            f"{row['t_ms']:g}",
            f"{row['p_stale']:.4f}",
            f"{row['se']:.4f}",
            f"{row['model_p_stale']:.4f}",
            f"{row['model_se']:.4f}",
            f"{row['z']:+.2f}",
            visibility_cell(row),
        )
    console.print(table)
    worst = max((abs(row["z"]) for row in rows), default=0.0)
    console.print(
        f"{len(rows)} points; largest |z| {worst:.2f}. z: {wars.Z_DEFINITION}. 99.9% ms: {VISIBILITY_HELP}.",
        highlight=False,
    )
    return 0


# -- how big, how long, how far -----------------------------------------------------------------------

#: Wall seconds of estimated work beyond which the estimate is said before the run starts.
SAY_ESTIMATE_AFTER = 60.0
#: Wall seconds between readings of the trial counters (the bar, and the lines off a terminal).
POLL = 0.5

#: Trials done by each job, two counts of 8 bytes at 16 x its index (on capsim, then the model's): a file every
#: worker maps, a forked one by inheritance and a spawned one (a replacement) by the path it is given.
_COUNTS: mmap.mmap | None = None


def _plan(sweep: Sweep, wars_only: bool) -> pacelc_limits.Plan:
    """Refuse a sweep whose largest run would not fit in memory (a usage error: exit 2); its plan otherwise."""
    try:
        return pacelc_limits.check(
            sweep.quorums,
            () if wars_only else sweep.replication,
            len(sweep.waits_ms),
            sweep.trials,
            sweep.model_trials,
            wars_only,
        )
    except limits.TooBig as exc:
        raise UsageError(str(exc)) from None


def _workers(plan: pacelc_limits.Plan, workers: int) -> int:
    """As many workers as can each hold the largest run; the estimate of the time, on stderr, when it is long."""
    fit = limits.workers_that_fit(workers, plan.run_mb)
    if fit < workers:
        print(
            f"capsim pacelc: using {fit} of {workers} workers: each run needs about {plan.run_mb:,.0f} MB "
            f"(capsim.cap.pacelc_limits) and {limits.available_mb():,.0f} MB are available",
            file=sys.stderr,
        )
    seconds = plan.seconds / fit
    if seconds >= SAY_ESTIMATE_AFTER:
        print(
            f"capsim pacelc: {plan.trials:,} trials on capsim, about {_duration(seconds)} with {fit} "
            f"worker{'s' if fit > 1 else ''} (estimated from the trial times measured on a development machine; "
            "fewer --trials, --t values or smaller --quorums take less)",
            file=sys.stderr,
        )
    return fit


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:,.0f} min" if seconds < 7200 else f"{seconds / 3600:,.1f} h"


class _Tick:
    """A job's trial counters in the shared file: written by the one process running the job, read by the parent."""

    def __init__(self, index: int, path: str | None) -> None:
        self.index, self.done, self.model_done = index, 0, 0
        self.counts = _COUNTS if _COUNTS is not None or path is None else _map(path)

    def __call__(self, trials: int, model: bool = False) -> None:
        if model:
            self.model_done += trials
        else:
            self.done += trials
        if self.counts is not None:
            struct.pack_into("qq", self.counts, 16 * self.index, self.done, self.model_done)


def _map(path: str) -> mmap.mmap | None:
    """The counters' file, mapped in a spawned worker (None when the parent has already let it go)."""
    try:
        with open(path, "r+b") as file:
            return mmap.mmap(file.fileno(), 0)
    except (OSError, ValueError):
        return None


def _counted(item: tuple):
    """``function(job, tick)`` in a worker (or here): the job's trials counted as they end."""
    function, index, job, path = item
    return function(job, _Tick(index, path))


def _done(jobs: int) -> tuple[int, int]:
    """Trials done on capsim and in the model, over every job."""
    assert _COUNTS is not None
    counts = struct.unpack_from(f"{2 * jobs}q", _COUNTS)
    return sum(counts[0::2]), sum(counts[1::2])


def _with_trial_progress(function, work: list, counts: list[int], model_counts: list[int], workers: int) -> list:
    """``function(job, tick)`` over ``work`` with two bars, trials on capsim and model trials, moving as they end.

    Off a terminal, a line on stderr every ``ProgressLines.every`` seconds. Every worker, a forked one or a
    spawned one that replaces a dead one, writes its job's counts into a file the parent maps and removes at the
    end.
    """
    global _COUNTS
    with tempfile.NamedTemporaryFile(prefix="capsim-pacelc-", suffix=".counts", delete=False) as file:
        file.write(bytes(16 * len(work)))
        path = file.name
    try:
        with open(path, "r+b") as file:
            _COUNTS = mmap.mmap(file.fileno(), 0)  # before the workers fork, so they share it
        return _run_counted(function, work, counts, model_counts, workers, path)
    finally:
        if _COUNTS is not None:
            _COUNTS.close()
        _COUNTS = None
        os.unlink(path)


def _run_counted(function, work: list, counts: list[int], model_counts: list[int], workers: int, path: str) -> list:
    items = [(function, i, job, path) for i, job in enumerate(work)]
    pool = WorkerPool(min(workers, len(work))).start() if workers > 1 and len(work) > 1 else None  # before rich
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console, total, model_total, results = output.console(stderr=True), sum(counts), sum(model_counts), []
    say = ProgressLines(console, "trials", total)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    stop = threading.Event()
    try:
        with Progress(*columns, console=console, transient=False) as progress:  # after the workers are forked
            task = progress.add_task("trials on capsim", total=total)
            model_task = progress.add_task("model trials", total=model_total) if model_total else None

            def show() -> None:
                while not stop.wait(POLL):
                    done, model_done = _done(len(work))
                    progress.update(task, completed=done)
                    if model_task is not None:
                        progress.update(model_task, completed=model_done)
                    note = f", model trials {model_done:,} of {model_total:,}" if model_total else ""
                    say(done, _left(say, done, total) + note)

            poller = threading.Thread(target=show, daemon=True)
            poller.start()
            for result in map_unordered(_counted, items, workers, pool):
                results.append(result)
            stop.set()
            poller.join()
            progress.update(task, completed=total)
            if model_task is not None:
                progress.update(model_task, completed=model_total)
    finally:
        stop.set()
        if pool is not None:
            pool.close()
    return results


def _left(say: ProgressLines, done: int, total: int) -> str:
    """'about N s left' from the pace so far (display only)."""
    if not done:
        return "time left not known yet"
    elapsed = time.monotonic() - say.started  # wall-clock ok: progress display only
    return f"about {_duration(elapsed * (total - done) / done)} left"
