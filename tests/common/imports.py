"""What a fresh interpreter imports to run a capsim command: start-up checks by ``sys.modules``, never by a clock."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

__all__ = ["SOCKET_LAYER", "modules_after", "modules_at_fork", "modules_of"]

#: The socket layer, which only hosts (unmodified asyncio programs) use: a cluster of nodes never imports it.
SOCKET_LAYER = frozenset(
    {"emulator.hosts", "emulator.sandbox", "emulator.kernel", "emulator.sockets", "emulator.tcp", "emulator.resolver"}
)

# Runs capsim ARGV in this interpreter (help and usage errors exit through SystemExit), then prints sys.modules.
_COMMAND = """
import json, sys
import capsim.cli
try:
    capsim.cli.main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""

# The same, noting sys.modules when the sweep's worker pool forks its workers (what each worker starts with).
_AT_FORK = """
import json, sys
import capsim.cli
import capsim.workers

seen = []
start = capsim.workers.WorkerPool.start

def start_and_note(pool):
    seen.append(sorted(sys.modules))
    return start(pool)

capsim.workers.WorkerPool.start = start_and_note
capsim.cli.main(sys.argv[1:])
print(json.dumps(seen))
"""


def _run(code: str, argv: tuple[str, ...]) -> Any:  # the JSON the code prints
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 1), out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def modules_after(*argv: str) -> set[str]:
    """The modules a fresh interpreter holds after ``capsim ARGV`` (its output is discarded)."""
    return set(_run(_COMMAND, argv))


def modules_at_fork(*argv: str) -> list[set[str]]:
    """The modules ``capsim ARGV`` held each time it started a worker pool (none: the seeds ran in process)."""
    return [set(names) for names in _run(_AT_FORK, argv)]


def modules_of(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    return set(_run(code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))", ()))
