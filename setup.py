"""The compiled scheduler core (emulator/_speedups.c), optional: without a C compiler, pip installs pure Python.

Everything else about the package is in pyproject.toml. The build records the
SHA-256 of the C source and of emulator/scheduler.py (the Python code it
mirrors); emulator/speedups.py refuses a build whose sources have changed
since (a stale editable install), with a warning, and runs pure Python.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent


def sha256(name: str) -> str:
    return hashlib.sha256((HERE / "emulator" / name).read_bytes()).hexdigest()


setup(
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
    ]
)
