"""The example aiohttp service, unmodified, under capsim's chaos scenarios and checkers."""

from pathlib import Path

import pytest

from faults import load_scenario, run_chaos

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("seed", [1, 2])
def test_reading_at_the_primary_survives_hostile_links_partitions_crashes_pauses_and_clock_faults(seed):
    """http-kv-chaos.toml passes every check: linearizable, no lost writes, available again after the heal."""
    result = run_chaos(load_scenario(SCENARIOS / "http-kv-chaos.toml"), seed=seed)
    assert result.passed, [c.summary for c in result.failed]
    assert result.faults and result.counts["ok"] > 100
    assert result.counts["info"] > 0  # the faults did bite: some requests went unanswered


def test_reading_at_the_replicas_is_caught_not_linearizable():
    """http-kv-local-reads.toml: the linearizability checker finds the stale read, with its replay command."""
    result = run_chaos(load_scenario(SCENARIOS / "http-kv-local-reads.toml"), seed=1)
    assert [c.name for c in result.failed] == ["linearizable"]
    assert result.command() == "capsim chaos " + str(SCENARIOS / "http-kv-local-reads.toml") + " --seed 1"


@pytest.mark.slow
def test_reading_at_the_primary_survives_twenty_seeds():
    """The linearizable configuration passes seeds 1 to 20."""
    scenario = load_scenario(SCENARIOS / "http-kv-chaos.toml")
    failed = [seed for seed in range(1, 21) if not run_chaos(scenario, seed=seed).passed]
    assert failed == []
