"""What a plain ``pip install capsim`` gives, and what each extra adds.

The modules run in a fresh interpreter in which the extras' packages cannot be
imported (an import hook refuses them, as in an install without the extras):
every module a user imports still imports, and whatever needs an extra says in
one line which one.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import json
import mmap
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("emulator", "nodes", "faults", "capsim")
#: The extras' packages (by import name) and the extra that installs each.
EXTRAS = {"matplotlib": "plots", "distributed": "cluster", "dask": "cluster", "simpy": "bench", "xdist": "test"}
#: Import name -> distribution, for the core dependencies (yarl comes with aiohttp, pytest with pytest-asyncio).
CORE = {
    "aiohttp": "aiohttp",
    "yarl": "aiohttp",
    "mmh3": "mmh3",
    "rich": "rich",
    "hypothesis": "hypothesis",
    "pytest_asyncio": "pytest-asyncio",
    "pytest": "pytest-asyncio",
    "_pytest": "pytest-asyncio",
}

_WITHOUT_EXTRAS = f"""
import importlib.abc, sys
class _NoExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(EXTRAS)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NoExtras())
"""


def _clone(checkout: Path) -> None:
    """A git clone of this checkout at ``checkout``: builds from it leave the live tree (and what the running
    tests have loaded from it) alone."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True, timeout=120)


def _wheel(checkout: Path, out: Path) -> subprocess.CompletedProcess:
    """``pip wheel`` of ``checkout`` into ``out``, as pip install builds it."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(checkout)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _without_extras(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRAS + code, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()


def _imports(level: str):
    """(module file, top-level import name) of third-party imports; level: 'module' or 'function'."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    else []
                )
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in PACKAGES:
                        continue
                    if (node.col_offset == 0) == (level == "module"):
                        yield path.relative_to(ROOT), top


def test_module_level_imports_are_core_dependencies():
    core = {_requirement_name(r) for r in _pyproject()["project"]["dependencies"]}
    assert set(CORE.values()) == core
    for path, name in _imports("module"):
        assert CORE.get(name) in core, f"{path} imports {name} at module level, which no core dependency installs"


def test_lazy_imports_of_extras_are_declared_in_that_extra():
    extras = {
        extra: {_requirement_name(r) for r in requirements}
        for extra, requirements in _pyproject()["project"]["optional-dependencies"].items()
    }
    lazy = {name for path, name in _imports("function") if name not in CORE and path.name != "pytest_plugin.py"}
    assert lazy == {"matplotlib", "distributed"}
    assert "matplotlib" in extras["plots"] and "matplotlib" in extras["test"]
    assert "simpy" in extras["bench"] and "simpy" in extras["test"]  # tests/scripts runs bench.py --quick
    assert "dask" in extras["cluster"]


def test_every_module_imports_without_the_extras():
    code = """
import importlib, json, pkgutil, sys
failed = {}
for package in sys.argv[1:]:
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        if info.name.endswith(".__main__"):
            continue  # runs the command line
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed[info.name] = str(exc)
print(json.dumps(failed))
"""
    result = _without_extras(code, *PACKAGES)
    assert result.returncode == 0, result.stderr
    failed = json.loads(result.stdout)
    assert failed == {}


def test_plots_without_matplotlib_name_the_extra_in_one_line():
    result = _without_extras("from capsim.report import pyplot\npyplot()")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ImportError: plots need matplotlib, which is not installed: pip install 'capsim[plots]'"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["cap", "--duration", "1", "--partition-at", "0.2", "--heal-at", "0.7"],
        ["demo", "scaling", "--quick"],
        ["pacelc"],
    ],
)
def test_out_with_plots_is_refused_before_running_without_matplotlib(argv, tmp_path):
    code = "import sys\nfrom capsim.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = _without_extras(code, *argv, "--out", str(tmp_path / "report"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"capsim {argv[0]}: error: --out writes plots; plots need matplotlib, which is not installed: "
        "pip install 'capsim[plots]', or leave out --out"
    ]
    assert result.stdout == ""  # refused before anything ran
    assert not any((tmp_path / "report").iterdir())


def test_out_without_plots_works_without_matplotlib(tmp_path):
    code = "import sys\nfrom capsim.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = _without_extras(code, "demo", "partition", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "index.html").exists() or any(tmp_path.glob("*.html"))


def test_a_cluster_sweep_without_dask_names_the_extra():
    code = (
        "from capsim.on_dask import ClusterError, run_on_dask\n"
        "try:\n    next(run_on_dask(None, [1], 'local'))\n"
        "except ClusterError as exc:\n    print(exc)\n"
    )
    result = _without_extras(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "--cluster needs Dask distributed: pip install 'capsim[cluster]'"


def _supported() -> list[str]:
    prefix = "Programming Language :: Python :: 3."
    return [
        c.removeprefix("Programming Language :: Python :: ")
        for c in _pyproject()["project"]["classifiers"]
        if c.startswith(prefix)
    ]


def test_supported_pythons_start_at_requires_python_and_include_this_one():
    assert _pyproject()["project"]["requires-python"] == ">=3.11"
    assert _supported() == ["3.11", "3.12", "3.13"]
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in _supported()


def _ci_find_python(version: str, env: dict) -> subprocess.CompletedProcess:
    """.ci/run's find_python, on its own."""
    script = (ROOT / ".ci" / "run").read_text()
    function = script[script.index("find_python() {") : script.index("\n}\n", script.index("find_python() {")) + 3]
    return subprocess.run(
        [shutil.which("bash"), "-c", function + f'find_python {version} || echo "absent"'],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_ci_finds_this_python_and_says_when_a_version_is_absent(tmp_path):
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pyenv = tmp_path / "pyenv"
    (pyenv / "versions" / f"{version}.0" / "bin").mkdir(parents=True)
    (pyenv / "versions" / f"{version}.0" / "bin" / f"python{version}").symlink_to(sys.executable)
    tools = tmp_path / "bin"  # a PATH with no python on it: only what find_python runs
    tools.mkdir()
    for tool in ("ls", "sort"):
        (tools / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(tools), "PYENV_ROOT": str(pyenv)}
    found = _ci_find_python(version, env).stdout.strip()
    assert Path(found).resolve() == Path(sys.executable).resolve()
    assert _ci_find_python("3.99", env).stdout.strip() == "absent"
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'echo "no Python $version on this machine; skipping the kernel tests on $version"' in ci


@pytest.mark.slow
def test_the_wheel_ships_py_typed_for_every_package(tmp_path):
    """PEP 561: type checkers read a package's annotations only if it ships py.typed (.ci/run also checks)."""
    # Built from a clone: a build from the checkout leaves its compiled core beside the source (setup.py), and
    # the running tests have that file loaded.
    checkout = tmp_path / "capsim"
    _clone(checkout)
    built = _wheel(checkout, tmp_path)
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("capsim-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"{package}/py.typed" for package in PACKAGES} <= names


def test_lint_says_how_to_install_its_tools_when_they_are_missing(tmp_path):
    tools = tmp_path / "bin"  # everything lint.sh needs but ruff and mypy
    tools.mkdir()
    for tool in ("dirname", "grep", "tail", "printf"):
        if shutil.which(tool):
            (tools / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        [shutil.which("bash"), str(ROOT / "scripts" / "lint.sh")],
        capture_output=True,
        text=True,
        env={"PATH": str(tools)},
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout.strip() == "ruff is not installed: pip install -e '.[dev]'"


def test_six_demos_draw_plots_as_the_readme_says():
    """The README's extras table says the plots extra serves six demos: the ones --out refuses without it."""
    from capsim.commands.demo import _draws_plots, _load
    from capsim.demos import DEMOS

    drawing = [name for name in DEMOS if _draws_plots(_load(name)[0])]
    assert len(drawing) == 6 and "six demos" in (ROOT / "README.md").read_text()
    assert set(drawing) == {"scaling", "caching", "breaker", "multi-primary", "edge", "microservices"}


@pytest.mark.slow
def test_a_build_from_a_checkout_leaves_the_compiled_core_beside_its_source(tmp_path):
    """The README's first command, ``pip install . && python3 -m capsim cap``, runs in the checkout, whose
    own emulator/ is imported first: the build is left there too, so the command uses the compiled core."""
    if importlib.util.find_spec("emulator._speedups") is None:
        pytest.skip("no C compiler here: the package is pure Python")
    checkout = tmp_path / "capsim"
    _clone(checkout)
    assert not list((checkout / "emulator").glob("_speedups*.so"))
    built = _wheel(checkout, tmp_path / "wheels")
    assert built.returncode == 0, built.stderr
    # Loaded by itself (an editable install's import hook would send "import emulator" to this tree):
    # it is there, it loads, and it was built from the checkout's sources.
    [module] = (checkout / "emulator").glob("_speedups*.so")
    loader = importlib.machinery.ExtensionFileLoader("emulator._speedups", str(module))
    core = importlib.util.module_from_spec(importlib.util.spec_from_loader("emulator._speedups", loader))
    loader.exec_module(core)
    source = (checkout / "emulator" / "_speedups.c").read_bytes()
    assert hashlib.sha256(source).hexdigest() == core.C_SHA256 and hasattr(core, "MessagePath")
    # A second build replaces that file by a rename: a process with the first one loaded (mapped) keeps it
    # whole. Written in place, it changed under such processes and crashed them (type objects read as zeros).
    with open(module, "rb") as first:
        mapped = mmap.mmap(first.fileno(), 0, access=mmap.ACCESS_READ)
        before, inode = mapped[:], os.fstat(first.fileno()).st_ino
        again = _wheel(checkout, tmp_path / "again")
        assert again.returncode == 0, again.stderr
        assert module.stat().st_ino != inode and mapped[:] == before
        mapped.close()
