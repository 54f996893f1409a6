"""What every simulation refuses of the process-wide calls that would escape it: sleeps, threads, real sockets.

Inside any Simulation's run (node handlers and tasks, ``on_start``, a host's
program, the workload passed to ``sim.run``), while its loop runs in this
thread:

=============================================  ===========================================================
``time.sleep``                                 refused (``NotAllowed``): it would block virtual time (use
                                               ``asyncio.sleep``)
``threading.Thread.start``                     refused (``NotAllowed``): run the work as an asyncio task
``socket.socket.connect`` on a real socket     refused (``NotAllowed``), and so are ``connect_ex``,
                                               ``sendto``, ``sendmsg``, ``recv``, ``recvfrom`` (and their
                                               ``_into`` forms), ``listen`` and ``accept``
``socket.getaddrinfo``, ``gethostbyname``      the simulated network's names (a simulation's hosts;
                                               ``localhost`` and 127.0.0.x); a name outside it:
                                               ``NotAllowed``, as nothing is looked up
=============================================  ===========================================================

So ``socket.create_connection``, ``urllib.request.urlopen`` and
``requests`` fail with ``NotAllowed`` there instead of reaching the
machine's network. Anywhere else, in this thread when no simulation's loop
runs and in every other thread, they are the real calls: each patched
function checks the running loop when it is called, and the patches add
nothing to the message path (no kernel code calls them).

A simulation with hosts answers from the simulation as well (the clock,
random numbers, the host name): see ``emulator.sandbox``. A name a module
bound before the first simulation (``from time import sleep``) escapes,
as do the C functions behind them (``_socket.socket`` methods, ``_thread.start_new_thread``).
"""

from __future__ import annotations

import socket
import threading
import time
from asyncio import events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, SupportsIndex

from emulator.errors import NotAllowed

if TYPE_CHECKING:
    from emulator.netbase import NetBase

__all__ = ["install", "refused", "running"]

# The real functions, kept before install() patches them.
_real_sleep = time.sleep
_real_start = threading.Thread.start
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname
#: A real socket's calls that would reach the real network or wait on it: refused inside a simulation.
_REAL_IO = ("sendto", "sendmsg", "recv", "recv_into", "recvfrom", "recvfrom_into", "listen", "accept")
_real_io = {name: getattr(socket.socket, name) for name in _REAL_IO}
_installed = False


def running() -> NetBase | None:
    """The running loop if it is a simulation's (``loop.confined``), else None. Callable from any thread."""
    loop = events._get_running_loop()
    return loop if getattr(loop, "confined", False) else None  # type: ignore[return-value]  # a NetBase


def refused(what: str, instead: str) -> NotAllowed:
    """The error for ``what``, a call that would escape virtual time, saying what to do ``instead``."""
    return NotAllowed(f"{what} inside a simulation would run outside virtual time and could not be replayed: {instead}")


def _sleep(seconds: float | SupportsIndex) -> None:
    if running() is not None:
        raise refused("time.sleep", "await asyncio.sleep(...) instead, which sleeps in virtual time")
    _real_sleep(seconds)


def _thread_start(self: threading.Thread) -> None:
    if running() is not None:
        raise refused(f"starting a thread ({self.name})", "run the work as an asyncio task instead")
    return _real_start(self)


def _connect(self: socket.socket, address: Any) -> None:
    if running() is not None:
        raise refused("a blocking connect on a real socket", "use asyncio (open_connection, create_connection)")
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    if running() is not None:
        raise refused("a blocking connect on a real socket", "use asyncio (open_connection, create_connection)")
    return _real_connect_ex(self, address)


def _real_io_refused(name: str) -> Callable[..., Any]:
    real = _real_io[name]

    def refuse(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if running() is not None:
            raise refused(
                f"{name} on a real socket",
                "use asyncio on simulated sockets (open_connection, start_server, create_datagram_endpoint, "
                "loop.sock_* on a socket loop.sock_connect connected)",
            )
        return real(self, *args, **kwargs)

    refuse.__name__ = name
    refuse.__doc__ = real.__doc__
    return refuse


def _getaddrinfo(
    host: str | bytes | None,
    port: str | bytes | int | None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[tuple[Any, ...]]:
    loop = running()
    if loop is None:
        return _real_getaddrinfo(host, port, family, type, proto, flags)
    from emulator.resolver import getaddrinfo  # the socket layer: imported by the first program that resolves

    return list(getaddrinfo(loop.world, host, port, family, type, proto, flags))


def _gethostbyname(name: str) -> str:
    loop = running()
    if loop is None:
        return _real_gethostbyname(name)
    return loop.world.lookup(name)


def install() -> None:
    """Patch the functions above (once per process; each checks for a simulation's loop on every call)."""
    global _installed
    if _installed:
        return
    _installed = True
    time.sleep = _sleep
    threading.Thread.start = _thread_start  # type: ignore[method-assign]  # patched on the class: every thread
    socket.getaddrinfo = _getaddrinfo  # the simulated answers are AF_INET only
    socket.gethostbyname = _gethostbyname
    # Patched on the class (every real socket), as methods of socket.socket rather than of _socket.socket:
    socket.socket.connect = _connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign, assignment]
    for name in _REAL_IO:
        setattr(socket.socket, name, _real_io_refused(name))
