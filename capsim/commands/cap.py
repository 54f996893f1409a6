"""``capsim cap``: CAP, measured — the same workload and partition against CP and AP stores.

    capsim cap                         # the table, defaults (5 nodes, 12 virtual seconds)
    capsim cap --json                  # the same figures as JSON
    capsim cap --out report/           # Markdown, JSON, plots and an HTML page
    capsim cap --seeds 1-20            # each figure as a distribution over seeds
    capsim cap --config cp,quorum      # other configurations (or a .toml of [[config]])
    capsim cap --seeds 1-20 --config cp,ap,async,quorum,sync --markdown   # the README's table
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from capsim.cap import BUILTIN, DEFAULT, Plan, choose, run_config
from capsim.cli import UsageError
from capsim.output import writable_dir
from capsim.cap.report import COLUMNS, definitions, json_rows, markdown, summarize, write_report
from capsim.parallel import positive_int, seed_range, with_progress, workers_for
from capsim.report import Run, rich_table


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cap", help="CAP, measured: CP and AP stores through the same partition (the main job)",
        description="Run the same clients against several configurations through one timeline: healthy, "
                    "a partition into a majority and a minority, a heal, a settle. Print availability per "
                    "side, linearizability, stale reads, lost writes, latency and convergence.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="configurations:\n" + "\n".join(f"  {c.name}: {c.label}; {c.claim}" for c in BUILTIN.values())
               + "\n\nfigures:\n" + "\n".join(f"  {line}" for line in definitions()),
    )
    plan = Plan()
    parser.add_argument("--seed", type=int, default=plan.seed, help=f"root seed (default {plan.seed})")
    parser.add_argument("--seeds", type=seed_range, metavar="A-B",
                        help="run seeds A..B in parallel; report medians and ranges")
    parser.add_argument("--nodes", type=positive_int, default=plan.nodes, help=f"servers (default {plan.nodes})")
    parser.add_argument("--duration", type=float, default=plan.duration,
                        help=f"virtual seconds of traffic (default {plan.duration})")
    parser.add_argument("--partition-at", type=float, default=plan.partition_at,
                        help=f"when the partition starts (default {plan.partition_at})")
    parser.add_argument("--heal-at", type=float, default=plan.heal_at,
                        help=f"when it heals (default {plan.heal_at})")
    parser.add_argument("--rate", type=float, default=plan.rate, help=f"client ops per second (default {plan.rate})")
    parser.add_argument("--config", action="append", metavar="NAME[,NAME]|FILE.toml",
                        help=f"configurations to compare (default {','.join(DEFAULT)}; choose from "
                             f"{', '.join(BUILTIN)})")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table and the figures' definitions as Markdown (as in the README)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the report (Markdown, JSON, plots, HTML)")
    parser.add_argument("--jobs", type=positive_int, metavar="J", help="worker processes for --seeds")
    parser.set_defaults(func=run)


def _plan(args, seed: int) -> Plan:
    return Plan(seed=seed, nodes=args.nodes, duration=args.duration, partition_at=args.partition_at,
                heal_at=args.heal_at, rate=args.rate)


def run_job(job: tuple) -> tuple[int, str, dict]:
    """One (seed, configuration) in a worker: returns (seed, name, row).

    The job names the configuration (and the --config values that define it)
    rather than carrying it: configurations hold functions, which do not pickle.
    """
    plan, specs, index = job
    config = choose(specs)[index]
    run = run_config(config, plan)
    return plan.seed, config.name, {**run.row, "errors": len(run.extra["errors"])}


def run(args) -> int:
    _text_files(args.config)
    configs = choose(args.config)
    console = Console(stderr=args.json or args.markdown)
    if args.out is not None:
        writable_dir(args.out)
    if args.seeds is not None:
        runs = _many(console, args, configs)
    else:
        plan = _plan(args, args.seed)
        runs = [run_config(config, plan) for config in configs]
    meta = {"seed": args.seed if args.seeds is None else f"{args.seeds.start}-{args.seeds.stop - 1}",
            "nodes": args.nodes, "duration": args.duration, "partition_at": args.partition_at,
            "heal_at": args.heal_at, "rate": args.rate}
    if args.json:
        json.dump(json_rows(runs), sys.stdout, indent=2, default=str)
        print()
    elif args.markdown:
        print(markdown(runs, _command(args, configs)), end="")
    else:
        title = (f"CAP, measured: {args.nodes} nodes, partition {args.partition_at}-{args.heal_at} s of "
                 f"{args.duration} s, seed {meta['seed']}")
        console.print(rich_table(title, COLUMNS, runs, transpose=True))
        plan = _plan(args, args.seed)
        console.print(f"minority side: {', '.join(plan.minority)} (+ clients); majority: {', '.join(plan.majority)}."
                      " Availability per side: over the 1 s windows of the partition. Definitions: capsim cap --help."
                      + ("" if args.seeds is not None else " One seed's draw: --seeds 1-20 gives medians and ranges."),
                      highlight=False)
    if args.out:
        page = write_report(args.out, runs, meta)
        console.print(f"report: {page}")
    return _errors(console, runs)


def _command(args, configs) -> str:
    """The command line that reproduces these figures (options left at their defaults are left out)."""
    words = ["capsim cap"]
    words.append(f"--seeds {args.seeds.start}-{args.seeds.stop - 1}" if args.seeds is not None else f"--seed {args.seed}")
    default = Plan()
    for option, value, base in (("--nodes", args.nodes, default.nodes), ("--duration", args.duration, default.duration),
                                ("--partition-at", args.partition_at, default.partition_at),
                                ("--heal-at", args.heal_at, default.heal_at), ("--rate", args.rate, default.rate)):
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
                raise UsageError(f"--config {part}: not a text file (byte {exc.start} is not UTF-8); "
                                 "give a TOML file of [[config]] tables") from None


def _errors(console: Console, runs: list[Run]) -> int:
    """Exit 1, naming them, when protocol code raised: the figures of such a run are not to be trusted."""
    broken = [(run.name, run.extra.get("errors", [])) for run in runs if run.extra.get("errors")]
    for name, errors in broken:
        console.print(f"[red]{name}: {len(errors)} error(s) in protocol code[/red], first: {errors[0]}",
                      highlight=False)
    return 1 if broken else 0


def _many(console: Console, args, configs) -> list[Run]:
    jobs = [(_plan(args, seed), args.config, i) for seed in args.seeds for i in range(len(configs))]
    results = with_progress(console, "runs", run_job, jobs, workers_for(len(jobs), args.jobs))
    runs = []
    for config in configs:
        rows = [row for _, name, row in sorted(results, key=lambda r: r[0]) if name == config.name]
        errors = [f"seed {seed}: {row['errors']} error(s)" for seed, name, row in sorted(results, key=lambda r: r[0])
                  if name == config.name and row["errors"]]
        runs.append(Run(config.name, [], summarize(config.name, [{k: v for k, v in row.items() if k != "errors"}
                                                                 for row in rows]),
                        extra={"label": config.label, "claim": config.claim, "errors": errors}))
    return runs
