"""``capsim cap``: CAP, measured — the same workload and partition against CP and AP stores.

capsim cap                         # the table, defaults (5 nodes, 12 virtual seconds)
capsim cap --json                  # the same figures as JSON
capsim cap --out report/           # Markdown, JSON, plots and an HTML page
capsim cap --seeds 1-20            # each figure as a distribution over seeds (--workers, --results,
                                   # --resume, --cluster: see capsim.commands.sweeps)
capsim cap --config cp,quorum      # other configurations (or a .toml of [[config]])
capsim cap --seeds 1-20 --config cp,ap,async,quorum,sync --markdown   # the README's table
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shlex
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from capsim import output
from capsim.cap import BUILTIN, DEFAULT, Plan, choose, run_config
from capsim.cap.configs import claim_line
from capsim.cap.report import COLUMNS, SEEDS_NOTE, definitions, json_rows, markdown, summarize, write_report
from capsim.cli import SUMMARIES, LinesFormatter, UsageError
from capsim.commands.sweeps import add_sweep_arguments, check_size, check_sweep_arguments, run_sweep_command
from capsim.output import writable_dir
from capsim.parallel import (
    SeedJob,
    inputs_digest,
    positive_int,
    positive_number,
    replay_template,
    seconds_value,
    seed_range,
    seed_value,
)
from capsim.report import Run, require_plots, rich_table


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cap",
        help=SUMMARIES["cap"],
        description="Run the same clients against several configurations through one timeline: healthy, "
        "a partition into a majority and a minority, a heal, a settle. Print availability per "
        "side, linearizability, stale reads, lost writes, latency and convergence.",
        formatter_class=LinesFormatter,
        epilog="configurations:\n"
        + "\n".join(f"  {c.name}: {c.label}; {c.claim}. Conditions: {c.conditions}" for c in BUILTIN.values())
        + "\n\nfigures:\n"
        + "\n".join(f"  {line}" for line in definitions()),
    )
    plan = Plan()
    seeds = parser.add_mutually_exclusive_group()  # default None: argparse would not see an explicit --seed 1
    seeds.add_argument("--seed", type=seed_value, help=f"root seed (default {plan.seed})")
    seeds.add_argument(
        "--seeds", type=seed_range, metavar="A-B", help="run seeds A..B in parallel; report medians and ranges"
    )
    parser.add_argument("--nodes", type=positive_int, default=plan.nodes, help=f"servers (default {plan.nodes})")
    parser.add_argument(
        "--duration",
        type=positive_number,
        default=plan.duration,
        help=f"virtual seconds of traffic (default {plan.duration})",
    )
    parser.add_argument(
        "--partition-at",
        type=seconds_value,
        default=plan.partition_at,
        help=f"when the partition starts (default {plan.partition_at})",
    )
    parser.add_argument(
        "--heal-at", type=seconds_value, default=plan.heal_at, help=f"when it heals (default {plan.heal_at})"
    )
    parser.add_argument(
        "--rate", type=positive_number, default=plan.rate, help=f"client ops per second (default {plan.rate})"
    )
    parser.add_argument(
        "--config",
        action="append",
        metavar="NAME[,NAME]|FILE.toml",
        help=f"configurations to compare (default {','.join(DEFAULT)}; choose from {', '.join(BUILTIN)})",
    )
    form = parser.add_mutually_exclusive_group()  # both printed JSON and dropped the Markdown silently
    form.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    form.add_argument(
        "--markdown",
        action="store_true",
        help="print the table and the figures' definitions as Markdown (as in the README)",
    )
    parser.add_argument(
        "--out", type=output.path_of, metavar="DIR", help="write the report (Markdown, JSON, plots, HTML)"
    )
    add_sweep_arguments(parser)
    parser.set_defaults(func=run)


def _plan(args, seed: int) -> Plan:
    return Plan(
        seed=seed,
        nodes=args.nodes,
        duration=args.duration,
        partition_at=args.partition_at,
        heal_at=args.heal_at,
        rate=args.rate,
    )


def run_seed(plan: Plan, specs: list[str] | None, seed: int) -> dict:
    """Every configuration for one seed, in a worker: each one's row and how many protocol errors it had.

    Takes the --config values rather than the configurations: configurations
    hold functions, which do not pickle.
    """
    plan = dataclasses.replace(plan, seed=seed)
    rows, errors = {}, {}
    for config in choose(specs):
        run = run_config(config, plan)
        rows[config.name], errors[config.name] = run.row, len(run.extra["errors"])
    return {"status": "fail" if any(errors.values()) else "pass", "rows": rows, "errors": errors}


def _replay(args) -> str:
    """``capsim cap --seed N`` with this command's other figures, for one seed alone."""
    words = [
        "capsim",
        "cap",
        "--nodes",
        args.nodes,
        "--duration",
        args.duration,
        "--partition-at",
        args.partition_at,
        "--heal-at",
        args.heal_at,
        "--rate",
        args.rate,
    ]
    for spec in args.config or ():
        words += ["--config", spec]
    return replay_template(" ".join(shlex.quote(str(w)) for w in words) + " --seed ")


def run(args) -> int:
    if args.seed is None:
        args.seed = Plan().seed
    _text_files(args.config)
    check_sweep_arguments(args)
    run_mb = check_size(args.nodes, 2 * args.rate * args.duration, len(args.seeds) if args.seeds else 0)
    configs = choose(args.config)
    names = [config.name for config in configs]
    for name in dict.fromkeys(name for name in names if names.count(name) > 1):
        raise UsageError(f"--config names {name} twice; name each configuration once")
    _refused_at_start(configs, _plan(args, args.seed))
    console = output.console(stderr=args.json or args.markdown)
    if args.out is not None:
        writable_dir(args.out)
        if args.seeds is None:  # one seed's report has plots; a sweep's has none
            require_plots()
    if args.seeds is not None:
        runs = _many(console, args, configs, run_mb)
    else:
        plan = _plan(args, args.seed)
        runs = _each_with_progress(
            console, configs, lambda config, report: run_config(config, plan, report), args.duration
        )
    meta = {
        "seed": args.seed if args.seeds is None else f"{args.seeds.start}-{args.seeds.stop - 1}",
        "nodes": args.nodes,
        "duration": args.duration,
        "partition_at": args.partition_at,
        "heal_at": args.heal_at,
        "rate": args.rate,
    }
    if args.json:
        json.dump(json_rows(runs), sys.stdout, indent=2, default=str)
        print()
    elif args.markdown:
        print(markdown(runs, _command(args, configs)), end="")
    else:
        title = (
            f"CAP, measured: {args.nodes} nodes, partition {args.partition_at}-{args.heal_at} s of "
            f"{args.duration} s, seed {meta['seed']}"
        )
        console.print(rich_table(title, COLUMNS, runs, transpose=True))
        plan = _plan(args, args.seed)
        console.print(
            f"minority side: {', '.join(plan.minority)} (+ clients); majority: {', '.join(plan.majority)}."
            " Availability: the share of each client's time answered; per side: of the partition's."
            " Definitions: capsim cap --help."
            + (
                f" {SEEDS_NOTE}"
                if args.seeds is not None
                else " One seed's draw: --seeds 1-20 gives medians and ranges."
            ),
            highlight=False,
        )
        note = _rate_note(args, runs)
        if note:
            console.print(note, highlight=False)
        for config in configs:
            console.print(claim_line(config), highlight=False)
    if args.out:
        page = write_report(args.out, runs, meta)
        console.print(f"report: {page}")
    return _errors(console, runs)


def _rate_note(args, runs: list[Run]) -> str:
    """A line when the clients could not offer --rate: each keeps one operation in flight (a closed loop)."""
    offered = [sum(op["type"] == "invoke" for op in run.history) / args.duration for run in runs if run.history]
    if not offered or max(offered) >= 0.5 * args.rate:
        return ""
    return (
        f"note: the clients offered at most {max(offered):,.0f} operations per second, not the {args.rate:,g} "
        f"asked: each of the {args.nodes} clients keeps one operation in flight (a closed loop, as Jepsen's "
        "clients), so latency caps the rate; more --nodes bring more clients"
    )


def _command(args, configs) -> str:
    """The command line that reproduces these figures (options left at their defaults are left out)."""
    words = ["capsim cap"]
    words.append(
        f"--seeds {args.seeds.start}-{args.seeds.stop - 1}" if args.seeds is not None else f"--seed {args.seed}"
    )
    default = Plan()
    for option, value, base in (
        ("--nodes", args.nodes, default.nodes),
        ("--duration", args.duration, default.duration),
        ("--partition-at", args.partition_at, default.partition_at),
        ("--heal-at", args.heal_at, default.heal_at),
        ("--rate", args.rate, default.rate),
    ):
        if value != base:
            words.append(f"{option} {value:g}")
    if args.config:
        words.append("--config " + ",".join(config.name for config in configs))
    return " ".join(words + ["--markdown"])


def _text_files(specs: list[str] | None) -> None:
    """A --config file that is not text is named here, before any TOML reader trips over it."""
    for part in (p.strip() for spec in specs or () for p in spec.split(",")):
        if part.endswith(".toml") and Path(part).is_file():
            try:
                Path(part).read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(
                    f"--config {part}: not a text file (byte {exc.start} is not UTF-8); "
                    "give a TOML file of [[config]] tables"
                ) from None


def _each_with_progress(console: Console, configs, function, duration: float) -> list:
    """``function(config, progress)`` over the configurations, showing how far each run is in virtual time.

    On a terminal, a bar of virtual seconds over all configurations; elsewhere
    (a pipe, a CI log), a line on stderr every ``_EVERY`` wall seconds once a
    run takes that long. A big cluster takes minutes, and says so.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:g} virtual s"),
        TimeElapsedColumn(),
    )
    out = []
    total = duration * len(configs)
    started = last = time.monotonic()  # wall-clock ok: progress display only
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("configurations", total=total)
        for i, config in enumerate(configs):
            progress.update(task, description=f"running {config.name}")

            def report(now: float, i=i, name=config.name) -> None:
                nonlocal last
                progress.update(task, completed=min(total, i * duration + min(now, duration)))
                wall = time.monotonic()  # wall-clock ok
                if not console.is_terminal and wall - last >= _EVERY:
                    last = wall
                    print(
                        f"capsim cap: running {name} ({i + 1} of {len(configs)}): {min(now, duration):.1f} of "
                        f"{duration:g} virtual s, {wall - started:.0f} s so far",
                        file=sys.stderr,
                        flush=True,
                    )

            out.append(function(config, report))
            progress.update(task, completed=(i + 1) * duration)
    return out


_EVERY = 10.0  # wall seconds between progress lines when stderr is not a terminal


def _errors(console: Console, runs: list[Run]) -> int:
    """Exit 1, naming them, when protocol code raised: the figures of such a run are not to be trusted."""
    broken = [(run.name, run.extra.get("errors", [])) for run in runs if run.extra.get("errors")]
    for name, errors in broken:
        console.print(
            f"[red]{name}: {len(errors)} error(s) in protocol code[/red], first: {errors[0]}", highlight=False
        )
    return 1 if broken else 0


def _refused_at_start(configs, plan: Plan) -> None:
    """Start each configuration's servers for an instant, and refuse settings a protocol refuses as it starts.

    Semi-sync ``acks=100`` on 5 nodes printed a whole table of figures from nodes that never ran, then exit 1.
    """
    import emulator as em
    from faults.scenario import refused_at_start

    for config in configs:
        sim = em.Simulation(seed=plan.seed)
        node_class = config.node_class()
        try:
            for name in plan.servers:
                sim.add_node(name, node_class, **config.kwargs(plan.nodes))
        except em.ConfigError as exc:  # its constructor refused the settings: say which config's
            raise UsageError(f"config {config.name!r}: {exc}") from None
        refused = refused_at_start(sim)
        if refused is not None:
            raise UsageError(f"config {config.name!r}: {refused}")


def _many(console: Console, args, configs, run_mb: float) -> list[Run]:
    for config in configs:
        config.node_class()  # its protocol's module, imported once here rather than by each forked worker
    files = [part for spec in args.config or () for part in spec.split(",") if part.endswith(".toml")]
    job = SeedJob(
        functools.partial(run_seed, _plan(args, args.seeds.start), args.config), _replay(args), inputs_digest(files)
    )
    lines = run_sweep_command(lambda: console, args, job, list(args.seeds), run_mb)
    ran = [line for line in lines if line["status"] in ("pass", "fail")]
    lost = [
        f"seed {line['seed']} {line['status']}: {line['error'].splitlines()[0]} (replay: {line['replay']})"
        for line in lines
        if line not in ran
    ]
    if not ran:
        raise UsageError(lost[0] if lost else "no seed ran")
    runs = []
    for config in configs:
        rows = [line["rows"][config.name] for line in ran]
        errors = [
            f"seed {line['seed']}: {line['errors'][config.name]} error(s)"
            for line in ran
            if line["errors"][config.name]
        ]
        runs.append(
            Run(
                config.name,
                [],
                summarize(config.name, rows),
                extra={
                    "label": config.label,
                    "claim": config.claim,
                    "conditions": config.conditions,
                    "errors": errors + lost,
                },
            )
        )
    return runs
