"""Tests of faults/processes.py: a scenario on fresh node processes, every one stopped whatever happens."""

import sys
from pathlib import Path

import pytest

import emulator as em
from emulator.transport import LaunchError, RealCluster
from emulator.transport.processes import running
from faults import Cluster, Phase, Scenario, Schedule, Workload, validate_check
from faults.processes import kv_clients, run_processes, serve_args
from nodes.kv import SingleKV
from tests.common.processes import processes_mentioning

ROOT = str(Path(__file__).resolve().parents[2])
SERVE = [sys.executable, "-m", "capsim.commands.serve"]


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """Node processes import capsim and the test nodes from this worktree."""
    monkeypatch.setenv("PYTHONPATH", ROOT)


def _small(protocol="lin-kv", config=None) -> Scenario:
    return Scenario(
        Cluster(protocol, 3, config=config or {}),
        Workload(clients=2, rate=30, keys=2, timeout=0.25, duration=1.0),
        [Phase("main", 1.0, Schedule().add(0.3, "crash", 0.3))],
        checks={"linearizable": validate_check("linearizable", {})},
        seed=5,
    )


def test_a_run_on_processes_announces_them_checks_and_stops_them_all(tmp_path):
    """The nodes are announced once healthy, all with the run's seed; the run is judged; none outlives it."""
    announced = []
    result = run_processes(_small(), 11, SERVE, out=str(tmp_path / "out"), announce=announced.append)
    (state,) = announced
    seeds = {p.name: p.argv[p.argv.index("--seed") + 1] for p in state.nodes}
    assert [p.name for p in state.nodes] == ["n0", "n1", "n2"] and set(seeds.values()) == {"11"}
    assert result.seed == 11 and result.passed and result.faults == {"crash": 1}
    assert not any(running(p.pid) for p in state.nodes) and processes_mentioning(str(tmp_path)) == []
    assert sorted(p.name for p in (tmp_path / "out" / "cluster").glob("*.log")) == ["n0.log", "n1.log", "n2.log"]


def test_without_out_nothing_is_kept(tmp_path, monkeypatch):
    """No out: the nodes' logs and storage live in a temporary directory that is removed afterwards."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    run_processes(_small(), 1, SERVE)
    assert list(tmp_path.iterdir()) == []


def test_a_node_that_does_not_start_is_a_launch_error_and_nothing_runs(tmp_path):
    """A protocol the node processes cannot load: LaunchError, and no process is left."""
    scenario = _small("tests.no_such_module:Node")
    scenario.cluster.node_class = lambda: SingleKV  # this process can build it; the node processes cannot
    with pytest.raises(LaunchError, match="exited with status 2"):
        run_processes(scenario, 1, SERVE, out=str(tmp_path / "out"))
    assert processes_mentioning(str(tmp_path)) == []


def test_a_ctrl_c_noted_before_the_run_stops_it_before_any_node_starts(tmp_path):
    """interrupted() says a Ctrl-C came earlier (Python swallowed it): KeyboardInterrupt, no node started."""
    announced = []
    with pytest.raises(KeyboardInterrupt):
        run_processes(
            _small(), 1, SERVE, out=str(tmp_path / "out"), announce=announced.append, interrupted=lambda: True
        )
    assert announced == [] and not (tmp_path / "out" / "cluster").exists()
    assert processes_mentioning(str(tmp_path)) == []


def test_serve_args_name_a_class_by_module_and_refuse_config_that_is_not_json():
    """A class protocol becomes module:Class for the node processes; a config they cannot receive is a ConfigError."""
    assert serve_args(Cluster(SingleKV, 3)) == ("nodes.kv:SingleKV", {})
    assert serve_args(Cluster("lin-kv", 3, config={"leader": "n1"})) == ("lin-kv", {"leader": "n1"})
    with pytest.raises(em.ConfigError, match=r"cluster\.config must be JSON to reach node processes"):
        serve_args(Cluster("lin-kv", 3, config={"leader": {1, 2}}))


async def _invokes(clients: int, ops: int, seed: int) -> list[dict]:
    cluster = await RealCluster.local({name: SingleKV for name in ("n0", "n1", "n2")}, seed=1)
    try:
        await kv_clients(cluster, clients, ops, 2, 1.0, seed)
    finally:
        await cluster.close()
    return [op for op in cluster.history.client_ops() if op["type"] == "invoke"]


@pytest.mark.asyncio
async def test_kv_clients_run_every_op_on_fresh_keys_choosing_by_the_seed():
    """Each client does its ops on keys no other call used; one client with one seed makes the same choices."""
    first, again, twice = await _invokes(2, 5, 3), await _invokes(1, 6, 4), await _invokes(1, 6, 4)
    assert len(first) == 10 and {op["client"] for op in first} == {"c0", "c1"}
    runs = [{op["key"].split("-")[0] for op in ops} for ops in (first, again, twice)]
    assert all(len(ids) == 1 for ids in runs) and len(set.union(*runs)) == 3  # each call its own keys
    choices = [[(op["f"], op["key"].split("-")[1], op["value"]) for op in ops] for ops in (again, twice)]
    assert choices[0] == choices[1] and len({f for f, _, _ in choices[0]}) > 1
