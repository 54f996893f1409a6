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
