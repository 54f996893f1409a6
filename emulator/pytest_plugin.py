"""pytest plugin (entry point ``pytest11``): a ``sim`` fixture and seed replay.

- ``sim``: a fresh ``Simulation`` for the test, seeded by ``sim_seed``.
- ``sim_seed``: the seed; ``--sim-seed N`` fixes it, otherwise each test gets
  a fresh one. A failing test that used it prints the seed and the command
  that replays it. A seed is a whole number >= 0, as ``capsim``'s ``--seed``
  takes: ``--sim-seed -1`` is a usage error, and so is ``sim_seed(-1)``.
- ``async def`` tests that take ``sim`` run inside that simulation's loop, in
  virtual time. Tests marked for pytest-asyncio keep running on a real loop.
- pytest-asyncio's ``asyncio_default_fixture_loop_scope`` defaults to
  ``"function"`` (the default pytest-asyncio announces it will adopt), so a
  user's test run does not open with its deprecation warning about the
  option being unset; a value set in the user's configuration still wins.
"""

from __future__ import annotations

import argparse
import inspect
import random
import shlex
from collections.abc import Generator
from typing import cast

import pytest  # a core dependency (through pytest-asyncio)

from emulator.simulation import Simulation
from emulator.validate import is_int

_SEED = pytest.StashKey[int]()


#: pytest-asyncio's option, and the default it will adopt (it warns while the option is unset).
_LOOP_SCOPE = "asyncio_default_fixture_loop_scope"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("capsim", "capsim simulation")
    group.addoption(
        "--sim-seed",
        type=_seed,
        default=None,
        metavar="N",
        help="seed for the sim / sim_seed fixtures (default: a fresh seed per test, printed on failure)",
    )


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio's pytest_configure reads the option
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim_seed(n): run this test's simulation with seed n")
    try:
        unset = not config.getini(_LOOP_SCOPE)
    except ValueError:  # pytest-asyncio is not installed: nothing to default
        return
    if unset:
        config._inicache[_LOOP_SCOPE] = "function"  # pytest has no public setter for an ini value


#: What a seed is, in the words of capsim's --seed.
_SEED_WORDS = "a whole number >= 0 such as 1"


def _seed(text: str) -> int:
    """An argparse type: ``--sim-seed``'s value, a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a seed, {_SEED_WORDS}, got {text!r}")
    return value


@pytest.fixture
def sim_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's simulation: --sim-seed, else a ``sim_seed`` mark's, else a fresh one."""
    seed: int | None = request.config.getoption("sim_seed")
    marker = request.node.get_closest_marker("sim_seed")
    if seed is None and marker is not None:
        given = marker.args[0] if marker.args else None
        if not is_int(given, ge=0):
            pytest.fail(f"@pytest.mark.sim_seed({given!r}): a seed is {_SEED_WORDS}", pytrace=False)
        seed = given
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)  # outside any simulation: a fresh seed
    request.node.stash[_SEED] = seed
    return seed


@pytest.fixture
def sim(sim_seed: int) -> Generator[Simulation, None, None]:
    """A fresh Simulation seeded with ``sim_seed``."""
    simulation = Simulation(seed=sim_seed)
    yield simulation
    simulation.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests that take ``sim`` inside the simulation's loop."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function) or "sim" not in pyfuncitem.funcargs:
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    cast(Simulation, pyfuncitem.funcargs["sim"]).run(function(**kwargs))
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    seed = item.stash.get(_SEED, None)
    if seed is not None and report.failed:
        command = f"python -m pytest {shlex.quote(item.nodeid)} --sim-seed {seed}"
        report.sections.append(("capsim", f"simulation seed {seed}; replay with:\n  {command}"))
    return report
