"""Every stated guarantee of the protocol library, against an outside tester's fault schedules.

The schedules come from ``tests.common.outsider``, written without capsim's
own nemeses: partitions of every shape and one-way cuts, flapping
partitions, a majority crashed right after the primary acknowledges a
write, pauses longer than a lease, clock jumps on the leader, a partition
during an election, a hostile network, and (sharded-kv) joins and leaves.
The default run covers each configuration with a few schedules; ``-m slow``
runs 500 per CP configuration and 100 for each other protocol: each sloppy
quorum (anti-entropy and hinted handoff together, and each alone), and the
catalogue of ``tests.common.outsider_catalogue`` (the cache under each
policy, the load balancer and the breaker's caller over lin-kv, multi-primary
with LWW, siblings and CRDT counters, the CP service registry, the queue with
and without idempotent producer and sink). A failure
prints the target, the seed and the schedule; ``outsider.run(target, seed)``
replays it.

Dropping a condition a guarantee states breaks it under the same tester:
each such test finds the first seed whose schedule shows it.
"""

import dataclasses

import pytest

from tests.common.faults_nodes import EveryCopyKV
from tests.common.outsider import EPISODES, TARGETS, run
from tests.common.outsider_catalogue import CATALOGUE, QUEUE, EveryCopyCaller, front, multi, registries, run_queue

CP = [
    "lin-kv",
    "sharded-kv",
    "primary-replica-sync",
    "primary-replica-majority",
    "primary-replica-majority-5",
    "primary-replica-sync-5",
    "primary-replica-lease-reads",
    "primary-replica-replica-reads-5",
    "primary-replica-replica-reads-sync",
    "quorum-strict",
    "quorum-strict-n3r1w3",
    "quorum-strict-n3r3w1",
    "quorum-strict-n5r3w3",
    "quorum-strict-vector",
]
AP = [
    "quorum-sloppy",
    "quorum-sloppy-hints",
    "quorum-sloppy-hints-r1w1-5",
    "quorum-sloppy-hints-vector-5",
    "quorum-sloppy-anti-entropy",
    *CATALOGUE,
    *QUEUE,
]
DEFAULT = {**dict.fromkeys(CP, 5), **dict.fromkeys(AP, 2)}  # schedules per configuration in the default run
SLOW = {**dict.fromkeys(CP, 500), **dict.fromkeys(AP, 100)}
CHUNK = 50
ALL = {**TARGETS, **CATALOGUE}


def outcomes(target: str, seeds):
    return (run_queue(target, seed) if target in QUEUE else run(ALL[target], seed) for seed in seeds)


def assert_held(target: str, seeds) -> None:
    broken = [outcome.describe() for outcome in outcomes(target, seeds) if outcome.violations]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("target", sorted(SLOW))
def test_each_guarantee_holds_under_the_outsiders_schedules(target):
    """A few schedules per configuration: linearizable / fresh / convergent / delivered, as each docstring states."""
    assert_held(target, range(DEFAULT[target]))


@pytest.mark.slow
@pytest.mark.parametrize("target,first", [(t, s) for t, n in SLOW.items() for s in range(1000, 1000 + n, CHUNK)])
def test_each_guarantee_holds_under_many_more_schedules(target, first):
    """500 schedules per CP configuration and 100 for each other, 50 per test so workers share them."""
    assert_held(target, range(first, first + min(CHUNK, 1000 + SLOW[target] - first)))


#: Schedules that once broke a guarantee, each replayed by its seed: (target, seed, what it found).
REGRESSIONS = [
    # A duplicated forward of a write reached the key's old owner twice: the first copy applied, the second,
    # arriving once the key was moving, answered 11 (a definite "not done"), and that answer won the race.
    ("sharded-kv", 1270, "not linearizable"),
    ("sharded-kv", 1406, "not linearizable"),
    ("sharded-kv", 1496, "a write answered 11 was read back"),
    # A coordinator crashed before its write settled: it had not yet stored the hint for the owner it missed,
    # so with hinted handoff alone that owner never got the write.
    ("quorum-sloppy-hints", 1037, "replicas differ after the heal"),
    # A replica certified current by a deposed primary, or by a new one whose commit index lagged, served reads
    # older than max_staleness (a review's find; these targets' schedules found it again before the fix).
    ("primary-replica-replica-reads-5", 244, "a read older than max_staleness"),
    ("primary-replica-replica-reads-5", 248, "a read older than max_staleness"),
    ("primary-replica-replica-reads-sync", 68, "a read older than max_staleness"),
    # A non-owner coordinator that stood in for an owner itself counted its own answer as that owner's and dropped
    # the hint its stand-in needed: the owner never got the write (a review's sweep of these two targets).
    *(("quorum-sloppy-hints-r1w1-5", seed, "replicas differ after the heal") for seed in (73, 75, 93)),
    *(("quorum-sloppy-hints-vector-5", seed, "replicas differ after the heal") for seed in (2, 67, 75, 82, 90)),
    # A duplicated write reached the breaker's caller twice: the first copy took effect, the second was refused
    # by the breaker, now open (error 11, definite), and the refusal reached the client first.
    ("caller", 1008, "not linearizable"),
    ("caller", 1018, "not linearizable"),
]


@pytest.mark.parametrize("target,seed,found", REGRESSIONS, ids=[f"{t}-{s}" for t, s, _ in REGRESSIONS])
def test_schedules_that_once_broke_a_guarantee_stay_fixed(target, seed, found):
    """Each violation the outsider found, replayed from its seed, holds now."""
    assert_held(target, [seed])


def first_violation(target, limit: int, start: int = 0):
    """The first run among seeds ``start``.. that breaks ``target``'s guarantee (None within ``limit`` seeds)."""
    return next((o for o in (run(target, seed) for seed in range(start, start + limit)) if o.violations), None)


def variant(name: str, **changes):
    return dataclasses.replace(ALL[name], name=f"{name} (condition dropped)", **changes)


# Where each search starts: the first seed known to show it, so a run costs one schedule (it searches on if the
# kernel's draws ever change).
SLOPPY, ACKS, ASYNC, FENCING, REPAIR, LEASE, EVERY_COPY, CALLER, DEDUP, SET_DEDUP = 4, 3, 20, 14, 2, 288, 11, 36, 11, 20


def test_the_outsider_catches_a_store_that_applies_every_copy_of_a_request():
    """The tester is hostile enough to find the duplicate bug lin-kv had (EveryCopyKV keeps it)."""
    assert first_violation(variant("lin-kv", factory=EveryCopyKV, config={}), 30, start=EVERY_COPY) is not None


def test_the_outsider_catches_a_caller_that_forwards_every_copy_of_a_write():
    """The breaker's caller before it took each write once: a copy refused by the open breaker is told 'not done'."""
    broken = variant(
        "caller",
        build=front(
            EveryCopyCaller, dependency="n0", timeout=0.4, breaker={"failure_threshold": 3, "reset_timeout": 0.2}
        ),
    )
    assert first_violation(broken, 60, start=CALLER) is not None


CONDITIONS = [
    # (the configuration with its condition dropped, the kind of violation that shows it is needed ("": any),
    #  the seed to search from)
    pytest.param(variant("quorum-strict", episodes=EPISODES[:-1]), "stale read", 0, id="quorum: clocks in sync"),
    pytest.param(variant("quorum-strict", config={"n": 3, "r": 1, "w": 1}), "stale read", 0, id="quorum: R + W > N"),
    pytest.param(
        variant("quorum-strict", config={"n": 3, "r": 2, "w": 2, "sloppy": True}),
        "stale read",
        SLOPPY,
        id="quorum: not sloppy",
    ),
    pytest.param(variant("primary-replica-majority", servers=5), "", ACKS, id="primary-replica: acks + 1 >= majority"),
    pytest.param(variant("primary-replica-sync", config={"mode": "async"}), "", ASYNC, id="primary-replica: not async"),
    pytest.param(
        variant("primary-replica-majority", config={"mode": "semi-sync", "acks": 1, "fencing": False}),
        "not linearizable",
        FENCING,
        id="primary-replica: fencing for primary reads",
    ),
    pytest.param(
        variant("quorum-sloppy", config={"n": 3, "r": 2, "w": 2, "sloppy": True, "read_repair": False}),
        "differ",
        REPAIR,
        id="sloppy quorum: anti-entropy or hinted handoff to converge",
    ),
    # Rare under these schedules (one in a few hundred): the primary's clock jumps while it is cut off.
    pytest.param(
        variant("multi-primary-crdt", build=multi("crdt", dedup_window=1)),
        "count",
        DEDUP,
        id="multi-primary: a dedup window longer than a duplicate's delay",
    ),
    pytest.param(  # a late copy of an add, taken again after the remove that followed it: the element is back
        variant("multi-primary-crdt-set", build=multi("crdt", dedup_window=1)),
        "in the set after",
        SET_DEDUP,
        id="multi-primary set: a dedup window longer than a duplicate's delay",
    ),
    pytest.param(variant("registry-cp", build=registries("ap")), "misses", 0, id="registry: cp mode for fresh lookups"),
    pytest.param(variant("registry-cp", episodes=EPISODES[:-1]), "misses", 0, id="registry: clocks in sync"),
    pytest.param(
        variant("primary-replica-majority", config={"mode": "semi-sync", "acks": 1, "lease_reads": True}),
        "not linearizable",
        LEASE,
        id="primary-replica: clocks that never jump, for lease reads",
    ),
]


@pytest.mark.parametrize("target,violation,start", CONDITIONS)
def test_each_stated_condition_is_needed(target, violation, start):
    """With the condition dropped, the outsider's schedules break the guarantee (searching 60 seeds)."""
    broken = first_violation(target, 60, start)
    assert broken is not None, f"no schedule broke {target.name}: is the condition needed?"
    assert any(violation in v for v in broken.violations), broken.describe()
