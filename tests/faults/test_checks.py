"""Named checks that need more than the history: replicas-agree reads each replica's own copy."""

import emulator as em
from faults import run_check, validate_check
from faults.chaos import replica_copies
from tests.common.quorum_cluster import quorum_cluster


def test_replicas_agree_fails_while_an_owner_missed_a_write_and_passes_once_it_has_it():
    """An owner cut off during a W=2 write holds nothing: replicas-agree fails; after anti-entropy it passes."""
    sim, (client,) = quorum_cluster(seed=1, nodes=3, clients=1, read_repair=False, anti_entropy=0.2)
    sim.network.isolate("n2")
    sim.run(client.invoke("write", key="k", value=1, dest="n0"))
    params = validate_check("replicas-agree", True)
    copies = replica_copies(sim, ["k"])
    assert copies == {"k": {"n0": [1], "n1": [1], "n2": []}}
    split = run_check("replicas-agree", params, sim.history, replicas=copies)
    assert split.passed is False and "0 of 1 keys" in split.summary and split.details["differ"]["k"]["n2"] == []
    sim.network.heal()
    sim.run(until=sim.now + 2.0)
    healed = run_check("replicas-agree", params, sim.history, replicas=replica_copies(sim, ["k"]))
    assert healed.passed is True and healed.summary == "1 of 1 keys alike on every live owner"


def test_replicas_agree_cannot_tell_without_replica_copies():
    """A protocol without replica(key) gives no copies: the verdict is unknown, which is not a pass."""
    sim = em.Simulation(seed=1)
    from nodes.kv import SingleKV

    sim.add_node("n0", SingleKV)
    assert replica_copies(sim, ["k"]) is None
    assert run_check("replicas-agree", {}, sim.history).passed is None
