"""The ``capsim`` command line.

Each subcommand lives in its own module under ``capsim.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``run(args) -> int`` (the exit status). A command's module is
imported only when that command is called (``capsim --help`` lists every
command from ``SUMMARIES`` without importing one), so a command pays for its
own imports only: a ``capsim chaos --seeds`` sweep forks its workers sooner.
What each exit status means is written once, in ``EXIT_STATUS`` below, and
each command's one-line summary in ``SUMMARIES``: every command's ``--help``
shows its own statuses, and the README's table is checked against them. A mistake in how a
command is called prints one line (what was wrong, and where the help is)
and exits 2, never a usage block or a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import signal
import sys
import textwrap
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

__all__ = [
    "COMMON_EXIT_STATUS",
    "EXIT_STATUS",
    "SUMMARIES",
    "LinesFormatter",
    "Parser",
    "UsageError",
    "build_parser",
    "command",
    "exit_epilog",
    "interrupted",
    "main",
]

# Order is the order of `capsim --help`.
COMMANDS = ("cap", "pacelc", "demo", "chaos", "check", "serve", "cluster")

#: command -> the line ``capsim --help`` shows for it (each command's ``register`` uses it as its ``help``).
SUMMARIES = {
    "cap": "CAP, measured: CP and AP stores through the same partition (the main job)",
    "pacelc": "PACELC, measured: stale reads against latency with no partition, model and store",
    "demo": "run a short demonstration (default: partition; --list for all)",
    "chaos": "run a scenario under faults and check its history",
    "check": "check histories for linearizability",
    "serve": "run one node as a real process (JSON over HTTP)",
    "cluster": "run a local cluster of real node processes",
}

#: Exit statuses every command shares.
COMMON_EXIT_STATUS = {
    2: "a usage or input error, or memory ran out: one line on stderr, no traceback",
    130: "interrupted (Ctrl-C, or SIGTERM)",
    141: "the output's reader went away (piped into head, say): stopped quietly, as Unix tools do on SIGPIPE",
}

#: command -> its own exit statuses (beside the common ones) -> what they mean.
EXIT_STATUS: dict[str, dict[int, str]] = {
    "cap": {
        0: "the table was printed (and written)",
        1: "protocol code raised during a run: the figures are not to be trusted",
    },
    "pacelc": {0: "the table was printed (and written)"},
    "demo": {0: "the demo ran"},
    "chaos": {
        0: "every check passed, for every seed",
        1: "a check failed or could not tell, or a seed's run raised or its worker process died; "
        "with --real, also: the cluster did not start",
    },
    "check": {
        0: "every history is linearizable",
        1: "a history is not linearizable",
        2: "a history could not be checked (unreadable, too large for the memory available, or the checker ran "
        "out of time, of --steps or of memory)",
    },
    "serve": {
        0: "stopped by SIGTERM or Ctrl-C once listening (before that: 130)",
        2: "a usage error, or the node could not be built",
        3: "the address could not be bound (in use, or not local)",
    },
    "cluster": {
        0: "done",
        1: "up: a node did not start (none is left running); workload: the history is not "
        "linearizable; a fault: a running node did not apply it (one down or paused is given it when restarted or "
        "resumed)",
        2: "workload: the checker ran out of time, or no operation succeeded (nothing to check)",
    },
}


def exit_epilog(command: str) -> str:
    """The 'exit status' paragraph of ``command``'s ``--help``."""
    statuses = {**COMMON_EXIT_STATUS, **EXIT_STATUS[command]}
    return "exit status: " + "; ".join(f"{code} {statuses[code]}" for code in sorted(statuses))


class LinesFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and the epilog's lines as written, wrapping a long one under its own indent.

    A line indented four spaces or more is code (a command to copy) and is kept whole.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:  # argparse's hook
        lines = []
        for line in text.splitlines():
            body = line.lstrip()
            lead = indent + line[: len(line) - len(body)]
            if not body or len(lead) - len(indent) >= 4:
                lines.append(lead + body if body else "")
            else:
                wrapped = textwrap.fill(
                    body, width, initial_indent=lead, subsequent_indent=lead + "  ", break_on_hyphens=False
                )
                lines.append(wrapped)
        return "\n".join(lines)


class UsageError(Exception):
    """A mistake in how a command was called; printed without a traceback, exit 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit 2: what was wrong, and where the help is."""

    def error(self, message: str) -> NoReturn:  # argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser(lazy: bool = False) -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered.

    ``lazy``: each command's parser is built, and its module imported, only
    when the command is called (as ``main`` does); the help and the errors are
    the same either way.
    """
    parser = Parser(
        prog="capsim",
        description="Distributed systems under faults, in virtual time: CAP and PACELC with numbers.",
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, default=argparse.SUPPRESS, help="show program's version number and exit"
    )
    if lazy:
        placeholders = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Unbuilt)
        for name in COMMANDS:
            placeholders.add_parser(name, help=SUMMARIES[name], command=name)
    else:
        commands = parser.add_subparsers(dest="command", metavar="COMMAND")
        for name in COMMANDS:
            _register(commands, name)
    return parser


def _register(subparsers: argparse._SubParsersAction, name: str) -> Parser:
    """Add command ``name``'s parser, built by its module, with its exit statuses; returns it."""
    importlib.import_module(f"capsim.commands.{name}").register(subparsers)
    command: Parser = subparsers.choices[name]
    command.epilog = (command.epilog + "\n\n" if command.epilog else "") + exit_epilog(name)
    return command


class _Unbuilt(Parser):
    """A command listed by ``capsim --help`` whose module is imported, and parser built, when it is called."""

    def __init__(self, command: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.built: Parser | None = None

    def parse_known_args(self, args=None, namespace=None):  # what the top-level parser calls with the command's args
        if self.built is None:
            self.built = _register(Parser(prog="capsim").add_subparsers(), self.command)
        return self.built.parse_known_args(args, namespace)


class _Version(argparse.Action):
    """``--version``, looked up only when asked for: importlib.metadata and the lookup take 30-50 ms."""

    def __call__(self, parser, namespace, values, option_string=None):
        from capsim import __version__

        print(f"capsim {__version__}")
        parser.exit()


#: What ``signal.signal`` takes and returns: a handler, SIG_DFL / SIG_IGN, or None (set outside Python).
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

#: Ctrl-Cs seen while a command runs (see ``interrupted``).
_INTERRUPTS: list[int] = []


def interrupted() -> bool:
    """Whether Ctrl-C was pressed during this command, even if Python dropped its KeyboardInterrupt.

    Python drops an exception raised where none can propagate (a weakref
    callback during an import, a ``__del__``); a command about to start
    something that must be stopped again (node processes) asks this first.
    """
    return bool(_INTERRUPTS)


def _note_interrupt(signum: int, frame: FrameType | None) -> None:
    _INTERRUPTS.append(signum)
    raise KeyboardInterrupt


def command() -> int:
    """The ``capsim`` console script and ``python -m capsim``: ``main()``, after which the process ends.

    Every object still alive is then put out of the collector's sight
    (``gc.freeze``), so the interpreter's last collections at exit do not walk
    all of the kernel's, the protocols' and rich's objects only to free memory
    the process is about to hand back whole. Python does not promise to
    finalize objects alive at exit, and capsim closes what it opens.
    """
    try:
        return main()
    finally:
        gc.freeze()


#: Options whose value may start with '-': argparse takes such a value for an option unless it is attached.
_ATTACHED = ("--seeds", "--t")


def _seed_ranges_attached(argv: list[str]) -> list[str]:
    """``--seeds -1-2`` as ``--seeds=-1-2``, ``--t -1ms`` as ``--t=-1ms``: so the value's own error says what is wrong.

    argparse takes a value that starts with '-' and a digit (or '.') for an option, and says "expected one argument".
    """
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--" or (out and out[-1] == "--"):
            out.append(word)
            out.extend(words)  # after "--", nothing is an option
            break
        out.append(word)
        if word in _ATTACHED:
            value = next(words, None)
            if value is not None and value[:1] == "-" and (value[1:2].isdigit() or value[1:2] == "."):
                out[-1] = f"{word}={value}"
            elif value is not None:
                out.append(value)
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``capsim`` console script; returns the exit status.

    SIGTERM (``kill PID``, a CI runner's timeout, ``docker stop``) stops a command as Ctrl-C does: what it
    started is stopped, what it wrote is kept, exit 130.
    """
    installed, previous = _handle_interrupts()
    _printable_streams()
    here = _importable_here()
    try:
        parser = build_parser(lazy=True)
        args, extra = parser.parse_known_args(_seed_ranges_attached(sys.argv[1:] if argv is None else argv))
        if extra:  # named by the command they were given to (argparse names the top-level parser)
            words = [
                getattr(args, "command", None),
                getattr(args, "action", None) if args.command == "cluster" else None,
            ]
            prog = " ".join(["capsim", *(w for w in words if isinstance(w, str))])
            parser.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extra)} (see: {prog} --help)\n")
        if sys.stdout is None:  # started with its standard output closed (>&-): printing would be a traceback
            print(
                "capsim: error: standard output is closed; redirect it instead (> FILE, or > /dev/null)",
                file=sys.stderr,
            )
            return 2
        if not getattr(args, "func", None):  # a mistake like any other: one line, not the usage block
            print(f"capsim: error: give a command: {', '.join(COMMANDS)} (see: capsim --help)", file=sys.stderr)
            return 2
        status = _run(args)
        if _INTERRUPTS:  # a Ctrl-C whose KeyboardInterrupt Python dropped (raised in a weakref callback, say)
            raise KeyboardInterrupt
        return status
    except KeyboardInterrupt:
        print("capsim: interrupted", file=sys.stderr)
        _forget_unhandled_interrupt()
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except MemoryError:
        pass  # reported below, once the traceback and the memory its frames hold are let go
    finally:
        if installed:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)
            if sys.unraisablehook is _quiet_interrupts:
                sys.unraisablehook = _quiet_interrupts.previous  # type: ignore[attr-defined]
        _INTERRUPTS.clear()
        if here is not None and here in sys.path:
            sys.path.remove(here)
    return _out_of_memory()  # only a MemoryError gets here: every other way out of the try returns or raises


def _out_of_memory() -> int:
    """Say in one line that memory ran out (a MemoryError no command caught itself); status 2."""
    print(
        "capsim: error: memory ran out (Python raised MemoryError); give the command less to do (a smaller size, "
        "a shorter run, a part of the file), or run it where more memory is available",
        file=sys.stderr,
    )
    return 2


def _importable_here() -> str | None:
    """Let a protocol of one's own (``--protocol mine:Node``, a scenario's ``module:Class``) import from here.

    As under ``python -m capsim``: a console script's ``sys.path`` starts at
    the script's own directory. Appended, not put first, so a file here never
    shadows an installed module. Returns the entry added (None: it was there
    already, or there is no working directory).
    """
    try:
        here = os.getcwd()
    except OSError:  # the directory was removed under us
        return None
    if "" in sys.path or here in sys.path:
        return None
    sys.path.append(here)
    return here


def _reader_gone() -> int:
    """The pipe we print to closed (``capsim ... | head``): stop without a word, status 141 (128 + SIGPIPE).

    stdout is pointed at /dev/null so the interpreter's final flush does not
    fail again at exit (Python's documented recipe for SIGPIPE).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (a test's capture): nothing to flush at exit
        pass
    return 141


def _forget_unhandled_interrupt() -> None:
    """Keep the exit status 130 that the caught KeyboardInterrupt earned.

    CPython notes "an unhandled KeyboardInterrupt" when one leaves code run
    by ``exec``/``eval`` of a string (dataclasses and namedtuple build their
    methods that way, so a Ctrl-C during an import can pass through one),
    even if an outer ``except`` catches it; at exit it then kills the
    process with SIGINT itself (status -2). The note is cleared at the start
    of every such ``exec``, so one that runs nothing clears it.
    """
    exec("pass")


def _printable_streams() -> None:
    """Print what the terminal cannot encode as escapes, not a UnicodeEncodeError.

    A history may hold a lone surrogate (JSON's ``"\ud800"``), which no UTF-8 has, and a terminal may take
    ASCII only: an explanation naming such a value is still printed, with ``\ud800`` in its place.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # detached, or closed
                reconfigure(errors="backslashreplace")


def _handle_interrupts() -> tuple[bool, dict[int, _Handler]]:
    """Install the handler that also remembers, for Ctrl-C and SIGTERM; returns (installed?, the handlers replaced).

    A KeyboardInterrupt Python cannot raise (in a weakref callback or a ``__del__``) is remembered, so the command
    still ends with 130, and not shown as an 'Exception ignored' traceback.
    """
    try:
        handlers: dict[int, _Handler] = {
            signum: signal.signal(signum, _note_interrupt) for signum in (signal.SIGINT, signal.SIGTERM)
        }
    except ValueError:  # not the main thread: signals are not ours to handle
        return False, {}
    if sys.unraisablehook is not _quiet_interrupts:
        _quiet_interrupts.previous = sys.unraisablehook  # type: ignore[attr-defined]
        sys.unraisablehook = _quiet_interrupts
    return True, handlers


def _quiet_interrupts(unraisable: Any) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _INTERRUPTS:
        return  # remembered in _INTERRUPTS: main reports it
    _quiet_interrupts.previous(unraisable)  # type: ignore[attr-defined]


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except (BrokenPipeError, MemoryError):
        raise  # handled in main: not a user's mistake, and not a bug of their code
    except UsageError as exc:
        print(f"capsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:  # a binary file where text was expected, read by any command
        print(
            f"capsim {args.command}: error: a file is not UTF-8 text (byte {exc.start}: {exc.reason}); "
            "give a text file",
            file=sys.stderr,
        )
        return 2
    except (ValueError, TypeError, OSError) as exc:
        # emulator's ConfigError / MessageError derive from these; a user's bad
        # input must never reach them as a traceback.
        from emulator.errors import EmulatorError

        if isinstance(exc, (EmulatorError, OSError)):
            print(f"capsim {args.command}: error: {exc}", file=sys.stderr)
            return 2
        if not _raised_by_your_code(args, exc):
            raise
        return 1
    except (Exception, SystemExit) as exc:
        if not _raised_by_your_code(args, exc):
            raise
        return 1


def _raised_by_your_code(args: argparse.Namespace, exc: BaseException) -> bool:
    """Say in one line that the user's own code (a protocol, a primary function) raised ``exc``, and where.

    False, saying nothing, when the innermost frame outside Python's and the installed packages' files is
    capsim's own: a bug of capsim's, whose traceback is for its report. ``CAPSIM_TRACEBACK=1`` shows the
    whole traceback either way.
    """
    frame = _your_frame(exc)
    if frame is None or os.environ.get("CAPSIM_TRACEBACK"):
        return False
    what = f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"raised {type(exc).__name__}: {exc}"
    print(
        f"capsim {args.command}: error: your code {what} ({frame.filename}, line {frame.lineno}, in {frame.name}); "
        "CAPSIM_TRACEBACK=1 shows the whole traceback",
        file=sys.stderr,
    )
    return True


def _your_frame(exc: BaseException) -> Any:
    """The innermost traceback frame in a file of neither capsim, Python nor an installed package, or None."""
    import sysconfig
    import traceback
    from pathlib import Path

    here = Path(__file__).resolve().parents[1]
    ours = [here / package for package in ("capsim", "emulator", "faults", "nodes")]
    paths = sysconfig.get_paths()
    ours += [Path(paths[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith("<"):
            continue
        path = Path(frame.filename).resolve()
        if not any(path.is_relative_to(root) for root in ours):
            return frame
        if any(path.is_relative_to(root) for root in ours[:4]):
            return None  # capsim's own code is innermost: its bug
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
