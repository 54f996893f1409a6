"""Handler tasks: a handler runs eagerly and becomes a task only if it waits.

Most handlers answer without awaiting anything. Wrapping each in an
``asyncio.Task`` would cost a task object, a weak-set registration and a
trip through the ready queue per message, so ``HandlerTask`` runs the first
step of the coroutine at once, inside the delivery. If the handler awaits
(an rpc to another node, a sleep), the same object goes on driving it exactly
as ``asyncio.Task`` does, so the node's other messages are not held up.

It is the current task while it runs (``asyncio.current_task()`` returns
it), so ``asyncio.timeout``, ``TaskGroup`` and cancellation behave in a
handler as in any task. It is not a Future: nothing awaits a handler; its
outcome goes to the ``on_done(value, exc)`` callback.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

__all__ = ["HandlerTask", "run_handler"]

_CancelledError = asyncio.CancelledError
_new = object.__new__

#: ``on_done(arg, value, exc)``: a handler's outcome
OnDone = Callable[[Any, Any, "BaseException | None"], None]


class Host(Protocol):
    """What a handler runs on (a node's ``Endpoint``): see ``HandlerTask``."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def context(self) -> contextvars.Context: ...
    @property
    def handler_tasks(self) -> dict[HandlerTask, None]: ...


class HandlerTask:
    """Drive one coroutine: first step now, later steps as a task would. Made by ``run_handler``.

    Attributes (set by ``run_handler``):
        host: what the coroutine runs on: an object with ``loop`` (the loop its
            futures belong to), ``context`` (the ``contextvars.Context`` its
            steps run in) and ``handler_tasks`` (a dict the task adds itself to
            while suspended, so a deadlock report or a crash can find it): the
            node's ``Endpoint``.
        coro: the coroutine to drive.
        name: for error reports and deadlock listings.
        on_done: called as ``on_done(arg, value, exc)`` once; ``exc`` is None
            on success, the exception otherwise (``CancelledError`` if cancelled).
            Not called at all when the coroutine returns None in its first
            step (there is nothing to answer; ``start`` skips the call).
        arg: passed back to ``on_done`` (the message being handled, say).
    """

    # What every task sets is in slots (the compiled dispatch sets them: emulator.speedups).
    __slots__ = ("__dict__", "__weakref__", "_arg", "_coro", "_host", "_name", "_on_done")
    # Task state that starts the same for every handler is kept on the class
    # until a task changes it: most handlers finish in their first step, and
    # building a task is then most of what a message costs.
    _must_cancel = False
    _cancel_message = None
    _fut_waiter = None
    _num_cancels_requested = 0
    _done = False
    # Set on each instance by run_handler (annotations only: no class attributes).
    _host: Host
    _coro: Coroutine[Any, Any, Any]
    _name: str
    _on_done: OnDone
    _arg: Any

    # -- the Task interface that asyncio.timeout and TaskGroup use -----------------

    def get_name(self) -> str:
        return self._name

    def get_coro(self) -> Coroutine[Any, Any, Any]:
        return self._coro

    def done(self) -> bool:
        return self._done

    def cancel(self, msg: Any | None = None) -> bool:
        """Ask the handler to stop: CancelledError is thrown in at its next step."""
        if self._done:
            return False
        self._num_cancels_requested += 1
        if self._fut_waiter is not None and self._fut_waiter.cancel(msg=msg):
            return True
        self._must_cancel = True
        self._cancel_message = msg
        return True

    def cancelling(self) -> int:
        return self._num_cancels_requested

    def uncancel(self) -> int:
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
        return self._num_cancels_requested

    def get_stack(self, *, limit: int | None = None) -> list[types.FrameType]:
        frame = getattr(self._coro, "cr_frame", None)
        return [frame] if frame is not None else []

    def __repr__(self) -> str:
        state = "done" if self._done else "pending"
        return f"<HandlerTask {self.get_name()!r} {state}>"

    # -- stepping ----------------------------------------------------------------------

    def _step(self, exc: BaseException | None) -> None:
        if self._must_cancel:
            if not isinstance(exc, _CancelledError):
                exc = _CancelledError(self._cancel_message) if self._cancel_message else _CancelledError()
            self._must_cancel = False
        self._fut_waiter = None
        loop = self._host.loop
        _enter_task(loop, self)  # type: ignore[arg-type]  # it stands in for a Task (see the module doc)
        try:
            result = self._coro.send(None) if exc is None else self._coro.throw(exc)
        except StopIteration as stop:
            self._finish(stop.value, _CancelledError() if self._must_cancel else None)
        except (KeyboardInterrupt, SystemExit):
            self._finish(None, None)
            raise
        except BaseException as error:
            self._finish(None, error)
        else:
            self._suspend(result)
        finally:
            _leave_task(loop, self)  # type: ignore[arg-type]  # as above

    def _suspend(self, result: Any) -> None:
        blocking = getattr(result, "_asyncio_future_blocking", None)
        host = self._host
        if blocking:
            result._asyncio_future_blocking = False
            result.add_done_callback(self._wakeup, context=host.context)
            self._fut_waiter = result
            if self._must_cancel and result.cancel(msg=self._cancel_message):
                self._must_cancel = False
        elif result is None:  # a bare yield, as in asyncio.sleep(0)
            host.loop.call_soon(self._step, None, context=host.context)
        else:
            error = RuntimeError(f"handler {self.get_name()!r} yielded {result!r}; await asyncio awaitables only")
            host.loop.call_soon(self._step, error, context=host.context)
        host.handler_tasks[self] = None
        if not getattr(host, "alive", True):  # its first step crashed its own node: the crash found no task to cancel
            self.cancel("node crashed")

    def _wakeup(self, future: asyncio.Future[Any]) -> None:
        try:
            future.result()
        except BaseException as exc:
            self._step(exc)
        else:
            self._step(None)

    def _finish(self, value: Any, exc: BaseException | None) -> None:
        self._done = True
        self._host.handler_tasks.pop(self, None)
        if isinstance(exc, AttributeError) and not hasattr(self._coro, "send"):  # not a coroutine at all
            exc = TypeError(
                f"handler {self._name!r} returned {type(self._coro).__name__}, not a coroutine: "
                f"define it with async def (async def handle_{self._name}(self, msg): ...)"
            )
        self._on_done(self._arg, value, exc)

    @staticmethod
    def start(host: Host, coro: Coroutine[Any, Any, Any], name: str, on_done: OnDone, arg: Any) -> None:
        """Start a handler: its ``HandlerTask`` runs the coroutine's first step now.

        Call it inside the host's context, from a loop callback (never from
        inside a running task): ``host.context.run(run_handler, host, coro, ...)``.
        The arguments are ``HandlerTask``'s. This is the message path: the task is
        built here rather than by ``__init__``, and the first step is ``_step``
        without the cancellation checks, which cannot apply yet; most handlers
        finish in it.
        """
        task = _new(HandlerTask)
        task._host = host
        task._coro = coro
        task._name = name
        task._on_done = on_done
        task._arg = arg
        loop = host.loop
        _enter_task(loop, task)  # type: ignore[arg-type]  # it stands in for a Task
        try:
            result = coro.send(None)
        except StopIteration as stop:
            task._done = True
            if stop.value is not None:  # a None result needs no reply: skip the call
                on_done(arg, stop.value, None)
        except (KeyboardInterrupt, SystemExit):
            task._finish(None, None)
            raise
        except BaseException as error:
            task._finish(None, error)
        else:
            task._suspend(result)
        finally:
            _leave_task(loop, task)  # type: ignore[arg-type]  # as above


#: ``HandlerTask.start`` by its module-level name (node.py calls it so).
run_handler = HandlerTask.start
