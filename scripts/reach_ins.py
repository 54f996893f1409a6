"""List where library code reaches into another module's or another class's private names.

A reach-in is `obj._name` (not a dunder) where `obj` is not `self` or `cls` (also as
`getattr(obj, "_name")`, `setattr`, `hasattr`, `delattr`), and
`from module import _name` across modules. Access is fine, and not listed, when
`_name` belongs to the class the code sits in (`other._x` inside class X, which
defines `_x`: another instance of the same class).

Each hit has a kind:
- `cross-module`: `_name` is defined nowhere in the module that reads it (it belongs
  to another module's class or to a stdlib module such as asyncio);
- `same-module`: `_name` is defined in the same module, by another class or at
  module level (a helper function reading a class's field, say);
- `import`: `from x import _name`, with x another module.

Usage: python scripts/reach_ins.py [--all] [DIR ...]   (default: emulator nodes faults capsim)
Prints the hits with counts per file and per directory. --all lists every hit.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("emulator", "nodes", "faults", "capsim")
SELF_NAMES = frozenset({"self", "cls"})
ATTR_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


@dataclass(frozen=True)
class Hit:
    """One reach-in: where it is, what it reads, and which kind it is."""

    path: str
    line: int
    kind: str
    name: str
    text: str
    scope: str


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _class_names(cls: ast.ClassDef) -> set[str]:
    """Private names a class defines: class-body names and `self.`/`cls.` attributes set in its methods."""
    names: set[str] = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    names.update(_self_stored(sub) for sub in ast.walk(cls))
    return {n for n in names if _is_private(n)}


def _self_stored(node: ast.AST) -> str:
    """The attribute name of a `self.x = ...` or `cls.x = ...` target, else ''."""
    if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, ast.Store):
        return ""
    return node.attr if isinstance(node.value, ast.Name) and node.value.id in SELF_NAMES else ""


def _module_names(tree: ast.Module) -> set[str]:
    """Every private name the module defines anywhere: classes' fields, functions, module globals."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= _class_names(node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return {n for n in names if _is_private(n)}


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str, module_names: set[str]) -> None:
        self.path = path
        self.module_names = module_names
        self.classes: list[set[str]] = []
        self.scopes: list[str] = []
        self.hits: list[Hit] = []

    def _scope(self) -> str:
        return ".".join(self.scopes) or "<module>"

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(_class_names(node))
        self.scopes.append(node.name)
        self.generic_visit(node)
        self.scopes.pop()
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append(node.name)
        self.generic_visit(node)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if _is_private(alias.name):
                text = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                self.hits.append(Hit(self.path, node.lineno, "import", alias.name, text, self._scope()))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        self._check(node, node.value, node.attr)

    def visit_Call(self, node: ast.Call) -> None:
        """``getattr(obj, "_name")`` and its kin reach in as ``obj._name`` does."""
        self.generic_visit(node)
        func, args = node.func, node.args
        if isinstance(func, ast.Name) and func.id in ATTR_FUNCTIONS and len(args) >= 2:
            name = args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                self._check(node, args[0], name.value)

    def _check(self, node: ast.expr, owner: ast.expr, attr: str) -> None:
        if not _is_private(attr):
            return
        if isinstance(owner, ast.Name) and owner.id in SELF_NAMES:
            return
        if any(attr in names for names in self.classes):
            return
        kind = "same-module" if attr in self.module_names else "cross-module"
        self.hits.append(Hit(self.path, node.lineno, kind, attr, ast.unparse(node), self._scope()))


def check_file(path: Path, root: Path = ROOT) -> list[Hit]:
    """The reach-ins in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    visitor = _Visitor(path.relative_to(root).as_posix(), _module_names(tree))
    visitor.visit(tree)
    return visitor.hits


def check_tree(dirs: tuple[str, ...] = LIBRARY, root: Path = ROOT) -> list[Hit]:
    """The reach-ins in every .py file under the given directories, in path order."""
    return [hit for d in dirs for path in sorted((root / d).rglob("*.py")) for hit in check_file(path, root)]


def main(argv: list[str] | None = None) -> int:
    """Print the hits per file and per directory; the exit status is 1 if there are any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", default=list(LIBRARY))
    parser.add_argument("--all", action="store_true", help="list every hit, not only the counts")
    args = parser.parse_args(argv)
    hits = check_tree(tuple(args.dirs))
    per_file = Counter((h.path, h.kind) for h in hits)
    for (path, kind), count in sorted(per_file.items()):
        print(f"{count:4d}  {kind:12s}  {path}")
    if args.all:
        for h in hits:
            print(f"{h.path}:{h.line}  {h.kind:12s}  {h.scope}: {h.text}")
    per_dir = Counter((h.path.split("/")[0], h.kind) for h in hits)
    print("per directory:", ", ".join(f"{d} {k} {n}" for (d, k), n in sorted(per_dir.items())) or "none")
    print(f"{len(hits)} hits")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
