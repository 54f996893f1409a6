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
    "HISTORY",
    "NODE_PROCESS_MB",
    "SEED_LINE_KB",
    "HistoryModel",
    "MemoryModel",
    "TooBig",
    "available_mb",
    "check",
    "check_history",
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


@dataclass(frozen=True)
class HistoryModel:
    """Peak memory of reading and checking a history file: ``base + lines * line + bytes * per_byte``.

    Attributes:
        base_mb: a process that has imported the checker.
        line_kb: per line of the file (an op: its dict as read, its paired form, its place in the search).
        per_byte: per byte of the file (the text itself, and the strings the ops keep from it).
        source: where the figures come from.
    """

    base_mb: float
    line_kb: float
    per_byte: float
    source: str

    def estimate_mb(self, lines: int, size: int) -> float:
        return self.base_mb + lines * self.line_kb / 1024 + size * self.per_byte / 2**20


#: ``capsim check FILE --steps 1``, its peak resident memory (``/usr/bin/time -f %M``) on capsim JSON Lines
#: histories of 200,000 lines (17 MB: 270 MB), 1,000,000 lines (89 MB: 1,245 MB) and 200,000 lines of 500
#: bytes (100 MB: 430 MB), fitted: 27.1 MB, 1.07 kB a line, 2.03 bytes a byte. Each figure here is at or
#: above the fit's. A check's search adds what its keys' hardness asks (10 MB more for the first file's
#: full check), which no size foretells: this is the least a check needs.
HISTORY = HistoryModel(base_mb=28.0, line_kb=1.1, per_byte=2.1, source="capsim check --steps 1 on JSON Lines histories")

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
    available = min(available, _address_space_left())
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, (int(limit) - used) / 2**20)
    except (OSError, ValueError):
        pass
    return available


def _address_space_left() -> float:
    """MB this process may still map under its address-space limit (``ulimit -v``); inf with none."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return float("inf")
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0.0, (limit - int(line.split()[1]) * 1024) / 2**20)
    except (ImportError, OSError, ValueError):
        pass
    return float("inf")


def check_history(path: str | os.PathLike[str], budget_mb: float | None = None, model: HistoryModel = HISTORY) -> float:
    """Refuse a history file that cannot be read and checked in the memory available; return the estimate in MB.

    The file's lines are counted (a gzip file is not estimated: 0). Raises
    nothing for a file it cannot open: reading it says why.

    Raises:
        TooBig: with the estimate, the figures it came from, and what to do instead.
    """
    lines, size = _lines_of(path)
    if not size:
        return 0.0
    available = available_mb() if budget_mb is None else budget_mb
    need = model.estimate_mb(lines, size)
    if need <= available * _SAFETY:
        return need
    fits = max(0, int((available * _SAFETY - model.base_mb) / (need - model.base_mb) * lines))
    raise TooBig(
        f"its {lines:,} lines ({_size(size / 2**20)}) need {_about_size(need)} of memory to read and check "
        f"(about {model.line_kb:g} kB a line and {model.per_byte:g} bytes a byte of the file, measured by "
        f"{model.source}), and this machine has {_size(available)} available; check a part of it (about "
        f"{fits:,} lines fit: head -n {fits}, or one key's ops), or check it where {_size(need / _SAFETY)} "
        "is available"
    )


def _lines_of(path: str | os.PathLike[str]) -> tuple[int, int]:
    """A file's lines (counted as its line breaks, and a last line without one) and size; (0, 0) for gzip."""
    lines = size = 0
    last = b"\n"
    try:
        with open(path, "rb") as file:
            if file.read(2) == b"\x1f\x8b":
                return 0, 0
            file.seek(0)
            while chunk := file.read(1 << 22):
                lines += chunk.count(b"\n")
                size += len(chunk)
                last = chunk[-1:]
    except OSError:
        return 0, 0
    return lines + (last != b"\n"), size


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
