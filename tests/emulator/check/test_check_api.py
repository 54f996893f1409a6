"""Tests of emulator/check/__init__.py: the package's public names."""

import ast
from pathlib import Path

import emulator.check as check


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
