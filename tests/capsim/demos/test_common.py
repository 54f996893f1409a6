"""The demos' shared machinery: open-loop load, phase figures, and printing a report."""

import asyncio
import io
import json
import math
import os
import subprocess
import sys

import pytest
from rich.console import Console

import emulator as em
from capsim.demos import DEMOS
from capsim.demos.common import Report, Table, emit, live, nearest_rank, phase, poisson_load
from capsim.report import Column, Run


class Slow(em.Node):
    """Answers after 50 ms; refuses keys below 0 (definite) and never answers key 0."""

    async def handle_read(self, msg):
        key = msg.body["key"]
        if key < 0:
            raise em.RPCError(11, "refused")
        if key == 0:
            return None
        await asyncio.sleep(0.05)
        return {"type": "read_ok", "value": key}


def load(rate=200.0, until=5.0, seed=1, keys=(1,)):
    sim = em.Simulation(seed=seed, latency=em.Constant(0.001))
    sim.add_node("n0", Slow)
    started = sim.run(poisson_load(sim, rate, until, lambda rng: ("read", rng.choice(keys), None, "n0"), timeout=0.2))
    return sim, started


def test_poisson_load_starts_about_rate_operations_a_second_on_as_few_clients_as_it_needs():
    """Arrivals do not wait for answers (open loop); idle clients are reused, so the pool is the concurrency."""
    sim, started = load()
    assert 850 <= started <= 1150 and len(sim.history.client_ops()) == 2 * started
    clients = {op["client"] for op in sim.history.client_ops()}
    assert 10 <= len(clients) <= 40  # about rate * 50 ms in flight at once, plus bursts
    assert sim.now >= 5.0


def test_poisson_load_is_seeded_and_refuses_a_rate_that_is_not_positive_and_finite():
    """The same seed gives the same history; a rate of 0, below, NaN or infinite is a ConfigError saying what a rate
    is (an infinite rate drew gaps of 0 and never returned)."""
    assert list(load(seed=3)[0].history) == list(load(seed=3)[0].history)
    for rate in (0, -1.0, math.nan, math.inf):  # an infinite rate started operations without end at one instant
        sim = em.Simulation()
        with pytest.raises(em.ConfigError, match="rate must be operations per second > 0 and finite"):
            sim.run(poisson_load(sim, rate, 1.0, lambda rng: ("read", 1, None, "n0")))


def test_phase_counts_every_outcome_and_times_errors_too():
    """ok, fail (definite) and info (timeouts) are counted apart; p99 includes the timeouts' wait."""
    sim, _ = load(rate=100.0, until=3.0, keys=(1, -1, 0))
    figures = phase(sim.history.completions(), 0.0, 3.0)
    assert figures["ok"] and figures["fail"] and figures["info"]
    assert figures["ok"] + figures["fail"] + figures["info"] == figures["ops"]
    assert figures["p99_ms"] >= 200 > figures["ok_p99_ms"] >= 50
    assert figures["error_rate"] == pytest.approx((figures["fail"] + figures["info"]) / figures["ops"])
    assert phase([], 0.0, 1.0)["p99_ms"] is None


def test_nearest_rank_is_the_smallest_value_covering_the_percentile():
    """p50 of 1..10 is 5, p99 is 10, and no values give None."""
    values = list(range(10, 0, -1))
    assert nearest_rank(values, 50) == 5 and nearest_rank(values, 99) == 10 and nearest_rank([], 50) is None


def report():
    runs = [Run("a", [], {"x": 1.5}), Run("b", [], {"x": 2.5})]
    return Report(
        "toy",
        "Toy",
        "An intro.",
        [Table("t", "The table", [Column("x", "x")], runs, "What it shows.")],
        {"seed": 1},
        {"answer": 42},
    )


def test_emit_prints_each_table_with_its_paragraph_the_same_every_time():
    """The printed account: the demo's name and meta, the table, its note; identical for the same report."""
    outputs = []
    for _ in range(2):
        buffer = io.StringIO()
        assert emit(report(), Console(file=buffer, width=100)) == 0
        outputs.append(buffer.getvalue())
    assert outputs[0] == outputs[1]
    assert "capsim demo: toy" in outputs[0] and "The table" in outputs[0] and "What it shows." in outputs[0]


def test_emit_json_prints_figures_and_table_rows(capsys):
    """--json: the demo's name, meta, figures, and each table's rows keyed by the table."""
    emit(report(), as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "demo": "toy",
        "meta": {"seed": 1},
        "figures": {"answer": 42},
        "tables": {"t": [{"config": "a", "x": 1.5}, {"config": "b", "x": 2.5}]},
    }


def test_live_is_the_running_node_of_its_class_and_names_a_crashed_or_wrong_one():
    """live() returns the node's live incarnation as its class; a crashed node or another class is a TypeError."""
    sim = em.Simulation(seed=1)
    sim.add_node("n0", Slow)
    assert live(sim, "n0", Slow) is sim.node("n0") and live(sim, "n0", em.Node) is sim.node("n0")

    class Other(em.Node):
        """A class n0 is not."""

    with pytest.raises(TypeError, match=r"n0 is <.*Slow.*>, not a live Other"):
        live(sim, "n0", Other)
    sim.crash("n0")
    with pytest.raises(TypeError, match="n0 is None, not a live Slow"):
        live(sim, "n0", Slow)
    sim.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEMOS))
def test_every_demo_prints_the_same_figures_for_a_seed_in_any_process(name):
    """`capsim demo NAME --quick --json --seed 7` in three processes (hash seeds 0, 1 and another; pure Python in
    one) prints the same bytes: tests/capsim/test_determinism.py held partition's and queue's output only."""
    outputs = []
    for hash_seed, pure in (("0", ""), ("1", "1"), ("3141592653", "")):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, CAPSIM_PURE_PYTHON=pure, COLUMNS="120")
        argv = [sys.executable, "-m", "capsim", "demo", name, "--quick", "--json", "--seed", "7"]
        outputs.append(subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=True).stdout)
    assert json.loads(outputs[0])["demo"] and outputs[0] == outputs[1] == outputs[2]
