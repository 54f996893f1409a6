"""WARS, the model behind PBS, computed and reproduced on capsim's quorum store.

Bailis et al., "Probabilistically Bounded Staleness for Practical Partial
Quorums" (VLDB 2012), model a Dynamo-style quorum store with four latency
legs per replica, each drawn independently from its own distribution
(:class:`capsim.cap.legs.Legs`; one distribution for all four by default):

- **W**: the write travels from the coordinator to a replica;
- **A**: the replica's acknowledgement travels back;
- **R**: a read request travels from the coordinator to a replica;
- **S**: the replica's answer travels back.

The coordinator is not a replica. It sends a write to all N replicas and
*commits* at the W-th acknowledgement. A read starts ``t`` after the commit,
goes to all N replicas, and returns the freshest of the first R answers.
There is no read repair and no anti-entropy. The read is stale when none of
its first R answers comes from a replica that already had the write, that is
when ``commit + t + R_i < W_i`` for each of them.

Two implementations, which the tests hold against a third, independent one:

- :func:`model` computes it by Monte Carlo. Each trial yields the ``t`` its
  read needs to be fresh, so one pass gives the whole curve, P(stale | t),
  whose complement is the paper's *t-visibility* (P(consistent) t after
  the commit), and the t at which t-visibility reaches 99.9%.
- :func:`measure` runs it on capsim: ``QuorumKV`` replicas, ``QuorumKV``'s
  own coordinator on a node that holds no copy (a ``QuorumKV`` outside its
  ``replicas``, which coordinates every request itself), links
  without FIFO (``fifo=False``: every leg its own draw), and clients at zero
  latency from the coordinator, so a read the client sends ``t`` after the
  acknowledgement reaches the coordinator ``t`` after the commit. A link
  direction carries one latency, so it takes legs with W like R and A like S
  only (``NOT_RUNNABLE``).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import emulator as em
from capsim.cap.legs import Legs
from nodes.quorum import QuorumKV

__all__ = [
    "Model",
    "Point",
    "measure",
    "model",
    "parse_quorums",
    "parse_times",
    "quantile_ranks",
    "visibility",
    "z_score",
]

#: Why capsim cannot run some legs: the network sets a latency per link direction, not per message type.
NOT_RUNNABLE = (
    "capsim runs WARS with one latency per link direction: W and R both travel coordinator->replica, A and S "
    "replica->coordinator, so it needs w like r and a like s; the model alone takes any four legs"
)

#: Seconds a leg may take before the coordinator gives up on it: never, in practice.
PATIENCE = 1e6
#: The t-visibility whose t the figure gives: the share of reads that must be fresh (the paper's 99.9%).
VISIBILITY = 0.999
#: The confidence of the interval printed beside that t.
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Point:
    """P(stale) measured at one (N, R, W, t): ``stale`` of ``trials`` reads, and its standard error."""

    n: int
    r: int
    w: int
    t_ms: float
    stale: int
    trials: int

    @property
    def p_stale(self) -> float:
        return self.stale / self.trials

    @property
    def se(self) -> float:
        """The binomial standard error, sqrt(p (1 - p) / trials)."""
        p = self.p_stale
        return math.sqrt(p * (1 - p) / self.trials)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "r": self.r,
            "w": self.w,
            "t_ms": self.t_ms,
            "p_stale": self.p_stale,
            "se": self.se,
            "trials": self.trials,
        }


@dataclass(frozen=True)
class Model:
    """The WARS model of one (N, R, W) by Monte Carlo: each trial's t needed for a fresh read, sorted."""

    n: int
    r: int
    w: int
    needed: tuple[float, ...]

    def point(self, t: float) -> Point:
        """P(stale) at ``t`` seconds after the commit: the share of trials that needed more than ``t``."""
        stale = len(self.needed) - bisect.bisect_right(self.needed, t)
        return Point(self.n, self.r, self.w, 1000 * t, stale, len(self.needed))

    def t_visibility(self, fresh: float = VISIBILITY) -> float:
        """Seconds after the commit until P(consistent) reaches ``fresh`` (nearest rank; 0 when it starts there)."""
        rank = max(0, math.ceil(fresh * len(self.needed)) - 1)
        return max(0.0, self.needed[rank])

    def t_visibility_interval(self, fresh: float = VISIBILITY, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """A distribution-free ``confidence`` interval for the true t of :meth:`t_visibility`, in seconds.

        Two order statistics of the trials, chosen by :func:`quantile_ranks`; the upper end is ``math.inf``
        when the trials are too few to bound it.
        """
        low, high = quantile_ranks(len(self.needed), fresh, confidence)
        lower = max(0.0, self.needed[low - 1]) if low >= 1 else 0.0
        upper = max(0.0, self.needed[high - 1]) if high <= len(self.needed) else math.inf
        return lower, upper


def visibility(computed: Model) -> dict:
    """The t at which ``computed``'s t-visibility reaches ``VISIBILITY``, in ms, and its ``CONFIDENCE`` interval.

    ``visible_999_high_ms`` is None when the trials are too few to bound the t above.
    """
    low, high = computed.t_visibility_interval()
    return {
        "visible_999_ms": 1000 * computed.t_visibility(),
        "visible_999_low_ms": 1000 * low,
        "visible_999_high_ms": None if math.isinf(high) else 1000 * high,
    }


def _binomial_cdf(n: int, p: float) -> Callable[[int], float]:
    """P(Binomial(n, p) <= k) as a function of k, summed in log space over the only terms that matter."""
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    first, last = max(0, math.floor(mean - 40 * sd - 50)), min(n, math.ceil(mean + 40 * sd + 50))
    log_p, log_q = math.log(p) if p > 0 else -math.inf, math.log1p(-p) if p < 1 else -math.inf
    head = math.lgamma(n + 1)
    cumulative, total = [], 0.0
    for k in range(first, last + 1):
        total += math.exp(head - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)
        cumulative.append(total)

    def cdf(k: int) -> float:
        if k < first:
            return 0.0
        return 1.0 if k >= last else min(1.0, cumulative[k - first])

    return cdf


def quantile_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int]:
    """Ranks (1-based) of the order statistics that bracket the ``q`` quantile with at least ``confidence``.

    Distribution-free, for any continuous distribution: the number B of the ``n`` trials at or below the
    true quantile is Binomial(n, q), and X(low) <= quantile < X(high) exactly when low <= B < high. ``low``
    is the largest rank with P(B < low) <= (1 - confidence) / 2 (0: no lower bound but 0), ``high`` the
    smallest with P(B >= high) <= (1 - confidence) / 2 (n + 1: no upper bound).
    """
    if not (0 < q < 1 and 0 < confidence < 1 and n >= 1):
        raise em.ConfigError(
            f"a quantile interval needs 0 < q < 1, 0 < confidence < 1 and n >= 1; got {q}, {confidence}, {n}"
        )
    cdf, tail = _binomial_cdf(n, q), (1 - confidence) / 2
    # Start each search where the sum begins to matter (40 sd out), not at 0 and n + 1.
    sd = math.sqrt(n * q * (1 - q))
    low = max(0, math.floor(n * q - 40 * sd - 50))
    while low < n and cdf(low) <= tail:  # P(B < low + 1) = cdf(low)
        low += 1
    high = min(n + 1, math.ceil(n * q + 40 * sd + 52))
    while high > 1 and 1 - cdf(high - 2) <= tail:  # P(B >= high - 1) = 1 - cdf(high - 2)
        high -= 1
    return low, high


Z_DEFINITION = (
    "capsim's P(stale) minus the model's, over the standard error of that difference if the model "
    "is right: sqrt(q (1 - q) / trials + the model's se^2), q the model's P(stale)"
)


def z_score(measured: Point, expected: Point) -> float:
    """How many standard errors ``measured`` lies from ``expected`` (see ``Z_DEFINITION``); 0 when both are exact."""
    q = expected.p_stale
    spread = math.sqrt(q * (1 - q) / measured.trials + expected.se**2)
    if spread == 0:
        return 0.0 if measured.p_stale == q else math.inf
    return (measured.p_stale - q) / spread


def _needed(rng: random.Random, legs: Legs, n: int, r: int, w: int) -> float:
    """One WARS trial: the least t after the commit at which the read is fresh (<= 0: fresh at once)."""
    writes = [legs.w.sample(rng) for _ in range(n)]
    commit = sorted(arrive + legs.a.sample(rng) for arrive in writes)[w - 1]
    asks = [legs.r.sample(rng) for _ in range(n)]
    answered = sorted(range(n), key=lambda i: asks[i] + legs.s.sample(rng))
    # Stale while commit + t + asks[i] < writes[i] for each of the first R to answer.
    return min(writes[i] - commit - asks[i] for i in answered[:r])


#: Model trials between two calls of ``model``'s progress.
MODEL_CHUNK = 1000


def model(
    n: int,
    r: int,
    w: int,
    leg: em.Distribution | Legs,
    trials: int = 100_000,
    seed: int = 1,
    progress: Callable[..., None] | None = None,
) -> Model:
    """The WARS model of (N, R, W) with every leg drawn from ``leg`` (or each from its own, given ``Legs``).

    ``progress`` is called as ``progress(count, model=True)`` after each ``MODEL_CHUNK`` trials and the last few
    (to show how far a long run is; it changes nothing).
    """
    _check_quorum(n, r, w)
    rng = random.Random(f"wars:{seed}:{n}/{r}/{w}")
    legs = leg if isinstance(leg, Legs) else Legs.same(leg)
    needed: list[float] = []
    for start in range(0, trials, MODEL_CHUNK):
        count = min(MODEL_CHUNK, trials - start)
        needed.extend(_needed(rng, legs, n, r, w) for _ in range(count))
        if progress is not None:
            progress(count, model=True)
    return Model(n, r, w, tuple(sorted(needed)))


def cluster(n: int, r: int, w: int, leg: em.Distribution | Legs, seed: int) -> em.Simulation:
    """N ``QuorumKV`` replicas, a coordinator, and two clients next to it (zero latency).

    The coordinator is a ``QuorumKV`` outside ``replicas``: it holds no copy and coordinates every
    request itself, sending each write and read to all N replicas (``write_fanout="all"``) and
    answering after W or R replies, as WARS's coordinator does. With ``Legs``, coordinator->replica
    links take W (and so R) and replica->coordinator links take A (and so S).

    Raises:
        ConfigError: legs with W unlike R or A unlike S, which a link direction cannot carry.
    """
    _check_quorum(n, r, w)
    legs = leg if isinstance(leg, Legs) else Legs.same(leg)
    if not legs.runnable:
        raise em.ConfigError(NOT_RUNNABLE)
    sim = em.Simulation(seed=seed, latency=legs.w, fifo=False)
    settings = {"n": n, "r": r, "w": w, "read_repair": False, "rpc_timeout": PATIENCE}
    for i in range(n):
        sim.add_node(f"n{i}", QuorumKV, **settings)
    sim.add_node("coordinator", QuorumKV, **settings, replicas=[f"n{i}" for i in range(n)])
    if str(legs.a) != str(legs.w):  # only then: one distribution everywhere keeps the links' defaults
        for i in range(n):
            sim.network.set_link_oneway(f"n{i}", "coordinator", latency=legs.a)
    for client in ("writer", "reader"):
        sim.add_client(client)
        sim.network.set_link(client, "coordinator", latency=em.Constant(0.0))
    return sim


async def _trial(writer: em.Node, reader: em.Node, key: str, wait: float) -> bool:
    """Write ``key``, wait ``wait`` after the acknowledgement (the commit), read it: True when stale."""
    await writer.rpc("coordinator", {"type": "write", "key": key, "value": key}, timeout=None)
    if wait:
        await asyncio.sleep(wait)
    try:
        reply = await reader.rpc("coordinator", {"type": "read", "key": key}, timeout=None)
    except em.RPCError as exc:
        if exc.code == 20:  # key does not exist: none of the first R had the write
            return True
        raise
    return reply["value"] != key


async def _points(
    sim: em.Simulation, n: int, r: int, w: int, times: list[float], trials: int, progress: Callable[[int], None] | None
) -> list[Point]:
    writer, reader = sim.node("writer"), sim.node("reader")
    assert isinstance(writer, em.Node) and isinstance(reader, em.Node), "added as nodes just now, and never crashed"
    points = []
    for t in times:
        stale = 0
        for i in range(trials):  # one at a time: trials never share a moment, let alone a key
            stale += await _trial(writer, reader, f"t{t!r}-{i}", t)
            if progress is not None:
                progress(1)
        points.append(Point(n, r, w, 1000 * t, stale, trials))
    return points


def measure(
    n: int,
    r: int,
    w: int,
    times: list[float],
    leg: em.Distribution | Legs,
    trials: int = 2000,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Point]:
    """P(stale) at each ``t`` (seconds after the commit), measured on capsim's store in the WARS setup.

    ``progress`` is called with 1 as each trial ends (to show how far a long run is; it changes nothing).

    Raises:
        ConfigError: not 1 <= R, W <= N, or legs capsim cannot run (see ``NOT_RUNNABLE``).
    """
    sim = cluster(n, r, w, leg, seed)
    return sim.run(_points(sim, n, r, w, list(times), trials, progress))


def _check_quorum(n: int, r: int, w: int) -> None:
    if not (isinstance(n, int) and isinstance(r, int) and isinstance(w, int) and 1 <= r <= n and 1 <= w <= n):
        raise em.ConfigError(f"a quorum needs 1 <= R <= N and 1 <= W <= N, got N={n} R={r} W={w}")


def parse_quorums(text: str) -> list[tuple[int, int, int]]:
    """``"3/1/1,5/2/2"`` -> [(3, 1, 1), (5, 2, 2)], each checked.

    Raises:
        ConfigError: a part that is not N/R/W with 1 <= R, W <= N.
    """
    out = []
    for part in text.split(","):
        try:
            n, r, w = (int(x) for x in part.strip().split("/"))
        except ValueError:
            raise em.ConfigError(f"--quorums: {part.strip()!r} is not N/R/W (for example 3/1/2)") from None
        try:
            _check_quorum(n, r, w)
        except em.ConfigError as exc:
            raise em.ConfigError(f"--quorums: {exc}") from None
        out.append((n, r, w))
    return out


def parse_times(text: str) -> list[float]:
    """``"0,1ms,5ms"`` -> [0.0, 0.001, 0.005] seconds (a bare 0 needs no unit).

    Raises:
        ConfigError: a part that is not a duration with a unit, or a negative one.
    """
    out = []
    for part in text.split(","):
        part = part.strip()
        if part.startswith("-"):
            raise em.ConfigError(f"--t: t must be 0 or more (a time after the write), got {part!r}")
        if part in ("0", "0.0"):
            out.append(0.0)
            continue
        try:
            out.append(em.Constant(em.parse_distribution(f"constant:{part}").mean).value)
        except em.ConfigError:
            raise em.ConfigError(f"--t: {part!r} is not a duration such as 0, 500us, 5ms or 0.1s") from None
    return out
