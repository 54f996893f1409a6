"""kademlia from PyPI (pinned in the test extra), unmodified, as a key-value store under capsim's faults.

What the checkers find is reported in the README ("What capsim found in kademlia").
"""

import logging
import tomllib
from pathlib import Path

import pytest

from faults import load_scenario, run_chaos
from faults.scenario import Scenario

pytest.importorskip("kademlia", reason="pip install 'capsim[test]' (pins kademlia)")

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "kademlia-dht.toml"


@pytest.fixture(autouse=True)
def _quiet_kademlia():
    for name in ("kademlia", "rpcudp"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def test_without_faults_every_request_is_answered_but_concurrent_writes_are_not_linearizable():
    """No fault at all: the DHT answers everything, yet replicas keep concurrent sets in different orders."""
    raw = tomllib.loads(SCENARIO.read_text())
    raw["phases"] = [{"name": "calm", "duration": 30.0}]
    result = run_chaos(Scenario.from_dict(raw, "calm.toml"), seed=1)
    verdicts = {c.name: c.passed for c in result.checks}
    assert verdicts == {"linearizable": False, "lost-writes": True, "availability": True, "node-errors": True}
    assert result.counts["info"] == 0 and result.counts["ok"] > 300


def test_under_partitions_and_crashes_the_checker_refutes_seed_1_and_the_replay_agrees():
    """The shipped scenario's own seed: not linearizable, and the replay command gives the same digest."""
    scenario = load_scenario(SCENARIO)
    first, again = run_chaos(scenario, seed=1), run_chaos(scenario, seed=1)
    assert [c.name for c in first.failed] == ["linearizable"]
    assert first.command() == f"capsim chaos {SCENARIO} --seed 1"
    assert first.sim.trace_digest() == again.sim.trace_digest() and list(first.history) == list(again.history)


def test_the_replay_command_gives_the_same_digest_in_another_process(tmp_path):
    """`capsim chaos kademlia-dht --seed 2` under another hash seed: the digest of this process's run."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONHASHSEED="777")
    subprocess.run(
        [sys.executable, "-m", "capsim", "chaos", "kademlia-dht", "--seed", "2", "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        timeout=300,
    )
    digest = json.loads((tmp_path / "summary.json").read_text())["digest"]
    assert digest == run_chaos(load_scenario(SCENARIO), seed=2).sim.trace_digest()


def test_an_acknowledged_write_is_lost_with_seed_2():
    """kademlia answered the set (some peer stored it), and after the heal no final read finds it."""
    result = run_chaos(load_scenario(SCENARIO), seed=2)
    lost = next(c for c in result.checks if c.name == "lost-writes")
    assert not lost.passed and lost.summary.startswith("1 lost of ")


def test_rpcudp_raises_in_its_timeout_callback_when_the_caller_was_cancelled_seed_3():
    """rpcudp's RPCProtocol._timeout sets a result on a future its cancelled caller abandoned: InvalidStateError."""
    result = run_chaos(load_scenario(SCENARIO), seed=3)
    assert [c.name for c in result.failed] == ["node-errors"]
    errors = [e for e in result.sim.errors if type(e.exception).__name__ == "InvalidStateError"]
    assert errors and all("RPCProtocol._timeout" in e.where for e in errors)


@pytest.mark.slow
def test_what_the_readme_reports_for_seeds_1_to_20():
    """Every seed fails: linearizability in 18, lost acknowledged writes in 4, rpcudp's InvalidStateError in 12."""
    scenario = load_scenario(SCENARIO)
    failed = {seed: [c.name for c in run_chaos(scenario, seed=seed).failed] for seed in range(1, 21)}
    assert all(failed.values())
    by_check = {
        name: sorted(s for s, names in failed.items() if name in names)
        for name in ("linearizable", "lost-writes", "node-errors")
    }
    assert by_check["lost-writes"] == [2, 9, 18, 19]
    assert len(by_check["linearizable"]) == 18 and len(by_check["node-errors"]) == 12


def test_a_set_whose_known_peers_all_stopped_answering_raises_valueerror():
    """kademlia's Server.set_digest takes max() of the peers that answered: none did, so ValueError, not False."""
    import asyncio

    from kademlia.network import Server

    import emulator as em

    seen = {}

    async def node(peer=None):
        dht = Server()
        await dht.listen(8468)
        if peer:
            await dht.bootstrap([(peer, 8468)])
            await asyncio.sleep(10)  # the test cuts the link here
            try:
                seen["set"] = await dht.set("k", "v")
            except ValueError as exc:
                seen["error"] = str(exc)
        await asyncio.Event().wait()

    sim = em.Simulation(seed=1, latency=0.002)
    first = sim.add_host("a", node)
    sim.add_host("b", node, peer=first.address)
    sim.run(until=5)
    sim.network.partition(["a"], ["b"])
    sim.run(until=60)
    sim.close()
    assert seen == {"error": "max() arg is an empty sequence"}
