"""Tests of emulator/transport/processes.py and RealCluster on node processes."""

import os
import stat
import sys
from pathlib import Path

import pytest

from emulator.transport import ClusterState, LaunchError, NodeProcess, RealCluster, free_ports, launch, stop
from emulator.transport.processes import running
from tests.common.transport_worlds import outcome

ROOT = str(Path(__file__).resolve().parents[3])
TOKEN = "process-token"


def _procs(tmp_path, protocol, names, data=True):
    ports = free_ports(len(names))
    urls = {n: f"http://127.0.0.1:{p}" for n, p in zip(names, ports)}
    procs = []
    for name, port in zip(names, ports):
        argv = [
            sys.executable,
            "-m",
            "capsim.commands.serve",
            "--protocol",
            protocol,
            "--name",
            name,
            "--listen",
            f"127.0.0.1:{port}",
        ]
        argv += [arg for n, u in urls.items() if n != name for arg in ("--peer", f"{n}={u}")]
        if data:
            argv += ["--data-dir", str(tmp_path / "data")]
        procs.append(NodeProcess(name, urls[name], argv, str(tmp_path / f"{name}.log")))
    return procs


def _env():
    return {**os.environ, "CAPSIM_TOKEN": TOKEN, "PYTHONPATH": ROOT}


def test_a_node_that_fails_to_start_leaves_no_process_behind(tmp_path):
    """One node exits at start: LaunchError names it and its status, and every started process is gone."""
    procs = _procs(tmp_path, "emulator.transport.diag:Echo", ["n1", "n2", "n3"], data=False)
    procs[1].argv = [sys.executable, "-S", "-c", "import sys; print('no luck'); sys.exit(2)"]
    with pytest.raises(LaunchError, match="n2 exited with status 2") as failed:
        launch(procs, _env(), timeout=20)
    assert failed.value.name == "n2" and failed.value.returncode == 2 and "no luck" in str(failed.value)
    assert [p.pid for p in procs if p.pid] and not any(running(p.pid) for p in procs)


def test_state_files_are_private_and_round_trip(tmp_path):
    """The state file (it holds the token) is readable by its owner only and loads back equal."""
    state = ClusterState(
        "lin-kv",
        "secret",
        [NodeProcess("n1", "http://127.0.0.1:1", ["x"], "n1.log", 42)],
        faults={"rules": []},
        skews={"n1": [1.0, 0.0]},
    )
    path = state.save(tmp_path / "state.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = ClusterState.load(path)
    assert (loaded.protocol, loaded.token, loaded.nodes, loaded.skews) == (
        "lin-kv",
        "secret",
        state.nodes,
        {"n1": [1.0, 0.0]},
    )
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a capsim cluster state"):
        ClusterState.load(tmp_path / "junk.json")


@pytest.mark.asyncio
async def test_crash_pause_and_restart_act_on_real_processes(tmp_path):
    """SIGSTOP makes a node time out until SIGCONT; SIGKILL + respawn keeps storage; stop ends a stopped node."""
    procs = launch(_procs(tmp_path, "tests.common.transport_nodes:Relay", ["n1", "n2"]), _env(), timeout=20)
    state = ClusterState("relay", TOKEN, procs)
    cluster = await RealCluster.from_state(state)
    try:
        c = await cluster.add_client("c0")
        assert (await c.rpc("n1", {"type": "notes"}))["boots"] == 1
        await cluster.pause("n2")
        paused = await outcome(c.rpc("n1", {"type": "relay", "to": "n2", "timeout": 0.2}, timeout=2.0))
        await cluster.resume("n2")
        resumed = await outcome(c.rpc("n1", {"type": "relay", "to": "n2", "timeout": 2.0}, timeout=3.0))
        old_pid = state.node("n1").pid
        await cluster.crash("n1")
        assert not running(old_pid) and not cluster.alive("n1")
        assert await outcome(c.rpc("n1", {"type": "notes"}, timeout=0.2)) == "timeout"
        await cluster.restart("n1")
        boots = (await c.rpc("n1", {"type": "notes"}))["boots"]
        await cluster.pause("n2")  # stop must end a stopped process too (SIGCONT follows SIGTERM)
    finally:
        await cluster.close()
        stop(state.nodes)
    assert (paused, resumed, boots) == ("error 0", "ok", 2)
    assert state.node("n1").pid != old_pid and not any(running(p.pid) for p in state.nodes)


def test_a_state_file_is_private_even_over_a_temporary_file_left_with_open_permissions(tmp_path):
    """save wrote the token through '<state>.tmp' opened with O_CREAT: a file already there (left behind, or put
    there by another user of a shared directory) kept its own permissions, and was renamed into place, token and
    all, readable by others. The state file is private whatever lies beside it, and a stranger's file is untouched."""
    left = tmp_path / "state.json.tmp"
    left.write_text("someone else's")
    left.chmod(0o666)
    state = ClusterState("lin-kv", "secret", [NodeProcess("n1", "http://127.0.0.1:1", ["x"], "n1.log", 42)])
    path = state.save(tmp_path / "state.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and ClusterState.load(path).token == "secret"
    assert left.read_text() == "someone else's"


def _until_exec(pid: int, program: bytes, within: float = 10.0) -> None:
    """Wait until process ``pid`` runs ``program`` (its command line's first word; wall time, at most ``within``)."""
    import time

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read().split(b"\0")[0] == program:
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not exec {program!r} within {within} s")


def test_a_pid_taken_by_another_program_that_names_the_node_is_not_the_node():
    """A state file's pid now held by `sh -c "sleep 300; true" n0`: the name anywhere in its command line was taken
    as the node, so `capsim cluster crash n0` killed that program (found by a review). A node's takes --name n0."""
    import signal
    import subprocess

    from emulator.transport.processes import NodeProcess, node_running, signal_node

    other = subprocess.Popen(["sh", "-c", "sleep 300; true", "n0"], start_new_session=True)
    node = subprocess.Popen(["sh", "-c", "sleep 300; true", "--name", "n0"], start_new_session=True)
    try:
        for proc in (other, node):  # until each has run sh: a child between fork and exec has Python's command line
            _until_exec(proc.pid, b"sh")
        impostor = NodeProcess("n0", "http://127.0.0.1:1", ["capsim"], "n0.log", pid=other.pid)
        assert not node_running(impostor) and not signal_node(impostor, signal.SIGKILL)
        assert other.poll() is None  # still running: not ours to kill
        assert node_running(NodeProcess("n0", "http://127.0.0.1:1", ["capsim"], "n0.log", pid=node.pid))
    finally:
        for proc in (other, node):
            proc.kill()
            proc.wait()
