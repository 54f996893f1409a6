"""Small histories shipped with capsim, good and bad, one or more in each format the readers take.

    from emulator.check import check_file, examples
    check_file(examples.path("knossos-bad-analysis-bad")).valid   # False

``capsim check --examples`` lists them and ``capsim check --example NAME``
checks one. Sources: capsim itself (``capsim-*``), Porcupine's test data
(``porcupine-kv-*``, ``jepsen-etcd-100-good``; MIT licence), Knossos's data
(``knossos-*``; Eclipse Public License 1.0), kept as they are; the two
``*-bad`` capsim and Jepsen-log files were made for capsim.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

__all__ = ["DIR", "EXAMPLES", "Example", "path"]

DIR = Path(__file__).resolve().parent


class Example(NamedTuple):
    """One shipped history: its name, file, format, whether it is linearizable, and what it shows."""

    name: str
    file: str
    format: str
    valid: bool
    what: str


EXAMPLES = (
    Example(
        "capsim-lin-kv-partitions-good",
        "capsim-lin-kv-partitions-good.jsonl",
        "jsonl",
        True,
        "capsim chaos lin-kv under partitions: timeouts, error 20 reads, failed cas (22)",
    ),
    Example(
        "capsim-split-brain-bad",
        "capsim-split-brain-bad.jsonl",
        "jsonl",
        False,
        "two lin-kv nodes that each think they lead: a read misses an acknowledged write",
    ),
    Example(
        "porcupine-kv-c01-ok",
        "porcupine-kv-c01-ok.edn",
        "edn",
        True,
        "Porcupine's kv format (Jepsen EDN, one map per line): get/put/append",
    ),
    Example("porcupine-kv-c01-bad", "porcupine-kv-c01-bad.edn", "edn", False, "the same, not linearizable"),
    Example(
        "knossos-cas-register-bug-good",
        "knossos-cas-register-bug-good.edn",
        "edn-vector",
        True,
        "a Knossos data file (one EDN vector, comments, a read that never returned)",
    ),
    Example(
        "knossos-bad-analysis-bad",
        "knossos-bad-analysis-bad.edn",
        "edn-vector",
        False,
        "Knossos: two concurrent reads of values nobody wrote",
    ),
    Example(
        "knossos-rethink-fail-minimal-bad",
        "knossos-rethink-fail-minimal-bad.edn",
        "edn-vector",
        False,
        "Knossos: a read of 3 while the value could only be 0 or 4 (an EDN list)",
    ),
    Example(
        "jepsen-etcd-100-good",
        "jepsen-etcd-100-good.log",
        "jepsen-log",
        True,
        "Porcupine's etcd_100.log: a Jepsen console log with columns separated by spaces",
    ),
    Example(
        "jepsen-stale-read-bad",
        "jepsen-stale-read-bad.log",
        "jepsen-log",
        False,
        "a Jepsen console log with tabs: a read of 3 after a cas to 4 completed",
    ),
)
_BY_NAME = {e.name: e for e in EXAMPLES}


def path(name: str) -> Path:
    """The file of the example called ``name`` (with or without its extension).

    Raises:
        KeyError: no example has that name; the message lists them.
    """
    found = _BY_NAME.get(name) or next((e for e in EXAMPLES if e.file == name), None)
    if found is None:
        names = ", ".join(e.name for e in EXAMPLES)
        raise KeyError(f"no example {name!r}; the examples are: {names}")
    return DIR / found.file
