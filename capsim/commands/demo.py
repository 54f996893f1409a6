"""``capsim demo [NAME]``: a short, seeded demonstration with a printed account."""

from __future__ import annotations

import importlib

from capsim.cli import UsageError
from capsim.demos import DEMOS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run a short demonstration (default: partition)",
        description="Run a short, seeded demonstration and print what happened. Demos: " + ", ".join(DEMOS),
    )
    parser.add_argument("name", nargs="?", default="partition", help=f"one of: {', '.join(DEMOS)}")
    parser.add_argument("--seed", type=int, default=1, help="root seed (default 1); the same seed replays the run")
    parser.set_defaults(func=run)


def run(args) -> int:
    target = DEMOS.get(args.name)
    if target is None:
        raise UsageError(f"no demo called {args.name!r}; choose one of: {', '.join(DEMOS)}")
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(seed=args.seed)
