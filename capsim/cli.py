"""The ``capsim`` command line.

Each subcommand lives in its own module under ``capsim.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``run(args) -> int`` (the exit status). Exit statuses follow one rule
across commands: 0 success, 1 a check failed, 2 a usage or input error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from capsim import __version__

# Order is the order of `capsim --help`.
COMMANDS = ("cap", "pacelc", "demo", "chaos", "check", "serve", "cluster")


class UsageError(Exception):
    """A mistake in how a command was called; printed without a traceback, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="capsim",
        description="Distributed systems under faults, in virtual time: CAP and PACELC with numbers.",
    )
    parser.add_argument("--version", action="version", version=f"capsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"capsim.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``capsim`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("capsim: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"capsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as exc:
        # emulator's ConfigError / MessageError derive from these; a user's bad
        # input must never reach them as a traceback.
        from emulator.errors import EmulatorError

        if isinstance(exc, (EmulatorError, OSError)):
            print(f"capsim {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
