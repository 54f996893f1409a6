"""The figures of one CAP run, every one from the history by emulator.check.

Each figure's definition for users is written once, in ``FIGURES`` below;
the table's rows, ``capsim cap --help`` and the README print those words.

- ``availability``: per client, the share of its time in which it was
  being answered (``emulator.check.answered_time``): each op it invoked
  holds its time from the invocation to its next one, and that time counts
  as answered when the op was (``ok``, or a definite answer about the data
  such as 22 precondition failed); refusals (11), timeouts (``info``) and
  ops that never completed count against it, on either side of the
  partition. Then the mean over the clients. ``availability_minority`` /
  ``_majority``: exactly the same, over the ops invoked during the partition,
  of the side's clients. The ``_ops`` variants weigh every op the same,
  pooled over the side's clients.
- ``linearizable``: the Wing–Gong–Lowe check (CAS register per key) within a
  step budget, the same on any machine (None: unknown, or no operation succeeded); ``unordered``: how many operations of
  the keys found failing lie outside the longest linearizable prefix the
  search found.
- ``stale_read_fraction``: ok reads that missed a write acknowledged before
  they began, over ok reads.
- ``lost_writes``: acknowledged writes missing from their key's final read.
- ``silently_overwritten``: see :func:`silently_overwritten`.
- ``p50_ms`` / ``p99_ms``: nearest-rank percentiles of the latency of ok
  ops, ``before``, ``during`` and ``after`` the partition (by invocation
  time; after it the clients only read).
- ``convergence_s``: from the heal until every shared key's reads agree for
  good (the settle phase only reads; fresh keys are read once and left out),
  at the resolution of the reads: an upper bound. ``diverged_s``: the
  invocation of the last read after the heal that disagreed, a lower bound
  (None when none did).
"""

from __future__ import annotations

from emulator import check
from emulator.check.ops import Op, by_key, pair_ops

#: Steps the linearizability search of one run may take before its verdict is unknown: a count, not a
#: time, so a seed's verdict is the same on any machine at any load.
CHECK_STEPS = 2_000_000

#: Each figure of the CAP table: (row key, label, definition). The definitions are the docs.
FIGURES = (
    (
        "availability",
        "available, whole run",
        "per client, the share of its time in which it was being answered: each operation it invoked holds "
        "the client's time from its invocation to the client's next invocation (its last operation: to its own "
        "completion, or, never completed, to the end of the run, or of the partition in the rows below), and "
        "that time counts as answered when the operation was answered (ok, or a definite answer "
        "about the data such as 'precondition failed'); a refusal (such as 'temporarily unavailable'), a timeout "
        "and an operation never answered count as not answered, on either side of the partition; then the mean "
        "over the clients. So a client that waits out a 0.5 s timeout loses that half second, not one operation "
        "among the ten a client served every 50 ms makes in it. Gilbert and Lynch's availability (every request "
        "received by a node that has not failed eventually gets a response) is all or nothing; this measures how "
        "far a run falls short of it, and differs in three ways: a share of the time rather than a yes or no, the "
        "client's 0.5 s timeout as the deadline for 'eventually', and a refusal not taken for a response",
    ),
    (
        "availability_minority",
        "available, minority side",
        "the same for the clients on the minority side, per client and then the mean, over the operations they "
        "invoked during the partition (one invoked before the heal and answered after it, within its timeout, "
        "counts as answered; so a partition must last at least the 0.5 s timeout, and a shorter one is refused)",
    ),
    (
        "availability_majority",
        "available, majority side",
        "the same for the clients on the majority side",
    ),
    (
        "linearizable",
        "linearizable",
        "whether the whole history, every operation of the run, has a linearizable order (Wing-Gong-Lowe search, "
        "a CAS register per key; a timed-out operation may or may not have taken effect); NO (k ops): k "
        "operations of the keys found failing lie outside the longest linearizable prefix the search found "
        f"(the search stops at the first key it refutes); unknown: the search did not decide within {CHECK_STEPS:,} "
        "steps (a count, not a time: the same on any machine), or no operation succeeded, so nothing was tested "
        "(Knossos, like capsim check, calls such a history linearizable, vacuously: no operation, nothing to "
        "order; Jepsen's stats checker calls it invalid, since an :f never succeeded); over seeds, how many "
        "passed, and how many were unknown when any were",
    ),
    (
        "stale_read_fraction",
        "stale reads",
        "ok reads that returned a value no longer current: a write of another value was acknowledged before the read "
        "began, and no write of the value read can be ordered after it; over all ok reads (a read answered 'no such "
        "key' counts as an ok read of nothing)",
    ),
    (
        "lost_writes",
        "acknowledged writes lost",
        "acknowledged writes missing from their key's final read (the last read after the heal) that no later or "
        "concurrent write explains, of the acknowledged writes (and cas) checked; a share of the writes go to fresh "
        "keys, never written again, so a lost one cannot hide behind an overwrite; a key no read reached after the "
        "heal cannot be checked, and is named: '(m keys unread)'",
    ),
    (
        "silently_overwritten",
        "silently overwritten",
        "acknowledged writes and cas of the partition, each the last of its side on its key, whose value the key "
        "no longer holds after the heal because a write from the other side won: the store discarded them for a "
        "concurrent write that never saw them (last-writer-wins in ap, the deposed primary's rollback in async); "
        "at most one per key and side, since when a side's last writes ran concurrently only one of them was its "
        "value",
    ),
    (
        "p50_ms",
        "p50 ms before/during/after",
        "median latency (nearest rank) of the ok operations (a read of a missing key included) invoked before, "
        "during and after the partition; "
        "refused, failed and timed-out operations have none, so a side that answers nothing adds nothing; "
        "after the heal the clients only read",
    ),
    ("p99_ms", "p99 ms before/during/after", "99th percentile (nearest rank) of the same"),
    (
        "convergence_s",
        "converged after heal (s)",
        "seconds from the heal until the reads of every shared key return its final value (its last read's) for "
        "good, at the resolution of the reads: after the last read that disagreed and by the first of the "
        "agreeing reads that follow it, shown as 'a-b'; '<=b' when no read after the heal disagreed. The "
        "clients only read after the heal, each from the end of its last operation of the partition; "
        "over seeds, b",
    ),
)


def _mean(shares) -> float | None:
    """The mean of the clients' answered fractions, over those that held any time; None if none did."""
    fractions = [share.fraction for share in shares if share.fraction is not None]
    return sum(fractions) / len(fractions) if fractions else None


def _ms(value):
    return None if value is None else round(1000 * value, 3)


def measure(history, plan, sides: dict) -> tuple[dict, list[float]]:
    """The table row for one run, and the times of its stale reads (for the plot)."""
    partition = (plan.partition_at, plan.heal_at)
    traffic = (0.0, plan.duration)
    overall = check.availability(history, during=traffic)["overall"]
    per_side = check.availability(history, sides=sides, during=partition)
    clients = {server: [server] for server in plan.servers}  # one client per server (bound routing)
    whole = check.answered_time(history, traffic, clients)
    cut = check.answered_time(history, partition, clients)
    verdict = check.linearizable(history, model="cas_register", steps=plan.check_steps)
    stale = check.stale_reads(history)
    lost = check.lost_writes(history)
    phases = {"before": (0.0, plan.partition_at), "during": partition, "after": (plan.heal_at, plan.duration)}
    latency = {name: check.latency(history, during=span)["overall"] for name, span in phases.items()}
    shared = [op for op in history if op.get("process") == "nemesis" or isinstance(op.get("key"), int)]
    settled = [c for c in check.convergence(shared) if c.heal.time >= plan.heal_at - 1e-9]
    diverged = settled[0].last_divergent_at if settled else None
    row = {
        "availability": _mean(whole.values()),
        "availability_minority": _mean(cut[name] for name in clients if name in sides["minority"]),
        "availability_majority": _mean(cut[name] for name in clients if name in sides["majority"]),
        # No operation succeeded: every order of nothing is linearizable, which says nothing of the store.
        "linearizable": verdict.valid if any(op.get("type") == "ok" for op in history) else None,
        "unordered": sum(len(p.prepared) - len(p.order) for p in verdict.failures),
        "stale_read_fraction": stale.fraction,
        "lost_writes": len(lost.lost),
        "acknowledged_writes": lost.acknowledged,
        "unread_keys": len(lost.unchecked),
        "silently_overwritten": len(silently_overwritten(history, sides, partition)),
        "p50_ms": {name: _ms(p.p50) for name, p in latency.items()},
        "p99_ms": {name: _ms(p.p99) for name, p in latency.items()},
        "convergence_s": settled[0].time if settled else None,
        "diverged_s": None if diverged is None else diverged - settled[0].heal.time,
        "ops": overall.total,
        "availability_ops": overall.fraction,
        "availability_minority_ops": per_side["sides"]["minority"].fraction,
        "availability_majority_ops": per_side["sides"]["majority"].fraction,
    }
    return row, [s.read.call_time for s in stale.stale]


def _written(op):
    """The value a write or cas op put, or None for other ops."""
    if op.f == "write":
        return op.value
    if op.f == "cas" and isinstance(op.value, (list, tuple)) and len(op.value) == 2:
        return op.value[1]
    return None


def silently_overwritten(history, sides: dict, partition: tuple[float, float]) -> list:
    """Acknowledged writes that last-writer-wins discarded for a concurrent write from the other side.

    For each key: the value it holds after the heal is its last ok read. When a
    write (or cas) of one side, invoked during the partition, put that value,
    the *other* side's last write of the key was discarded: nothing on its side
    superseded it, and the winner could not have seen it. Writes overwritten
    by a later write of their own side are ordinary overwrites, not counted.
    The side's last writes are those invoked during the partition, not
    definitely failed, and not followed on their side by another attempt to
    write the key (one invoked after they returned). When one of them was
    acknowledged and put another value, one write is counted for the side: its
    last writes are concurrent with each other, so at most one of them was
    the side's value, and which one has no real-time answer (the others were
    overwritten by their own side). So a key counts at most once per losing
    side: the most acknowledged writes any order of the side's writes
    consistent with real time could have discarded, taking every write not
    known to have failed (``info`` included) as applied.

    Args:
        history: the run's history (client ops and nemesis entries).
        sides: side name -> node names (an op belongs to the side of the node it was sent to).
        partition: (start, end) of the partition, in virtual seconds.

    Returns:
        The discarded ops (``emulator.check.Op``), one per key and losing side:
        of that side's concurrent last acknowledged writes, the first invoked.
    """
    ops, _ = pair_ops(history)
    side_of = {str(node): name for name, nodes in sides.items() for node in nodes}
    start, end = partition
    found: list[Op] = []
    for group in by_key(ops).values():
        reads = [op for op in group if op.f == "read" and op.status == "ok"]
        if not reads:
            continue
        final = max(reads, key=lambda op: op.call).output
        writes = [
            op
            for op in group
            if op.f in ("write", "cas")
            and op.status != "fail"
            and start <= op.call_time < end
            and side_of.get(str(op.node)) is not None
        ]
        winner = next((op for op in writes if _written(op) == final), None)
        if winner is None:
            continue  # the key holds a value from before or after the partition
        won = side_of[str(winner.node)]
        last: dict[str, Op] = {}  # losing side -> its first-invoked last acknowledged write
        for op in writes:
            side = side_of[str(op.node)]
            if side == won or side in last or op.status != "ok" or op.ret is None or _written(op) == final:
                continue  # (an ok op always has its ret: the None test is for the type checker)
            if not any(other.call > op.ret and side_of[str(other.node)] == side for other in writes):
                last[side] = op
        found.extend(last.values())
    return found
