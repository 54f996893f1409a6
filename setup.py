"""The compiled scheduler core (emulator/_speedups.c), optional: without a C compiler, pip installs pure Python.

Everything else about the package is in pyproject.toml. The build records the
SHA-256 of the C source and of emulator/scheduler.py (the Python code it
mirrors); emulator/speedups.py refuses a build whose sources have changed
since (a stale editable install), with a warning, and runs pure Python.

A build from a source checkout also leaves the compiled module beside its
source, as an editable install does: ``python -m capsim`` run in the
checkout imports the checkout's ``emulator/``, not the installed copy, and
uses the build only if it is there. The copy replaces the one there by a
rename, never by writing into it: a process running capsim from the
checkout has that file mapped, and rewriting it in place changed the code
and static data under the process (its type objects read as zeros; it
crashed in the garbage collector or at exit).
"""

import hashlib
import os
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def sha256(name: str) -> str:
    return hashlib.sha256((HERE / "emulator" / name).read_bytes()).hexdigest()


class BuildExt(build_ext):
    """build_ext, which also copies each module it built beside its source (see the module docstring)."""

    def run(self) -> None:
        super().run()
        if self.inplace:
            return
        for ext in self.extensions:
            built, beside = Path(self.get_ext_fullpath(ext.name)), HERE / self.get_ext_filename(ext.name)
            if built.exists() and beside.parent.is_dir() and built.resolve() != beside.resolve():
                fresh = beside.with_name(f".{beside.name}.{os.getpid()}.tmp")
                try:
                    shutil.copyfile(built, fresh)
                    os.replace(fresh, beside)  # a new file: whoever has the old one mapped keeps it whole
                except OSError:  # a read-only checkout: the installed copy still serves the capsim command
                    fresh.unlink(missing_ok=True)


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "emulator._speedups",
            sources=["emulator/_speedups.c"],
            define_macros=[
                ("CAPSIM_C_SHA256", f'"{sha256("_speedups.c")}"'),
                ("CAPSIM_PY_SHA256", f'"{sha256("scheduler.py")}"'),
            ],
            optional=True,  # no compiler: setuptools warns, and the package installs as pure Python
        )
    ],
)
