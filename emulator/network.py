"""The simulated network: all link state, and the delivery of every message.

Each directed link ``(src, dst)`` has a latency distribution, a loss, a
duplicate and a reorder probability, FIFO or not, and its own random stream
(``"net:src->dst"``), so traffic on one link never perturbs another's draws.

Ordering. A link is FIFO by default (``fifo=True``): a message never overtakes
one sent before it on the same link, so a latency draw shorter than the
previous message's waits behind it, as on a TCP connection. ``reorder=p``
picks a share ``p`` of the messages, each independently: such a message's
latency is rescaled by a uniform factor in [0, 2) (mean kept), and it is
exempt from FIFO, so it may overtake earlier messages and later ones may
overtake it; the other ``1 - p`` stay in order among themselves.
``fifo=False`` drops the ordering for every message and keeps each latency
draw as it is: independent legs, as in the WARS model of Bailis et al. A
duplicate is a message of its own: it draws its own latency and its own
reorder choice.
Link faults live here too: partitions (symmetric or one-way), isolation, and
holding a link's messages to release them later. A message is checked against
the cuts when it is sent and again when it arrives: a message in flight when
its link is cut is dropped at delivery time. Holding a link or pausing its
receiver keeps the link's order: a message still on its way when a held link
is released waits behind the messages the hold queued (they get a fresh
latency), and one that arrives as a paused node resumes waits behind those
the pause queued. A message carries the
incarnation of its receiver at the time it was sent, so one sent to a node
that is down, or still on its way when the node crashes, is lost even if the
node has restarted by the time it would arrive.

Nodes never see any of this: an endpoint calls ``transmit`` and the network
later calls ``endpoint.deliver``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

from emulator import cuts as rules
from emulator.cuts import probability
from emulator.distributions import Distribution, as_distribution
from emulator.errors import ConfigError
from emulator.loop import VirtualLoop
from emulator.message import Message, copy_body
from emulator.speedups import native
from emulator.validate import unknown_node

if TYPE_CHECKING:
    from emulator.rng import Streams
    from emulator.trace import Trace

__all__ = ["Link", "Network"]

_new = object.__new__


class Endpoint(Protocol):
    """An endpoint as the network sees it: a node's ``emulator.node.Endpoint`` or a host's ``HostEndpoint``."""

    name: str
    #: per-destination state private to the network: the Link to each destination
    routes: dict[str, Any]

    def deliver(self, msg: Message) -> None:
        """Take ``msg`` now (called from a loop callback)."""


class Link:
    """The state of one directed link; its fields are effective values."""

    # CPython lays slots out in name order, and a Link is 192 bytes, three cache lines: the names put what
    # sending a message reads in the first line (the underscored ones) and what delivering it reads in the
    # second (deliver, deliver_kind, deliver_record, fast_path), so each costs one line of a link that is
    # no longer in the caches (tests/emulator/test_network.py checks the layout). Link state that only
    # faults and configuration touch is in the network (held, overrides).
    __slots__ = (
        "_constant_ns",
        "_delay_ns",
        "_endpoint",
        "_last_ns",
        "_plain",
        "_version",
        "cut",
        "deliver",
        "deliver_kind",
        "deliver_record",
        "dst",
        "duplicate",
        "fast_path",
        "fifo",
        "latency",
        "loss",
        "recorders",
        "reorder",
        "rng",
        "src",
    )

    # Set by configure, from the defaults and this link's overrides:
    latency: Distribution
    _constant_ns: int | None  # the latency in ns when it is constant, else None
    _delay_ns: Callable[[], int]
    loss: float
    duplicate: float
    reorder: float
    fifo: bool

    def __init__(self, src: str, dst: str, rng: random.Random):
        self.src = src
        self.dst = dst
        self.rng = rng
        self._last_ns = 0  # delivery time of the latest message, for FIFO
        # Cached from the network's state, valid while version matches it:
        self._version = -1
        self.cut = False  # a partition drops traffic on this link
        self.fast_path = False  # _deliver may hand a message arriving now straight to a live, running receiver
        self._plain = False  # a message sent now is simply scheduled: up, FIFO, no loss, duplicates or reordering
        self._endpoint: Endpoint | None = None  # the receiver's live endpoint
        #: its ``deliver``, bound once per refresh (one lookup fewer per message)
        self.deliver: Callable[[Message], None] | None = None
        self.recorders: dict[str, Callable[[int], None]] = {}  # message type -> the trace's recorder of its deliveries
        #: the message type delivered last and its recorder (a message's type is most often its link's last)
        self.deliver_kind: object = None
        self.deliver_record: Callable[[int], None] | None = None

    def configure(self, defaults: dict[str, Any], overrides: dict[str, Any]) -> None:
        """Recompute the effective settings from the defaults and overrides."""
        settings = {**defaults, **overrides}
        self.latency = settings["latency"]
        # The latency's own sampler, even for a constant: it refuses a latency the clock cannot schedule.
        self._constant_ns = self.latency.ns_sampler(self.rng)() if self.latency.constant else None
        #: one latency draw, in nanoseconds
        self._delay_ns = self._constant if self._constant_ns is not None else self.latency.ns_sampler(self.rng)
        self.loss = settings["loss"]
        self.duplicate = settings["duplicate"]
        self.reorder = settings["reorder"]
        self.fifo = settings["fifo"]
        self._version = -1  # the cached flags (plain) depend on these settings too

    def _constant(self) -> int:
        return self._constant_ns  # type: ignore[return-value]  # set: delay_ns is _constant only then


class Network:
    """Links, cuts and delivery for one simulation.

    Args:
        loop: the simulation's ``VirtualLoop``.
        streams: the simulation's named random streams.
        trace: the simulation's ``Trace``.
        on_fault: called as ``on_fault(f, value)`` for every link fault, so it
            lands in the history and the trace.
        latency: the default latency of every link (a Distribution or seconds).
        loss: the default probability that a message is lost.
        duplicate: the default probability that a message is delivered twice.
        reorder: the default share of messages that may overtake others (see
            the module docstring).
        fifo: whether links keep order by default (see the module docstring).
        trace_bodies: put every delivered body in the trace (slower; catches
            nondeterminism that changes a message but not its type or timing).
    """

    # Slots for what the compiled message path reads and writes (emulator.speedups); the rest is in __dict__.
    __slots__ = ("__dict__", "__weakref__", "_version", "delivered", "sent", "trace_bodies")

    def __init__(
        self,
        loop: VirtualLoop,
        streams: Streams,
        trace: Trace,
        on_fault: Callable[[str, Any], object],
        latency: Distribution | float = 0.001,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: bool | float = False,
        trace_bodies: bool = False,
        fifo: bool = True,
    ) -> None:
        self._loop = loop
        self._streams = streams
        self._trace = trace
        self._on_fault = on_fault
        self._defaults: dict[str, Any] = {}
        self._links: dict[tuple[str, str], Link] = {}
        self._overrides: dict[tuple[str, str], dict[str, Any]] = {}  # (src, dst) -> the settings it overrides
        self._held: dict[tuple[str, str], list[Message]] = {}  # (src, dst) -> messages held (hold/release)
        self._names: dict[str, bool] = {}  # every known node -> is a server
        self._live: dict[str, Endpoint] = {}  # name -> live endpoint (absent while crashed)
        self._paused: dict[str, list[Message]] = {}  # name -> messages held while paused
        # name -> messages a resume let go that are not yet delivered, in order (one _drain pushed for each)
        self._backlog: dict[str, deque[Message]] = {}
        # (src, dst) -> the messages in order behind a release: True once due (see _through_gate)
        self._gates: dict[tuple[str, str], dict[Message, bool]] = {}
        self._rules: dict[int, rules.Cut] = {}  # id -> the cut (emulator.cuts)
        self._version = 0
        self._deliver_cb = self._deliver  # one bound method, not one per message
        self._rule_ids = 0
        #: record each delivered body (its repr, at delivery) in the trace, not only its type
        self.trace_bodies = trace_bodies
        # Bound once: these run for every message.
        self._now = loop.time_ns
        self._push_after = loop.push_after
        self._record = trace.append
        self.sent = self.delivered = self.dropped = self.duplicated = 0
        for name, value in (("latency", latency), ("loss", loss), ("duplicate", duplicate), ("reorder", reorder)):
            if value is None:  # None means "keep" to set_defaults, so it would leave no default at all
                raise ConfigError(f"{name} must be given (a number or a distribution), got None; leave it out")
        self.set_defaults(latency=latency, loss=loss, duplicate=duplicate, reorder=reorder, fifo=fifo)
        if native is not None and isinstance(loop, native.Core):
            # transmit and _deliver's common case compiled; they call the methods below for the rest
            path = native.MessagePath(self, loop, Link, Message, Network.transmit, Network._deliver)
            self.transmit = path.transmit  # type: ignore[method-assign]
            self._deliver_cb = path.deliver

    # -- configuration ------------------------------------------------------------------

    @property
    def defaults(self) -> dict[str, Any]:
        """The settings every link has unless ``set_link`` overrides them."""
        return dict(self._defaults)

    def set_defaults(
        self,
        latency: Distribution | float | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: bool | float | None = None,
        fifo: bool | None = None,
    ) -> None:
        """Change the defaults of every link that does not override them."""
        self._defaults.update(_settings(latency, loss, duplicate, reorder, fifo))
        for key, link in self._links.items():
            link.configure(self._defaults, self._overrides.get(key, {}))

    def set_link(
        self,
        a: str,
        b: str,
        latency: Distribution | float | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: bool | float | None = None,
        fifo: bool | None = None,
    ) -> None:
        """Override the settings of the links a->b and b->a (None keeps a setting)."""
        self.set_link_oneway(a, b, latency, loss, duplicate, reorder, fifo)
        self.set_link_oneway(b, a, latency, loss, duplicate, reorder, fifo)

    def set_link_oneway(
        self,
        src: str,
        dst: str,
        latency: Distribution | float | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: bool | float | None = None,
        fifo: bool | None = None,
    ) -> None:
        """Override the settings of the link src->dst only."""
        link = self.link(src, dst)
        overrides = self._overrides.setdefault((src, dst), {})
        overrides.update(_settings(latency, loss, duplicate, reorder, fifo))
        link.configure(self._defaults, overrides)

    def reset_link(self, a: str, b: str) -> None:
        """Drop the overrides of a->b and b->a: back to the defaults."""
        for src, dst in ((a, b), (b, a)):
            link = self.link(src, dst)
            self._overrides.pop((src, dst), None)
            link.configure(self._defaults, {})

    def overrides(self, src: str, dst: str) -> dict[str, Any]:
        """The settings the link src->dst overrides now (a copy)."""
        self.link(src, dst)  # checks the names
        return dict(self._overrides.get((src, dst), {}))

    def replace_link_oneway(
        self,
        src: str,
        dst: str,
        latency: Distribution | float | None = None,
        loss: float | None = None,
        duplicate: float | None = None,
        reorder: bool | float | None = None,
        fifo: bool | None = None,
    ) -> None:
        """Make the overrides of src->dst exactly the settings given (the others back to the defaults)."""
        settings = _settings(latency, loss, duplicate, reorder, fifo)  # validates: a misuse changes nothing
        link = self.link(src, dst)
        self._overrides[(src, dst)] = settings
        link.configure(self._defaults, settings)

    def link(self, src: str, dst: str) -> Link:
        """The link src->dst (made on first use)."""
        link = self._links.get((src, dst))
        if link is None:
            self._check(src)
            self._check(dst)
            link = Link(src, dst, self._streams(f"net:{src}->{dst}"))
            link.configure(self._defaults, self._overrides.get((src, dst), {}))
            self._links[(src, dst)] = link
        return link

    @property
    def stats(self) -> dict[str, Any]:
        """Counts so far: sent, delivered, dropped, duplicated."""
        return {"sent": self.sent, "delivered": self.delivered, "dropped": self.dropped, "duplicated": self.duplicated}

    # -- membership (called by the simulation) ----------------------------------------------

    def register(self, name: str, server: bool) -> None:
        self._names[name] = server

    def unregister(self, name: str) -> None:
        """Forget ``name``, registered but never attached (its node could not be built)."""
        del self._names[name]

    def attach(self, name: str, endpoint: Endpoint) -> None:
        self._live[name] = endpoint
        self._version += 1

    def detach(self, name: str) -> None:
        self._live.pop(name, None)
        for msg in self._paused.pop(name, ()):
            self._drop(msg.src, msg.dest, msg.body, "down")
        self._version += 1

    def servers(self) -> list[str]:
        return sorted(n for n, server in self._names.items() if server)

    def _check(self, name: object) -> str:
        if not isinstance(name, str) or name not in self._names:
            raise unknown_node(name, self._names, hint="Add it with sim.add_node first")
        return name

    # -- faults ---------------------------------------------------------------------------------

    def partition(self, *groups: Iterable[str]) -> int:
        """Drop all traffic between the groups (nodes in no group keep every link).

        Partitions add up until ``heal()``. Returns the cut's id, for ``heal(id)``.
        """
        cut = rules.partition(groups, self._group, "partition(['n1'], ['n2', 'n3'])")
        return self._add_rule(cut, "partition", [sorted(s) for s in cut.groups])

    def partition_oneway(self, src_group: Iterable[str], dst_group: Iterable[str]) -> int:
        """Drop traffic from ``src_group`` to ``dst_group``; the other way still flows. Returns its id."""
        src, dst = self._group(src_group), self._group(dst_group)
        return self._add_rule(rules.partition_oneway(src, dst), "partition-oneway", [sorted(src), sorted(dst)])

    def isolate(self, name: str) -> int:
        """Cut ``name`` off from every other node, both ways (nodes added later too). Returns its id."""
        return self._add_rule(rules.isolate(self._check(name)), "isolate", name)

    def heal(self, *cuts: int) -> None:
        """Remove the cuts with these ids; with none, every partition and isolation."""
        cuts = tuple(dict.fromkeys(cuts))  # heal(i, i) heals i once
        unknown = [c for c in cuts if c not in self._rules]
        if unknown:
            raise ConfigError(
                f"heal({', '.join(map(repr, unknown))}): no such cut; the active ones are "
                f"{sorted(self._rules) or 'none'} (partition() returns the id)"
            )
        for cut in cuts or list(self._rules):
            del self._rules[cut]
        self._version += 1
        self._on_fault("heal", list(cuts) if cuts else None)

    def hold(self, a: str, b: str) -> None:
        """Queue the messages between a and b (both ways) instead of delivering them."""
        for key in ((a, b), (b, a)):
            self.link(*key)  # checks the names
            self._held.setdefault(key, [])
        self._version += 1
        self._on_fault("hold", [a, b])

    def release(self, a: str, b: str) -> None:
        """Deliver the messages held between a and b, in order, each after a fresh latency.

        On a FIFO link, messages sent before the release that would arrive
        before the released ones wait behind them, as later ones always do.
        """
        for key in ((a, b), (b, a)):
            link = self.link(*key)
            released = {msg: False for msg in self._held.pop(key, []) if self._schedule(link, msg)}
            if released:
                # Those held before were the gate's heads: the rest of an earlier release stays behind them.
                released.update(self._gates.get(key, {}))
                self._gates[key] = released
        self._version += 1
        self._on_fault("release", [a, b])

    def cut(self, src: str, dst: str) -> bool:
        """Whether traffic src->dst is dropped by a partition now."""
        return self._refresh(self.link(src, dst)).cut

    def _group(self, group: object) -> list[str]:
        if isinstance(group, str):
            raise ConfigError(f"a group is a list of node names, got the string {group!r}; write [{group!r}]")
        # Not iterable: iterating raises its own TypeError, as it always has.
        return [self._check(name) for name in cast("Iterable[object]", group)]

    def _add_rule(self, rule: rules.Cut, f: str, value: Any) -> int:
        self._rule_ids += 1
        self._rules[self._rule_ids] = rule
        self._version += 1
        self._on_fault(f, value)
        return self._rule_ids

    def _refresh(self, link: Link) -> Link:
        link._version = self._version
        link.cut = any(rule.blocks(link.src, link.dst) for rule in self._rules.values())
        link._endpoint = endpoint = self._live.get(link.dst)
        link.deliver = None if endpoint is None else endpoint.deliver
        link.fast_path = (
            not link.cut
            and (link.src, link.dst) not in self._held
            and endpoint is not None
            and link.dst not in self._paused
            and link.dst not in self._backlog
            and (link.src, link.dst) not in self._gates
        )
        link._plain = not link.cut and link.fifo and not link.loss and not link.duplicate and not link.reorder
        return link

    # -- the message path ---------------------------------------------------------------------

    def transmit(self, src_endpoint: Endpoint, dest: str, body: dict[str, Any]) -> None:
        """Send ``body`` (the receiver's own copy) from ``src_endpoint`` to ``dest``."""
        link = src_endpoint.routes.get(dest)
        if link is None:
            link = src_endpoint.routes[dest] = self.link(src_endpoint.name, dest)
        self.sent += 1
        if link._version != self._version:
            self._refresh(link)
        msg = _new(Message)  # Message(link.src, dest, body, link, link._endpoint), without an __init__ frame
        msg.src = link.src
        msg.dest = dest
        msg.body = body
        msg._link = link
        msg._to = link._endpoint
        if link._plain:  # the common case, inlined: a FIFO link that is up, with no loss, duplicates or reordering
            delay = link._constant_ns if link._constant_ns is not None else link._delay_ns()
            msg._at = link._last_ns = self._push_after(delay, self._deliver_cb, msg, link._last_ns)
        else:
            self._transmit(link, msg)

    def _transmit(self, link: Link, msg: Message) -> None:
        body = msg.body
        if link.cut:
            self._drop(link.src, link.dst, body, "partition")
            return
        if link.loss and link.rng.random() < link.loss:
            self._drop(link.src, link.dst, body, "loss")
            return
        self._schedule(link, msg)
        if link.duplicate and link.rng.random() < link.duplicate:
            self.duplicated += 1
            self._record((self._now(), "duplicate", link.src, link.dst, body["type"]))
            self._schedule(link, Message(link.src, link.dst, copy_body(body), link, link._endpoint))

    def _schedule(self, link: Link, msg: Message) -> bool:
        """Put ``msg`` on its way; returns whether it keeps the link's order (FIFO, not reordered)."""
        delay = link._delay_ns()
        if link.reorder and link.rng.random() < link.reorder:
            # One of the reordered share: mean kept, and outside the FIFO order both ways.
            msg._at = self._push_after(round(delay * 2.0 * link.rng.random()), self._deliver_unordered, msg)
        elif link.fifo:  # never overtake the previous message
            msg._at = link._last_ns = self._push_after(delay, self._deliver_cb, msg, link._last_ns)
            return True
        else:  # independent legs: _through_gate lets it pass
            msg._at = self._push_after(delay, self._deliver_cb, msg)
        return False

    def _deliver_unordered(self, msg: Message) -> None:
        """Deliver one of a link's reordered share: it may overtake anything, so it does not wait behind a release."""
        link: Link = msg._link  # type: ignore[assignment]  # set on every message this network carries
        if (link.src, link.dst) in self._gates:
            self._arrive(link, msg)
        else:
            self._deliver_cb(msg)

    def _deliver(self, msg: Message) -> None:
        link: Link = msg._link  # type: ignore[assignment]  # set on every message this network carries
        if link._version != self._version:
            self._refresh(link)
        if not link.fast_path or msg._to is not link._endpoint:
            self._deliver_slow(link, msg)
            return
        self._handover(link, msg)

    def _handover(self, link: Link, msg: Message) -> None:
        """Give ``msg`` to its live, running receiver, and trace it."""
        self.delivered += 1
        if self.trace_bodies:
            self._record((msg._at, "deliver", link.src, link.dst, repr(msg.body)))
        else:
            kind = msg.body["type"]
            record = link.deliver_record if kind is link.deliver_kind else None  # the type it delivered last
            if record is None:
                record = link.recorders.get(kind)
                if record is None:
                    record = link.recorders[kind] = self._trace.recorder("deliver", link.src, link.dst, kind)
                link.deliver_kind, link.deliver_record = kind, record
            record(msg._at)
        link.deliver(msg)  # type: ignore[misc]  # fast_path: the receiver is live

    def _deliver_slow(self, link: Link, msg: Message) -> None:
        """Delivery when the link is cut, held or behind a release, or the receiver is down, paused or resuming."""
        gate = self._gates.get((link.src, link.dst))
        if gate is not None:
            self._through_gate(link, msg, gate)
        else:
            self._arrive(link, msg)

    def _through_gate(self, link: Link, msg: Message, gate: dict[Message, bool]) -> None:
        """``msg`` is due on a link whose released messages are not all delivered: it keeps its place.

        ``gate`` holds, in the link's order, the released messages still on their
        way (False) and those due but waiting for one before them (True). A
        message from outside the gate was sent after every released one, so it
        goes to the back. On a link no longer FIFO (``set_link(fifo=False)``
        since the release) nothing waits.
        """
        if link.fifo:
            gate[msg] = True
        else:
            gate.pop(msg, None)
            self._arrive(link, msg)
        while gate:
            head = next(iter(gate))
            if not gate[head]:
                return  # on its way: its own arrival lets the rest go
            del gate[head]
            if head is not msg:
                head._at = self._now()  # it waited: it arrives now
            self._arrive(link, head)
        if self._gates.get((link.src, link.dst)) is gate:
            del self._gates[(link.src, link.dst)]
            self._version += 1  # the link may take its fast path again

    def _arrive(self, link: Link, msg: Message, queued: bool = False) -> None:
        """``msg`` is due now, in its link's order: drop it, hold it, queue it or hand it over.

        ``queued``: it comes from its receiver's backlog, so it does not join the back of it.
        """
        if link._version != self._version:
            self._refresh(link)
        # A queued message arrived already (its link open and not held then): a cut or a hold that began since
        # does not take back a message in the receiver's inbox.
        if not queued and link.cut:
            self._drop(msg.src, msg.dest, msg.body, "partition")
        elif not queued and (held := self._held.get((link.src, link.dst))) is not None:
            held.append(msg)
        elif link._endpoint is None or msg._to is not link._endpoint:
            self._drop(msg.src, msg.dest, msg.body, "down")  # down now, or since it was sent
        elif (paused := self._paused.get(link.dst)) is not None:
            paused.append(msg)
        elif not queued and (backlog := self._backlog.get(link.dst)) is not None:
            backlog.append(msg)  # behind what the receiver's resume let go
            self._loop.push_soon(self._drain, link.dst)
        else:
            self._handover(link, msg)

    def _drop(self, src: str, dest: str, body: dict[str, Any], reason: str) -> None:
        self.dropped += 1
        self._record((self._now(), "drop", src, dest, body["type"], reason))

    # -- pausing (called by the simulation) ------------------------------------------------------

    def pause(self, name: str) -> None:
        self._paused.setdefault(name, [])
        self._version += 1

    def paused(self, name: str) -> bool:
        """Whether ``name``'s inbox is held (from a pause to the next resume or detach)."""
        return name in self._paused

    def resume(self, name: str) -> None:
        self._version += 1
        paused = self._paused.pop(name, ())
        if paused:
            backlog = self._backlog.setdefault(name, deque())
            for msg in paused:
                msg._at = self._now()
                backlog.append(msg)
                self._loop.push_soon(self._drain, name)

    def _drain(self, name: str) -> None:
        """Deliver the oldest message of ``name``'s backlog (one call pushed for each message in it)."""
        backlog = self._backlog[name]
        msg = backlog.popleft()
        if not backlog:
            del self._backlog[name]
            self._version += 1
        self._arrive(msg._link, msg, queued=True)  # type: ignore[arg-type]  # set on every message this network carries


def _settings(latency: object, loss: object, duplicate: object, reorder: object, fifo: object = None) -> dict[str, Any]:
    """The given settings, validated; None means 'not given'."""
    out: dict[str, Any] = {}
    if latency is not None:
        out["latency"] = as_distribution(latency, "latency")
    if loss is not None:
        out["loss"] = probability("loss", loss)
    if duplicate is not None:
        out["duplicate"] = probability("duplicate", duplicate)
    if reorder is not None:
        out["reorder"] = probability("reorder", reorder)
    if fifo is not None:
        if not isinstance(fifo, bool):
            raise ConfigError(
                f"fifo must be True (in-order links, the default) or False (independent delays), got {fifo!r}"
            )
        out["fifo"] = fifo
    return out
