"""Hypothesis strategies for seeds and fault schedules.

    from hypothesis import given
    from faults import load_scenario, replay
    from faults.strategies import schedules, seeds, simulation_settings

    # The cluster, workload and checks to test: a scenario file (its own faults are
    # replaced by the drawn schedule), or faults.Scenario(Cluster(...), Workload(...), ...).
    SCENARIO = load_scenario("my-store.toml")

    @simulation_settings(max_examples=20)
    @given(seed=seeds(), schedule=schedules(5, 10.0, kinds=("partition", "crash")))
    def test_my_store_stays_linearizable(seed, schedule):
        result = replay(SCENARIO, seed, schedule)
        assert result.verdict != "FAILED", [c.summary for c in result.failed]

``verdict`` rather than ``passed``: a schedule may leave a check nothing to
judge (a crash of the only server for the whole run: no operation
succeeds), which is UNKNOWN, as Jepsen's ``:unknown``, and no counterexample.

On failure Hypothesis prints the seed and the schedule as Python
(``Schedule([Step(at=0.0, kind='partition', duration=0.0, params={...})])``),
which ``replay`` runs again, bit for bit. To apply a drawn schedule to a
``Simulation`` you built yourself, call ``schedule.play(sim, until=...)``
from outside ``sim.run`` (or ``await schedule.run(sim)`` from inside it).

The strategies shrink toward simple failures: a schedule is a list of steps,
so it shrinks toward *fewer* steps; times and durations are whole
milliseconds drawn from 0, so they shrink toward *earlier* and *shorter*;
kinds and shapes shrink toward the first one listed, counts toward one node,
magnitudes toward zero. Which nodes a step hits is chosen when it runs, from
the seed. For a stateful test whose rules partition, crash and heal, see
:mod:`faults.machine`.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from faults.record import COMMON_KINDS, KINDS
from faults.scenario import Network
from faults.schedule import Schedule, Step

__all__ = ["hostile_networks", "hostile_settings", "millis", "schedules", "seeds", "simulation_settings", "steps"]

RANDOM_SHAPES = ("halves", "isolate-one", "majorities-ring", "bridge")


def simulation_settings(**overrides) -> settings:
    """Hypothesis settings for tests that run simulations: use as ``@simulation_settings(max_examples=20)``.

    No deadline (a run's wall time varies with its schedule), no ``too_slow``
    health check, and no *explain* phase: its line tracer makes a simulation
    several times slower while it shrinks (7x for a chaos run, README).
    """
    options = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow],
        "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        **overrides,
    }
    return settings(**options)


def seeds() -> st.SearchStrategy[int]:
    """Root seeds for a simulation; shrink toward 0."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def millis(high: float, low: float = 0.0) -> st.SearchStrategy[float]:
    """Seconds in ``[low, high]`` in whole milliseconds; shrinks toward ``low``."""
    return st.integers(min_value=round(low * 1000), max_value=round(high * 1000)).map(lambda ms: ms / 1000)


def hostile_settings() -> st.SearchStrategy[dict]:
    """Link settings of a hostile network: duplication, reordering, loss and heavy-tailed latency, all non-zero.

    Around :data:`faults.spec.HOSTILE`: duplicate and reorder from 1% to 50%,
    loss up to 10%, latency Pareto with a 0.5 to 5 ms minimum, alpha from 1.1
    to 3 and a cap from 50 ms to 1 s. Each shrinks toward its low end.
    """
    percent = st.integers
    return st.fixed_dictionaries(
        {
            "latency": st.tuples(percent(5, 50), percent(11, 30), percent(5, 100)).map(
                lambda t: {"pareto": [t[0] / 10000, t[1] / 10, t[2] / 100]}
            ),
            "loss": percent(0, 10).map(lambda p: p / 100),
            "duplicate": percent(1, 50).map(lambda p: p / 100),
            "reorder": percent(1, 50).map(lambda p: p / 100),
        }
    )


def hostile_networks() -> st.SearchStrategy:
    """``faults.Network`` link defaults drawn by :func:`hostile_settings`.

    Every link of a run is hostile from the start.
    """
    return hostile_settings().map(lambda found: Network(**found))


def _count(nodes: int | Sequence[str]) -> int:
    return nodes if isinstance(nodes, int) else len(nodes)


def _params(kind: str, n: int, shapes: Sequence[str]) -> st.SearchStrategy[dict]:
    """Parameters of one step of ``kind``, simplest first."""
    if kind == "partition":
        fitting = [s for s in shapes if n >= (3 if s in ("bridge", "majorities-ring") else 2)]
        if not fitting:
            return st.nothing()
        directions = st.sampled_from(("both", "out", "in"))
        return st.one_of(
            [
                st.fixed_dictionaries(
                    {
                        "shape": st.just(shape),
                        "direction": st.just("both") if shape == "majorities-ring" else directions,
                    }
                )
                for shape in fitting
            ]
        )
    if kind in ("crash", "pause"):
        return st.fixed_dictionaries({"count": st.integers(1, max(1, (n - 1) // 2))})
    if kind == "clock":
        return st.one_of(
            st.fixed_dictionaries({"mode": st.just("bump"), "offset": millis(10.0, -10.0), "count": st.integers(1, n)}),
            st.fixed_dictionaries(
                {
                    "mode": st.just("strobe"),
                    "offset": millis(10.0, -10.0),
                    "period": millis(0.5, 0.01),
                    "count": st.integers(1, n),
                }
            ),
            st.fixed_dictionaries({"mode": st.just("drift"), "drift": millis(0.5, -0.5), "count": st.integers(1, n)}),
        )
    links = st.sampled_from(("all", "some"))
    if kind == "membership":
        return st.just({})
    if kind == "hostile":
        return hostile_settings().map(lambda found: {**found, "links": "all"}) | st.fixed_dictionaries({"links": links})
    if kind == "latency":
        return st.fixed_dictionaries({"latency": millis(0.5, 0.001).map(lambda m: {"exponential": m}), "links": links})
    return st.fixed_dictionaries({kind: st.integers(0, 100).map(lambda p: p / 100), "links": links})


def steps(
    nodes: int | Sequence[str],
    duration: float,
    kinds: Sequence[str] = COMMON_KINDS,
    shapes: Sequence[str] = RANDOM_SHAPES,
) -> st.SearchStrategy[Step]:
    """One step within ``[0, duration]`` of a kind from ``kinds``, for a cluster of ``nodes``."""
    n = _count(nodes)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty list from {', '.join(KINDS)}, got {list(kinds)!r}")

    params = {kind: _params(kind, n, shapes) for kind in kinds}  # built once: drawing is then cheap
    kind_strategy, at_strategy = st.sampled_from(list(kinds)), millis(duration)

    @st.composite
    def step(draw) -> Step:
        kind = draw(kind_strategy)
        at = draw(at_strategy)
        length = min(draw(at_strategy), round(duration - at, 3))  # ends by ``duration``
        return Step(at, kind, length, draw(params[kind]))

    return step()


def schedules(
    nodes: int | Sequence[str],
    duration: float,
    kinds: Sequence[str] = COMMON_KINDS,
    max_steps: int = 6,
    shapes: Sequence[str] = RANDOM_SHAPES,
    heal: bool = False,
) -> st.SearchStrategy[Schedule]:
    """Schedules of at most ``max_steps`` faults, each within ``[0, duration]``.

    Args:
        nodes: the number of servers (or their names): bounds crash counts and shapes.
        duration: seconds the faults may span.
        kinds: the fault kinds to draw from (see ``faults.KINDS``; by default every kind but membership).
        max_steps: the most steps in one schedule.
        shapes: partition shapes to draw from.
        heal: end every schedule with a heal-everything step at ``duration``.
    """
    drawn = st.lists(steps(nodes, duration, kinds, shapes), max_size=max_steps)
    if heal:
        return drawn.map(lambda found: Schedule([*found, Step(duration, "heal")]))
    return drawn.map(Schedule)
