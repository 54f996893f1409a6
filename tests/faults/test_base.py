"""faults.base: the Nemesis base and Driver protocol sit below every kind, so faults/ imports without cycles."""

import ast
from pathlib import Path

import faults
from faults import base, membership, nemesis

FAULTS = Path(faults.__file__).parent


def _runtime_imports(path: Path) -> set[str]:
    """The faults modules ``path`` imports when it is loaded (``if TYPE_CHECKING:`` blocks left out)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("faults."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("faults.")}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for dep in sorted(graph.get(name, ())):
            if state.get(dep) == "open":
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep, [*path, dep])):
                return found
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name, [name])):
            return found
    return None


def test_the_modules_of_faults_import_one_another_without_a_cycle():
    graph = {p.stem: _runtime_imports(p) for p in FAULTS.glob("*.py") if p.stem != "__init__"}
    assert graph["nemesis"] >= {"base", "membership"}
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_kind_is_in_the_catalogue_and_the_old_import_paths_still_work():
    assert nemesis.NEMESES["membership"] is membership.Membership is faults.Membership
    assert nemesis.Nemesis is base.Nemesis is faults.Nemesis
    assert nemesis.Driver is base.Driver
    assert all(issubclass(cls, base.Nemesis) for cls in nemesis.NEMESES.values())
    assert isinstance(nemesis.make_nemesis("membership", change="join"), membership.Membership)
