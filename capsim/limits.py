"""How big a run this machine can hold, estimated before it starts.

A run's memory grows with its nodes, the pairs of nodes that talk (each
directed link has its own random stream and the protocols keep state per
peer: quadratic in an all-to-all cluster), and the operations its history
records (linear in duration x rate). ``MemoryModel`` holds those costs as
``scripts/bench.py`` measures them ("memory model" in its output), and
``check`` refuses, before anything runs, a run whose estimate exceeds the
memory available (``MemAvailable``, or a container's cgroup limit if lower),
naming the largest size that fits. ``workers_that_fit`` lowers a sweep's
worker count when several runs at once would not fit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CAP",
    "NODE_PROCESS_MB",
    "SEED_LINE_KB",
    "MemoryModel",
    "TooBig",
    "available_mb",
    "check",
    "check_processes",
    "workers_that_fit",
]


class TooBig(ValueError):
    """A run would need more memory than the machine has; the message says what fits."""


@dataclass(frozen=True)
class MemoryModel:
    """Peak memory of one run: ``base + nodes * node + nodes**2 * pair + operations * op``.

    Attributes:
        base_mb: a process that has imported capsim and run a tiny cluster.
        node_mb: per server node (and its client).
        pair_kb: per ordered pair of nodes (a link, its random stream, per-peer protocol state).
        op_kb: per history operation (an invoke or a completion; a client op is two).
        source: where the figures come from.
    """

    base_mb: float
    node_mb: float
    pair_kb: float
    op_kb: float
    source: str

    def estimate_mb(self, nodes: int, operations: float) -> float:
        return (
            self.base_mb + nodes * self.node_mb + nodes * nodes * self.pair_kb / 1024 + operations * self.op_kb / 1024
        )

    def max_nodes(self, budget_mb: float, operations: float) -> int:
        """The most nodes whose estimate stays within ``budget_mb`` (0 if none)."""
        low, high = 0, 1
        while self.estimate_mb(high, operations) <= budget_mb and high < 10**9:
            high *= 2
        while low < high - 1:
            mid = (low + high) // 2
            low, high = (mid, high) if self.estimate_mb(mid, operations) <= budget_mb else (low, mid)
        return low

    def max_operations(self, budget_mb: float, nodes: int) -> float:
        return max(0.0, (budget_mb - self.estimate_mb(nodes, 0)) * 1024 / self.op_kb)


#: ``capsim cap`` (its default configurations: cp, ap, async) and ``capsim chaos``
#: scenarios, measured by ``python scripts/bench.py`` ("memory model"): peaks of
#: runs at 25, 50 and 100 nodes and at 4 and 40 virtual seconds, fitted. With three
#: sizes the node and pair terms trade off from run to run (fits on the development
#: machines: 36.5 MB, 0 MB, 9.40 kB, 1.82 kB; 30.9 MB, 0.082 MB, 7.35 kB, 1.87 kB,
#: both within 1 MB of the measured 111 MB at 100 nodes; 35.2 MB, 0 MB, 7.60 kB,
#: 1.86 kB; and, on a VM with an 8 MB L3, 19.2 MB, 0.686 MB, 1.22 kB, 1.77 kB); each
#: figure here is at or above every fit's, and the pair cost the largest, the one
#: that decides a large cluster.
CAP = MemoryModel(
    base_mb=36.5, node_mb=0.7, pair_kb=9.5, op_kb=2.2, source="scripts/bench.py, the memory model of capsim cap runs"
)

#: The resident memory of one ``capsim serve`` node process just started (a lin-kv node: 39 MB
#: measured with /proc/PID/status); ``capsim cluster up`` starts one per node.
NODE_PROCESS_MB = 40.0

#: What a sweep keeps in memory per seed (its line, for the final table).
SEED_LINE_KB = 1.0

_SAFETY = 0.8  # plan for 80% of what is available: the estimate is a fit, and the machine has other work


def available_mb() -> float:
    """Memory this process may still use: MemAvailable, capped by a cgroup limit (containers)."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) / 1024
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (ValueError, OSError):
            available = float("inf")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, (int(limit) - used) / 2**20)
    except (OSError, ValueError):
        pass
    return available


def check(
    nodes: int,
    operations: float,
    *,
    seeds: int = 0,
    model: MemoryModel = CAP,
    budget_mb: float | None = None,
    duration_flag: str = "--duration",
) -> float:
    """Refuse a run that will not fit; return its estimate in MB.

    Args:
        nodes: server nodes of one run.
        operations: history operations one run records (about 2 x rate x duration).
        seeds: seeds a sweep keeps lines for (0 for one run).
        model: how memory grows with nodes and operations.
        budget_mb: memory to plan for (default: what is available now).
        duration_flag: the option the message names for making a run shorter.

    Raises:
        TooBig: with the estimate, the figures it came from and the largest size that fits.
    """
    available = available_mb() if budget_mb is None else budget_mb
    budget = available * _SAFETY
    need = model.estimate_mb(nodes, operations)
    how = (
        f"about {model.node_mb:g} MB per node, {model.pair_kb:g} kB per pair of nodes and "
        f"{model.op_kb:g} kB per history operation, measured by {model.source}"
    )
    if need > budget:
        fits = model.max_nodes(budget, operations)
        if fits >= nodes // 2 or model.estimate_mb(nodes, 0) > budget:
            hint = f"at most {fits} nodes fit with this workload" if fits else "not even a small cluster fits"
        else:
            hint = (
                f"about {model.max_operations(budget, nodes):,.0f} history operations fit with {nodes} nodes: "
                f"lower {duration_flag} or the rate"
            )
        raise TooBig(
            f"{nodes} nodes recording {_about(operations)} operations need {_about_size(need)} "
            f"of memory ({how}), and this machine has {_size(available)} available; "
            f"{hint}"
        )
    lines = seeds * SEED_LINE_KB / 1024
    if lines > budget - need:
        raise TooBig(
            f"{seeds:,} seeds keep about {_size(lines)} of results in memory, and this "
            f"machine has {_size(available)} available; sweep at most "
            f"{int((budget - need) * 1024 / SEED_LINE_KB):,} seeds at a time (--resume adds more later)"
        )
    return need


def check_processes(nodes: int, budget_mb: float | None = None) -> float:
    """Refuse ``nodes`` node processes (``capsim cluster up``) that would not fit in memory; return the estimate.

    Raises:
        TooBig: with the estimate and how many fit.
    """
    available = available_mb() if budget_mb is None else budget_mb
    need = nodes * NODE_PROCESS_MB
    if need > available * _SAFETY:
        fits = int(available * _SAFETY // NODE_PROCESS_MB)
        raise TooBig(
            f"{nodes} node processes need {_about_size(need)} of memory (about {NODE_PROCESS_MB:g} MB each, "
            f"measured), and this machine has {_size(available)} available; at most {fits} nodes fit"
        )
    return need


def workers_that_fit(workers: int, run_mb: float, budget_mb: float | None = None) -> int:
    """As many of ``workers`` as can each hold a run of ``run_mb`` at once (at least 1)."""
    budget = (available_mb() if budget_mb is None else budget_mb) * _SAFETY
    return max(1, min(workers, int(budget // max(run_mb, 1.0))))


def _about(count: float) -> str:
    """``about 1,234`` for a count a person can read; ``more than 10^15`` beyond (a rate of 1e308, say)."""
    return f"about {count:,.0f}" if count < 1e15 else "more than 10^15"


def _about_size(mb: float) -> str:
    size = _size(mb)
    return size if size.startswith("more") else f"about {size}"


def _size(mb: float) -> str:
    if mb >= 1024 * 1e15:
        return "more than 10^15 GB"
    return f"{mb / 1024:,.1f} GB" if mb >= 1024 else f"{mb:,.0f} MB"
