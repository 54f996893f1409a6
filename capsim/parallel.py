"""Running many seeds: worker processes, a progress bar, seed-range arguments.

Shared by ``capsim chaos --seeds``, ``capsim cap --seeds`` and
``capsim pacelc``. Workers are spawned, not forked, so each starts from a
clean interpreter (and the job function must be importable at top level).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["map_unordered", "positive_int", "seed_range", "with_progress", "workers_for"]


def map_unordered(function: Callable, jobs: list, workers: int) -> Iterator:
    """``function`` over ``jobs``, in spawned worker processes when ``workers`` > 1; yields as they finish."""
    if workers <= 1:
        yield from map(function, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(function, jobs)


def workers_for(jobs: int, requested: int | None) -> int:
    """How many workers to use: as requested, else one per core, never more than jobs."""
    return max(1, min(requested or os.cpu_count() or 1, jobs))


def with_progress(console: Console, label: str, function: Callable, jobs: list, workers: int,
                  on_result: Callable | None = None) -> list:
    """Run the jobs with a progress bar; returns the results in completion order."""
    results = []
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=len(jobs))
        for result in map_unordered(function, jobs, workers):
            results.append(result)
            if on_result is not None:
                on_result(progress, task, results)
            progress.update(task, advance=1)
    return results


def seed_range(text: str) -> range:
    """An argparse type: ``A-B`` (inclusive, A <= B) as a range."""
    first, sep, last = text.partition("-")
    try:
        low, high = int(first), int(last)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a seed range A-B such as 1-20, got {text!r}") from None
    if not sep or low > high or low < 0:
        raise argparse.ArgumentTypeError(f"expected a seed range A-B with 0 <= A <= B, got {text!r}")
    return range(low, high + 1)


def positive_int(text: str) -> int:
    """An argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def seeds_of(values: Iterable[range]) -> list[int]:
    return sorted({seed for r in values for seed in r})
