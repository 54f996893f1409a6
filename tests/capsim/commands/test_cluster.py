"""Tests of capsim/commands/cluster.py: a session from up to down, a failed up, what `down` leaves behind, --purge."""

import json
import os
import stat
from pathlib import Path

import pytest

from capsim.cli import main
from emulator.transport.processes import running
from tests.common.processes import processes_mentioning

ROOT = str(Path(__file__).resolve().parents[3])


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """Node processes can import the test node classes."""
    monkeypatch.setenv("PYTHONPATH", ROOT)


@pytest.fixture
def state(tmp_path):
    """A state file path; whatever a test leaves up there is stopped afterwards, pass or fail."""
    path = tmp_path / "cluster.json"
    yield path
    if path.exists():
        main(["cluster", "down", "--state", str(path)])


def test_up_workload_partition_down(tmp_path, state, capsys):
    """A new user's session: up (one seed for every node), status, a workload, a partition, a workload under it,
    heal, down; nothing left."""
    assert main(["cluster", "up", "--nodes", "3", "--state", str(state), "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "n0  http://127.0.0.1:" in out and "n2  http://127.0.0.1:" in out and "cluster down" in out
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    nodes = json.loads(state.read_text())["nodes"]
    pids = [node["pid"] for node in nodes]
    assert [node["argv"][node["argv"].index("--seed") + 1] for node in nodes] == ["5"] * 3  # one seed for all
    assert all(running(pid) for pid in pids)
    assert main(["cluster", "up", "--state", str(state)]) == 2
    assert "already up" in capsys.readouterr().err

    assert main(["cluster", "workload", "--state", str(state), "--clients", "2", "--ops", "10"]) == 0
    assert "2 clients, 20 ops" in capsys.readouterr().out
    assert main(["cluster", "partition", "--state", str(state), "n0", "n1,n2"]) == 0
    assert "partition {'groups': [['n0'], ['n1', 'n2']]}" in capsys.readouterr().out
    status = main(
        [
            "cluster",
            "workload",
            "--state",
            str(state),
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
    out = capsys.readouterr().out
    # under the partition an op may succeed or not; if none did there is nothing to check, and it says so
    assert (status, "history linearizable" in out) == (0, True) or (status, "no operation succeeded" in out) == (
        2,
        True,
    )
    assert main(["cluster", "status", "--state", str(state)]) == 0
    assert "faults: partition" in capsys.readouterr().out
    assert main(["cluster", "heal", "--state", str(state)]) == 0

    assert main(["cluster", "down", "--state", str(state)]) == 0
    assert "stopped n0, n1, n2" in capsys.readouterr().out
    assert not state.exists() and not any(running(pid) for pid in pids)


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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["workload", "--clients", "0"], "argument --clients: expected a positive whole number"),
        (["workload", "--ops", "-1"], "argument --ops: expected a positive whole number"),
        (["workload", "--keys", "0"], "argument --keys: expected a positive whole number"),
        (["link", "n0", "n1", "--latency", "-0.5"], "argument --latency: expected a finite number of seconds >= 0"),
        (["link", "n0", "n1", "--latency", "inf"], "argument --latency: expected a finite number of seconds >= 0"),
    ],
)
def test_cluster_arguments_out_of_range_are_refused_by_the_parser(capsys, argv, message):
    """A workload of no clients, operations or keys (it printed '0 clients ... linearizable', exit 0), a negative
    or infinite latency: exit 2 naming the argument, before the state file is read."""
    with pytest.raises(SystemExit) as exited:
        main(["cluster", *argv])
    assert exited.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config", "[1]"], '--config must be a JSON object, e.g. \'{"leader": "n0"}\', got list'),
        (["--host", "no-such-host.invalid"], "--host no-such-host.invalid: cannot listen there"),
        (["--host", "192.0.2.1"], "--host 192.0.2.1: cannot listen there"),
    ],
)
def test_up_refuses_a_config_or_host_no_node_could_take_before_starting_any(tmp_path, capsys, argv, message):
    """A --config that is JSON but no object started every node to have each fail (exit 1); a --host that is not
    this machine's ended in a bare '[Errno -2] Name or service not known'. Both are usage errors (exit 2) saying
    what to give, and nothing starts."""
    state = tmp_path / "cluster.json"
    assert main(["cluster", "up", "--nodes", "2", "--state", str(state), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not state.exists() and processes_mentioning(str(tmp_path)) == []


def test_a_partition_group_with_no_node_is_refused(state, capsys):
    """'partition n0 ,' (a stray comma) was recorded as the active fault partition [['n0'], []], which cuts
    nothing: it is refused, naming the empty group."""
    assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["cluster", "partition", "n0", ",", "--state", str(state)]) == 2
    assert "group 2 (',') names no node" in capsys.readouterr().err
    assert main(["cluster", "status", "--state", str(state)]) == 0
    assert "faults: none" in capsys.readouterr().out


def test_link_faults_and_restart_say_what_was_wrong(state, capsys):
    """On a running cluster: a link from a node to itself, or with no setting, is refused (both were recorded as
    active faults); restarting a running node names it with both quotes (one was stripped)."""
    assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["cluster", "link", "n0", "n0", "--loss", "0.5", "--state", str(state)]) == 2
    assert "a link joins two different nodes" in capsys.readouterr().err
    assert main(["cluster", "link", "n0", "n1", "--state", str(state)]) == 2
    assert "give --latency, --loss or --duplicate" in capsys.readouterr().err
    assert main(["cluster", "status", "--state", str(state)]) == 0
    assert "faults: none" in capsys.readouterr().out
    assert main(["cluster", "restart", "n1", "--state", str(state)]) == 2
    assert "error: 'n1' is running; crash it before restarting it" in capsys.readouterr().err


def test_more_node_processes_than_memory_holds_are_refused_before_any_starts(tmp_path, capsys):
    """up --nodes 100000 (about 40 MB a process): exit 2 at once with how many fit; it used to start spawning them."""
    state = tmp_path / "cluster.json"
    assert main(["cluster", "up", "--nodes", "100000", "--state", str(state)]) == 2
    err = capsys.readouterr().err
    assert "100000 node processes need about" in err and "nodes fit" in err and "Traceback" not in err
    fits = int(err.split("at most ")[1].split()[0])
    from capsim import limits

    assert fits >= 1 and fits * limits.NODE_PROCESS_MB <= limits.available_mb()
    assert not state.exists() and processes_mentioning(str(tmp_path)) == []


def test_down_without_a_cluster_is_a_usage_error(tmp_path, capsys):
    """down with no state file exits 2 and says how to start one."""
    assert main(["cluster", "down", "--state", str(tmp_path / "none.json")]) == 2
    assert "capsim cluster up" in capsys.readouterr().err


@pytest.mark.parametrize("action", [["up"], ["status"], ["down"], ["heal"]])
def test_a_state_path_naming_a_directory_says_to_give_a_file(tmp_path, capsys, action):
    """--state naming a directory was '[Errno 21] Is a directory': now one line saying to give a file's path."""
    assert main(["cluster", *action, "--state", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--state {tmp_path} is a directory; give the path of a file, e.g. {tmp_path}/cluster.json" in err


def test_down_names_the_directory_it_keeps_and_purge_removes_it_later(tmp_path, state, capsys):
    """down keeps cluster.d/ (logs, storage) and says where and how to remove it; down --purge then does."""
    assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["cluster", "down", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    workdir = tmp_path / "cluster.d"
    assert f"node logs and storage are kept in {workdir}/" in out
    assert f"capsim cluster down --purge --state {state}" in out
    assert sorted(p.name for p in workdir.iterdir()) == ["data", "n0.log", "n1.log"]
    assert main(["cluster", "down", "--purge", "--state", str(state)]) == 0
    assert f"removed {workdir}/" in capsys.readouterr().out and not workdir.exists()


def test_down_purge_stops_the_nodes_and_removes_everything(tmp_path, state, capsys):
    """down --purge on a running cluster: nodes stopped, state file and directory gone, no process left."""
    assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
    assert main(["cluster", "down", "--purge", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "stopped n0, n1" in out and "removed" in out
    assert list(tmp_path.iterdir()) == [] and processes_mentioning(str(tmp_path)) == []


def test_purge_keeps_a_directory_holding_files_capsim_did_not_make(tmp_path, capsys):
    """A stranger's file in cluster.d/: nothing is removed, exit 2, saying which file."""
    workdir = tmp_path / "cluster.d"
    (workdir / "data").mkdir(parents=True)
    (workdir / "n0.log").write_text("log\n")
    (workdir / "thesis.tex").write_text("years of work\n")
    assert main(["cluster", "down", "--purge", "--state", str(tmp_path / "cluster.json")]) == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert (workdir / "thesis.tex").read_text() == "years of work\n" and (workdir / "n0.log").exists()


def test_down_without_a_cluster_or_its_directory_is_a_usage_error(tmp_path, capsys):
    """down --purge with nothing there: exit 2, saying how to start a cluster."""
    assert main(["cluster", "down", "--purge", "--state", str(tmp_path / "none.json")]) == 2
    assert "capsim cluster up" in capsys.readouterr().err
    assert not Path(tmp_path / "none.d").exists()


def _restart_elsewhere(tmp_path, monkeypatch, protocol: str) -> int:
    """Up one node of ``protocol`` from tmp_path/a, crash and restart it from tmp_path/b; its boot count after
    (kept in its storage). Whatever happens, the cluster is down after."""
    import asyncio

    from emulator.transport import RealCluster

    state = tmp_path / "a" / "cluster.json"
    monkeypatch.chdir(tmp_path / "a")
    assert main(["cluster", "up", "--nodes", "1", "--protocol", protocol, "--state", "cluster.json"]) == 0
    try:
        monkeypatch.chdir(tmp_path / "b")
        assert main(["cluster", "crash", "n0", "--state", str(state)]) == 0
        assert main(["cluster", "restart", "n0", "--state", str(state)]) == 0

        async def boots():
            cluster = await RealCluster.from_state(state)
            try:
                client = await cluster.add_client("c0")
                return (await client.rpc("n0", {"type": "notes"}, timeout=10))["boots"]
            finally:
                await cluster.close()

        return asyncio.run(boots())
    finally:
        main(["cluster", "down", "--state", str(state)])


def test_a_restart_from_another_directory_keeps_the_node_s_storage_and_log(tmp_path, monkeypatch, capsys):
    """up run with a relative --state wrote relative --data-dir and log paths into the nodes' commands, so a
    restart run from another directory started the node on an empty storage there (and its log too): the
    storage that survives a restart did not. The node's boot count, kept in its storage, must reach 2."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _restart_elsewhere(tmp_path, monkeypatch, "tests.common.transport_nodes:Relay") == 2
    assert list((tmp_path / "b").iterdir()) == []
    capsys.readouterr()


def test_a_protocol_of_one_s_own_restarts_from_another_directory(tmp_path, monkeypatch, capsys):
    """up found a module:Class protocol in its working directory, but a restart run from another one started the
    node there, where the module does not import, and the node never came back. The nodes' commands now name
    the directory up found the module in (--import-path)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "myrelay.py").write_text(
        "from tests.common.transport_nodes import Relay\n\n\nclass MyRelay(Relay):\n    pass\n"
    )
    assert _restart_elsewhere(tmp_path, monkeypatch, "myrelay:MyRelay") == 2
    capsys.readouterr()


def test_a_node_killed_behind_capsim_s_back_counts_as_down(state, capsys):
    """A node process killed outside capsim (the OOM killer, kill -9): 'restart' said it was running and to crash it
    first, and 'partition' failed with a connection error. Now it counts as crashed: the partition applies to the
    others and says the node is down, restart starts it, and it comes back with the partition."""
    import signal
    import time

    assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
    pid = next(node["pid"] for node in json.loads(state.read_text())["nodes"] if node["name"] == "n1")
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    capsys.readouterr()
    assert main(["cluster", "partition", "n0", "n1", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "partition: done" in out and "n1 is down" in out and "capsim cluster restart n1" in out
    assert main(["cluster", "restart", "n1", "--state", str(state)]) == 0

    assert _faults_of(state, "n1") == ["partition {'groups': [['n0'], ['n1']]}"]


def _faults_of(state, node: str) -> list[str]:
    """The faults ``node`` of the cluster in ``state`` says it has (its /status)."""
    import asyncio

    from emulator.transport import RealCluster

    async def faults():
        cluster = await RealCluster.from_state(state)
        try:
            return (await cluster.status(node))["faults"]
        finally:
            await cluster.close()

    return asyncio.run(faults())


def test_a_stale_state_file_whose_pid_was_reused_does_not_block_up(state, capsys):
    """A state file left by a cluster that died with the machine, its pid now another program's (here this test's
    own process): up said a cluster was already up. The pid runs no node of the file, so up starts a new cluster;
    down of the stale file touched nothing else either."""
    import time

    from emulator.transport.processes import ClusterState, NodeProcess

    ClusterState("lin-kv", "old", [NodeProcess("n0", "http://127.0.0.1:1", ["x"], "n0.log", os.getpid())]).save(state)
    assert main(["cluster", "up", "--nodes", "1", "--state", str(state)]) == 0
    assert "1 lin-kv nodes up" in capsys.readouterr().out
    assert json.loads(state.read_text())["nodes"][0]["pid"] != os.getpid()
    stale = state.with_name("stale.json")
    ClusterState("lin-kv", "old", [NodeProcess("n0", "http://127.0.0.1:1", ["x"], "n0.log", os.getpid())]).save(stale)
    started = time.monotonic()
    assert main(["cluster", "down", "--state", str(stale)]) == 0
    assert "stopped nothing (no node was running)" in capsys.readouterr().out
    assert time.monotonic() - started < 4.5  # it waited out the 3 s grace and the 2 s reap for a process not its own


def test_faults_on_a_paused_node_wait_for_its_resume(state, capsys):
    """A node stopped with 'pause' (SIGSTOP) cannot answer a control call: 'partition' waited 5 s for it, then
    exited 1 saying the partition failed, although it was applied to the others and recorded. Now the partition
    skips the paused node and says so, status says it is paused and how to resume it, and resume gives it the
    partition."""

    assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
    assert main(["cluster", "pause", "n1", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["cluster", "partition", "n0", "n1", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "partition: done" in out and "n1 is paused" in out and "capsim cluster resume n1" in out
    assert main(["cluster", "status", "--state", str(state)]) == 0
    assert "n1  http://127.0.0.1:" in (out := capsys.readouterr().out)
    assert "paused (SIGSTOP; capsim cluster resume n1)" in out
    assert main(["cluster", "resume", "n1", "--state", str(state)]) == 0

    assert _faults_of(state, "n1") == ["partition {'groups': [['n0'], ['n1']]}"]


def test_a_workload_of_which_no_operation_succeeded_checks_nothing_and_says_so(state, capsys):
    """Against nodes that do not speak lin-kv every operation fails (error 10), and the command printed 'history
    linearizable', exit 0: true of a history with no ok op (Knossos says valid too, vacuously), and no test at all.
    It now says no operation succeeded, with the nodes' answer, exit 2 (could not tell); Jepsen's stats checker
    would say invalid (:valid? false: an :f with no :ok)."""
    assert main(["cluster", "up", "--nodes", "1", "--protocol", "backend", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["cluster", "workload", "--clients", "1", "--ops", "3", "--state", str(state)]) == 2
    out = capsys.readouterr().out
    assert "ok 0, fail 3" in out and "no operation succeeded" in out and "n0 has no handler for" in out
    assert "history linearizable" not in out


def test_a_restart_whose_port_was_taken_meanwhile_says_so_and_leaves_the_node_down(state, capsys):
    """Another program took a crashed node's port: restart ended in a traceback of LaunchError. It exits 1 with the
    node's own words and what to do, the node stays down (no process left), and once the port is free restart
    works."""
    import socket

    assert main(["cluster", "up", "--nodes", "1", "--state", str(state)]) == 0
    assert main(["cluster", "crash", "n0", "--state", str(state)]) == 0
    port = int(json.loads(state.read_text())["nodes"][0]["url"].rsplit(":", 1)[1])
    capsys.readouterr()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the health checks' TIME_WAIT
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert main(["cluster", "restart", "n0", "--state", str(state)]) == 1
        err = capsys.readouterr().err
        assert "address already in use" in err and "n0 stays down" in err and "Traceback" not in err
        assert json.loads(state.read_text())["nodes"][0]["pid"] is None
    assert main(["cluster", "restart", "n0", "--state", str(state)]) == 0
    assert running(json.loads(state.read_text())["nodes"][0]["pid"])


_NODE = {"name": "n0", "url": "http://127.0.0.1:1", "argv": ["x"], "log": "n0.log", "pid": None}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"nodes": [{**_NODE, "pid": "123"}]}, "pid"),  # was a TypeError traceback from os.kill
        ({"nodes": [{**_NODE, "pid": True}]}, "pid"),
        ({"nodes": [{**_NODE, "argv": "python"}]}, "argv"),  # a restart would have spawned p, y, t, ...
        ({"nodes": [{**_NODE, "name": ""}]}, "name"),
        ({"nodes": []}, "no node"),  # printed 'lin-kv cluster, 0 nodes'
        ({"token": 5}, "token"),
        ({"faults": {"rules": [{"partition": 5}]}}, "faults"),  # the error did not name the file
        ({"skews": {"n0": "fast"}}, "skews"),
    ],
)
def test_a_damaged_state_file_is_named_as_such(tmp_path, capsys, change, words):
    """A state file edited by hand or damaged: one line naming the file and what is wrong in it, exit 2, for every
    command that reads it; a pid that is a string was a bare traceback."""
    state = tmp_path / "cluster.json"
    state.write_text(json.dumps({"version": 1, "protocol": "lin-kv", "token": "t", "nodes": [_NODE], **change}))
    for action in (["status"], ["heal"], ["restart", "n0"], ["down"]):
        assert main(["cluster", *action, "--state", str(state)]) == 2
        err = capsys.readouterr().err
        assert f"{state} is not a capsim cluster state file" in err and words in err and "Traceback" not in err


def test_two_clusters_at_once_are_apart(tmp_path, capsys):
    """Two clusters up side by side (two --state files in one directory): their own ports, secrets and
    directories; a partition of one is not the other's, a message signed by one is refused by the other, and
    down of one leaves the other running."""
    import urllib.error
    import urllib.request

    from emulator.transport.auth import SIGNATURE_HEADER, peer_key, sign

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    try:
        for state in (a, b):
            assert main(["cluster", "up", "--nodes", "2", "--state", str(state)]) == 0
        sa, sb = (json.loads(s.read_text()) for s in (a, b))
        assert sa["token"] != sb["token"]
        assert not {n["url"] for n in sa["nodes"]} & {n["url"] for n in sb["nodes"]}
        assert main(["cluster", "partition", "n0", "n1", "--state", str(a)]) == 0
        capsys.readouterr()
        assert main(["cluster", "status", "--state", str(b)]) == 0
        assert "faults: none" in capsys.readouterr().out
        body = json.dumps({"src": "n1", "dest": "n0", "body": {"type": "read", "key": "k"}}).encode()
        forged = urllib.request.Request(
            sb["nodes"][0]["url"] + "/msg", body, {SIGNATURE_HEADER: sign(peer_key(sa["token"]), body)}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 401
        assert main(["cluster", "down", "--state", str(a)]) == 0
        assert all(running(n["pid"]) for n in sb["nodes"]) and not any(running(n["pid"]) for n in sa["nodes"])
    finally:
        for state in (a, b):
            if state.exists():
                main(["cluster", "down", "--state", str(state)])
    assert (tmp_path / "a.d").is_dir() and (tmp_path / "b.d").is_dir()


def test_status_of_a_stale_state_file_does_not_show_another_cluster_s_node_as_its_own(tmp_path, capsys):
    """A state file from a dead cluster whose node's port another cluster's node now holds: status showed that
    node, its pid and counters, as this cluster's n0, up. It shows n0 down, and the stranger for what it is."""
    live, stale = tmp_path / "live.json", tmp_path / "stale.json"
    try:
        assert main(["cluster", "up", "--nodes", "1", "--state", str(live)]) == 0
        node = json.loads(live.read_text())["nodes"][0]
        import subprocess
        import sys

        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()  # the old n0: its pid is no process now
        data = {**json.loads(live.read_text()), "token": "old"}
        data["nodes"][0]["pid"] = gone.pid
        stale.write_text(json.dumps(data))
        capsys.readouterr()
        assert main(["cluster", "status", "--state", str(stale)]) == 0
        out = capsys.readouterr().out
        assert f"pid {node['pid']}" not in out and "n0" in out and "down" in out
    finally:
        main(["cluster", "down", "--state", str(live)])


def test_up_beyond_loopback_warns_that_messages_travel_in_clear(state, capsys):
    """--host 0.0.0.0: each node warned in its own log, which the person who ran up does not see; up says it."""
    assert main(["cluster", "up", "--nodes", "1", "--host", "0.0.0.0", "--state", str(state)]) == 0
    err = capsys.readouterr().err
    assert "warning: the nodes listen on 0.0.0.0, reachable from the network" in err and "in clear" in err


def test_a_workload_on_a_cluster_whose_every_node_is_down_is_refused_at_once(state, capsys):
    """Every node crashed: the workload ran every op to its timeout and reported a history; it is refused at
    once, saying how to bring the nodes back."""
    assert main(["cluster", "up", "--nodes", "1", "--state", str(state)]) == 0
    assert main(["cluster", "crash", "n0", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["cluster", "workload", "--ops", "50", "--timeout", "5", "--state", str(state)]) == 2
    err = capsys.readouterr().err
    assert "every node of the cluster is down" in err and "capsim cluster restart n0" in err


def test_ctrl_c_during_a_workload_keeps_the_history_recorded_so_far(tmp_path, state):
    """A real run cannot be replayed: Ctrl-C during capsim cluster workload --out F writes what was recorded (it
    wrote nothing, and said nothing of it), says so in a line, and exits 130."""
    import signal
    import subprocess
    import sys
    import time

    assert main(["cluster", "up", "--nodes", "3", "--state", str(state)]) == 0
    out = tmp_path / "partial.jsonl"
    argv = [sys.executable, "-m", "capsim", "cluster", "workload", "--state", str(state), "--ops", "1000000"]
    proc = subprocess.Popen([*argv, "--out", str(out)], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(3.0)  # start-up, then some hundreds of operations
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = out.read_text().splitlines()
    assert lines and any('"type": "ok"' in line for line in lines), err
    assert f"interrupted: the {len(lines)} events recorded so far are in {out}" in err
    assert err.rstrip().endswith("capsim: interrupted")


def test_resuming_a_node_that_is_not_paused_says_so(state, capsys):
    """'resume: done' of a running node read as if it had been paused (found by a review)."""
    assert main(["cluster", "up", "--nodes", "3", "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["cluster", "resume", "n1", "--state", str(state)]) == 0
    assert capsys.readouterr().out == "resume: n1 is not paused (capsim cluster pause n1 stops it); nothing to do\n"
    assert main(["cluster", "pause", "n1", "--state", str(state)]) == 0
    assert main(["cluster", "resume", "n1", "--state", str(state)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("resume: done")
