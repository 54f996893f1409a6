"""Checkers: pure functions from a history to a verdict.

A history is a list of op dicts in the order they happened (capsim's format,
see :mod:`emulator.check.ops`); :func:`read_history` reads one from capsim
JSON Lines, Jepsen EDN or a Jepsen console log.

    verdict = linearizable(history, model="cas_register", timeout=10)
    verdict.valid          # True, False, or None (ran out of time)
    print(verdict)         # why not: the longest prefix and the op that cannot follow
    verdict.write_html("timeline.html")

The other checkers return small result objects with ``to_dict()``:
:func:`stale_reads`, :func:`lost_writes`, :func:`availability`,
:func:`latency`, :func:`convergence`.

This package uses the standard library only and imports nothing else from
``emulator``, so it can judge histories from anywhere.
"""

from emulator.check.anomalies import LostWrite, LostWrites, StaleRead, StaleReads, lost_writes, stale_reads
from emulator.check.errors import CheckError, EdnError, HistoryFormatError, ModelError
from emulator.check.linearizable import check_file, linearizable
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
from emulator.check.models import MODELS, Model
from emulator.check.ops import NemesisOp, Op, pair_ops
from emulator.check.readers import parse_history, read_history, write_jsonl
from emulator.check.timeline import render_html, write_html
from emulator.check.verdict import PartitionResult, Verdict

__all__ = [
    "MODELS",
    "CheckError",
    "Convergence",
    "EdnError",
    "FaultWindow",
    "HistoryFormatError",
    "LostWrite",
    "LostWrites",
    "Model",
    "ModelError",
    "NemesisOp",
    "Op",
    "PartitionResult",
    "Percentiles",
    "Rate",
    "StaleRead",
    "StaleReads",
    "Verdict",
    "availability",
    "check_file",
    "convergence",
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
