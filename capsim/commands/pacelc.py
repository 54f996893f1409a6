"""``capsim pacelc``: else (no partition), latency or consistency? Measured.

    capsim pacelc                  # the table: stale-read probability beside p99 latency
    capsim pacelc --out report/    # plus plots (stale vs latency, t-visibility) and a page
    capsim pacelc --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from capsim.cap.pacelc import Sweep, jobs, run_job
from capsim.cap.pacelc_report import COLUMNS, to_runs, write_report
from capsim.parallel import positive_int, with_progress, workers_for
from capsim.report import rich_table


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pacelc", help="PACELC, measured: stale-read probability against latency, no partitions",
        description="Sweep quorum stores over N, R, W and primary-replica over sync, semi-sync and async, "
                    "with no faults, and measure each choice's staleness (with the PBS closed form beside it "
                    "and the t-visibility curve) and its latency.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep = Sweep()
    parser.add_argument("--seed", type=int, default=sweep.seed, help=f"root seed (default {sweep.seed})")
    parser.add_argument("--trials", type=positive_int, default=sweep.trials,
                        help=f"write-then-read trials per point (default {sweep.trials})")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the report (Markdown, JSON, plots, HTML)")
    parser.add_argument("--jobs", type=positive_int, metavar="J", help="worker processes (default: CPUs)")
    parser.set_defaults(func=run)


def run(args) -> int:
    sweep = Sweep(seed=args.seed, trials=args.trials)
    console = Console(stderr=True) if args.json else Console()
    work = jobs(sweep)
    rows = with_progress(Console(stderr=True), "configurations", run_job, work, workers_for(len(work), args.jobs))
    order = {(j[1], j[2] if isinstance(j[2], str) else tuple(j[2])): i for i, j in enumerate(work)}
    rows.sort(key=lambda row: order[(row["kind"], row["mode"] if row["kind"] == "replication"
                                     else (row["n"], row["r"], row["w"]))])
    runs = to_runs(rows)
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        print()
    else:
        console.print(rich_table(f"PACELC, measured: no partition, LogNormal latency (median "
                                 f"{sweep.latency_median * 1000:g} ms), {sweep.trials} trials per point, "
                                 f"seed {sweep.seed}", COLUMNS, runs))
    if args.out:
        console.print(f"report: {write_report(args.out, runs, rows, sweep)}")
    return 0
