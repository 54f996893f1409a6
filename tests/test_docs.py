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


# -- what the README and the docs name exists -----------------------------------------------------------

DOCUMENTS = ("README.md", "docs/index.md", "docs/checker-outcomes.md")
#: file names the documents give without their directory, and the directories they live in
_BESIDE = ("", "emulator", "scripts", "examples")
#: paths named that are not in a clone, and why
_NOT_IN_A_CLONE = {
    ".capsim-cluster.d/": "made by capsim cluster up, beside its state file",
    "site/index.html": "made by mkdocs build",
    "data/cas-register": "Knossos's directory, in Knossos's repository",
}


def _named_paths(text: str) -> set[str]:
    links = {link for link in re.findall(r"\]\(([^)\s]+)\)", text) if not link.startswith(("http://", "https://"))}
    quoted = {
        name
        for name in re.findall(r"`([^`\s]+)`", text)
        if re.fullmatch(r"[\w.\-/]+\.(py|toml|c|md|png|sh)|[\w.\-]+/[\w.\-/]*", name)
    }
    return links | quoted


def test_every_file_and_link_the_documents_name_exists():
    """Each relative link and each file or directory path in backquotes names something in the repository."""
    missing = []
    for document in DOCUMENTS:
        base = (ROOT / document).parent
        for name in sorted(_named_paths((ROOT / document).read_text()) - set(_NOT_IN_A_CLONE)):
            places = [base / name] + [ROOT / where / name for where in _BESIDE] + [ROOT / "emulator" / name]
            if not any(place.exists() for place in places):
                missing.append(f"{document}: {name}")
    assert missing == []


def test_the_path_finder_finds_what_the_readme_names():
    """The test above does look at the README's paths: its links, its scripts, the emulator's host modules."""
    named = _named_paths((ROOT / "README.md").read_text())
    assert {"docs/checker-outcomes.md", "docs/cap-throughput.png", "tests/common/outsider.py", "tcpstate.py"} <= named
    assert {"capsim/limits.py", "scripts/wgl_reference.py", "faults/httpkv.py", "emulator/_speedups.c"} <= named


def _resolve(dotted: str, roots: dict) -> object:
    head, *rest = dotted.split(".")
    value = roots[head]
    for part in rest:
        value = getattr(value, part)
    return value


def test_every_name_the_documents_give_in_code_exists():
    """`em.X`, `emulator.check.X`, `faults.X`, `sim.network.X`, `self.X` and the like name real attributes."""
    import emulator as em

    sim = em.Simulation(seed=1)
    sim.add_node("n1", em.Node)
    sim.add_host("h1")
    roots = {
        "em": em,
        "emulator": em,
        "nodes": importlib.import_module("nodes"),
        "faults": importlib.import_module("faults"),
        "capsim": importlib.import_module("capsim"),
        "sim": sim,
        "self": sim.node("n1"),
    }
    pattern = r"`((?:em|emulator|nodes|faults|capsim|sim|self)\.[\w.]+)"
    names = sorted({n for d in DOCUMENTS for n in re.findall(pattern, (ROOT / d).read_text())})
    assert len(names) > 40
    absent = []
    for name in names:
        for module in (name, name.rsplit(".", 1)[0]):  # a submodule the package does not import by itself
            if module.split(".")[0] in ("emulator", "nodes", "faults", "capsim"):
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass
        try:
            _resolve(name, roots)
        except AttributeError:
            absent.append(name)
    # the fault table's link methods given without their `sim.network.` prefix
    absent += [
        f"sim.network.{m}"
        for m in ("heal", "release", "set_link_oneway", "reset_link", "set_defaults")
        if not hasattr(sim.network, m)
    ]
    sim.close()
    assert absent == []


# -- what docs/checker-outcomes.md says of other tools' rules ---------------------------------------------


def test_no_document_says_porcupine_reads_a_fail_as_not_happened():
    """Porcupine has no rule for a `fail`: its kv test's parser reads no `:fail` line and its etcd test's reads a
    failed cas as one that ran; the documents say so rather than give Jepsen's rule to Porcupine."""
    outcomes = " ".join((ROOT / "docs" / "checker-outcomes.md").read_text().split())
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "Jepsen's, Knossos's and Porcupine's" not in outcomes and "Knossos and Porcupine's kv test" not in readme
    assert "The rule is Jepsen's and Knossos's: **a `fail` did not happen**" in outcomes
    assert "Porcupine itself has no rule for a `fail`" in outcomes
    assert "Nor does that parser read a `:fail` line" in outcomes
    assert "(Porcupine's test parsers read no `fail` but a cas's, which its etcd model takes to have run)" in readme


def test_the_kv_files_capsim_tests_with_hold_no_failed_op():
    """'The kv files capsim tests with leave no op open and hold no `:fail`, so the verdicts agree': Porcupine's
    kv parser would leave a failed op pending where capsim drops it, so no file may hold one."""
    import gzip

    import pytest

    from emulator.check import read_history
    from tests.common.check_histories import KV_DIR

    if not KV_DIR.is_dir():
        pytest.skip(f"shared kv histories not found at {KV_DIR} (set CAPSIM_SHARED)")
    files = sorted(KV_DIR.glob("*.edn")) + [
        ROOT / "tests" / "emulator" / "check" / "data" / "porcupine" / "c50-bad.txt.gz"
    ]
    assert len(files) == 5
    for path in files:
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
        assert ":type :fail" not in text, path.name
        ops = read_history(path)
        assert ops and not [op for op in ops if op["type"] == "fail"], path.name


def test_the_documents_name_how_a_completion_with_no_tuple_is_split():
    """docs/checker-outcomes.md names the one difference from Jepsen's independent split, which
    tests/emulator/check/test_readers.py checks capsim's side of (test_a_completion_with_no_tuple_...)."""
    outcomes = " ".join((ROOT / "docs" / "checker-outcomes.md").read_text().split())
    assert "capsim pairs it with its own invoke, which names the key, and keeps its value." in outcomes
    assert (
        "The `subhistory` of Jepsen's `jepsen.independent` keeps every op whose value is not a tuple in *every* key's"
        in outcomes
    )
    assert '("Process completed an operation without a prior invocation")' in outcomes
