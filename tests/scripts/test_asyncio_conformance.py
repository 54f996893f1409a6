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
