"""The Injector: starts and stops nemeses on one simulation (or real cluster) and keeps what they changed.

Faults overlap (a partition during a latency spike during a crash), and the
kernel's mechanisms are not stacks: a link has one set of overrides, a clock
one offset. The injector keeps a ledger per mechanism so that stopping one
fault restores exactly the state the others (and the user) left:

- partitions: the network gives each cut an id; stopping a fault heals its
  own cuts by id (never all of them), and the other faults' cuts and the
  user's own stay;
- links: the overrides a link had before any nemesis touched it, plus each
  active fault's setting in start order; a setting the user changes while
  faults cover the link is the user's from then on (those faults lose it,
  and their stop leaves the user's value);
- clocks: a node reads the skew of the latest clock fault still active on it
  (of any injector on the same target: the ledger is shared), else the
  setting someone outside the injectors last gave it with ``skew`` (offset 0
  and drift 0 if no one did; a drift set again restarts from that instant,
  as ``skew`` always does). Stopping an earlier fault under it leaves the
  clock alone (a drift goes on drifting). A ``skew`` from outside while
  faults cover the node makes its clock the caller's from then on: those
  faults lose it (a strobe no longer flips it) and their stop leaves it as
  the caller set it;
- crash: a crash fault's stop restarts only the servers it crashed and that
  are still down from its crash: one restarted from outside (by the user, a
  scenario step, test code) is no longer its to restart, so a later crash of
  the user's stays; a node already crashed or paused by the injector is not
  picked again;
- pause: a node stays paused while anyone holds a pause on it: an active
  pause fault of any injector on the same target (their ledger is shared),
  or anyone else who paused it (the user, a scenario step, test code: a
  ``pause`` op in the history no injector made). Stopping a pause fault
  resumes only the nodes no one else holds. Pauses are not counted in the
  kernel (``sim.resume`` ends them all, as SIGCONT does), so a resume from
  outside the injectors, or a crash of the node, ends every hold on it.

Call it from outside ``sim.run`` (between runs, as :meth:`Schedule.play` does)
or from a coroutine inside the simulation; never from a node's handler.

The target is any :class:`~faults.target.FaultTarget`: an
``emulator.Simulation``, or a real cluster (``emulator.transport.RealCluster``),
whose fault methods have the simulation's names and whose cuts have ids too.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import random
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import emulator as em
from faults.nemesis import Clock, Nemesis, make_nemesis
from faults.partitions import Cut
from faults.spec import ParamError
from faults.target import FaultTarget

__all__ = ["Injector", "load_primary"]

Pair = tuple[str, str]

#: how ``primary`` may be given: a callable(target) -> name, a "module:function" path, or a name
Primary = Callable[[FaultTarget], str] | str | None


@dataclass(frozen=True)
class _Cuts:
    """One partition a nemesis made: its shape, and the ids the network gave its cuts."""

    nemesis: Nemesis
    cut: Cut
    ids: list[int]


@dataclass(frozen=True)
class _LinkSetting:
    """One link fault: the directed links it covers, the settings it puts on them, and those the user took back."""

    nemesis: Nemesis
    pairs: list[Pair]
    settings: dict[str, Any]
    #: (link, setting) pairs the user changed while this fault covered them: no longer this fault's
    lost: dict[tuple[Pair, str], None] = field(default_factory=dict)


class _Holds:
    """Who holds each node of one target down or paused: faults of any injector on it, and anyone else.

    The holds of the faults are filed here as they crash and pause; anyone
    else's moves are read from the target's history, which records every
    ``crash``, ``restart``, ``pause`` and ``resume``: those ops no injector
    made, read in order from where the last look stopped. An outside
    ``pause`` holds the node; an outside ``resume`` ends every pause hold on
    it, as does any crash; an outside ``restart`` ends the crash fault's hold.
    Clocks are kept here too: an outside ``skew`` takes the node's clock from
    the faults on it and is what the clock goes back to when the last clock
    fault on it stops.
    """

    def __init__(self) -> None:
        # No reference to the target or its history: the registry below keeps a ledger only while its target lives.
        #: node -> the pause faults holding it, in start order
        self.held: dict[str, list[Nemesis]] = {}
        #: the nodes someone outside the injectors paused and has not resumed (a dict: ordered)
        self.outside: dict[str, None] = {}
        #: pause fault -> the nodes it paused, in order
        self.paused_by: dict[Nemesis, list[str]] = {}
        #: node -> the crash fault holding it down
        self.down: dict[str, Nemesis] = {}
        #: node -> the clock faults on it, in start order (the latest one's reading is on the clock)
        self.clocks: dict[str, list[Clock]] = {}
        #: node -> the (offset, drift) someone outside the injectors last set: what the clock returns to
        self.clock_base: dict[str, tuple[float, float]] = {}
        #: clock fault -> the nodes it lost to an outside skew while it covered them
        self.clock_lost: dict[Clock, set[str]] = {}
        self.seen = 0  # history ops read so far

    def crash(self, target: FaultTarget, nemesis: Nemesis, node: str) -> None:
        self._read(target)
        self.down[node] = nemesis
        target.crash(node)
        self._crashed(node)
        self.seen = len(target.history)  # the op just recorded is an injector's

    def restart(self, target: FaultTarget, nemesis: Nemesis) -> None:
        """Restart the nodes ``nemesis`` still holds down (not those restarted from outside since)."""
        self._read(target)
        for node in [n for n, owner in self.down.items() if owner is nemesis]:
            del self.down[node]
            if not target.alive(node):
                target.restart(node)
                self.seen = len(target.history)

    def pause(self, target: FaultTarget, nemesis: Nemesis, node: str) -> None:
        self._read(target)
        self.held.setdefault(node, []).append(nemesis)
        self.paused_by.setdefault(nemesis, []).append(node)
        target.pause(node)
        self.seen = len(target.history)

    def release(self, target: FaultTarget, nemesis: Nemesis) -> None:
        """Drop ``nemesis``'s pause holds; resume each node it still held that no one else holds."""
        for node in self.paused_by.pop(nemesis, []):
            self._read(target)
            holders = self.held.get(node, [])
            if nemesis not in holders:
                continue  # its hold was ended from outside: the node runs, or someone else paused it since
            holders.remove(nemesis)
            if not holders:
                del self.held[node]
                if node not in self.outside:
                    target.resume(node)
                    self.seen = len(target.history)

    def set_clock(self, target: FaultTarget, nemesis: Clock, node: str) -> None:
        """File ``nemesis`` on ``node``'s clock (once) and, when it is the latest there, put its reading on."""
        self._read(target)
        if node in self.clock_lost.get(nemesis, ()):
            return  # the clock is someone else's since this fault started
        stack = self.clocks.setdefault(node, [])
        if nemesis not in stack:
            stack.append(nemesis)
        if stack[-1] is nemesis:
            target.skew(node, *nemesis.reading)
            self.seen = len(target.history)

    def clear_clock(self, target: FaultTarget, nemesis: Clock) -> None:
        """Take ``nemesis`` off every clock it is on; a clock it was the latest on reads the one before."""
        self._read(target)
        self.clock_lost.pop(nemesis, None)
        for node in [n for n, stack in self.clocks.items() if nemesis in stack]:
            stack = self.clocks[node]
            # Only the latest fault's reading is on the clock: setting the same reading again would
            # restart a drift from true time, a jump on a clock whose fault has not changed.
            latest = stack[-1] is nemesis
            stack.remove(nemesis)
            if not stack:
                del self.clocks[node]
            if latest:
                target.skew(node, *(stack[-1].reading if stack else self.clock_base.get(node, (0.0, 0.0))))
                self.seen = len(target.history)

    def holders(self, target: FaultTarget, node: str) -> list[Nemesis]:
        """The faults holding ``node``: its crash fault, then its pause faults."""
        self._read(target)
        owner = self.down.get(node)
        return ([owner] if owner is not None else []) + self.held.get(node, [])

    def _crashed(self, node: str) -> None:
        self.outside.pop(node, None)
        self.held.pop(node, None)

    def _read(self, target: FaultTarget) -> None:
        history = target.history
        for op in history[self.seen :]:
            node, f = op.get("value"), op.get("f")
            if op.get("process") != "nemesis":
                continue
            if f == "skew" and isinstance(node, list) and len(node) == 3:  # [name, offset, drift]
                name, offset, drift = node
                self.clock_base[name] = (float(offset), float(drift))
                for nemesis in self.clocks.pop(name, []):
                    self.clock_lost.setdefault(nemesis, set()).add(name)
                continue
            if not isinstance(node, str):
                continue
            if f == "pause":
                self.outside[node] = None
            elif f == "resume":
                self._crashed(node)  # a resume ends every pause, as a crash does
            elif f == "crash":
                self._crashed(node)
            elif f == "restart":
                self.down.pop(node, None)
        self.seen = len(history)


#: each target's ledger of crash and pause holds, shared by every injector on it
_HOLDS: weakref.WeakKeyDictionary[FaultTarget, _Holds] = weakref.WeakKeyDictionary()


def _holds_of(target: FaultTarget) -> _Holds:
    ledger = _HOLDS.get(target)
    if ledger is None:
        ledger = _HOLDS[target] = _Holds()
    return ledger


class Injector:
    """Starts and stops nemeses on ``sim``, recording each in its history.

    Args:
        sim: the simulation to torture, or a ``RealCluster``: any :class:`~faults.target.FaultTarget`.
        rng: where random targets come from; by default ``sim.rng("nemesis")``.
        primary: for ``isolate-primary``: a callable ``primary(sim) -> name``,
            a ``"module:function"`` path to one, or a fixed node name.

    Raises:
        ConfigError: ``sim`` is not a FaultTarget.
    """

    def __init__(self, sim: FaultTarget, rng: random.Random | None = None, primary: Primary = None):
        if not isinstance(sim, FaultTarget):
            raise em.ConfigError(
                f"an Injector drives an emulator.Simulation or an emulator.transport.RealCluster "
                f"(a faults.target.FaultTarget), not a {type(sim).__name__}"
            )
        self.sim = sim
        self.rng = rng if rng is not None else sim.rng("nemesis")
        self.primary = primary
        #: the nemeses started and not yet stopped, in start order
        self.active: list[Nemesis] = []
        #: nemeses started with after = "ack", waiting for an acknowledged write -> their cancel function
        self.waiting: dict[Nemesis, Callable[[], None]] = {}
        #: one entry per fault started: id, kind, start, stop, value
        self.log: list[dict] = []
        self._ids = itertools.count(1)
        self._partitions: list[_Cuts] = []
        self._link_base: dict[Pair, dict[str, Any]] = {}
        self._link_set: dict[Pair, dict[str, Any]] = {}  # what the injector last put on each link it covers
        self._link_faults: list[_LinkSetting] = []
        self._holds = _holds_of(sim)

    # -- the front door ---------------------------------------------------------------------

    def start(self, nemesis: Nemesis | str, **params) -> Nemesis:
        """Start ``nemesis`` (an instance, or a kind and its parameters); returns it.

        Raises:
            ConfigError: it is already active, or its parameters do not fit this cluster.
        """
        if isinstance(nemesis, str):
            nemesis = make_nemesis(nemesis, **params)
        if nemesis in self.active or nemesis in self.waiting:
            raise em.ConfigError(f"{nemesis!r} is already active; stop it first, or start a new one")
        if nemesis.params.get("after") == "ack":
            self._wait_for_ack(nemesis)
            return nemesis
        return self._start_now(nemesis)

    def _wait_for_ack(self, nemesis: Nemesis) -> None:
        """Start ``nemesis`` right after the next acknowledged write or cas (an ok completion in the history)."""

        def strike(op: dict) -> None:
            if op["type"] == "ok" and op.get("f") in ("write", "cas") and nemesis in self.waiting:
                self.waiting.pop(nemesis)()
                self._start_now(nemesis, {"after": op["index"]})

        self.waiting[nemesis] = self.sim.history.on_complete(strike)

    def _start_now(self, nemesis: Nemesis, extra: dict | None = None) -> Nemesis:
        value = nemesis.prepare(self)
        nemesis.id = next(self._ids)
        value = {"id": nemesis.id, **value, **(extra or {})}
        self.sim.record_nemesis(f"start-{nemesis.kind}", value)
        self.active.append(nemesis)
        nemesis.inject(self)
        self.log.append({"id": nemesis.id, "kind": nemesis.kind, "start": self.sim.now, "stop": None, "value": value})
        return nemesis

    def stop(self, nemesis: Nemesis) -> bool:
        """Stop an active nemesis; False (and nothing recorded) when it is not active.

        A nemesis still waiting for an acknowledgement (``after = "ack"``) is cancelled: it never strikes.
        """
        cancel = self.waiting.pop(nemesis, None)
        if cancel is not None:
            cancel()
        if nemesis not in self.active:
            return False
        self.active.remove(nemesis)
        extra = nemesis.repair(self) or {}
        self.sim.record_nemesis(f"stop-{nemesis.kind}", {"id": nemesis.id, **extra})
        for entry in self.log:
            if entry["id"] == nemesis.id:
                entry["stop"] = self.sim.now
        return True

    def heal(self) -> int:
        """Stop every active nemesis, latest first (and cancel those waiting); returns how many were stopped."""
        for nemesis in list(self.waiting):
            self.stop(nemesis)
        stopped = 0
        for nemesis in reversed(list(self.active)):
            stopped += self.stop(nemesis)
        return stopped

    # -- targets ------------------------------------------------------------------------------

    def free_servers(self) -> list[str]:
        """Servers running and not crashed by this injector nor held paused by one of its faults, sorted."""
        return [n for n in self.sim.servers if self.sim.alive(n) and not self._held(n)]

    def _held(self, node: str) -> bool:
        return any(nemesis in self.active for nemesis in self._holds.holders(self.sim, node))

    def clients(self) -> list[str]:
        """The client nodes, sorted."""
        servers = set(self.sim.servers)
        return [n for n in self.sim.nodes if n not in servers]

    def primary_of(self, primary: Any = None) -> str:
        """The current leader, which ``isolate-primary`` and ``target = "primary"`` aim at.

        From ``primary``, else the injector's ``primary``, else the servers'
        protocol: its ``leader_of(sim)`` (lin-kv, sharded-kv and
        primary-replica have one).
        """
        source = primary if primary is not None else self.primary
        if source is None:
            source = self._protocol_leader()
        if source is None:
            raise ParamError(
                "primary",
                None,
                "a primary for isolate-primary or target = 'primary': give the nemesis "
                "primary=..., the injector primary=callable(sim) -> name, or use a "
                "protocol with a leader_of(sim)",
            )
        if isinstance(source, str) and ":" in source:
            source = load_primary(source)
        name = source(self.sim) if callable(source) else source
        if name not in self.sim.servers:
            raise ParamError("primary", name, f"the name of a server ({', '.join(self.sim.servers)})")
        return name

    def leader_now(self) -> str | None:
        """The leader right now, or None when no one leads (an election): what ``target = "primary"`` hits.

        A primary given to the nemesis or the injector is taken as it is; a protocol's ``leader_now(sim)``
        (primary-replica) says when no one leads, where its ``leader_of`` names a stand-in.
        """
        if self.primary is None:
            node_of = getattr(self.sim, "node", None)
            node = next((node_of(n) for n in self.sim.servers if node_of(n) is not None), None) if node_of else None
            now = getattr(type(node), "leader_now", None)
            if now is not None:
                return now(self.sim)  # type: ignore[no-any-return]  # the protocol's answer
        return self.primary_of()

    def _protocol_leader(self) -> Callable | None:
        """The servers' protocol's ``leader_of`` (a static method of the node class), if it has one."""
        node_of = getattr(self.sim, "node", None)
        if node_of is None:
            return None
        for name in self.sim.servers:
            node = node_of(name)
            if node is not None:
                return getattr(type(node), "leader_of", None)
        return None

    def link_pairs(self, links: Any, clients: bool) -> list[list[str]]:
        """The undirected pairs a link fault covers, sorted."""
        servers = self.sim.servers
        everyone = [[a, b] for i, a in enumerate(servers) for b in servers[i + 1 :]]
        if links == "all":
            pairs = everyone
        elif links == "some":
            pairs = [p for p in everyone if self.rng.random() < 0.5] or (
                [self.rng.choice(everyone)] if everyone else []
            )
        else:
            known = set(self.sim.nodes)
            bad = [p for p in links if not set(p) <= known]
            if bad:
                raise ParamError("links", links, f"pairs of node names from {', '.join(sorted(known))}")
            pairs = [list(p) for p in links]
        if clients:
            pairs += [sorted([c, s]) for c in self.clients() for s in servers]
        return sorted({tuple(p): list(p) for p in pairs}.values())

    # -- partitions ------------------------------------------------------------------------------

    def add_partition(self, nemesis: Nemesis, cut: Cut) -> None:
        """Make ``cut`` for ``nemesis`` and file the ids of its cuts under it."""
        self._partitions.append(_Cuts(nemesis, cut, cut.apply(self.sim.network)))

    def remove_partition(self, nemesis: Nemesis) -> None:
        """Lift this nemesis's cuts only, by id: other faults' cuts, and the user's own, stay."""
        ids = [i for entry in self._partitions if entry.nemesis is nemesis for i in entry.ids]
        self._partitions = [entry for entry in self._partitions if entry.nemesis is not nemesis]
        if ids:
            self.sim.network.heal(*ids)

    # -- links ---------------------------------------------------------------------------------

    def add_link_fault(self, nemesis: Nemesis, pairs: list[list[str]], settings: dict[str, Any]) -> None:
        """Put ``settings`` on both directions of ``pairs``, over what the links had (kept to restore)."""
        directed = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]
        for pair in directed:
            if pair in self._link_base:
                self._absorb(pair)
            else:
                self._link_base[pair] = self.sim.network.overrides(*pair)
        self._link_faults.append(_LinkSetting(nemesis, directed, settings))
        self._relink(directed)

    def remove_link_fault(self, nemesis: Nemesis) -> None:
        """Take ``nemesis``'s settings off its links: the other link faults' and the user's stay."""
        touched = [pair for entry in self._link_faults if entry.nemesis is nemesis for pair in entry.pairs]
        self._link_faults = [entry for entry in self._link_faults if entry.nemesis is not nemesis]
        self._relink(touched)

    def _absorb(self, pair: Pair) -> None:
        """Take the settings the user changed on ``pair`` since the injector last set it into its base.

        A setting whose value differs from what the injector put there (or
        that the user added or removed) is the user's from then on: the
        faults covering the link now lose it, and stopping them leaves the
        user's value. A change to the very value a fault set cannot be told
        from no change.
        """
        last, now = self._link_set.get(pair), self.sim.network.overrides(*pair)
        if last is None:
            return
        base = self._link_base[pair]
        for key in sorted({**last, **now}):
            if key in now and (key not in last or not _same(now[key], last[key])):
                base[key] = now[key]
            elif key not in now:
                base.pop(key, None)
            else:
                continue
            for entry in self._link_faults:
                if pair in entry.pairs:
                    entry.lost[(pair, key)] = None
        self._link_set[pair] = now  # taken in: the same change is not the user's again at the next look

    def _relink(self, pairs: list[Pair]) -> None:
        for pair in pairs:
            self._absorb(pair)
            settings = dict(self._link_base[pair])
            covered = False
            for entry in self._link_faults:
                if pair in entry.pairs:
                    settings.update({k: v for k, v in entry.settings.items() if (pair, k) not in entry.lost})
                    covered = True
            self.sim.network.replace_link_oneway(*pair, **settings)
            self._link_set[pair] = settings
            if not covered:
                del self._link_base[pair], self._link_set[pair]

    # -- clocks ----------------------------------------------------------------------------------

    def set_clocks(self, nemesis: Clock, nodes: list[str]) -> None:
        for node in nodes:
            self._holds.set_clock(self.sim, nemesis, node)

    def clear_clocks(self, nemesis: Clock) -> None:
        self._holds.clear_clock(self.sim, nemesis)

    # -- crash and pause ------------------------------------------------------------------------

    def crash(self, nemesis: Nemesis, nodes: list[str]) -> None:
        for node in nodes:
            self._holds.crash(self.sim, nemesis, node)

    def restart(self, nemesis: Nemesis) -> None:
        """Restart the nodes ``nemesis`` crashed, unless restarted from outside since (then crashed again or not)."""
        self._holds.restart(self.sim, nemesis)

    def pause(self, nemesis: Nemesis, nodes: list[str]) -> None:
        for node in nodes:
            self._holds.pause(self.sim, nemesis, node)

    def resume(self, nemesis: Nemesis) -> None:
        """Release ``nemesis``'s pauses: a node runs again once no one else holds a pause on it."""
        self._holds.release(self.sim, nemesis)

    def __repr__(self):
        return f"<Injector {len(self.active)} active, {len(self.log)} started>"


def _same(a: Any, b: Any) -> bool:
    """Whether two link settings are equal: distributions by type and parameters, the rest by value.

    A real cluster's ``overrides`` builds its distributions afresh from JSON.
    """
    if isinstance(a, em.Distribution) and isinstance(b, em.Distribution):
        return type(a) is type(b) and vars(a) == vars(b)
    return bool(a == b)


def load_primary(path: str) -> Callable:
    """The function a ``"module:function"`` primary names.

    Raises:
        ParamError: it cannot be imported, or is not callable.
    """
    module_name, _, attr = path.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:  # ValueError: an empty module name
        raise ParamError("primary", path, f"an importable 'module:function' ({exc})") from None
    if not callable(found):
        raise ParamError("primary", path, f"an importable 'module:function' (a {type(found).__name__}, not callable)")
    try:
        inspect.signature(found).bind(None)
    except TypeError:
        raise ParamError("primary", path, "a function of one argument, the Simulation (it names the leader)") from None
    except ValueError:  # no signature to read (some builtins): it is called and judged by what it returns
        pass
    return found
