"""The base of ``NetLoop``: the network a loop is on, and readiness of its simulated descriptors.

``NetBase`` is the lowest layer of ``emulator.netloop.NetLoop`` (and so of
``emulator.loop.VirtualLoop``). It holds:

- the loop's place on the simulated network: its ``world`` (the address
  book and carrier of ``emulator.kernel``) and its ``sandbox``, set by a
  Simulation with hosts with ``set_world``, and whether it is a
  simulation's at all (``confined``, set by ``confine``);
- reader and writer callbacks on the fake descriptors of simulated sockets
  (``add_reader``, ``add_writer`` and asyncio's private variants), fired as a
  level-triggered selector would fire them: a socket that may have become
  ready calls ``io_wake``, and the loop polls it on its next step;
- ``refuse``, the one error for real I/O inside a simulation.

The ``sock_*`` coroutines are the next layer (``emulator.sockcalls``), and
streams, servers and datagrams the top one (``emulator.netloop``).
"""

from __future__ import annotations

import asyncio
import contextvars
import selectors
import socket
import weakref
from asyncio import events, selector_events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple, cast

from emulator.errors import NotAllowed

if TYPE_CHECKING:  # the kernel and its sockets are imported with the first socket's world (``world``)
    from emulator.handles import SleepTimer
    from emulator.kernel import World
    from emulator.sandbox import Sandbox
    from emulator.sockets import SimSocket

    # NetBase is mixed into VirtualLoop, an asyncio loop: type-check it as one.
    _Mixin = asyncio.AbstractEventLoop
else:
    _Mixin = object

__all__ = ["NetBase", "refuse"]

# asyncio's private helpers that NetBase borrows (the stubs do not declare them).
_Selector: Any = selector_events.BaseSelectorEventLoop
_Ts = TypeVarTuple("_Ts")


def refuse(what: str, instead: str = "") -> NotAllowed:
    """The error for real I/O inside a simulation."""
    return NotAllowed(
        f"{what} is not allowed inside a simulation: it is real I/O, which runs outside virtual time "
        "and could not be replayed from the run's seed. "
        + (
            instead
            or "Use the simulated network: run the program as a host (sim.add_host(name, main)) "
            "and connect to other hosts by name."
        )
    )


class _Keys:
    """What asyncio's transports ask a selector (``get_key``, in their ``repr``), from the loop's registrations."""

    def __init__(self, io: dict[int, _Registration]):
        self._io = io

    def get_key(self, fd: int) -> selectors.SelectorKey:
        reader, writer, _ = self._io[fd]
        events_ = (selectors.EVENT_READ if reader is not None else 0) | (selectors.EVENT_WRITE if writer else 0)
        return selectors.SelectorKey(fd, fd, events_, (reader, writer))


#: A descriptor's registration: [reader handle, writer handle, the socket].
_Registration = list[Any]


class _NetState:
    """A loop's networking state, made on first use."""

    def __init__(self) -> None:
        self.world: World | None = None
        self.io: dict[int, _Registration] = {}  # fd -> [reader handle, writer handle, socket]
        self.transports: weakref.WeakValueDictionary[int, asyncio.Transport] = weakref.WeakValueDictionary()
        self.adopted: weakref.WeakKeyDictionary[socket.socket, SimSocket] = weakref.WeakKeyDictionary()
        self.keys = _Keys(self.io)


class NetBase(_Mixin):
    """Mixin: a loop's simulated network and its descriptors' readiness (see the module docstring)."""

    __net: _NetState | None = None
    #: the simulation's answers to time.time, random, ... while this loop runs (emulator.sandbox)
    sandbox: Sandbox | None = None
    #: a simulation's loop: while it runs, time.sleep, threads and real sockets are refused (emulator.confine)
    confined: bool = False

    if TYPE_CHECKING:  # what NetBase uses of the loop it is mixed into (emulator.loop.VirtualLoop)
        _closed: bool

        def time_ns(self) -> int: ...

        def _call_at_ns(
            self,
            when_ns: int,
            callback: Callable[..., object],
            args: tuple[Any, ...],
            context: contextvars.Context | None,
        ) -> asyncio.TimerHandle | SleepTimer: ...

    @property
    def _net(self) -> _NetState:
        state = self.__net
        if state is None:
            state = self.__net = _NetState()
        return state

    @property
    def world(self) -> World:
        """The simulated network's address book and carrier (a lone localhost unless a Simulation set one)."""
        net = self._net
        if net.world is None:
            from emulator.kernel import LocalWorld

            net.world = LocalWorld(self)
        return net.world

    def set_world(self, world: World, sandbox: Sandbox | None = None) -> None:
        """Put this loop's sockets on ``world``; answer ``time.time``, ``random``, ... from ``sandbox``.

        A Simulation with hosts passes a sandbox, which answers while this loop
        runs (see ``emulator.sandbox``).
        """
        self._net.world = world
        self.sandbox = sandbox

    def confine(self) -> None:
        """Refuse ``time.sleep``, threads and real sockets in code run by this loop (see ``emulator.confine``).

        Every Simulation confines its loop; a ``VirtualLoop`` on its own is not.
        """
        from emulator import confine

        confine.install()
        self.confined = True

    @property
    def _transports(self) -> weakref.WeakValueDictionary[int, asyncio.Transport]:
        return self._net.transports

    @property
    def _selector(self) -> _Keys:
        return self._net.keys

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def call_at_ns(
        self, when_ns: int, callback: Callable[..., object], *args: object, context: contextvars.Context | None = None
    ) -> asyncio.TimerHandle:
        """``call_at`` with an exact time in integer virtual nanoseconds."""
        # (only asyncio.sleep's own callback gets a SleepTimer, and sleep does not come this way)
        return cast("asyncio.TimerHandle", self._call_at_ns(when_ns, callback, args, context))

    def _host_socket(self, kind: int = socket.SOCK_STREAM) -> SimSocket:
        """A new socket on the host whose code is running now."""
        return self.world.current().socket(kind)

    # -- readiness of simulated descriptors ------------------------------------------------

    def _sim_socket(self, fd: int | _HasFileno) -> SimSocket:
        sock = self.world.socket_of(fd if isinstance(fd, int) else _fileno(fd))
        if sock is None:
            raise refuse(f"watching file descriptor {fd!r}, which is not a simulated socket,")
        return sock

    def io_wake(self, sock: SimSocket, context: contextvars.Context | None) -> None:
        """``sock`` may have become readable or writable: check on the next step."""
        net = self.__net  # not the _net property: this runs once per segment that arrives
        if sock.poll_pending or net is None or sock.fd not in net.io:
            return
        sock.poll_pending = True
        self.call_soon(self._io_poll, sock, context=context)

    def _io_poll(self, sock: SimSocket) -> None:
        sock.poll_pending = False
        io = self._net.io
        entry = io.get(sock.fd)
        if entry is None or not sock.kernel.alive:
            return
        if entry[0] is not None and sock.readable():
            entry[0]._run()
            entry = io.get(sock.fd)  # the reader may have removed itself, or closed the socket
        if entry is not None and entry[1] is not None and sock.writable():
            entry[1]._run()
            entry = io.get(sock.fd)
        if entry is not None and (
            (entry[0] is not None and sock.readable()) or (entry[1] is not None and sock.writable())
        ):
            self.io_wake(sock, sock.kernel.context)  # level-triggered: again on the next step

    def io_forget(self, fd: int) -> None:
        entry = self._net.io.pop(fd, None)
        if entry is not None:
            for handle in entry[:2]:
                if handle is not None:
                    handle.cancel()

    def _add_io(
        self, fd: int | _HasFileno, slot: int, callback: Callable[..., object], args: tuple[Any, ...]
    ) -> events.Handle:
        self._check_closed()
        sock = self._sim_socket(fd)
        handle = events.Handle(callback, args, self, None)
        entry = self._net.io.setdefault(sock.fd, [None, None, sock])
        if entry[slot] is not None:
            entry[slot].cancel()
        entry[slot] = handle
        self.io_wake(sock, sock.kernel.context)
        return handle

    def _remove_io(self, fd: int | _HasFileno, slot: int) -> bool:
        if self.is_closed():
            return False
        entry = self._net.io.get(fd if isinstance(fd, int) else _fileno(fd))
        if entry is None or entry[slot] is None:
            return False
        entry[slot].cancel()
        entry[slot] = None
        if entry[0] is None and entry[1] is None:
            del self._net.io[entry[2].fd]
        return True

    def _add_reader(self, fd: int | _HasFileno, callback: Callable[..., object], *args: Any) -> events.Handle:
        return self._add_io(fd, 0, callback, args)

    def _remove_reader(self, fd: int | _HasFileno) -> bool:
        return self._remove_io(fd, 0)

    def _add_writer(self, fd: int | _HasFileno, callback: Callable[..., object], *args: Any) -> events.Handle:
        return self._add_io(fd, 1, callback, args)

    def _remove_writer(self, fd: int | _HasFileno) -> bool:
        return self._remove_io(fd, 1)

    def add_reader(self, fd: int | _HasFileno, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd: int | _HasFileno) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd: int | _HasFileno, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd: int | _HasFileno) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    _ensure_fd_no_transport = _Selector._ensure_fd_no_transport


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def _fileno(fileobj: object) -> int:
    try:
        return int(fileobj.fileno())  # type: ignore[attr-defined]  # any object may be passed: checked here
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"Invalid file object: {fileobj!r}") from None
