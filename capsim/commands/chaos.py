"""``capsim chaos``: run a scenario file under faults and check what happened.

    capsim chaos SCENARIO.toml [--seed N | --seeds A-B] [--out DIR] [--jobs J]

One seed: a summary (operations ok / fail / info by operation, the faults
applied, each check's verdict) and, with ``--out``, ``history.jsonl``,
``trace.jsonl`` and ``summary.json`` in DIR. A seed range runs the seeds in
parallel worker processes with a progress bar, then lists the failing seeds
with the command that replays each (``--out`` writes DIR/seed-N/ per seed).

Exit status: 0 every check passed (for every seed), 1 a check failed or could
not tell, 2 a usage or scenario error (printed without a traceback).
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from capsim.cli import UsageError
from capsim.parallel import map_unordered, positive_int, seed_range
from emulator.errors import EmulatorError
from faults.chaos import ChaosResult, run_chaos
from faults.scenario import load_scenario

_STYLE = {"pass": "green", "FAIL": "bold red", "unknown": "yellow"}
_TABLE_LIMIT = 20  # above this many seeds, only the failing ones get a row


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``chaos`` subcommand to the ``capsim`` parser."""
    parser = subparsers.add_parser(
        "chaos",
        help="run a scenario under faults and check its history",
        description="Run a scenario file (TOML: cluster, network, workload, faults, checks, phases) "
                    "in virtual time and check the history it records.",
    )
    parser.add_argument("scenario", metavar="SCENARIO.toml", help="the scenario file (see scenarios/)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, metavar="N", help="the seed (default: the scenario's seed)")
    seeds.add_argument("--seeds", type=seed_range, metavar="A-B", help="run seeds A to B (inclusive) in parallel")
    parser.add_argument("--out", metavar="DIR", help="write history.jsonl, trace.jsonl and summary.json here")
    parser.add_argument("--jobs", type=positive_int, metavar="J", help="worker processes for --seeds (default: CPUs)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the scenario for one seed or a range; return the exit status (see module doc)."""
    scenario = load_scenario(args.scenario)
    # soft_wrap: long lines (paths, replay commands) stay whole, to copy and paste.
    console = Console(highlight=False, soft_wrap=True)
    if args.seeds is None:
        result = run_chaos(scenario, args.seed, keep_trace=bool(args.out))
        print_result(console, result)
        if args.out:
            paths = result.write(args.out)
            console.print("wrote " + ", ".join(str(p) for p in paths.values()), markup=False)
        return 0 if result.passed else 1
    return _run_seeds(console, args, list(args.seeds))


def print_result(console: Console, result: ChaosResult) -> None:
    """The summary of one run: operations, faults, checks, and how to replay it."""
    sim = result.sim
    console.print(f"[bold]{result.scenario.name}[/bold]  ({result.scenario.source}, seed {result.seed})")
    console.print(f"{sim.now:.1f} s of virtual time, {sum(result.faults.values())} faults, "
                  f"{len(sim.errors)} node errors, trace digest {sim.trace_digest()[:16]}")
    console.print(_operations(result))
    console.print(_faults(result))
    console.print(_checks(result))
    for check in result.failed:
        explanation = check.details.get("explanation")
        if explanation:
            console.print("\n".join(explanation.splitlines()[:25]), markup=False)
    verdict = "[green]PASSED[/green]" if result.passed else "[bold red]FAILED[/bold red]"
    console.print(f"{verdict}  replay: {result.command()}")


def _operations(result: ChaosResult) -> Table:
    table = Table(title="Operations", title_justify="left")
    for column in ("f", "ok", "fail", "info", "total"):
        table.add_column(column, justify="left" if column == "f" else "right")
    rows = result.counts_by_f()
    for f, row in rows.items():
        table.add_row(f, *map(str, (row["ok"], row["fail"], row["info"], sum(row.values()))))
    total = result.counts
    table.add_row("all", *map(str, (total["ok"], total["fail"], total["info"], sum(total.values()))), style="bold")
    return table


def _faults(result: ChaosResult) -> Table:
    table = Table(title="Faults applied", title_justify="left")
    table.add_column("kind")
    table.add_column("started", justify="right")
    table.add_column("examples")
    for kind, count in result.faults.items():
        values = [entry["value"] for entry in result.injector.log if entry["kind"] == kind]
        table.add_row(kind, str(count), "; ".join(_fault_text(v) for v in values[:3]))
    if not result.faults:
        table.add_row("none", "0", "")
    return table


def _fault_text(value: dict) -> str:
    if "sides" in value:
        sides = " | ".join(",".join(nodes) for nodes in value["sides"].values()) or "ring"
        arrow = "" if value.get("direction") == "both" else f" ({value['direction']})"
        return f"{value['shape']}{arrow}: {sides}"
    if "nodes" in value:
        return ",".join(value["nodes"]) + (f" {value['mode']}" if "mode" in value else "")
    return f"{len(value.get('links', []))} links"


def _checks(result: ChaosResult) -> Table:
    table = Table(title="Checks", title_justify="left")
    for column in ("check", "phase", "verdict", "detail"):
        table.add_column(column)
    for check in result.checks:
        table.add_row(check.name, check.phase or "all", f"[{_STYLE[check.verdict]}]{check.verdict}[/]",
                      check.summary)
    if not result.checks:
        table.add_row("none", "", "", "the scenario asks for no checks")
    return table


# -- many seeds -------------------------------------------------------------------------------


def run_seed(job: tuple[str, int, str | None]) -> dict:
    """Run one seed of a scenario file in a worker process; returns a small summary.

    Top-level and argument-only, so a spawned worker can import and call it.
    """
    path, seed, out = job
    try:
        result = run_chaos(load_scenario(path), seed, keep_trace=out is not None)
        if out is not None:
            result.write(Path(out) / f"seed-{seed}")
    except (EmulatorError, ValueError) as exc:
        return {"seed": seed, "error": str(exc)}
    return {"seed": seed, "passed": result.passed, "counts": result.counts, "faults": sum(result.faults.values()),
            "failed": [_label(c) for c in result.failed], "digest": result.sim.trace_digest()}


def _label(check) -> str:
    return check.name if check.phase is None else f"{check.name} ({check.phase})"


def _run_seeds(console: Console, args: argparse.Namespace, seeds: list[int]) -> int:
    jobs = [(args.scenario, seed, args.out) for seed in seeds]
    workers = min(args.jobs or os.cpu_count() or 1, len(seeds))
    results = []
    columns = (TextColumn("seeds"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("seeds", total=len(jobs), failed=0)
        for summary in map_unordered(run_seed, jobs, workers):
            results.append(summary)
            bad = sum(1 for r in results if not r.get("passed"))
            progress.update(task, advance=1, failed=bad)
    results.sort(key=lambda r: r["seed"])
    errors = [r for r in results if "error" in r]
    if errors:
        raise UsageError(f"seed {errors[0]['seed']}: {errors[0]['error']}")
    console.print(_seed_table(results))
    failing = [r for r in results if not r["passed"]]
    console.print(f"{len(results) - len(failing)} of {len(results)} seeds passed")
    for r in failing:
        console.print(f"seed {r['seed']} failed {', '.join(r['failed'])}: "
                      f"capsim chaos {shlex.quote(args.scenario)} --seed {r['seed']}", markup=False)
    return 1 if failing else 0


def _seed_table(results: list[dict]) -> Table:
    shown = results if len(results) <= _TABLE_LIMIT else [r for r in results if not r["passed"]]
    table = Table(title="Seeds" if shown is results else "Failing seeds", title_justify="left")
    for column in ("seed", "verdict", "ok", "fail", "info", "faults", "failed checks"):
        table.add_column(column, justify="right" if column in ("seed", "ok", "fail", "info", "faults") else "left")
    for r in shown:
        verdict = "[green]pass[/]" if r["passed"] else "[bold red]FAIL[/]"
        counts = r["counts"]
        table.add_row(str(r["seed"]), verdict, str(counts["ok"]), str(counts["fail"]), str(counts["info"]),
                      str(r["faults"]), ", ".join(r["failed"]))
    return table
