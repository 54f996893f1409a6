"""The plumbing of ``--seeds`` shared by ``capsim chaos`` and ``capsim cap``.

``--workers W`` (or ``--jobs``), ``--results FILE.jsonl``, ``--resume`` and
``--cluster ADDRESS|local``: their arguments, their checks, and running a
sweep with its results file and progress bar (see :mod:`capsim.parallel`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from capsim import limits
from capsim.cli import UsageError
from capsim.limits import available_mb, workers_that_fit
from capsim.on_dask import ClusterError, require_dask
from capsim.output import path_text
from capsim.parallel import (
    ResultsFile,
    ResultsMismatch,
    SeedJob,
    pool_for,
    positive_int,
    seeds_left,
    sweep_with_progress,
    workers_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

__all__ = ["add_sweep_arguments", "check_size", "check_sweep_arguments", "open_results", "run_sweep_command"]


def check_size(nodes: int, operations: float, seeds: int, duration_flag: str = "--duration") -> float:
    """``capsim.limits.check`` for a command: a run too big for this machine is a usage error (exit 2)."""
    try:
        return limits.check(nodes, operations, seeds=seeds, duration_flag=duration_flag)
    except limits.TooBig as exc:
        raise UsageError(str(exc)) from None


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """--workers, --results, --resume and --cluster, for a command with --seeds."""
    parser.add_argument(
        "--workers",
        "--jobs",
        dest="workers",
        type=positive_int,
        metavar="W",
        action=_Workers,
        help="worker processes for --seeds (default: one per CPU; 1 runs in this process)",
    )
    parser.add_argument(
        "--results",
        type=path_text,
        metavar="FILE.jsonl",
        help="with --seeds: write one JSON line per seed as it finishes (default with --out: DIR/results.jsonl)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="with --results: run only the seeds that are not in the file yet"
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="with --seeds: run the seeds on the Dask scheduler at ADDRESS (e.g. tcp://host:8786), "
        "or 'local' for a local Dask cluster; needs pip install 'capsim[cluster]'",
    )


class _Workers(argparse.Action):
    """Stores --workers (or its older name --jobs) and which of the two was written, for messages."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.workers = values
        namespace.workers_flag = option_string


def check_sweep_arguments(args: argparse.Namespace) -> None:
    """Refuse sweep flags without --seeds, and --resume without a results file."""
    if args.seeds is None:
        for flag, value in (
            ("--results", args.results),
            ("--resume", args.resume),
            ("--cluster", args.cluster),
            (getattr(args, "workers_flag", "--workers"), args.workers),
        ):
            if value:
                raise UsageError(f"{flag} goes with --seeds A-B")
    elif args.resume and not (args.results or getattr(args, "out", None)):
        raise UsageError("--resume needs the results file of the sweep: --results FILE.jsonl (or --out DIR)")
    if args.seeds is not None and args.cluster is not None:
        check_address(args.cluster)
        try:
            require_dask()  # before the sweep draws its progress bar
        except ClusterError as exc:
            raise UsageError(str(exc)) from None


#: What --cluster takes besides 'local': [SCHEME://]HOST:PORT, HOST a name, an IPv4 address or [an IPv6 one].
_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})/?")


def check_address(address: str) -> None:
    """Refuse a --cluster value that no Dask scheduler can have (no port, say), before a sweep starts.

    Raises:
        UsageError: it is neither 'local' nor [SCHEME://]HOST:PORT.
    """
    if address == "local":
        return
    match = _ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise UsageError(
            f"--cluster {address!r}: expected a Dask scheduler's address such as tcp://HOST:8786 "
            "(the one 'dask scheduler' prints), or 'local' for a Dask cluster on this machine"
        )


def open_results(args: argparse.Namespace, job: SeedJob) -> ResultsFile | None:
    """The sweep's results file (--results, or DIR/results.jsonl with --out), or None."""
    out = getattr(args, "out", None)
    path = args.results or (Path(out) / "results.jsonl" if out else None)
    if path is None:
        return None
    try:
        return ResultsFile(path, args.resume, job)
    except ResultsMismatch as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        blocking = next((parent for parent in Path(path).parents if parent.is_file()), None)
        if blocking is not None:  # "File exists" said nothing of which
            raise UsageError(f"--results {path}: {blocking} is a file, not a directory; give another path") from None
        raise UsageError(
            f"--results {path}: cannot write it ({exc.strerror or exc}); give a file in a directory you can write to"
        ) from None


def run_sweep_command(
    console: Callable[[], Console],
    args: argparse.Namespace,
    job: SeedJob,
    seeds: list[int],
    run_mb: float | None = None,
) -> list[dict]:
    """The sweep behind a command's --seeds, with its results file; Ctrl-C says how to resume.

    ``console`` makes the console to print on; it is called once the local
    workers have forked, so a command that has not imported rich yet (chaos)
    does not import it before they start. ``run_mb``: the memory one seed's
    run needs (``capsim.limits``): fewer local workers are used when that
    many runs at once would not fit.
    """
    workers = workers_for(len(seeds), args.workers)
    fit = workers
    if run_mb is not None and args.cluster is None:
        fit = workers_that_fit(workers, run_mb)
    results = open_results(args, job)
    pool = out = None
    try:
        pool = pool_for(job, seeds_left(seeds, results), fit, args.cluster)  # first: before rich, and any thread
        out = console()
        if fit < workers:
            out.print(
                f"using {fit} of {workers} workers: each run needs about {run_mb:,.0f} MB "
                f"(capsim.limits) and {available_mb():,.0f} MB are available",
                markup=False,
            )
        return sweep_with_progress(out, job, seeds, fit, args.cluster, results, pool=pool)
    except ClusterError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        if results is not None:
            note = (
                f"interrupted: the seeds done so far are in {results.path}; run the same command "
                "with --resume to finish the sweep"
            )
            print(note, file=sys.stderr, flush=True)  # with the other notes, not in the table on stdout
        raise
    finally:
        if pool is not None:
            pool.close()  # sweep_with_progress stops it too; this is for a failure before it started
        if results is not None:
            results.close()
