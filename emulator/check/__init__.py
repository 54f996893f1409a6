"""Checkers: pure functions from a history to a verdict.

A history is a list of op dicts in the order they happened (capsim's format,
see :mod:`emulator.check.ops`); :func:`read_history` reads one from capsim
JSON Lines, Jepsen or Knossos EDN (Porcupine's kv format is the same) or a
Jepsen console log. :mod:`emulator.check.examples` ships small good and bad
ones; :mod:`emulator.check.synth` makes large ones of known shapes.

    verdict = linearizable(history, model="cas_register", timeout=10)   # or model=None: detect
    verdict.valid          # True, False, or None (ran out of time)
    print(verdict)         # why not: the longest prefix and the op that cannot follow
    verdict.write_html("timeline.html")

The other checkers return small result objects with ``to_dict()``:
:func:`stale_reads`, :func:`lost_writes`, :func:`availability`, :func:`answered_time`,
:func:`latency`, :func:`convergence`.

This package uses the standard library only and imports nothing else from
``emulator``, so it can judge histories from anywhere.

The readers, the HTML timeline and the ``examples`` and ``synth`` modules
are imported on first use (``emulator.check.read_history``, ``from
emulator.check import synth``): a chaos run checks the history it recorded
and reads, draws or makes none, and each of its sweep's workers starts
sooner for not loading them.
"""

import importlib
import typing  # typing.Any, not `from typing import Any`: dir() of the package lists its own names only

from emulator.check.anomalies import LostWrite, LostWrites, StaleRead, StaleReads, lost_writes, stale_reads
from emulator.check.errors import CheckError, EdnError, HistoryFormatError, ModelError
from emulator.check.linearizable import Progress, check_file, linearizable
from emulator.check.metrics import (
    Convergence,
    FaultWindow,
    Percentiles,
    Rate,
    Share,
    answered_time,
    availability,
    convergence,
    fault_windows,
    latency,
    mean_fraction,
)
from emulator.check.models import MODELS, Model, detect_model
from emulator.check.ops import NemesisOp, Op, pair_ops
from emulator.check.verdict import PartitionResult, Verdict

if typing.TYPE_CHECKING:
    from emulator.check import examples as examples  # modules, not in __all__
    from emulator.check import synth as synth
    from emulator.check.readers import History, parse_history, read_history, write_jsonl
    from emulator.check.timeline import render_html, write_html

#: Names imported on first use -> the module that holds them (a module itself for ``examples`` and ``synth``).
_LAZY = {
    "History": "emulator.check.readers",
    "parse_history": "emulator.check.readers",
    "read_history": "emulator.check.readers",
    "write_jsonl": "emulator.check.readers",
    "render_html": "emulator.check.timeline",
    "write_html": "emulator.check.timeline",
    "examples": "emulator.check.examples",
    "synth": "emulator.check.synth",
}

__all__ = [
    "MODELS",
    "CheckError",
    "Convergence",
    "EdnError",
    "FaultWindow",
    "History",
    "HistoryFormatError",
    "LostWrite",
    "LostWrites",
    "Model",
    "ModelError",
    "NemesisOp",
    "Op",
    "PartitionResult",
    "Percentiles",
    "Progress",
    "Rate",
    "Share",
    "StaleRead",
    "StaleReads",
    "Verdict",
    "answered_time",
    "availability",
    "check_file",
    "convergence",
    "detect_model",
    "fault_windows",
    "latency",
    "linearizable",
    "lost_writes",
    "mean_fraction",
    "pair_ops",
    "parse_history",
    "read_history",
    "render_html",
    "stale_reads",
    "write_html",
    "write_jsonl",
]


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emulator.check' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if module.endswith(f".{name}") else getattr(loaded, name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
