"""The process-wide sources a program reads besides the network, made part of the simulation.

Unmodified code reads the clock (``time.time``), draws random numbers
(``random.random``, ``uuid.uuid4``), asks its host name and resolves names
with the ``socket`` module, and may start threads. Inside a simulation with
hosts, while its loop runs, these answer from the simulation, as madsim
does for Rust:

=============================================  ===========================================================
``time.time``, ``time.time_ns``                the host's clock (``sim.skew`` included) from 2025-01-01
                                               00:00:00 UTC at virtual time 0
``time.monotonic``, ``time.perf_counter``      virtual time (never skewed: a monotonic clock does not step)
(and their ``_ns`` forms)
``time.sleep``                                 refused: it would block virtual time (use ``asyncio.sleep``)
``random.random``, ``random.choice``, ...      the host's own stream, derived from the seed
``os.urandom``, ``uuid.uuid4``,                the host's own stream of bytes
``random.SystemRandom``, ``secrets``
``socket.gethostname``                         the host's name
``socket.getaddrinfo``, ``gethostbyname``      the simulation's hosts (a name outside it: ``NotAllowed``)
``socket.socket.connect`` on a real socket     refused (``NotAllowed``)
``threading.Thread.start``                     refused (``NotAllowed``)
=============================================  ===========================================================

Outside a host (a workload passed to ``sim.run``) the clock is the true
virtual time and the stream the simulation's own. Anywhere else, in this
thread when no such loop runs and in every other thread, they are the real
ones: the patch checks the running loop on each call.

What escapes: names bound before the simulation started (``from time
import monotonic``, as aiohttp's connector does for its keep-alive
bookkeeping, ``from random import random``), ``datetime.now()`` (read by C
code from the system clock), and the order in which a ``set`` of strings
iterates, which ``PYTHONHASHSEED`` decides.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from asyncio import events

from emulator.errors import NotAllowed
from emulator.resolver import getaddrinfo as _sim_getaddrinfo

__all__ = ["EPOCH", "Sandbox", "install"]

#: What ``time.time()`` reads at virtual time 0: 2025-01-01 00:00:00 UTC.  # wall-clock ok: documents what hosts see, reads no clock
EPOCH = 1_735_689_600

_REAL = {
    "time": time.time,
    "time_ns": time.time_ns,
    "monotonic": time.monotonic,
    "monotonic_ns": time.monotonic_ns,
    "perf_counter": time.perf_counter,
    "perf_counter_ns": time.perf_counter_ns,
    "sleep": time.sleep,
    "urandom": os.urandom,
    "gethostname": socket.gethostname,
    "getaddrinfo": socket.getaddrinfo,
    "gethostbyname": socket.gethostbyname,
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "start": threading.Thread.start,
}
_RANDOM_FUNCTIONS = (
    "random",
    "uniform",
    "triangular",
    "randint",
    "choice",
    "randrange",
    "sample",
    "shuffle",
    "choices",
    "normalvariate",
    "lognormvariate",
    "expovariate",
    "vonmisesvariate",
    "gammavariate",
    "gauss",
    "betavariate",
    "paretovariate",
    "weibullvariate",
    "getrandbits",
    "randbytes",
)
_installed = False


class Sandbox:
    """The simulation's answers for one loop (``loop._sandbox``): clocks, streams, names."""

    def __init__(self, sim, current):
        self._sim = sim
        self._life = current  # () -> the running host incarnation, or None
        self._streams: dict[str, random.Random] = {}

    def wall(self) -> float:
        life = self._life()
        return EPOCH + (life.clock.now() if life is not None else self._sim.loop.time())

    def virtual(self) -> float:
        return self._sim.loop.time()

    def stream(self, kind: str) -> random.Random:
        life = self._life()
        name = f"host:{life.name}:{kind}" if life is not None else f"sandbox:{kind}"
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = self._sim.streams(name)
        return stream

    def hostname(self) -> str:
        life = self._life()
        return life.name if life is not None else "localhost"


def _active() -> Sandbox | None:
    loop = events._get_running_loop()
    return getattr(loop, "_sandbox", None) if loop is not None else None


def _refused(what: str, instead: str) -> NotAllowed:
    return NotAllowed(f"{what} inside a simulation would run outside virtual time and could not be replayed: {instead}")


def _time() -> float:
    box = _active()
    return box.wall() if box is not None else _REAL["time"]()


def _time_ns() -> int:
    box = _active()
    return round(box.wall() * 1_000_000_000) if box is not None else _REAL["time_ns"]()


def _monotonic() -> float:
    box = _active()
    return box.virtual() if box is not None else _REAL["monotonic"]()


def _monotonic_ns() -> int:
    box = _active()
    return round(box.virtual() * 1_000_000_000) if box is not None else _REAL["monotonic_ns"]()


def _perf_counter() -> float:
    box = _active()
    return box.virtual() if box is not None else _REAL["perf_counter"]()


def _perf_counter_ns() -> int:
    box = _active()
    return round(box.virtual() * 1_000_000_000) if box is not None else _REAL["perf_counter_ns"]()


def _sleep(seconds) -> None:
    if _active() is not None:
        raise _refused("time.sleep", "await asyncio.sleep(...) instead, which sleeps in virtual time")
    _REAL["sleep"](seconds)


def _urandom(n: int) -> bytes:
    box = _active()
    return box.stream("urandom").randbytes(n) if box is not None else _REAL["urandom"](n)


def _gethostname() -> str:
    box = _active()
    return box.hostname() if box is not None else _REAL["gethostname"]()


def _getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    loop = events._get_running_loop()
    if getattr(loop, "_sandbox", None) is not None:
        return _sim_getaddrinfo(loop.world, host, port, family, type, proto, flags)
    return _REAL["getaddrinfo"](host, port, family, type, proto, flags)


def _gethostbyname(name: str) -> str:
    loop = events._get_running_loop()
    if getattr(loop, "_sandbox", None) is not None:
        return loop.world.lookup(name)
    return _REAL["gethostbyname"](name)


def _connect(self, address):
    if _active() is not None:
        raise _refused("a blocking connect on a real socket", "use asyncio (open_connection, create_connection)")
    return _REAL["connect"](self, address)


def _connect_ex(self, address):
    if _active() is not None:
        raise _refused("a blocking connect on a real socket", "use asyncio (open_connection, create_connection)")
    return _REAL["connect_ex"](self, address)


def _thread_start(self):
    if _active() is not None:
        raise _refused(f"starting a thread ({self.name})", "run the work as an asyncio task instead")
    return _REAL["start"](self)


def _random_function(name: str):
    real = getattr(random, name)

    def dispatch(*args, **kwargs):
        box = _active()
        if box is None:
            return real(*args, **kwargs)
        return getattr(box.stream("random"), name)(*args, **kwargs)

    dispatch.__name__ = name
    dispatch.__doc__ = real.__doc__
    return dispatch


def install() -> None:
    """Patch the module functions above (once per process; each checks for a simulation on every call)."""
    global _installed
    if _installed:
        return
    _installed = True
    time.time, time.time_ns = _time, _time_ns
    time.monotonic, time.monotonic_ns = _monotonic, _monotonic_ns
    time.perf_counter, time.perf_counter_ns = _perf_counter, _perf_counter_ns
    time.sleep = _sleep
    os.urandom = random._urandom = _urandom
    socket.gethostname, socket.getaddrinfo, socket.gethostbyname = _gethostname, _getaddrinfo, _gethostbyname
    socket.socket.connect, socket.socket.connect_ex = _connect, _connect_ex
    threading.Thread.start = _thread_start
    for name in _RANDOM_FUNCTIONS:
        if hasattr(random, name):
            setattr(random, name, _random_function(name))
