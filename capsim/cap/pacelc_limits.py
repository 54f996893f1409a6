"""How much memory and time a PACELC sweep needs, estimated before it runs (``capsim.limits`` decides).

Every write-then-read trial writes a fresh key, and the store keeps it on
each replica it reached (with the coordinator's record of the request) for
as long as the simulation lives: a trial costs memory until its simulation
ends, about :data:`TRIAL_KB` + :data:`TRIAL_KB_PER_NODE` x N. The
simulations of one configuration run one after another, and each is let go
before the next, so a run holds at most one of them: ``trials`` x the
number of t values. The WARS model keeps one float a trial.

Figures measured with ``tracemalloc`` after ``gc.collect()`` (quorum stores
of 3, 10 and 30 nodes at 1,000 and 5,000 trials: 1.9, 4.5 and 11.9 kB a
trial in the store, less in the other two runs) and peak RSS (``--trials
200000 --quorums 3/1/1 --t 0``: 471 MB), each rounded up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from capsim import limits

__all__ = ["Plan", "check", "trial_kb"]

#: Memory a trial leaves in its simulation: its two latencies and the writer's and reader's bookkeeping.
TRIAL_KB = 1.5
#: And per node of the store: the key's copy on each replica (the trial's key is fresh, so none is shared).
TRIAL_KB_PER_NODE = 0.4
#: The WARS model by Monte Carlo: a float and its slot, sorted (40 bytes measured at the peak).
MODEL_TRIAL_KB = 0.04
#: Wall ms of one store trial on capsim: a + b N + c N^2 (the failure detectors' pings grow as N^2), fitted
#: to a development machine's (two CPUs, busy): 0.23 ms at N=3, 1.5 at 20, 7.6 at 50, 24 at 100, 54 at 200.
TRIAL_MS = (0.2, 0.04, 0.0015)
#: Wall ms of one WARS model trial: 11 us at N=3, 0.69 ms at N=200.
MODEL_TRIAL_MS_PER_NODE = 0.0035


def trial_kb(nodes: int) -> float:
    """Memory one write-then-read trial keeps until its simulation ends, in kB."""
    return TRIAL_KB + TRIAL_KB_PER_NODE * nodes


def _model(nodes: int) -> limits.MemoryModel:
    """``limits.CAP``'s process, node and pair costs, with a trial for a history operation."""
    return replace(limits.CAP, op_kb=trial_kb(nodes), source="capsim.cap.pacelc_limits")


@dataclass(frozen=True, slots=True)
class Plan:
    """What a sweep will cost: the largest run's memory, every trial's, and the time for all of them."""

    run_mb: float
    trials: int
    seconds: float


def check(
    quorums: tuple,
    replication: tuple,
    points: int,
    trials: int,
    model_trials: int,
    wars_only: bool = False,
    budget_mb: float | None = None,
) -> Plan:
    """Refuse a sweep whose largest run would not fit in memory; its plan otherwise.

    Args:
        quorums: the (N, R, W) swept.
        replication: the primary-replica modes swept (3 nodes each).
        points: t values per configuration.
        trials: write-then-read trials at each t.
        model_trials: Monte Carlo trials of the WARS model per quorum.
        wars_only: ``--wars``, which runs WARS on capsim and nothing else of a quorum.
        budget_mb: memory to plan for (default: what is available now).

    Raises:
        TooBig: one line with the estimate, what is available, and the ``--trials`` (or ``--model-trials``) that fits.
    """
    available = limits.available_mb() if budget_mb is None else budget_mb
    sizes = [n for n, _, _ in quorums] + [3] * len(replication)
    nodes = max(sizes)
    held = trials * points  # the store's (or WARS's) simulation, one at a time
    model_ops = model_trials * MODEL_TRIAL_KB / trial_kb(nodes) if quorums else 0
    try:
        need = limits.check(nodes + 2, held + model_ops, model=_model(nodes), budget_mb=available)
    except limits.TooBig:
        raise limits.TooBig(_refusal(nodes, points, trials, model_trials, model_ops, available)) from None
    runs = [(n, trials_of((n, r, w), points, trials, wars_only)) for n, r, w in quorums]
    runs += [(3, trials_of(None, points, trials)) for _ in replication]
    seconds = sum(count * _trial_ms(n) for n, count in runs) / 1000
    seconds += sum(model_trials * MODEL_TRIAL_MS_PER_NODE * n for n, _, _ in quorums) / 1000
    return Plan(need, sum(count for _, count in runs), seconds)


def trials_of(quorum: tuple | None, points: int, trials: int, wars_only: bool = False) -> int:
    """Write-then-read trials a configuration runs on capsim (``quorum`` None: a primary-replica mode).

    A quorum: exact-W's trials, the store's at each t, and WARS's at each t if partial; ``wars_only``: WARS's.
    """
    if quorum is None or wars_only:
        return points * trials
    n, r, w = quorum
    return trials + points * trials * (2 if r + w <= n else 1)


def _trial_ms(nodes: int) -> float:
    a, b, c = TRIAL_MS
    return a + b * nodes + c * nodes * nodes


def _fits(nodes: int, operations: float, available: float) -> bool:
    try:
        limits.check(nodes + 2, operations, model=_model(nodes), budget_mb=available)
    except limits.TooBig:
        return False
    return True


def _most(limit: int, fits) -> int:
    """The largest count from 0 to ``limit`` for which ``fits(count)`` holds (it holds for fewer if for more)."""
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


def _refusal(nodes: int, points: int, trials: int, model_trials: int, model_ops: float, available: float) -> str:
    """The one-line refusal: the estimate, what is available, and the largest ``--trials`` that fits."""
    need = _model(nodes).estimate_mb(nodes + 2, trials * points + model_ops)
    most = _most(trials, lambda t: _fits(nodes, t * points + model_ops, available))
    if most:
        hint = f"pass --trials {most} or fewer" + (", or fewer --t values" if points > 1 else "")
    elif model_ops and not _fits(nodes, model_ops, available):
        per = MODEL_TRIAL_KB / trial_kb(nodes)
        hint = f"pass --model-trials {_most(model_trials, lambda m: _fits(nodes, m * per, available))} or fewer"
    else:
        hint = "pass smaller --quorums"
    return (
        f"{trials:,} trials at each of {points} t values on a {nodes}-node store, about {trial_kb(nodes):g} kB "
        f"a trial, and {model_trials:,} WARS model trials, {MODEL_TRIAL_KB * 1000:g} bytes each, need about "
        f"{need / 1024:,.1f} GB of memory (capsim.cap.pacelc_limits), and this machine has "
        f"{available / 1024:,.1f} GB available; {hint}"
    )
