"""CPython's own asyncio tests pass on VirtualLoop (scripts/asyncio_conformance.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import asyncio_conformance as conformance

try:
    import test.test_asyncio  # noqa: F401

    HAVE_SUITE = True
except ImportError:  # some distributions ship Python without its test package
    HAVE_SUITE = False

needs_suite = pytest.mark.skipif(not HAVE_SUITE, reason="this Python ships no test.test_asyncio")

#: Small modules that run on VirtualLoop throughout and cover run_until_complete, futures, locks, timeouts.
FAST = ["test_futures", "test_futures2", "test_locks", "test_queues", "test_timeouts", "test_waitfor"]


def _check(result: dict) -> None:
    assert not result.get("crashed"), result.get("crashed")
    assert result["failed"] == [], [f["test"] + "\n" + f["error"] for f in result["failed"]]
    assert result["run"] > 0


@needs_suite
@pytest.mark.parametrize("module", FAST)
def test_fast_modules_pass_on_the_virtual_loop(module):
    """Every test of these modules passes with each new event loop a VirtualLoop."""
    result = conformance.run_module(module)
    _check(result)
    assert result["loops"] > 0  # the tests really ran on VirtualLoops


@needs_suite
@pytest.mark.slow
def test_every_module_it_can_run_passes():
    """The whole suite, less modules that need real I/O, processes or threads: nothing fails but KNOWN."""
    for module in conformance.modules():
        if conformance.REFUSED_MODULES.get(module) is None:
            _check(conformance.run_module(module))


def test_a_python_without_the_suite_is_told_so(monkeypatch, capsys):
    """Without test.test_asyncio the script says what to install and exits 2."""

    def missing():
        raise ImportError("no test package")

    monkeypatch.setattr(conformance, "modules", missing)
    assert conformance.main([]) == 2
    assert "ships no test.test_asyncio" in capsys.readouterr().err


@needs_suite
@pytest.mark.slow
@pytest.mark.skipif(sys.version_info[:3] != (3, 11, 7), reason="the README's counts are of Python 3.11.7's test_tasks")
def test_test_tasks_counts_are_the_readmes():
    """README: '906 of test_tasks' 913: 5 are refused (they use threads), 1 is skipped, 1 patches BaseEventLoop'."""
    import re

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    said = re.search(
        r"On Python 3\.11\.7 .*? and (\d+) of `test_tasks`' (\d+): "
        r"(\d+) are refused .*?, (\d+) is skipped, (\d+) patches",
        readme,
    )
    passed, run, refused, skipped, known = (int(x) for x in said.groups())
    result = conformance.run_module("test_tasks")
    _check(result)
    assert (result["run"], len(result["refused"]), result["skipped"], len(result["known"])) == (
        run,
        refused,
        skipped,
        known,
    )
    assert all("NotAllowed" in r["error"] and "thread" in r["error"].lower() for r in result["refused"])
    assert run - refused - skipped - known == passed
