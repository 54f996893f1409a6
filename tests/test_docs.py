"""The API reference's sources, and what ``help()`` shows: nothing points outside the repository."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import pydoc
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("emulator", "nodes", "faults", "capsim")
#: A path that exists only beside a developer's checkout, never in an install.
_OUTSIDE = re.compile(r"\.\./shared|/work/|shared/(contract|data|DESIGN)")


def _modules():
    for package in PACKAGES:
        yield importlib.import_module(package)
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            if not info.name.endswith((".__main__", ".pytest_plugin")):
                yield importlib.import_module(info.name)


def test_help_of_the_packages_points_nowhere_outside_the_repository():
    for package in PACKAGES:
        text = pydoc.render_doc(importlib.import_module(package), renderer=pydoc.plaintext)
        text = text.replace(str(ROOT), "ROOT")  # help's FILE line: the module itself, inside the repository
        assert not _OUTSIDE.search(text), (package, _OUTSIDE.search(text).group())


def test_no_module_docstring_points_outside_the_repository():
    leaks = {
        module.__name__: _OUTSIDE.search(module.__doc__).group()
        for module in _modules()
        if module.__doc__ and _OUTSIDE.search(module.__doc__)
    }
    assert leaks == {}


def test_the_reference_has_a_page_per_package_rendering_it_whole():
    config = (ROOT / "mkdocs.yml").read_text()
    for package in PACKAGES:
        page = ROOT / "docs" / "api" / f"{package}.md"
        assert f"::: {package}\n" in page.read_text()
        assert f"api/{package}.md" in config
    assert "show_submodules: true" in config and "docstring_style: google" in config
    assert "highlightjs: false" in config  # nothing fetched from a CDN: the site reads offline


#: An Args entry naming several parameters at once ("n, r, w: ..."): mkdocstrings cannot match it to
#: the signature and warns, and .ci/run fails the API reference on any warning.
_GROUPED = re.compile(r"^\s+\**\w+(, \**\w+)+: ", re.MULTILINE)


def _docstrings():
    for path in sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc and "Args:" in doc:
                    yield f"{path.relative_to(ROOT)}:{getattr(node, 'name', '<module>')}", doc


def test_every_args_entry_names_one_parameter():
    grouped = {where: match.group().strip() for where, doc in _docstrings() if (match := _GROUPED.search(doc))}
    assert grouped == {}, "document each parameter on its own line"


def test_the_grouped_entry_check_finds_one():
    assert _GROUPED.search("Args:\n        n, r, w: replicas, reads, writes.\n")
    assert not _GROUPED.search("Args:\n        n: replicas per key.\n        text: a, b: c.\n")
