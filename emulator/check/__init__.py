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
:func:`stale_reads`, :func:`lost_writes`, :func:`availability`,
:func:`latency`, :func:`convergence`.

This package uses the standard library only and imports nothing else from
``emulator``, so it can judge histories from anywhere.
"""

from emulator.check import examples as examples  # modules, not in __all__
from emulator.check import synth as synth
from emulator.check.anomalies import LostWrite, LostWrites, StaleRead, StaleReads, lost_writes, stale_reads
from emulator.check.errors import CheckError, EdnError, HistoryFormatError, ModelError
from emulator.check.linearizable import Progress, check_file, linearizable
from emulator.check.metrics import (
    Convergence,
    FaultWindow,
    Percentiles,
    Rate,
    availability,
    convergence,
    fault_windows,
    latency,
    mean_fraction,
)
from emulator.check.models import MODELS, Model, detect_model
from emulator.check.ops import NemesisOp, Op, pair_ops
from emulator.check.readers import History, parse_history, read_history, write_jsonl
from emulator.check.timeline import render_html, write_html
from emulator.check.verdict import PartitionResult, Verdict

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
    "StaleRead",
    "StaleReads",
    "Verdict",
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
