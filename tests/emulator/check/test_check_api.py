"""Tests of emulator/check/__init__.py: the package's public names."""

import ast
import importlib
from pathlib import Path

import pytest

import emulator.check as check
from tests.common.imports import modules_of


def test_all_lists_exactly_the_public_names():
    """__all__ names every public attribute and nothing that is missing."""
    public = {name for name in dir(check) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(check, name)).__name__ == "module"}
    assert sorted(check.__all__) == sorted(public - modules)


def test_the_main_entry_points_are_exported():
    """The checkers the brief names are all reachable from the package."""
    for name in (
        "read_history",
        "write_jsonl",
        "linearizable",
        "check_file",
        "stale_reads",
        "lost_writes",
        "availability",
        "latency",
        "convergence",
        "write_html",
        "HistoryFormatError",
    ):
        assert name in check.__all__


def test_the_package_imports_only_the_standard_library_and_itself():
    """check/ imports nothing from nodes, faults or the rest of emulator."""
    root = Path(check.__file__).parent
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top != "emulator" or name.startswith("emulator.check"), f"{path.name} imports {name}"
                assert top not in ("nodes", "faults", "capsim"), f"{path.name} imports {name}"


def _imports_within_check(path: Path) -> set[str]:
    """Every emulator.check module ``path`` imports: at the top, in a function or under TYPE_CHECKING."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.startswith("emulator.check"):
            if node.module == "emulator.check":
                found.update(f"emulator.check.{a.name}" for a in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("emulator.check."))
    return found


def test_the_check_modules_import_each_other_without_a_cycle():
    """The import graph of emulator/check/*.py (lazy and TYPE_CHECKING imports too) has no cycle."""
    root = Path(check.__file__).parent
    graph = {f"emulator.check.{p.stem}": _imports_within_check(p) for p in root.glob("*.py") if p.stem != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, "import cycle: " + " -> ".join([*path[path.index(module) :], module])
        if module in done or module not in graph:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert graph["emulator.check.timeline"] and "emulator.check.verdict" not in graph["emulator.check.timeline"]


LAZY = ("emulator.check.readers", "emulator.check.timeline", "emulator.check.synth", "emulator.check.examples")


def test_readers_timeline_and_generators_load_on_first_use():
    """Checking a history imports none of them (a chaos seed does just that); naming one imports it."""
    checked = modules_of(
        "from emulator.check import linearizable, lost_writes, stale_reads, availability\n"
        "history = [{'process': 0, 'type': 'invoke', 'f': 'write', 'value': 1, 'time': 0},\n"
        "           {'process': 0, 'type': 'ok', 'f': 'write', 'value': 1, 'time': 1}]\n"
        "assert linearizable(history, model='register').valid\n"
        "lost_writes(history), stale_reads(history), availability(history)\n"
    )
    assert not set(LAZY) & checked
    assert set(LAZY) <= modules_of("from emulator.check import read_history, write_html, synth, examples")


@pytest.mark.parametrize(
    "module, name",
    [("readers", "History"), ("readers", "parse_history"), ("readers", "read_history"), ("readers", "write_jsonl")]
    + [("timeline", "render_html"), ("timeline", "write_html")],
)
def test_a_name_loaded_on_first_use_is_its_modules_object(module, name):
    """`emulator.check.X` is the very object its module defines, and dir() lists it."""
    module = importlib.import_module(f"emulator.check.{module}")
    assert getattr(check, name) is getattr(module, name) and name in dir(check)


def test_the_lazy_modules_are_the_submodules():
    """`from emulator.check import synth, examples` gives the modules; an unknown name is an AttributeError."""
    from emulator.check import examples, synth

    assert synth is importlib.import_module("emulator.check.synth")
    assert examples is importlib.import_module("emulator.check.examples")
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        check.nosuch  # noqa: B018
