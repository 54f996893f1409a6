"""The layers keep to their own: which package imports which, and no reach into another's private names.

The reach-in check is scripts/reach_ins.py (`python scripts/reach_ins.py --all` lists every hit):
`obj._name` (or `getattr(obj, "_name")`) where obj is not self/cls and `_name` is not the
enclosing class's own, and `from module import _name`. What stays is in ALLOWED below, each entry with its reason.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from reach_ins import LIBRARY, check_file, check_tree  # noqa: E402  (scripts/ is put on the path just above)

_ASYNCIO_HANDLE = "asyncio Handle/TimerHandle fields: the loop runs a handle one frame shorter than Handle._run"
_SLEEP_INLINE = "a SleepTimer built inline by call_later, without an __init__ frame: once per asyncio.sleep"
_HANDLER_INLINE = "a HandlerTask built and started inline (HandlerTask.start's body): once per delivered message"

#: (file, private name) -> why it stays. A new reach-in fails the test below: give the owner a
#: public name (a method, a property, an un-underscored function) instead of adding it here, unless
#: it is a stdlib/asyncio/pytest internal or sits on a per-message or per-timer path.
ALLOWED: dict[tuple[str, str], str] = {
    # -- asyncio, sys and pytest internals: capsim's kernel is an asyncio loop ------------------
    ("emulator/loop.py", "_get_running_loop"): "asyncio.events: the loop sets itself running, as BaseEventLoop",
    ("emulator/loop.py", "_set_running_loop"): "asyncio.events: as BaseEventLoop.run_forever does",
    ("emulator/loop.py", "_is_debug_mode"): "asyncio.coroutines: the default debug flag, as BaseEventLoop.__init__",
    ("emulator/loop.py", "_asyncgen_hooks"): "sys: the loop saves and sets the async-generator hooks, as asyncio",
    ("emulator/loop.py", "_log_destroy_pending"): "asyncio Future: as BaseEventLoop.run_until_complete",
    ("emulator/scheduler.py", "_callback"): _ASYNCIO_HANDLE + " (call_soon builds one without __init__)",
    ("emulator/scheduler.py", "_args"): _ASYNCIO_HANDLE,
    ("emulator/scheduler.py", "_context"): _ASYNCIO_HANDLE,
    ("emulator/loop.py", "_cancelled"): _ASYNCIO_HANDLE + "; also SleepTimer's, which mirrors it",
    ("emulator/scheduler.py", "_cancelled"): _ASYNCIO_HANDLE + "; also SleepTimer's, which mirrors it",
    ("emulator/scheduler.py", "_scheduled"): _ASYNCIO_HANDLE,
    ("emulator/loopbase.py", "_ExceptionHandler"): "typeshed's alias, to match AbstractEventLoop's signature",
    ("emulator/loopbase.py", "_TaskFactory"): "typeshed's alias, to match AbstractEventLoop's signature",
    ("emulator/loopbase.py", "_fut_waiter"): "asyncio Task field: what a task awaits, for a deadlock report",
    ("emulator/loopbase.py", "_source_traceback"): "asyncio Handle field (debug mode): trimmed of the kernel's frames",
    ("emulator/handles.py", "_callback"): _ASYNCIO_HANDLE,
    ("emulator/handles.py", "_args"): _ASYNCIO_HANDLE,
    ("emulator/handles.py", "_context"): _ASYNCIO_HANDLE,
    ("emulator/handles.py", "_cancelled"): _ASYNCIO_HANDLE,
    ("emulator/handles.py", "_scheduled"): _ASYNCIO_HANDLE,
    ("emulator/handles.py", "_loop"): _ASYNCIO_HANDLE,
    ("emulator/handles.py", "_timer_handle_cancelled"): "asyncio's loop hook that TimerHandle.cancel calls",
    ("emulator/handles.py", "_set_result_unless_cancelled"): "asyncio.futures: asyncio.sleep's callback, recognised",
    ("emulator/netbase.py", "_run"): "asyncio Handle._run: a reader's or writer's callback, as selector loops run it",
    ("emulator/netloop.py", "_SelectorSocketTransport"): "asyncio's stream transport, reused over simulated sockets",
    ("emulator/netloop.py", "_SelectorDatagramTransport"): "asyncio's datagram transport, reused as above",
    ("emulator/node.py", "_enter_task"): "asyncio.tasks: a handler task stands in for the current Task",
    ("emulator/node.py", "_leave_task"): "asyncio.tasks: as above",
    ("emulator/tasks.py", "_enter_task"): "asyncio.tasks: as in node.py",
    ("emulator/tasks.py", "_leave_task"): "asyncio.tasks: as in node.py",
    ("emulator/tasks.py", "_asyncio_future_blocking"): "asyncio's Future protocol, read as Task.__step reads it",
    ("emulator/confine.py", "_get_running_loop"): "asyncio.events: is a simulation running (None, not an error)",
    ("emulator/sandbox.py", "_get_running_loop"): "asyncio.events: is a simulation running (None, not an error)",
    ("emulator/sandbox.py", "_urandom"): "random's own alias of os.urandom, patched with it for determinism",
    ("emulator/pytest_plugin.py", "_inicache"): "pytest has no public setter for an ini value",
    ("emulator/pytest_plugin.py", "_fixtureinfo"): "the test's own argument names, as pytest's pytest_pyfunc_call",
    ("capsim/commands/chaos.py", "_SubParsersAction"): "argparse has no public name for add_subparsers' type",
    ("capsim/commands/check.py", "_SubParsersAction"): "argparse has no public name for add_subparsers' type",
    ("capsim/cli.py", "_SubParsersAction"): "argparse has no public name for add_subparsers' type",
    ("emulator/speedups.py", "_speedups"): "the compiled scheduler core, imported by the one module that picks it",
    # -- capsim's own, kept on a per-message or per-timer path -------------------------------------
    ("emulator/network.py", "_at"): (
        "Message's kernel-private fields, per message: a public name would put kernel state on the "
        "user's message, a property would add a call per message"
    ),
    ("emulator/network.py", "_link"): "as _at",
    ("emulator/network.py", "_to"): "as _at",
    ("emulator/network.py", "_constant_ns"): (
        "Link's per-message fields, read by Network in the same module: underscored so they sort first, "
        "since CPython lays slots out in name order and a message should load one line of its link"
    ),
    ("emulator/network.py", "_delay_ns"): "as _constant_ns",
    ("emulator/network.py", "_endpoint"): "as _constant_ns",
    ("emulator/network.py", "_last_ns"): "as _constant_ns",
    ("emulator/network.py", "_plain"): "as _constant_ns",
    ("emulator/node.py", "_host"): _HANDLER_INLINE,
    ("emulator/node.py", "_coro"): _HANDLER_INLINE + " (HandlerTask mirrors asyncio.Task's field names)",
    ("emulator/node.py", "_name"): _HANDLER_INLINE,
    ("emulator/node.py", "_on_done"): _HANDLER_INLINE,
    ("emulator/node.py", "_arg"): _HANDLER_INLINE,
    ("emulator/node.py", "_done"): _HANDLER_INLINE,
    ("emulator/node.py", "_finish"): _HANDLER_INLINE,
    ("emulator/node.py", "_suspend"): _HANDLER_INLINE,
    ("emulator/scheduler.py", "_when_ns"): _SLEEP_INLINE,
    ("emulator/scheduler.py", "_future"): _SLEEP_INLINE,
    ("emulator/scheduler.py", "_result"): _SLEEP_INLINE,
    ("emulator/handles.py", "_now"): "Periodic.schedule is VirtualLoop.push_recurring inlined: once per periodic tick",
    ("emulator/handles.py", "_seq"): "as _now",
    ("emulator/handles.py", "_heap_push"): "as _now (the loop's timer heap, where the compiled core keeps its keys)",
    ("emulator/node.py", "_endpoint"): (
        "Endpoint.build binds a Node to its endpoint before Node.__init__ runs; a public name on Node "
        "is one a user's subclass could shadow"
    ),
}


def test_no_module_reaches_into_another_modules_private_names():
    """Every reach-in in the library is in ALLOWED; a new one fails here with where it is."""
    new = [h for h in check_tree() if (h.path, h.name) not in ALLOWED]
    listed = "\n".join(f"  {h.path}:{h.line} {h.scope}: {h.text}" for h in new)
    assert not new, f"private names used from outside their class or module (give the owner a public name):\n{listed}"


def test_every_allowed_reach_in_is_still_there():
    """An entry whose reach-in is gone is removed, so the list only shrinks."""
    found = {(h.path, h.name) for h in check_tree()}
    assert sorted(set(ALLOWED) - found) == []


def _hits(tmp_path, source):
    path = tmp_path / "mod.py"
    path.write_text(source)
    return [(h.kind, h.text) for h in check_file(path, tmp_path)]


def test_the_checker_finds_reach_ins_and_passes_a_class_own_names(tmp_path):
    """Another class's field, a stdlib private, a private import are found; self, cls, same-class are not."""
    source = (
        "import asyncio\n"
        "from m import _p, ok\n"
        "class A:\n"
        "    _k = 1\n"
        "    def __init__(self):\n"
        "        self._x = 0\n"
        "    def same(self, other):\n"
        "        return other._x + self._x + type(self)._k\n"
        "    @classmethod\n"
        "    def make(cls):\n"
        "        return cls._k\n"
        "class B:\n"
        "    def peek(self, a):\n"
        "        return a._x, a.__dict__\n"
        "def f(loop):\n"
        "    return asyncio.events._get_running_loop(), getattr(loop, '_box', None)\n"
    )
    assert _hits(tmp_path, source) == [
        ("import", "from m import _p"),
        ("same-module", "a._x"),
        ("cross-module", "asyncio.events._get_running_loop"),
        ("cross-module", "getattr(loop, '_box', None)"),
    ]


_LAYERS = {  # package -> the packages it must never import (DESIGN.md, BRIEF's layers)
    "emulator": {"nodes", "faults", "capsim"},
    "nodes": {"faults", "capsim"},
    "faults": {"capsim"},
}


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(_LAYERS))
def test_a_layer_imports_no_layer_above_it(package):
    """emulator imports neither nodes nor faults; nodes never imports faults; nothing imports capsim."""
    bad = {
        path.relative_to(ROOT).as_posix(): sorted(_imported_packages(path) & _LAYERS[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {p: names for p, names in bad.items() if names} == {}


def test_the_library_is_what_the_checker_walks():
    """The reach-in check covers every library package."""
    assert set(LIBRARY) == set(_LAYERS) | {"capsim"}
