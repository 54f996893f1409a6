"""Failover for a single-primary protocol: epochs, elections, heartbeats, leases.

``ElectedNode`` decides who is primary and whether it may still act; what a
primary does with its log is the subclass's business (``nodes.replication``).

- **Epochs.** The cluster starts in epoch 1 with the smallest node name as
  primary. A replica that hears no heartbeat for ``election_timeout`` (times
  a random factor in [1, 2)) asks for a pre-vote, then campaigns in the next
  epoch. A node votes once per epoch (the vote is durable), only for a
  candidate whose log is at least as up to date as its own (last epoch, then
  last index), so the winner, elected by a majority, holds every entry a
  majority holds, and two primaries of one epoch never exist. The pre-vote
  (granted only by nodes that have not heard from a primary lately) keeps an
  isolated node from inflating epochs and deposing a healthy primary on heal.
- **Fencing** (``fencing=True``). A replica that accepts a heartbeat promises
  to vote for nobody for ``lease`` seconds of its own clock (and for one lease
  after it boots, having forgotten its promises). The primary counts its lease
  from the send time of the latest heartbeat a majority acknowledged, and
  trusts it for ``lease * (1 - max_drift) / (1 + max_drift)`` of its own
  clock. While the lease holds no other primary can exist, so a primary that
  checks its lease cannot act after being deposed.
- **Clock assumption.** Leases are measured with ``self.now()`` and are safe
  only while every clock runs at a rate within ``1 +- max_drift`` and never
  jumps. A forward jump on voters (``sim.skew(name, offset)``) or a backward
  jump on the primary breaks them: two primaries overlap. Epochs and votes
  never depend on clocks.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from emulator import ConfigError, Node, RPCError, Timeout
from emulator.validate import is_number, positive_seconds
from nodes.kv import unavailable

if TYPE_CHECKING:
    from nodes.replog import ReplicatedLog

__all__ = ["CANDIDATE", "PRIMARY", "REPLICA", "ElectedNode"]

PRIMARY, CANDIDATE, REPLICA = "primary", "candidate", "replica"

_MIN_SLEEP = 1e-6  # keeps a deadline a hair in the future from spinning at one instant


def positive(name: str, value) -> float:
    """``value`` as a float if it is a positive number, else a ConfigError naming ``name``."""
    return float(positive_seconds(name, value))


class ElectedNode(Node):
    """A node that takes part in electing one primary per epoch.

    Args:
        heartbeat_interval: seconds between a primary's heartbeats.
        election_timeout: a replica campaigns after hearing nothing for this
            long (times a random factor in [1, 2)).
        lease: seconds a heartbeat's acknowledgement fences off other primaries.
        max_drift: the largest clock-rate error assumed, e.g. 0.05 for 5%.
        fencing: use leases (see module doc); without them a primary acts on
            its own belief that it is still primary.
        on_event: optional ``callable(node, what, value)`` told of every
            protocol event; every event also goes to ``Node.event`` (the
            trace and ``sim.events``) and ``self.events``.

    In ``on_start`` a subclass sets ``self.replog`` (a ``nodes.replog.ReplicatedLog``)
    and awaits ``self._start_failover()``. It implements ``_on_elected()``,
    ``_on_deposed(why)`` and ``_wake_replicators()``, and reports each
    acknowledged heartbeat with ``_acked(peer, sent, seq)``.
    """

    replog: ReplicatedLog  # the subclass makes it, over its storage

    def __init__(
        self, heartbeat_interval=0.05, election_timeout=0.3, lease=0.2, max_drift=0.05, fencing=True, on_event=None
    ):
        self.heartbeat_interval = positive("heartbeat_interval", heartbeat_interval)
        self.election_timeout = positive("election_timeout", election_timeout)
        self.lease = positive("lease", lease)
        if self.heartbeat_interval >= self.election_timeout:
            raise ConfigError(
                f"heartbeat_interval ({heartbeat_interval}) must be shorter than election_timeout "
                f"({election_timeout}), or replicas will campaign against a healthy primary"
            )
        if fencing and self.heartbeat_interval >= self.lease:
            raise ConfigError(
                f"heartbeat_interval ({heartbeat_interval}) must be shorter than the lease ({lease}), "
                "or the primary's lease lapses between heartbeats"
            )
        if not is_number(max_drift, ge=0, lt=1):
            raise ConfigError(f"max_drift must be a clock-rate error in [0, 1), such as 0.05, got {max_drift!r}")
        if not isinstance(fencing, bool):
            raise ConfigError(f"fencing must be True or False, got {fencing!r}")
        if on_event is not None and not callable(on_event):
            raise ConfigError(f"on_event must be callable(node, what, value) or None, got {on_event!r}")
        self.max_drift = float(max_drift)
        self.fencing = fencing
        self.on_event = on_event
        self.events: list[tuple[float, str, object]] = []

    # -- starting ----------------------------------------------------------------------------

    async def _start_failover(self) -> None:
        """Restore or bootstrap the epoch, then start the election timer (``self.replog`` set first)."""
        self.role, self.primary = REPLICA, None
        self.ack_time: dict[str, float] = {}
        self.ack_seq: dict[str, int] = {}
        self.seq = 0
        self._confirms: list[tuple[int, asyncio.Future]] = []
        now = self.now()
        self.heard_until = now
        first = min([self.name, *self.peers])
        fresh = self.replog.epoch == 0
        # A restarted node may have promised its vote away before the crash: honour that blindly.
        self.promise_until = now + self.lease if self.fencing and not fresh else -math.inf
        self._reset_deadline()
        if fresh:
            self.replog.set_epoch(1, vote=first)
            self.primary = first
        self.spawn(self._ticker(), "election-timer")
        if fresh and self.name == first:
            self._elect()

    def _majority(self) -> int:
        return (len(self.peers) + 1) // 2 + 1

    def _reset_deadline(self) -> None:
        self.deadline = self.now() + self.election_timeout * (1.0 + self.rng.random())

    def _event(self, what: str, value=None) -> None:
        self.events.append((self.now(), what, value))
        self.event(what, value)  # into sim.events and the trace
        if self.on_event is not None:
            self.on_event(self.name, what, value)

    # -- elections -----------------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            if self.role != PRIMARY and self.now() >= self.deadline:
                await self._campaign()
                continue
            wait = self.heartbeat_interval if self.role == PRIMARY else self.deadline - self.now()
            await asyncio.sleep(max(min(wait, self.heartbeat_interval), _MIN_SLEEP))

    async def _campaign(self) -> None:
        if self.fencing and self.now() < self.promise_until:
            self.deadline = self.promise_until
            return
        self._reset_deadline()
        if not await self._poll(self.replog.epoch + 1, pre=True) or self.role == PRIMARY:
            return
        epoch = self.replog.epoch + 1
        self.replog.set_epoch(epoch, vote=self.name)
        self.role, self.primary = CANDIDATE, None
        self._event("campaign", epoch)
        if await self._poll(epoch, pre=False) and self.role == CANDIDATE and self.replog.epoch == epoch:
            self._elect()

    async def _poll(self, epoch: int, pre: bool) -> bool:
        """Ask every peer for a (pre-)vote in ``epoch``; True once a majority, self included, said yes."""
        body = {
            "type": "vote",
            "epoch": epoch,
            "pre": pre,
            "last_epoch": self.replog.last_epoch,
            "last_index": self.replog.last_index,
        }
        pending = [self.spawn(self._ask(peer, body), "vote") for peer in self.peers]
        votes = 1
        while pending and votes < self._majority():
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            votes += sum(task.result() for task in pending if task.done())
            pending = [task for task in pending if not task.done()]
        for task in pending:  # in peer order, never set order: cancellations are scheduled events
            task.cancel()
        return votes >= self._majority()

    async def _ask(self, peer: str, body: dict) -> bool:
        try:
            reply = await self.rpc(peer, body, timeout=self.election_timeout / 2)
        except (Timeout, RPCError):
            return False
        if reply.get("epoch", 0) > self.replog.epoch:
            self._step_down(reply["epoch"], f"{peer} is in epoch {reply['epoch']}")
            return False
        return bool(reply.get("granted"))

    async def handle_vote(self, msg):
        """A (pre-)vote request: grant it when safe, else say no and why."""
        body = msg.body
        epoch, candidate = body["epoch"], msg.src
        refusal = self._refusal(body)
        if refusal is None and not body.get("pre"):
            if epoch > self.replog.epoch:
                self._step_down(epoch, f"{candidate} campaigns in epoch {epoch}")
            if self.replog.vote not in (None, candidate):
                refusal = f"voted for {self.replog.vote} in epoch {epoch}"
            else:
                self.replog.cast_vote(candidate)
                self._reset_deadline()
        return {"type": "vote_ok", "epoch": self.replog.epoch, "granted": refusal is None, "why": refusal}

    def _refusal(self, body: dict) -> str | None:
        """Why this node will not vote for the requester (None: it may)."""
        if body["epoch"] < self.replog.epoch or (body.get("pre") and body["epoch"] == self.replog.epoch):
            return f"epoch {body['epoch']} is stale (at {self.replog.epoch})"
        if self.fencing and self._bound_by_promise():
            return "a primary's lease may still hold"
        if not self.replog.at_least_as_new(body["last_epoch"], body["last_index"]):
            return "candidate's log is behind"
        if body.get("pre") and (self.role == PRIMARY or self.now() < self.heard_until):
            return f"the primary {self.primary} is alive"
        return None

    def _bound_by_promise(self) -> bool:
        now = self.now()
        return now < self.promise_until or (self.role == PRIMARY and now < self.lease_start() + self.lease)

    def _elect(self) -> None:
        self.role, self.primary = PRIMARY, self.name
        self.ack_time, self.ack_seq = {}, {}
        self._event("primary", self.replog.epoch)
        self._on_elected()

    # -- following and stepping down ------------------------------------------------------------

    def _follow(self, epoch: int, primary: str) -> None:
        """A heartbeat from the primary of ``epoch`` (not older than ours) arrived."""
        if epoch > self.replog.epoch or self.role != REPLICA:
            self._step_down(epoch, f"{primary} is primary of epoch {epoch}")
        self.primary = primary
        now = self.now()
        self.deadline = now + self.election_timeout * (1.0 + self.rng.random())
        self.heard_until = now + self.election_timeout
        if self.fencing:
            self.promise_until = max(self.promise_until, now + self.lease)

    def _step_down(self, epoch: int, why: str) -> None:
        """Adopt ``epoch`` (if newer) and become a replica; a primary is deposed."""
        if epoch > self.replog.epoch:
            self.replog.set_epoch(epoch)
            self._event("epoch", epoch)
        was_primary = self.role == PRIMARY
        self.role, self.primary = REPLICA, None
        self._reset_deadline()
        if was_primary:
            self._event("deposed", why)
            for _, future in self._confirms:
                if not future.done():
                    future.set_exception(unavailable(f"{self.name} was deposed: {why}"))
            self._confirms = []
            self._on_deposed(why)

    # -- leases and confirmation -----------------------------------------------------------------

    def next_seq(self) -> int:
        """Number the next heartbeat (append) sent; read confirmations wait on these numbers."""
        self.seq += 1
        return self.seq

    def _acked(self, peer: str, sent: float, seq: int) -> None:
        """``peer`` accepted, in this epoch, the append numbered ``seq`` sent at local time ``sent``."""
        self.ack_time[peer] = max(self.ack_time.get(peer, -math.inf), sent)
        self.ack_seq[peer] = max(self.ack_seq.get(peer, 0), seq)
        if self._confirms:
            self._check_confirms()

    def lease_start(self) -> float:
        """Local send time of the latest heartbeat a majority (self included) acknowledged."""
        need = self._majority() - 1
        if need == 0:
            return self.now()
        times = sorted(self.ack_time.values(), reverse=True)
        return times[need - 1] if len(times) >= need else -math.inf

    def lease_valid(self) -> bool:
        """Does this primary hold a lease, under the clock assumption (module doc)?"""
        trusted = self.lease * (1.0 - self.max_drift) / (1.0 + self.max_drift)
        return self.role == PRIMARY and self.now() < self.lease_start() + trusted

    async def confirm(self, timeout: float) -> None:
        """Wait until a majority acknowledges a heartbeat sent after this call (no clocks involved).

        Raises:
            RPCError: 11 when no majority answers in ``timeout`` or the node is deposed.
        """
        future = asyncio.get_running_loop().create_future()
        self._confirms.append((self.seq + 1, future))
        self._check_confirms()
        self._wake_replicators()
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise unavailable(f"{self.name} could not confirm it is primary with a majority") from None

    def _check_confirms(self) -> None:
        waiting = []
        for target, future in self._confirms:
            if future.done():
                continue
            if 1 + sum(seq >= target for seq in self.ack_seq.values()) >= self._majority():
                future.set_result(None)
            else:
                waiting.append((target, future))
        self._confirms = waiting

    # -- hooks ----------------------------------------------------------------------------------------

    def _on_elected(self) -> None:
        raise NotImplementedError

    def _on_deposed(self, why: str) -> None:
        raise NotImplementedError

    def _wake_replicators(self) -> None:
        raise NotImplementedError
