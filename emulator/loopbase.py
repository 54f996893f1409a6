"""What a ``VirtualLoop`` shares with asyncio's loops beyond scheduling: tasks, errors, debug, refusals.

``LoopBase`` holds the parts of the event loop interface that do not touch
the clock or the timers (those are ``emulator.loop``'s): task creation,
the exception handler (reports go to the ``asyncio`` logger in asyncio's
words), debug mode, async generator finalisation, the deadlock report, and
the refusal of threads, executors and real I/O with ``NotAllowed``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import warnings
import weakref
from asyncio import base_events, constants
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from concurrent.futures import Executor
from contextvars import Context
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, TypeVarTuple, Unpack

from emulator.errors import NotAllowed

if TYPE_CHECKING:
    from asyncio.events import _ExceptionHandler, _TaskFactory  # the stubs' own names

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
#: asyncio's error report: ``{"message": ..., "exception": ..., ...}``
ErrorContext = dict[str, Any]

__all__ = ["LoopBase", "describe_task", "trim_own_frames"]

# the frames a debug traceback leaves out
_OWN_FILES = {__file__, *(str(Path(__file__).with_name(name)) for name in ("loop.py", "scheduler.py"))}


def _cancelled_stream_handler(context: ErrorContext) -> bool:
    """Python 3.11's report of a cancelled ``start_server`` handler, which is no error.

    3.11's ``StreamReaderProtocol`` calls ``task.exception()`` on the
    handler's task when it is done, which raises ``CancelledError`` when it
    was cancelled (a host's crash cancels them all); 3.12 checks
    ``task.cancelled()`` first and reports nothing. Both behave as 3.12 here.
    """
    if sys.version_info >= (3, 12) or not isinstance(context.get("exception"), asyncio.CancelledError):
        return False
    # The message names the callback: "Exception in callback <function StreamReaderProtocol...callback at 0x...>".
    return "<function StreamReaderProtocol.connection_made.<locals>.callback " in str(context.get("message", ""))


class LoopBase(asyncio.AbstractEventLoop):
    """The event loop interface less its scheduler; ``VirtualLoop`` adds the clock and the timers."""

    #: asyncio's loops keep their executor here; a simulation never has one (asyncio's test helpers look).
    _default_executor = None
    _current_handle = None  # asyncio's default exception handler looks for it
    # Set by VirtualLoop.__init__ (annotations only):
    _time: float
    _paused: dict[str, list[Any]]
    _running: bool
    _closed: bool
    _debug: bool
    _thread_id: int | None
    _exception_handler: _ExceptionHandler | None
    _task_factory: _TaskFactory | None
    _asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]]
    _asyncgens_shutdown_called: bool
    unhandled: list[ErrorContext]
    waiter_reports: list[Callable[[], list[str]]]

    def deadlock_report(self, future: asyncio.Future[Any] | None = None) -> str:
        """Name every task that waits, where it is suspended, and on what."""
        lines = [f"deadlock at t={self._time:.6f}s: nothing is scheduled, but these wait forever:"]
        tasks = [t for t in asyncio.all_tasks(self) if not t.done()]
        for task in sorted(tasks, key=lambda t: t.get_name()):
            lines.append(f"  - {describe_task(task)}")
        for owner in sorted(self._paused):
            lines.append(
                f"  - node {owner!r} is paused with {len(self._paused[owner])} callbacks held; "
                f"nothing will call sim.resume({owner!r})"
            )
        for report in self.waiter_reports:
            lines.extend(f"  - {line}" for line in report())
        if len(lines) == 1 and future is not None:
            lines.append(f"  - {describe_task(future)}")
        lines.append(
            "A message that was dropped never answers: give rpc() a timeout, or heal/resume/restart before waiting."
        )
        return "\n".join(lines)

    def _asyncgen_firstiter_hook(self, agen: AsyncGenerator[Any, Any]) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
                stacklevel=1,  # the default, as asyncio's own loops warn
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen: AsyncGenerator[Any, Any]) -> None:
        # An async generator dropped before it finished: close it in a task, as asyncio does.
        self._asyncgens.discard(agen)
        if not self._closed:
            self.call_soon(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self) -> None:
        """Close every async generator still open (asyncio.run calls it at the end)."""
        self._asyncgens_shutdown_called = True
        if not self._asyncgens:
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*[agen.aclose() for agen in closing], return_exceptions=True)
        for result, agen in zip(results, closing):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        return None

    # -- tasks and futures -----------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> asyncio.Task[_T]:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._task_factory is None:
            return asyncio.Task(coro, loop=self, name=name, context=context)
        if context is None:
            return self._task_factory(self, coro)  # type: ignore[return-value]  # a factory makes Tasks
        return self._task_factory(self, coro, context=context)  # type: ignore[call-arg,return-value]  # as asyncio's

    def set_task_factory(self, factory: _TaskFactory | None) -> None:
        self._task_factory = factory

    def get_task_factory(self) -> _TaskFactory | None:
        return self._task_factory

    # -- errors and debug ------------------------------------------------------------

    def get_exception_handler(self) -> _ExceptionHandler | None:
        return self._exception_handler

    def set_exception_handler(self, handler: _ExceptionHandler | None) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: ErrorContext) -> None:
        """Keep the report in ``unhandled`` and log it to the ``asyncio`` logger, as asyncio's loops do."""
        self.unhandled.append(context)
        asyncio.BaseEventLoop.default_exception_handler(self, context)  # type: ignore[arg-type]  # it reads no more than we have

    def call_exception_handler(self, context: ErrorContext) -> None:
        if _cancelled_stream_handler(context):
            return
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                base_events.logger.error("Exception in default exception handler", exc_info=True)  # type: ignore[attr-defined]
        else:
            try:
                self._exception_handler(self, context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                try:
                    self.default_exception_handler(
                        {"message": "Unhandled error in exception handler", "exception": exc, "context": context}
                    )
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException:
                    base_events.logger.error(  # type: ignore[attr-defined]  # asyncio's logger, not in the stubs
                        "Exception in default exception handler while handling an "
                        "unexpected error in custom exception handler",
                        exc_info=True,
                    )

    def get_debug(self) -> bool:  # replaced per instance in __init__ and set_debug
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = bool(enabled)
        self.get_debug = functools.partial(bool, self._debug)  # type: ignore[method-assign]  # no frame per call
        if self._running:
            sys.set_coroutine_origin_tracking_depth(constants.DEBUG_STACK_DEPTH if self._debug else 0)

    # -- what a simulation refuses ------------------------------------------------------

    def call_soon_threadsafe(
        self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts, context: Context | None = None
    ) -> asyncio.Handle:
        if self._thread_id is not None and threading.get_ident() != self._thread_id:
            _refuse("call_soon_threadsafe from another thread")
        return self.call_soon(callback, *args, context=context)

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[Unpack[_Ts]], _T], *args: *_Ts
    ) -> asyncio.Future[_T]:
        _refuse("run_in_executor (and asyncio.to_thread)")

    def set_default_executor(self, executor: Executor) -> None:
        _refuse("set_default_executor")


_H = TypeVar("_H", bound=asyncio.Handle)


def trim_own_frames(handle: _H) -> _H:
    """A debug-mode handle whose source traceback ends where the user called the loop, as asyncio's do."""
    trace = handle._source_traceback  # type: ignore[attr-defined]  # set in debug mode; not in the stubs
    while trace and trace[-1].filename in _OWN_FILES:
        trace.pop()
    return handle


def _refuse(what: str) -> NoReturn:
    raise NotAllowed(
        f"{what} is not allowed inside a simulation: it runs outside virtual time, so the run "
        "could not be replayed from its seed. Do the work before sim.run(), or model it as a "
        "node with a service-time distribution (asyncio.sleep in virtual time)."
    )


def _make_refusal(name: str) -> Callable[..., NoReturn]:
    def refused(self: LoopBase, *args: object, **kwargs: object) -> NoReturn:
        _refuse(f"real I/O (loop.{name})")

    refused.__name__ = name
    refused.__doc__ = f"Refused: real I/O ({name}) cannot run in virtual time."
    return refused


_REAL_IO = (
    "getaddrinfo",
    "getnameinfo",
    "create_connection",
    "create_server",
    "create_unix_connection",
    "create_unix_server",
    "create_datagram_endpoint",
    "connect_accepted_socket",
    "sendfile",
    "start_tls",
    "connect_read_pipe",
    "connect_write_pipe",
    "subprocess_shell",
    "subprocess_exec",
    "add_reader",
    "remove_reader",
    "add_writer",
    "remove_writer",
    "sock_recv",
    "sock_recv_into",
    "sock_recvfrom",
    "sock_recvfrom_into",
    "sock_sendall",
    "sock_sendto",
    "sock_connect",
    "sock_accept",
    "sock_sendfile",
    "add_signal_handler",
    "remove_signal_handler",
)
for _name in _REAL_IO:
    setattr(LoopBase, _name, _make_refusal(_name))


def describe_task(task: asyncio.Future[Any]) -> str:
    """'<name> at file:line in func(), waiting on <what>' for a deadlock report."""
    if not isinstance(task, asyncio.Task):
        return repr(task)
    where = ""
    stack = task.get_stack(limit=1)
    if stack:
        code = stack[-1].f_code
        where = f" at {code.co_filename}:{stack[-1].f_lineno} in {code.co_name}()"
    waiter = getattr(task, "_fut_waiter", None)
    on = f", waiting on {waiter!r}" if waiter is not None else ""
    return f"task {task.get_name()!r}{where}{on}"
