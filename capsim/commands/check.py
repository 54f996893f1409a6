"""``capsim check``: linearizability of recorded histories.

    capsim check [--model NAME] [--timeout S] [--steps N] [--no-split] [--html DIR] [--explain] FILE...
    ... | capsim check -                  a history on standard input
    capsim check --example NAME...        check histories shipped with capsim
    capsim check --examples               list them

One verdict line per file: file, ops, keys (each key is checked on its own), model, verdict, time taken.
Without ``--model`` the model is detected from the history (capsim's own
read/write/cas histories: ``cas-register``; get/put/append: ``kv``; a
Knossos data file: ``knossos-cas-register``). The exit status is 0 when
every file is linearizable, 1 when one is not, 2 when none is found
non-linearizable but one is unknown (time or steps ran out) or could not be read; as
in Jepsen, a definite violation outranks an unknown. A bad file never
produces a traceback: ``capsim check: error: <file>: <message>``; nor does
one too large for the memory available, refused before it is read
(:func:`capsim.limits.check_history`), nor memory running out during a
check (exit 2). A check that runs past two seconds reports its progress
on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from capsim import limits
from capsim.cli import SUMMARIES, UsageError
from capsim.output import path_text, writable_dir
from emulator.check import MODELS, CheckError, HistoryFormatError, Progress, Verdict, examples, linearizable
from emulator.check.ops import pairs_shared
from emulator.check.readers import read_history

_WORDS = {True: "linearizable", False: "NOT linearizable", None: "unknown"}
_STATUS = {True: 0, False: 1, None: 2}
PROGRESS_AFTER = 2.0  # seconds before a running check starts reporting on stderr
STDIN = "-"  # the file name that reads standard input
_OUT_OF_MEMORY = (
    "memory ran out reading or checking it (Python raised MemoryError); check a part of it (its first lines, "
    "or one key's ops), or check it where more memory is available"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check`` subcommand to the ``capsim`` parser."""
    names = ", ".join(n.replace("_", "-") for n in MODELS)
    parser = subparsers.add_parser(
        "check",
        help=SUMMARIES["check"],
        description="Check recorded histories (capsim JSON Lines, Jepsen or Knossos EDN, Porcupine's kv "
        "format, Jepsen console logs) for linearizability.",
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="history files (- reads standard input); the format is detected"
    )
    parser.add_argument(
        "--model",
        type=_model,
        metavar="NAME",
        help=f"the sequential model: {names} (- or _; default: detected from the history)",
    )
    parser.add_argument(
        "--timeout", type=_seconds, metavar="S", help="give up on a file after S seconds: unknown (default: no limit)"
    )
    parser.add_argument(
        "--steps",
        type=_steps,
        metavar="N",
        help="give up on a file after N search steps, all keys together: unknown; unlike --timeout, the same "
        "verdict on any machine at any load. It is checked between turns of 1,024 steps of one key, so a search "
        "may pass N by up to 1,023 (and decide within them) (default: no limit)",
    )
    parser.add_argument("--no-split", action="store_true", help="check each history whole, not key by key")
    parser.add_argument("--html", type=path_text, metavar="DIR", help="write an HTML timeline per file into DIR")
    parser.add_argument("--explain", action="store_true", help="print why each failing history fails")
    parser.add_argument(
        "--example",
        action="append",
        default=[],
        metavar="NAME",
        help="check a history shipped with capsim (see --examples); repeatable",
    )
    parser.add_argument("--examples", action="store_true", help="list the histories shipped with capsim")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every file; print one line each; return the exit status (see module doc)."""
    if args.examples:
        if args.files or args.example:
            given = "FILE" if args.files else "--example"
            raise UsageError(
                f"--examples only lists the shipped histories and checks nothing; drop it to check {given}, "
                "or give it alone to see the list"
            )
        return _list_examples()
    try:
        files = list(args.files) + [str(examples.path(name)) for name in args.example]
    except KeyError as exc:
        print(f"capsim check: error: {exc.args[0]}", file=sys.stderr)
        return 2
    if not files:
        print("capsim check: error: give history files, or --example NAME (--examples lists them)", file=sys.stderr)
        return 2
    if files.count(STDIN) > 1:
        print("capsim check: error: - (standard input) can be read once; give it once", file=sys.stderr)
        return 2
    if args.html:
        writable_dir(args.html, "--html")  # before any check runs: a long check must not end in "cannot write"
    width = max(len(f) for f in files)
    args.html_names = _html_names(files)
    statuses = [_check_one(name, name.ljust(width), args) for name in files]
    return 1 if 1 in statuses else max(statuses, default=0)


def _check_one(name: str, label: str, args: argparse.Namespace) -> int:
    """Check one file, print its line (and explanation); its exit status."""
    reporter = _Reporter(name)
    verdict = _verdict(name, args, reporter)
    if not isinstance(verdict, str) and args.html:
        try:
            _write_html(verdict, args.html_names[name], args.html)
        except OSError as exc:
            verdict = _reason(exc, name)
    reporter.clear()
    if isinstance(verdict, str):
        print(f"capsim check: error: {name}: {verdict}", file=sys.stderr)
        return 2
    print(_line(label, verdict))
    if args.explain and verdict.valid is not True:
        print(_indent(verdict.explain()))
    return _STATUS[verdict.valid]


def _verdict(name: str, args: argparse.Namespace, reporter: _Reporter) -> Verdict | str:
    """Read and check one file: its verdict, or why it has none (one line)."""
    try:
        if name != STDIN:
            limits.check_history(name)  # before reading: a history too large fails in one line, not in swap
        with pairs_shared():  # the reader pairs the ops to check them; the checker takes that pairing
            return linearizable(
                read_history(sys.stdin.buffer if name == STDIN else name),
                model=args.model,
                partition=not args.no_split,
                timeout=args.timeout,
                steps=args.steps,
                progress=reporter,
                progress_every=reporter.every,
            )
    except (CheckError, OSError, limits.TooBig) as exc:
        return _reason(exc, name)
    except MemoryError:
        pass  # answered below, once the traceback has let go of the history it held
    return _OUT_OF_MEMORY


class _Reporter:
    """Progress on stderr for a check that runs past :data:`PROGRESS_AFTER` seconds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tty = sys.stderr.isatty()
        self.every = 0.5 if self.tty else 5.0
        self.shown = False

    def __call__(self, progress: Progress) -> None:
        if progress.elapsed < PROGRESS_AFTER:
            return
        text = (
            f"capsim check: {self.name}: {progress.keys_done} of {progress.keys} keys decided, "
            f"{progress.explored:,} configurations, {progress.elapsed:.0f} s"
        )
        if self.tty:
            sys.stderr.write("\r" + text + "\x1b[K")
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown and self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _list_examples() -> int:
    """Print the shipped examples: name, format, expected verdict, path."""
    for item in examples.EXAMPLES:
        word = "linearizable" if item.valid else "NOT linearizable"
        print(f"{item.name:<36} {item.format:<11} {word:<17} {item.what}")
    print(f"\ncheck one with: capsim check --example {examples.EXAMPLES[0].name} --explain")
    print(f"they live in {examples.DIR}")
    return 0


def _line(name: str, verdict: Verdict) -> str:
    """``FILE  405 ops  10 keys  model kv  NOT linearizable  0.003 s`` (keys: the history split by key)."""
    count = len(verdict.partitions)
    parts = "unsplit" if not verdict.split else f"{count:>3} key " if count == 1 else f"{count:>3} keys"
    model = verdict.model.name.replace("_", "-") + (" (detected)" if verdict.detected else "")
    return (
        f"{name}  {len(verdict.ops):>6} ops  {parts}  model {model}  "
        f"{_WORDS[verdict.valid]:<16}  {verdict.elapsed:.3f} s"
    )


def _html_names(files: list[str]) -> dict[str, str]:
    """Each file's timeline's name: <file name>.html (stdin.html for standard input).

    A name two files share gets -2, -3, ... after the first (a/h.jsonl and b/h.jsonl wrote one h.jsonl.html, the
    second over the first).
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for file in files:
        base = "stdin" if file == STDIN else Path(file).name
        name, n = f"{base}.html", 1
        while name in taken:
            n += 1
            name = f"{base}-{n}.html"
        taken.add(name)
        names[file] = name
    return names


def _write_html(verdict: Verdict, name: str, directory: str) -> Path:
    """Write the file's timeline as DIR/``name``."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    return verdict.write_html(target / name)


def _reason(exc: Exception, name: str) -> str:
    """The error's message, without repeating the file name it follows."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, HistoryFormatError) and exc.path == name:
        where = f"line {exc.line}: " if exc.line is not None else ""
        return f"{where}expected {exc.expected}, found {exc.excerpt}"
    return str(exc)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _model(text: str) -> str:
    """An argparse type: a model name, spelled with - or _."""
    if text not in MODELS:
        names = ", ".join(n.replace("_", "-") for n in MODELS)
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {names}; - or _ both work)")
    return text


def _steps(text: str) -> int:
    """An argparse type: a positive whole number of steps (2000000 or 2_000_000)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of steps, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
