"""``capsim check``: linearizability of recorded histories.

    capsim check --model kv|register|cas-register [--timeout S] [--no-split]
                 [--html DIR] [--explain] FILE...

One verdict line per file: file, ops, partitions, verdict, time taken. The
exit status is 0 when every file is linearizable, 1 when one is not, 2 when
none is found non-linearizable but one is unknown (time ran out) or could not
be read; as in Jepsen, a definite violation outranks an unknown. A bad file
never produces a traceback: ``capsim check: error: <file>: <message>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emulator.check import CheckError, HistoryFormatError, Verdict, check_file

MODELS = ("kv", "register", "cas-register")
_WORDS = {True: "linearizable", False: "NOT linearizable", None: "unknown"}
_STATUS = {True: 0, False: 1, None: 2}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check`` subcommand to the ``capsim`` parser."""
    parser = subparsers.add_parser(
        "check",
        help="check histories for linearizability",
        description="Check recorded histories (capsim JSON Lines, Jepsen EDN or Jepsen logs) for linearizability.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="history files; the format is detected")
    parser.add_argument("--model", choices=MODELS, default="kv", help="the sequential model (default: kv)")
    parser.add_argument("--timeout", type=_seconds, metavar="S", help="give up on a file after S seconds: unknown")
    parser.add_argument("--no-split", action="store_true", help="check each history whole, not key by key")
    parser.add_argument("--html", metavar="DIR", help="write an HTML timeline per file into DIR")
    parser.add_argument("--explain", action="store_true", help="print why each failing history fails")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every file; print one line each; return the exit status (see module doc)."""
    statuses = []
    width = max(len(f) for f in args.files)
    for name in args.files:
        try:
            verdict = check_file(name, model=args.model, partition=not args.no_split, timeout=args.timeout)
            if args.html:
                _write_html(verdict, name, args.html)
        except (CheckError, OSError) as exc:
            print(f"capsim check: error: {name}: {_reason(exc, name)}", file=sys.stderr)
            statuses.append(2)
            continue
        print(_line(name.ljust(width), verdict))
        if args.explain and verdict.valid is not True:
            print(_indent(verdict.explain()))
        statuses.append(_STATUS[verdict.valid])
    return 1 if 1 in statuses else max(statuses, default=0)


def _line(name: str, verdict: Verdict) -> str:
    """``FILE  405 ops  10 partitions  NOT linearizable  0.003 s``."""
    parts = "unsplit" if not verdict.split else f"{len(verdict.partitions):>3} partitions"
    return f"{name}  {len(verdict.ops):>6} ops  {parts}  {_WORDS[verdict.valid]:<16}  {verdict.elapsed:.3f} s"


def _write_html(verdict: Verdict, name: str, directory: str) -> Path:
    """Write the file's timeline as DIR/<file name>.html."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    return verdict.write_html(target / f"{Path(name).name}.html")


def _reason(exc: Exception, name: str) -> str:
    """The error's message, without repeating the file name it follows."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, HistoryFormatError) and exc.path == name:
        where = f"line {exc.line}: " if exc.line is not None else ""
        return f"{where}expected {exc.expected}, found {exc.found}"
    return str(exc)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
