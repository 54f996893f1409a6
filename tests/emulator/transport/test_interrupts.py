"""Tests of emulator/transport/interrupts.py: Ctrl-C and SIGTERM noted during a run, raised at safe points."""

import asyncio
import os
import signal
import threading

import pytest

from emulator.transport.interrupts import Interrupts


@pytest.fixture(autouse=True)
def _main_thread():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed from the main thread only")


@pytest.mark.parametrize("sig, word", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")])
def test_a_signal_is_noted_not_raised_then_check_raises_it(sig, word):
    """Inside the block a signal raises nothing where it lands; check() raises KeyboardInterrupt naming it."""
    with Interrupts() as interrupts:
        interrupts.check()  # nothing yet
        os.kill(os.getpid(), sig)
        landed = True  # reached: the signal did not raise here
        with pytest.raises(KeyboardInterrupt, match=word):
            interrupts.check()
    assert landed and interrupts.signum == sig


def test_the_previous_handlers_come_back_on_exit():
    """Leaving the block restores the SIGINT and SIGTERM handlers it found."""
    before = {sig: signal.getsignal(sig) for sig in Interrupts.SIGNALS}
    with Interrupts():
        assert all(signal.getsignal(sig) != before[sig] for sig in Interrupts.SIGNALS)
    assert {sig: signal.getsignal(sig) for sig in Interrupts.SIGNALS} == before


def test_a_second_signal_does_not_replace_the_first():
    """Ctrl-C then SIGTERM: the first is the one acted on (a second must not cut the teardown short)."""
    with Interrupts() as interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt, match="interrupted"):
            interrupts.check()


def test_a_watched_task_is_cancelled_by_a_signal_and_one_watched_late_at_once():
    """While a task is watched a signal cancels it on its loop; a task watched after the signal is cancelled now."""

    async def sleeper(interrupts, signal_first):
        if signal_first:
            os.kill(os.getpid(), signal.SIGTERM)
        interrupts.watch(asyncio.current_task())
        if not signal_first:
            asyncio.get_running_loop().call_later(0.01, os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.sleep(10)

    for signal_first in (False, True):
        with Interrupts() as interrupts:
            with pytest.raises(asyncio.CancelledError):
                asyncio.run(sleeper(interrupts, signal_first))
            interrupts.watch(None)
        assert interrupts.signum == signal.SIGTERM
