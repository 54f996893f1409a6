"""Tests of faults/real.py and ``capsim chaos --real``: scenarios on real nodes, in real time."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import emulator as em
from capsim.cli import main
from emulator.transport import RealCluster
from emulator.transport.processes import running
from faults import (
    Cluster,
    Injector,
    Phase,
    Scenario,
    Schedule,
    Workload,
    run_chaos,
    validate_check,
)
from faults.real import run_real
from nodes.kv import SingleKV
from tests.common.processes import processes_mentioning

ROOT = str(Path(__file__).resolve().parents[2])
EXAMPLES = Path(ROOT) / "scenarios"

#: 3 lin-kv nodes; n2 is cut off from the leader n0 from 0.5 s to 1.5 s.
PARTITIONED = """
    name = "lin-kv, n2 cut off"
    seed = 4
    checks = ["linearizable", "stale-reads", "lost-writes", "availability", "node-errors"]

    [cluster]
    protocol = "{protocol}"
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
"""


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """Node processes can import the test node classes."""
    monkeypatch.setenv("PYTHONPATH", ROOT)


def _scenario_file(tmp_path, text: str, **fields) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(textwrap.dedent(text).format(**fields), encoding="utf-8")
    return str(path)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _during(ops: list[dict], start: float, stop: float, nodes: set) -> list[str]:
    """Completion types of the client ops sent to ``nodes`` and invoked within ``[start, stop)``."""
    invoked, types = {}, []
    for op in ops:
        if op["process"] == "nemesis":
            continue
        if op["type"] == "invoke":
            invoked[op["process"]] = op
        elif op["process"] in invoked:
            first = invoked.pop(op["process"])
            if first["node"] in nodes and start <= first["time"] < stop:
                types.append(op["type"])
    return types


# -- on processes, from the command line -----------------------------------------------------


def test_a_real_run_records_judges_and_shows_the_partition_and_leaves_nothing_running(tmp_path, capsys):
    """--real on lin-kv: ops and faults in the history, checks pass, n2's ops fail while cut off; no process left."""
    out = tmp_path / "out"
    status = main(["chaos", "--real", _scenario_file(tmp_path, PARTITIONED, protocol="lin-kv"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "3 lin-kv processes up" in printed and "PASSED" in printed and "not replayable" in printed
    history = _read_jsonl(out / "history.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    start, stop = [op["time"] for op in history if op["f"] in ("start-partition", "stop-partition")]
    assert 0.5 <= start < 1.0 and 0.9 < stop - start < 1.5  # the schedule plays in real seconds
    checks = {c["name"]: c["verdict"] for c in summary["checks"]}
    assert checks == dict.fromkeys(
        ["linearizable", "stale-reads", "lost-writes", "availability", "node-errors"], "pass"
    )
    assert summary["real"] and summary["faults"] == {"partition": 1} and summary["counts"]["ok"] > 50
    # Nodes apply a fault (and the heal) a few ms after it is recorded, and a busy machine may
    # deliver a request late: judge the ops invoked well inside the partition.
    cut_off = _during(history, start + 0.1, stop - 0.1, {"n2"})
    majority = _during(history, start + 0.1, stop - 0.1, {"n0", "n1"})
    after = _during(history, stop + 0.1, 10.0, {"n2"})
    assert cut_off and "ok" not in cut_off
    assert majority.count("ok") > len(majority) / 2 and "ok" in after
    statuses = json.loads((out / "statuses.json").read_text())
    assert [s["name"] for s in statuses] == ["n0", "n1", "n2"]
    assert not any(running(s["pid"]) for s in statuses) and processes_mentioning(str(tmp_path)) == []


def test_a_failed_check_on_real_processes_exits_1(tmp_path, capsys):
    """A store that is wrong on purpose (local reads, fire-and-forget replication) fails its checks: exit 1."""
    path = _scenario_file(tmp_path, PARTITIONED, protocol="tests.common.faults_nodes:LocalKV")
    status = main(["chaos", "--real", path, "--time-scale", "0.6", "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    failed = {c["name"] for c in summary["checks"] if c["verdict"] != "pass"}
    assert status == 1 and "FAILED" in printed and "--time-scale 0.6" in printed
    assert failed & {"linearizable", "stale-reads"}
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "1-3"], "one seed at a time"),
        (["--jobs", "2"], "--jobs goes with --seeds"),
    ],
)
def test_real_runs_take_one_seed(tmp_path, capsys, args, message):
    """--real with a seed range or workers is a usage error: exit 2, said plainly, nothing started."""
    path = _scenario_file(tmp_path, PARTITIONED, protocol="lin-kv")
    assert main(["chaos", "--real", path, *args]) == 2
    assert message in capsys.readouterr().err


def test_time_scale_goes_with_real_and_must_be_positive(tmp_path, capsys):
    """--time-scale without --real, or not > 0, is a usage error (exit 2)."""
    path = _scenario_file(tmp_path, PARTITIONED, protocol="lin-kv")
    assert main(["chaos", path, "--time-scale", "0.5"]) == 2
    assert "--time-scale goes with --real" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["chaos", "--real", path, "--time-scale", "0"])
    assert exited.value.code == 2 and "expected a number > 0" in capsys.readouterr().err


def test_a_bad_scenario_is_exit_2_without_a_traceback_or_a_process(tmp_path, capsys):
    """A scenario that does not load stops --real before any node starts: exit 2, the key named."""
    path = tmp_path / "bad.toml"
    path.write_text('[cluster]\nprotocol = "lin-kv"\nnodes = 0\n[workload]\nduration = 1.0\n')
    assert main(["chaos", "--real", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cluster.nodes" in err and "Traceback" not in err
    assert main(["chaos", "--real", str(tmp_path / "missing.toml")]) == 2
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_an_interrupted_real_run_stops_every_node(tmp_path, sig, code):
    """Ctrl-C (or SIGTERM) in the middle of a run: exit 130 and no node process left behind."""
    path = _scenario_file(tmp_path, PARTITIONED, protocol="lin-kv")
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsim", "chaos", "--real", path, "--time-scale", "4", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    pids, status = [], None
    try:
        line = proc.stdout.readline()
        pids = [int(pid) for pid in re.findall(r"pid (\d+)", line)]
        if len(pids) == 3 and all(running(pid) for pid in pids):
            proc.send_signal(sig)
            status = proc.wait(timeout=20)
    finally:
        leftovers = _stop_for_good(proc, str(tmp_path))
    assert len(pids) == 3, line + proc.stderr.read()
    assert status == code and leftovers == [] and not any(running(pid) for pid in pids)


def _stop_for_good(proc: subprocess.Popen, workdir: str) -> list[int]:
    """End the run and any node it left (so a failure does not leak processes); returns the nodes it left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
    leftovers = processes_mentioning(workdir)
    for pid in leftovers:
        os.killpg(pid, signal.SIGKILL)
    return leftovers


@pytest.mark.slow
def test_every_fault_kind_applies_to_real_processes(tmp_path, capsys):
    """The every-fault tour at 0.2x: all eight kinds start and stop on processes, lin-kv stays linearizable."""
    out = tmp_path / "out"
    status = main(
        ["chaos", "--real", str(EXAMPLES / "lin-kv-every-fault.toml"), "--time-scale", "0.2", "--out", str(out)]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert status == 0, capsys.readouterr().out
    assert set(summary["faults"]) == {"partition", "crash", "pause", "clock", "latency", "loss", "duplicate", "reorder"}
    assert all(entry["stop"] is not None for entry in summary["fault_log"])
    assert summary["control_errors"] == 0 and processes_mentioning(str(tmp_path)) == []


# -- in process: run_real on a RealCluster of hosts --------------------------------------------


def _small(schedule: Schedule, duration: float = 2.0) -> Scenario:
    return Scenario(
        Cluster("lin-kv", 3),
        Workload(clients=3, rate=40, keys=2, timeout=0.25, duration=duration),
        [Phase("main", duration, schedule)],
        checks={"linearizable": validate_check("linearizable", {})},
        seed=9,
    )


@pytest.mark.asyncio
async def test_a_real_run_makes_the_simulations_choices_for_its_seed():
    """Same seed: the same partition sides and, per client, the same operations on the same nodes as in virtual time."""
    scenario = _small(Schedule().add(0.5, "partition", 1.0, shape="halves"))
    simulated = run_chaos(scenario)
    cluster = await RealCluster.local({name: SingleKV for name in scenario.cluster.names}, seed=scenario.seed)
    try:
        real = await run_real(scenario, cluster)
    finally:
        await cluster.close()

    def sides(result):
        return [entry["value"]["sides"] for entry in result.injector.log]

    def choices(result, client):
        return [
            (op["f"], op["key"], op["node"])
            for op in result.history.client_ops()
            if op["type"] == "invoke" and op["client"] == client
        ]

    assert sides(real) == sides(simulated) and real.passed
    for client in ("c0", "c1", "c2"):
        ours, theirs = choices(real, client), choices(simulated, client)
        assert len(ours) > 5 and ours[: min(len(ours), len(theirs))] == theirs[: min(len(ours), len(theirs))]


@pytest.mark.asyncio
async def test_a_link_fault_on_a_real_cluster_restores_the_links_it_found():
    """Loss over a user's latency override: while on, both apply; stopped, exactly the user's override remains."""
    cluster = await RealCluster.local({name: SingleKV for name in ("n0", "n1", "n2")}, seed=1)
    try:
        await cluster.network.set_link_oneway("n0", "n1", latency=0.005)
        injector = Injector(cluster)
        loss = injector.start("loss", loss=0.5, links=[["n0", "n1"]])
        await cluster.settle()
        during = cluster.network.overrides("n0", "n1"), cluster.network.overrides("n1", "n0")
        on_node = (await cluster.status("n0"))["faults"]
        injector.stop(loss)
        await cluster.settle()
        after = cluster.network.overrides("n0", "n1"), cluster.network.overrides("n1", "n0")
        on_node_after = (await cluster.status("n0"))["faults"]
    finally:
        await cluster.close()
    assert (during[0]["loss"], during[0]["latency"].value, during[1]) == (0.5, 0.005, {"loss": 0.5})
    assert (set(after[0]), after[0]["latency"].value, after[1]) == ({"latency"}, 0.005, {})
    assert any("n0->n1" in line and "loss" in line for line in on_node)
    assert not any("loss" in line for line in on_node_after) and any("n0->n1" in line for line in on_node_after)


@pytest.mark.asyncio
async def test_run_real_refuses_a_cluster_that_is_not_the_scenarios():
    """Servers named otherwise than the scenario's n0.. are a ConfigError that says what to start."""
    cluster = await RealCluster.local({"a": SingleKV, "b": SingleKV, "c": SingleKV})
    try:
        with pytest.raises(em.ConfigError, match="servers are n0, n1, n2"):
            await run_real(_small(Schedule()), cluster)
    finally:
        await cluster.close()


@pytest.mark.asyncio
async def test_the_hostile_nemesis_applies_to_a_real_cluster_and_stops_cleanly():
    """hostile on real hosts: every server and client link gets the four settings, and the stop removes them."""
    cluster = await RealCluster.local({name: SingleKV for name in ("n0", "n1", "n2")}, seed=1)
    try:
        await cluster.add_client("c0")
        injector = Injector(cluster)
        hostile = injector.start("hostile")
        await cluster.settle()
        during = [cluster.network.overrides(a, b) for a, b in (("n0", "n1"), ("c0", "n2"), ("n2", "c0"))]
        injector.stop(hostile)
        await cluster.settle()
        after = [cluster.network.overrides(a, b) for a, b in (("n0", "n1"), ("c0", "n2"))]
    finally:
        await cluster.close()
    for overrides in during:
        assert (overrides["loss"], overrides["duplicate"], overrides["reorder"]) == (0.02, 0.1, 0.2)
        assert isinstance(overrides["latency"], em.Pareto)
    assert after == [{}, {}]
