"""Schedules: timelines of fault steps, written by hand, read from a file, or drawn from a seed.

A :class:`Step` starts one nemesis at ``at`` seconds (from the start of the
schedule) and, if it has a ``duration``, stops it that much later; a step of
kind ``heal`` stops every active fault. A :class:`Schedule` is a sorted list
of steps. It is plain data: ``to_dict``/``from_dict`` round-trip it through
JSON or TOML, and its ``repr`` is Python that builds it again, so a failing
property test can print it and a user can paste it back.

Two ways to apply one:

- :meth:`Schedule.play` from outside the simulation: for each start or stop,
  ``sim.run(until=t)`` then act. The chaos runner and the stateful test
  machine use it, so a run is replayed exactly from its seed and schedule.
- :meth:`Schedule.run`, a coroutine to ``gather`` with a workload inside
  ``sim.run``. The same faults at the same times; only the order among events
  of one same instant may differ from ``play``. It also plays a schedule on a
  real cluster in real time (:mod:`faults.real`).

At one instant, stops come first, then starts and heals in step order, then
the stops of zero-length steps. Which nodes a step hits is chosen when it
starts, from the injector's stream (``sim.rng("nemesis")``): the seed and
the schedule together fix the run.

:class:`RandomNemesis` draws a schedule from a seed as Jepsen's combined
nemesis does (a fault of a random kind every ``interval`` on average, never
two of one kind at once), with per-seed parameters as TigerBeetle's
simulator has (loss rates, latencies, clock skews, mix weights).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import emulator as em
from emulator.rng import derive_seed
from faults.injector import Injector
from faults.nemesis import Nemesis, make_nemesis
from faults.record import COMMON_KINDS, KINDS
from faults.spec import ParamError, check_number

if TYPE_CHECKING:
    from faults.target import FaultTarget

__all__ = ["RandomNemesis", "Schedule", "Step", "random_schedule"]

HEAL = "heal"
#: The shortest mean time between a random nemesis's faults, in seconds.
MIN_INTERVAL = 0.001


@dataclass(frozen=True)
class Step:
    """Start nemesis ``kind`` with ``params`` at ``at`` seconds; stop it ``duration`` later (None: at a heal)."""

    at: float
    kind: str
    duration: float | None = None
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "at", check_number("at", self.at, low=0.0))
        if self.duration is not None:
            object.__setattr__(self, "duration", check_number("duration", self.duration, low=0.0))
        if not isinstance(self.params, dict):
            raise ParamError("params", self.params, "a dict of the nemesis's parameters")
        if not isinstance(self.kind, str):
            raise ParamError("kind", self.kind, "a fault kind such as 'partition', or 'heal'")
        if self.kind == HEAL:
            if self.duration is not None:  # named by the key that is wrong (it named kind)
                raise ParamError("duration", self.duration, "none on a heal step: it stops every fault at once")
            if self.params:
                raise ParamError(next(iter(self.params)), self.params, "no parameters on a heal step")
        else:
            self.nemesis()  # validates kind and params now, not when the step fires

    def nemesis(self) -> Nemesis:
        """A fresh nemesis for this step."""
        return make_nemesis(self.kind, **self.params)

    @property
    def end(self) -> float:
        """When the step stops (its start for a heal or an open-ended step)."""
        return self.at + (self.duration or 0.0)

    def to_dict(self) -> dict:
        """``{"at", "kind", "duration"?, **params}``, the form of a scenario's ``[[faults.steps]]``."""
        out: dict = {"at": self.at, "kind": self.kind}
        if self.duration is not None:
            out["duration"] = self.duration
        if self.kind != HEAL:
            out.update({k: v for k, v in self.nemesis().to_dict().items() if k != "kind"})
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Step:
        """The inverse of :meth:`to_dict`.

        Raises:
            ParamError: a missing ``at`` or ``kind``, or a bad value.
        """
        if not isinstance(data, Mapping):
            raise ParamError("step", data, "a table with at, kind, duration and the nemesis's parameters")
        for key in ("at", "kind"):
            if key not in data:
                raise ParamError(key, None, f"a step's {key} (every step needs at and kind)")
        params = {k: v for k, v in data.items() if k not in ("at", "kind", "duration")}
        return cls(data["at"], data["kind"], data.get("duration"), params)

    def describe(self) -> str:
        """``at 1.000 s  partition  for 2.000 s  shape=halves``."""
        length = (
            f"for {self.duration:.3f} s" if self.duration is not None else ("" if self.kind == HEAL else "until heal")
        )
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"at {self.at:8.3f} s  {self.kind:<9}  {length:<14}  {params}".rstrip()


class Schedule:
    """A timeline of fault steps, sorted by start time (ties keep their order)."""

    def __init__(self, steps: Iterable[Step] = ()):
        steps = list(steps)
        for step in steps:
            if not isinstance(step, Step):
                raise em.ConfigError(
                    f"a Schedule holds Step objects, got {step!r}; "
                    "write Step(at, kind, duration, params) or use Schedule.from_dict"
                )
        self.steps: list[Step] = sorted(steps, key=lambda s: s.at)

    def add(self, at: float, kind: str, duration: float | None = None, **params) -> Schedule:
        """Add a step; returns the schedule, so calls chain."""
        self.steps = sorted([*self.steps, Step(at, kind, duration, params)], key=lambda s: s.at)
        return self

    def shifted(self, offset: float) -> Schedule:
        """The same steps, ``offset`` seconds later."""
        return Schedule(Step(s.at + offset, s.kind, s.duration, dict(s.params)) for s in self.steps)

    def __add__(self, other: Schedule) -> Schedule:
        return Schedule([*self.steps, *other.steps])

    @property
    def end(self) -> float:
        """The time of the last start or stop (0 for an empty schedule)."""
        return max((s.end for s in self.steps), default=0.0)

    def kinds(self) -> dict[str, int]:
        """How many steps of each kind (heals included)."""
        counts: dict[str, int] = {}
        for step in self.steps:
            counts[step.kind] = counts.get(step.kind, 0) + 1
        return counts

    # -- applying -------------------------------------------------------------------------------

    def events(self) -> list[tuple[float, str, int]]:
        """``(time, "start"|"stop"|"heal", step index)`` in the order they are applied."""
        keyed = []
        for i, step in enumerate(self.steps):
            keyed.append(((step.at, 1, i), HEAL if step.kind == HEAL else "start"))
            if step.duration is not None:
                rank = 2 if step.duration == 0 else 0
                keyed.append(((step.at + step.duration, rank, i), "stop"))
        # One instant is one virtual nanosecond, as the loop counts: a stop that float sums put an ulp after a
        # start (a phase's last fault, cut short to its end, against the next phase's first) still goes first.
        keyed.sort(key=lambda entry: (round(entry[0][0] * 1e9), *entry[0][1:]))
        return [(key[0], action, key[2]) for key, action in keyed]

    def play(self, sim: em.Simulation, injector: Injector | None = None, until: float | None = None) -> Injector:
        """Apply the schedule from outside ``sim.run``: run to each event's time, then act.

        Times count from ``sim.now`` at the call. Traffic started before (a
        task on ``sim.loop``) keeps running between the events.

        Args:
            sim: the simulation, outside ``sim.run``.
            injector: the injector to apply the faults through (a new one on ``sim`` if None).
            until: keep running to this many seconds after the start.

        Returns:
            The injector, whose ``log`` lists the faults applied.
        """
        injector = injector if injector is not None else Injector(sim)
        base = sim.now
        started: dict[int, Nemesis] = {}
        for time, action, index in self.events():
            sim.run(until=base + time)
            self._act(injector, action, index, started)
        if until is not None:
            sim.run(until=base + until)
        return injector

    async def run(self, sim: FaultTarget, injector: Injector | None = None, until: float | None = None) -> Injector:
        """Apply the schedule from a coroutine inside ``sim.run``; returns the injector.

        Only ``asyncio.sleep`` and ``sim.now`` set the pace, so on a real loop
        with a real cluster (:mod:`faults.real`) it plays in real time.

        Args:
            sim: the simulation (or a real cluster) whose loop runs this coroutine.
            injector: the injector to apply the faults through (a new one on ``sim`` if None).
            until: keep going to this many seconds after the start.
        """
        injector = injector if injector is not None else Injector(sim)
        base = sim.now
        started: dict[int, Nemesis] = {}
        for time, action, index in self.events():
            await _sleep_until(sim, base + time)
            self._act(injector, action, index, started)
        if until is not None:
            await _sleep_until(sim, base + until)
        return injector

    def _act(self, injector: Injector, action: str, index: int, started: dict) -> None:
        if action == "start":
            started[index] = injector.start(self.steps[index].nemesis())
        elif action == "stop":
            injector.stop(started.pop(index))
        else:
            injector.heal()

    # -- plain data -------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """``{"steps": [step.to_dict(), ...]}``."""
        return {"steps": [step.to_dict() for step in self.steps]}

    @classmethod
    def from_dict(cls, data: Mapping | Sequence) -> Schedule:
        """A schedule from ``{"steps": [...]}`` or a list of step dicts.

        Raises:
            ParamError: naming the step (``steps[2].shape``) that is wrong.
        """
        steps = data.get("steps", []) if isinstance(data, Mapping) else data
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
            raise ParamError("steps", steps, "a list of steps: [[...steps]] tables, with double brackets")
        out = []
        for i, raw in enumerate(steps):
            try:
                out.append(Step.from_dict(raw))
            except ParamError as exc:
                raise exc.under(f"steps[{i}]") from None
        return cls(out)

    def __eq__(self, other):
        return isinstance(other, Schedule) and self.steps == other.steps

    def __len__(self):
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __repr__(self):
        return f"Schedule({self.steps!r})"

    def __str__(self):
        lines = [
            f"Schedule with {len(self.steps)} step{'s' if len(self.steps) != 1 else ''}" + (":" if self.steps else "")
        ]
        lines += ["  " + step.describe() for step in self.steps]
        return "\n".join(lines)


async def _sleep_until(sim: FaultTarget, when: float) -> None:
    delay = when - sim.now
    if delay > 0:
        await asyncio.sleep(delay)


# -- drawn from a seed ----------------------------------------------------------------------------


@dataclass
class RandomNemesis:
    """A random nemesis: a fault every ``interval`` seconds on average, of a kind drawn from ``kinds``.

    Args:
        kinds: the mix: kind names (equal weights) or ``{kind: weight}``.
        interval: mean seconds between fault starts; gaps are Uniform(0, 2 x mean).
        duration: ``(low, high)`` seconds each fault lasts (one drawn near the end is
            cut short, to stop at the schedule's length).
        shapes: partition shapes to draw from (``isolate-primary`` needs a primary).
        heal: end with a heal-everything step at the schedule's end.

    Per seed, the mix weights, the mean interval (x0.5..1.5), the loss,
    duplicate and reorder probabilities, the latency spike, the clock skews
    and the share of one-way partitions are drawn once, so seeds differ in
    character, not only in timing.
    """

    kinds: Sequence[str] | Mapping[str, float] = COMMON_KINDS
    interval: float = 5.0
    duration: tuple[float, float] = (1.0, 5.0)
    shapes: Sequence[str] = ("halves", "isolate-one", "majorities-ring", "bridge")
    heal: bool = False

    def __post_init__(self):
        if not isinstance(self.kinds, (Mapping, list, tuple)):
            raise ParamError("kinds", self.kinds, "a list of fault kinds or a table of kind = weight")
        kinds = list(self.kinds)
        for kind in kinds:
            if not isinstance(kind, str) or kind not in KINDS:
                raise ParamError("kinds", kind, "fault kinds from " + ", ".join(KINDS))
        weights = dict(self.kinds) if isinstance(self.kinds, Mapping) else {k: 1.0 for k in kinds}
        if not weights:
            raise ParamError("kinds", self.kinds, "at least one fault kind from " + ", ".join(KINDS))
        for kind, weight in weights.items():
            if kind not in KINDS:
                raise ParamError("kinds", kind, "fault kinds from " + ", ".join(KINDS))
            check_number(f"kinds.{kind}", weight, low=0.0, strict_low=True)
        self.weights = weights
        # A draw a nanosecond apart was a run that never ended (its loop steps by the interval): a millisecond is
        # already far below any network's timeouts.
        check_number("interval", self.interval, low=MIN_INTERVAL)
        if not isinstance(self.duration, (list, tuple)) or len(self.duration) != 2:
            raise ParamError("duration", self.duration, "[low, high] seconds")
        low = check_number("duration", self.duration[0], low=0.0)
        check_number("duration", self.duration[1], low=low)
        if isinstance(self.shapes, str) or not isinstance(self.shapes, (list, tuple)):
            raise ParamError("shapes", self.shapes, "a list of partition shapes")
        for shape in self.shapes:
            if not isinstance(shape, str):  # None would pass as the partition's default, halves
                raise ParamError("shapes", shape, "partition shape names such as 'halves'")
            make_nemesis("partition", shape=shape)
        if not isinstance(self.heal, bool):
            raise ParamError("heal", self.heal, "true or false")

    def schedule(self, seed: int, nodes: int | Sequence[str], length: float) -> Schedule:
        """Draw the schedule of ``seed`` for a cluster of ``nodes`` over ``length`` seconds."""
        count = nodes if isinstance(nodes, int) else len(nodes)
        rng = random.Random(derive_seed(seed, "schedule"))
        profile = _profile(rng, self.weights, self.interval)
        shapes = [s for s in self.shapes if count >= (3 if s in ("bridge", "majorities-ring") else 2)]
        steps, t = [], 0.0
        busy: dict[str, Step] = {}  # kind -> its latest step
        kinds = list(profile["weights"])
        while True:
            t += rng.uniform(0.0, 2.0 * profile["interval"])
            if t >= length:
                break
            at = round(t, 6)  # the step's own time decides, as events() orders the steps by it
            free = [k for k in kinds if _over(busy.get(k), at) and (k != "partition" or shapes)]
            if not free or count < 1:
                continue
            kind = rng.choices(free, weights=[profile["weights"][k] for k in free])[0]
            span = round(min(rng.uniform(*self.duration), length - t), 6)
            busy[kind] = Step(at, kind, span, _params(kind, rng, profile, count, shapes))
            steps.append(busy[kind])
        if self.heal:
            steps.append(Step(length, HEAL))
        return Schedule(steps)


def _over(step: Step | None, at: float) -> bool:
    """Whether ``step`` (if any) has stopped by a start at ``at``.

    A stop at that very instant comes first, unless the step lasts no time: a
    zero-length step stops after the starts of its instant (see ``events``).
    """
    return step is None or step.end < at or (step.end == at and step.duration != 0)


def _profile(rng: random.Random, weights: dict, interval: float) -> dict:
    """The per-seed character of a random nemesis."""
    return {
        "weights": {k: w * rng.uniform(0.5, 1.5) for k, w in weights.items()},
        "interval": interval * rng.uniform(0.5, 1.5),
        "oneway": rng.uniform(0.0, 0.5),
        "loss": round(rng.uniform(0.1, 0.9), 3),
        "duplicate": round(rng.uniform(0.1, 0.9), 3),
        "reorder": round(rng.uniform(0.3, 1.0), 3),
        "latency": round(rng.uniform(0.02, 0.3), 4),
        "offset": round(rng.choice((-1, 1)) * math.exp(rng.uniform(math.log(0.05), math.log(10.0))), 4),
        "drift": round(rng.choice((-1, 1)) * rng.uniform(0.01, 0.5), 4),
        "period": round(rng.uniform(0.02, 0.5), 4),
    }


def _params(kind: str, rng: random.Random, profile: dict, count: int, shapes: list[str]) -> dict[str, Any]:
    """One step's parameters, drawn within the seed's profile."""
    if kind == "partition":
        shape = rng.choice(shapes)
        oneway = shape != "majorities-ring" and rng.random() < profile["oneway"]
        return {"shape": shape, "direction": rng.choice(("out", "in")) if oneway else "both"}
    if kind in ("crash", "pause"):
        return {"count": rng.randint(1, max(1, (count - 1) // 2))}
    if kind == "clock":
        mode = rng.choice(("bump", "strobe", "drift"))
        extra = {"drift": profile["drift"]} if mode == "drift" else {"offset": profile["offset"]}
        if mode == "strobe":
            extra["period"] = profile["period"]
        return {"mode": mode, **extra, "count": rng.randint(1, count)}
    links = rng.choice(("all", "some"))
    if kind == "hostile":
        return {"links": links}  # the preset itself (faults.spec.HOSTILE), client links included
    if kind == "membership":
        return {}  # a spare joins, or a member leaves; undone at the stop
    value = {"exponential": profile["latency"]} if kind == "latency" else profile[kind]
    return {kind: value, "links": links}


def random_schedule(seed: int, nodes: int | Sequence[str], length: float, **options) -> Schedule:
    """``RandomNemesis(**options).schedule(seed, nodes, length)``."""
    return RandomNemesis(**options).schedule(seed, nodes, length)
