"""The process-wide sources a program reads besides the network, made part of a simulation with hosts.

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
``random.random``, ``random.choice``, ...      the host's own stream, derived from the seed
``os.urandom``, ``os.getrandom``,              the host's own stream of bytes
``uuid.uuid4``, ``random.SystemRandom``,
``secrets``
``random.Random()``, ``seed()`` with no seed   seeded from the host's stream (so are ``tempfile``'s names, from
                                               the first host that asks in the process: tempfile keeps them)
``uuid.uuid1``                                 a node and clock sequence from the host's stream, its clock
``socket.gethostname``                         the host's name
``socket.socket.setsockopt`` on a real socket  as before, and kept: the simulated socket that stands in for it
                                               (``loop.sock_connect``) starts with those options
``socket.socket.bind`` on a real socket        kept, not bound on the machine: the stand-in binds there
=============================================  ===========================================================

Every simulation, with hosts or without, also refuses ``time.sleep``,
``threading.Thread.start`` and a real socket's ``connect``, ``sendto``,
``recv``, ``listen``, ``accept``, ... with ``NotAllowed``, and answers
``socket.getaddrinfo`` and ``gethostbyname`` from the simulated network (a
name outside it: ``NotAllowed``): see ``emulator.confine``. A simulation of
nodes alone gets only those: there ``time.time``, ``time.monotonic``,
``random`` and the rest above stay the machine's, because node code has
``self.now()`` and ``self.rng``, and capsim's own code (progress lines,
a checker's time budget) reads the wall clock while a run is on the stack.

Outside a host (a workload passed to ``sim.run``) the clock is the true
virtual time and the stream the simulation's own. Anywhere else, in this
thread when no such loop runs and in every other thread, they are the real
ones: the patch checks the running loop on each call.

A name a module bound before the first simulation with hosts (``from time
import monotonic``, as aiohttp's connector does for its keep-alive
bookkeeping; ``from random import random``) is rebound then too, in every
module outside the standard library, so a program behaves the same whether
it was imported before or after. What escapes: such names in the standard
library, a name bound under another name in an object's attribute or a
default argument, ``datetime.now()`` (read by C code from the system
clock), and the order in which a ``set`` of strings iterates, which
``PYTHONHASHSEED`` decides.
"""

from __future__ import annotations

import os
import random
import socket
import sys
import time
import uuid
import weakref
from asyncio import events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator import confine

if TYPE_CHECKING:
    from emulator.hosts import HostEndpoint
    from emulator.simulation import Simulation

__all__ = ["EPOCH", "Sandbox", "install"]

#: What ``time.time()`` reads at virtual time 0: 2025-01-01 00:00:00 UTC.  # wall-clock ok: reads no clock
EPOCH = 1_735_689_600

# The real functions, kept before install() patches them.
_real_time = time.time
_real_time_ns = time.time_ns
_real_monotonic = time.monotonic
_real_monotonic_ns = time.monotonic_ns
_real_perf_counter = time.perf_counter
_real_perf_counter_ns = time.perf_counter_ns
_real_urandom = os.urandom
_real_getrandom = getattr(os, "getrandom", None)
_real_seed = random.Random.seed
_real_uuid1 = uuid.uuid1
_real_gethostname = socket.gethostname
_real_setsockopt = socket.socket.setsockopt
_real_bind = socket.socket.bind
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
#: Options set inside a simulation on each real socket, for the simulated one that stands in for it (options_of).
_options: weakref.WeakKeyDictionary[socket.socket, list[tuple[int, int, int | bytes]]] = weakref.WeakKeyDictionary()
#: The address each real socket was bound to inside a simulation (not bound for real: see bound_to).
_bound: weakref.WeakKeyDictionary[socket.socket, Any] = weakref.WeakKeyDictionary()


class Sandbox:
    """The simulation's answers for one loop (``loop.sandbox``): clocks, streams, names."""

    def __init__(self, sim: Simulation, current: Callable[[], HostEndpoint | None]):
        self._sim = sim
        self._life = current  # the running host incarnation, or None
        self._streams: dict[str, random.Random] = {}

    def wall(self) -> float:
        life = self._life()
        now: float = life.clock.now() if life is not None else self._sim.loop.time()
        return EPOCH + now

    def virtual(self) -> float:
        now: float = self._sim.loop.time()
        return now

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
    box: Sandbox | None = getattr(loop, "sandbox", None) if loop is not None else None
    return box


def _time() -> float:
    box = _active()
    return box.wall() if box is not None else _real_time()


def _time_ns() -> int:
    box = _active()
    return round(box.wall() * 1_000_000_000) if box is not None else _real_time_ns()


def _monotonic() -> float:
    box = _active()
    return box.virtual() if box is not None else _real_monotonic()


def _monotonic_ns() -> int:
    box = _active()
    return round(box.virtual() * 1_000_000_000) if box is not None else _real_monotonic_ns()


def _perf_counter() -> float:
    box = _active()
    return box.virtual() if box is not None else _real_perf_counter()


def _perf_counter_ns() -> int:
    box = _active()
    return round(box.virtual() * 1_000_000_000) if box is not None else _real_perf_counter_ns()


def _urandom(n: int) -> bytes:
    box = _active()
    return box.stream("urandom").randbytes(n) if box is not None else _real_urandom(n)


def _getrandom(size: int, flags: int = 0) -> bytes:
    box = _active()
    if box is not None:
        return box.stream("urandom").randbytes(size)
    assert _real_getrandom is not None  # patched in only where the os module has it
    return bytes(_real_getrandom(size, flags))


def _seed(self: random.Random, a: Any = None, version: int = 2) -> None:
    """``Random.seed``: with no seed (``random.Random()``, ``seed()``: the OS's entropy), one from the host's stream."""
    if a is None and (box := _active()) is not None:
        a = box.stream("seed").getrandbits(128)
    _real_seed(self, a, version)


def _uuid1(node: int | None = None, clock_seq: int | None = None) -> uuid.UUID:
    """``uuid.uuid1``: the machine's address and the OS's clock sequence, from the host's stream when not given."""
    box = _active()
    if box is None:
        return _real_uuid1(node, clock_seq)
    stream = box.stream("uuid1")
    node = stream.getrandbits(48) | (1 << 40) if node is None else node  # a random node: multicast bit set
    clock_seq = stream.getrandbits(14) if clock_seq is None else clock_seq
    # RFC 4122's fields from the host's clock; not uuid1's own, whose last timestamp outlives a simulation
    stamp = _time_ns() // 100 + 0x01B21DD213814000
    fields = (stamp & 0xFFFFFFFF, (stamp >> 32) & 0xFFFF, (stamp >> 48) & 0x0FFF)
    return uuid.UUID(fields=(*fields, (clock_seq >> 8) & 0x3F, clock_seq & 0xFF, node), version=1)


def _gethostname() -> str:
    box = _active()
    return box.hostname() if box is not None else _real_gethostname()


def _setsockopt(self: socket.socket, level: int, option: int, value: int | bytes | None, *optlen: int) -> None:
    _real_setsockopt(self, level, option, value, *optlen)
    if value is not None and _active() is not None:
        _options.setdefault(self, []).append((level, option, value))


def options_of(sock: socket.socket) -> list[tuple[int, int, int | bytes]]:
    """The options a program set on real socket ``sock`` inside a simulation, in order."""
    return list(_options.get(sock, ()))


def _bind(self: socket.socket, address: Any) -> None:
    if _active() is None:
        return _real_bind(self, address)
    if self in _bound:
        raise OSError(22, "Invalid argument")  # EINVAL: bound already, as the real call says
    _bound[self] = address  # the simulated socket that stands in for this one binds there
    return None


def bound_to(sock: socket.socket) -> Any:
    """The address real socket ``sock`` was bound to inside a simulation, or None."""
    return _bound.get(sock)


def _random_function(name: str) -> Callable[..., Any]:
    real = getattr(random, name)

    def dispatch(*args: Any, **kwargs: Any) -> Any:
        box = _active()
        if box is None:
            return real(*args, **kwargs)
        return getattr(box.stream("random"), name)(*args, **kwargs)

    dispatch.__name__ = name
    dispatch.__doc__ = real.__doc__
    return dispatch


def install() -> None:
    """Patch the module functions above, and confine's (once per process; each checks the running loop per call)."""
    global _installed
    if _installed:
        return
    _installed = True
    confine.install()  # the refusals, which every simulation has
    time.time, time.time_ns = _time, _time_ns
    time.monotonic, time.monotonic_ns = _monotonic, _monotonic_ns
    time.perf_counter, time.perf_counter_ns = _perf_counter, _perf_counter_ns
    os.urandom = random._urandom = _urandom  # type: ignore[attr-defined]  # random's private alias of os.urandom
    if _real_getrandom is not None:
        os.getrandom = _getrandom
    random.Random.seed = _seed  # type: ignore[method-assign]  # an unseeded Random(), and tempfile's names
    uuid.uuid1 = _uuid1
    socket.gethostname = _gethostname
    # Patched on the class (every real socket), as methods of socket.socket rather than of _socket.socket:
    socket.socket.setsockopt = _setsockopt  # type: ignore[method-assign, assignment]  # kept for a stand-in
    socket.socket.bind = _bind  # type: ignore[method-assign, assignment]  # kept for a stand-in, not bound for real
    real = {name: getattr(random, name) for name in _RANDOM_FUNCTIONS if hasattr(random, name)}
    for name in _RANDOM_FUNCTIONS:
        if hasattr(random, name):
            setattr(random, name, _random_function(name))
    _rebind_early_names(real)


def _rebind_early_names(random_functions: dict[str, Any]) -> None:
    """Point names bound before install() (``from time import monotonic``) at the patched functions.

    Only modules outside the standard library: its own bindings (``threading``'s
    ``_time``) stay the machine's. Keyed by ``id`` and checked with ``is``.
    """
    swaps: dict[int, tuple[Any, Any]] = {
        id(old): (old, new)
        for old, new in (
            (_real_time, _time),
            (_real_time_ns, _time_ns),
            (_real_monotonic, _monotonic),
            (_real_monotonic_ns, _monotonic_ns),
            (_real_perf_counter, _perf_counter),
            (_real_perf_counter_ns, _perf_counter_ns),
            (_real_urandom, _urandom),
        )
    }
    swaps.update({id(old): (old, getattr(random, name)) for name, old in random_functions.items()})
    for module_name, module in list(sys.modules.items()):
        if module_name.partition(".")[0] in _LEFT_ALONE:
            continue
        try:  # object's own lookup: a lazily loaded module is not loaded by being looked at
            namespace = object.__getattribute__(module, "__dict__")
        except (AttributeError, TypeError):
            continue
        if not isinstance(namespace, dict):
            continue
        for attribute, value in list(namespace.items()):
            swap = swaps.get(id(value))
            if swap is not None and swap[0] is value:
                namespace[attribute] = swap[1]


#: Top-level packages whose early bindings stay real: the standard library, and capsim's own kernel.
_LEFT_ALONE = frozenset(sys.stdlib_module_names) | {"emulator"}
