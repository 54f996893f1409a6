"""Tests of emulator/transport/launcher.py: one launcher, the same seed for every node, a retry on a taken port."""

import os
import socket
import sys
from pathlib import Path

import pytest

import emulator as em
from capsim.cli import Parser
from capsim.commands.serve import add_arguments
from emulator.transport import LaunchError, NodeHost, launcher, stop
from emulator.transport.diag import Echo
from emulator.transport.processes import running

ROOT = str(Path(__file__).resolve().parents[3])
SERVE = [sys.executable, "-m", "capsim.commands.serve"]
ECHO = "emulator.transport.diag:Echo"


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """Node processes import capsim from this worktree."""
    monkeypatch.setenv("PYTHONPATH", ROOT)


def test_node_argv_is_what_capsim_serve_parses():
    """Every flag node_argv writes reads back through serve's own parser, IPv6 hosts bracketed."""
    argv = launcher.node_argv(
        SERVE, "lin-kv", "n1", "::1", 9001, {"n2": "http://[::1]:9002"}, "/tmp/d", {"a": 1}, seed=5, parent_pid=42
    )
    assert argv[:3] == SERVE
    parser = Parser(prog="capsim serve")
    add_arguments(parser)
    args = parser.parse_args(argv[3:])
    assert (args.protocol, args.name, args.listen, args.peer) == (
        "lin-kv",
        "n1",
        ("::1", 9001),
        [("n2", "http://[::1]:9002")],
    )
    assert (args.data_dir, args.config, args.seed, args.parent_pid) == ("/tmp/d", {"a": 1}, 5, 42)
    assert "--seed" not in launcher.node_argv(SERVE, "p", "n1", "127.0.0.1", 1, {}, "d", {})
    assert args.import_path == []
    argv = launcher.node_argv(SERVE, "m:C", "n1", "127.0.0.1", 1, {}, "d", {}, import_path="/work/mine")
    assert parser.parse_args(argv[3:]).import_path == ["/work/mine"]


def test_the_import_root_is_the_directory_a_module_of_one_s_own_imports_from(tmp_path, monkeypatch):
    """For module:Class, the directory that must be on sys.path for the module to import, as this process finds
    it (a package's module: the package's parent); None for a registered name and for a module not found."""
    (tmp_path / "rootprobe" / "sub").mkdir(parents=True)
    (tmp_path / "rootprobe" / "__init__.py").write_text("")
    (tmp_path / "rootprobe" / "sub" / "__init__.py").write_text("")
    (tmp_path / "rootprobe" / "sub" / "mod.py").write_text("class C: pass\n")
    (tmp_path / "rootprobe_top.py").write_text("class C: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        for protocol in ("rootprobe_top:C", "rootprobe.sub.mod:C", "rootprobe.sub:C", "rootprobe:C"):
            assert launcher.import_root(protocol) == str(tmp_path), protocol
        assert launcher.import_root("lin-kv") is None
        assert launcher.import_root("no_such_module_here:C") is None
        assert launcher.import_root("rootprobe.nothing.deeper:C") is None
    finally:  # find_spec imported the parent packages: leave no module of tmp_path behind
        for name in [name for name in sys.modules if name.startswith("rootprobe")]:
            del sys.modules[name]


def test_every_node_gets_the_same_seed_and_its_peers(tmp_path):
    """The cluster's seed goes to every node unchanged; each node knows every other by URL, and is healthy."""
    state = launcher.launch_cluster(SERVE, ECHO, ["n0", "n1", "n2"], tmp_path, seed=7, parent_pid=os.getpid())
    try:
        argvs = {p.name: p.argv for p in state.nodes}
        seeds = {name: argv[argv.index("--seed") + 1] for name, argv in argvs.items()}
        peers = {name: {argv[i + 1] for i, a in enumerate(argv) if a == "--peer"} for name, argv in argvs.items()}
        urls = {p.name: p.url for p in state.nodes}
    finally:
        stop(state.nodes)
    assert seeds == dict.fromkeys(["n0", "n1", "n2"], "7")
    assert peers["n0"] == {f"n1={urls['n1']}", f"n2={urls['n2']}"}
    assert state.protocol == ECHO and len(state.token) > 30 and not any(running(p.pid) for p in state.nodes)


@pytest.mark.asyncio
async def test_nodes_sharing_a_seed_draw_the_simulations_streams_not_each_others():
    """Why one seed for all: a host's rng is the simulated node's of that seed and name, so two differ."""
    sim = em.Simulation(seed=7)
    hosts = [NodeHost(name, Echo, seed=7) for name in ("n0", "n1")]
    try:
        for host in hosts:
            await host.start()
        real = {host.name: [host.node.rng.random() for _ in range(3)] for host in hosts}
    finally:
        for host in hosts:
            await host.stop()
    for name in ("n0", "n1"):
        sim.add_node(name, Echo)
    simulated = {name: [sim.node(name).rng.random() for _ in range(3)] for name in ("n0", "n1")}
    sim.close()
    assert real == simulated and real["n0"] != real["n1"]


def test_a_port_taken_before_the_node_binds_it_is_retried_on_fresh_ports(tmp_path, monkeypatch):
    """The first ports picked are taken by another program: the nodes exit BIND_FAILED, the launcher picks again."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    picks = []
    real_free_ports = launcher.free_ports

    def free_ports(n, host="127.0.0.1"):
        picks.append(real_free_ports(n, host) if picks else [taken] * n)
        return picks[-1]

    monkeypatch.setattr(launcher, "free_ports", free_ports)
    try:
        state = launcher.launch_cluster(SERVE, ECHO, ["n0"], tmp_path, parent_pid=os.getpid())
        stop(state.nodes)
    finally:
        squatter.close()
    assert len(picks) == 2 and state.nodes[0].url == f"http://127.0.0.1:{picks[1][0]}"
    assert "cannot listen" in (tmp_path / "n0.log").read_text()


def test_a_port_taken_every_time_gives_up_after_the_last_attempt(tmp_path, monkeypatch):
    """Ports taken at every attempt: LaunchError with the bind failure's status, after ATTEMPTS tries, no node left."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    calls = []
    monkeypatch.setattr(launcher, "free_ports", lambda n, host: calls.append(n) or [squatter.getsockname()[1]] * n)
    nodes: list = []
    try:
        with pytest.raises(LaunchError, match="n0 exited with status 3") as failed:
            launcher.launch_cluster(SERVE, ECHO, ["n0"], tmp_path, nodes=nodes, parent_pid=os.getpid())
    finally:
        squatter.close()
    assert failed.value.returncode == launcher.BIND_FAILED and len(calls) == launcher.ATTEMPTS
    assert nodes and not any(running(p.pid) for p in nodes)


def test_a_node_that_fails_otherwise_is_not_retried_and_data_starts_empty(tmp_path, monkeypatch):
    """An unknown protocol exits 2 at once: one attempt, LaunchError; the old data directory was emptied first."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "n0.storage").write_text("stale")
    calls = []
    real_free_ports = launcher.free_ports
    monkeypatch.setattr(launcher, "free_ports", lambda n, host: calls.append(n) or real_free_ports(n, host))
    with pytest.raises(LaunchError, match="exited with status 2"):
        launcher.launch_cluster(SERVE, "no-such-protocol", ["n0"], tmp_path, parent_pid=os.getpid())
    assert calls == [1] and not (tmp_path / "data" / "n0.storage").exists()
