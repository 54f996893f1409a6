"""Nemeses: named fault packages, each with a start and a matching stop.

A nemesis is plain data (its kind and parameters) until an :class:`~faults.Injector`
starts it: it then picks its targets with the injector's seeded stream, drives
the kernel's mechanisms, and is recorded as ``start-<kind>`` / ``stop-<kind>``
(see :mod:`faults.record`). Stopping undoes exactly what starting did, even
when faults overlap: the injector keeps the ledgers that make that true.

====================  =================================================  ======================================
kind                  parameters (defaults)                              start / stop
====================  =================================================  ======================================
``partition``         shape="halves", direction="both", primary, groups, cut server links / heal them
                      flap
``crash``             count=1, nodes, target="random"                    crash k running servers / restart them
``pause``             count=1, nodes, target="random"                    pause k servers / resume them
``clock``             mode="bump" (or strobe, drift), offset=1.0,        skew k clocks / set them back
                      drift=0.1, period=0.1, count=1, nodes, target
``latency``           latency={exponential=0.1}, links="all", clients    slower links / previous settings
``loss``              loss=0.5, links="all", clients=false               lossy links / previous settings
``duplicate``         duplicate=0.5, links, clients                      duplicating links / previous settings
``reorder``           reorder=1.0, links, clients                        reordering links / previous settings
``hostile``           latency={pareto=[0.001, 1.5, 1.0]}, loss=0.02,      all four at once / previous settings
                      duplicate=0.1, reorder=0.2, links, clients=true
``membership``        change (join or leave), node, retry=0.1,           a server joins or leaves / the opposite
                      attempts=300                                       (sharded-kv; :mod:`faults.membership`)
====================  =================================================  ======================================

``nodes`` names the targets explicitly instead of ``count`` random ones;
``target = "primary"`` aims at the current leader: the primary first (as
``isolate-primary`` finds it: the cluster's ``primary``, else the protocol's
own ``leader_of(sim)``), then ``count - 1`` other servers at random; a
primary that is down or held by another fault of this injector is skipped,
not replaced (``count = 1`` then hits no node, and records ``nodes = []``).
``flap = [low, high]`` makes a partition flap while it lasts: healed after
a uniform draw in that many seconds, cut again (a new draw of its shape)
after another, and so on; ``start-partition`` records ``flap`` and the
first cut, ``heal-partition`` each heal and ``cut-partition`` each later
cut with its own sides and grudge (both before the kernel's ``heal`` or
``partition`` ops, so a heal's convergence epoch runs to the next cut), and
:func:`faults.fault_spans` gives every cut its own span. Any kind takes
``after = "ack"``: started at its time, it waits for the next acknowledged
write or cas (an ``ok`` completion in the history, through
``History.on_complete``) and strikes right then, so
``kind = "crash", target = "primary", after = "ack"`` crashes the primary
right after it acknowledges a write; a stop that comes first cancels it.
``links`` is ``"all"`` (every link between servers), ``"some"`` (a random
non-empty subset of server pairs) or a list of ``[a, b]`` pairs; ``clients =
true`` adds every client-server link. ``hostile`` is the hostile network
(:data:`faults.spec.HOSTILE`: duplication, reordering, loss and heavy-tailed
latency spikes together) on the client links too unless ``clients = false``;
give any of its four settings to change that one. Partition shapes are described in
:mod:`faults.partitions`. A clock ``strobe`` flips the offset on and off every
``period`` seconds while it lasts; ``drift`` makes the clock run at ``1 +
drift`` of true time.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import emulator as em
from emulator import cuts as rules
from emulator.validate import is_number
from faults.base import Driver, Nemesis, background, plain_params
from faults.membership import Membership
from faults.partitions import DIRECTIONS, SHAPES, cut
from faults.spec import (
    HOSTILE,
    ParamError,
    check_choice,
    check_count,
    check_names,
    check_number,
    check_probability,
    distribution,
)

__all__ = [
    "NEMESES",
    "Clock",
    "Crash",
    "Driver",
    "Duplicate",
    "Hostile",
    "Latency",
    "LinkFault",
    "Loss",
    "Nemesis",
    "Partition",
    "Pause",
    "Reorder",
    "make_nemesis",
]

#: The shortest flap (a cut or a heal of a flapping partition) and strobe period, in seconds: a span under
#: the loop's nanosecond made a run that never ended. (A microsecond, not a random nemesis's millisecond
#: interval: --time-scale shrinks a scenario's spans for real runs.)
MIN_SPAN = 1e-6


# -- partitions -------------------------------------------------------------------------------


class Partition(Nemesis):
    """Cut server links in one of the shapes of :mod:`faults.partitions`; stop heals them."""

    kind = "partition"
    PARAMS: ClassVar[dict[str, Any]] = {
        "shape": None,
        "direction": "both",
        "primary": None,
        "groups": None,
        "flap": None,
        "after": None,
    }

    def _check(self, params: dict) -> dict:
        if params["shape"] is None:
            params["shape"] = "groups" if params["groups"] is not None else "halves"
        check_choice("shape", params["shape"], SHAPES)
        _check_groups(params["shape"], params["groups"])
        check_choice("direction", params["direction"], DIRECTIONS)
        primary = params["primary"]
        if primary is not None and not callable(primary) and not (isinstance(primary, str) and primary):
            raise ParamError("primary", primary, "a node name, a 'module:function' path, or a callable(sim) -> name")
        flap = params["flap"]
        if flap is not None:
            bad = not isinstance(flap, (list, tuple)) or len(flap) != 2 or not all(is_number(v) for v in flap)
            if bad or not MIN_SPAN <= flap[0] <= flap[1]:  # 1e-10 was a run that never ended
                raise ParamError("flap", flap, "[low, high] seconds, 1e-06 <= low <= high, between cuts and heals")
            params["flap"] = [float(flap[0]), float(flap[1])]
        _check_after(params["after"])
        return params

    def prepare(self, injector: Driver) -> dict:
        self.cut = self._draw(injector)
        flap = self.params["flap"]
        return self.cut.value() if flap is None else {**self.cut.value(), "flap": flap}

    def _draw(self, injector: Driver):
        p = self.params
        primary = injector.primary_of(p["primary"]) if p["shape"] == "isolate-primary" else None
        return cut(p["shape"], injector.sim.servers, injector.rng, p["direction"], primary, p["groups"])

    def inject(self, injector: Driver) -> None:
        injector.add_partition(self, self.cut)
        self.task = None
        if self.params["flap"] is not None:
            self.task = background(injector.sim, self._flap(injector), f"flap-{self.id}")

    async def _flap(self, injector: Driver) -> None:
        low, high = self.params["flap"]
        while True:
            await asyncio.sleep(injector.rng.uniform(low, high))
            injector.sim.record_nemesis("heal-partition", {"id": self.id})
            injector.remove_partition(self)
            await asyncio.sleep(injector.rng.uniform(low, high))
            self.cut = self._draw(injector)
            injector.sim.record_nemesis("cut-partition", {"id": self.id, **self.cut.value()})
            injector.add_partition(self, self.cut)

    def repair(self, injector: Driver) -> dict:
        if self.task is not None:
            self.task.cancel()
        injector.remove_partition(self)
        return {"shape": self.params["shape"]}


def _check_after(after: Any) -> None:
    if after not in (None, "ack"):
        raise ParamError("after", after, "'ack' (strike right after the next acknowledged write), or leave it out")


def _check_groups(shape: str, groups: Any) -> None:
    """Groups come with the ``groups`` shape, and only then, as two or more lists of names."""
    expected = "with shape 'groups' (and only then), two or more non-empty lists of node names, e.g. [['n0'], ['n1']]"
    if (groups is not None) != (shape == "groups"):
        raise ParamError("groups", groups, expected)
    if groups is None:
        return
    if not isinstance(groups, (list, tuple)) or len(groups) < 2:
        raise ParamError("groups", groups, expected)

    def names(group: object) -> list[str]:
        if not isinstance(group, (list, tuple)) or not group or not all(isinstance(n, str) for n in group):
            raise ParamError("groups", groups, expected)
        return list(group)

    try:
        rules.partition(groups, names, "[['n0'], ['n1']]")
    except ParamError:
        raise
    except em.ConfigError as exc:  # a node in two groups
        raise ParamError("groups", groups, f"each node in one group only ({exc})") from None


# -- node faults --------------------------------------------------------------------------------


class _NodeFault(Nemesis):
    """A fault on ``count`` random servers (or the ``nodes`` named, or the primary first) the injector may touch."""

    TARGETS = ("random", "primary")

    def _check(self, params: dict) -> dict:
        check_count("count", params["count"])
        if params.get("nodes") is not None:
            params["nodes"] = check_names("nodes", params["nodes"])
        check_choice("target", params["target"], self.TARGETS)
        if params["target"] == "primary" and params.get("nodes") is not None:
            raise ParamError("target", "primary", "target = 'primary' or nodes = [...], not both")
        _check_after(params["after"])
        return params

    def _targets(self, injector: Driver) -> list[str]:
        free = injector.free_servers()
        named = self.params.get("nodes")
        if named is not None:
            unknown = [n for n in named if n not in injector.sim.servers]
            if unknown:
                raise ParamError("nodes", named, f"server names from {', '.join(injector.sim.servers)}")
            return [n for n in named if n in free]
        first, count = [], self.params["count"]
        if self.params["target"] == "primary":
            # The leader's slot: filled by the leader or by no one (down or held by another fault), never
            # by a follower standing in for it.
            primary, count = injector.leader_now(), count - 1
            first = [primary] if primary in free else []
            free = [n for n in free if n != primary]
        others = injector.rng.sample(free, min(count, len(free)))
        return first + sorted(others)


class Crash(_NodeFault):
    """Crash k running servers (memory lost, storage kept); stop restarts those still down from this crash.

    A server someone paused counts as running: crashing it ends its pause (as
    SIGKILL ends a stopped process), and the stop's restart leaves it running.
    """

    kind = "crash"
    PARAMS: ClassVar[dict[str, Any]] = {"count": 1, "nodes": None, "target": "random", "after": None}

    def prepare(self, injector):
        self.nodes = self._targets(injector)
        return {"nodes": self.nodes}

    def inject(self, injector):
        injector.crash(self, self.nodes)

    def repair(self, injector):
        injector.restart(self)
        return {"nodes": self.nodes}


class Pause(_NodeFault):
    """Pause k servers (timers and inbox wait); stop resumes those no one else holds paused (see the Injector)."""

    kind = "pause"
    PARAMS: ClassVar[dict[str, Any]] = {"count": 1, "nodes": None, "target": "random", "after": None}

    def prepare(self, injector):
        self.nodes = self._targets(injector)
        return {"nodes": self.nodes}

    def inject(self, injector):
        injector.pause(self, self.nodes)

    def repair(self, injector):
        injector.resume(self)
        return {"nodes": self.nodes}


class Clock(_NodeFault):
    """Skew k servers' clocks: a bump, a strobe or a drift; stop sets them back."""

    kind = "clock"
    PARAMS: ClassVar[dict[str, Any]] = {
        "mode": "bump",
        "offset": 1.0,
        "drift": 0.1,
        "period": 0.1,
        "count": 1,
        "nodes": None,
        "target": "random",
        "after": None,
    }
    MODES = ("bump", "strobe", "drift")

    def _check(self, params):
        check_choice("mode", params["mode"], self.MODES)
        check_number("offset", params["offset"])
        check_number("drift", params["drift"], low=-1.0, strict_low=True)
        check_number("period", params["period"], low=MIN_SPAN)  # 1e-10 was a run that never ended
        return super()._check(params)

    def prepare(self, injector):
        self.nodes = self._targets(injector)
        mode = self.params["mode"]
        self.reading = (0.0, self.params["drift"]) if mode == "drift" else (self.params["offset"], 0.0)
        shown = {"drift": self.params["drift"]} if mode == "drift" else {"offset": self.params["offset"]}
        if mode == "strobe":
            shown["period"] = self.params["period"]
        return {"mode": mode, "nodes": self.nodes, **shown}

    def inject(self, injector):
        injector.set_clocks(self, self.nodes)
        self.task = None
        if self.params["mode"] == "strobe" and self.nodes:
            self.task = background(injector.sim, self._strobe(injector), f"strobe-{self.id}")

    async def _strobe(self, injector):
        offset, on = self.params["offset"], True
        while True:
            await asyncio.sleep(self.params["period"])
            on = not on
            self.reading = (offset if on else 0.0, 0.0)
            injector.set_clocks(self, self.nodes)

    def repair(self, injector):
        if self.task is not None:
            self.task.cancel()
        injector.clear_clocks(self)
        return {"nodes": self.nodes}


# -- link faults --------------------------------------------------------------------------------


class LinkFault(Nemesis):
    """Change link settings on some links or all; stop restores those before it, bar the user's changes since."""

    setting: ClassVar[str] = ""

    @property
    def settings(self) -> tuple[str, ...]:
        """The link settings this fault changes."""
        return (self.setting,)

    def _check(self, params):
        for name in self.settings:
            if name == "latency":
                params["latency"] = distribution(params["latency"], "latency")
            else:
                check_probability(name, params[name])
        links = params["links"]
        if links not in ("all", "some"):
            bad = (
                isinstance(links, str)
                or not isinstance(links, (list, tuple))
                or not links
                or any(
                    not isinstance(p, (list, tuple))
                    or len(p) != 2
                    or p[0] == p[1]
                    or not all(isinstance(n, str) for n in p)
                    for p in links
                )
            )
            if bad:
                raise ParamError("links", links, "'all', 'some', or a list of [a, b] node pairs")
            params["links"] = sorted(sorted(p) for p in links)
        if not isinstance(params["clients"], bool):
            raise ParamError("clients", params["clients"], "true or false")
        _check_after(params["after"])
        return params

    def prepare(self, injector):
        self.pairs = injector.link_pairs(self.params["links"], self.params["clients"])
        shown = plain_params({name: self.params[name] for name in self.settings})
        return {"links": self.pairs, **shown}

    def inject(self, injector):
        injector.add_link_fault(self, self.pairs, {name: self.params[name] for name in self.settings})

    def repair(self, injector):
        injector.remove_link_fault(self)
        return {"links": self.pairs}


class Latency(LinkFault):
    """A latency spike: a slower distribution on some links for a while."""

    kind = setting = "latency"
    PARAMS: ClassVar[dict[str, Any]] = {
        "latency": {"exponential": 0.1},
        "links": "all",
        "clients": False,
        "after": None,
    }


class Loss(LinkFault):
    """Drop each message on some links with probability ``loss``."""

    kind = setting = "loss"
    PARAMS: ClassVar[dict[str, Any]] = {"loss": 0.5, "links": "all", "clients": False, "after": None}


class Duplicate(LinkFault):
    """Deliver each message on some links twice with probability ``duplicate``."""

    kind = setting = "duplicate"
    PARAMS: ClassVar[dict[str, Any]] = {"duplicate": 0.5, "links": "all", "clients": False, "after": None}


class Reorder(LinkFault):
    """Let messages on some links overtake each other, with probability ``reorder`` each."""

    kind = setting = "reorder"
    PARAMS: ClassVar[dict[str, Any]] = {"reorder": 1.0, "links": "all", "clients": False, "after": None}


class Hostile(LinkFault):
    """The hostile network on some links or all, client links included: see :data:`faults.spec.HOSTILE`."""

    kind = "hostile"
    PARAMS: ClassVar[dict[str, Any]] = {**HOSTILE, "links": "all", "clients": True, "after": None}

    @property
    def settings(self) -> tuple[str, ...]:
        return ("latency", "loss", "duplicate", "reorder")


#: kind -> nemesis class.
NEMESES: dict[str, type[Nemesis]] = {
    cls.kind: cls for cls in (Partition, Crash, Pause, Clock, Latency, Loss, Duplicate, Reorder, Hostile, Membership)
}


def make_nemesis(kind: str, **params) -> Nemesis:
    """The nemesis of ``kind`` with ``params``.

    Raises:
        ParamError: an unknown kind, an unknown parameter or a bad value.
    """
    cls = NEMESES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ParamError("kind", kind, "one of " + ", ".join(NEMESES) + " (or heal in a schedule)")
    return cls(**params)
