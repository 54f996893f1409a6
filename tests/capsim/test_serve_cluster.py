"""Tests of capsim/commands/serve.py and cluster.py: real node processes from the command line."""

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from capsim.cli import main
from emulator.transport.processes import running
from tests.common.processes import processes_mentioning

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """Node processes can import the test node classes."""
    monkeypatch.setenv("PYTHONPATH", ROOT)


@pytest.fixture
def state(tmp_path):
    """A state file path; whatever a test leaves up there is stopped afterwards, pass or fail."""
    path = str(tmp_path / "cluster.json")
    yield path
    if Path(path).exists():
        main(["cluster", "down", "--state", path])


def test_up_workload_partition_down(tmp_path, state, capsys):
    """A new user's session: up, status, a workload, a partition, a workload under it, heal, down; nothing left."""
    assert main(["cluster", "up", "--nodes", "3", "--state", state]) == 0
    out = capsys.readouterr().out
    assert "n0  http://127.0.0.1:" in out and "n2  http://127.0.0.1:" in out and "cluster down" in out
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    pids = [node["pid"] for node in json.loads(Path(state).read_text())["nodes"]]
    assert all(running(pid) for pid in pids)
    assert main(["cluster", "up", "--state", state]) == 2
    assert "already up" in capsys.readouterr().err

    assert main(["cluster", "workload", "--state", state, "--clients", "2", "--ops", "10"]) == 0
    assert "2 clients, 20 ops" in capsys.readouterr().out
    assert main(["cluster", "partition", "--state", state, "n0", "n1,n2"]) == 0
    assert "partition {'groups': [['n0'], ['n1', 'n2']]}" in capsys.readouterr().out
    assert (
        main(
            [
                "cluster",
                "workload",
                "--state",
                state,
                "--clients",
                "1",
                "--ops",
                "3",
                "--timeout",
                "0.3",
                "--out",
                str(tmp_path / "h.jsonl"),
            ]
        )
        == 0
    )
    assert "history linearizable" in capsys.readouterr().out
    assert main(["cluster", "status", "--state", state]) == 0
    assert "faults: partition" in capsys.readouterr().out
    assert main(["cluster", "heal", "--state", state]) == 0

    assert main(["cluster", "down", "--state", state]) == 0
    assert "stopped n0, n1, n2" in capsys.readouterr().out
    assert not Path(state).exists() and not any(running(pid) for pid in pids)


def test_a_failed_up_leaves_no_orphans_and_no_state(tmp_path, capsys):
    """If one node cannot start, up exits 1, says so, and no node process or state file remains."""
    state = tmp_path / "cluster.json"
    status = main(
        [
            "cluster",
            "up",
            "--nodes",
            "3",
            "--state",
            str(state),
            "--protocol",
            "tests.common.transport_nodes:BrokenOn",
            "--config",
            '{"broken": "n2"}',
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and "n2 exited" in err and "nothing is left running" in err
    assert not state.exists() and processes_mentioning(str(tmp_path)) == []


def test_down_without_a_cluster_is_a_usage_error(tmp_path, capsys):
    """down with no state file exits 2 and says how to start one."""
    assert main(["cluster", "down", "--state", str(tmp_path / "none.json")]) == 2
    assert "capsim cluster up" in capsys.readouterr().err


def test_serve_refuses_an_unknown_protocol(capsys):
    """An unknown protocol exits 2 with the list of known ones."""
    assert main(["serve", "--protocol", "no-such", "--name", "n1"]) == 2
    assert "unknown protocol 'no-such'; use one of" in capsys.readouterr().err


def test_serve_on_a_taken_port_exits_3(capsys, monkeypatch):
    """A port already in use exits 3 (the launcher's cue to retry elsewhere) with the reason."""
    monkeypatch.setenv("CAPSIM_TOKEN", "t")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert (
            main(
                ["serve", "--protocol", "emulator.transport.diag:Echo", "--name", "n1", "--listen", f"127.0.0.1:{port}"]
            )
            == 3
        )
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad, words",
    [
        ("--listen=nohost:x", "HOST:PORT"),
        ("--peer=n2", "NAME=URL"),
        ("--peer=n2=ftp://x", "NAME=URL"),
        ("--config=[1]", "JSON object"),
    ],
)
def test_serve_rejects_malformed_options(bad, words, capsys):
    """Malformed --listen, --peer or --config are usage errors (exit 2), before anything starts."""
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--protocol", "lin-kv", "--name", "n1", bad])
    assert exited.value.code == 2 and words in capsys.readouterr().err


def test_a_node_with_a_parent_pid_stops_when_its_parent_is_killed(tmp_path):
    """serve --parent-pid exits on its own once its parent dies, even by SIGKILL: no orphans."""
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import subprocess, sys, time\n"
                "child = subprocess.Popen([sys.executable, '-m', 'capsim.commands.serve', '--protocol', 'lin-kv',"
                " '--name', 'n0', '--parent-pid', str(__import__('os').getpid())])\n"
                "print(child.pid, flush=True)\n"
                "time.sleep(60)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    assert running(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10  # the watch looks every 0.5 s
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(child)
