"""Finding processes a test started, to prove none outlives it."""

from pathlib import Path

from emulator.transport.processes import running


def processes_mentioning(text: str) -> list[int]:
    """Live pids whose command line mentions ``text`` (node processes name their paths in it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and running(int(entry.name)):
                pids.append(int(entry.name))
    return pids
