"""Every error capsim raises, under one base class.

::

    EmulatorError
    ├── Timeout          an rpc got no answer in time: indefinite, it may have happened
    ├── RPCError         the peer answered with an error (code, text); .definite says
    │                    whether the operation surely did not happen
    ├── Deadlock         the run can never make progress, yet something still waits
    ├── Unfinished       sim.run(coro, until=T) reached T before the coroutine ended
    ├── NotAllowed       threads or real I/O inside a simulation (they break determinism)
    ├── ConfigError      (also ValueError) a misuse: unknown node, bad probability, ...
    └── MessageError     (also TypeError) a body that is not JSON-compatible or has no "type"

Error codes follow Maelstrom's registry (https://github.com/jepsen-io/maelstrom,
doc/protocol.md), which marks each code definite or not: a definite error
means the operation did not take place, so a history records it as ``fail``;
an indefinite one is recorded as ``info``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ABORT",
    "CRASH",
    "ERROR_CODES",
    "KEY_ALREADY_EXISTS",
    "KEY_DOES_NOT_EXIST",
    "MALFORMED_REQUEST",
    "NODE_NOT_FOUND",
    "NOT_SUPPORTED",
    "PRECONDITION_FAILED",
    "TEMPORARILY_UNAVAILABLE",
    "TIMEOUT",
    "TXN_CONFLICT",
    "ConfigError",
    "Deadlock",
    "EmulatorError",
    "MessageError",
    "NotAllowed",
    "RPCError",
    "Timeout",
    "Unfinished",
]

TIMEOUT = 0
NODE_NOT_FOUND = 1
NOT_SUPPORTED = 10
TEMPORARILY_UNAVAILABLE = 11
MALFORMED_REQUEST = 12
CRASH = 13
ABORT = 14
KEY_DOES_NOT_EXIST = 20
KEY_ALREADY_EXISTS = 21
PRECONDITION_FAILED = 22
TXN_CONFLICT = 30

#: code -> (name, definite?) as in Maelstrom's error registry.
ERROR_CODES: dict[int, tuple[str, bool]] = {
    TIMEOUT: ("timeout", False),
    NODE_NOT_FOUND: ("node-not-found", True),
    NOT_SUPPORTED: ("not-supported", True),
    TEMPORARILY_UNAVAILABLE: ("temporarily-unavailable", True),
    MALFORMED_REQUEST: ("malformed-request", True),
    CRASH: ("crash", False),
    ABORT: ("abort", True),
    KEY_DOES_NOT_EXIST: ("key-does-not-exist", True),
    KEY_ALREADY_EXISTS: ("key-already-exists", True),
    PRECONDITION_FAILED: ("precondition-failed", True),
    TXN_CONFLICT: ("txn-conflict", True),
}


class EmulatorError(Exception):
    """Base class of every error capsim raises."""


class Timeout(EmulatorError):
    """An rpc got no reply within its timeout.

    Indefinite: the request may have been delivered and acted on, or not; a
    history records the operation as ``info``.
    """

    code = TIMEOUT
    definite = False

    @property
    def text(self) -> str:
        return str(self)

    def to_body(self) -> dict[str, Any]:
        """A handler that lets a Timeout escape answers with error 0 (indefinite)."""
        return {"type": "error", "code": TIMEOUT, "text": str(self)}


class RPCError(EmulatorError):
    """The peer replied with an error body ``{"type": "error", "code", "text"}``.

    Raise it from a handler to answer with that error; catch it around an rpc.

    Args:
        code: a Maelstrom error code (see ``ERROR_CODES``); other codes are
            allowed and treated as indefinite unless ``definite`` is given.
        text: a human-readable explanation.
        definite: override the registry's verdict for this code.
    """

    def __init__(self, code: int, text: str = "", definite: bool | None = None):
        name, registry_definite = ERROR_CODES.get(code, ("error", False))
        self.code = code
        self.text = text or name
        self.definite = registry_definite if definite is None else definite
        super().__init__(f"error {code} ({name}): {self.text}")

    def to_body(self) -> dict[str, Any]:
        """The error reply body that carries this error over the network.

        A ``definite`` that overrides the registry's verdict for the code travels with it (``"definite"``), so
        the caller records what the handler said: ``RPCError(11, definite=False)`` is ``info`` there, not ``fail``.
        """
        body: dict[str, Any] = {"type": "error", "code": self.code, "text": self.text}
        if self.definite != ERROR_CODES.get(self.code, ("error", False))[1]:
            body["definite"] = self.definite
        return body


class Deadlock(EmulatorError):
    """Nothing is scheduled and nothing can ever wake, but tasks still wait.

    The message names each waiting task, where it is suspended and on what.
    """


class Unfinished(EmulatorError):
    """``sim.run(coro, until=T)`` reached ``T`` before the coroutine finished."""


class NotAllowed(EmulatorError, RuntimeError):
    """Threads, executors, ``time.sleep`` or real I/O were used inside a simulation's run.

    They run outside virtual time, so a run could not be replayed from its seed
    (``emulator.confine`` lists the calls refused in every simulation).
    """


class ConfigError(EmulatorError, ValueError):
    """A misuse of the API: the message says what to do instead."""


class MessageError(EmulatorError, TypeError):
    """A message body that cannot travel: not JSON-compatible, or no ``"type"``."""
