"""Seed sweeps: one job over many seeds, on every core or on a Dask cluster.

Shared by ``capsim chaos --seeds`` and ``capsim cap --seeds`` (and, for its
worker processes, ``capsim pacelc``). A sweep yields one line per seed, a
JSON-compatible dict, as soon as the seed is done::

    {"seed": 7, "status": "pass" | "fail" | "unknown" | "error" | "crashed", ...the job's fields...,
     "replay": "capsim chaos scenarios/x.toml --seed 7"}

``error``: the job raised (the line holds the exception); ``crashed``: the
process running it died (killed by the OOM killer, say), and the sweep went
on without it. Either way the line says how to replay the seed alone.

Where the seeds run: in this process (one worker), in persistent worker
processes (``capsim.workers``: spawned once, each imports once and takes
seeds in chunks), or on a Dask cluster (``capsim.on_dask``). The lines are
the same, seed for seed and digest for digest, wherever they ran.

A ``ResultsFile`` keeps the lines as JSON Lines, one per seed, written as
each seed finishes, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from capsim.workers import Outcome, WorkerPool, heap_frozen

if TYPE_CHECKING:  # rich is imported where a progress bar is drawn: a command's --help does not need it
    from rich.console import Console

__all__ = [
    "ProgressLines",
    "ResultsFile",
    "ResultsMismatch",
    "SeedJob",
    "inputs_digest",
    "map_unordered",
    "pool_for",
    "positive_int",
    "replay_template",
    "run_sweep",
    "seed_range",
    "seed_value",
    "seeds_left",
    "sweep_with_progress",
    "with_progress",
    "workers_for",
]

#: Statuses of a sweep's line, in the order a summary lists them.
STATUSES = ("pass", "fail", "unknown", "error", "crashed")


@dataclass(frozen=True)
class SeedJob:
    """What a sweep runs for each seed.

    Attributes:
        function: called as ``function(seed)`` in a worker; returns the seed's
            fields as a JSON-compatible dict with ``"status"`` ``"pass"``,
            ``"fail"`` or ``"unknown"`` (a check could not tell: not a pass).
            It must pickle: a module-level function or a ``functools.partial`` of one.
        replay: the command that runs one seed alone, with ``{seed}`` in it.
    """

    function: Callable[[int], dict]
    replay: str
    #: a digest of the files the runs read (a scenario, a config file): ``inputs_digest``; "" for none
    inputs: str = ""

    def command(self, seed: int) -> str:
        return self.replay.format(seed=seed)

    def line(self, seed: int, fields: dict) -> dict:
        """The sweep's line for ``seed``: its number, the job's fields, the replay command (and the inputs' digest)."""
        return {
            "seed": seed,
            **fields,
            "replay": self.command(seed),
            **({"inputs": self.inputs} if self.inputs else {}),
        }

    def failed_line(self, seed: int, status: str, error: str) -> dict:
        return self.line(seed, {"status": status, "error": error})

    def run_here(self, seed: int) -> dict:
        """The seed's line, run in this process (an exception becomes an ``error`` line)."""
        try:
            return self.line(seed, self.function(seed))
        except Exception as exc:
            return self.failed_line(seed, "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")


def inputs_digest(paths: Iterable[str | os.PathLike]) -> str:
    """The first 16 hex digits of the SHA-256 of the files among ``paths`` (names and contents, in order)."""
    digest = hashlib.sha256()
    for path in paths:
        file = Path(path)
        if file.is_file():
            digest.update(str(path).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _same_files(one: str, other: str) -> bool:
    """Whether two replay commands differ only in how they spell the same files (``base.toml``, ``./base.toml``)."""
    try:
        a, b = shlex.split(one), shlex.split(other)
    except ValueError:
        return False
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x != y:
            try:
                if not (Path(x).is_file() and os.path.samefile(x, y)):
                    return False
            except OSError:
                return False
    return True


def replay_template(before: str, after: str = "") -> str:
    """A ``SeedJob.replay`` that reads ``before + str(seed) + after`` (braces in them are kept as they are)."""

    def escape(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}")

    return escape(before) + "{seed}" + escape(after)


def run_sweep(
    job: SeedJob, seeds: Iterable[int], workers: int = 1, cluster: str | None = None, pool: WorkerPool | None = None
) -> Iterator[dict]:
    """One line per seed, as each finishes (in completion order).

    Args:
        job: what to run for each seed, and how to replay it.
        seeds: the seeds to run.
        workers: processes to use; 1 runs every seed in this process.
        cluster: a Dask scheduler address, or ``"local"`` for a LocalCluster of
            ``workers`` processes (needs the ``capsim[cluster]`` extra).
        pool: worker processes already running these seeds (``pool_for``); the caller closes it.
    """
    seeds = list(seeds)
    if cluster is not None:
        from capsim.on_dask import run_on_dask

        yield from run_on_dask(job, seeds, cluster, workers)
    elif pool is not None:
        yield from _lines(job, pool.outcomes())
    elif workers <= 1 or len(seeds) <= 1:
        with heap_frozen():  # as a forked worker starts: what is alive now is not scanned again by each seed
            for seed in seeds:
                yield job.run_here(seed)
    else:
        with WorkerPool(min(workers, len(seeds))) as running:
            yield from _lines(job, running.imap_unordered(job.function, seeds))


def _lines(job: SeedJob, outcomes: Iterator[Outcome]) -> Iterator[dict]:
    for outcome in outcomes:
        seed = cast(int, outcome.item)  # the items are the seeds given
        if outcome.status == "done":
            yield job.line(seed, cast(dict, outcome.value))  # a seed's function returns its line's fields
        else:
            yield job.failed_line(seed, "error" if outcome.status == "raised" else "crashed", outcome.error)


def pool_for(job: SeedJob, seeds: list[int], workers: int, cluster: str | None = None) -> WorkerPool | None:
    """The local workers a sweep of ``seeds`` will use, started and running them; None: in this process, or Dask.

    Call it first, before any thread starts (a progress bar's), so its
    workers can be forked, and before anything else the caller does (import
    rich, draw the bar): each worker has its first seeds at once. Pass it to
    ``run_sweep`` (or ``sweep_with_progress``) with the same seeds.
    """
    if cluster is not None or workers <= 1 or len(seeds) <= 1:
        return None
    return WorkerPool(min(workers, len(seeds))).start().submit(job.function, seeds)


class ResultsMismatch(ValueError):
    """A results file holds lines of another sweep than the one asked to resume."""


class ResultsFile:
    """A sweep's lines as JSON Lines, one per seed, appended as seeds finish.

    Args:
        path: the file.
        resume: keep the lines already there and skip their seeds; without it
            an existing, non-empty file is refused rather than overwritten.
        job: the sweep's job, to check that the lines there are of the same
            sweep (their replay commands must match).

    Raises:
        ResultsMismatch: the file holds lines without ``--resume``, or lines
            of a different sweep.
    """

    def __init__(self, path: str | os.PathLike, resume: bool, job: SeedJob):
        self.path = Path(path)
        self.done: dict[int, dict] = {}
        if self.path.is_dir():
            raise ResultsMismatch(f"{self.path} is a directory; give a file, such as {self.path / 'results.jsonl'}")
        if self.path.exists() and self.path.stat().st_size:
            if not resume:
                self._first_line_is_a_sweeps()
                raise ResultsMismatch(
                    f"{self.path} already holds results; add --resume to continue that sweep, "
                    "or choose another results file"
                )
            self.done = self._read(job)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.path.open("a", encoding="utf-8")

    def _read(self, job: SeedJob) -> dict[int, dict]:
        """The lines there, by seed; a last line cut short by an interruption is dropped from the file.

        Anything else that is not a line of this sweep refuses the file, which is then left as it is:
        it may be another file given by mistake, and resuming appends to it.
        """
        done: dict[int, dict] = {}
        data = self.path.read_bytes()
        lines = data.splitlines(keepends=True)
        cut = bool(lines) and not lines[-1].endswith(b"\n") and lines[-1].startswith(b"{")
        for number, raw in enumerate(lines[:-1] if cut else lines, 1):
            line = self._line(raw, number)
            seed = line["seed"]
            if line["replay"] != job.command(seed) and not _same_files(line["replay"], job.command(seed)):
                raise ResultsMismatch(
                    f"{self.path} holds results of another sweep (line {number} replays with "
                    f"{line['replay']!r}, this sweep with {job.command(seed)!r}); "
                    "choose another results file"
                )
            if job.inputs and line.get("inputs", job.inputs) != job.inputs:  # a line from before digests: taken
                raise ResultsMismatch(
                    f"{self.path}: line {number} (seed {seed}) was run from other contents of the files this sweep "
                    f"reads (its digest {line['inputs']}, theirs now {job.inputs}): a file was edited since; "
                    "run the edited one into another results file, so one table never mixes the two"
                )
            done[seed] = line
        if cut:
            with self.path.open("r+b") as out:
                out.truncate(len(data) - len(lines[-1]))
        return done

    def _first_line_is_a_sweeps(self) -> None:
        """Refuse a file whose first line is not a sweep's: it holds no results to resume (nothing is written).

        Raises:
            ResultsMismatch: naming the line found, and what to do.
        """
        with self.path.open("rb") as file:
            raw = file.readline(64 * 1024)
        if not raw.endswith(b"\n") and raw.startswith(b"{"):
            return  # a first line cut short by an interruption: a sweep's, as --resume takes it
        try:
            self._line(raw, 1)
        except ResultsMismatch:
            text = raw.decode("utf-8", "replace").strip()
            raise ResultsMismatch(
                f"{self.path} is not a capsim results file (its line 1 is not a sweep's line "
                f'{{"seed": N, "status": ..., "replay": ...}}, found {text[:80]!r}); nothing was written to it: '
                "choose another results file"
            ) from None

    def _line(self, raw: bytes, number: int) -> dict:
        """Line ``number`` of the file, checked to be a sweep's line (seed, status, replay)."""
        try:
            line = json.loads(raw) if raw.endswith(b"\n") else None
        except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
            line = None
        if (
            not isinstance(line, dict)
            or type(line.get("seed")) is not int
            or line["seed"] < 0
            or line.get("status") not in STATUSES
            or not isinstance(line.get("replay"), str)
            or (line["status"] in ("error", "crashed") and not isinstance(line.get("error"), str))
        ):
            text = raw.decode("utf-8", "replace").strip()
            raise ResultsMismatch(
                f'{self.path}: line {number} is not a line of a sweep ({{"seed": N, "status": ..., '
                f'"replay": ...}}), found {text[:80]!r}; the file is left as it is: '
                "choose another results file (or remove that line)"
            )
        return line

    def write(self, line: dict) -> None:
        try:
            self._out.write(json.dumps(line, sort_keys=True) + "\n")
            self._out.flush()
        except OSError as exc:  # a full disk, say: name the file, which "[Errno 28]" alone did not
            raise OSError(exc.errno, f"cannot write {self.path} ({exc.strerror or exc})") from None

    def close(self) -> None:
        try:
            self._out.close()
        except OSError as exc:  # what a failed write left in the buffer: named as write names it
            raise OSError(exc.errno, f"cannot write {self.path} ({exc.strerror or exc})") from None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProgressLines:
    """Off a terminal, rich draws a progress bar only once, at the end: a line on stderr every ``every`` wall s instead.

    ``capsim chaos --seeds 1-100000 > log`` then says how far it is while it runs.
    """

    every = 10.0

    def __init__(self, console: Console, label: str, total: int) -> None:
        self.on, self.label, self.total = not console.is_terminal, label, total
        self.started = self.last = time.monotonic()  # wall-clock ok: progress display only

    def __call__(self, done: int, note: str = "") -> None:
        now = time.monotonic()  # wall-clock ok
        if self.on and now - self.last >= self.every:
            self.last = now
            print(
                f"capsim: {self.label} {done:,} of {self.total:,}{', ' + note if note else ''}, "
                f"{now - self.started:.0f} s so far",
                file=sys.stderr,
                flush=True,
            )


def bar_console(console: Console) -> Console:
    """Where a progress bar goes: stderr, so stdout holds the results alone (``capsim chaos --seeds 1-9 > out``)."""
    if console.stderr:
        return console
    from capsim.output import console as new_console

    return new_console(stderr=True)


def sweep_with_progress(
    console: Console,
    job: SeedJob,
    seeds: list[int],
    workers: int = 1,
    cluster: str | None = None,
    results: ResultsFile | None = None,
    label: str = "seeds",
    pool: WorkerPool | None = None,
) -> list[dict]:
    """Run the sweep with a progress bar (done, failed, crashed, time left); the lines, sorted by seed.

    Seeds already in ``results`` are not run again; new lines are appended to it as they come.
    ``pool``: the sweep's workers, running already (``pool_for(job, seeds_left(seeds, results), ...)``);
    without one, they are started here. Either way they are stopped at the end.
    """
    wanted = set(seeds)
    done = {seed: line for seed, line in (results.done.items() if results else ()) if seed in wanted}
    lines = list(done.values())
    if pool is None:
        pool = pool_for(job, seeds_left(seeds, results), workers, cluster)  # before rich, and its thread
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed, {task.fields[crashed]} crashed, {task.fields[unknown]} unknown"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    say = ProgressLines(console, label, len(seeds))
    try:
        with Progress(*columns, console=bar_console(console), transient=False) as progress:
            task = progress.add_task(label, total=len(seeds), completed=len(done), **_counts(lines))
            for line in run_sweep(job, seeds_left(seeds, results), workers, cluster, pool):
                lines.append(line)
                if results is not None:
                    results.write(line)
                counts = _counts(lines)
                progress.update(task, advance=1, **counts)
                say(len(lines), f"{counts['failed']} failed, {counts['crashed']} crashed, {counts['unknown']} unknown")
    finally:
        if pool is not None:
            pool.close()
    return sorted(lines, key=lambda line: line["seed"])


def seeds_left(seeds: list[int], results: ResultsFile | None) -> list[int]:
    """The seeds of a sweep that are not done yet (in ``results``, when it resumes), in their order."""
    return [seed for seed in seeds if results is None or seed not in results.done]


def _counts(lines: list[dict]) -> dict:
    failed = sum(1 for line in lines if line["status"] in ("fail", "error"))
    return {
        "failed": failed,
        "crashed": sum(1 for line in lines if line["status"] == "crashed"),
        "unknown": sum(1 for line in lines if line["status"] == "unknown"),
    }


# -- generic jobs (not seeds): capsim pacelc -------------------------------------------------------


def map_unordered(function: Callable, jobs: list, workers: int, pool: WorkerPool | None = None) -> Iterator:
    """``function`` over ``jobs``, in worker processes when ``workers`` > 1; yields results as they finish.

    ``pool``: workers already started (before any thread); it is closed at the end.

    Raises:
        RuntimeError: a job raised, or its worker died (with the job and the reason).
    """
    if pool is None and workers <= 1:
        yield from map(function, jobs)
        return
    with pool or WorkerPool(workers) as running:
        for outcome in running.imap_unordered(function, jobs):
            if outcome.status != "done":
                raise RuntimeError(f"job {outcome.item!r} {outcome.status}: {outcome.error}")
            yield outcome.value


def with_progress(
    console: Console, label: str, function: Callable, jobs: list, workers: int, on_result: Callable | None = None
) -> list:
    """Run the jobs with a progress bar; returns the results in completion order."""
    pool = WorkerPool(min(workers, len(jobs))).start() if workers > 1 and len(jobs) > 1 else None  # before rich
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results = []
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    say = ProgressLines(console, label, len(jobs))
    try:
        with Progress(*columns, console=bar_console(console), transient=False) as progress:  # after the workers fork
            task = progress.add_task(label, total=len(jobs))
            for result in map_unordered(function, jobs, workers, pool):
                results.append(result)
                if on_result is not None:
                    on_result(progress, task, results)
                progress.update(task, advance=1)
                say(len(results))
    finally:
        if pool is not None:
            pool.close()
    return results


# -- arguments --------------------------------------------------------------------------------------


def workers_for(jobs: int, requested: int | None) -> int:
    """How many workers to use: as requested, else one per core, never more than jobs."""
    return max(1, min(requested or os.cpu_count() or 1, jobs))


def seed_range(text: str) -> range:
    """An argparse type: ``A-B`` (inclusive, A <= B) as a range."""
    if text.startswith("-"):
        raise argparse.ArgumentTypeError(f"expected a seed range A-B such as 1-20 (no seed is negative), got {text!r}")
    first, sep, last = text.partition("-")
    try:
        low, high = int(first), int(last)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a seed range A-B such as 1-20, got {text!r}") from None
    if not sep or low > high or low < 0:
        raise argparse.ArgumentTypeError(f"expected a seed range A-B with 0 <= A <= B, got {text!r}")
    return range(low, high + 1)


def seed_value(text: str) -> int:
    """An argparse type: a seed, a whole number >= 0 (as ``--seeds A-B`` takes)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a seed, a whole number >= 0 such as 1, got {text!r}")
    return value


def seconds_value(text: str) -> float:
    """An argparse type: a finite number of seconds >= 0 (a time or a duration)."""
    return _finite(text, zero_ok=True, expected="a finite number of seconds >= 0")


def positive_number(text: str) -> float:
    """An argparse type: a finite number > 0 (a duration, a rate)."""
    return _finite(text, zero_ok=False, expected="a finite number > 0")


def _finite(text: str, zero_ok: bool, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 if zero_ok else value > 0) or value == math.inf:
        raise argparse.ArgumentTypeError(f"expected {expected}, such as 2.5, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value
