"""``capsim chaos``: run a scenario file under faults and check what happened.

    capsim chaos SCENARIO [--seed N | --seeds A-B] [--out DIR]
    capsim chaos SCENARIO --seeds A-B [--workers W] [--results FILE.jsonl [--resume]] [--cluster ADDRESS|local]
    capsim chaos --real SCENARIO [--seed N] [--out DIR] [--time-scale X]

SCENARIO is a scenario file (TOML) or the name of one shipped with capsim
(``capsim chaos lin-kv-partitions``; ``capsim chaos --help`` lists them).

One seed: a summary (operations ok / fail / info by operation, the faults
applied, each check's verdict) and, with ``--out``, ``history.jsonl``,
``trace.jsonl`` and ``summary.json`` in DIR. A seed range runs the seeds in
persistent worker processes (or on a Dask cluster with ``--cluster``) with a
progress bar, then lists the failing seeds with the command that replays
each (``--out`` writes DIR/seed-N/ per seed). ``--results`` writes one JSON
line per seed as it finishes (``--out DIR`` implies DIR/results.jsonl);
``--resume`` runs only the seeds not in it yet. A seed whose worker process
dies is reported as crashed, and the sweep goes on (see
:mod:`capsim.parallel`).

``--real`` runs the scenario on real node processes (``capsim serve``, one
per server, on 127.0.0.1) in real time: the same workload, the same faults
for the seed (crash is SIGKILL, restart starts the process again, pause is
SIGSTOP), the same checks (see :mod:`faults.real`; the processes are
started and stopped by :mod:`faults.processes`). ``--time-scale X``
multiplies every duration of the scenario by X (0.2: 30 s of scenario in
6 s; see :mod:`faults.timescale`). It writes ``history.jsonl``,
``summary.json``, ``statuses.json`` (each node's last ``/status``) and
``errors.json`` (node errors, failed control calls, protocol events) and
keeps the nodes' logs and storage in DIR/cluster/. Every node process is
stopped when the run ends, fails or is interrupted (Ctrl-C, SIGTERM). A
real run is not replayable: the seed fixes the faults and the workload's
choices, not the timing.

A run's verdict merges its checks' as Jepsen merges ``:valid?``: FAILED
when a check failed, else UNKNOWN when a check could not tell (the
linearizability search ran out of time, say: not a pass, and not a
failure either), else PASSED. A sweep's seeds are ``pass``, ``fail`` or
``unknown`` the same way (or ``error`` / ``crashed``).

Exit status: 0 every check passed (for every seed), 1 a check failed or could
not tell (or a seed's run raised, or its worker died), 2 a usage or scenario
error (printed without a traceback).
"""

from __future__ import annotations

import argparse
import functools
import math
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from capsim import output
from capsim.cli import SUMMARIES, UsageError
from capsim.commands.sweeps import add_sweep_arguments, check_size, check_sweep_arguments, run_sweep_command
from capsim.examples import scenario_names, scenario_path
from capsim.output import path_text, writable_dir
from capsim.parallel import SeedJob, inputs_digest, replay_template, seed_range, seed_value

if TYPE_CHECKING:  # the kernel and rich are imported when a run needs them: `capsim chaos --help` imports neither
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from faults.chaos import ChaosResult
    from faults.scenario import Scenario

_STYLE = {"pass": "green", "FAIL": "bold red", "unknown": "yellow"}
_TABLE_LIMIT = 20  # above this many seeds, only the failing ones get a row


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``chaos`` subcommand to the ``capsim`` parser."""
    parser = subparsers.add_parser(
        "chaos",
        help=SUMMARIES["chaos"],
        description="Run a scenario file (TOML: cluster, network, workload, faults, checks, phases) "
        "in virtual time, or with --real on real node processes, and check the history it records.",
    )
    parser.add_argument(
        "scenario",
        metavar="SCENARIO",
        help="a scenario file, or the name of a shipped one: " + ", ".join(scenario_names()),
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=seed_value, metavar="N", help="the seed (default: the scenario's seed)")
    seeds.add_argument("--seeds", type=seed_range, metavar="A-B", help="run seeds A to B (inclusive) in parallel")
    parser.add_argument(
        "--out",
        type=path_text,
        metavar="DIR",
        help="write history.jsonl, summary.json and trace.jsonl here "
        "(--real: statuses.json, errors.json and the node logs instead of the trace); a directory that holds "
        "an earlier run's is refused",
    )
    add_sweep_arguments(parser)
    parser.add_argument(
        "--real", action="store_true", help="run on real node processes on 127.0.0.1, in real time (not replayable)"
    )
    parser.add_argument(
        "--time-scale",
        type=_positive_float,
        metavar="X",
        help="with --real: multiply every duration of the scenario by X (0.2: five times faster)",
    )
    parser.set_defaults(func=run)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0 such as 0.2, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Run the scenario for one seed or a range; return the exit status (see module doc)."""
    _check_flags(args)
    scenario = _load(args)
    if args.out is not None:
        writable_dir(args.out)
        _nothing_to_overwrite(args)
    run_mb = check_size(
        scenario.cluster.nodes,
        2 * scenario.workload.rate * scenario.duration,
        len(args.seeds) if args.seeds else 0,
        duration_flag="the phases' durations",
    )
    from faults.chaos import run_chaos  # the kernel and the fault policy: a sweep's workers fork holding them

    _refused_at_start(scenario)

    if args.seeds is not None:
        return _run_seeds(args, list(args.seeds), run_mb)
    console = _console()
    if args.real:
        return _run_real(console, args, scenario)
    result = run_chaos(scenario, args.seed, keep_trace=bool(args.out))
    print_result(console, result)
    if args.out:
        paths = result.write(args.out)
        console.print("wrote " + ", ".join(str(p) for p in paths.values()), markup=False)
    return 0 if result.passed else 1


#: What --real writes into --out besides the history and the summary (the node logs in cluster/).
_REAL_FILES = ("statuses.json", "errors.json", "cluster")


def _nothing_to_overwrite(args: argparse.Namespace) -> None:
    """Refuse an --out that holds an earlier run's files, which this run would write over.

    A failing seed's history is the evidence of a bug; replayed after a fix, into the same directory, it was
    gone. A sweep resumed (``--resume``) may write its unfinished seeds' directories again.
    """
    out = Path(args.out)
    if args.seeds is not None:
        if args.resume:
            return
        names = [f"seed-{seed}" for seed in args.seeds]
    else:
        names = ["history.jsonl", "summary.json", *(_REAL_FILES if args.real else ["trace.jsonl"])]
    there = [name for name in names if (out / name).exists()]
    if there:
        shown = ", ".join(there[:3]) + (f" and {len(there) - 3} more" if len(there) > 3 else "")
        raise UsageError(
            f"--out {out}: holds an earlier run's {shown}, which this run would write over; give another "
            "directory, or remove them first"
        )


def _refused_at_start(scenario: Scenario) -> None:
    """Start the scenario's servers for an instant, and refuse a config the protocol refuses as it starts.

    Primary-replica ``acks = 100`` on 3 nodes was node errors of every run; now a usage error naming cluster.config.
    """
    from faults.scenario import refused_at_start

    refused = refused_at_start(scenario.cluster.build(scenario.seed))
    if refused is not None:
        raise UsageError(f"{scenario.source}: cluster.config: {refused}")


def _console() -> Console:
    # soft_wrap: long lines (paths, replay commands) stay whole, to copy and paste.
    return output.console(highlight=False, soft_wrap=True)


def _load(args: argparse.Namespace) -> Scenario:
    """The scenario a file or a shipped name gives; ``args.path`` becomes the file (for worker processes)."""
    path = scenario_path(args.scenario)
    if path is None and (Path(args.scenario).name != args.scenario or args.scenario.endswith(".toml")):
        path = Path(args.scenario)  # a file that is not there: load_scenario says so
    elif path is None:
        raise UsageError(
            f"no scenario file {args.scenario!r} and no shipped scenario of that name; shipped: "
            + ", ".join(scenario_names())
        )
    args.path = str(path)
    from faults.scenario import load_scenario

    scenario = load_scenario(path)
    if str(path) != args.scenario:
        scenario.source = args.scenario  # a shipped one: messages and replay commands name it as the user did
    return scenario


def _check_flags(args: argparse.Namespace) -> None:
    if args.real and args.seeds is not None:
        raise UsageError("--real runs one seed at a time (each takes real time): use --seed N")
    check_sweep_arguments(args)
    if not args.real and args.time_scale is not None:
        raise UsageError("--time-scale goes with --real (a simulated run takes no real time to scale)")


def print_result(console: Console, result: ChaosResult) -> None:
    """The summary of one run: operations, faults, checks, and how to replay it."""
    sim = result.sim
    _print_tables(
        console,
        result,
        f"{sim.now:.1f} s of virtual time, {sum(result.faults.values())} faults, "
        f"{len(sim.errors)} node errors, trace digest {sim.trace_digest()[:16]}",
    )
    console.print(f"{_verdict(result)}  replay: {_escape(result.command())}")


def print_real_result(console: Console, result) -> None:
    """The summary of a ``--real`` run (a ``faults.real.RealChaosResult``): the same tables, real numbers."""
    scale = (
        f" (time scale {result.time_scale:g}: {result.scenario.duration:g} s of scenario)"
        if result.time_scale != 1.0
        else ""
    )
    traffic = ", ".join(f"{k} {v}" for k, v in result.network.items())
    _print_tables(
        console,
        result,
        f"{result.elapsed:.1f} s of real time on {len(result.scenario.cluster.names)} "
        f"processes{scale}, {sum(result.faults.values())} faults, "
        f"{len(result.node_errors)} node errors, {len(result.control_errors)} failed "
        f"control calls; messages: {traffic}",
    )
    console.print(f"{_verdict(result)}  run again: {_escape(result.command())}")
    console.print(
        f"(real timing is not replayable; the same faults in virtual time: {result.simulate_command()})", markup=False
    )


def _print_tables(console: Console, result: ChaosResult, headline: str) -> None:
    console.print(
        f"[bold]{_escape(result.scenario.name)}[/bold]  ({_escape(result.scenario.source)}, seed {result.seed})"
    )
    console.print(headline, markup=False)
    console.print(_operations(result))
    console.print(_faults(result))
    console.print(_checks(result))
    for check in result.failed:
        explanation = check.details.get("explanation")
        if explanation:
            console.print("\n".join(explanation.splitlines()[:25]), markup=False)


def verdict(checks) -> str:
    """``"pass"``, ``"fail"`` or ``"unknown"``: the checks' verdicts merged as Jepsen merges ``:valid?``.

    A check that failed beats one that could not tell (``passed`` None),
    which beats a pass; no checks at all is a pass.
    """
    from faults.checks import merged  # the rule ChaosResult.verdict (summary.json's) uses too

    return {True: "pass", False: "fail", None: "unknown"}[merged(checks)]


_VERDICT = {
    "pass": "[green]PASSED[/green]",
    "fail": "[bold red]FAILED[/bold red]",
    "unknown": "[yellow]UNKNOWN[/yellow] (a check could not tell; not a pass)",
}


def _verdict(result: ChaosResult) -> str:
    return _VERDICT[verdict(result.checks)]


def _text(text: str) -> Text:
    """A table cell shown as it is: a scenario's names, a check's words, a fault's nodes are not rich markup."""
    from rich.text import Text

    return Text(text)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _table(title: str) -> Table:
    from rich.table import Table

    return Table(title=title, title_justify="left")


def _operations(result: ChaosResult) -> Table:
    table = _table("Operations")
    for column in ("f", "ok", "fail", "info", "total"):
        table.add_column(column, justify="left" if column == "f" else "right")
    rows = result.counts_by_f()
    for f, row in rows.items():
        table.add_row(_text(f), *map(str, (row["ok"], row["fail"], row["info"], sum(row.values()))))
    total = result.counts
    table.add_row("all", *map(str, (total["ok"], total["fail"], total["info"], sum(total.values()))), style="bold")
    missing = _missing_key_reads(result.history)
    if missing:
        table.caption = (
            f"fail includes {missing} read(s) answered 'key does not exist' (error 20); the checks count each as "
            "an ok read of nil, an observation (Maelstrom's lin-kv records them :fail, which Knossos ignores)"
        )
        table.caption_justify = "left"
    return table


def _missing_key_reads(history) -> int:
    """Reads that failed with error 20 (key does not exist): reads of nil to the checkers (emulator.check.ops)."""
    return sum(
        1
        for invoke, done in history.completions()
        if done is not None
        and invoke["f"] in ("read", "get")
        and done["type"] == "fail"
        and (done.get("error") or [None])[0] == 20
    )


def _faults(result: ChaosResult) -> Table:
    table = _table("Faults applied")
    table.add_column("kind")
    table.add_column("started", justify="right")
    table.add_column("examples")
    from faults import fault_spans  # imported by the run already

    cuts = {span.id: len(span.cuts) for span in fault_spans(result.history, "partition")}
    for kind, count in result.faults.items():
        values = [entry["value"] for entry in result.injector.log if entry["kind"] == kind]
        table.add_row(kind, str(count), _text("; ".join(_fault_text(v, cuts) for v in values[:3])))
    if not result.faults:
        table.add_row("none", "0", "")
    return table


def _fault_text(value: dict, cuts: dict[int, int]) -> str:
    if "sides" in value:
        sides = " | ".join(",".join(nodes) for nodes in value["sides"].values()) or "ring"
        arrow = "" if value.get("direction") == "both" else f" ({value['direction']})"
        flapping = f", flapping: {cuts.get(value['id'], 0)} cuts" if "flap" in value else ""
        return f"{value['shape']}{arrow}: {sides}{flapping}"
    if "nodes" in value:
        return ",".join(value["nodes"]) + (f" {value['mode']}" if "mode" in value else "")
    if "change" in value:  # the membership nemesis: a join or leave, or none when no server could change
        return f"{value['node']} {value['change']}s" if value["change"] else "no change"
    return f"{len(value.get('links', []))} links"


def _checks(result: ChaosResult) -> Table:
    table = _table("Checks")
    for column in ("check", "phase", "verdict", "detail"):
        table.add_column(column)
    for check in result.checks:
        table.add_row(
            _text(check.name),
            _text(check.phase or "all"),
            f"[{_STYLE[check.verdict]}]{check.verdict}[/]",
            _text(check.summary),
        )
    if not result.checks:
        table.add_row("none", "", "", "the scenario asks for no checks")
    return table


# -- many seeds -------------------------------------------------------------------------------


def run_seed(path: str, out: str | None, seed: int) -> dict:
    """One seed of a scenario file, in a worker: its verdict, counts, faults, failed checks and digest.

    Top-level, so a worker process (or a Dask worker) can import it by name.
    """
    from faults.chaos import run_chaos
    from faults.scenario import load_scenario

    result = run_chaos(load_scenario(path), seed, keep_trace=out is not None)
    if out is not None:
        result.write(Path(out) / f"seed-{seed}")
    return {
        "status": verdict(result.checks),
        "counts": result.counts,
        "faults": sum(result.faults.values()),
        "failed": [_label(c) for c in result.checks if c.passed is False],
        "unknown": [_label(c) for c in result.checks if c.passed is None],
        "digest": result.sim.trace_digest(),
    }


def _label(check) -> str:
    return check.name if check.phase is None else f"{check.name} ({check.phase})"


def _run_seeds(args: argparse.Namespace, seeds: list[int], run_mb: float) -> int:
    """The sweep: its workers fork first, and rich (the console, the progress bar) is imported after."""
    job = SeedJob(
        functools.partial(run_seed, args.path, args.out),
        replay_template(f"capsim chaos {shlex.quote(args.scenario)} --seed "),
        inputs_digest([args.path]),  # --resume refuses lines run from the file before an edit
    )
    console = functools.cache(_console)
    lines = run_sweep_command(console, args, job, seeds, run_mb)
    return report_sweep(console(), lines)


def report_sweep(console: Console, lines: list[dict]) -> int:
    """The seed table, a count, one line per seed that failed with its replay command; the exit status."""
    errors = [line for line in lines if line["status"] == "error"]
    if errors and len(errors) == len(lines) and len({e["error"].splitlines()[0] for e in errors}) == 1:
        raise UsageError(f"seed {errors[0]['seed']}: {errors[0]['error'].splitlines()[0]}")
    table = _seed_table(lines)
    if table.row_count:  # above _TABLE_LIMIT seeds, a sweep where every seed passed has no failing row to show
        console.print(table)
    bad = [line for line in lines if line["status"] != "pass"]
    tally = ", ".join(
        f"{n} {word}"
        for status, word in (("fail", "failed"), ("unknown", "unknown"), ("error", "raised"), ("crashed", "crashed"))
        if (n := sum(line["status"] == status for line in bad))
    )
    console.print(f"{len(lines) - len(bad)} of {len(lines)} seeds passed" + (f" ({tally})" if tally else ""))
    for line in bad:
        console.print(f"seed {line['seed']} {_why(line)}: {line['replay']}", markup=False)
    return 1 if bad else 0


def _why(line: dict) -> str:
    """What went wrong with a seed that did not pass, and its trace digest where it ran to the end."""
    if line["status"] in ("error", "crashed"):
        return f"{_VERB[line['status']]} {line['error'].splitlines()[0]}"
    parts = [f"failed {', '.join(line['failed'])}"] if line["failed"] else []
    if line.get("unknown"):
        parts.append(f"could not tell {', '.join(line['unknown'])}")
    digest = f" (trace digest {line['digest'][:16]})" if line.get("digest") else ""
    return "; ".join(parts) + digest


_VERB = {"error": "raised", "crashed": "crashed:"}


def _seed_table(results: list[dict]) -> Table:
    shown = results if len(results) <= _TABLE_LIMIT else [r for r in results if r["status"] != "pass"]
    table = _table("Seeds" if shown is results else "Failing seeds")
    for column in ("seed", "verdict", "ok", "fail", "info", "faults", "checks not passed"):
        table.add_column(column, justify="right" if column in ("seed", "ok", "fail", "info", "faults") else "left")
    for r in shown:
        if r["status"] in ("pass", "fail", "unknown"):
            counts = r["counts"]
            table.add_row(
                str(r["seed"]),
                _CELL[r["status"]],
                str(counts["ok"]),
                str(counts["fail"]),
                str(counts["info"]),
                str(r["faults"]),
                _text(", ".join([*r["failed"], *(f"unknown: {label}" for label in r.get("unknown", ()))])),
            )
        else:
            table.add_row(str(r["seed"]), _CELL[r["status"]], "", "", "", "", _text(r["error"].splitlines()[0]))
    return table


_CELL = {
    "pass": "[green]pass[/]",
    "fail": "[bold red]FAIL[/]",
    "unknown": "[yellow]UNKNOWN[/]",
    "error": "[bold red]ERROR[/]",
    "crashed": "[bold red]CRASHED[/]",
}


# -- on real processes -------------------------------------------------------------------------


def _run_real(console: Console, args: argparse.Namespace, scenario: Scenario) -> int:
    from capsim.cli import interrupted
    from capsim.commands.serve import node_command
    from emulator.transport.errors import LaunchError
    from faults.processes import refused_for_real, run_processes

    refused = refused_for_real(scenario)
    if refused is not None:  # found before any process starts (it was an error mid-run, with no history kept)
        raise UsageError(f"{scenario.source}: --real: {refused}")

    seed = scenario.seed if args.seed is None else args.seed
    scale = args.time_scale or 1.0

    def announce(state) -> None:
        pids = ", ".join(f"{p.name} pid {p.pid}" for p in state.nodes)
        console.print(
            f"{len(state.nodes)} {state.protocol} processes up on 127.0.0.1 ({pids}); running "
            f"{scenario.duration:g} s of scenario in {scenario.duration * scale:g} s of real time",
            markup=False,
        )

    began = time.time()  # wall-clock ok: compared with a file's modification time
    try:
        result = run_processes(scenario, seed, node_command(), scale, args.out, announce, interrupted)
    except KeyboardInterrupt:
        kept = Path(args.out) / "history.jsonl" if args.out else None
        if kept is not None and kept.exists() and kept.stat().st_mtime >= began:
            lines = len(kept.read_text(encoding="utf-8").splitlines())
            print(
                f"interrupted: the {lines} events recorded so far are in {kept} (a real run cannot be replayed)",
                file=sys.stderr,
                flush=True,
            )
        raise
    except LaunchError as exc:
        console.print(
            f"capsim chaos: the cluster did not start: {exc}\n"
            "capsim chaos: stopped every node started; nothing is left running",
            markup=False,
        )
        return 1
    print_real_result(console, result)
    if args.out:
        paths = result.write(args.out)
        console.print(
            "wrote " + ", ".join(str(p) for p in paths.values()) + f"; node logs in {Path(args.out) / 'cluster'}",
            markup=False,
        )
    return 0 if result.passed else 1
