"""The pytest plugin: the sim fixture, seeds, replay commands, async tests in virtual time."""

import pytest

TEST_FILE = '''
import asyncio
import pytest
import emulator as em


class Echo(em.Node):
    async def handle_echo(self, msg):
        return {"type": "echo_ok", "draw": self.rng.random()}


async def test_runs_in_virtual_time(sim):
    await asyncio.sleep(3600)
    assert asyncio.get_running_loop() is sim.loop and sim.now == 3600.0


async def test_rpc_inside(sim):
    sim.add_node("n0", Echo)
    client = sim.add_client("c0")
    reply = await client.rpc("n0", {"type": "echo"})
    print("DRAW", sim.seed, reply["draw"])


def test_sync_test_can_use_sim(sim, sim_seed):
    assert sim.seed == sim_seed
    sim.run(until=5)
    assert sim.now == 5


@pytest.mark.asyncio
async def test_pytest_asyncio_still_uses_a_real_loop():
    assert not hasattr(asyncio.get_running_loop(), "time_ns")


def test_fails(sim):
    assert sim.seed < 0, "deliberate failure"
'''


@pytest.fixture
def suite(pytester):
    pytester.makepyfile(test_suite=TEST_FILE)
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_async_tests_run_in_the_simulation_and_real_loop_tests_still_work(suite):
    """sim tests run in virtual time; pytest-asyncio tests keep a real loop; only the deliberate one fails."""
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)


def test_a_failing_test_prints_its_seed_and_the_replay_command(suite):
    """The failure report names the seed and the exact pytest command that replays it."""
    result = suite.runpytest("-p", "no:cacheprovider", "-k", "fails")
    result.stdout.fnmatch_lines(["*simulation seed *; replay with:*", "*python -m pytest test_suite.py::test_fails --sim-seed *"])


def test_sim_seed_fixes_the_seed_and_the_draws(suite):
    """--sim-seed N gives every test seed N, so node draws repeat exactly."""
    first = suite.runpytest("-p", "no:cacheprovider", "-s", "-k", "rpc_inside", "--sim-seed", "1234")
    second = suite.runpytest("-p", "no:cacheprovider", "-s", "-k", "rpc_inside", "--sim-seed", "1234")
    draws = [line.split("DRAW ", 1)[1] for line in first.outlines if "DRAW " in line]
    assert draws and draws[0].startswith("1234 ")
    assert draws == [line.split("DRAW ", 1)[1] for line in second.outlines if "DRAW " in line]
