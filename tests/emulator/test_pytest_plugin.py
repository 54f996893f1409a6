"""The pytest plugin: the sim fixture, seeds, replay commands, async tests in virtual time."""

import pytest

TEST_FILE = """
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
"""


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
    result.stdout.fnmatch_lines(
        ["*simulation seed *; replay with:*", "*python -m pytest test_suite.py::test_fails --sim-seed *"]
    )


def test_sim_seed_fixes_the_seed_and_the_draws(suite):
    """--sim-seed N gives every test seed N, so node draws repeat exactly."""
    first = suite.runpytest("-p", "no:cacheprovider", "-s", "-k", "rpc_inside", "--sim-seed", "1234")
    second = suite.runpytest("-p", "no:cacheprovider", "-s", "-k", "rpc_inside", "--sim-seed", "1234")
    draws = [line.split("DRAW ", 1)[1] for line in first.outlines if "DRAW " in line]
    assert draws and draws[0].startswith("1234 ")
    assert draws == [line.split("DRAW ", 1)[1] for line in second.outlines if "DRAW " in line]


USER_TESTS = """
import pytest
import emulator as em


class Echo(em.Node):
    async def handle_echo(self, msg):
        return {"type": "echo_ok"}


async def test_in_virtual_time(sim):
    sim.add_node("n1", Echo)
    client = sim.add_client("c1")
    assert (await client.rpc("n1", {"type": "echo"}))["type"] == "echo_ok"


@pytest.mark.asyncio
async def test_on_a_real_loop():
    assert True


def test_the_loop_scope(pytestconfig):
    print("loop scope:", pytestconfig.getini("asyncio_default_fixture_loop_scope"))
"""


def test_a_users_test_run_shows_no_loop_scope_warning(pytester):
    """Outside the repository, with no configuration: the tests pass and pytest-asyncio does not warn."""
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=3)
    output = result.stdout.str() + result.stderr.str()
    assert "loop scope: function" in output
    assert "is unset" not in output and "PytestDeprecationWarning" not in output and "warnings summary" not in output


def test_a_users_own_loop_scope_wins(pytester):
    """A loop scope in the user's configuration is the one used."""
    pytester.makepyfile(test_user=USER_TESTS)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = module\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=3)
    assert "loop scope: module" in result.stdout.str()


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_a_sim_seed_that_is_no_whole_number_from_zero_is_a_usage_error(suite, value):
    """--sim-seed takes what capsim's --seed takes, a whole number >= 0: -1 ran with seed -1 (capsim refuses it)."""
    result = suite.runpytest("-p", "no:cacheprovider", "--sim-seed", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*argument --sim-seed: expected a seed, a whole number >= 0 such as 1, got '{value}'"]
    )


def test_a_sim_seed_mark_that_is_no_whole_number_from_zero_fails_the_test_with_the_range(pytester):
    """@pytest.mark.sim_seed(-1) errors at setup, saying what a seed is; sim_seed(0) is seed 0."""
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.sim_seed(-1)\n"
        "def test_negative(sim):\n    pass\n"
        "@pytest.mark.sim_seed(True)\n"
        "def test_bool(sim):\n    pass\n"
        "@pytest.mark.sim_seed(0)\n"
        "def test_zero(sim):\n    assert sim.seed == 0\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*@pytest.mark.sim_seed(-1): a seed is a whole number >= 0 such as 1*"])
    result.stdout.fnmatch_lines(["*@pytest.mark.sim_seed(True): a seed is a whole number >= 0 such as 1*"])
