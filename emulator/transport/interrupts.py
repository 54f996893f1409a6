"""Ctrl-C and SIGTERM while node processes run: noted, then acted on at safe points.

A run that starts node processes must stop every one of them, whatever
happens. A KeyboardInterrupt raised wherever the signal lands can be lost
(Python drops it in a weakref callback or a ``__del__``) or land between a
process's start and the line that records its pid. ``Interrupts`` takes
SIGINT and SIGTERM over for the length of the run instead: its handler
notes the signal; ``check()`` raises it at safe points (between two spawns,
between two health checks), and while the run's task is ``watch``-ed the
handler cancels that task on its loop. A second signal cannot cut the
teardown short.

    with Interrupts() as interrupts:
        launch(procs, env, abort=interrupts.check)
        ...

Use it in the main thread (only there can Python install signal handlers).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["Interrupts"]

#: What ``signal.signal`` returns and takes: a handler, SIG_DFL / SIG_IGN, or None (set outside Python).
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class Interrupts:
    """SIGINT and SIGTERM for the length of a run: noted, never raised at an arbitrary point."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._task: asyncio.Task[Any] | None = None
        self._previous: dict[signal.Signals, _Handler] = {}

    def __enter__(self) -> Interrupts:
        self._previous = {sig: signal.signal(sig, self._note) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            return  # the first one is being acted on; a second must not cut the teardown short
        self.signum = signum
        task = self._task
        if task is not None and not task.done():
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # its loop has just closed: check() raises it instead
                pass

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal has come.

        Raises:
            KeyboardInterrupt: "interrupted" for SIGINT, "terminated" for SIGTERM.
        """
        if self.signum is not None:
            raise KeyboardInterrupt("terminated" if self.signum == signal.SIGTERM else "interrupted")

    def watch(self, task: asyncio.Task[Any] | None) -> None:
        """Cancel ``task`` on a signal (None: stop watching); cancel it now if one came already."""
        self._task = task
        if task is not None and self.signum is not None:
            task.cancel()
