"""``capsim demo [NAME]``: a short, seeded demonstration with a printed account.

capsim demo                      # partition: an AP store through a partition
capsim demo --list               # every demo, with a line saying what it shows (--json: as a JSON object)
capsim demo scaling              # throughput and p99 against backends; a backend's crash
capsim demo caching --json       # the figures as JSON
capsim demo breaker --out DIR    # Markdown, JSON, plots and an HTML page
capsim demo microservices        # a cascading failure, and its containment
capsim demo caching --quick      # smaller sizes, the same story
"""

from __future__ import annotations

import importlib
import json

from capsim.cli import SUMMARIES, UsageError
from capsim.demos import DEMOS
from capsim.output import path_of, writable_dir
from capsim.parallel import seed_value
from capsim.report.plots import require_plots


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=SUMMARIES["demo"],
        description="Run a short, seeded demonstration and print what happened. Demos: "
        + ", ".join(DEMOS)
        + ". `capsim demo --list` says what each one shows.",
    )
    parser.add_argument("name", nargs="?", default="partition", help=f"one of: {', '.join(DEMOS)}")
    parser.add_argument(
        "--seed", type=seed_value, default=1, help="root seed (default 1); the same seed replays the run"
    )
    parser.add_argument("--list", action="store_true", help="list the demos with a line on each, and exit")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    parser.add_argument("--out", type=path_of, metavar="DIR", help="write the report (Markdown, JSON, plots, HTML)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "smaller sizes (shorter runs, fewer requests); the conclusions still hold: the demos' tests check them "
            "at these sizes"
        ),
    )
    parser.set_defaults(func=run)


def _load(name: str):
    target = DEMOS.get(name)
    if target is None:
        raise UsageError(f"no demo called {name!r}; choose one of: {', '.join(DEMOS)}")
    module_name, _, function = target.partition(":")
    module = importlib.import_module(module_name)
    return module, getattr(module, function)


def _draws_plots(module) -> bool:
    """Whether the demo's report has plots: its module imports the plotting functions iff it draws."""
    return any(hasattr(module, name) for name in ("write_plots", "pyplot", "xy_plot"))


def describe(name: str) -> str:
    """The first line of the demo module's docstring."""
    module, _ = _load(name)
    return (module.__doc__ or "").strip().split("\n")[0]


def run(args) -> int:
    if args.list:
        if args.json:
            print(json.dumps({name: describe(name) for name in DEMOS}, indent=2))
            return 0
        width = max(map(len, DEMOS))
        for name in DEMOS:
            print(f"{name:<{width}}  {describe(name)}")
        return 0
    module, function = _load(args.name)
    if args.out is not None:
        writable_dir(args.out)
        if _draws_plots(module):
            require_plots()
    return function(seed=args.seed, out=args.out, as_json=args.json, quick=args.quick)
