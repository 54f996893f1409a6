"""Handler tasks: the first step runs at once, later steps as an asyncio.Task would run them."""

import asyncio
import contextvars

import pytest

from emulator.tasks import HandlerTask, run_handler

VAR = contextvars.ContextVar("VAR", default="outside")


class Host:
    """What a handler runs on: a loop, a context, and the dict of suspended handler tasks."""

    def __init__(self, loop):
        self.loop = loop
        self.context = contextvars.copy_context()
        self.context.run(VAR.set, "host")
        self.handler_tasks = {}


def drive(make_coro, *, until=None):
    """Start ``make_coro(host)`` as a handler from a loop callback; run the loop; return (host, outcomes, log)."""
    loop = asyncio.new_event_loop()
    host, outcomes, log = Host(loop), [], []

    def on_done(arg, value, exc):
        outcomes.append((arg, value, exc))

    def begin():
        log.append("before")
        host.context.run(run_handler, host, make_coro(host, log), "h", on_done, "msg")
        log.append("after")

    async def main():
        loop.call_soon(begin)
        await asyncio.sleep(0)
        if until is not None:
            await until(host, outcomes)
        async with asyncio.timeout(5.0):  # real time on a loaded machine: generous, and the usual wait is ms
            while host.handler_tasks:
                await asyncio.sleep(0.001)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return host, outcomes, log


def test_a_handler_that_does_not_wait_finishes_inside_the_start_call():
    """No await: the handler has run and reported before run_handler returns."""

    async def handler(host, log):
        log.append("ran")
        return {"type": "ok"}

    _, outcomes, log = drive(handler)
    assert log == ["before", "ran", "after"]
    assert outcomes == [("msg", {"type": "ok"}, None)]


def test_a_none_result_in_the_first_step_skips_on_done():
    """A handler that returns None at once has nothing to answer: on_done is not called."""

    async def handler(host, log):
        return None

    _, outcomes, _ = drive(handler)
    assert outcomes == []


def test_a_handler_that_awaits_resumes_later_and_reports_once():
    """The first step runs up to the await inside the call; the rest runs later; on_done gets the value once."""

    async def handler(host, log):
        log.append("first")
        await asyncio.sleep(0.001)
        log.append("second")
        return 7

    host, outcomes, log = drive(handler)
    assert log == ["before", "first", "after", "second"]
    assert outcomes == [("msg", 7, None)]
    assert host.handler_tasks == {}


def test_a_suspended_handler_is_listed_in_handler_tasks_until_it_finishes():
    """While it waits, the task is in host.handler_tasks (deadlock reports find it); afterwards it is not."""
    seen = []

    async def handler(host, log):
        await asyncio.sleep(0.001)
        return 1

    async def look(host, outcomes):
        seen.append([repr(task) for task in host.handler_tasks])

    host, outcomes, _ = drive(handler, until=look)
    assert seen == [["<HandlerTask 'h' pending>"]]
    assert host.handler_tasks == {} and outcomes == [("msg", 1, None)]


def test_it_is_the_current_task_and_runs_in_the_hosts_context():
    """asyncio.current_task() is the handler's task in every step, and context variables are the host's."""
    seen = []

    async def handler(host, log):
        seen.append((asyncio.current_task(), VAR.get()))
        await asyncio.sleep(0)
        seen.append((asyncio.current_task(), VAR.get()))
        return 1

    drive(handler)
    (first, var1), (second, var2) = seen
    assert isinstance(first, HandlerTask) and first is second
    assert first.get_name() == "h" and first.done()
    assert var1 == var2 == "host"


def test_every_step_runs_in_the_hosts_own_context_not_a_copy():
    """A change to the host's context while the handler waits is seen by its next step (the same Context object)."""
    seen = []

    async def handler(host, log):
        await asyncio.sleep(0.001)
        seen.append(VAR.get())
        return 1

    async def change(host, outcomes):
        host.context.run(VAR.set, "changed while waiting")

    drive(handler, until=change)
    assert seen == ["changed while waiting"]


def test_an_exception_goes_to_on_done_not_to_the_caller():
    """A handler that raises, in its first step or later, reports the exception through on_done."""

    async def at_once(host, log):
        raise KeyError("first")

    async def later(host, log):
        await asyncio.sleep(0)
        raise KeyError("later")

    for handler, text in ((at_once, "first"), (later, "later")):
        _, outcomes, _ = drive(handler)
        ((arg, value, exc),) = outcomes
        assert (arg, value, type(exc), exc.args) == ("msg", None, KeyError, (text,))


def test_asyncio_timeout_works_inside_a_handler():
    """asyncio.timeout cancels the wait and raises TimeoutError, which the handler may catch."""

    async def handler(host, log):
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"
        return "slept"

    _, outcomes, _ = drive(handler)
    assert outcomes == [("msg", "timed out", None)]


def test_cancel_throws_cancelled_error_in_at_the_await():
    """cancel() on a waiting handler: CancelledError at its await; uncaught, on_done gets it."""
    cleanup = []

    async def handler(host, log):
        try:
            await asyncio.sleep(10)
        finally:
            cleanup.append("finally ran")

    async def cancel(host, outcomes):
        (task,) = host.handler_tasks
        assert task.cancel("stop") and task.cancelling() == 1
        await asyncio.sleep(0)

    host, outcomes, _ = drive(handler, until=cancel)
    ((_, value, exc),) = outcomes
    assert isinstance(exc, asyncio.CancelledError) and value is None
    assert cleanup == ["finally ran"] and host.handler_tasks == {}


def test_cancelling_a_finished_handler_does_nothing():
    """cancel() after the end returns False; uncancel() counts down to zero and no further."""
    tasks = []

    async def handler(host, log):
        tasks.append(asyncio.current_task())
        await asyncio.sleep(0)
        return 1

    drive(handler)
    (task,) = tasks
    assert task.cancel() is False and task.cancelling() == 0 and task.uncancel() == 0


def test_a_cancel_before_a_bare_yield_is_delivered_at_the_next_step():
    """cancel() while the handler is at a bare yield (sleep(0)) raises CancelledError when it resumes."""

    async def handler(host, log):
        asyncio.current_task().cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return "cancelled at the yield"
        return "not cancelled"

    _, outcomes, _ = drive(handler)
    assert outcomes == [("msg", "cancelled at the yield", None)]


def test_yielding_something_not_awaitable_is_a_clear_error_in_the_handler():
    """A coroutine that yields a non-future gets a RuntimeError thrown in, naming the handler."""

    class Odd:
        def __await__(self):
            yield "not a future"

    async def handler(host, log):
        await Odd()

    _, outcomes, _ = drive(handler)
    ((_, _, exc),) = outcomes
    assert isinstance(exc, RuntimeError) and "handler 'h' yielded 'not a future'" in str(exc)


def test_a_task_group_inside_a_handler_runs_its_children():
    """TaskGroup works in a handler: its children run, and the handler resumes with their results."""

    async def handler(host, log):
        async with asyncio.TaskGroup() as group:
            a = group.create_task(asyncio.sleep(0.001, result=1))
            b = group.create_task(asyncio.sleep(0.002, result=2))
        return a.result() + b.result()

    _, outcomes, _ = drive(handler)
    assert outcomes == [("msg", 3, None)]


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_propagate_out_of_the_start(error):
    """An interrupt is not a handler's outcome: it leaves run_handler, and on_done hears (None, None)."""
    loop = asyncio.new_event_loop()
    host, outcomes = Host(loop), []

    async def handler():
        raise error

    try:
        with pytest.raises(error):
            host.context.run(run_handler, host, handler(), "h", lambda *a: outcomes.append(a), "msg")
    finally:
        loop.close()
    assert outcomes == [("msg", None, None)]
