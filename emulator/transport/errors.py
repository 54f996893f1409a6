"""Errors of the real transport, under ``emulator.EmulatorError``.

::

    EmulatorError
    └── TransportError      something about real processes or sockets went wrong
        ├── WireError       (also ValueError) a request the node refuses; .status is
        │                   the HTTP status it answers with (400, 404, 413, ...)
        ├── ControlError    a control call failed: refused (4xx) or the node is unreachable
        └── LaunchError     a node process did not start or did not become healthy
"""

from __future__ import annotations

from emulator.errors import EmulatorError

__all__ = ["ControlError", "LaunchError", "TransportError", "WireError"]


class TransportError(EmulatorError):
    """Base class of the real transport's errors."""


class WireError(TransportError, ValueError):
    """A request body the node refuses, with the HTTP status it answers.

    Args:
        status: 400 malformed, 404 not for this node, 401/403 bad token, 408 body too slow, 413 too large.
        text: what was wrong and what to send instead.
    """

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


class ControlError(TransportError):
    """A control call failed.

    Attributes:
        status: the HTTP status the node answered, or None if it could not be reached.
    """

    def __init__(self, text: str, status: int | None = None):
        super().__init__(text)
        self.status = status


class LaunchError(TransportError):
    """A node process exited or stayed unhealthy while a cluster was starting.

    Attributes:
        name: the node that failed.
        returncode: its exit status if it exited, else None.
    """

    def __init__(self, text: str, name: str | None = None, returncode: int | None = None):
        super().__init__(text)
        self.name = name
        self.returncode = returncode
