"""Tests of capsim/commands/chaos.py: `chaos --real` under Ctrl-C and SIGTERM at any moment of start-up."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emulator.transport.processes import running
from tests.common.processes import processes_mentioning

ROOT = str(Path(__file__).resolve().parents[3])

SCENARIO = textwrap.dedent("""
    name = "lin-kv, n2 cut off"
    seed = 4
    checks = ["linearizable"]

    [cluster]
    protocol = "lin-kv"
    nodes = 3

    [workload]
    clients = 3
    rate = 60
    keys = 2
    timeout = 0.25
    duration = 2.5

    [[faults.steps]]
    at = 0.5
    kind = "partition"
    duration = 1.0
    groups = [["n0", "n1"], ["n2"]]
""")


def _nodes(proc, out: Path) -> list[int]:
    """The node processes of the run (every process naming ``out`` but capsim itself)."""
    return [pid for pid in processes_mentioning(str(out)) if pid != proc.pid]


def _before_the_first_node(proc, out: Path) -> bool:
    """capsim has checked --out (its handlers are in place) and no node process exists yet."""
    return out.exists() and not _nodes(proc, out)


def _while_nodes_start(proc, out: Path) -> bool:
    """A node process exists: the launch is under way (nodes starting, health checks)."""
    return bool(_nodes(proc, out))


#: moments of start-up, each a test of what capsim is doing (polled every few ms), and whether to
#: wait for the line that announces the nodes as well
POINTS = {
    "before the first node starts": (_before_the_first_node, False),
    "while the nodes start": (_while_nodes_start, False),
    "as the run starts": (None, True),
}


def _run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsim", "chaos", "--real", str(path), "--time-scale", "4", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    return proc, out


def _wait_for(test, proc, out: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not test(proc, out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("point", POINTS)
def test_a_signal_at_any_moment_of_start_up_exits_130_and_leaves_no_node(tmp_path, point, sig):
    """Ctrl-C (or SIGTERM) before, during and right after the launch: exit 130, every node stopped."""
    if sig == signal.SIGTERM and point == "before the first node starts":
        pytest.skip("SIGTERM is taken over with the nodes; before them it ends the process as usual")
    test, announced = POINTS[point]
    proc, out = _run(tmp_path)
    seen: list[int] = []
    try:
        if test is not None:
            _wait_for(test, proc, out)
        if announced:
            line = proc.stdout.readline()
            assert "processes up" in line, line + proc.stderr.read()
        seen = _nodes(proc, out)
        assert proc.poll() is None, "the run ended before the signal: " + proc.stderr.read()
        proc.send_signal(sig)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        leftovers = _nodes(proc, out)
        for pid in leftovers:
            os.killpg(pid, signal.SIGKILL)
    err = proc.stderr.read()
    assert status == 130, err
    assert "capsim: interrupted" in err and "Traceback" not in err
    assert leftovers == [] and not any(running(pid) for pid in seen)
