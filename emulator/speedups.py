"""Which scheduler core runs: the compiled one (``emulator._speedups``) or the pure-Python reference.

The compiled core is a CPython extension built from ``emulator/_speedups.c``
when the package is installed with a C compiler (``setup.py`` declares it
optional: without one, ``pip install`` warns and installs pure Python). It
mirrors :mod:`emulator.scheduler` method for method, and compiles the
common case of the message path (``Network.transmit`` and ``_deliver``,
``Trace.recorder``, ``Uniform.ns_sampler``, ``copy_body``), handing
everything else to that Python. The pure-Python code stays the reference,
and the tests pass, with the same trace digests, in both modes.

Decided once, at import:

- ``CAPSIM_PURE_PYTHON=1`` in the environment forces pure Python;
- a build whose ``ABI`` differs from this module's, or that was built from
  other sources than the ones beside it (an editable install whose
  ``_speedups.c`` or ``scheduler.py`` changed since ``pip install -e .``),
  is not used: a ``RuntimeWarning`` says so, and pure Python runs.

``ACCELERATED`` says which runs and ``MODE`` says it in words (``scripts/bench.py`` prints it).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from types import ModuleType

__all__ = ["ABI", "ACCELERATED", "MODE", "PURE_REQUESTED", "native"]

#: The interface version the compiled module must declare (bump it with any change of the C side's contract).
ABI = 6

#: True if ``CAPSIM_PURE_PYTHON`` asked for pure Python (any value but "", "0").
PURE_REQUESTED = os.environ.get("CAPSIM_PURE_PYTHON", "") not in ("", "0")


def _stale(module: ModuleType) -> str | None:
    """Which source beside the package differs from the one the build was made from, if any."""
    here = Path(__file__).resolve().parent
    for name, built in (("_speedups.c", module.C_SHA256), ("scheduler.py", module.PY_SHA256)):
        source = here / name
        if source.exists() and hashlib.sha256(source.read_bytes()).hexdigest() != built:
            return name
    return None


def _load() -> tuple[ModuleType | None, str]:
    if PURE_REQUESTED:
        return None, "pure Python (CAPSIM_PURE_PYTHON is set)"
    try:
        from emulator import _speedups
    except ImportError:
        return None, "pure Python (the C core is not built)"
    if getattr(_speedups, "ABI", None) != ABI:
        problem = f"its ABI is {getattr(_speedups, 'ABI', None)}, this code needs {ABI}"
    elif (changed := _stale(_speedups)) is not None:
        problem = f"emulator/{changed} changed since it was built"
    else:
        return _speedups, "C (emulator._speedups)"
    warnings.warn(
        f"capsim: not using the compiled core {_speedups.__file__} ({problem}); running pure Python. "
        "Rebuild it with `pip install -e .` (or `pip install .`).",
        RuntimeWarning,
        stacklevel=2,
    )
    return None, f"pure Python (the C core is stale: {problem})"


#: The compiled module in use, or None (pure Python).
native, MODE = _load()
#: True when the compiled core runs.
ACCELERATED = native is not None
