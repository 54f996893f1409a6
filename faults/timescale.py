"""Time scaling: the same scenario, every duration multiplied by one factor.

A scenario written for virtual time (30 s of traffic, partitions of 1 to 4 s)
takes that long on a real cluster. ``scale_scenario(scenario, 0.2)`` and
``scale_schedule(schedule, 0.2)`` compress it five times, keeping its shape.

Scaled by the factor: the scenario's timeline and its artificial delays.
Phase and workload durations; client timeouts; the think time (so ``rate``
is divided by it); step times and fault durations; the clock strobe period,
a flapping partition's ``flap`` range and a membership change's ``retry``
interval; latency distributions (the network's and latency and hostile
faults', so a spike times out the same share of operations; a lognormal
keeps its sigma); each of them when left at its default too; and
``convergence.within``, a time after a heal.

Kept as they are:

- ``latency`` check bounds (p50, p99, ...): they bound what a client waits
  for one reply, and a real round trip (HTTP on loopback, processes sharing
  the CPUs with five times the traffic) does not shrink with the scale. A
  scaled bound would fail for the machine, not for the protocol; the bound
  as written is the promise the scenario makes to its clients.
- probabilities (loss, duplicate, reorder) and counts (clients, nodes,
  keys, how many nodes crash).
- clock offsets and drift: they matter against the protocol's own timers,
  and those live in the protocol's ``config``, which a scenario cannot scale.
- the linearizability checker's budget (wall-clock time to think).

So at factor 0.2 a scenario offers five times the operations per second,
for a fifth of the time: about the same number of operations, the same
faults in the same order. What does not scale is the machine: loopback
round trips, process start-up (a restart takes a few hundred ms however
short the crash) and the protocol's timeouts. Pick a factor that keeps
client timeouts well above those.
"""

from __future__ import annotations

import dataclasses
import math

from faults.nemesis import make_nemesis
from faults.scenario import Network, Phase, Scenario
from faults.schedule import HEAL, Schedule, Step
from faults.spec import check_number, distribution, distribution_spec

__all__ = ["check_factor", "scale_distribution", "scale_scenario", "scale_schedule"]

_CHECK_SECONDS = {"convergence": ("within",)}  # latency bounds stay: see the module doc


def check_factor(factor) -> float:
    """``factor`` as a float > 0.

    Raises:
        ParamError: not a positive finite number.
    """
    return check_number("time_scale", factor, low=0.0, strict_low=True)


def scale_distribution(spec, factor: float):
    """A latency (a Distribution or its spec) with every duration times ``factor``.

    A lognormal keeps its sigma, a pareto its alpha.
    """
    plain = distribution_spec(distribution(spec))
    if not isinstance(plain, dict):
        return distribution(plain * factor)
    ((kind, args),) = plain.items()
    if kind == "uniform":
        return distribution({kind: [args[0] * factor, args[1] * factor]})
    if kind in ("lognormal", "pareto"):  # the median, scale and cap are durations; sigma and alpha are shapes
        return distribution({kind: [args[0] * factor, args[1], *(cap * factor for cap in args[2:])]})
    return distribution({kind: args * factor})


def scale_schedule(schedule: Schedule, factor: float) -> Schedule:
    """Every step's time, duration and time-like parameters times ``factor``.

    Starts and stops that coincide (a fault cut short at its phase's end, a
    heal there) still coincide, so they apply in the same order at any factor.
    """
    factor = check_factor(factor)
    steps = []
    for step in schedule:
        at = step.at * factor
        duration = None if step.duration is None else _span(at, (step.at + step.duration) * factor)
        steps.append(Step(at, step.kind, duration, _scaled_params(step.kind, step.params, factor)))
    return Schedule(steps)


def _span(start: float, end: float) -> float:
    """A duration such that ``start + duration == end`` exactly, as ``Schedule.events`` adds them."""
    span = end - start
    for _ in range(4):  # rounding is off by an ulp or two at most
        total = start + span
        if total == end:
            break
        span = math.nextafter(span, math.inf if total < end else -math.inf)
    return max(span, 0.0)


def _scaled_params(kind: str, params: dict, factor: float) -> dict:
    """The step's parameters with its time-like ones scaled, those left at their defaults included."""
    out = dict(params)
    if kind == HEAL:
        return out
    full = make_nemesis(kind, **params).params  # validated, with the defaults a step leaves out
    if kind in ("latency", "hostile"):
        out["latency"] = distribution_spec(scale_distribution(full["latency"], factor))
    if kind == "clock" and (full["mode"] == "strobe" or "period" in out):
        out["period"] = full["period"] * factor
    if kind == "partition" and full["flap"] is not None:
        out["flap"] = [bound * factor for bound in full["flap"]]
    if kind == "membership":
        out["retry"] = full["retry"] * factor
    return out


def scale_scenario(scenario: Scenario, factor: float) -> Scenario:
    """A copy of ``scenario`` with its durations, timeouts, latencies and time bounds times ``factor``.

    The phases keep their names and checks but lose their faults: scale the
    schedule drawn from the original with :func:`scale_schedule`, so a seed
    gives the same faults at any factor.
    """
    factor = check_factor(factor)
    work = scenario.workload
    workload = dataclasses.replace(
        work,
        rate=work.rate / factor,
        timeout=work.timeout * factor,
        duration=None if work.duration is None else work.duration * factor,
    )
    network = Network(
        scale_distribution(scenario.network.latency, factor),
        scenario.network.loss,
        scenario.network.duplicate,
        scenario.network.reorder,
        scenario.network.fifo,
    )
    phases = [
        Phase(p.name, p.duration * factor, None, p.heal, _scaled_checks(p.checks, factor)) for p in scenario.phases
    ]
    return dataclasses.replace(
        scenario, workload=workload, network=network, phases=phases, checks=_scaled_checks(scenario.checks, factor)
    )


def _scaled_checks(checks: dict, factor: float) -> dict:
    out = {}
    for name, params in checks.items():
        params = dict(params)
        for key in _CHECK_SECONDS.get(name, ()):
            if params.get(key) is not None:
                params[key] = params[key] * factor
        out[name] = params
    return out
