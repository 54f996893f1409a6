"""Sweeps on a Dask cluster: ``--cluster ADDRESS`` or ``--cluster local``.

Needs the optional extra ``pip install 'capsim[cluster]'`` (Dask distributed);
capsim itself never imports Dask otherwise. Every Dask worker runs the same
job as a local worker process, so a seed's line (verdict, counts, digest) is
the same wherever it ran.

Seeds go out in chunks (one task per chunk, a few tasks per worker, so
100,000 seeds are a few thousand tasks) and lines come back as chunks finish.
A chunk whose worker died (Dask gives up on a task after its workers died
``distributed.scheduler.allowed-failures`` times: ``KilledWorker``) is split
and its seeds sent again one by one, and a seed alone whose workers died is
sent once more (Dask gives up on a task that was only waiting on a worker
another seed killed), so only the seed that kills its worker is reported as
crashed, with its replay command.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import threading
from collections.abc import Iterator

from capsim.parallel import SeedJob

__all__ = ["ClusterError", "require_dask", "run_on_dask"]


class ClusterError(RuntimeError):
    """Dask is not installed, or its scheduler cannot be reached."""


def _run_chunk(job: SeedJob, seeds: list[int]) -> list[dict]:
    """A Dask task: the lines of a chunk of seeds, run one after another on one worker."""
    return [job.run_here(seed) for seed in seeds]


def require_dask() -> None:
    """Refuse before a sweep starts (and draws its progress bar) when Dask is not installed.

    Raises:
        ClusterError: ``distributed`` cannot be imported.
    """
    if importlib.util.find_spec("distributed") is None:
        raise ClusterError(_NO_DASK)


_NO_DASK = "--cluster needs Dask distributed: pip install 'capsim[cluster]'"


def _connect(address: str, workers: int, timeout: float):
    try:
        from distributed import Client, LocalCluster  # type: ignore[import-not-found]  # the optional capsim[cluster] extra
    except ImportError:
        raise ClusterError(_NO_DASK) from None
    if address == "local":
        # The workers are processes in the terminal's process group: Ctrl-C reached each, and each printed its
        # traceback. Started with SIGINT ignored (which a new process keeps), they leave it to this one, which
        # closes the cluster and so ends them.
        ignored = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignored else None
        try:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
        finally:
            if ignored:
                signal.signal(signal.SIGINT, previous)
        return Client(cluster), cluster
    try:
        return Client(address, timeout=f"{timeout}s"), None
    except (OSError, TimeoutError, ValueError) as exc:  # ValueError: an address Dask cannot parse
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address}: {exc}; start one with "
            "'dask scheduler' (and workers with 'dask worker ADDRESS'), or use --cluster local"
        ) from None


def run_on_dask(
    job: SeedJob, seeds: list[int], address: str, workers: int = 1, connect_timeout: float = 10.0
) -> Iterator[dict]:
    """The sweep's lines, run on the Dask cluster at ``address`` (``"local"``: a LocalCluster of ``workers``).

    Raises:
        ClusterError: Dask is not installed or the scheduler does not answer.
    """
    client, cluster = _connect(address, max(1, workers), connect_timeout)  # first: says so if Dask is missing
    from distributed import KilledWorker, as_completed

    pending: dict = {}
    retried: set[int] = set()
    try:
        size = max(1, min(64, len(seeds) // (8 * max(1, len(client.scheduler_info()["workers"])))))
        for i in range(0, len(seeds), size):
            chunk = seeds[i : i + size]
            pending[client.submit(_run_chunk, job, chunk, pure=False)] = chunk
        finished = as_completed(list(pending))
        for future in finished:
            chunk = pending.pop(future)
            try:
                lines = future.result()
            except KilledWorker as exc:
                # Dask also gives up on a task that was only queued on the workers another seed killed: a seed
                # alone is sent once more before it is called crashed, and a chunk is split into its seeds.
                if len(chunk) > 1 or chunk[0] not in retried:
                    retried.update(chunk if len(chunk) == 1 else ())
                    for seed in chunk:
                        again = client.submit(_run_chunk, job, [seed], pure=False)
                        pending[again] = [seed]
                        finished.add(again)
                    continue
                lines = [job.failed_line(chunk[0], "crashed", f"every Dask worker that ran it died ({exc})")]
            except Exception as exc:
                lines = [
                    job.failed_line(seed, "error", f"the Dask task failed: {type(exc).__name__}: {exc}")
                    for seed in chunk
                ]
            yield from lines
    finally:
        for future in pending:
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()
