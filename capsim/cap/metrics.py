"""The figures of one CAP run, every one from the history by emulator.check.

- ``availability``: answered / invoked over the traffic (``ok``, or a
  definite answer about the data such as 22 precondition failed);
  ``availability_minority`` / ``_majority``: the same for the clients on each
  side, over the ops invoked during the partition.
- ``linearizable``: the Wing–Gong–Lowe check (CAS register per key) within a
  time budget (None: unknown); ``unordered``: how many operations of the
  failing keys could not be put in any order.
- ``stale_read_fraction``: ok reads that missed a write acknowledged before
  they began, over ok reads.
- ``lost_writes``: acknowledged writes missing from their key's final read.
- ``p50_ms`` / ``p99_ms``: latency of ok ops, ``before``, ``during`` and
  ``after`` the partition (by invocation time).
- ``convergence_s``: from the heal until every shared key's reads agree for
  good (the settle phase only reads; fresh keys are read once and left out).
"""

from __future__ import annotations

from emulator import check


def _ms(value):
    return None if value is None else round(1000 * value, 3)


def measure(history, plan, sides: dict) -> tuple[dict, list[float]]:
    """The table row for one run, and the times of its stale reads (for the plot)."""
    partition = (plan.partition_at, plan.heal_at)
    traffic = (0.0, plan.duration)
    overall = check.availability(history, during=traffic)["overall"]
    per_side = check.availability(history, sides=sides, during=partition)["sides"]
    verdict = check.linearizable(history, model="cas_register", timeout=plan.check_seconds)
    stale = check.stale_reads(history)
    lost = check.lost_writes(history)
    phases = {"before": (0.0, plan.partition_at), "during": partition, "after": (plan.heal_at, plan.duration)}
    latency = {name: check.latency(history, during=span)["overall"] for name, span in phases.items()}
    shared = [op for op in history if op.get("process") == "nemesis" or isinstance(op.get("key"), int)]
    settled = [c for c in check.convergence(shared) if c.heal.time >= plan.heal_at - 1e-9]
    row = {
        "availability": overall.fraction,
        "availability_minority": per_side["minority"].fraction,
        "availability_majority": per_side["majority"].fraction,
        "linearizable": verdict.valid,
        "unordered": sum(len(p.prepared) - len(p.order) for p in verdict.failures),
        "stale_read_fraction": stale.fraction,
        "lost_writes": len(lost.lost),
        "acknowledged_writes": lost.acknowledged,
        "p50_ms": {name: _ms(p.p50) for name, p in latency.items()},
        "p99_ms": {name: _ms(p.p99) for name, p in latency.items()},
        "convergence_s": settled[0].time if settled else None,
        "ops": overall.total,
    }
    return row, [s.read.call_time for s in stale.stale]
